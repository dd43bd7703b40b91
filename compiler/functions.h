/* functions.h - the table of the functions a model expression can call.
 *
 * One row per function: dense, mlp, concat, project, encode, decode and one per activation (ops.h's rows).
 * The row is the one place a function is described: the checker finds calls by name in it,
 * checks the arguments against its keyword column, names it in messages by its columns (usage,
 * the example call, the list of all functions), and refuses a call whose `lowered` column is 0
 * (code generation does not support it yet); lower.c lowers a call by the row's `lower`
 * column; docs/language.md's function table is the table as functions_print_markdown writes it
 * (the docs_functions test compares them). Adding a layer: a row here, a check function in
 * check_calls.c, a lowering function in lower.c. Nothing here prints except functions_print_markdown, to the stream it
 * is given. */
#ifndef DINO_FUNCTIONS_H
#define DINO_FUNCTIONS_H

#include <stdio.h>

#include "model.h"

/* What an argument must be. */
typedef enum {
    ARG_TENSOR,     /* an expression with a dimension                   */
    ARG_TENSORS,    /* one or more of them (concat)                      */
    ARG_SIZE,       /* a positive whole constant                        */
    ARG_SIZES,      /* a list of them: [256, 128]                       */
    ARG_BOOL,       /* true or false                                    */
    ARG_ACTIVATION, /* the name of an activation                        */
    ARG_FILE,       /* a string: a file relative to the spec's folder   */
    ARG_BASIS,      /* the name of a basis of the basis section         */
} ArgKind;

enum { FN_MAX_ARGS = 8 };

typedef struct {
    const char *name; /* as in the usage: x, n, width, bias */
    ArgKind kind;
    const char *fallback; /* keyword arguments: the value when left out, as written in a spec;
                               NULL when there is none (mlp's width, depth and widths) */
} FnArg;

typedef struct Checker Checker;
typedef struct Lower Lower; /* lower.c's state */
struct IrNode;

typedef struct {
    const char *name; /* as called in a spec */
    CallKind kind;
    const char *usage;       /* the full form, in messages and the docs */
    const char *example;     /* the short form: "call it, as in dense(x, n)" */
    int min_pos, max_pos;    /* positional arguments */
    FnArg pos[2];            /* the positional arguments (concat: one, repeated) */
    FnArg keys[FN_MAX_ARGS]; /* keyword arguments, NULL-terminated */
    const char *params;      /* the parameters each call creates (docs/language.md's naming rules) */
    const char *meaning;     /* for the docs */
    /* check: the call's output dimension, or -1 after reporting errors (check_calls.c) */
    int (*check)(Checker *c, Expr *e, Call *k);
    int lowered; /* 1: both code generators run it; 0: the checker refuses calls (not
                               supported yet) */
    /* lower: the call's forward pass as IR nodes (lower.c) */
    struct IrNode *(*lower)(Lower *l, const Expr *e);
} FunctionDef;

/* The lowering functions of the table's rows (lower.c). */
struct IrNode *lower_dense(Lower *l, const Expr *e);
struct IrNode *lower_mlp(Lower *l, const Expr *e);
struct IrNode *lower_concat(Lower *l, const Expr *e);
struct IrNode *lower_project(Lower *l, const Expr *e);
struct IrNode *lower_encode(Lower *l, const Expr *e);
struct IrNode *lower_decode(Lower *l, const Expr *e);
struct IrNode *lower_activation(Lower *l, const Expr *e);

extern const FunctionDef functions[];
extern const int n_functions;

/* The row called `name`, or NULL. */
/* The first row of a kind (the activations share their lowering), or NULL. */
const FunctionDef *function_of_kind(CallKind kind);
const FunctionDef *function_lookup(const char *name);
/* The value keyword `key` of f takes when a call leaves it out, as written in a spec ("true",
 * "gelu"), or NULL. The checker reads its defaults here. */
const char *function_default(const FunctionDef *f, const char *key);

/* docs/language.md's function table: a header and one row per function (the activations
 * share one row). */
void functions_print_markdown(FILE *out);

#endif
