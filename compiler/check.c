/* check.c - AST -> checked model: the driver and the helpers every section's checks share.
 *
 * check_file folds constants, checks each section (check_model.c, check_sections.c), fills in
 * defaults for what the file leaves out, and then checks the rules that join sections. It
 * reports every error it finds and returns NULL if there was any. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ops.h"

const char *const activation_names[ACT_COUNT] = {
#define X(name, doc) #name,
    DINO_ACTIVATIONS(X)
#undef X
};

int activation_lookup(const char *name) {
    for (int i = 0; i < ACT_COUNT; i++)
        if (strcmp(activation_names[i], name) == 0) return i;
    return -1;
}

const char *const solver_names[SOLVER_COUNT] = {"euler", "midpoint", "rk4", "dopri5"};
const char *const loss_names[] = {"l2", "h1", "cross_entropy"};
const char *const optimizer_names[OPT_COUNT] = {"adam", "adamw", "sgd"};
const char *const schedule_names[SCHED_COUNT] = {"constant", "linear", "cosine", "step"};

/* ---------------------------------------------------------------------------- symbols */

static uint64_t hash_name(const char *s) { return hash_bytes(s, strlen(s), HASH_START); }

Sym *sym_find(SymTab *t, const char *name) {
    if (!t->cap) return NULL;
    for (uint64_t i = hash_name(name) & (uint64_t)(t->cap - 1);; i = (i + 1) & (uint64_t)(t->cap - 1)) {
        if (!t->slots[i].name) return NULL;
        if (strcmp(t->slots[i].name, name) == 0) return &t->slots[i];
    }
}

Sym *sym_add(Checker *c, const char *name, int dim, SymKind kind, Loc loc) {
    SymTab *t = &c->syms;
    if (2 * (t->n + 1) > t->cap) {
        SymTab old = *t;
        t->cap = old.cap ? old.cap * 2 : 64;
        t->slots = arena_alloc(c->a, sizeof(Sym) * (size_t)t->cap);
        t->n = 0;
        for (int i = 0; i < old.cap; i++)
            if (old.slots[i].name) *sym_add(c, old.slots[i].name, 0, 0, old.slots[i].loc) = old.slots[i];
    }
    uint64_t i = hash_name(name) & (uint64_t)(t->cap - 1);
    while (t->slots[i].name) i = (i + 1) & (uint64_t)(t->cap - 1);
    t->slots[i] = (Sym){name, dim, kind, loc};
    t->n++;
    return &t->slots[i];
}

/* ---------------------------------------------------------------------------- suggestions */

static int edit_distance(const char *a, const char *b, int limit) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 64 || lb > 64 || abs(la - lb) > limit) return limit + 1;
    int prev[65], cur[65];
    for (int j = 0; j <= lb; j++) prev[j] = j;
    for (int i = 1; i <= la; i++) {
        cur[0] = i;
        for (int j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (size_t)(lb + 1));
    }
    return prev[lb];
}

const char *closest_name(const char *name, const char *const *names, int n) {
    const char *best = NULL;
    int best_d = strlen(name) <= 3 ? 1 : 2;
    for (int i = 0; i < n; i++) {
        if (!names[i]) continue;
        int d = edit_distance(name, names[i], best_d);
        if (d <= best_d && (!best || d < best_d)) {
            best = names[i];
            best_d = d;
        }
    }
    return best;
}

const char *did_you_mean(Checker *c, const char *name, const char *const *names, int n) {
    const char *best = closest_name(name, names, n);
    return best ? arena_printf(c->a, "; did you mean '%s'?", best) : "";
}

const char *suggest(Checker *c, const char *name, const char *const *names, int n, const char *otherwise) {
    const char *best = closest_name(name, names, n);
    return best ? arena_printf(c->a, "; did you mean '%s'?", best) : otherwise;
}

/* ---------------------------------------------------------------------------- constants */

