/* check.h - shared by the checker's files: check.c (driver, helpers), check_model.c (the model's
 * names, dimensions and statements), check_calls.c (layer and function calls, parameters),
 * check_ode.c (ODE and PinT blocks) and check_sections.c (data, loss and train). Not for other
 * stages: they use model.h. */
#ifndef DINO_CHECK_H
#define DINO_CHECK_H

#include "model.h"

typedef enum {
    SYM_INPUT,  /* the model input                                   */
    SYM_TENSOR, /* a statement's target                               */
    SYM_STATE,  /* an ODE state (inside its block: the current state) */
    SYM_TIME,   /* an ODE block's time variable (dimension 1)         */
    SYM_HIDDEN, /* an ODE block's local, out of scope after the block */
} SymKind;

typedef struct {
    const char *name;
    int dim;
    SymKind kind;
    Loc loc;
} Sym;

typedef struct {
    Sym *slots; /* open addressing, name == NULL is empty */
    int cap, n;
} SymTab;

typedef struct Checker {
    Arena *a;
    Diag *d;
    Model *m;
    const CheckOptions *opt;
    SymTab syms;
    PtrVec params;  /* Param * in definition order */
    PtrVec layers;  /* layer calls of the statement being checked, in evaluation order */
    int stmt_index; /* the model statement being checked (for "used before it is defined") */
} Checker;

void fold_file(Diag *d, AstFile *f);

Sym *sym_find(SymTab *t, const char *name);
Sym *sym_add(Checker *c, const char *name, int dim, SymKind kind, Loc loc);

/* The closest of `names` to `name` within two edits, or NULL. */
const char *closest_name(const char *name, const char *const *names, int n);
/* "; did you mean 'x'?" or "" */
const char *did_you_mean(Checker *c, const char *name, const char *const *names, int n);
/* "; did you mean 'x'?" when a name is close, else `otherwise` (such as "; solvers are ..."). */
const char *suggest(Checker *c, const char *name, const char *const *names, int n, const char *otherwise);

/* Constant arguments. Each reports its own error (naming `what`) and returns -1. */
int want_number(Checker *c, const Expr *e, const char *what, double *out);
int want_int(Checker *c, const Expr *e, const char *what, int64_t lo, int64_t hi, int64_t *out);
/* want_int's rule for a value: 1 with the message in msg when v is not a whole number in
 * [lo, hi], else 0 (used for --set values too). */
int int_range_error(char *msg, size_t len, const char *what, double v, int64_t lo, int64_t hi);
int want_name(Checker *c, const Expr *e, const char *what, const char **out);
int want_string(Checker *c, const Expr *e, const char *what, const char **out);

void check_model(Checker *c, const Section *s);

/* check_model.c: an expression's dimension (0 for a constant scalar), or -1 after an error. */
int check_expr(Checker *c, Expr *e);
/* "a constant" or "[n]" */
const char *describe_dim(Checker *c, int dim);
/* Defines a name in the current scope; -1 after an error (already defined, a function's name). */
int define(Checker *c, const char *name, Loc loc, int dim, SymKind kind);
/* `name = expr`: checks it, names its layers (prefix.name.* when prefix is set), defines name. */
void check_assign(Checker *c, const Stmt *s, const char *prefix, SymKind kind);

/* check_calls.c: a call's output dimension, or -1 after an error; layer calls are queued in
 * c->layers until name_layers gives them their parameters, named after `prefix`. */
int check_call(Checker *c, Expr *e);
void name_layers(Checker *c, const char *prefix);
/* The check column of functions.c's table, one per kind of call. */
int check_dense(Checker *c, Expr *e, Call *k);
int check_mlp(Checker *c, Expr *e, Call *k);
int check_concat(Checker *c, Expr *e, Call *k);
int check_project(Checker *c, Expr *e, Call *k);
int check_activation(Checker *c, Expr *e, Call *k);

/* check_basis.c: the basis section (read before the model), the bases' sources and dimensions
 * (once the model's input and output are known), encode/decode calls, the frozen parameters of
 * the bases in use (after the model's statements), the rules that need the whole file. */
void check_basis(Checker *c, const Section *s);
void resolve_bases(Checker *c);
int check_encode(Checker *c, Expr *e, Call *k);
int check_decode(Checker *c, Expr *e, Call *k);
void basis_params(Checker *c);
void check_bases_final(Checker *c);

/* check_ode.c: `dz/dt = ...` on the left of an assignment. */
int is_derivative(const Stmt *s);
void check_ode(Checker *c, const Stmt *s, OdeBlock *o);
void check_data(Checker *c, const Section *s);
void check_loss(Checker *c, const Section *s);
void check_train(Checker *c, const Section *s);
/* Defaults for whatever the data, loss and train sections left out. */
void default_data(Checker *c);
void default_loss(Checker *c, Loc model_loc);
void default_train(TrainSpec *t);
/* Rules that relate sections to each other (h1 needs Jacobian data, ...). */
void check_consistency(Checker *c);

#endif
