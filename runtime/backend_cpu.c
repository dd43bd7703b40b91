/* backend_cpu.c - the CPU backend: the generated C module on host arrays (see backend.h).
 *
 * A step gathers the batch rows into contiguous buffers, runs dino_train_step (forward,
 * Jacobian, loss, gradient in one pass), checks the loss, and takes the optimiser step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu_jit.h"
#include "ir.h"

enum { PREDICT_BATCH = 256 };

typedef struct {
    Backend base;
    CpuModule *mod;
    const Model *m;
    const Dataset *train;
    const int64_t *order;         /* this epoch's row order */
    size_t es;
    int batch;
    void *x, *y, *J, *G, *work;   /* batch buffers: [B, in], [B, out], [B, out, in]; G [n_params] */
    int32_t *label;               /* [B] */
    double loss_sum;
    double *terms;                /* [n_loss + n_monitors] one step's terms */
    double *monitor_sum, *monitor_taken;   /* [n_monitors] since the last take_loss, and then */
} CpuBackend;

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "dino-jit: internal error: out of memory (%zu bytes)\n", n * size);
        exit(2);
    }
    return p;
}

static int cpu_set_data(Backend *b, const Dataset *train, int batch, char *err, size_t errlen) {
    CpuBackend *c = (CpuBackend *)b;
    const Model *m = c->m;
    size_t work = (size_t)c->mod->train_work(batch);
    void *w = calloc(work ? work : 1, c->es);
    if (!w) {
        snprintf(err, errlen, "out of memory: the training workspace needs %.1f MiB (%.1f KiB per sample x batch %d); %s",
                 (double)work * (double)c->es / 1048576.0, (double)c->mod->train_work(1) * (double)c->es / 1024.0, batch,
                 workspace_advice(m));
        return -1;
    }
    c->train = train;
    c->batch = batch;
    size_t B = (size_t)batch;
    c->x = xcalloc(B * (size_t)m->in_dim, c->es);
    c->y = m->classifier ? NULL : xcalloc(B * (size_t)m->out_dim, c->es);
    c->J = train->J ? xcalloc(B * (size_t)(m->out_dim * m->in_dim), c->es) : NULL;
    c->label = m->classifier ? xcalloc(B, sizeof(int32_t)) : NULL;
    c->work = w;
    b->work_per_sample = (size_t)c->mod->train_work(1) * c->es;
    return 0;
}

static void cpu_begin_epoch(Backend *b, const int64_t *order) { ((CpuBackend *)b)->order = order; }

static int cpu_step(Backend *b, int64_t first, int n, const double *w, double lr) {
    CpuBackend *c = (CpuBackend *)b;
    const Model *m = c->m;
    double *terms = c->terms, loss = 0;
    data_gather(c->train, c->order + first, n, c->x, c->y, c->J, c->label);
    c->mod->train_step(b->P, c->G, n, c->batch, c->x, c->y, c->J, c->label, w, terms, c->work);
    for (int i = 0; i < m->n_loss; i++) loss += w[i] * terms[i];
    c->loss_sum += loss * n;
    for (int i = 0; i < b->n_monitors; i++) c->monitor_sum[i] += terms[m->n_loss + i] * n;
    if (!isfinite(loss)) return 1;
    optim_step(b->opt, b->P, c->G, lr);
    return 0;
}

static double cpu_take_loss(Backend *b) {
    CpuBackend *c = (CpuBackend *)b;
    double s = c->loss_sum;
    c->loss_sum = 0;
    for (int i = 0; i < b->n_monitors; i++) c->monitor_taken[i] = c->monitor_sum[i], c->monitor_sum[i] = 0;
    return s;
}

static void cpu_take_monitors(Backend *b, double *sums) {
    CpuBackend *c = (CpuBackend *)b;
    memcpy(sums, c->monitor_taken, sizeof(double) * (size_t)b->n_monitors);
}

static void cpu_predict(Backend *b, const void *x, int64_t n, void *y, void *J) {
    CpuBackend *c = (CpuBackend *)b;
    const Model *m = c->m;
    int nmax = n < PREDICT_BATCH ? (int)(n > 0 ? n : 1) : PREDICT_BATCH;
    void *work = xcalloc((size_t)c->mod->predict_work(nmax), c->es);
    for (int64_t i = 0; i < n; i += nmax) {
        int k = n - i < nmax ? (int)(n - i) : nmax;
        c->mod->predict(b->P, k, nmax, (const char *)x + c->es * (size_t)(i * m->in_dim),
                        (char *)y + c->es * (size_t)(i * m->out_dim),
                        J ? (char *)J + c->es * (size_t)(i * m->out_dim * m->in_dim) : NULL, work);
    }
    free(work);
}

static void cpu_nothing(Backend *b) { (void)b; }

static void cpu_free(Backend *b) {
    CpuBackend *c = (CpuBackend *)b;
    free(c->x), free(c->y), free(c->J), free(c->G), free(c->work), free(c->label);
    free(c->terms), free(c->monitor_sum), free(c->monitor_taken);
    free(c);
}

Backend *backend_cpu_new(CpuModule *mod, const Model *m, void *P, Optim *opt) {
    CpuBackend *c = xcalloc(1, sizeof *c);
    c->mod = mod;
    c->m = m;
    c->es = m->train.f64 ? sizeof(double) : sizeof(float);
    c->G = xcalloc((size_t)m->n_weights, c->es);
    Backend *b = &c->base;
    const char *threads = getenv("OMP_NUM_THREADS");
    snprintf(b->name, sizeof b->name, "CPU (%s threads)", threads && *threads ? threads : "all");
    b->f64 = m->train.f64;
    b->set_data = cpu_set_data;
    b->begin_epoch = cpu_begin_epoch;
    b->step = cpu_step;
    b->take_loss = cpu_take_loss;
    b->take_monitors = cpu_take_monitors;
    b->n_monitors = monitor_count(m);
    c->terms = xcalloc((size_t)(m->n_loss + b->n_monitors), sizeof(double));
    c->monitor_sum = xcalloc((size_t)b->n_monitors, sizeof(double));
    c->monitor_taken = xcalloc((size_t)b->n_monitors, sizeof(double));
    b->predict = cpu_predict;
    b->pull = b->push = cpu_nothing;
    b->free = cpu_free;
    b->P = P;
    b->opt = opt;
    return b;
}
