/* reduced.c - exact training in reduced coordinates (the basis section's fast path), and
 * prediction in reduced coordinates.
 *
 * Input side. When the model's input enters only through encode(m, B) with one orthonormal basis
 * B (E = D, E^T E = I), the network sees z = E^T (m - shift) only, its Jacobian is G E^T, and for
 * every sample (LANGUAGE.md's identity, input side)
 *     ||J - G E^T||_F^2 = ||J E - G||_F^2 + (||J||_F^2 - ||J E||_F^2).
 * So training may run on an inner model whose input is z [rank] (the same statements with each
 * encode(m, B) replaced by the input itself), on data projected once: x_r = E^T (m - shift).
 *
 * Output side (mode OUT_REDUCED). When moreover the output statement is `out = decode(X, B2)`
 * with an orthonormal B2 used nowhere else (a regression model, not a trajectory), the inner
 * network's output h [rank(B2)] is trained against y_r = D^T (q - shift) and J_r = D^T J E
 * [rank(B2), rank(B)], with each sample's discarded parts carried in BASIS_OUT_EXTRA = 2 extra
 * coordinates chosen so that both the error and the norm of every sample are the full space's
 * (runtime/basis_reduced.c has the algebra): data y' = [D^T q; a1; a2] with (a1, a2) the
 * discarded part (I - D D^T) q written in the plane of (I - D D^T) shift and itself, prediction
 * [h + D^T shift; |(I - D D^T) shift|; 0], and Jacobian rows [D^T J E; (|R|, 0...); 0] against
 * [G; 0; 0]. The inner model's output statement keeps its decode, with B2 rewritten as the frozen
 * D' = [I; 0; 0] (rank(B2) + 2 by rank(B2)), shift' = [D^T s; |(I - D D^T) s|; 0]: so
 *     ||q - D h - s||^2 = ||y' - pred'||^2   and   ||q||^2 = ||y'||^2,
 *     ||J - D G E^T||_F^2 = ||J' - G'||_F^2  and   ||J||_F^2 = ||J'||_F^2,
 * per sample, and the loss (l2, h1; relative or not, weights, ramps: all per-sample functions of
 * these four numbers) and the metrics rel_l2 and rel_h1 of the inner training, on the training,
 * validation and test rows, are those of the full space. Why two extra coordinates and not
 * per-sample constants in the loss: the loss is generated code (C and CUDA), and these arrays
 * need no change to it; why not one row holding sqrt(||q||^2 - ||y_r||^2): with a shift that
 * difference can be negative (a sample on the far side of the origin from the shift).
 *
 * Output side only (mode OUT_REDUCED with Plan.full_in: the input used outside encode too, or its
 * basis oblique): the same with E = I, the input as it is, J_r = D^T J [rank(B2), in].
 *
 * Input side only (mode OUT_AUG: Jacobian data, an h1 term or only the rel_h1 metric, and an
 * output `out = decode(X, B2)` whose B2 is oblique, B2 used there only): the output stays full
 * through the decode, whose basis gets a zero row, so the inner output is [q; 0]; the data are
 * y = [q; 0] and J_r = J E with the extra row (sqrt(c), 0, ..., 0), c = ||J (I - E E^T)||_F^2:
 * the squared error gains exactly c, and ||J_r||^2 gains c, which restores ||J||^2 for
 * `relative`. Mode OUT_FULL (no Jacobian data): the output as it is. With Jacobian data and no
 * such decode the full-space graph runs (the rel_h1 metric would not be the full space's).
 * The inner models never take the reduced path themselves (dino_model.is_inner).
 *
 * The inner model's parameters are the outer model's trained parameters, with the same names in
 * the same order (frozen layers last); they are copied in before and out after, with the
 * optimiser moments, the training state and model selection's outcome. The inner spec is the
 * outer spec's text with the input's size, the encode calls, the output's size and the basis
 * lines (as npy files in a scratch folder) rewritten. A validation set is projected with the
 * same bases, so model selection (keep best, early_stop) runs on the inner training with the
 * full space's validation losses; checkpoints are written from the outer model when the runtime
 * would write them (after each evaluation, every save_every epochs, at each new best with keep
 * best, on a stop).
 *
 * Prediction in reduced coordinates (dino_predict_reduced, mode OUT_STRIP): the same rewriting
 * with B2 as the identity of rank(B2) and no shift, so the inner output is h itself and its
 * Jacobian G = dh/dz; the inputs are encoded with the model's bases (any, oblique too), or stay
 * as they are (z = x) when the input is also used outside encode. The inner
 * model is made on the first call and kept with the model (its parameters copied in each call).
 *
 * Nothing here prints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "npy.h"

/* ---------------------------------------------------------------------------- the plan */

typedef enum {
    OUT_FULL,    /* the output and its basis as they are */
    OUT_AUG,     /* the output basis with a zero row: [q; 0], the h1 discarded part in that row */
    OUT_REDUCED, /* both sides reduced: the output basis [I; 0; 0], shift [D^T s; |p|; 0] */
    OUT_STRIP,   /* prediction in reduced coordinates: the output basis the identity, shift 0 */
} OutMode;

