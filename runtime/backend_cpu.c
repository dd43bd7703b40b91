/* backend_cpu.c - the CPU backend: the generated C module on host arrays (see backend.h).
 *
 * grad gathers the batch rows into contiguous buffers and runs dino_train_step (forward,
 * Jacobian, loss, gradient in one pass); update takes the optimiser step (optim.c). Nothing
 * here prints or exits: failures come back as a status with the message in Backend.err.
 *
 * Read-ahead: when the training set is memory-mapped (data.h), each grad asks the kernel for the
 * pages of this process's rows of the next batches (data_read_ahead_step) before computing its own,
 * so that the disk reads overlap the computation; in epochs that begin with the data (nearly) all
 * in the page cache it does not (data_resident). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "backend.h"
#include "cpu_jit.h"

enum { PREDICT_BATCH = 256 };

typedef struct {
    Backend base;
    CpuModule *mod;
    const Model *m;
    const Dataset *train;
    const int64_t *order; /* this epoch's row order */
    size_t es;
    int batch;
    void *x, *y, *J, *G, *work; /* batch buffers: [B, in], [B, out], [B, out, in]; G [n_params] */
    int32_t *label;             /* [B] */
    double *terms;              /* [n_loss + n_monitors] one step's terms */
    double *sums;               /* [1 + n_monitors + n_loss] the loss, monitor and loss-term sums since take_sums */
    void *pwork;                /* the prediction workspace, kept between calls when small (PREDICT_KEEP) */
    size_t pwork_bytes;
    DataReadAhead ahead; /* read-ahead (data.h; nothing when the training set is not mapped) */
} CpuBackend;

/* A prediction workspace up to this size is kept for the next call (one sample's prediction
 * paid more for calloc and free than for its forward pass); a larger one is freed after it. */
enum { PREDICT_KEEP = 4 << 20 };

/* calloc that says what ran out in err (Backend.err). */
static void *zalloc(size_t n, size_t size, const char *what, char *err, size_t errlen) {
    void *p = calloc(n ? n : 1, size);
    if (!p) snprintf(err, errlen, "out of memory: %s needs %.1f MiB", what, (double)n * (double)size / 1048576.0);
    return p;
}

static int cpu_set_data(Backend *b, const Dataset *train, int batch) {
    CpuBackend *c = (CpuBackend *)b;
    const Model *m = c->m;
    /* the buffers of an earlier call (a second train() on the backend) */
    free(c->work), free(c->x), free(c->y), free(c->J), free(c->label);
    data_read_ahead_free(&c->ahead);
    c->work = c->x = c->y = c->J = NULL;
    c->label = NULL;
    size_t work = (size_t)c->mod->train_work(batch);
    void *w = calloc(work ? work : 1, c->es);
    if (!w) {
        snprintf(b->err, sizeof b->err,
                 "out of memory: the training workspace needs %.1f MiB (%.1f KiB per sample x batch %d); %s",
                 (double)work * (double)c->es / 1048576.0, (double)c->mod->train_work(1) * (double)c->es / 1024.0,
                 batch, workspace_advice(m));
        return DINO_EUSER;
    }
    c->train = train;
    c->batch = batch;
    c->work = w;
    size_t B = (size_t)batch;
    char *e = b->err;
    size_t el = sizeof b->err;
    if (!(c->x = zalloc(B * (size_t)m->in_dim, c->es, "a batch", e, el))) return DINO_EUSER;
    if (!m->classifier && !(c->y = zalloc(B * (size_t)m->out_dim, c->es, "a batch", e, el))) return DINO_EUSER;
    if (train->J && !(c->J = zalloc(B * (size_t)(m->out_dim * m->in_dim), c->es, "a batch", e, el))) return DINO_EUSER;
    if (m->classifier && !(c->label = zalloc(B, sizeof(int32_t), "a batch", e, el))) return DINO_EUSER;
    if (data_read_ahead_open(&c->ahead, train, batch)) {
        snprintf(e, el, "out of memory: a batch");
        return DINO_EUSER;
    }
    b->work_per_sample = (size_t)c->mod->train_work(1) * c->es;
    return DINO_OK;
}

static int cpu_begin_epoch(Backend *b, const int64_t *order) {
    CpuBackend *c = (CpuBackend *)b;
    c->order = order;
    data_read_ahead_epoch(&c->ahead, order);
    return DINO_OK;
}

static int cpu_grad(Backend *b, int64_t first, int n, const double *w, double *loss) {
    CpuBackend *c = (CpuBackend *)b;
    const Model *m = c->m;
    double *terms = c->terms, l = 0;
    data_read_ahead_step(&c->ahead, first, n);
    data_gather(c->train, c->order + first, n, c->x, c->y, c->J, c->label);
    c->mod->train_step(b->P, c->G, n, c->batch, c->x, c->y, c->J, c->label, w, terms, c->work);
    for (int i = 0; i < m->n_loss; i++) l += w[i] * terms[i];
    c->sums[0] += l * n;
    for (int i = 0; i < b->n_monitors; i++) c->sums[1 + i] += terms[m->n_loss + i] * n;
    for (int i = 0; i < m->n_loss; i++) c->sums[1 + b->n_monitors + i] += terms[i] * n;
    *loss = l * n;
    return DINO_OK;
}

