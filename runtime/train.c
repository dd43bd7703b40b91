/* train.c - epochs of shuffled batches, metrics, logs, checkpoints (see train.h).
 *
 * One epoch: order the training row indices with the seeded RNG (shuffle.h: all rows, or blocks
 * of rows), then for each batch
 * (the last one may be partial) the backend computes the gradient (Backend.grad: forward,
 * Jacobian, loss, gradient in one pass), then, past the point where a data-parallel layer
 * sums across processes (reduce_step), the loss is checked and the backend takes an optimiser
 * step at the scheduled learning rate (Backend.update). The data arrays never move; only
 * indices do.
 *
 * A NaN or Inf loss stops training at once: the parameters from the start of that epoch
 * (the last good ones) are written to the checkpoint path if one was given.
 *
 * Nothing here prints: notes and warnings go to TrainOptions.on_message, the epoch's numbers
 * to on_epoch, errors into err with a status (status.h). */
#include "train.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "abi.h"
#include "init.h"
#include "shuffle.h"

enum { EVAL_BATCH = 256 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* malloc that says what failed in err. */
static void *alloc(size_t n, const char *what, char *err, size_t errlen) {
    void *p = malloc(n ? n : 1);
    if (!p) snprintf(err, errlen, "out of memory: %s needs %.1f MiB", what, (double)n / 1048576.0);
    return p;
}

/* The caller's message callback, printf-style. */
static void message(const TrainOptions *o, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void message(const TrainOptions *o, int level, const char *fmt, ...) {
    if (!o->on_message) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    o->on_message(level, buf, o->user);
}

int trainer_init(Trainer *t, const Model *m, uint64_t spec_hash, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    t->m = m;
    t->f64 = m->train.f64;
    t->es = t->f64 ? sizeof(double) : sizeof(float);
    t->spec_hash = spec_hash;
    if (!(t->P = alloc(t->es * (size_t)m->n_weights, "the parameters", err, errlen))) return DINO_EUSER;
    init_params(m->params, m->n_params, t->P, t->f64, m->train.seed);
    const TrainSpec *ts = &m->train;
    OptimConfig cfg = {.kind = ts->optimizer,
                       .lr = ts->lr,
                       .beta1 = ts->beta1,
                       .beta2 = ts->beta2,
                       .eps = ts->eps,
                       .decay = ts->decay,
                       .momentum = ts->momentum};
    if (basis_set_init(&t->bases, m, err, errlen)) return DINO_EUSER;
    /* the frozen encode/decode layers sit after the trained parameters: the optimiser never sees them */
    if (optim_init(&t->opt, &cfg, model_trainable(m), t->f64)) {
        snprintf(err, errlen, "cannot allocate the optimiser state for %lld parameters", (long long)m->n_weights);
        return DINO_EUSER;
    }
    /* the shuffle stream is separate from the initialisation stream of the same seed */
    rng_seed(&t->rng, ts->seed ^ 0x53485546464c45ull);
    return DINO_OK;
}

void trainer_free(Trainer *t) {
    if (t->backend) t->backend->free(t->backend);
    free(t->P);
    optim_free(&t->opt);
    basis_set_free(&t->bases);
}

/* ---------------------------------------------------------------------------- prediction */

int predict_rows(Trainer *t, const void *x, int64_t n, void *y, void *J, char *err, size_t errlen) {
    if (!basis_set_ready(&t->bases, t->m)) {
        snprintf(err, errlen,
                 "the model's bases have no values yet: train it, or load a checkpoint that has them "
                 "(__basis.<name>.decoder ...)");
        return DINO_EUSER;
    }
    int rc = t->backend->predict(t->backend, x, n, y, J);
    if (rc) snprintf(err, errlen, "%s", t->backend->err);
    else t->bases_done = 1;
    return rc;
}

static double at(const void *p, int f64, int64_t i) { return f64 ? ((const double *)p)[i] : ((const float *)p)[i]; }

/* The loss term kinds of m present, as indices into m->loss (-1: absent). */
static int term_index(const Model *m, LossKind k) {
    for (int i = 0; i < m->n_loss; i++)
        if (m->loss[i].kind == k) return i;
    return -1;
}

/* 1 (the message in err) when d's arrays are not in t's precision: the API converts a set kept in
 * float64 (api_data_precision) before the model reads it. verb: what the model does with it. */
static int precision_differs(const Trainer *t, const Dataset *d, const char *verb, char *err, size_t errlen) {
    if (d->f64 == t->f64) return 0;
    snprintf(err, errlen, "the data are %s and the model %s in %s", d->f64 ? "float64" : "float32", verb,
             t->f64 ? "float64" : "float32");
    return 1;
}

int evaluate(Trainer *t, const Dataset *d, Metrics *out, char *err, size_t errlen) {
    const Model *m = t->m;
    memset(out, 0, sizeof *out);
    out->rows = d->n;
    if (d->n == 0) return DINO_OK;
    if (precision_differs(t, d, "computes", err, errlen)) return DINO_EINTERNAL;
    int jac = d->J != NULL && !m->classifier;
    int64_t n = d->n, in = m->in_dim, o = m->out_dim;
    int chunk = EVAL_BATCH;
    void *y = alloc(t->es * (size_t)(chunk * o), "the evaluation", err, errlen);
    void *J = jac && y ? alloc(t->es * (size_t)(chunk * o * in), "the evaluation", err, errlen) : NULL;
    if (!y || (jac && !J)) {
        free(y);
        return DINO_EUSER;
    }
    int l2 = term_index(m, LOSS_L2), h1 = term_index(m, LOSS_H1), ce = term_index(m, LOSS_CROSS_ENTROPY);
    double sum_l2 = 0, sum_h1 = 0, term[MAX_LOSS_TERMS] = {0};
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i += chunk) {
        int b = n - i < chunk ? (int)(n - i) : chunk;
        int rc = predict_rows(t, (const char *)d->x + t->es * (size_t)(i * in), b, y, J, err, errlen);
        if (rc) {
            free(y), free(J);
            return rc;
        }
        for (int r = 0; r < b; r++) {
            if (m->classifier) {
                int best = 0;
                for (int k = 1; k < o; k++)
                    if (at(y, t->f64, r * o + k) > at(y, t->f64, r * o + best)) best = k;
                correct += best == d->label[i + r];
                if (ce >= 0) { /* -log softmax(y)[label], as log-sum-exp */
                    double top = at(y, t->f64, r * o + best), se = 0;
                    for (int k = 0; k < o; k++) se += exp(at(y, t->f64, r * o + k) - top);
                    term[ce] += top + log(se) - at(y, t->f64, r * o + d->label[i + r]);
                }
                continue;
            }
            double e2 = 0, q2 = 0;
            for (int k = 0; k < o; k++) {
                double q = at(d->y, t->f64, (i + r) * o + k), e = at(y, t->f64, r * o + k) - q;
                e2 += e * e;
                q2 += q * q;
            }
            sum_l2 += e2 / (q2 > 0 ? q2 : 1e-300);
            if (l2 >= 0) term[l2] += m->loss[l2].relative ? e2 / (q2 > 1e-300 ? q2 : 1e-300) : e2;
            if (jac) {
                double E2 = 0, J2 = 0;
                for (int64_t k = 0; k < o * in; k++) {
                    double jd = at(d->J, t->f64, (i + r) * o * in + k), ev = at(J, t->f64, r * o * in + k) - jd;
                    E2 += ev * ev;
                    J2 += jd * jd;
                }
                sum_h1 += E2 / (J2 > 0 ? J2 : 1e-300);
                if (h1 >= 0) term[h1] += m->loss[h1].relative ? E2 / (J2 > 1e-300 ? J2 : 1e-300) : E2;
            }
        }
    }
    if (m->classifier) {
        out->has_acc = 1;
        out->accuracy = (double)correct / (double)n;
    } else {
        out->has_l2 = 1;
        out->rel_l2 = sqrt(sum_l2 / (double)n);
        if (jac) {
            out->has_h1 = 1;
            out->rel_h1 = sqrt(sum_h1 / (double)n);
        }
    }
    out->has_loss = h1 < 0 || jac;
    int64_t epoch = t->state.epoch > 0 ? t->state.epoch - 1 : 0; /* the weights of the last epoch trained */
    for (int k = 0; k < m->n_loss && k < MAX_LOSS_TERMS; k++) {
        out->terms[k] = term[k] / (double)n;
        out->loss += loss_weight(&m->loss[k], epoch) * out->terms[k];
    }
    free(y);
    free(J);
    return DINO_OK;
}

/* ---------------------------------------------------------------------------- logging */

static void format_metrics(const Metrics *mt, char *buf, size_t len) {
    int n = 0;
    buf[0] = 0;
    if (mt->has_l2) n += snprintf(buf + n, len - (size_t)n, "  rel_l2 %.4e", mt->rel_l2);
    if (mt->has_h1) n += snprintf(buf + n, len - (size_t)n, "  rel_h1 %.4e", mt->rel_h1);
    if (mt->has_acc) snprintf(buf + n, len - (size_t)n, "  accuracy %.2f %%", 100 * mt->accuracy);
}

/* The Parareal report of an epoch of N samples, from the monitor sums (sums[i] is the sum of
 * terms[n_loss + i], abi.h): per pint block, for each iteration k, |U_k - U_k-1| / |U_k| over
 * the slice ends and the samples it ran for (NaN when it never ran), then with a tol the mean
 * number of iterations run; per dopri5 block, the mean accepted steps and the share of samples
 * whose batch did not reach t1. Returns how many values. */
static int corrections(const Model *m, const double *sums, int64_t N, double *rel) {
    int n = 0;
    TermLayout tl = term_layout(m);
    for (int i = 0; i < m->n_odes; i++) {
        const Pint *p = &m->odes[i].pint;
        const Solver *s = &m->odes[i].solver;
        BlockTerms bt = block_terms(m, i);
        const double *c = sums + (bt.corrections - tl.n_loss), *g = sums + (tl.gate_base - tl.n_loss + bt.gates_before);
        if (!p->present && s->kind == SOLVER_DOPRI5) { /* accepted steps, and samples whose batch did not reach t1 */
            double steps = 0;
            int S = dopri5_slots(&m->odes[i]); /* err, accepted, t, h, runs next (, landed on a save) */
            for (int j = 0; j < s->max_steps; j++) steps += g[S * j + 1] / (double)N;
            rel[n++] = steps;
            rel[n++] = g[S * (s->max_steps - 1) + 4] / (double)N;
        }
        if (!p->present) continue;
        for (int j = 0; j < p->iterations; j++) rel[n++] = c[2 * j + 1] > 0 ? sqrt(c[2 * j] / c[2 * j + 1]) : NAN;
        if (p->tol > 0) {
            double runs = 1;
            for (int j = 1; j < p->iterations; j++) runs += g[j - 1] / (double)N;
            rel[n++] = runs;
        }
    }
    return n;
}

/* "  parareal z: 3.1e-03 2.2e-05 - (1.6 iterations)" per pint block, for the epoch line. */
static void format_corrections(const Model *m, const double *rel, char *buf, size_t len) {
    int n = 0, k = 0;
    buf[0] = 0;
    for (int i = 0; i < m->n_odes && (size_t)n < len; i++) {
        const Pint *p = &m->odes[i].pint;
        if (!p->present && m->odes[i].solver.kind == SOLVER_DOPRI5) {
            n += snprintf(buf + n, len - (size_t)n, "  dopri5 %s: %.1f steps", m->odes[i].state, rel[k]);
            if (rel[k + 1] > 0 && (size_t)n < len)
                n += snprintf(buf + n, len - (size_t)n, " (t = %g not reached for %.0f %% of the samples)",
                              m->odes[i].t1, 100 * rel[k + 1]);
            k += 2;
        }
        if (!p->present) continue;
        n += snprintf(buf + n, len - (size_t)n, "  parareal %s:", m->odes[i].state);
        for (int j = 0; j < p->iterations && (size_t)n < len; j++, k++)
            n += isnan(rel[k]) ? snprintf(buf + n, len - (size_t)n, " -")
                               : snprintf(buf + n, len - (size_t)n, " %.1e", rel[k]);
        if (p->tol > 0 && (size_t)n < len) n += snprintf(buf + n, len - (size_t)n, " (%.2f iterations)", rel[k++]);
    }
}

/* A dopri5 block that ran out of attempts before t1 gives a wrong state: say so every epoch. */
static void warn_unfinished(const Model *m, const double *rel, const TrainOptions *opt) {
    int k = 0;
    for (int i = 0; i < m->n_odes; i++) {
        const OdeBlock *o = &m->odes[i];
        if (o->pint.present) {
            k += o->pint.iterations + (o->pint.tol > 0);
        } else if (o->solver.kind == SOLVER_DOPRI5) {
            if (rel[k + 1] > 0)
                message(opt, DINO_MSG_WARNING,
                        "%s:%d: dopri5 did not reach t = %g within max_steps %d for %.0f %% of the "
                        "training samples (their state is wrong); raise max_steps or loosen rtol/atol",
                        m->path, o->solver.loc.line, o->t1, o->solver.max_steps, 100 * rel[k + 1]);
            k += 2;
        }
    }
}

/* The CSV log: epoch,step,seconds,lr,train_loss, the test metrics, with a validation set
 * valid_loss and its metrics, the training loss terms (train_l2, train_h1, train_cross_entropy,
 * in the loss block's order), then the monitors (Parareal, dopri5). */
static FILE *open_log(const Model *m, const char *path, int resumed, int has_valid) {
    FILE *f = fopen(path, resumed ? "a" : "w");
    if (!f) return NULL;
    if (!resumed || ftell(f) == 0) {
        fprintf(f, "epoch,step,seconds,lr,train_loss%s", m->classifier ? ",accuracy" : ",rel_l2,rel_h1");
        if (has_valid) fprintf(f, ",valid_loss%s", m->classifier ? ",valid_accuracy" : ",valid_rel_l2,valid_rel_h1");
        for (int i = 0; i < m->n_loss; i++) fprintf(f, ",train_%s", loss_names[m->loss[i].kind]);
        for (int i = 0; i < m->n_odes; i++) {
            const Pint *p = &m->odes[i].pint;
            for (int k = 1; p->present && k <= p->iterations; k++) fprintf(f, ",parareal_%s_%d", m->odes[i].state, k);
            if (p->present && p->tol > 0) fprintf(f, ",parareal_%s_iterations", m->odes[i].state);
            if (!p->present && m->odes[i].solver.kind == SOLVER_DOPRI5)
                fprintf(f, ",dopri5_%s_steps,dopri5_%s_unfinished", m->odes[i].state, m->odes[i].state);
        }
        fputc('\n', f);
    }
    return f;
}

/* The metric fields of one set (empty when mt is NULL or lacks them). */
static void log_metrics(FILE *f, const Model *m, const Metrics *mt) {
    if (m->classifier) {
        if (mt && mt->has_acc) fprintf(f, ",%.6f", mt->accuracy);
        else fputs(",", f);
    } else {
        if (mt && mt->has_l2) fprintf(f, ",%.9g", mt->rel_l2);
        else fputs(",", f);
        if (mt && mt->has_h1) fprintf(f, ",%.9g", mt->rel_h1);
        else fputs(",", f);
    }
}

static void log_row(FILE *f, const Model *m, const EpochReport *r, int has_valid) {
    fprintf(f, "%lld,%lld,%.3f,%.6g,%.9g", (long long)r->epoch, (long long)r->step, r->seconds, r->lr, r->train_loss);
    log_metrics(f, m, r->evaluated ? &r->test : NULL);
    if (has_valid) {
        if (r->validated && r->valid.has_loss) fprintf(f, ",%.9g", r->valid.loss);
        else fputs(",", f);
        log_metrics(f, m, r->validated ? &r->valid : NULL);
    }
    for (int i = 0; i < m->n_loss; i++) fprintf(f, ",%.9g", r->terms[i]);
    for (int i = 0; i < r->n_monitors; i++) {
        if (isnan(r->monitors[i])) fputs(",", f); /* an iteration that never ran */
        else fprintf(f, ",%.6g", r->monitors[i]);
    }
    fputc('\n', f);
    fflush(f);
}

void format_epoch(const Model *m, const EpochReport *r, char *buf, size_t len) {
    char mbuf[128], vbuf[256] = "", cbuf[512] = "";
    format_metrics(&r->test, mbuf, sizeof mbuf);
    if (r->validated) { /* "  valid: loss 1.2e-02  rel_l2 ...  (best)" */
        char vm[128];
        format_metrics(&r->valid, vm, sizeof vm);
        if (r->valid.has_loss)
            snprintf(vbuf, sizeof vbuf, "  valid: loss %.4e%s%s", r->valid.loss, vm, r->improved ? "  (best)" : "");
        else snprintf(vbuf, sizeof vbuf, "  valid:%s", vm);
    }
    if (r->n_monitors) format_corrections(m, r->monitors, cbuf, sizeof cbuf);
    snprintf(buf, len, "epoch %lld/%lld  loss %.4e  lr %.3g  %.2f s%s%s%s", (long long)r->epoch, (long long)r->epochs,
             r->train_loss, r->lr, r->epoch_seconds, mbuf, vbuf, cbuf);
}

/* ---------------------------------------------------------------------------- training */

/* The trainer as it was at the end of an epoch: what keep best restores after the run. */
typedef struct {
    int have;
    void *P, *m, *v; /* [n_weights] parameters and optimiser moments (m, v as t->opt has them) */
    int64_t opt_step;
    TrainState state;
} Snapshot;

/* The state of one train() call. */
typedef struct {
    Trainer *t;
    const TrainOptions *o;
    char *err;
    size_t errlen;
    void *good;   /* [n_weights] the parameters at the start of the epoch */
    int64_t *idx; /* [N] the epoch's row order */
    double *sums; /* [1 + n_monitors + n_loss] the epoch's loss, monitor and loss-term sums (Backend.take_sums) */
    double *rel;  /* what the monitor sums say (corrections(): at most n_monitors values) */
    double terms[MAX_LOSS_TERMS]; /* the epoch's mean loss terms */
    const Dataset *valid;         /* NULL: no validation set */
    Snapshot best;                /* keep best: the end of the best epoch */
    int best_saved;               /* keep best: the --save file holds the best epoch (written in this call) */
    int early_stop;               /* early_stop: training ends after this epoch */
    FILE *log;
    void *good_m, *good_v; /* [n_weights] the optimiser moments at the start of the epoch (NULL: none) */
    int64_t good_opt_step;
} Run;

/* keep best and the --save file already holds the best epoch: a stop or a failure must not
 * overwrite it. */
static int keeps_best_file(const Run *r) { return r->t->m->train.keep_best && r->best_saved; }

static int backend_failed(Run *r, int rc);

/* A stop inside an epoch: the model goes back to the start of that epoch (parameters,
 * optimiser, training state, shuffle RNG, and the backend's running sums dropped), so that
 * the checkpoint, and a later train() or --load, repeat the epoch exactly: the result is that
 * of a run never stopped. At most one epoch's steps are done again. */
static int rewind_epoch(Run *r, const TrainState *at_start) {
    Trainer *t = r->t;
    size_t bytes = t->es * (size_t)t->m->n_weights, obytes = t->es * (size_t)model_trainable(t->m);
    memcpy(t->P, r->good, bytes);
    if (r->good_m) memcpy(t->opt.m, r->good_m, obytes); /* the moments cover the trained parameters only */
    if (r->good_v) memcpy(t->opt.v, r->good_v, obytes);
    t->opt.step = r->good_opt_step;
    t->state = *at_start;
    rng_restore(&t->rng, at_start->rng);
    int rc = t->backend->push(t->backend);
    if (rc == DINO_OK) rc = t->backend->take_sums(t->backend, r->sums);
    return rc ? backend_failed(r, rc) : DINO_OK;
}

/* Stops after a non-finite loss: the last good parameters written (when there is a save
 * path), the message in err. */
static int stop_on_nan(Run *r, int64_t epoch, const char *where) {
    Trainer *t = r->t;
    int n = snprintf(r->err, r->errlen, "the loss is not finite (NaN or Inf) at epoch %lld, %s; stopping",
                     (long long)epoch + 1, where);
    if (!r->o->save || n < 0 || (size_t)n >= r->errlen) return DINO_EUSER;
    if (keeps_best_file(r)) {
        snprintf(r->err + n, r->errlen - (size_t)n, "; the best parameters (epoch %lld, keep best) are in %s",
                 (long long)r->best.state.best_epoch, r->o->save);
        return DINO_EUSER;
    }
    memcpy(t->P, r->good, t->es * (size_t)t->m->n_weights);
    char err[1024];
    if (checkpoint_save_bases(r->o->save, t->m, t->P, t->f64, &t->opt, &t->state, t->spec_hash, &t->bases, err,
                              sizeof err))
        snprintf(r->err + n, r->errlen - (size_t)n, "; the last good parameters could not be saved: %s", err);
    else
        snprintf(r->err + n, r->errlen - (size_t)n,
                 "; the last good parameters (from the start of epoch %lld) are in %s", (long long)epoch + 1,
                 r->o->save);
    return DINO_EUSER;
}

/* Copies the backend's message after a failed call. */
static int backend_failed(Run *r, int rc) {
    snprintf(r->err, r->errlen, "%s", r->t->backend->err);
    return rc;
}

/* Writes the checkpoint (o->save) of the parameters on the device. */
static int save(Run *r) {
    Trainer *t = r->t;
    int rc = t->backend->pull(t->backend);
    if (rc) return backend_failed(r, rc);
    return checkpoint_save_bases(r->o->save, t->m, t->P, t->f64, &t->opt, &t->state, t->spec_hash, &t->bases, r->err,
                                 r->errlen)
        ? DINO_EUSER
        : DINO_OK;
}

/* ---------------------------------------------------------------------------- model selection */

/* Copies the trainer (parameters pulled from the device, optimiser, state) into the snapshot. */
static int snapshot_take(Run *r, Snapshot *sn) {
    Trainer *t = r->t;
    size_t bytes = t->es * (size_t)t->m->n_weights, obytes = (t->opt.f64 ? 8 : 4) * (size_t)t->opt.n;
    if (!sn->P && !(sn->P = alloc(bytes, "keep best's copy of the parameters", r->err, r->errlen))) return DINO_EUSER;
    if (t->opt.m && !sn->m && !(sn->m = alloc(obytes, "keep best's copy of the optimiser", r->err, r->errlen)))
        return DINO_EUSER;
    if (t->opt.v && !sn->v && !(sn->v = alloc(obytes, "keep best's copy of the optimiser", r->err, r->errlen)))
        return DINO_EUSER;
    int rc = t->backend->pull(t->backend);
    if (rc) return backend_failed(r, rc);
    memcpy(sn->P, t->P, bytes);
    if (t->opt.m) memcpy(sn->m, t->opt.m, obytes);
    if (t->opt.v) memcpy(sn->v, t->opt.v, obytes);
    sn->opt_step = t->opt.step;
    sn->state = t->state;
    sn->have = 1;
    return DINO_OK;
}

/* Sets the trainer back to the snapshot (and the device with it). */
static int snapshot_restore(Run *r, const Snapshot *sn) {
    Trainer *t = r->t;
    size_t obytes = (t->opt.f64 ? 8 : 4) * (size_t)t->opt.n;
    memcpy(t->P, sn->P, t->es * (size_t)t->m->n_weights);
    if (t->opt.m) memcpy(t->opt.m, sn->m, obytes);
    if (t->opt.v) memcpy(t->opt.v, sn->v, obytes);
    t->opt.step = sn->opt_step;
    t->state = sn->state;
    rng_restore(&t->rng, t->state.rng);
    int rc = t->backend->push(t->backend);
    return rc ? backend_failed(r, rc) : DINO_OK;
}

static void snapshot_free(Snapshot *sn) {
    free(sn->P), free(sn->m), free(sn->v);
    memset(sn, 0, sizeof *sn);
}

/* After an evaluation of the validation set: a new best (keep best takes a snapshot), or one
 * more evaluation without one (early_stop counts them). */
static int select_model(Run *r, EpochReport *rep) {
    Trainer *t = r->t;
    const TrainSpec *ts = &t->m->train;
    TrainState *st = &t->state;
    double vl = rep->valid.loss;
    if (rep->valid.has_loss && isfinite(vl) && (st->best_epoch == 0 || vl < st->best_loss)) {
        st->best_epoch = rep->epoch;
        st->best_loss = vl;
        st->since_best = 0;
        rep->improved = 1;
        if (ts->keep_best) {
            int rc = snapshot_take(r, &r->best);
            if (rc) return rc;
        }
    } else {
        st->since_best++;
    }
    rep->best_epoch = st->best_epoch;
    rep->best_loss = st->best_loss;
    if (ts->patience > 0 && st->since_best >= ts->patience) rep->early_stop = r->early_stop = 1;
    return DINO_OK;
}

/* The point between a step's gradient and its update: with a Reducer (train.h), the gradient
 * and, when the backend has it on the host, the step's loss are summed across processes. The
 * NaN stop is decided after it, from the sums. */
static int reduce_step(Run *r, double *loss, double scale, int *stop) {
    const Reducer *red = r->t->reduce;
    if (!red) return DINO_OK;
    /* a backend that sums on its own (Backend.sum_gradient) did, between its grad and update */
    int rc = r->t->backend->sum_gradient ? DINO_OK : red->gradient(r->t->backend, scale, red->user);
    if (rc) return rc;
    if (red->size > 1) { /* the loss and the stop flag together: every process stops at the same step */
        double v[2] = {r->t->backend->host_loss ? *loss : 0, *stop ? 1 : 0};
        if ((rc = red->sums(v, 2, red->user))) return rc;
        if (r->t->backend->host_loss) *loss = v[0];
        *stop = v[1] > 0;
        return DINO_OK;
    }
    if (r->t->backend->host_loss) rc = red->sums(loss, 1, red->user);
    return rc;
}

/* This process's rows of a batch of n rows at first (all of them without a Reducer of several
 * processes): [*lo, *lo + *nr). */
static void share(const Reducer *red, int64_t first, int n, int64_t *lo, int *nr) {
    if (!red || red->size <= 1) {
        *lo = first, *nr = n;
        return;
    }
    int64_t a = (int64_t)n * red->rank / red->size, b = (int64_t)n * (red->rank + 1) / red->size;
    *lo = first + a, *nr = (int)(b - a);
}

/* One epoch's steps. Returns DINO_OK, a failure, or DINO_STOPPED after *stop (mid-epoch). */
static int run_steps(Run *r, int64_t epoch, int64_t N, int B, int64_t steps_per_epoch, int64_t total_steps,
                     const double *w, double *lr, const TrainState *at_start) {
    Trainer *t = r->t;
    Backend *b = t->backend;
    const TrainSpec *ts = &t->m->train;
    const TrainOptions *o = r->o;
    double loss_so_far = 0;
    int64_t rows = 0;
    for (int64_t s = 0; s < steps_per_epoch; s++) {
        int64_t first = s * B;
        int n = N - first < B ? (int)(N - first) : B;
        *lr = schedule_lr(ts, ts->lr, t->state.step, total_steps);
        double loss = 0;
        int64_t lo;
        int nr, rc = DINO_OK;
        share(t->reduce, first, n, &lo, &nr);
        b->sum_scale = (double)nr / (double)n;
        if (nr > 0) rc = b->grad(b, lo, nr, w, &loss);
        else
            memset(b->grad_buf, 0, t->es * (size_t)t->m->n_weights); /* a batch with fewer rows than processes
                                                                        (on the host: parallel_refusal) */
        int stop = o->stop && *o->stop;
        if (rc == DINO_OK) rc = reduce_step(r, &loss, (double)nr / (double)n, &stop);
        if (rc) return backend_failed(r, rc);
        if (b->host_loss && !isfinite(loss)) {
            char where[96];
            snprintf(where, sizeof where, "step %lld (batch %lld of the epoch)", (long long)t->state.step + 1,
                     (long long)s + 1);
            t->state = *at_start;
            return stop_on_nan(r, epoch, where);
        }
        if ((rc = b->update(b, *lr))) return backend_failed(r, rc);
        t->state.step++;
        loss_so_far += loss, rows += n;
        if (o->on_progress)
            o->on_progress(epoch + 1, s + 1, steps_per_epoch, b->host_loss ? loss_so_far / (double)rows : NAN, o->user);
        if (!t->reduce || t->reduce->size <= 1) stop = o->stop && *o->stop; /* several processes: the flag as summed */
        if (stop && s + 1 < steps_per_epoch) {
            if (o->stop) *o->stop = 1; /* another process was asked: this one stops with it */
            return DINO_STOPPED;
        }
    }
    return DINO_OK;
}

/* The end of an epoch: the loss and diagnostic sums (summed across processes with a Reducer),
 * the NaN stop, metrics, model selection, the report, the log and the checkpoint. */
static int finish_epoch(Run *r, int64_t epoch, int64_t N, double lr, double t_start, double t_epoch,
                        const TrainState *at_start, const Dataset *test_set, int *stop_now) {
    Trainer *t = r->t;
    Backend *b = t->backend;
    const Model *m = t->m;
    const TrainSpec *ts = &m->train;
    const TrainOptions *o = r->o;
    int64_t epochs = ts->epochs;
    int rc = b->take_sums(b, r->sums);
    if (rc) return backend_failed(r, rc);
    if (t->reduce && (rc = t->reduce->sums(r->sums, 1 + b->n_monitors + m->n_loss, t->reduce->user))) return rc;
    double epoch_loss = r->sums[0] / (double)N;
    for (int i = 0; i < m->n_loss && i < MAX_LOSS_TERMS; i++) r->terms[i] = r->sums[1 + b->n_monitors + i] / (double)N;
    int n_rel = 0;
    if (b->n_monitors) {
        n_rel = corrections(m, r->sums + 1, N, r->rel);
        warn_unfinished(m, r->rel, o);
    }
    if (!isfinite(epoch_loss)) {
        char where[96];
        snprintf(where, sizeof where, "in steps %lld to %lld", (long long)at_start->step + 1, (long long)t->state.step);
        t->state = *at_start;
        return stop_on_nan(r, epoch, where);
    }
    t->state.epoch = epoch + 1;
    rng_save(&t->rng, t->state.rng);
    int last = epoch + 1 == epochs || epoch + 1 == o->until;
    int eval_now = last || (ts->eval_every > 0 && (epoch + 1) % ts->eval_every == 0);
    EpochReport rep = {.epoch = epoch + 1,
                       .epochs = epochs,
                       .step = t->state.step,
                       .lr = lr,
                       .train_loss = epoch_loss,
                       .evaluated = eval_now && test_set->n > 0,
                       .monitors = r->rel,
                       .n_monitors = n_rel,
                       .work_per_sample = b->work_per_sample,
                       .terms = r->terms,
                       .best_epoch = t->state.best_epoch,
                       .best_loss = t->state.best_loss};
    if (rep.evaluated && (rc = evaluate(t, test_set, &rep.test, r->err, r->errlen))) return rc;
    if (eval_now && r->valid) {
        rep.validated = 1;
        if ((rc = evaluate(t, r->valid, &rep.valid, r->err, r->errlen))) return rc;
        if ((rc = select_model(r, &rep))) return rc;
    }
    rep.seconds = now() - t_start;
    rep.epoch_seconds = now() - t_epoch;
    if (o->on_epoch && o->on_epoch(&rep, o->user)) *stop_now = 1;
    if (o->stop && *o->stop) *stop_now = 1;
    if (t->reduce && t->reduce->size > 1) { /* a stop asked of any process stops them all after this epoch */
        double v = *stop_now;
        if ((rc = t->reduce->sums(&v, 1, t->reduce->user))) return rc;
        *stop_now = v > 0;
    }
    if (r->log) log_row(r->log, m, &rep, r->valid != NULL);
    if (!o->save) return DINO_OK;
    if (ts->keep_best) { /* the file holds the best epoch; before the first evaluation, a stop saves the last */
        if (rep.improved) {
            rc = save(r);
            r->best_saved = rc == DINO_OK;
            return rc;
        }
        return *stop_now && !r->best_saved ? save(r) : DINO_OK;
    }
    int due = ts->save_every > 0 ? (epoch + 1) % ts->save_every == 0 || last || r->early_stop : eval_now;
    if (!due && !*stop_now) return DINO_OK;
    if ((rc = save(r))) return rc;
    if (ts->save_every > 0) message(o, DINO_MSG_NOTE, "saved %s after epoch %lld", o->save, (long long)epoch + 1);
    return DINO_OK;
}

int trainer_bases(Trainer *t, const Dataset *train_set, const Dataset *test_set, const TrainOptions *o, char *err,
                  size_t errlen) {
    const Model *m = t->m;
    if (m->n_bases == 0) return DINO_OK;
    if (basis_compute(m, &t->bases, train_set, m->train.seed, err, errlen)) return DINO_EUSER;
    basis_floors(m, &t->bases, train_set, test_set);
    /* the report on the terminal and, with --log FILE.csv, in FILE.csv.bases */
    char side[4200] = "";
    if (o->log) snprintf(side, sizeof side, "%s.bases", o->log);
    FILE *f = side[0] ? fopen(side, "w") : NULL;
    for (int i = 0; i < m->n_bases; i++) {
        char line[1024];
        basis_describe(m, &t->bases, i, line, sizeof line);
        message(o, DINO_MSG_NOTE, "%s", line);
        if (f) fprintf(f, "%s\n", line);
    }
    if (f && fclose(f)) message(o, DINO_MSG_WARNING, "could not write %s", side);
    int rc = t->backend->pull(t->backend); /* the device's parameters may be newer than t->P */
    if (rc == DINO_OK) {
        basis_fill_params(m, &t->bases, t->P, t->f64);
        rc = t->backend->push(t->backend);
    }
    if (rc) snprintf(err, errlen, "%s", t->backend->err);
    else t->bases_done = 1;
    return rc;
}

/* What cannot be split by rows across several processes: dopri5 and Parareal with a tol decide
 * per batch (step sizes, iteration counts) from all of its rows; a GPU backend when the
 * Reducer cannot sum on the device. Returns DINO_OK or DINO_EUSER with a located message. */
static int parallel_refusal(const Trainer *t, int64_t N, int B, char *err, size_t errlen) {
    const Model *m = t->m;
    int size = t->reduce->size;
    for (int i = 0; i < m->n_odes; i++) {
        const OdeBlock *od = &m->odes[i];
        if (!od->pint.present && od->solver.kind == SOLVER_DOPRI5) {
            snprintf(err, errlen,
                     "%s:%d: dopri5 chooses its steps per batch from all of the batch's rows, so it "
                     "cannot be split across %d processes; use a fixed-step solver (rk4) or run one process",
                     m->path ? m->path : "spec", od->solver.loc.line, size);
            return DINO_EUSER;
        }
        if (od->pint.present && od->pint.tol > 0) {
            snprintf(err, errlen,
                     "%s:%d: Parareal with a tol decides its iterations per batch from all of the "
                     "batch's rows, so it cannot be split across %d processes; drop the tol or run one process",
                     m->path ? m->path : "spec", od->pint.loc.line, size);
            return DINO_EUSER;
        }
    }
    if (t->backend->grad_on_device && !t->reduce->on_device) {
        snprintf(err, errlen,
                 "training on the GPU across %d processes needs NCCL, which this build does not have; "
                 "use --backend cpu under mpirun",
                 size);
        return DINO_EUSER;
    }
    int64_t last = N % B ? N % B : B; /* the smallest batch */
    if (t->backend->grad_on_device &&
        (B < size || last < size)) { /* a rank without rows has no device gradient to zero */
        snprintf(err, errlen,
                 "training on the GPU across %d processes needs at least %d rows in every batch, and "
                 "batch %d of %lld training rows leaves %lld in the last; change the batch or the number of processes",
                 size, size, B, (long long)N, (long long)last);
        return DINO_EUSER;
    }
    return DINO_OK;
}

/* Several processes summing the gradient on the GPU (NCCL): the backend enqueues the sum itself,
 * inside each full batch's captured step (gradient, sum, update: one graph) when the loaded NCCL
 * allows it, else between the gradient and the update outside the graphs. Started here, on every
 * process, before any capture. */
static int device_sum(Trainer *t, int B, const TrainOptions *o, char *err, size_t errlen) {
    Backend *b = t->backend;
    const Reducer *red = t->reduce;
    int64_t lo;
    int nr = B;
    share(red, 0, B, &lo, &nr);
    b->full_rows = nr;
    b->sum_gradient = NULL, b->sum_user = NULL, b->sum_in_graph = 0;
    if (!red || red->size <= 1 || !b->grad_on_device || !b->can_sum_in_step || !red->start_device) return DINO_OK;
    int in_graph = 0;
    char version[64] = "";
    int rc = red->start_device(b, &in_graph, version, sizeof version, red->user);
    if (rc) {
        snprintf(err, errlen, "%s", b->err);
        return rc;
    }
    in_graph = in_graph && b->can_sum_in_step == 2;
    b->sum_gradient = red->gradient, b->sum_user = red->user, b->sum_in_graph = in_graph;
    b->fuse_update = in_graph; /* nothing on the host needs the gradient between grad and update */
    if (in_graph)
        message(o, DINO_MSG_NOTE,
                "the gradient's all-reduce (NCCL %s) runs inside each full batch's captured CUDA graph", version);
    else
        message(o, DINO_MSG_NOTE,
                "the gradient's all-reduce (NCCL %s) runs between the gradient and the update, outside the CUDA graphs "
                "(%s)",
                version, b->can_sum_in_step == 2 ? "NCCL older than 2.9 cannot be captured" : "graphs off");
    return DINO_OK;
}

int train(Trainer *t, const Dataset *train_set, const Dataset *test_set, const TrainOptions *o, char *err,
          size_t errlen) {
    const Model *m = t->m;
    int rc0;
    if (t->state.epoch < m->train.epochs) {
        int brc = t->bases_done ? DINO_OK : trainer_bases(t, train_set, test_set, o, err, errlen);
        if (brc) return brc;
    }
    const TrainSpec *ts = &m->train;
    Backend *b = t->backend;
    int64_t N = train_set->n, epochs = ts->epochs;
    t->stopped_early = 0;
    t->best_restored = 0;
    if (t->state.epoch >= epochs) return DINO_OK;
    if (N == 0) {
        snprintf(err, errlen, "the training split is empty");
        return DINO_EUSER;
    }
    const Dataset *valid = o->valid && o->valid->n > 0 ? o->valid : NULL;
    const Dataset *sets[3] = {train_set, valid, test_set};
    for (int i = 0; i < 3; i++)
        if (sets[i] && sets[i]->n > 0 && precision_differs(t, sets[i], "trains", err, errlen)) return DINO_EINTERNAL;
    if (!valid && (ts->patience > 0 || ts->keep_best)) {
        snprintf(err, errlen, "%s needs a validation set, and the data has none",
                 ts->patience > 0 ? "early_stop" : "keep best");
        return DINO_EUSER;
    }
    int B = ts->batch < N ? ts->batch : (int)N;
    if (t->reduce && t->reduce->size > 1 && (rc0 = parallel_refusal(t, N, B, err, errlen))) return rc0;
    int64_t steps_per_epoch = (N + B - 1) / B, total_steps = epochs * steps_per_epoch;
    int rc = b->set_data(b, train_set, B);
    if (rc) {
        snprintf(err, errlen, "%s", b->err);
        return rc;
    }
    b->fuse_update = t->reduce == NULL;
    /* a memory-mapped training set: rows in a full shuffle are read one by one (no read-around),
     * blocks of rows nearly in file order */
    data_advise(train_set, ts->shuffle_block ? DATASET_NEAR : DATASET_RANDOM);
    if (data_mapped(train_set))
        message(o, DINO_MSG_NOTE, "training data: %.1f MiB read in place from memory-mapped files (%s)",
                (double)data_mapped(train_set) / 1048576.0,
                ts->shuffle_block ? "shuffle blocks: read nearly in file order" : "shuffle rows");
    if (b->data_note[0]) message(o, DINO_MSG_NOTE, "%s", b->data_note);
    if ((rc = device_sum(t, B, o, err, errlen))) return rc;
    message(o, DINO_MSG_NOTE,
            "training workspace %.1f MiB: %.1f KiB per sample x batch %d (the values the backward pass reads)",
            (double)b->work_per_sample * B / 1048576.0, (double)b->work_per_sample / 1024.0, B);
    Run r = {.t = t, .o = o, .err = err, .errlen = errlen, .valid = valid};
    int n_sums = 1 + b->n_monitors + m->n_loss;
    r.good = alloc(t->es * (size_t)m->n_weights, "a copy of the parameters", err, errlen);
    r.idx = r.good ? alloc(sizeof(int64_t) * (size_t)N, "the row order", err, errlen) : NULL;
    r.sums = r.idx ? alloc(sizeof(double) * (size_t)n_sums, "the loss sums", err, errlen) : NULL;
    r.rel = r.sums ? alloc(sizeof(double) * (size_t)n_sums, "the loss sums", err, errlen) : NULL;
    size_t pbytes = t->es * (size_t)m->n_weights, obytes = t->es * (size_t)model_trainable(m);
    if (r.rel && t->opt.m && !(r.good_m = alloc(obytes, "a copy of the optimiser state", err, errlen)))
        free(r.rel), r.rel = NULL;
    if (r.rel && t->opt.v && !(r.good_v = alloc(obytes, "a copy of the optimiser state", err, errlen)))
        free(r.rel), r.rel = NULL;
    if (!r.rel) {
        free(r.good), free(r.idx), free(r.sums), free(r.good_m);
        return DINO_EUSER;
    }
    /* Resumed at the best epoch (a keep-best checkpoint): that is the best to come back to,
     * and what the --save file holds until a better one. */
    if (ts->keep_best && t->state.best_epoch > 0 && t->state.best_epoch == t->state.epoch) {
        rc = snapshot_take(&r, &r.best);
        if (rc == DINO_OK && o->save && (rc = save(&r)) == DINO_OK) r.best_saved = 1;
    }
    if (rc == DINO_OK && o->log && !(r.log = open_log(m, o->log, t->state.epoch > 0, valid != NULL))) {
        snprintf(err, errlen, "cannot write the log '%s'", o->log);
        rc = DINO_EUSER;
    }

    double t_start = now();
    int64_t stop = o->until > 0 && o->until < epochs ? o->until : epochs;
    for (int64_t epoch = t->state.epoch; epoch < stop && rc == DINO_OK; epoch++) {
        double w[16], lr = ts->lr, t_epoch = now();
        for (int i = 0; i < m->n_loss; i++) w[i] = loss_weight(&m->loss[i], epoch);
        if ((rc = b->pull(b))) {
            rc = backend_failed(&r, rc);
            break;
        }
        memcpy(r.good, t->P, pbytes);
        if (r.good_m) memcpy(r.good_m, t->opt.m, obytes);
        if (r.good_v) memcpy(r.good_v, t->opt.v, obytes);
        r.good_opt_step = t->opt.step;
        rng_save(&t->rng, t->state.rng); /* the RNG before this epoch's shuffle, for a rewind */
        TrainState at_start = t->state;
        shuffle_rows(&t->rng, r.idx, N, ts->shuffle_block, ts->shuffle_window);
        if ((rc = b->begin_epoch(b, r.idx))) {
            rc = backend_failed(&r, rc);
            break;
        }
        rc = run_steps(&r, epoch, N, B, steps_per_epoch, total_steps, w, &lr, &at_start);
        if (rc == DINO_STOPPED) { /* mid-epoch: back to the epoch's start, saved (unless the --save file
                                       holds keep best's epoch), the epoch to run again */
            int64_t done = t->state.step - at_start.step;
            if ((rc = rewind_epoch(&r, &at_start)) == DINO_OK &&
                (!o->save || keeps_best_file(&r) || (rc = save(&r)) == DINO_OK)) {
                rc = DINO_STOPPED;
                snprintf(err, errlen,
                         "training stopped on request in epoch %lld (after %lld of its %lld steps), rewound "
                         "to the end of epoch %lld so that a resume repeats it exactly",
                         (long long)epoch + 1, (long long)done, (long long)steps_per_epoch, (long long)epoch);
            }
            break;
        }
        if (rc) break;
        int stop_now = 0;
        rc = finish_epoch(&r, epoch, N, lr, t_start, t_epoch, &at_start, test_set, &stop_now);
        if (rc == DINO_OK && r.early_stop) {
            t->stopped_early = epoch + 1;
            break;
        }
        if (rc == DINO_OK && stop_now && epoch + 1 < stop) rc = DINO_STOPPED;
    }
    /* keep best: a run that ended (all epochs, or an early stop; not --until) leaves the trainer
     * at the end of the best epoch */
    int ended = t->stopped_early || t->state.epoch >= epochs;
    if (rc == DINO_OK && ended && ts->keep_best && r.best.have) {
        if (r.best.state.epoch != t->state.epoch) rc = snapshot_restore(&r, &r.best);
        t->best_restored = rc == DINO_OK;
    }
    if (r.log) fclose(r.log);
    snapshot_free(&r.best);
    free(r.good), free(r.idx), free(r.sums), free(r.rel), free(r.good_m), free(r.good_v);
    return rc;
}