typedef struct {
    size_t at, end; /* bytes of the outer source replaced */
    char *text;
} Edit;

typedef struct {
    const Model *m;
    const Source *src;
    int basis;     /* the input basis, or -1 */
    int ok;        /* 1 while the input is only seen through encode(input, basis) */
    int out_basis; /* the output statement is `out = decode(X, B2)`: B2, or -1 */
    int *uses;     /* [n_bases] encode and decode calls of each basis that stay in the inner model */
    int full_in;   /* the input stays full (the output side alone): encode(input, B) stays */
    Edit *edits;
    int n_edits, cap_edits;
} Plan;

static size_t offset_of(const Source *s, int line, int col) { return s->line_start[line - 1] + (size_t)(col - 1); }

static void add_edit(Plan *p, Loc loc, const char *text) {
    if (p->n_edits == p->cap_edits) {
        p->cap_edits = p->cap_edits ? 2 * p->cap_edits : 16;
        p->edits = realloc(p->edits, sizeof(Edit) * (size_t)p->cap_edits);
    }
    p->edits[p->n_edits++] =
        (Edit){offset_of(p->src, loc.line, loc.col), offset_of(p->src, loc.end_line, loc.end_col), strdup(text)};
}

static void walk(Plan *p, const Expr *e) {
    if (!e) return;
    switch (e->kind) {
    case E_NAME:
        if (strcmp(e->str, p->m->input) == 0) p->ok = 0; /* the input outside encode */
        return;
    case E_CALL:
        if (!p->full_in && e->call && e->call->kind == FN_ENCODE && e->args[0].value->kind == E_NAME &&
            strcmp(e->args[0].value->str, p->m->input) == 0) { /* replaced by the input: not a use */
            if (p->basis >= 0 && p->basis != e->call->basis) p->ok = 0;
            p->basis = e->call->basis;
            add_edit(p, e->loc, p->m->input);
            return;
        }
        if (e->call && (e->call->kind == FN_ENCODE || e->call->kind == FN_DECODE) && e->call->basis >= 0)
            p->uses[e->call->basis]++;
        for (int i = 0; i < e->n_args; i++) walk(p, e->args[i].value);
        return;
    case E_LIST:
        for (int i = 0; i < e->n_args; i++) walk(p, e->args[i].value);
        return;
    case E_BINARY: walk(p, e->lhs), walk(p, e->rhs); return;
    case E_NEG: walk(p, e->lhs); return;
    default: return;
    }
}

static void walk_stmts(Plan *p, Stmt **body, int n) {
    for (int i = 0; i < n; i++) {
        const Stmt *s = body[i];
        if (s->kind == S_ASSIGN) walk(p, s->value);
        else if (s->kind == S_ODE) walk(p, s->value), walk_stmts(p, s->body, s->n_body);
    }
}

static void plan_free(Plan *p) {
    for (int i = 0; i < p->n_edits; i++) free(p->edits[i].text);
    free(p->edits);
    free(p->uses);
    memset(p, 0, sizeof *p);
}

/* Walks md's model: the input basis, the encode calls to replace (none when full_in: the input
 * stays full), the output's decode basis. */
static int plan_make(const dino_model *md, Plan *p, int full_in) {
    const Model *m = md->t.m;
    *p = (Plan){.m = m, .src = &md->spec->fe.src, .basis = -1, .ok = 1, .out_basis = -1, .full_in = full_in};
    p->uses = calloc((size_t)(m->n_bases ? m->n_bases : 1), sizeof(int));
    if (!p->uses) return -1;
    walk_stmts(p, m->body, m->n_body);
    for (int i = 0; i < m->n_body; i++) { /* the output statement: `out = decode(X, B2)` */
        const Stmt *s = m->body[i];
        if (s->kind == S_ASSIGN && s->clauses[0].n_items == 1 && s->clauses[0].items[0]->kind == E_NAME &&
            strcmp(s->clauses[0].items[0]->str, m->output) == 0)
            p->out_basis = s->value->kind == E_CALL && s->value->call && s->value->call->kind == FN_DECODE
                ? s->value->call->basis
                : -1;
    }
    return 0;
}

/* Why the input side can't be reduced ("" when it can; orthonormal: the training path's need). */
static void input_why(const dino_model *md, const Plan *p, int orthonormal, char *why, size_t len) {
    const Model *m = md->t.m;
    why[0] = 0;
    if (!p->ok || p->basis < 0) snprintf(why, len, "the input %s is used outside encode(%s, B)", m->input, m->input);
    else if (orthonormal && !md->t.bases.v[p->basis].orthonormal)
        snprintf(why, len, "basis %s is not orthonormal (||E^T D - I|| = %.1e or E != D)", m->bases[p->basis].name,
                 md->t.bases.v[p->basis].orth_err);
}

