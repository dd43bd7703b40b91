/* train.c - epochs of shuffled batches, metrics, logs, checkpoints (see train.h).
 *
 * One epoch: permute the training row indices with the seeded RNG, then for each batch
 * (the last one may be partial) gather its rows, run the generated training step (forward,
 * Jacobian, loss, gradient in one pass), check the loss is finite, and take an optimiser
 * step at the scheduled learning rate. The data arrays never move; only indices do.
 *
 * A NaN or Inf loss stops training at once: the parameters from the start of that epoch
 * (the last good ones) are written to the checkpoint path if one was given. */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "init.h"
#include "ir.h"

enum { EVAL_BATCH = 256 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "dino-jit: internal error: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

int trainer_init(Trainer *t, const Model *m, uint64_t spec_hash, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    t->m = m;
    t->f64 = m->train.f64;
    t->es = t->f64 ? sizeof(double) : sizeof(float);
    t->spec_hash = spec_hash;
    t->P = xmalloc(t->es * (size_t)m->n_weights);
    init_params(m->params, m->n_params, t->P, t->f64, m->train.seed);
    const TrainSpec *ts = &m->train;
    OptimConfig cfg = {.kind = ts->optimizer, .lr = ts->lr, .beta1 = ts->beta1, .beta2 = ts->beta2,
                       .eps = ts->eps, .decay = ts->decay, .momentum = ts->momentum};
    if (optim_init(&t->opt, &cfg, m->n_weights, t->f64)) {
        snprintf(err, errlen, "cannot allocate the optimiser state for %lld parameters", (long long)m->n_weights);
        return -1;
    }
    /* the shuffle stream is separate from the initialisation stream of the same seed */
    rng_seed(&t->rng, ts->seed ^ 0x53485546464c45ull);
    return 0;
}

void trainer_free(Trainer *t) {
    if (t->backend) t->backend->free(t->backend);
    free(t->P);
    optim_free(&t->opt);
}

/* ---------------------------------------------------------------------------- prediction */

void predict_rows(Trainer *t, const void *x, int64_t n, void *y, void *J) { t->backend->predict(t->backend, x, n, y, J); }

static double at(const void *p, int f64, int64_t i) { return f64 ? ((const double *)p)[i] : ((const float *)p)[i]; }

void evaluate(Trainer *t, const Dataset *d, Metrics *out) {
    const Model *m = t->m;
    memset(out, 0, sizeof *out);
    out->rows = d->n;
    if (d->n == 0) return;
    int jac = d->J != NULL && !m->classifier;
    int64_t n = d->n, in = m->in_dim, o = m->out_dim;
    int chunk = EVAL_BATCH;
    void *y = xmalloc(t->es * (size_t)(chunk * o)), *J = jac ? xmalloc(t->es * (size_t)(chunk * o * in)) : NULL;
    double sum_l2 = 0, sum_h1 = 0;
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i += chunk) {
        int b = n - i < chunk ? (int)(n - i) : chunk;
        predict_rows(t, (const char *)d->x + t->es * (size_t)(i * in), b, y, J);
        for (int r = 0; r < b; r++) {
            if (m->classifier) {
                int best = 0;
                for (int k = 1; k < o; k++)
                    if (at(y, t->f64, r * o + k) > at(y, t->f64, r * o + best)) best = k;
                correct += best == d->label[i + r];
                continue;
            }
            double e2 = 0, q2 = 0;
            for (int k = 0; k < o; k++) {
                double q = at(d->y, t->f64, (i + r) * o + k), e = at(y, t->f64, r * o + k) - q;
                e2 += e * e;
                q2 += q * q;
            }
            sum_l2 += e2 / (q2 > 0 ? q2 : 1e-300);
            if (jac) {
                double E2 = 0, J2 = 0;
                for (int64_t k = 0; k < o * in; k++) {
                    double jd = at(d->J, t->f64, (i + r) * o * in + k), ev = at(J, t->f64, r * o * in + k) - jd;
                    E2 += ev * ev;
                    J2 += jd * jd;
                }
                sum_h1 += E2 / (J2 > 0 ? J2 : 1e-300);
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
    free(y);
    free(J);
}

/* ---------------------------------------------------------------------------- logging */

static void format_metrics(const Metrics *mt, char *buf, size_t len) {
    int n = 0;
    buf[0] = 0;
    if (mt->has_l2) n += snprintf(buf + n, len - (size_t)n, "  rel_l2 %.4e", mt->rel_l2);
    if (mt->has_h1) n += snprintf(buf + n, len - (size_t)n, "  rel_h1 %.4e", mt->rel_h1);
    if (mt->has_acc) snprintf(buf + n, len - (size_t)n, "  accuracy %.2f %%", 100 * mt->accuracy);
}

/* The Parareal report of an epoch of N samples, from the diagnostic sums (monitor_count in
 * ir.h): per pint block, for each iteration k, |U_k - U_k-1| / |U_k| over the slice ends and
 * the samples it ran for (NaN when it never ran), then with a tol the mean number of
 * iterations run. Returns how many values. */
static int corrections(const Model *m, const double *sums, int64_t N, double *rel) {
    int n = 0, gate = correction_count(m), k = 0;
    for (int i = 0; i < m->n_odes; i++) {
        const Pint *p = &m->odes[i].pint;
        const Solver *s = &m->odes[i].solver;
        if (!p->present && s->kind == SOLVER_DOPRI5) { /* accepted steps, and samples whose batch did not reach t1 */
            double steps = 0;
            for (int j = 0; j < s->max_steps; j++) steps += sums[gate + DOPRI5_SLOTS * j + 1] / (double)N;
            rel[n++] = steps;
            rel[n++] = sums[gate + DOPRI5_SLOTS * s->max_steps - 1] / (double)N;
            gate += DOPRI5_SLOTS * s->max_steps;
        }
        if (!p->present) continue;
        for (int j = 0; j < p->iterations; j++, k += 2) rel[n++] = sums[k + 1] > 0 ? sqrt(sums[k] / sums[k + 1]) : NAN;
        if (p->tol > 0) {
            double runs = 1;
            for (int j = 1; j < p->iterations; j++) runs += sums[gate++] / (double)N;
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
                n += snprintf(buf + n, len - (size_t)n, " (t = %g not reached for %.0f %% of the samples)", m->odes[i].t1,
                              100 * rel[k + 1]);
            k += 2;
        }
        if (!p->present) continue;
        n += snprintf(buf + n, len - (size_t)n, "  parareal %s:", m->odes[i].state);
        for (int j = 0; j < p->iterations && (size_t)n < len; j++, k++)
            n += isnan(rel[k]) ? snprintf(buf + n, len - (size_t)n, " -") : snprintf(buf + n, len - (size_t)n, " %.1e", rel[k]);
        if (p->tol > 0 && (size_t)n < len) n += snprintf(buf + n, len - (size_t)n, " (%.2f iterations)", rel[k++]);
    }
}

/* A dopri5 block that ran out of attempts before t1 gives a wrong state: say so every epoch. */
static void warn_unfinished(const Model *m, const double *rel) {
    int k = 0;
    for (int i = 0; i < m->n_odes; i++) {
        const OdeBlock *o = &m->odes[i];
        if (o->pint.present) {
            k += o->pint.iterations + (o->pint.tol > 0);
        } else if (o->solver.kind == SOLVER_DOPRI5) {
            if (rel[k + 1] > 0)
                fprintf(stderr,
                        "dino-jit: warning: %s:%d: dopri5 did not reach t = %g within max_steps %d for %.0f %% of the "
                        "training samples (their state is wrong); raise max_steps or loosen rtol/atol\n",
                        m->path, o->solver.loc.line, o->t1, o->solver.max_steps, 100 * rel[k + 1]);
            k += 2;
        }
    }
}

static FILE *open_log(const Model *m, const char *path, int resumed) {
    FILE *f = fopen(path, resumed ? "a" : "w");
    if (!f) return NULL;
    if (!resumed || ftell(f) == 0) {
        fprintf(f, "epoch,step,seconds,lr,train_loss%s", m->classifier ? ",accuracy" : ",rel_l2,rel_h1");
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

static void log_row(FILE *f, const Model *m, int64_t epoch, int64_t step, double secs, double lr, double loss,
                    const Metrics *mt, const double *rel, int n_rel) {
    fprintf(f, "%lld,%lld,%.3f,%.6g,%.9g", (long long)epoch, (long long)step, secs, lr, loss);
    if (m->classifier) {
        if (mt && mt->has_acc) fprintf(f, ",%.6f", mt->accuracy);
        else fputs(",", f);
    } else {
        if (mt && mt->has_l2) fprintf(f, ",%.9g", mt->rel_l2);
        else fputs(",", f);
        if (mt && mt->has_h1) fprintf(f, ",%.9g", mt->rel_h1);
        else fputs(",", f);
    }
    for (int i = 0; i < n_rel; i++) {
        if (isnan(rel[i])) fputs(",", f);   /* an iteration that never ran */
        else fprintf(f, ",%.6g", rel[i]);
    }
    fputc('\n', f);
    fflush(f);
}

static int save(Trainer *t, const char *path, const void *P) {
    char err[1024];
    if (checkpoint_save(path, t->m, P, t->f64, &t->opt, &t->state, t->spec_hash, err, sizeof err)) {
        fprintf(stderr, "dino-jit: error: %s\n", err);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------- training */

/* Stops after a non-finite loss: reports it and writes the last good parameters. */
static void stop_on_nan(Trainer *t, const TrainOptions *o, const void *good, int64_t epoch, const char *where) {
    fprintf(stderr, "dino-jit: error: the loss is not finite (NaN or Inf) at epoch %lld, %s; stopping\n",
            (long long)epoch + 1, where);
    if (!o->save) return;
    memcpy(t->P, good, t->es * (size_t)t->m->n_weights);
    if (save(t, o->save, t->P) == 0)
        fprintf(stderr, "dino-jit: the last good parameters (from the start of epoch %lld) are in %s\n",
                (long long)epoch + 1, o->save);
}

int train(Trainer *t, const Dataset *train_set, const Dataset *test_set, const TrainOptions *o) {
    const Model *m = t->m;
    const TrainSpec *ts = &m->train;
    Backend *b = t->backend;
    int64_t N = train_set->n, epochs = ts->epochs;
    if (t->state.epoch >= epochs) return 0;
    if (N == 0) {
        fprintf(stderr, "dino-jit: error: the training split is empty\n");
        return 1;
    }
    int B = ts->batch < N ? ts->batch : (int)N;
    int64_t steps_per_epoch = (N + B - 1) / B, total_steps = epochs * steps_per_epoch;
    char err[1024];
    if (b->set_data(b, train_set, B, err, sizeof err)) {
        fprintf(stderr, "dino-jit: error: %s\n", err);
        return 1;
    }
    if (!o->quiet)
        fprintf(stderr, "dino-jit: training workspace %.1f MiB: %.1f KiB per sample x batch %d (the values the backward pass reads)\n",
                (double)b->work_per_sample * B / 1048576.0, (double)b->work_per_sample / 1024.0, B);
    void *good = xmalloc(t->es * (size_t)m->n_weights);
    int64_t *idx = xmalloc(sizeof(int64_t) * (size_t)N);
    FILE *log = NULL;
    if (o->log && !(log = open_log(m, o->log, t->state.epoch > 0))) {
        fprintf(stderr, "dino-jit: error: cannot write the log '%s'\n", o->log);
        free(good), free(idx);
        return 1;
    }

    int rc = 0;
    double t_start = now(), last_live = 0;
    int64_t stop = o->until > 0 && o->until < epochs ? o->until : epochs;
    for (int64_t epoch = t->state.epoch; epoch < stop && rc == 0; epoch++) {
        double w[16], lr = ts->lr, t_epoch = now();
        for (int i = 0; i < m->n_loss; i++) w[i] = loss_weight(&m->loss[i], epoch);
        b->pull(b);
        memcpy(good, t->P, t->es * (size_t)m->n_weights);
        TrainState at_start = t->state;
        for (int64_t i = 0; i < N; i++) idx[i] = i;
        rng_permute(&t->rng, idx, N);
        b->begin_epoch(b, idx);
        for (int64_t s = 0; s < steps_per_epoch; s++) {
            int64_t first = s * B;
            int n = N - first < B ? (int)(N - first) : B;
            lr = schedule_lr(ts, ts->lr, t->state.step, total_steps);
            if (b->step(b, first, n, w, lr)) {
                char where[96];
                snprintf(where, sizeof where, "step %lld (batch %lld of the epoch)", (long long)t->state.step + 1,
                         (long long)s + 1);
                t->state = at_start;
                stop_on_nan(t, o, good, epoch, where);
                rc = 1;
                break;
            }
            t->state.step++;
            if (o->live && now() - last_live > 0.2) {
                last_live = now();
                fprintf(stderr, "\r  epoch %lld/%lld  batch %lld/%lld   ", (long long)epoch + 1, (long long)epochs,
                        (long long)s + 1, (long long)steps_per_epoch);
            }
        }
        if (rc) break;
        double epoch_loss = b->take_loss(b) / (double)N, *sums = NULL, *rel = NULL;
        int n_rel = 0;
        char cbuf[512] = "";
        if (b->n_monitors) {
            sums = xmalloc(sizeof(double) * (size_t)b->n_monitors);
            rel = xmalloc(sizeof(double) * (size_t)b->n_monitors);
            b->take_monitors(b, sums);
            n_rel = corrections(m, sums, N, rel);
            format_corrections(m, rel, cbuf, sizeof cbuf);
            warn_unfinished(m, rel);
        }
        if (!isfinite(epoch_loss)) {
            free(sums), free(rel);
            char where[96];
            snprintf(where, sizeof where, "in steps %lld to %lld", (long long)at_start.step + 1, (long long)t->state.step);
            t->state = at_start;
            stop_on_nan(t, o, good, epoch, where);
            rc = 1;
            break;
        }
        t->state.epoch = epoch + 1;
        rng_save(&t->rng, t->state.rng);
        int last = epoch + 1 == epochs || epoch + 1 == o->until, eval_now = last || (ts->eval_every > 0 && (epoch + 1) % ts->eval_every == 0);
        Metrics mt = {0};
        if (eval_now && test_set->n > 0) evaluate(t, test_set, &mt);
        char mbuf[128];
        format_metrics(&mt, mbuf, sizeof mbuf);
        double secs = now() - t_start;
        if (o->live) fputs("\r\033[K", stderr);
        if (!o->quiet || last)
            fprintf(stderr, "epoch %lld/%lld  loss %.4e  lr %.3g  %.2f s%s%s\n", (long long)epoch + 1, (long long)epochs,
                    epoch_loss, lr, now() - t_epoch, mbuf, cbuf);
        if (log)
            log_row(log, m, epoch + 1, t->state.step, secs, lr, epoch_loss, eval_now && test_set->n ? &mt : NULL, rel, n_rel);
        free(sums), free(rel);
        if (o->save && eval_now) {
            b->pull(b);
            if (save(t, o->save, t->P)) rc = 1;
        }
    }
    if (log) fclose(log);
    free(good), free(idx);
    return rc;
}
