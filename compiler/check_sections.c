/* check_sections.c - checks the data, loss and train sections and fills in their defaults.
 *
 * These sections are lists of settings lines (`batch 32`, `l2 q weight 1.0 relative`) and
 * data assignments (`dq/dm = npy("J_data.npy")`). Each line is matched against the table of
 * what its section allows; an unknown word gets the closest known one as a suggestion. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Index of `head` in `keys`, or -1 after reporting an unknown setting. */
static int setting_index(Checker *c, const Stmt *t, const char *section, const char *const *keys, int n) {
    const char *head = stmt_head(t);
    if (t->kind == S_SETTING && head)
        for (int i = 0; i < n; i++)
            if (strcmp(keys[i], head) == 0) return i;
    if (t->kind == S_ERROR) return -1;
    char list[256] = "";
    for (int i = 0, len = 0; i < n; i++)
        len += snprintf(list + len, sizeof list - (size_t)len, "%s%s", i ? ", " : "", keys[i]);
    if (head && t->kind == S_SETTING)
        diag_error(c->d, t->clauses[0].items[0]->loc, "unknown %s setting '%s'%s", section, head,
                   suggest(c, head, keys, n, arena_printf(c->a, "; expected one of: %s", list)));
    else diag_error(c->d, t->loc, "expected a %s setting: %s", section, list);
    return -1;
}

/* The derivative reference `dq/dm` for the model's output and input? */
static int is_model_jacobian(Checker *c, const Expr *e) {
    const Model *m = c->m;
    return e->kind == E_BINARY && e->op == '/' && e->lhs->kind == E_NAME && e->rhs->kind == E_NAME && m->output &&
        m->input && e->lhs->str[0] == 'd' && e->rhs->str[0] == 'd' && strcmp(e->lhs->str + 1, m->output) == 0 &&
        strcmp(e->rhs->str + 1, m->input) == 0;
}

/* ---------------------------------------------------------------------------- data */

static void check_source(Checker *c, const Expr *v, DataSource *src, int is_jac) {
    if (v->kind != E_CALL || (strcmp(v->str, "npy") != 0 && strcmp(v->str, "idx") != 0)) {
        diag_error(c->d, v->loc, "expected npy(\"file.npy\") or idx(\"file\")");
        return;
    }
    int idx = v->str[0] == 'i';
    src->kind = idx ? SRC_IDX : SRC_NPY;
    src->scale = 1;
    src->loc = v->loc;
    int n_pos = 0;
    for (int i = 0; i < v->n_args; i++) {
        const Arg *a = &v->args[i];
        if (!a->name) {
            if (n_pos++ == 0) want_string(c, a->value, "the file name", &src->file);
            else diag_error(c->d, a->value->loc, "%s() takes one file name", v->str);
        } else if (!idx && strcmp(a->name, "layout") == 0) {
            const char *layout;
            if (!is_jac) diag_error(c->d, a->name_loc, "layout applies only to Jacobian data");
            else if (want_name(c, a->value, "layout", &layout) == 0) {
                if (strcmp(layout, "in_out") == 0) src->in_out = 1;
                else if (strcmp(layout, "out_in") != 0)
                    diag_error(c->d, a->value->loc, "layout must be out_in (the default) or in_out, not '%s'", layout);
            }
        } else if (idx && strcmp(a->name, "scale") == 0) {
            if (want_number(c, a->value, "scale", &src->scale) == 0 && !(src->scale != 0 && isfinite(src->scale)))
                diag_error(c->d, a->value->loc, "scale must be a non-zero number");
        } else {
            diag_error(c->d, a->name_loc, "%s() has no argument '%s'%s", v->str, a->name,
                       idx ? "; it takes scale = x" : "; it takes layout = in_out");
        }
    }
    if (n_pos == 0) diag_error(c->d, v->loc, "%s() needs a file name", v->str);
    if (idx && is_jac) diag_error(c->d, v->loc, "Jacobian data must be an .npy file");
}

static void check_data_assign(Checker *c, const Stmt *t) {
    const Model *m = c->m;
    DataSpec *ds = &c->m->data;
    const Clause *cl = &t->clauses[0];
    /* `test x = ...` and `valid x = ...` name separate test and validation files */
    const char *set = cl->n_items == 2 && cl->items[0]->kind == E_NAME &&
            (strcmp(cl->items[0]->str, "test") == 0 || strcmp(cl->items[0]->str, "valid") == 0)
        ? cl->items[0]->str
        : NULL;
    int test = set && set[0] == 't', valid = set && set[0] == 'v', prefixed = set != NULL;
    if (t->n_clauses != 1 || cl->n_items != 1 + prefixed) {
        diag_error(c->d, cl->loc, "expected NAME = npy(...), d%s/d%s = npy(...), test NAME = ... or valid NAME = ...",
                   m->output ? m->output : "y", m->input ? m->input : "x");
        return;
    }
    const Expr *target = cl->items[prefixed];
    DataSource *src = NULL;
    int is_jac = 0;
    if (target->kind == E_NAME && m->input && strcmp(target->str, m->input) == 0) {
        src = test ? &ds->test_input : valid ? &ds->valid_input : &ds->input;
    } else if (target->kind == E_NAME && m->output && strcmp(target->str, m->output) == 0) {
        src = test ? &ds->test_output : valid ? &ds->valid_output : &ds->output;
    } else if (is_model_jacobian(c, target)) {
        src = test ? &ds->test_jac : valid ? &ds->valid_jac : &ds->jac;
        is_jac = 1;
    } else {
        char text[64];
        if (m->input && m->output)
            diag_error(c->d, target->loc, "the data block can set %s, %s and d%s/d%s, not '%s'", m->input, m->output,
                       m->output, m->input, source_text(c->d->src, target->loc, text, sizeof text));
        return;
    }
    if (src->kind != SRC_NONE) {
        char text[64];
        diag_error(c->d, cl->loc, "the data for '%s' is given twice",
                   source_text(c->d->src, cl->loc, text, sizeof text));
        diag_note(c->d, src->loc, "first given here");
        return;
    }
    check_source(c, t->value, src, is_jac);
}