/* Why the output side can't be reduced ("" when it can). */
static void output_why(const dino_model *md, const Plan *p, int orthonormal, char *why, size_t len) {
    const Model *m = md->t.m;
    why[0] = 0;
    if (m->classifier) snprintf(why, len, "a classifier's logits are not reduced");
    else if (m->trajectory) snprintf(why, len, "a trajectory output is not reduced");
    else if (p->out_basis < 0) snprintf(why, len, "the output statement is not `%s = decode(..., B)`", m->output);
    else if (p->uses[p->out_basis] != 1)
        snprintf(why, len, "basis %s is used %d times, not only in the output's decode", m->bases[p->out_basis].name,
                 p->uses[p->out_basis]);
    else if (orthonormal && !md->t.bases.v[p->out_basis].orthonormal)
        snprintf(why, len, "basis %s is not orthonormal (||E^T D - I|| = %.1e or E != D)", m->bases[p->out_basis].name,
                 md->t.bases.v[p->out_basis].orth_err);
}

/* ---------------------------------------------------------------------------- the inner spec */

static int npy_out(const char *path, int rows, int cols, const double *v) {
    char err[256];
    int64_t shape[2] = {rows, cols};
    return npy_save(path, DT_F64, cols ? 2 : 1, shape, v, err, sizeof err);
}

/* Basis i's matrices as the inner model sees them in mode (see OutMode), into npy files of dir,
 * and the edit of its line. Returns 0, or -1. */
static int write_basis(const dino_model *md, Plan *p, int i, OutMode mode, const char *dir) {
    const BasisValues *v = &md->t.bases.v[i];
    int out = i == p->out_basis && mode != OUT_FULL;
    int rows = !out ? v->dim : mode == OUT_AUG ? v->dim + 1 : mode == OUT_REDUCED ? v->rank + BASIS_OUT_EXTRA : v->rank;
    size_t cells = (size_t)rows * (size_t)v->rank;
    double *d = calloc(cells, sizeof(double)), *e = calloc(cells, sizeof(double)),
           *sh = calloc((size_t)rows + BASIS_OUT_EXTRA, sizeof(double));
    int bad = !d || !e || !sh;
    if (!bad && (!out || mode == OUT_AUG)) { /* as they are (OUT_AUG: and a zero last row) */
        memcpy(d, v->D, sizeof(double) * (size_t)v->dim * (size_t)v->rank);
        memcpy(e, v->E, sizeof(double) * (size_t)v->dim * (size_t)v->rank);
        memcpy(sh, v->shift, sizeof(double) * (size_t)v->dim);
    } else if (!bad) { /* [I; 0; 0] or I */
        for (int k = 0; k < v->rank; k++) d[(size_t)k * (size_t)v->rank + (size_t)k] = 1;
        memcpy(e, d, sizeof(double) * cells);
        if (mode == OUT_REDUCED) bad = basis_out_shift(v, sh) != 0;
    }
    char D[4200], E[4200], S[4200];
    snprintf(D, sizeof D, "%s/b%d_D.npy", dir, i);
    snprintf(E, sizeof E, "%s/b%d_E.npy", dir, i);
    snprintf(S, sizeof S, "%s/b%d_s.npy", dir, i);
    bad = bad || npy_out(D, rows, v->rank, d) || npy_out(E, rows, v->rank, e) || npy_out(S, rows, 0, sh);
    free(d), free(e), free(sh);
    if (bad) return -1;
    char line[13000];
    snprintf(line, sizeof line, "npy(decoder = \"%s\", encoder = \"%s\", shift = \"%s\")", D, E, S);
    add_edit(p, md->t.m->bases[i].call_loc, line);
    return 0;
}

/* The inner spec's text for mode (p from plan_make, consumed), or NULL (why says why). */
static char *inner_text(const dino_model *md, Plan *p, OutMode mode, const char *dir, char *why, size_t whylen) {
    const Model *m = md->t.m;
    const Source *src = p->src;
    int out_rows = mode == OUT_AUG ? m->out_dim + 1
        : mode == OUT_REDUCED      ? m->bases[p->out_basis].rank + BASIS_OUT_EXTRA
        : mode == OUT_STRIP        ? m->bases[p->out_basis].rank
                                   : m->out_dim;
    for (int i = 0; i < m->n_body; i++) { /* input and output sizes */
        const Stmt *s = m->body[i];
        char num[32];
        if (s->kind == S_INPUT && !p->full_in)
            snprintf(num, sizeof num, "%d", m->bases[p->basis].rank), add_edit(p, s->size->loc, num);
        if (s->kind == S_OUTPUT && mode != OUT_FULL)
            snprintf(num, sizeof num, "%d", out_rows), add_edit(p, s->size->loc, num);
    }
    for (int i = 0; i < m->n_bases; i++) /* every basis as npy files */
        if (write_basis(md, p, i, mode, dir)) {
            snprintf(why, whylen, "cannot write the bases to %s", dir);
            return NULL;
        }
    /* the edits applied, in source order */
    for (int i = 1; i < p->n_edits; i++)
        for (int j = i; j > 0 && p->edits[j].at < p->edits[j - 1].at; j--) {
            Edit t = p->edits[j];
            p->edits[j] = p->edits[j - 1], p->edits[j - 1] = t;
        }
    size_t len = src->len + 1;
    for (int i = 0; i < p->n_edits; i++) len += strlen(p->edits[i].text);
    char *out = malloc(len);
    size_t at = 0, w = 0;
    for (int i = 0; out && i < p->n_edits; i++) {
        memcpy(out + w, src->text + at, p->edits[i].at - at), w += p->edits[i].at - at;
        size_t tl = strlen(p->edits[i].text);
        memcpy(out + w, p->edits[i].text, tl), w += tl;
        at = p->edits[i].end;
    }
    if (out) memcpy(out + w, src->text + at, src->len - at), w += src->len - at, out[w] = 0;
    return out;
}

