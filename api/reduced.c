/* reduced.c - exact training in reduced input coordinates (the basis section's fast path).
 *
 * When the model's input enters only through encode(m, B) with one orthonormal basis B (E = D,
 * E^T E = I), the network sees z = E^T (m - shift) only, its Jacobian is G E^T, and for every
 * sample (LANGUAGE.md's identity, input side)
 *     ||J - G E^T||_F^2 = ||J E - G||_F^2 + (||J||_F^2 - ||J E||_F^2).
 * So training may run on an inner model whose input is z [rank] (the same statements with each
 * encode(m, B) replaced by the input itself), on data projected once: x_r = E^T (m - shift),
 * J_r = J E [out, rank] (runtime/basis.c, basis_project). With an h1 term the discarded part
 * c = ||J (I - E E^T)||_F^2 of each sample goes into one extra output row: the output statement
 * must be `out = decode(..., B2)`, and the inner model's B2 gets a zero row, so its output is
 * [q; 0]; the data are y = [q; 0] and J_r with the extra row (sqrt(c), 0, ..., 0). The
 * prediction's extra row is constant, so its Jacobian row is 0: the squared error gains exactly
 * c, and ||J_r||^2 gains c, which restores ||J||^2 for `relative`. The loss, the relative terms
 * and the test metrics of the inner training are then those of the full space.
 *
 * The inner model's parameters are the outer model's trained parameters, with the same names in
 * the same order (frozen layers last); they are copied in before and out after, with the
 * optimiser moments and the training state. The inner spec is the outer spec's text with the
 * input's size, the encode calls, the output's size and the basis lines (as npy files in a
 * scratch folder) rewritten. A validation set keeps the full-space graph (model selection runs
 * on the outer model). Nothing here prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "npy.h"

typedef struct {
    size_t at, end; /* bytes of the outer source replaced */
    char *text;
} Edit;