int want_number(Checker *c, const Expr *e, const char *what, double *out) {
    if (e->kind == E_ERROR) return -1;
    if (e->kind != E_NUM) {
        diag_error(c->d, e->loc, "%s must be a constant number", what);
        return -1;
    }
    *out = e->num;
    return 0;
}

int int_range_error(char *msg, size_t len, const char *what, double v, int64_t lo, int64_t hi) {
    if (v != floor(v)) snprintf(msg, len, "%s must be a whole number, not %g", what, v);
    else if (v >= (double)lo && v <= (double)hi) return 0;
    else if (lo == 1 && v < 1) snprintf(msg, len, "%s must be positive, not %.15g", what, v);
    else snprintf(msg, len, "%s must be between %lld and %lld, not %.15g", what, (long long)lo, (long long)hi, v);
    return 1;
}

int want_int(Checker *c, const Expr *e, const char *what, int64_t lo, int64_t hi, int64_t *out) {
    double v;
    char msg[256];
    if (want_number(c, e, what, &v)) return -1;
    if (int_range_error(msg, sizeof msg, what, v, lo, hi)) {
        diag_error(c->d, e->loc, "%s", msg);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int want_name(Checker *c, const Expr *e, const char *what, const char **out) {
    if (e->kind == E_ERROR) return -1;
    if (e->kind != E_NAME) {
        diag_error(c->d, e->loc, "%s must be a name", what);
        return -1;
    }
    *out = e->str;
    return 0;
}

int want_string(Checker *c, const Expr *e, const char *what, const char **out) {
    if (e->kind == E_ERROR) return -1;
    if (e->kind != E_STR) {
        diag_error(c->d, e->loc, "%s must be a string in double quotes", what);
        return -1;
    }
    if (!e->str[0]) {
        diag_error(c->d, e->loc, "%s must not be empty", what);
        return -1;
    }
    *out = e->str;
    return 0;
}

/* ---------------------------------------------------------------------------- driver */

Model *check_file(Arena *a, Diag *d, const AstFile *f, const CheckOptions *opt) {
    static const CheckOptions no_options = {0};
    Model *m = arena_alloc(a, sizeof *m);
    m->path = d->src->path;
    Checker c = {.a = a, .d = d, .m = m, .opt = opt ? opt : &no_options};
    fold_file(d, (AstFile *)f);

    const Section *seen[SEC_COUNT] = {0};
    for (int i = 0; i < f->n_sections; i++) {
        const Section *s = f->sections[i];
        if (seen[s->kind]) {
            diag_error(d, s->loc, "a second '%s' section; a file has at most one", section_names[s->kind]);
            diag_note(d, seen[s->kind]->loc, "the first '%s' section is here", section_names[s->kind]);
            continue;
        }
        seen[s->kind] = s;
    }
    if (!seen[SEC_MODEL]) {
        if (d->n_errors == 0)
            diag_error(d, (Loc){0}, "no model section; a spec needs `model NAME { input ..., output ..., ... }`");
        return NULL;
    }
    /* The model first (the other sections refer to its names), then the rest in file order,
     * so that messages come out in the order of the lines they point at. */
    if (seen[SEC_BASIS]) check_basis(&c, seen[SEC_BASIS]);
    check_model(&c, seen[SEC_MODEL]);
    default_train(&m->train);
    for (int i = 0; i < f->n_sections; i++) {
        const Section *s = f->sections[i];
        if (s != seen[s->kind]) continue;
        if (s->kind == SEC_TRAIN) check_train(&c, s);
        else if (s->kind == SEC_LOSS) check_loss(&c, s);
        else if (s->kind == SEC_DATA) check_data(&c, s);
    }
    if (!seen[SEC_LOSS]) default_loss(&c, seen[SEC_MODEL]->loc);
    default_data(&c);
    if (d->n_errors == 0) check_consistency(&c);
    if (d->n_errors == 0) check_bases_final(&c);
    return d->n_errors ? NULL : m;
}