static void scratch_remove(const char *dir, int n_bases) {
    for (int i = 0; i < n_bases; i++) {
        char f[4200];
        static const char *const parts[3] = {"D", "E", "s"};
        for (int k = 0; k < 3; k++) snprintf(f, sizeof f, "%s/b%d_%s.npy", dir, i, parts[k]), unlink(f);
    }
    rmdir(dir);
}

/* The inner model of mode, opened on md's backend and precision, its bases read. */
static dino_status inner_open(dino_model *md, Plan *p, OutMode mode, const char *dir, dino_spec **spec,
                              dino_model **inner, char *why, size_t whylen) {
    const Model *m = md->t.m;
    char *text = inner_text(md, p, mode, dir, why, whylen);
    if (!text) return DINO_EUSER;
    dino_status st = DINO_OK;
    if (dino_spec_from_text(m->path, text, strlen(text), spec) || !(*spec)->ok)
        st = api_fail(DINO_EINTERNAL, 0, "the reduced model's spec does not check: %s",
                      *spec ? dino_spec_diagnostics_text(*spec) : dino_last_error());
    free(text);
    if (st) return st;
    (*spec)->fe.model->train = m->train; /* --set, --epochs, --precision as given */
    dino_open_options oo = {.backend = md->kind, .precision = m->train.f64 ? DINO_PRECISION_F64 : DINO_PRECISION_F32};
    if ((st = dino_model_open(*spec, &oo, inner))) return st;
    (*inner)->is_inner = 1;
    if (model_trainable((*inner)->t.m) != model_trainable(m))
        return api_fail(DINO_EINTERNAL, 0, "the reduced model has %lld trained parameters, the model %lld",
                        (long long)model_trainable((*inner)->t.m), (long long)model_trainable(m));
    return DINO_OK;
}

/* ---------------------------------------------------------------------------- projected data */

enum { PROJECT_BLOCK = 64 }; /* samples: the f64 scratch of a block is 64 x rows x rank doubles */

/* d projected for mode into dst, a set of the inner model (its precision), named which: OUT_REDUCED
 * the output side (rows = rank(B2) + 2) and the input side (vin NULL: the input as it is), else
 * the input side with aug extra rows (rows = out + aug). In blocks of PROJECT_BLOCK samples:
 * each block projected in f64 into scratch arrays, then converted into dst's rows (checked as
 * dino_data_from_arrays checks), so no f64 copy of the whole projection is held. A sample's
 * projection does not depend on the block it falls in (basis.h), so the values are those of one
 * projection of the whole set. */
static dino_status project(const dino_model *inner, const Dataset *d, const BasisValues *vin, const BasisValues *vout,
                           OutMode mode, int aug, Dataset *dst, const char *which) {
    int r = vin ? vin->rank : d->in, rows = mode == OUT_REDUCED ? vout->rank + BASIS_OUT_EXTRA : d->out + aug;
    ApiSetFill f;
    dino_status st = api_set_begin(&f, inner, d->n, d->y != NULL, d->J != NULL, d->label, dst, which);
    if (st || d->n == 0) return st;
    int64_t B = d->n < PROJECT_BLOCK ? d->n : PROJECT_BLOCK;
    double *x = malloc(sizeof(double) * (size_t)B * (size_t)r);
    double *y = d->y ? malloc(sizeof(double) * (size_t)B * (size_t)rows) : NULL; /* NULL: labels */
    double *J = d->J ? calloc((size_t)B * (size_t)rows * (size_t)r, sizeof(double)) : NULL;
    int bad = !x || (d->y && !y) || (d->J && !J);
    size_t es = d->f64 ? sizeof(double) : sizeof(float);
    for (int64_t r0 = 0; !bad && !st && r0 < d->n; r0 += B) {
        int64_t b = d->n - r0 < B ? d->n - r0 : B;
        if (mode == OUT_REDUCED) {
            bad = basis_project_both(vin, vout, d, r0, b, x, y, J) != 0;
        } else { /* rows r0 .. r0 + b of d, in place */
            Dataset view = {.n = b, .in = d->in, .out = d->out, .f64 = d->f64, .classifier = d->classifier};
            view.x = (char *)d->x + es * (size_t)(r0 * d->in);
            if (d->y) view.y = (char *)d->y + es * (size_t)(r0 * d->out);
            if (d->J) view.J = (char *)d->J + es * (size_t)(r0 * d->out * d->in);
            bad = basis_project(vin, &view, aug, x, y, J) != 0;
        }
        if (!bad) st = api_set_rows(&f, r0, b, x, y, J);
    }
    free(x), free(y), free(J);
    if (bad && !st) {
        data_free(dst);
        st = api_fail(DINO_EUSER, 0, "out of memory projecting the data into the reduced basis");
    }
    return st ? st : api_set_end(&f);
}