/* Was the number written as a fraction (`0.8`, `1.0`, `1e-1`, `4/5`) rather than a whole count? */
static int written_as_fraction(Checker *c, const Expr *e) {
    size_t len;
    const char *line = source_line(c->d->src, e->loc.line, &len);
    int end = e->loc.end_line == e->loc.line ? e->loc.end_col : (int)len + 1;
    for (int i = e->loc.col - 1; i < end - 1 && i < (int)len; i++)
        if (line[i] == '.' || line[i] == 'e' || line[i] == 'E' || line[i] == '/') return 1;
    return 0;
}

/* split train N, [valid V,] [test M]: parts in any order, each once; contiguous rows train,
 * then valid, then test. Row counts or fractions (all of one kind); a missing test part is
 * the rest. */
static void check_split(Checker *c, const Stmt *t) {
    static const char *const parts[3] = {"train", "valid", "test"};
    DataSpec *ds = &c->m->data;
    ds->split_loc = t->loc;
    double v[3] = {-1, -1, -1}; /* train, valid, test; -1 = not given */
    int written_fraction = 0;
    for (int i = 0; i < t->n_clauses; i++) {
        const Clause *cl = &t->clauses[i];
        int first = i == 0; /* the head word `split` leads the first clause */
        const char *which;
        if (cl->n_items != 2 + first || want_name(c, cl->items[first], "a split part", &which)) {
            diag_error(c->d, cl->loc,
                       "expected split train N, valid V, test M (row counts or fractions; valid optional)");
            return;
        }
        int k = -1;
        for (int j = 0; j < 3; j++)
            if (strcmp(which, parts[j]) == 0) k = j;
        if (k < 0) {
            diag_error(c->d, cl->items[first]->loc, "a split has parts train, valid and test, not '%s'%s", which,
                       did_you_mean(c, which, parts, 3));
            return;
        }
        if (v[k] >= 0) {
            diag_error(c->d, cl->items[first]->loc, "'%s' is given twice", which);
            return;
        }
        if (want_number(c, cl->items[first + 1], which, &v[k])) return;
        written_fraction |= written_as_fraction(c, cl->items[first + 1]);
        if (!(v[k] >= 0) || (k != 2 && v[k] == 0)) {
            diag_error(c->d, cl->items[first + 1]->loc, "the %s part must be %s", which,
                       k == 2       ? "zero or more"
                           : k == 1 ? "positive (leave it out for no validation set)"
                                    : "positive");
            return;
        }
    }
    if (v[0] < 0) {
        diag_error(c->d, t->loc, "a split needs its train part: split train N, test M");
        return;
    }
    /* fractions: written with a point (train 1.0, test 0) or below 1; else row counts */
    int fractions = v[0] <= 1 && v[1] <= 1 && v[2] <= 1 &&
        (written_fraction || v[0] < 1 || (v[1] > 0 && v[1] < 1) || (v[2] > 0 && v[2] < 1));
    if (fractions) {
        double given = v[0] + (v[1] > 0 ? v[1] : 0);
        if (v[2] < 0) v[2] = given < 1 ? 1 - given : 0;
        if (given + v[2] > 1 + 1e-9) {
            diag_error(c->d, t->loc, "the fractions add up to %g, more than 1", given + v[2]);
            return;
        }
        ds->split = SPLIT_FRACTION;
    } else {
        for (int k = 0; k < 3; k++)
            if (v[k] >= 0 && v[k] != floor(v[k])) {
                diag_error(c->d, t->loc, "mix of a row count and a fraction; use row counts for %s or fractions for %s",
                           v[1] >= 0 ? "all parts" : "both", v[1] >= 0 ? "all" : "both");
                return;
            }
        if (v[0] > 1e12 || v[1] > 1e12 || v[2] > 1e12) {
            diag_error(c->d, t->loc, "split row counts are too large");
            return;
        }
        if (v[2] < 0) v[2] = -1; /* the rest */
        ds->split = SPLIT_COUNT;
    }
    ds->train = v[0];
    ds->valid = v[1] > 0 ? v[1] : 0;
    ds->test = v[2];
}

void check_data(Checker *c, const Section *s) {
    static const char *const keys[] = {"dir", "split"};
    DataSpec *ds = &c->m->data;
    ds->split = SPLIT_FRACTION;
    ds->train = -1;
    for (int i = 0; i < s->n_body; i++) {
        const Stmt *t = s->body[i];
        if (t->kind == S_ASSIGN) {
            check_data_assign(c, t);
            continue;
        }
        int k = setting_index(c, t, "data", keys, 2);
        if (k == 0) {
            if (t->n_clauses != 1 || t->clauses[0].n_items != 2) {
                diag_error(c->d, t->loc, "expected dir \"folder\"");
                continue;
            }
            if (ds->dir) diag_error(c->d, t->loc, "'dir' is set twice");
            want_string(c, t->clauses[0].items[1], "the data folder", &ds->dir);
            ds->dir_loc = t->clauses[0].items[1]->loc;
        } else if (k == 1) {
            if (ds->split_loc.line) diag_error(c->d, t->loc, "'split' is set twice");
            else check_split(c, t);
        }
    }
}

