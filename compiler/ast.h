/* ast.h - the syntax tree of a .dino file, as the parser builds it.
 *
 * The tree keeps the shape of the text: sections hold statements, statements hold expressions.
 * Settings lines (`optimizer adam(lr = 1e-3)`, `split train 0.8, test 0.2`, `solver rk4 steps 8`)
 * are kept generic here, as a head word and clauses of items; check.c gives them meaning, so
 * the grammar stays small and errors about settings point at the offending word.
 *
 * Every node carries the source range it came from. check.c fills the `dim` and `param`
 * fields of expressions; nothing else changes the tree after parsing, except fold.c which
 * replaces constant subtrees by numbers. */
#ifndef DINO_AST_H
#define DINO_AST_H

#include <stdio.h>

#include "arena.h"
#include "source.h"

typedef struct Expr Expr;
typedef struct Stmt Stmt;

typedef enum {
    E_NUM,    /* 3, 0.5, 1e-3                                  num                  */
    E_STR,    /* "m_data.npy"                                  str                  */
    E_NAME,   /* h1, gelu, t                                   str                  */
    E_CALL,   /* dense(m, 400), adam(lr = 1e-3)                str = callee, args   */
    E_LIST,   /* [0, 0.1, 1]                                   args (unnamed)       */
    E_BINARY, /* a + b, a - b, a * b, a / b                    op, lhs, rhs         */
    E_NEG,    /* -a                                            lhs                  */
    E_ERROR,  /* stands in for an expression the parser rejected                    */
} ExprKind;

typedef struct {
    const char *name; /* keyword argument name, or NULL for a positional one */
    Loc name_loc;
    Expr *value;
} Arg;

struct Expr {
    ExprKind kind;
    Loc loc;
    double num;
    const char *str;
    char op; /* '+', '-', '*', '/' */
    Expr *lhs, *rhs;
    Arg *args;
    int n_args;
    int depth; /* nesting depth, bounded by the parser */
    /* filled by check.c */
    int dim;           /* per-sample vector dimension of a model expression; 0 = constant scalar */
    int param;         /* index of the first parameter a layer call owns, or -1 */
    struct Call *call; /* what a call resolved to (model.h) */
};

typedef enum {
    S_INPUT,   /* input m[200]                                  name, size              */
    S_OUTPUT,  /* output q[25]                                  name, size              */
    S_ASSIGN,  /* words = value  (h1 = ..., dq/dm = npy(..), test x = idx(..))           */
    S_SETTING, /* words, words, ...  (batch 32, split train 0.8, test 0.2)              */
    S_ODE,     /* ode z = z0, t in [t0, t1] { body }                                    */
    S_PINT,    /* pint parareal { body }                                                 */
    S_ERROR,   /* a statement the parser skipped after a syntax error                    */
} StmtKind;

/* One comma-separated part of a settings line: a run of items. */
typedef struct {
    Expr **items;
    int n_items;
    Loc loc;
} Clause;

struct Stmt {
    StmtKind kind;
    Loc loc;
    /* S_INPUT, S_OUTPUT, S_ODE (state), S_PINT (method) */
    const char *name;
    Loc name_loc;
    Expr *size; /* S_INPUT, S_OUTPUT */
    /* S_ASSIGN: target words; S_SETTING: clauses (the head word is clauses[0].items[0]) */
    Clause *clauses;
    int n_clauses;
    Expr *value; /* S_ASSIGN right-hand side; S_ODE initial state */
    /* S_ODE */
    const char *time; /* name of the time variable */
    Loc time_loc;
    Expr *t0, *t1;
    /* S_ODE, S_PINT */
    Stmt **body;
    int n_body;
};

typedef enum { SEC_MODEL, SEC_DATA, SEC_LOSS, SEC_TRAIN, SEC_BASIS, SEC_COUNT } SectionKind;

typedef struct {
    SectionKind kind;
    Loc loc;          /* the keyword */
    const char *name; /* model name */
    Stmt **body;
    int n_body;
} Section;

typedef struct {
    Section **sections;
    int n_sections;
} AstFile;

extern const char *const section_names[]; /* "model", "data", "loss", "train", "basis" */

Expr *expr_new(Arena *a, ExprKind kind, Loc loc);
Stmt *stmt_new(Arena *a, StmtKind kind, Loc loc);
/* The head word of a settings line, or NULL when it does not start with a name. */
const char *stmt_head(const Stmt *s);
/* Writes the tree in a readable indented form (dinoc --emit ast). */
void ast_print(FILE *out, const AstFile *f);

#endif