/* The inner data: the three sets projected straight into the inner model's sets. Each set's
 * full-space rows are released (when its owner allowed it) as soon as they are projected: the
 * loss, the validation losses and the test metrics come from the projected rows, exactly. */
static dino_status project_data(dino_model *inner, const dino_data *data, const BasisValues *vin,
                                const BasisValues *vout, OutMode mode, int aug, dino_data **rd) {
    dino_data *d = calloc(1, sizeof *d);
    if (!d) return api_fail(DINO_EUSER, 0, "out of memory projecting the data into the reduced basis");
    d->model = inner;
    dino_status st = project(inner, &data->train, vin, vout, mode, aug, &d->train, "training");
    if (!st) api_data_release(data, DINO_SET_TRAIN);
    if (!st) st = project(inner, &data->test, vin, vout, mode, aug, &d->test, "test");
    if (!st) api_data_release(data, DINO_SET_TEST);
    if (!st) st = project(inner, &data->valid, vin, vout, mode, aug, &d->valid, "validation");
    if (!st) api_data_release(data, DINO_SET_VALID);
    if (st) {
        dino_data_free(d);
        return st;
    }
    *rd = d;
    return DINO_OK;
}

/* ---------------------------------------------------------------------------- training */

/* Copies the trained parameters, the optimiser and the state from a to b (same prefix). */
static void copy_training(Trainer *from, Trainer *to, int64_t n) {
    memcpy(to->P, from->P, from->es * (size_t)n);
    if (from->opt.m && to->opt.m) memcpy(to->opt.m, from->opt.m, from->es * (size_t)n);
    if (from->opt.v && to->opt.v) memcpy(to->opt.v, from->opt.v, from->es * (size_t)n);
    to->opt.step = from->opt.step;
    to->state = from->state;
    to->rng = from->rng;
    to->stopped_early = from->stopped_early;
    to->best_restored = from->best_restored;
}

/* The inner model's state into the outer one (pull, copy, push). */
static dino_status sync_back(dino_model *outer, dino_model *inner) {
    if (inner->t.backend->pull(inner->t.backend)) return api_fail(DINO_EINTERNAL, 0, "%s", inner->t.backend->err);
    copy_training(&inner->t, &outer->t, model_trainable(outer->t.m));
    if (outer->t.backend->push(outer->t.backend)) return api_fail(DINO_EINTERNAL, 0, "%s", outer->t.backend->err);
    return DINO_OK;
}

/* What the inner training's callbacks reach: the caller's, and the outer model to save. */
typedef struct {
    const dino_train_options *o;
    dino_model *outer, *inner;
    dino_status save_st; /* a failed checkpoint (the training stops) */
    char save_err[1024]; /* its message */
    int best_saved;      /* keep best: the checkpoint holds the best epoch */
} Relay;

/* The inner training's callbacks pass on to the caller's; its bases (the outer ones, already
 * reported) are not reported again. */
static void inner_message(dino_message_level level, const char *text, void *user) {
    const Relay *r = user;
    if (strncmp(text, "basis ", 6) == 0 || strncmp(text, "reduced bases:", 14) == 0) return;
    if (r->o->on_message) r->o->on_message(level, text, r->o->user);
}

/* After each inner epoch: the checkpoint when the runtime (train.c) would write one: keep best
 * at each new best; else at each evaluation, or every save_every epochs and at the last. */
static int inner_epoch(const dino_epoch *e, void *user) {
    Relay *r = user;
    int stop = r->o->on_epoch ? r->o->on_epoch(e, r->o->user) : 0;
    if (!r->o->save) return stop;
    const TrainSpec *ts = &r->outer->t.m->train;
    int last = e->epoch == e->epochs || e->epoch == r->o->until || e->early_stop;
    int eval_now = last || (ts->eval_every > 0 && e->epoch % ts->eval_every == 0);
    int due = ts->keep_best ? e->improved : ts->save_every > 0 ? e->epoch % ts->save_every == 0 || last : eval_now;
    if (!due) return stop;
    if ((r->save_st = sync_back(r->outer, r->inner)) || (r->save_st = dino_model_save(r->outer, r->o->save))) {
        snprintf(r->save_err, sizeof r->save_err, "%s", dino_last_error());
        return 1;
    }
    if (ts->keep_best) r->best_saved = 1;
    return stop;
}