void default_data(Checker *c) {
    Model *m = c->m;
    DataSpec *ds = &m->data;
    if (!m->input || !m->output) return;
    int has_test = ds->test_input.kind || ds->test_output.kind || ds->test_jac.kind;
    int has_valid = ds->valid_input.kind || ds->valid_output.kind || ds->valid_jac.kind;
    if (has_valid) {
        const char *missing = !ds->valid_input.kind ? m->input : !ds->valid_output.kind ? m->output : NULL;
        Loc at = ds->valid_input.kind ? ds->valid_input.loc
            : ds->valid_output.kind   ? ds->valid_output.loc
                                      : ds->valid_jac.loc;
        if (missing) {
            diag_error(c->d, at, "separate validation data needs both `valid %s = ...` and `valid %s = ...`", m->input,
                       m->output);
            return;
        }
        if (ds->valid > 0) {
            diag_error(c->d, at, "validation files and a valid part in the split; use one or the other");
            diag_note(c->d, ds->split_loc, "the split is here");
            return;
        }
    }
    if (has_test) {
        if (ds->split_loc.line) {
            diag_error(c->d, ds->split_loc, "a split and separate test files; use one or the other");
            return;
        }
        const char *missing = !ds->test_input.kind ? m->input : !ds->test_output.kind ? m->output : NULL;
        Loc at = ds->test_input.kind ? ds->test_input.loc
            : ds->test_output.kind   ? ds->test_output.loc
                                     : ds->test_jac.loc;
        if (missing) {
            diag_error(c->d, at, "separate test data needs both `test %s = ...` and `test %s = ...`", m->input,
                       m->output);
            return;
        }
        ds->split = SPLIT_TEST_FILES;
    } else if (!ds->split_loc.line) {
        ds->split = SPLIT_FRACTION;
        ds->train = 0.8;
        ds->test = 0.2;
    }
    DataSource *defaults[] = {&ds->input, &ds->output};
    const char *names[] = {m->input, m->output};
    for (int i = 0; i < 2; i++)
        if (!defaults[i]->kind) {
            *defaults[i] = (DataSource){
                .kind = SRC_NPY, .scale = 1, .defaulted = 1, .file = arena_printf(c->a, "%s_data.npy", names[i])};
        }
    int h1 = 0;
    for (int i = 0; i < m->n_loss; i++) h1 |= m->loss[i].kind == LOSS_H1;
    if (!ds->jac.kind && h1) ds->jac = (DataSource){.kind = SRC_NPY, .scale = 1, .defaulted = 1, .file = "J_data.npy"};
}

/* ---------------------------------------------------------------------------- loss */

static int check_weight(Checker *c, const Clause *cl, int *i, LossTerm *term) {
    if (*i + 1 >= cl->n_items) {
        diag_error(c->d, cl->items[*i]->loc, "weight needs a value");
        return -1;
    }
    const Expr *v = cl->items[++*i];
    if (v->kind == E_CALL && strcmp(v->str, "ramp") == 0) {
        const char *usage = "usage: ramp(from, to, epochs = n)";
        int n_pos = 0, bad = 0;
        int64_t epochs = 0;
        double w[2] = {0, 0};
        for (int a = 0; a < v->n_args; a++) {
            const Arg *arg = &v->args[a];
            if (!arg->name && n_pos < 2) {
                bad |= want_number(c, arg->value, "a ramp weight", &w[n_pos++]);
            } else if (arg->name && strcmp(arg->name, "epochs") == 0) {
                bad |= want_int(c, arg->value, "the ramp's epochs", 1, 100000000, &epochs);
            } else if (arg->name) {
                diag_error(c->d, arg->name_loc, "ramp() has no argument '%s'; %s", arg->name, usage);
                return -1;
            } else {
                diag_error(c->d, arg->value->loc, "ramp() takes two weights; %s", usage);
                return -1;
            }
        }
        if (bad) return -1;
        if (n_pos != 2 || epochs == 0) {
            diag_error(c->d, v->loc, "ramp() needs %s; %s", n_pos != 2 ? "a start and an end weight" : "epochs = n",
                       usage);
            return -1;
        }
        if (w[0] < 0 || w[1] < 0) {
            diag_error(c->d, v->loc, "loss weights must not be negative");
            return -1;
        }
        term->ramp = 1;
        term->weight = w[0];
        term->weight_end = w[1];
        term->ramp_epochs = (int)epochs;
        return 0;
    }
    if (want_number(c, v, "a loss weight", &term->weight)) return -1;
    if (term->weight < 0) {
        diag_error(c->d, v->loc, "loss weights must not be negative");
        return -1;
    }
    return 0;
}

