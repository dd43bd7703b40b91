/* ast.c - constructors for the syntax tree (see ast.h). */
#include "ast.h"

const char *const section_names[] = {"model", "data", "loss", "train", "basis"};

Expr *expr_new(Arena *a, ExprKind kind, Loc loc) {
    Expr *e = arena_alloc(a, sizeof *e);
    e->kind = kind;
    e->loc = loc;
    e->param = -1;
    return e;
}

Stmt *stmt_new(Arena *a, StmtKind kind, Loc loc) {
    Stmt *s = arena_alloc(a, sizeof *s);
    s->kind = kind;
    s->loc = loc;
    return s;
}

const char *stmt_head(const Stmt *s) {
    if (s->n_clauses < 1 || s->clauses[0].n_items < 1) return NULL;
    const Expr *e = s->clauses[0].items[0];
    return e->kind == E_NAME ? e->str : NULL;
}