static void inner_progress(long long epoch, long long step, long long steps, void *user) {
    const Relay *r = user;
    r->o->on_progress(epoch, step, steps, r->o->user);
}

int reduced_may_run(const dino_model *md) {
    const Model *m = md->t.m;
    const char *env = getenv("DINO_REDUCED");
    if (md->is_inner || m->n_bases == 0 || md->t.state.epoch >= m->train.epochs || (env && strcmp(env, "0") == 0))
        return 0;
    /* reduced_train's choice of a path without the bases' values (orthonormal or not) and the
     * data (Jacobians or not): yes when some path may be taken */
    int h1 = 0, may = 0;
    for (int i = 0; i < m->n_loss; i++) h1 |= m->loss[i].kind == LOSS_H1;
    char why[1200], why_out[512];
    Plan p;
    if (plan_make(md, &p, 0)) return 0;
    input_why(md, &p, 0, why, sizeof why);
    if (!why[0]) {
        output_why(md, &p, 0, why_out, sizeof why_out);
        may = !why_out[0] || !h1 || (p.out_basis >= 0 && p.uses[p.out_basis] == 1);
    } else {
        plan_free(&p);
        if (plan_make(md, &p, 1)) return 0;
        output_why(md, &p, 0, why_out, sizeof why_out);
        may = !why_out[0];
    }
    plan_free(&p);
    return may;
}