void check_loss(Checker *c, const Section *s) {
    static const char *const keys[] = {"l2", "h1", "cross_entropy"};
    Model *m = c->m;
    m->loss = arena_alloc(c->a, sizeof(LossTerm) * (size_t)(s->n_body + 1));
    const LossTerm *seen[3] = {0};
    for (int i = 0; i < s->n_body; i++) {
        const Stmt *t = s->body[i];
        int k = setting_index(c, t, "loss", keys, 3);
        if (k < 0) continue;
        const Clause *cl = &t->clauses[0];
        if (t->n_clauses != 1 || cl->n_items < 2) {
            diag_error(c->d, t->loc, "expected %s %s [weight W] [relative]", keys[k],
                       k == 1 ? arena_printf(c->a, "d%s/d%s", m->output ? m->output : "y", m->input ? m->input : "x")
                           : m->output ? m->output
                                       : "y");
            continue;
        }
        LossTerm term = {.kind = k, .weight = 1, .loc = t->loc};
        const Expr *target = cl->items[1];
        if (!m->output || !m->input) continue;
        if (k == LOSS_H1 && !is_model_jacobian(c, target)) {
            diag_error(c->d, target->loc, "h1 applies to the Jacobian of the output with respect to the input: d%s/d%s",
                       m->output, m->input);
            continue;
        }
        if (k != LOSS_H1 && (target->kind != E_NAME || strcmp(target->str, m->output) != 0)) {
            diag_error(c->d, target->loc, "%s applies to the model output '%s'", keys[k], m->output);
            continue;
        }
        int bad = 0;
        for (int j = 2; j < cl->n_items && !bad; j++) {
            const Expr *w = cl->items[j];
            if (w->kind == E_NAME && strcmp(w->str, "weight") == 0) bad = check_weight(c, cl, &j, &term);
            else if (w->kind == E_NAME && strcmp(w->str, "relative") == 0 && k != LOSS_CROSS_ENTROPY) term.relative = 1;
            else if (w->kind == E_NAME && strcmp(w->str, "relative") == 0) {
                diag_error(c->d, w->loc, "cross_entropy has no relative form; relative applies to l2 and h1");
                bad = 1;
            } else {
                diag_error(c->d, w->loc, "expected weight W%s", k != LOSS_CROSS_ENTROPY ? " or relative" : "");
                bad = 1;
            }
        }
        if (bad) continue;
        if (seen[k]) {
            diag_error(c->d, t->loc, "a second %s term", keys[k]);
            continue;
        }
        m->loss[m->n_loss] = term;
        seen[k] = &m->loss[m->n_loss++];
    }
    if (seen[LOSS_CROSS_ENTROPY] && (seen[LOSS_L2] || seen[LOSS_H1]))
        diag_error(c->d, seen[LOSS_CROSS_ENTROPY]->loc,
                   "cross_entropy trains a classifier on integer labels; it can't be combined with l2 or h1");
    if (seen[LOSS_CROSS_ENTROPY]) m->classifier = 1;
    if (seen[LOSS_CROSS_ENTROPY] && m->out_rows > 1)
        diag_error(c->d, seen[LOSS_CROSS_ENTROPY]->loc,
                   "cross_entropy classifies one output vector; this model's output "
                   "is a trajectory of %d saved states (a save line); train it with l2 or h1",
                   m->out_rows);
    if (m->n_loss == 0 && c->d->n_errors == 0) diag_error(c->d, s->loc, "the loss block has no terms");
}

void default_loss(Checker *c, Loc model_loc) {
    Model *m = c->m;
    m->loss = arena_alloc(c->a, sizeof(LossTerm));
    m->loss[0] = (LossTerm){.kind = LOSS_L2, .weight = 1, .loc = model_loc};
    m->n_loss = 1;
}

/* ---------------------------------------------------------------------------- train */

void default_train(TrainSpec *t) {
    *t = (TrainSpec){.optimizer = OPT_ADAM,
                     .lr = 1e-3,
                     .beta1 = 0.9,
                     .beta2 = 0.999,
                     .eps = 1e-8,
                     .schedule = SCHED_CONSTANT,
                     .factor = 0.1,
                     .batch = 32,
                     .epochs = 100};
}

typedef struct {
    const char *name;
    size_t offset;
    double lo, hi;        /* allowed range */
    int lo_open, hi_open; /* lo, hi themselves not allowed */
} NumKey;

/* 1 with the message in msg when v is outside k's range, else 0. */
static int num_range_error(char *msg, size_t len, const NumKey *k, double v) {
    if (!(v < k->lo || v > k->hi || (k->lo_open && v == k->lo) || (k->hi_open && v == k->hi))) return 0;
    char upper[64] = "";
    if (!isinf(k->hi)) snprintf(upper, sizeof upper, " and %s %g", k->hi_open ? "less than" : "at most", k->hi);
    snprintf(msg, len, "%s must be %s %g%s, not %g", k->name, k->lo_open ? "greater than" : "at least", k->lo, upper,
             v);
    return 1;
}

static const char *optimizer_hint(OptimizerKind k, const char *key);

/* Keyword arguments of a call such as adam(lr = 1e-3) into the fields of `out`. */
static int call_numbers(Checker *c, const Expr *call, const NumKey *keys, int n, void *out, int out_is_train) {
    int bad = 0;
    for (int i = 0; i < call->n_args; i++) {
        const Arg *a = &call->args[i];
        const char *name = a->name ? a->name : i == 0 ? keys[0].name : NULL;
        const NumKey *k = NULL;
        for (int j = 0; name && j < n; j++)
            if (strcmp(keys[j].name, name) == 0) k = &keys[j];
        if (!k) {
            const char *names[8];
            for (int j = 0; j < n && j < 8; j++) names[j] = keys[j].name;
            const char *hint = a->name ? did_you_mean(c, a->name, names, n) : "";
            if (a->name && !hint[0] && out_is_train) hint = optimizer_hint(((TrainSpec *)out)->optimizer, a->name);
            if (a->name) diag_error(c->d, a->name_loc, "%s() has no argument '%s'%s", call->str, a->name, hint);
            else
                diag_error(c->d, a->value->loc, "only the first argument of %s() may be given without its name",
                           call->str);
            bad = 1;
            continue;
        }
        double v;
        if (want_number(c, a->value, k->name, &v)) {
            bad = 1;
            continue;
        }
        char msg[256];
        if (num_range_error(msg, sizeof msg, k, v)) {
            diag_error(c->d, a->value->loc, "%s", msg);
            bad = 1;
            continue;
        }
        *(double *)((char *)out + k->offset) = v;
    }
    return bad ? -1 : 0;
}