typedef struct {
    const Model *m;
    const Source *src;
    int basis; /* the input basis, or -1 */
    int ok;    /* 1 while the input is only seen through encode(input, basis) */
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
    if (!e || !p->ok) return;
    switch (e->kind) {
    case E_NAME:
        if (strcmp(e->str, p->m->input) == 0) p->ok = 0; /* the input outside encode */
        return;
    case E_CALL:
        if (e->call && e->call->kind == FN_ENCODE && e->args[0].value->kind == E_NAME &&
            strcmp(e->args[0].value->str, p->m->input) == 0) {
            if (p->basis >= 0 && p->basis != e->call->basis) p->ok = 0;
            p->basis = e->call->basis;
            add_edit(p, e->loc, p->m->input);
            return;
        }
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

static int npy_out(const char *path, int rows, int cols, const double *v) {
    char err[256];
    int64_t shape[2] = {rows, cols};
    return npy_save(path, DT_F64, cols ? 2 : 1, shape, v, err, sizeof err);
}

/* The inner spec's text, or NULL when the model can't take this path (why says why). */
static char *inner_text(const dino_model *md, const char *dir, int *aug, char *why, size_t whylen) {
    const Model *m = md->t.m;
    const Source *src = &md->spec->fe.src;
    Plan p = {.m = m, .src = src, .basis = -1, .ok = 1};
    char *out = NULL;
    walk_stmts(&p, m->body, m->n_body);
    if (!p.ok || p.basis < 0) {
        snprintf(why, whylen, "the input %s is used outside encode(%s, B)", m->input, m->input);
        goto done;
    }
    const BasisValues *bv = &md->t.bases.v[p.basis];
    if (!bv->orthonormal) {
        snprintf(why, whylen, "basis %s is not orthonormal (||E^T D - I|| = %.1e or E != D)", m->bases[p.basis].name,
                 bv->orth_err);
        goto done;
    }
    int h1 = 0;
    for (int i = 0; i < m->n_loss; i++) h1 |= m->loss[i].kind == LOSS_H1;
    *aug = h1;
    /* the output statement must be `out = decode(..., B)` to take the extra row */
    const Stmt *out_stmt = NULL;
    for (int i = 0; i < m->n_body; i++) {
        const Stmt *s = m->body[i];
        if (s->kind == S_ASSIGN && s->clauses[0].n_items == 1 && s->clauses[0].items[0]->kind == E_NAME &&
            strcmp(s->clauses[0].items[0]->str, m->output) == 0)
            out_stmt = s;
    }
    int out_basis = -1;
    if (h1) {
        if (!out_stmt || out_stmt->value->kind != E_CALL || !out_stmt->value->call ||
            out_stmt->value->call->kind != FN_DECODE) {
            snprintf(why, whylen, "an h1 term needs the output to be `%s = decode(..., B)`", m->output);
            goto done;
        }
        out_basis = out_stmt->value->call->basis;
    }
    /* input and output sizes */
    for (int i = 0; i < m->n_body; i++) {
        const Stmt *s = m->body[i];
        char num[32];
        if (s->kind == S_INPUT)
            snprintf(num, sizeof num, "%d", m->bases[p.basis].rank), add_edit(&p, s->size->loc, num);
        if (s->kind == S_OUTPUT && h1) snprintf(num, sizeof num, "%d", m->out_dim + 1), add_edit(&p, s->size->loc, num);
    }
    /* every basis as npy files: the output basis with a zero row when augmented */
    for (int i = 0; i < m->n_bases; i++) {
        const BasisValues *v = &md->t.bases.v[i];
        char D[4200], E[4200], S[4200];
        snprintf(D, sizeof D, "%s/b%d_D.npy", dir, i);
        snprintf(E, sizeof E, "%s/b%d_E.npy", dir, i);
        snprintf(S, sizeof S, "%s/b%d_s.npy", dir, i);
        int rows = v->dim + (i == out_basis);
        double *d = calloc((size_t)rows * (size_t)v->rank, sizeof(double)),
               *e = calloc((size_t)rows * (size_t)v->rank, sizeof(double));
        double *sh = calloc((size_t)rows, sizeof(double));
        int bad = !d || !e || !sh;
        if (!bad) {
            memcpy(d, v->D, sizeof(double) * (size_t)v->dim * (size_t)v->rank);
            memcpy(e, v->E, sizeof(double) * (size_t)v->dim * (size_t)v->rank);
            memcpy(sh, v->shift, sizeof(double) * (size_t)v->dim);
            bad = npy_out(D, rows, v->rank, d) || npy_out(E, rows, v->rank, e) || npy_out(S, rows, 0, sh);
        }
        free(d), free(e), free(sh);
        if (bad) {
            snprintf(why, whylen, "cannot write the bases to %s", dir);
            goto done;
        }
        char line[13000];
        snprintf(line, sizeof line, "npy(decoder = \"%s\", encoder = \"%s\", shift = \"%s\")", D, E, S);
        add_edit(&p, m->bases[i].call_loc, line);
    }
    /* apply the edits, in source order */
    for (int i = 1; i < p.n_edits; i++)
        for (int j = i; j > 0 && p.edits[j].at < p.edits[j - 1].at; j--) {
            Edit t = p.edits[j];
            p.edits[j] = p.edits[j - 1], p.edits[j - 1] = t;
        }
    size_t len = src->len + 1;
    for (int i = 0; i < p.n_edits; i++) len += strlen(p.edits[i].text);
    out = malloc(len);
    size_t at = 0, w = 0;
    for (int i = 0; out && i < p.n_edits; i++) {
        memcpy(out + w, src->text + at, p.edits[i].at - at), w += p.edits[i].at - at;
        size_t tl = strlen(p.edits[i].text);
        memcpy(out + w, p.edits[i].text, tl), w += tl;
        at = p.edits[i].end;
    }
    if (out) memcpy(out + w, src->text + at, src->len - at), w += src->len - at, out[w] = 0;
done:
    for (int i = 0; i < p.n_edits; i++) free(p.edits[i].text);
    free(p.edits);
    return out;
}

/* Projected arrays of one set: x_r [n, r], y [n, out + aug], J_r [n, out + aug, r]. */
typedef struct {
    double *x, *y, *J;
} Projected;

static int project(const Dataset *d, const BasisValues *v, int out, int in, int aug, Projected *pr) {
    int r = v->rank, oa = out + aug;
    int64_t n = d->n > 0 ? d->n : 1;
    (void)in;
    pr->x = malloc(sizeof(double) * (size_t)n * (size_t)r);
    pr->y = d->y ? malloc(sizeof(double) * (size_t)n * (size_t)oa) : NULL; /* NULL: labels */
    pr->J = d->J ? calloc((size_t)n * (size_t)oa * (size_t)r, sizeof(double)) : NULL;
    if (!pr->x || (d->y && !pr->y) || (d->J && !pr->J)) return -1;
    return basis_project(v, d, aug, pr->x, pr->y, pr->J);
}

/* The inner training's callbacks pass on to the caller's; its bases (the outer ones, already
 * reported) are not reported again. */
static void inner_message(dino_message_level level, const char *text, void *user) {
    const dino_train_options *o = user;
    if (strncmp(text, "basis ", 6) == 0 || strncmp(text, "reduced bases:", 14) == 0) return;
    o->on_message(level, text, o->user);
}

static int inner_epoch(const dino_epoch *e, void *user) {
    const dino_train_options *o = user;
    return o->on_epoch(e, o->user);
}

static void inner_progress(long long epoch, long long step, long long steps, void *user) {
    const dino_train_options *o = user;
    o->on_progress(epoch, step, steps, o->user);
}

/* Copies the trained parameters, the optimiser and the state from a to b (same prefix). */
static void copy_training(Trainer *from, Trainer *to, int64_t n) {
    memcpy(to->P, from->P, from->es * (size_t)n);
    if (from->opt.m && to->opt.m) memcpy(to->opt.m, from->opt.m, from->es * (size_t)n);
    if (from->opt.v && to->opt.v) memcpy(to->opt.v, from->opt.v, from->es * (size_t)n);
    to->opt.step = from->opt.step;
    to->state = from->state;
    to->rng = from->rng;
}

int reduced_train(dino_model *md, const dino_data *data, const dino_train_options *opts, dino_status *status) {
    Trainer *t = &md->t;
    const Model *m = t->m;
    if (m->n_bases == 0 || !basis_set_ready(&t->bases, m) || t->state.epoch >= m->train.epochs) return 0;
    if (getenv("DINO_REDUCED") && strcmp(getenv("DINO_REDUCED"), "0") == 0) {
        if (opts->on_message)
            opts->on_message(DINO_MESSAGE_NOTE,
                             "reduced bases: DINO_REDUCED=0: the frozen encode/decode layers run in "
                             "the full-space graph",
                             opts->user);
        return 0;
    }
    char dir[] = "/tmp/dino_reduced.XXXXXX", why[512] = "";
    if (!mkdtemp(dir)) return 0;
    int aug = 0;
    char *text = NULL;
    if (data->valid.n > 0) /* model selection (keep best, early stop) runs on the outer model */
        snprintf(why, sizeof why, "a validation set (model selection runs in the full-space graph)");
    else text = inner_text(md, dir, &aug, why, sizeof why);
    dino_status st = DINO_OK;
    dino_spec *spec = NULL;
    dino_model *inner = NULL;
    dino_data *rd = NULL;
    Projected tr = {0}, te = {0};
    int taken = 0;
    if (!text) {
        if (opts->on_message) {
            char line[700];
            snprintf(line, sizeof line,
                     "reduced bases: the frozen encode/decode layers run in the full-space graph, "
                     "not in reduced coordinates: %s",
                     why[0] ? why : "the scratch folder could not be made");
            opts->on_message(DINO_MESSAGE_NOTE, line, opts->user);
        }
        goto done;
    }
    if (dino_spec_from_text(m->path, text, strlen(text), &spec) || !spec->ok) {
        st = api_fail(DINO_EINTERNAL, 0, "the reduced model's spec does not check: %s",
                      spec ? dino_spec_diagnostics_text(spec) : dino_last_error());
        taken = 1;
        goto done;
    }
    spec->fe.model->train = m->train; /* --set, --epochs, --precision as given */
    dino_open_options oo = {.backend = md->kind, .precision = m->train.f64 ? DINO_PRECISION_F64 : DINO_PRECISION_F32};
    taken = 1;
    if ((st = dino_model_open(spec, &oo, &inner))) goto done;
    if (model_trainable(inner->t.m) != model_trainable(m)) {
        st = api_fail(DINO_EINTERNAL, 0, "the reduced model has %lld trained parameters, the model %lld",
                      (long long)model_trainable(inner->t.m), (long long)model_trainable(m));
        goto done;
    }
    int pb = -1;
    for (int i = 0; i < m->n_bases && pb < 0; i++)
        if (inner->t.m->in_dim == m->bases[i].rank && m->bases[i].used_encode && m->bases[i].dim == m->in_dim) pb = i;
    const BasisValues *v = &t->bases.v[pb < 0 ? 0 : pb];
    /* each set's full-space rows are released (when allowed) as soon as they are projected: the
     * test metrics come from the projected test rows, exactly */
    int bad = pb < 0 || project(&data->train, v, m->out_dim, m->in_dim, aug, &tr);
    if (!bad) api_data_release(data, DINO_SET_TRAIN);
    bad = bad || project(&data->test, v, m->out_dim, m->in_dim, aug, &te);
    if (!bad) api_data_release(data, DINO_SET_TEST);
    if (bad) {
        st = api_fail(DINO_EUSER, 0, "out of memory projecting the data into the reduced basis");
        goto done;
    }
    dino_arrays a_tr = {.n = data->train.n, .x = tr.x, .y = tr.y, .J = tr.J, .labels = data->train.label};
    dino_arrays a_te = {.n = data->test.n, .x = te.x, .y = te.y, .J = te.J, .labels = data->test.label};
    if ((st = dino_data_from_arrays(inner, &a_tr, &a_te, &rd))) goto done;
    free(tr.x), free(tr.y), free(tr.J), free(te.x), free(te.y), free(te.J);
    tr = te = (Projected){0};
    /* the inner model's bases (npy files) and frozen layers, then the trained state copied in */
    dino_train_options io = *opts;
    io.save = NULL;
    io.user = (void *)opts;
    io.on_message = opts->on_message ? inner_message : NULL;
    io.on_epoch = opts->on_epoch ? inner_epoch : NULL;
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
        char line[512];
        snprintf(line, sizeof line,
                 "reduced bases: exact training in reduced coordinates: %s [%d] -> [%d] (basis %s) "
                 "projected once at load%s; loss and metrics are the full space's",
                 m->input, m->in_dim, m->bases[pb].rank, m->bases[pb].name,
                 aug ? arena_printf(&md->spec->fe.arena,
                                    ", Jacobians [%d x %d] -> [%d x %d] (the discarded part in one "
                                    "extra row)",
                                    m->out_dim, m->in_dim, m->out_dim + 1, m->bases[pb].rank)
                     : "");
        opts->on_message(DINO_MESSAGE_NOTE, line, opts->user);
    }
    inner->stop_also = &md->stop; /* dino_request_stop(md) (a signal) stops the inner training */
    dino_status tst = dino_train(inner, rd, &io);
    /* the trained state back into the model, whatever happened (a stop keeps what was done) */
    if (inner->t.backend->pull(inner->t.backend) == DINO_OK) {
        copy_training(&inner->t, t, model_trainable(m));
        if (t->backend->push(t->backend)) st = api_fail(DINO_EINTERNAL, 0, "%s", t->backend->err);
    }
    if (tst) {
        st = tst;
        if (opts->save && tst == DINO_STOPPED) dino_model_save(md, opts->save);
        goto done;
    }
    if (st == DINO_OK && opts->save) st = dino_model_save(md, opts->save);
done:
    free(tr.x), free(tr.y), free(tr.J), free(te.x), free(te.y), free(te.J);
    dino_data_free(rd);
    dino_model_free(inner);
    dino_spec_free(spec);
    free(text);
    for (int i = 0; i < m->n_bases; i++) {
        char f[4200];
        static const char *const parts[3] = {"D", "E", "s"};
        for (int k = 0; k < 3; k++) snprintf(f, sizeof f, "%s/b%d_%s.npy", dir, i, parts[k]), unlink(f);
    }
    rmdir(dir);
    *status = st;
    return taken;
}