int reduced_train(dino_model *md, const dino_data *data, const dino_train_options *opts, dino_status *status) {
    Trainer *t = &md->t;
    const Model *m = t->m;
    if (md->is_inner || m->n_bases == 0 || !basis_set_ready(&t->bases, m) || t->state.epoch >= m->train.epochs)
        return 0;
    if (getenv("DINO_REDUCED") && strcmp(getenv("DINO_REDUCED"), "0") == 0) {
        if (opts->on_message)
            opts->on_message(DINO_MESSAGE_NOTE,
                             "reduced bases: DINO_REDUCED=0: the frozen encode/decode layers run in "
                             "the full-space graph",
                             opts->user);
        return 0;
    }
    char dir[] = "/tmp/dino_reduced.XXXXXX", why[1200] = "", why_out[512] = "", why_in[1200] = "";
    if (!mkdtemp(dir)) return 0;
    int h1 = 0;
    for (int i = 0; i < m->n_loss; i++) h1 |= m->loss[i].kind == LOSS_H1;
    /* Jacobian data (an h1 term, or just the rel_h1 metric) need the discarded part of J too */
    int jac = h1 || data->train.J || data->valid.J || data->test.J;
    /* which path: both sides, the input side (with the h1 row), or the full-space graph */
    Plan p;
    OutMode mode = OUT_FULL;
    int usable = plan_make(md, &p, 0) == 0;
    if (usable) input_why(md, &p, 1, why, sizeof why);
    if (usable && why[0]) { /* the input stays full: the output side alone, when it can be */
        Plan q;
        if (plan_make(md, &q, 1) == 0) {
            output_why(md, &q, 1, why_out, sizeof why_out);
            if (!why_out[0]) {
                plan_free(&p);
                p = q, mode = OUT_REDUCED;
                snprintf(why_in, sizeof why_in, "%s", why); /* why the input stays full */
                why[0] = 0;
            } else { /* neither side: say both */
                plan_free(&q);
                size_t n = strlen(why);
                snprintf(why + n, sizeof why - n, "; and the output %s can't be reduced: %s", m->output, why_out);
                why_out[0] = 0;
            }
        }
    } else if (usable) {
        output_why(md, &p, 1, why_out, sizeof why_out);
        const char *need = h1 ? "an h1 term needs" : "the Jacobian data (rel_h1) need";
        if (!why_out[0]) mode = OUT_REDUCED;
        else if (jac && p.out_basis >= 0 && p.uses[p.out_basis] == 1) mode = OUT_AUG; /* its basis gets a row */
        else if (jac && p.out_basis >= 0)
            snprintf(why, sizeof why, "%s the output's basis %s in its decode only (%s)", need,
                     m->bases[p.out_basis].name, why_out);
        else if (jac) snprintf(why, sizeof why, "%s the output to be `%s = decode(..., B)`", need, m->output);
    }
    dino_status st = DINO_OK;
    dino_spec *spec = NULL;
    dino_model *inner = NULL;
    dino_data *rd = NULL;
    int taken = 0, aug = mode == OUT_AUG;
    if (!usable || why[0]) {
        if (opts->on_message) {
            char line[1400];
            snprintf(line, sizeof line,
                     "reduced bases: the frozen encode/decode layers run in the full-space graph, "
                     "not in reduced coordinates: %s",
                     why[0] ? why : "out of memory");
            opts->on_message(DINO_MESSAGE_NOTE, line, opts->user);
        }
        goto done;
    }
    taken = 1;
    if ((st = inner_open(md, &p, mode, dir, &spec, &inner, why, sizeof why))) {
        if (why[0]) st = api_fail(DINO_EUSER, 0, "%s", why);
        goto done;
    }
    const BasisValues *vin = p.full_in ? NULL : &t->bases.v[p.basis],
                      *vout = p.out_basis >= 0 ? &t->bases.v[p.out_basis] : NULL;
    int train_jac = data->train.J != NULL; /* (project_data may release the rows) */
    if ((st = project_data(inner, data, vin, vout, mode, aug, &rd))) goto done;
    /* the inner model's bases (npy files) and frozen layers, then the trained state copied in */
    Relay relay = {.o = opts, .outer = md, .inner = inner};
    dino_train_options io = *opts;
    io.save = NULL;
    io.user = &relay;
    io.on_message = opts->on_message ? inner_message : NULL;
    io.on_epoch = inner_epoch;
    io.on_progress = opts->on_progress ? inner_progress : NULL;
    if ((st = dino_model_bases(inner, rd, &io))) goto done;
    if ((st = t->backend->pull(t->backend))) {
        st = api_fail(st, 0, "%s", t->backend->err);
        goto done;
    }
    copy_training(t, &inner->t, model_trainable(m));
    if ((st = inner->t.backend->push(inner->t.backend))) {
        st = api_fail(st, 0, "%s", inner->t.backend->err);
        goto done;
    }
    if (opts->on_message) {
        char line[3000], side[700] = "", tail[700] = "", in_side[1400];
        int r1 = p.full_in ? m->in_dim : m->bases[p.basis].rank;
        if (mode == OUT_REDUCED) {
            int r2 = m->bases[p.out_basis].rank;
            snprintf(side, sizeof side,
                     ", %s [%d] -> [%d] (basis %s; %d more coordinates hold each sample's discarded part)%s", m->output,
                     m->out_dim, r2, m->bases[p.out_basis].name, BASIS_OUT_EXTRA,
                     train_jac ? arena_printf(&md->spec->fe.arena, ", Jacobians [%d x %d] -> [%d x %d]", m->out_dim,
                                              m->in_dim, r2 + BASIS_OUT_EXTRA, r1)
                               : "");
        } else if (aug) {
            snprintf(side, sizeof side, ", Jacobians [%d x %d] -> [%d x %d] (the discarded part in one extra row)",
                     m->out_dim, m->in_dim, m->out_dim + 1, r1);
        }
        if (mode != OUT_REDUCED && why_out[0])
            snprintf(tail, sizeof tail, "the output %s stays full (%s); ", m->output, why_out);
        if (p.full_in)
            snprintf(in_side, sizeof in_side, "the input %s [%d] stays full (%s)", m->input, m->in_dim, why_in);
        else
            snprintf(in_side, sizeof in_side, "%s [%d] -> [%d] (basis %s)", m->input, m->in_dim, r1,
                     m->bases[p.basis].name);
        snprintf(line, sizeof line,
                 "reduced bases: exact training in reduced coordinates: %s%s, projected once at load%s; %sloss and "
                 "metrics are the full space's",
                 in_side, side, data->valid.n > 0 ? " (the validation rows too)" : "", tail);
        opts->on_message(DINO_MESSAGE_NOTE, line, opts->user);
    }
    inner->stop_also = &md->stop; /* dino_request_stop(md) (a signal) stops the inner training */
    dino_status tst = dino_train(inner, rd, &io);
    /* the trained state back into the model, whatever happened (a stop keeps what was done) */
    dino_status bst = sync_back(md, inner);
    if (relay.save_st) { /* the inner training stopped for it: its message, not "stopped" */
        st = api_fail(relay.save_st, 0, "%s", relay.save_err);
        goto done;
    }
    if (bst) st = bst;
    if (tst) {
        st = tst;
        /* a stop: the checkpoint holds the last state, unless keep best already wrote the best */
        if (opts->save && tst == DINO_STOPPED && !relay.best_saved) dino_model_save(md, opts->save);
        goto done;
    }
    if (st == DINO_OK && opts->save) st = dino_model_save(md, opts->save);
done:
    dino_data_free(rd);
    dino_model_free(inner);
    dino_spec_free(spec);
    plan_free(&p);
    scratch_remove(dir, m->n_bases);
    *status = st;
    return taken;
}

/* ---------------------------------------------------------------------------- prediction */

struct ReducedPredictor {
    dino_spec *spec;
    dino_model *inner;
    int in_basis, out_basis;
};

void reduced_free(dino_model *md) {
    if (!md->reduced) return;
    dino_model_free(md->reduced->inner);
    dino_spec_free(md->reduced->spec);
    free(md->reduced);
    md->reduced = NULL;
}

/* Whether md has the structure prediction in reduced coordinates needs (encode of the input,
 * decode to the output): the two bases, or DINO_EUSER saying why not. */