static int cpu_update(Backend *b, double lr) {
    optim_step(b->opt, b->P, ((CpuBackend *)b)->G, lr);
    return DINO_OK;
}

static int cpu_take_sums(Backend *b, double *sums) {
    CpuBackend *c = (CpuBackend *)b;
    size_t bytes = sizeof(double) * (size_t)(1 + b->n_monitors + c->m->n_loss);
    memcpy(sums, c->sums, bytes);
    memset(c->sums, 0, bytes);
    return DINO_OK;
}

static int cpu_predict(Backend *b, const void *x, int64_t n, void *y, void *J) {
    CpuBackend *c = (CpuBackend *)b;
    const Model *m = c->m;
    int nmax = n < PREDICT_BATCH ? (int)(n > 0 ? n : 1) : PREDICT_BATCH;
    size_t bytes = (size_t)c->mod->predict_work(nmax) * c->es;
    void *work = c->pwork;
    if (bytes > c->pwork_bytes) {
        work = zalloc(bytes, 1, "the prediction workspace", b->err, sizeof b->err);
        if (!work) return DINO_EUSER;
        if (bytes <= PREDICT_KEEP) { /* kept: the generated code never reads what it did not write */
            free(c->pwork);
            c->pwork = work;
            c->pwork_bytes = bytes;
        }
    }
    if (b->unfinished) memset(b->unfinished, 0, sizeof(int64_t) * (size_t)m->n_odes);
    for (int64_t i = 0; i < n; i += nmax) {
        int k = n - i < nmax ? (int)(n - i) : nmax;
        const void *xi = (const char *)x + c->es * (size_t)(i * m->in_dim);
        void *yi = (char *)y + c->es * (size_t)(i * m->out_dim);
        void *Ji = J ? (char *)J + c->es * (size_t)(i * m->out_dim * m->in_dim) : NULL;
        if (b->unfinished && c->mod->predict_terms) { /* the chunk's terms: did dopri5 reach t1 */
            c->mod->predict_terms(b->P, k, nmax, xi, yi, Ji, work, c->terms);
            count_unfinished(b, m, c->terms, k);
        } else {
            c->mod->predict(b->P, k, nmax, xi, yi, Ji, work);
        }
    }
    if (work != c->pwork) free(work);
    return DINO_OK;
}

static int cpu_nothing(Backend *b) {
    (void)b;
    return DINO_OK;
}

static void cpu_free(Backend *b) {
    CpuBackend *c = (CpuBackend *)b;
    free(c->x), free(c->y), free(c->J), free(c->G), free(c->work), free(c->label);
    data_read_ahead_free(&c->ahead);
    free(c->terms), free(c->sums), free(b->unfinished), free(c->pwork);
    free(c);
}

Backend *backend_cpu_new(CpuModule *mod, const Model *m, void *P, Optim *opt, char *err, size_t errlen) {
    CpuBackend *c = zalloc(1, sizeof *c, "the CPU backend", err, errlen);
    if (!c) return NULL;
    Backend *b = &c->base;
    c->mod = mod;
    c->m = m;
    c->es = m->train.f64 ? sizeof(double) : sizeof(float);
    const char *threads = getenv("OMP_NUM_THREADS");
    snprintf(b->name, sizeof b->name, "CPU (%s threads)", threads && *threads ? threads : "all");
    b->f64 = m->train.f64;
    b->set_data = cpu_set_data;
    b->begin_epoch = cpu_begin_epoch;
    b->grad = cpu_grad;
    b->update = cpu_update;
    b->host_loss = 1;
    b->take_sums = cpu_take_sums;
    b->n_monitors = term_layout(m).n_monitors;
    b->predict = cpu_predict;
    b->pull = b->push = cpu_nothing;
    b->free = cpu_free;
    b->P = P;
    b->opt = opt;
    c->G = zalloc((size_t)m->n_weights, c->es, "the gradient", err, errlen);
    c->terms = c->G ? zalloc((size_t)(m->n_loss + b->n_monitors), sizeof(double), "the loss terms", err, errlen) : NULL;
    c->sums =
        c->terms ? zalloc((size_t)(1 + b->n_monitors + m->n_loss), sizeof(double), "the loss sums", err, errlen) : NULL;
    if (c->sums && has_dopri5(m))
        b->unfinished = zalloc((size_t)m->n_odes, sizeof(int64_t), "the prediction report", err, errlen);
    if (!c->sums || (has_dopri5(m) && !b->unfinished)) {
        cpu_free(b);
        return NULL;
    }
    b->grad_buf = c->G;
    return b;
}
