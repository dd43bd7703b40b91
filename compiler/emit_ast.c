/* emit_ast.c - writes the syntax tree as an indented outline (dinoc --emit ast).
 *
 * One node per line: its kind, its text, and its line:col, children indented below. After
 * checking, model expressions also show their dimension as [n]. */
#include <stdio.h>
#include <stdlib.h>

#include "ast.h"

static void indent(FILE *out, int depth) {
    for (int i = 0; i < depth; i++) fputs("  ", out);
}

static void print_expr(FILE *out, const Expr *e, int depth, const char *label);

/* The shortest form that reads back as the same double: 3e-4 prints as 0.0003. */
static void print_num(FILE *out, double v) {
    if (v > -1e15 && v < 1e15 && v == (long long)v) {
        fprintf(out, "%lld", (long long)v);
        return;
    }
    char buf[32];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, out);
}

/* A string literal with its quotes, escaped as the source would write it. */
static void print_str(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(out, "\\%c", *s);
        else if (*s == '\n') fputs("\\n", out);
        else if (*s == '\t') fputs("\\t", out);
        else fputc(*s, out);
    }
    fputc('"', out);
}

static void print_args(FILE *out, const Expr *e, int depth) {
    for (int i = 0; i < e->n_args; i++) print_expr(out, e->args[i].value, depth, e->args[i].name);
}

static void print_expr(FILE *out, const Expr *e, int depth, const char *label) {
    indent(out, depth);
    if (label) fprintf(out, "%s = ", label);
    switch (e->kind) {
    case E_NUM:
        fputs("number ", out);
        print_num(out, e->num);
        break;
    case E_STR:
        fputs("string ", out);
        print_str(out, e->str);
        break;
    case E_NAME: fprintf(out, "name %s", e->str); break;
    case E_CALL: fprintf(out, "call %s", e->str); break;
    case E_LIST: fputs("list", out); break;
    case E_BINARY: fprintf(out, "binary %c", e->op); break;
    case E_NEG: fputs("negate", out); break;
    case E_ERROR: fputs("error", out); break;
    }
    if (e->dim > 0) fprintf(out, " [%d]", e->dim);
    fprintf(out, "  @%d:%d\n", e->loc.line, e->loc.col);
    if (e->lhs) print_expr(out, e->lhs, depth + 1, NULL);
    if (e->rhs) print_expr(out, e->rhs, depth + 1, NULL);
    print_args(out, e, depth + 1);
}

static void print_clauses(FILE *out, const Stmt *s, int depth) {
    for (int c = 0; c < s->n_clauses; c++) {
        if (s->n_clauses > 1) {
            indent(out, depth);
            fprintf(out, "clause %d\n", c + 1);
        }
        for (int i = 0; i < s->clauses[c].n_items; i++)
            print_expr(out, s->clauses[c].items[i], depth + (s->n_clauses > 1), NULL);
    }
}

static void print_body(FILE *out, Stmt *const *body, int n, int depth);

static void print_stmt(FILE *out, const Stmt *s, int depth) {
    indent(out, depth);
    switch (s->kind) {
    case S_INPUT:
    case S_OUTPUT:
        fprintf(out, "%s %s  @%d:%d\n", s->kind == S_INPUT ? "input" : "output", s->name, s->loc.line, s->loc.col);
        print_expr(out, s->size, depth + 1, "size");
        break;
    case S_ASSIGN:
        fprintf(out, "assign  @%d:%d\n", s->loc.line, s->loc.col);
        indent(out, depth + 1);
        fputs("target\n", out);
        print_clauses(out, s, depth + 2);
        print_expr(out, s->value, depth + 1, "value");
        break;
    case S_SETTING:
        fprintf(out, "setting  @%d:%d\n", s->loc.line, s->loc.col);
        print_clauses(out, s, depth + 1);
        break;
    case S_ODE:
        fprintf(out, "ode %s, time %s  @%d:%d\n", s->name, s->time, s->loc.line, s->loc.col);
        print_expr(out, s->value, depth + 1, "initial");
        print_expr(out, s->t0, depth + 1, "t0");
        print_expr(out, s->t1, depth + 1, "t1");
        print_body(out, s->body, s->n_body, depth + 1);
        break;
    case S_PINT:
        fprintf(out, "pint %s  @%d:%d\n", s->name, s->loc.line, s->loc.col);
        print_body(out, s->body, s->n_body, depth + 1);
        break;
    case S_ERROR: fprintf(out, "error  @%d:%d\n", s->loc.line, s->loc.col); break;
    }
}

static void print_body(FILE *out, Stmt *const *body, int n, int depth) {
    for (int i = 0; i < n; i++) print_stmt(out, body[i], depth);
}

void ast_print(FILE *out, const AstFile *f) {
    for (int i = 0; i < f->n_sections; i++) {
        const Section *s = f->sections[i];
        fprintf(out, "%s", section_names[s->kind]);
        if (s->kind == SEC_MODEL) fprintf(out, " %s", s->name);
        fprintf(out, "  @%d:%d\n", s->loc.line, s->loc.col);
        print_body(out, s->body, s->n_body, 1);
    }
}