static dino_status reduced_path(dino_model *md, int *in_basis, int *out_basis) {
    const Model *m = md->t.m;
    if (m->n_bases == 0)
        return api_fail(DINO_EUSER, 0, "model %s has no reduced path: it has no basis section (encode/decode)",
                        m->name);
    Plan p;
    if (plan_make(md, &p, 0)) return api_fail(DINO_EUSER, 0, "out of memory");
    char why[512], why_out[512];
    input_why(md, &p, 0, why, sizeof why);
    if (why[0]) { /* the input stays full: z = x */
        plan_free(&p);
        if (plan_make(md, &p, 1)) return api_fail(DINO_EUSER, 0, "out of memory");
    }
    output_why(md, &p, 0, why_out, sizeof why_out);
    *in_basis = why[0] ? -1 : p.basis, *out_basis = p.out_basis;
    plan_free(&p);
    if (why_out[0])
        return api_fail(DINO_EUSER, 0,
                        "model %s has no reduced path: %s (prediction in reduced coordinates needs `%s = "
                        "decode(..., B2)` as the output, and reduces the input too when `z = encode(%s, B)` is its "
                        "only use)",
                        m->name, why_out, m->output, m->input);
    return DINO_OK;
}

/* md's predictor in reduced coordinates, made on first use. */
static dino_status predictor(dino_model *md, ReducedPredictor **out) {
    const Model *m = md->t.m;
    if (md->reduced) return *out = md->reduced, DINO_OK;
    int in_basis, out_basis;
    dino_status st = reduced_path(md, &in_basis, &out_basis);
    if (st) return st;
    if (!basis_set_ready(&md->t.bases, m))
        return api_fail(DINO_EUSER, 0,
                        "model %s: the bases have no values yet (train it, load a checkpoint that holds them, or "
                        "call dino_model_bases)",
                        m->name);
    Plan p;
    if (plan_make(md, &p, in_basis < 0)) return api_fail(DINO_EUSER, 0, "out of memory");
    ReducedPredictor *rp = calloc(1, sizeof *rp);
    char dir[] = "/tmp/dino_reduced.XXXXXX", why[512] = "";
    st = !rp            ? api_fail(DINO_EUSER, 0, "out of memory")
        : !mkdtemp(dir) ? api_fail(DINO_EUSER, 0, "cannot make a scratch folder in /tmp")
                        : DINO_OK;
    if (!st) {
        rp->in_basis = in_basis, rp->out_basis = out_basis;
        st = inner_open(md, &p, OUT_STRIP, dir, &rp->spec, &rp->inner, why, sizeof why);
        if (st && why[0]) st = api_fail(DINO_EUSER, 0, "%s", why);
        dino_data *none = NULL; /* the bases come from the npy files: no rows needed */
        if (!st) st = dino_data_from_arrays(rp->inner, NULL, NULL, &none);
        if (!st) st = dino_model_bases(rp->inner, none, NULL);
        dino_data_free(none);
        scratch_remove(dir, m->n_bases);
    }
    plan_free(&p);
    if (st) {
        if (rp) dino_model_free(rp->inner), dino_spec_free(rp->spec);
        free(rp);
        return st;
    }
    *out = md->reduced = rp;
    return DINO_OK;
}

dino_status dino_model_reduced_dims(dino_model *md, int *rank_in, int *rank_out) {
    int in_basis, out_basis;
    dino_status st = reduced_path(md, &in_basis, &out_basis);
    if (st) return st;
    if (rank_in) *rank_in = in_basis < 0 ? md->t.m->in_dim : md->t.m->bases[in_basis].rank;
    if (rank_out) *rank_out = md->t.m->bases[out_basis].rank;
    return DINO_OK;
}

dino_status dino_predict_reduced(dino_model *md, long long n, const double *x, double *h, double *G) {
    const Model *m = md->t.m;
    ReducedPredictor *rp;
    dino_status st = predictor(md, &rp);
    if (st) return st;
    if (n < 0 || (n > 0 && (!x || !h))) return api_fail(DINO_EUSER, 0, "dino_predict_reduced needs n >= 0, x and h");
    if (n == 0) return DINO_OK;
    if ((st = api_finite_input(x, 1, n, m->in_dim))) return st;
    /* the current parameters (training may have changed them since the last call) */
    Trainer *t = &md->t, *it = &rp->inner->t;
    if (t->backend->pull(t->backend)) return api_fail(DINO_EINTERNAL, 0, "%s", t->backend->err);
    memcpy(it->P, t->P, t->es * (size_t)model_trainable(m));
    if (it->backend->push(it->backend)) return api_fail(DINO_EINTERNAL, 0, "%s", it->backend->err);
    if (rp->in_basis < 0) return dino_predict(rp->inner, n, x, h, G); /* the input stays full: z = x */
    const BasisValues *v = &t->bases.v[rp->in_basis];
    double *z = malloc(sizeof(double) * (size_t)n * (size_t)v->rank);
    if (!z) return api_fail(DINO_EUSER, 0, "out of memory predicting %lld rows", n);
    basis_encode_rows(v, n, x, z);
    st = dino_predict(rp->inner, n, z, h, G);
    free(z);
    return st;
}
