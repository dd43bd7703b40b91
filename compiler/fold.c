/* fold.c - constant folding: `1/255`, `2*200`, `-3` become numbers before checking. */
#include <math.h>

#include "check.h"

static void fold_expr(Diag *d, Expr *e) {
    if (e->lhs) fold_expr(d, e->lhs);
    if (e->rhs) fold_expr(d, e->rhs);
    for (int i = 0; i < e->n_args; i++) fold_expr(d, e->args[i].value);

    if (e->kind == E_NEG && e->lhs->kind == E_NUM) {
        e->num = -e->lhs->num;
    } else if (e->kind == E_BINARY && e->lhs->kind == E_NUM && e->rhs->kind == E_NUM) {
        double a = e->lhs->num, b = e->rhs->num;
        switch (e->op) {
        case '+': e->num = a + b; break;
        case '-': e->num = a - b; break;
        case '*': e->num = a * b; break;
        case '/':
            if (b == 0) {
                diag_error(d, e->rhs->loc, "division by zero in a constant expression");
                e->kind = E_ERROR;
                return;
            }
            e->num = a / b;
            break;
        }
        if (!isfinite(e->num)) {
            diag_error(d, e->loc, "constant expression overflows");
            e->kind = E_ERROR;
            return;
        }
    } else {
        return;
    }
    e->kind = E_NUM;
    e->lhs = e->rhs = NULL;
}

static void fold_body(Diag *d, Stmt **body, int n) {
    for (int i = 0; i < n; i++) {
        Stmt *s = body[i];
        for (int c = 0; c < s->n_clauses; c++)
            for (int j = 0; j < s->clauses[c].n_items; j++) fold_expr(d, s->clauses[c].items[j]);
        if (s->size) fold_expr(d, s->size);
        if (s->value) fold_expr(d, s->value);
        if (s->t0) fold_expr(d, s->t0);
        if (s->t1) fold_expr(d, s->t1);
        fold_body(d, s->body, s->n_body);
    }
}

void fold_file(Diag *d, AstFile *f) {
    for (int i = 0; i < f->n_sections; i++) fold_body(d, f->sections[i]->body, f->sections[i]->n_body);
}