#define KEY(field, lo, hi, lo_open, hi_open) \
    { #field, offsetof(TrainSpec, field), lo, hi, lo_open, hi_open }
static const NumKey adam_keys[] = {KEY(lr, 0, INFINITY, 1, 0), KEY(beta1, 0, 1, 0, 1), KEY(beta2, 0, 1, 0, 1),
                                   KEY(eps, 0, 1, 1, 0), KEY(decay, 0, INFINITY, 0, 0)};
static const NumKey sgd_keys[] = {KEY(lr, 0, INFINITY, 1, 0), KEY(momentum, 0, 1, 0, 1)};
static const NumKey end_keys[] = {KEY(end, 0, INFINITY, 0, 0)};
static const NumKey step_keys[] = {KEY(factor, 0, INFINITY, 1, 0)};
#undef KEY

/* The settings of an optimizer: adam's four, adamw's five (decay), sgd's two. */
static const NumKey *optimizer_keys(OptimizerKind k, int *n) {
    *n = k == OPT_SGD ? 2 : k == OPT_ADAMW ? 5 : 4;
    return k == OPT_SGD ? sgd_keys : adam_keys;
}

/* "; ..." naming the optimizer that has the setting `key` that optimizer k lacks, or "". */
static const char *optimizer_hint(OptimizerKind k, const char *key) {
    if (strcmp(key, "decay") == 0 && k != OPT_ADAMW)
        return "; decoupled weight decay is adamw's: optimizer adamw(decay = ...)";
    if (strcmp(key, "momentum") == 0 && k != OPT_SGD) return "; momentum is sgd's: optimizer sgd(momentum = ...)";
    if (k == OPT_SGD && (strcmp(key, "beta1") == 0 || strcmp(key, "beta2") == 0 || strcmp(key, "eps") == 0))
        return "; it is a setting of adam and adamw";
    return "";
}

/* Whole-number train settings: `batch N`, `epochs N`, `seed N`, `eval every N`. */
typedef struct {
    const char *name;
    int64_t lo, hi;
} IntKey;
static const IntKey batch_key = {"batch", 1, 1 << 20}, epochs_key = {"epochs", 0, 100000000},
                    seed_key = {"seed", 0, (int64_t)1 << 53}, eval_key = {"eval every", 1, 100000000},
                    patience_key = {"patience", 1, 100000000}, save_key = {"save every", 1, 100000000};

static void check_optimizer(Checker *c, const Expr *v, TrainSpec *t) {
    const char *name = v->kind == E_CALL || v->kind == E_NAME ? v->str : NULL;
    int k = -1;
    for (int i = 0; name && i < OPT_COUNT; i++)
        if (strcmp(optimizer_names[i], name) == 0) k = i;
    if (k < 0) {
        const char *list = "; the optimizers are adam, adamw and sgd";
        diag_error(c->d, v->loc, "unknown optimizer%s%s%s", name ? " '" : "",
                   name ? arena_printf(c->a, "%s'", name) : "",
                   name ? suggest(c, name, optimizer_names, OPT_COUNT, list) : list);
        return;
    }
    t->optimizer = k;
    if (k == OPT_ADAMW) t->decay = 1e-2;
    if (k == OPT_SGD) t->lr = 1e-2;
    if (v->kind != E_CALL) return;
    if (k == OPT_SGD) call_numbers(c, v, sgd_keys, 2, t, 1);
    else call_numbers(c, v, adam_keys, k == OPT_ADAMW ? 5 : 4, t, 1);
}

static void check_schedule(Checker *c, const Expr *v, TrainSpec *t) {
    const char *name = v->kind == E_CALL || v->kind == E_NAME ? v->str : NULL;
    int k = -1;
    for (int i = 0; name && i < SCHED_COUNT; i++)
        if (strcmp(schedule_names[i], name) == 0) k = i;
    if (k < 0) {
        const char *list = "; the schedules are constant, linear, cosine and step";
        diag_error(c->d, v->loc, "unknown schedule%s%s%s", name ? " '" : "",
                   name ? arena_printf(c->a, "%s'", name) : "",
                   name ? suggest(c, name, schedule_names, SCHED_COUNT, list) : list);
        return;
    }
    t->schedule = k;
    t->end = 0;
    if (k == SCHED_STEP) {
        t->n_at = 2;
        t->at[0] = 0.5;
        t->at[1] = 0.75;
    }
    if (v->kind != E_CALL) return;
    if (k == SCHED_CONSTANT) {
        if (v->n_args) diag_error(c->d, v->loc, "constant takes no arguments");
    } else if (k != SCHED_STEP) {
        call_numbers(c, v, end_keys, 1, t, 0);
    } else {
        Expr stripped = *v; /* `at` is a list; the rest are numbers */
        Arg rest[8];
        stripped.n_args = 0;
        stripped.args = rest;
        for (int i = 0; i < v->n_args; i++) {
            const Arg *a = &v->args[i];
            if (!a->name || strcmp(a->name, "at") != 0) {
                if (stripped.n_args < 8) rest[stripped.n_args++] = *a;
                continue;
            }
            const Expr *l = a->value;
            if (l->kind != E_LIST || l->n_args < 1 || l->n_args > MAX_STEP_MILESTONES) {
                diag_error(c->d, l->loc, "at must be a list of 1 to %d fractions of the run, e.g. [0.5, 0.75]",
                           MAX_STEP_MILESTONES);
                continue;
            }
            t->n_at = l->n_args;
            for (int j = 0; j < l->n_args; j++) {
                if (want_number(c, l->args[j].value, "a milestone", &t->at[j])) continue;
                if (!(t->at[j] > 0 && t->at[j] < 1) || (j && !(t->at[j] > t->at[j - 1])))
                    diag_error(c->d, l->args[j].value->loc,
                               "milestones are increasing fractions of the run between 0 and 1");
            }
        }
        call_numbers(c, &stripped, step_keys, 1, t, 0);
    }
}

/* `WORD NAME` or `WORD NAME N` (eval every N, early_stop patience K, keep best, save every K):
 * 0 when the second word is NAME, else -1 after an error naming the usage. */
static int want_word(Checker *c, const Expr *v, const char *name, const char *usage) {
    if (v->kind == E_NAME && strcmp(v->str, name) == 0) return 0;
    diag_error(c->d, v->loc, "expected %s", usage);
    return -1;
}

/* Block and window sizes of `shuffle blocks B window W`: rows, at least 1. */
static const IntKey shuffle_block_key = {"shuffle blocks", 1, (int64_t)1 << 50},
                    shuffle_window_key = {"window", 1, (int64_t)1 << 50};
#define SHUFFLE_USAGE "shuffle rows, or shuffle blocks B [window W]"

/* `shuffle rows`, `shuffle blocks B` or `shuffle blocks B window W`. */
static void check_shuffle(Checker *c, const Stmt *st, TrainSpec *t) {
    const Clause *cl = &st->clauses[0];
    const Expr *v = cl->items[1];
    if (v->kind == E_ERROR) return;
    int rows = v->kind == E_NAME && strcmp(v->str, "rows") == 0,
        blocks = v->kind == E_NAME && strcmp(v->str, "blocks") == 0;
    if (!rows && !blocks) {
        diag_error(c->d, v->loc, "expected " SHUFFLE_USAGE);
        return;
    }
    if (rows) {
        if (cl->n_items != 2)
            diag_error(c->d, cl->items[2]->loc, "shuffle rows takes nothing more; expected " SHUFFLE_USAGE);
        else t->shuffle_block = t->shuffle_window = 0;
        return;
    }
    if (cl->n_items != 3 && cl->n_items != 5) {
        diag_error(c->d, st->loc, "expected shuffle blocks B or shuffle blocks B window W (B, W: rows)");
        return;
    }
    int64_t b, w = 0;
    if (want_int(c, cl->items[2], shuffle_block_key.name, shuffle_block_key.lo, shuffle_block_key.hi, &b)) return;
    if (cl->n_items == 5 &&
        (want_word(c, cl->items[3], "window", "shuffle blocks B window W") ||
         want_int(c, cl->items[4], shuffle_window_key.name, shuffle_window_key.lo, shuffle_window_key.hi, &w)))
        return;
    t->shuffle_block = b;
    t->shuffle_window = w;
}

void check_train(Checker *c, const Section *s) {
    static const char *const keys[] = {"optimizer", "schedule",   "batch", "epochs", "seed", "precision",
                                       "eval",      "early_stop", "keep",  "save",   "math", "shuffle"};
    static const char *const usage[] = {"optimizer adam(lr = 1e-3)",
                                        "schedule cosine(end = 0)",
                                        "batch N",
                                        "epochs N",
                                        "seed N",
                                        "precision f32",
                                        "eval every N",
                                        "early_stop patience K",
                                        "keep best",
                                        "save every K",
                                        "math fast",
                                        SHUFFLE_USAGE};
    enum { N_KEYS = sizeof keys / sizeof keys[0] };
    TrainSpec *t = &c->m->train;
    const Stmt *seen[N_KEYS] = {0};
    for (int i = 0; i < s->n_body; i++) {
        const Stmt *st = s->body[i];
        int k = setting_index(c, st, "train", keys, N_KEYS);
        if (k < 0) continue;
        if (seen[k]) {
            diag_error(c->d, st->loc, "'%s' is set twice", keys[k]);
            diag_note(c->d, seen[k]->loc, "first set here");
            continue;
        }
        seen[k] = st;
        const Clause *cl = &st->clauses[0];
        int want_items = k == 6 || k == 7 || k == 9 ? 3 : 2;
        if (k == 11 && st->n_clauses == 1 && cl->n_items >= 2) { /* shuffle: 2, 3 or 5 items */
            check_shuffle(c, st, t);
            continue;
        }
        if (st->n_clauses != 1 || cl->n_items != want_items) {
            diag_error(c->d, st->loc, "expected %s", usage[k]);
            continue;
        }
        const Expr *v = cl->items[1];
        int64_t n;
        switch (k) {
        case 0: check_optimizer(c, v, t); break;
        case 1: check_schedule(c, v, t); break;
        case 2:
            if (!want_int(c, v, batch_key.name, batch_key.lo, batch_key.hi, &n)) t->batch = (int)n;
            break;
        case 3:
            if (!want_int(c, v, epochs_key.name, epochs_key.lo, epochs_key.hi, &n)) t->epochs = n;
            break;
        case 4:
            if (!want_int(c, v, seed_key.name, seed_key.lo, seed_key.hi, &n)) t->seed = (uint64_t)n;
            break;
        case 5: {
            const char *p = v->kind == E_NAME ? v->str : "";
            if (strcmp(p, "f32") == 0 || strcmp(p, "f64") == 0) t->f64 = p[1] == '6';
            else if (v->kind == E_NAME) diag_error(c->d, v->loc, "precision is f32 or f64, not '%s'", p);
            else if (v->kind != E_ERROR) diag_error(c->d, v->loc, "precision is f32 or f64 (a name, without quotes)");
            break;
        }
        case 6:
            if (want_word(c, v, "every", usage[k]) == 0 &&
                !want_int(c, cl->items[2], eval_key.name, eval_key.lo, eval_key.hi, &n))
                t->eval_every = n;
            break;
        case 7:
            if (want_word(c, v, "patience", usage[k]) == 0 &&
                !want_int(c, cl->items[2], patience_key.name, patience_key.lo, patience_key.hi, &n)) {
                t->patience = n;
                t->patience_loc = st->loc;
            }
            break;
        case 8:
            if (want_word(c, v, "best", usage[k]) == 0) {
                t->keep_best = 1;
                t->keep_best_loc = st->loc;
            }
            break;
        case 10: {
            const char *p = v->kind == E_NAME ? v->str : "";
            if (strcmp(p, "fast") == 0 || strcmp(p, "precise") == 0) t->fast_math = p[0] == 'f';
            else if (v->kind == E_NAME) diag_error(c->d, v->loc, "math is precise or fast, not '%s'", p);
            else if (v->kind != E_ERROR) diag_error(c->d, v->loc, "math is precise or fast (a name, without quotes)");
            break;
        }
        case 9:
            if (want_word(c, v, "every", usage[k]) == 0 &&
                !want_int(c, cl->items[2], save_key.name, save_key.lo, save_key.hi, &n)) {
                t->save_every = n;
                t->save_every_loc = st->loc;
            }
            break;
        }
    }
    /* model selection reads the validation loss at evaluations: one after every epoch unless
     * `eval every` says otherwise */
    if ((t->patience || t->keep_best) && !seen[6]) t->eval_every = 1;
    if (t->keep_best && t->save_every) {
        diag_error(c->d, t->save_every_loc,
                   "save every and keep best both decide when the --save checkpoint is written (keep best: at each "
                   "new best validation loss); use one of them");
        diag_note(c->d, t->keep_best_loc, "keep best is here");
    }
}

/* ---------------------------------------------------------------------------- --set key=value */

/* --set shuffle=VALUE: the words of the train section after `shuffle`. */
static int set_shuffle(TrainSpec *t, const char *val, char *msg, size_t len) {
    char buf[128], *w[6];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", val);
    for (char *p = buf; *p && n < 6;) { /* split at spaces (not strtok: dino.h may be called from threads) */
        while (*p == ' ' || *p == '\t') *p++ = 0;
        if (!*p) break;
        w[n++] = p;
        while (*p && *p != ' ' && *p != '\t') p++;
    }
    if (strlen(val) < sizeof buf - 1 && n == 1 && strcmp(w[0], "rows") == 0) {
        t->shuffle_block = t->shuffle_window = 0;
        return 0;
    }
    if (strlen(val) >= sizeof buf - 1 || !(n == 2 || n == 4) || strcmp(w[0], "blocks") != 0 ||
        (n == 4 && strcmp(w[2], "window") != 0)) {
        snprintf(msg, len, "shuffle is 'rows', 'blocks B' or 'blocks B window W' (B, W: rows), not '%s'", val);
        return -1;
    }
    double v[2] = {0, 0};
    const IntKey *ik[2] = {&shuffle_block_key, &shuffle_window_key};
    for (int i = 0; i < n / 2; i++) {
        char *end;
        v[i] = strtod(w[2 * i + 1], &end);
        if (end == w[2 * i + 1] || *end || !isfinite(v[i])) {
            snprintf(msg, len, "%s must be a number, not '%s'", ik[i]->name, w[2 * i + 1]);
            return -1;
        }
        if (int_range_error(msg, len, ik[i]->name, v[i], ik[i]->lo, ik[i]->hi)) return -1;
    }
    t->shuffle_block = (int64_t)v[0];
    t->shuffle_window = (int64_t)v[1];
    return 0;
}

/* A setting with two values, off and on: *flag = (val is on). */
static int set_either(const char *key, const char *off, const char *on, const char *val, int *flag, char *msg,
                      size_t len) {
    if (strcmp(val, off) && strcmp(val, on)) {
        snprintf(msg, len, "%s is %s or %s, not '%s'", key, off, on, val);
        return -1;
    }
    *flag = strcmp(val, on) == 0;
    return 0;
}

int check_setting(TrainSpec *t, const char *key, const char *val, char *msg, size_t len) {
    static const char *const keys[] = {"epochs",     "batch",     "lr",   "seed",   "precision", "eval_every",
                                       "beta1",      "beta2",     "eps",  "decay",  "momentum",  "patience",
                                       "save_every", "keep_best", "math", "shuffle"};
    enum { N_KEYS = sizeof keys / sizeof keys[0] };
    if (strcmp(key, "shuffle") == 0) return set_shuffle(t, val, msg, len);
    if (strcmp(key, "math") == 0) return set_either("math", "precise", "fast", val, &t->fast_math, msg, len);
    if (strcmp(key, "precision") == 0) return set_either("precision", "f32", "f64", val, &t->f64, msg, len);
    int known = 0;
    for (int i = 0; i < N_KEYS; i++) known |= strcmp(keys[i], key) == 0;
    if (!known) {
        const char *best = closest_name(key, keys, N_KEYS);
        int n = snprintf(msg, len, "unknown setting '%s' for --set", key);
        if (n >= 0 && (size_t)n < len) {
            if (best) snprintf(msg + n, len - (size_t)n, "; did you mean '%s'?", best);
            else {
                n += snprintf(msg + n, len - (size_t)n, "; the settings are");
                for (int i = 0; i < N_KEYS && n >= 0 && (size_t)n < len; i++)
                    n += snprintf(msg + n, len - (size_t)n, " %s", keys[i]);
            }
        }
        return -1;
    }
    char *end;
    double v = strtod(val, &end);
    if (end == val || *end || !isfinite(v)) {
        snprintf(msg, len, "%s must be a number, not '%s'", key, val);
        return -1;
    }
    if (strcmp(key, "keep_best") == 0) { /* 1 or 0; the validation set is train()'s to check */
        if (v != 0 && v != 1) {
            snprintf(msg, len, "keep_best is 1 (keep the best epoch on validation) or 0, not '%s'", val);
            return -1;
        }
        if (v == 1 && t->save_every) {
            snprintf(msg, len,
                     "keep_best=1 with save every %lld: both decide when the --save checkpoint is written; "
                     "add --set save_every=0",
                     (long long)t->save_every);
            return -1;
        }
        t->keep_best = (int)v;
        if (t->keep_best && t->eval_every == 0) t->eval_every = 1; /* as in the train section */
        return 0;
    }
    /* patience=0 and save_every=0 turn early stopping and periodic saving off */
    static const IntKey patience_set = {"patience", 0, 100000000}, save_set = {"save_every", 0, 100000000};
    const IntKey *ik = strcmp(key, "epochs") == 0 ? &epochs_key
        : strcmp(key, "batch") == 0               ? &batch_key
        : strcmp(key, "seed") == 0                ? &seed_key
        : strcmp(key, "eval_every") == 0          ? &eval_key
        : strcmp(key, "patience") == 0            ? &patience_set
        : strcmp(key, "save_every") == 0          ? &save_set
                                                  : NULL;
    if (ik) {
        if (int_range_error(msg, len, key, v, ik->lo, ik->hi)) return -1;
        if (ik == &save_set && v > 0 && t->keep_best) {
            snprintf(msg, len,
                     "save_every with keep best: both decide when the --save checkpoint is written; add "
                     "--set keep_best=0");
            return -1;
        }
        if (ik == &epochs_key) t->epochs = (int64_t)v;
        else if (ik == &batch_key) t->batch = (int)v;
        else if (ik == &seed_key) t->seed = (uint64_t)v;
        else if (ik == &eval_key) t->eval_every = (int64_t)v;
        else if (ik == &patience_set) {
            t->patience = (int64_t)v;
            if (t->patience && t->eval_every == 0) t->eval_every = 1; /* as in the train section */
        } else t->save_every = (int64_t)v;
        return 0;
    }
    /* an optimizer's setting: lr, beta1, beta2, eps, decay or momentum */
    int n;
    const NumKey *ok = optimizer_keys(t->optimizer, &n), *k = NULL;
    for (int i = 0; i < n; i++)
        if (strcmp(ok[i].name, key) == 0) k = &ok[i];
    if (!k) {
        snprintf(msg, len, "%s has no setting '%s'%s", optimizer_names[t->optimizer], key,
                 optimizer_hint(t->optimizer, key));
        return -1;
    }
    if (num_range_error(msg, len, k, v)) return -1;
    *(double *)((char *)t + k->offset) = v;
    return 0;
}

/* ---------------------------------------------------------------------------- across sections */

void check_consistency(Checker *c) {
    Model *m = c->m;
    const TrainSpec *t = &m->train;
    if ((t->patience || t->keep_best) && !data_has_valid(&m->data)) {
#define NO_VALID_FIX                                                                              \
    "and there is no validation set: add a valid part to the split (split train 0.8, valid 0.1, " \
    "test 0.1) or `valid %s = ...` and `valid %s = ...` files to the data block"
        if (t->patience)
            diag_error(c->d, t->patience_loc, "early_stop reads the validation loss, " NO_VALID_FIX, m->input,
                       m->output);
        if (t->keep_best)
            diag_error(c->d, t->keep_best_loc, "keep best reads the validation loss, " NO_VALID_FIX, m->input,
                       m->output);
#undef NO_VALID_FIX
    }
    for (int i = 0; i < m->n_loss; i++) {
        const LossTerm *l = &m->loss[i];
        if (l->kind == LOSS_H1 && m->data.valid_input.kind != SRC_NONE && m->data.valid_jac.kind == SRC_NONE)
            diag_error(c->d, m->data.valid_input.loc,
                       "the validation loss has an h1 term: add `valid d%s/d%s = npy(...)` beside the validation files",
                       m->output, m->input);
        if (l->kind == LOSS_H1 && m->data.jac.kind == SRC_NONE)
            diag_error(c->d, l->loc, "h1 needs Jacobian data: add d%s/d%s = npy(\"J_data.npy\") to the data block",
                       m->output, m->input);
    }
    if (!m->classifier && (m->data.output.kind == SRC_IDX) && !m->data.output.defaulted) {
        /* IDX label files are integer classes: only a classifier can use them. */
        for (int i = 0; i < m->n_loss; i++)
            if (m->loss[i].kind != LOSS_CROSS_ENTROPY) {
                diag_error(c->d, m->data.output.loc,
                           "IDX output data holds integer labels; train it with cross_entropy %s", m->output);
                break;
            }
    }
}
