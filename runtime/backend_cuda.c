/* backend_cuda.c - the CUDA backend: generated kernels, data and parameters in GPU memory.
 *
 * Setup: the model's CUDA source (emit_cuda.c) is compiled by NVRTC for this GPU's
 * architecture to a CUBIN, cached on disk (cache.c), and loaded with the driver API.
 * Training: the whole training set is copied to the GPU once; each epoch the host uploads the
 * shuffled row indices (one small copy), and each step is, all on one stream with no host
 * synchronisation: gather the batch rows by index, zero the loss terms, run the training
 * kernels of the launch plan, add the weighted loss to a running sum on the GPU, and run the
 * optimiser kernel over the flat parameter buffer. The host reads the loss sum once per epoch
 * (so a NaN is noticed at the end of the epoch in which it appeared). Parameters and moments
 * come back to the host only for evaluation output, checkpoints and the NaN stop.
 *
 * UNTESTED ON A DEVICE in the session that wrote it (no GPU was available): the GPU tests in
 * tests/ skip visibly without one; the GPU campaign issue runs them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cache.h"
#include "cuda_driver.h"
#include "emit.h"
#include "nvrtc.h"

enum { PREDICT_BATCH = 1024 };

typedef struct {
    Backend base;
    CudaDriver drv;
    CUmodule mod;
    CUstream stream;
    CudaPlan plan;
    CUfunction *train_fn, *predict_fn;
    CUfunction set_step, gather_real, gather_label, accumulate_loss, adam, adamw, sgd;
    const Model *m;
    size_t es;
    int batch;
    int64_t n_train;
    /* device buffers */
    CUdeviceptr P, G, M, V;                 /* [n_params] each */
    CUdeviceptr X, Y, J, L;                 /* training set: [N, in], [N, out], [N, out, in], [N] */
    CUdeviceptr idx;                        /* [N] this epoch's row order */
    CUdeviceptr bx, by, bJ, bl;             /* one batch */
    CUdeviceptr work, terms, loss;          /* workspace; [n_loss + n_monitors] doubles;
                                               [1 + n_monitors]: the epoch's loss and diagnostic sums */
    CUdeviceptr step, w;                    /* [STEP_VALUES] the step's scalars (emit.h); w = the loss
                                               weights in it */
    /* A full batch's launches, captured once as a CUDA graph and replayed every step (the last,
     * partial batch of an epoch launches its kernels one by one) */
    int graphs;                             /* 1 use graphs, 0 not (DINO_CUDA_GRAPH=0, no driver
                                               support, or a capture that failed) */
    CUgraph graph;
    CUgraphExec graph_exec;
    double *acc;                            /* [1 + n_monitors] host copy of `loss` at take_loss */
    CUdeviceptr pterms;                     /* predict's terms: Parareal corrections and gates (pint tol) */
    char err[1024];
} CudaBackend;

/* Aborts the run on a driver error inside a step: there is no way to continue safely. */
static void must(CudaBackend *c, CUresult r, const char *what) {
    if (cu_check(&c->drv, r, what, c->err, sizeof c->err) == 0) return;
    fprintf(stderr, "dino-jit: error: CUDA: %s\n", c->err);
    exit(2);
}

/* "1.25 GiB", "12.0 MiB", "3.4 KiB", "100 B" */
static const char *size_str(size_t bytes, char *buf, size_t len) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    if (u == 0) snprintf(buf, len, "%zu B", bytes);
    else snprintf(buf, len, "%.*f %s", v < 10 ? 2 : 1, v, units[u]);
    return buf;
}

static CUdeviceptr dalloc(CudaBackend *c, size_t bytes, const char *what) {
    CUdeviceptr p = 0;
    if (bytes == 0) return 0;
    CUresult r = c->drv.cuMemAlloc(&p, bytes);
    if (r == CUDA_ERROR_OUT_OF_MEMORY) {
        size_t free_b = 0, total = 0;
        char need[32], fr[32], tot[32];
        c->drv.cuMemGetInfo(&free_b, &total);
        fprintf(stderr, "dino-jit: error: out of GPU memory allocating %s: needs %s more, %s of %s free\n", what,
                size_str(bytes, need, sizeof need), size_str(free_b, fr, sizeof fr), size_str(total, tot, sizeof tot));
        exit(1);
    }
    must(c, r, what);
    return p;
}

static void launch(CudaBackend *c, CUfunction f, const CudaLaunch *l, int n, void **args) {
    must(c, c->drv.cuLaunchKernel(f, (unsigned)cuda_grid_x(l, n, 2 * c->drv.sms), (unsigned)l->grid_y, (unsigned)l->grid_z,
                                  (unsigned)l->block, 1, 1, (unsigned)l->shared, c->stream, args, NULL), l->kernel);
}

static void launch_1d(CudaBackend *c, CUfunction f, long long count, void **args, const char *what) {
    long long blocks = (count + 255) / 256;
    if (blocks > 65535 * 16) blocks = 65535 * 16;   /* the kernels stride over the rest */
    if (blocks < 1) blocks = 1;
    must(c, c->drv.cuLaunchKernel(f, (unsigned)blocks, 1, 1, 256, 1, 1, 0, c->stream, args, NULL), what);
}

/* ---------------------------------------------------------------------------- interface */

static int cuda_set_data(Backend *b, const Dataset *d, int batch, char *err, size_t errlen) {
    CudaBackend *c = (CudaBackend *)b;
    const Model *m = c->m;
    size_t es = c->es, N = (size_t)d->n, in = (size_t)m->in_dim, out = (size_t)m->out_dim;
    size_t need = es * N * (in + (d->y ? out : 0) + (d->J ? out * in : 0)) + (d->label ? 4 * N : 0) + 8 * N +
                  es * (size_t)batch * (in + out + (d->J ? out * in : 0)) + es * (size_t)c->plan.train_work * (size_t)batch;
    size_t free_b = 0, total = 0;
    c->drv.cuMemGetInfo(&free_b, &total);
    if (need > free_b) {
        char nb[32], fb[32], tb[32];
        snprintf(err, errlen, "out of GPU memory: the training data and workspace need %s, %s of %s are free (%s)",
                 size_str(need, nb, sizeof nb), size_str(free_b, fb, sizeof fb), size_str(total, tb, sizeof tb),
                 workspace_advice(m));
        return -1;
    }
    c->batch = batch;
    c->n_train = d->n;
    c->X = dalloc(c, es * N * in, "the training inputs");
    must(c, c->drv.cuMemcpyHtoD(c->X, d->x, es * N * in), "copying the training inputs");
    if (d->y) {
        c->Y = dalloc(c, es * N * out, "the training outputs");
        must(c, c->drv.cuMemcpyHtoD(c->Y, d->y, es * N * out), "copying the training outputs");
    }
    if (d->J) {
        c->J = dalloc(c, es * N * out * in, "the training Jacobians");
        must(c, c->drv.cuMemcpyHtoD(c->J, d->J, es * N * out * in), "copying the training Jacobians");
    }
    if (d->label) {
        c->L = dalloc(c, 4 * N, "the training labels");
        must(c, c->drv.cuMemcpyHtoD(c->L, d->label, 4 * N), "copying the training labels");
    }
    c->idx = dalloc(c, 8 * N, "the row order");
    c->bx = dalloc(c, es * (size_t)batch * in, "a batch");
    if (d->y) c->by = dalloc(c, es * (size_t)batch * out, "a batch");
    if (d->J) c->bJ = dalloc(c, es * (size_t)batch * out * in, "a batch");
    if (d->label) c->bl = dalloc(c, 4 * (size_t)batch, "a batch");
    c->work = dalloc(c, es * (size_t)c->plan.train_work * (size_t)batch, "the training workspace");
    b->work_per_sample = es * (size_t)c->plan.train_work;
    return 0;
}

/* Gathers rows order[first .. first+n) of a device array [N, cols] into dst [n, cols]. */
static void gather(CudaBackend *c, CUdeviceptr src, CUdeviceptr dst, long long cols, int n) {
    void *args[] = {&src, &cols, &c->idx, &c->step, &n, &dst};
    launch_1d(c, c->gather_real, (long long)n * cols, args, "dino_gather");
}

static void gather_labels(CudaBackend *c, int n) {
    void *args[] = {&c->L, &c->idx, &c->step, &n, &c->bl};
    launch_1d(c, c->gather_label, n, args, "dino_gather_label");
}

/* The epoch's row order goes to the GPU once; the host array must stay valid until the copy
 * is done, so wait for it (one small copy per epoch). */
static void cuda_begin_epoch(Backend *b, const int64_t *order) {
    CudaBackend *c = (CudaBackend *)b;
    must(c, c->drv.cuMemcpyHtoDAsync(c->idx, order, 8 * (size_t)c->n_train, c->stream), "uploading the row order");
    must(c, c->drv.cuStreamSynchronize(c->stream), "uploading the row order");
}

/* The launches of one training step on a batch of n rows; what changes from step to step is
 * read from c->step, so this sequence can be captured once and replayed. */
static void step_launches(CudaBackend *c, int n) {
    const Model *m = c->m;
    gather(c, c->X, c->bx, m->in_dim, n);
    if (c->Y) gather(c, c->Y, c->by, m->out_dim, n);
    if (c->J) gather(c, c->J, c->bJ, (long long)m->out_dim * m->in_dim, n);
    if (c->L) gather_labels(c, n);
    /* the first training kernel zeroes G and the loss terms */
    int nmax = c->batch;
    void *args[] = {&c->P, &c->G, &n, &nmax, &c->bx, &c->by, &c->bJ, &c->bl, &c->w, &c->terms, &c->work};
    for (int i = 0; i < c->plan.n_train; i++) launch(c, c->train_fn[i], &c->plan.train[i], n, args);
    int n_terms = m->n_loss, n_monitors = c->base.n_monitors;
    void *acc[] = {&c->terms, &c->w, &n_terms, &n_monitors, &n, &c->loss};
    must(c, c->drv.cuLaunchKernel(c->accumulate_loss, 1, 1, 1, 1, 1, 1, 0, c->stream, acc, NULL), "dino_accumulate_loss");
    /* the optimiser over the contiguous parameter buffer (the same formulas as optim.c) */
    const OptimConfig *k = &c->base.opt->cfg;
    long long count = c->base.opt->n;
    double b1 = k->beta1, b2 = k->beta2, eps = k->eps, decay = k->decay, mom = k->momentum;
    if (k->kind == OPT_SGD) {
        void *args_sgd[] = {&c->P, &c->G, &c->M, &count, &c->step, &decay, &mom};
        launch_1d(c, c->sgd, count, args_sgd, "dino_sgd");
    } else {
        void *args_adam[] = {&c->P, &c->G, &c->M, &c->V, &count, &c->step, &b1, &b2, &eps, &decay};
        launch_1d(c, k->kind == OPT_ADAMW ? c->adamw : c->adam, count, args_adam, "dino_adam");
    }
}

/* Captures step_launches for a full batch as a graph. A driver that refuses (too old, or an
 * error in the capture) leaves graphs off: the steps then launch their kernels one by one. */
static void capture_step(CudaBackend *c) {
    CudaDriver *d = &c->drv;
    if (d->cuStreamBeginCapture(c->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL) != 0) {
        c->graphs = 0;
        return;
    }
    step_launches(c, c->batch);
    CUresult r = d->cuStreamEndCapture(c->stream, &c->graph);
    if (r == 0 && d->cuGraphInstantiate(&c->graph_exec, c->graph, 0) == 0) return;
    if (r == 0) d->cuGraphDestroy(c->graph);
    c->graph = NULL, c->graph_exec = NULL, c->graphs = 0;
}

_Static_assert(STEP_WEIGHTS + LOSS_CROSS_ENTROPY + 1 <= STEP_VALUES, "DinoStep holds a weight per loss kind");

static int cuda_step(Backend *b, int64_t first_row, int n, const double *w, double lr) {
    CudaBackend *c = (CudaBackend *)b;
    Optim *o = b->opt;
    o->step++;
    const OptimConfig *k = &o->cfg;
    /* the step's scalars go in as a kernel argument: no host memory the copy could race with */
    struct { double v[STEP_VALUES]; } s = {{0}};
    s.v[STEP_FIRST] = (double)first_row;
    s.v[STEP_LR] = lr;
    s.v[STEP_BC1] = 1 - pow(k->beta1, (double)o->step);
    s.v[STEP_BC2] = 1 - pow(k->beta2, (double)o->step);
    s.v[STEP_FIRST_UPDATE] = o->step == 1;
    for (int i = 0; i < c->m->n_loss; i++) s.v[STEP_WEIGHTS + i] = w[i];
    void *args[] = {&c->step, &s};
    must(c, c->drv.cuLaunchKernel(c->set_step, 1, 1, 1, STEP_VALUES, 1, 1, 0, c->stream, args, NULL), "dino_set_step");
    if (c->graphs && n == c->batch && !c->graph_exec) capture_step(c);
    if (c->graphs && n == c->batch) must(c, c->drv.cuGraphLaunch(c->graph_exec, c->stream), "launching the training step");
    else step_launches(c, n);
    return 0;
}

static double cuda_take_loss(Backend *b) {
    CudaBackend *c = (CudaBackend *)b;
    size_t bytes = sizeof(double) * (size_t)(1 + b->n_monitors);
    must(c, c->drv.cuMemcpyDtoHAsync(c->acc, c->loss, bytes, c->stream), "reading the loss");
    must(c, c->drv.cuStreamSynchronize(c->stream), "training");
    must(c, c->drv.cuMemsetD8Async(c->loss, 0, bytes, c->stream), "zeroing the loss");
    return c->acc[0];
}

static void cuda_take_monitors(Backend *b, double *sums) {
    CudaBackend *c = (CudaBackend *)b;
    memcpy(sums, c->acc + 1, sizeof(double) * (size_t)b->n_monitors);
}

static void cuda_predict(Backend *b, const void *x, int64_t n, void *y, void *J) {
    CudaBackend *c = (CudaBackend *)b;
    const Model *m = c->m;
    size_t es = c->es, in = (size_t)m->in_dim, out = (size_t)m->out_dim;
    int nmax = n < PREDICT_BATCH ? (int)(n > 0 ? n : 1) : PREDICT_BATCH;
    CUdeviceptr dx = dalloc(c, es * (size_t)nmax * in, "prediction inputs"), dy = dalloc(c, es * (size_t)nmax * out, "predictions");
    CUdeviceptr dJ = J ? dalloc(c, es * (size_t)nmax * out * in, "predicted Jacobians") : 0;
    CUdeviceptr work = dalloc(c, es * (size_t)c->plan.predict_work * (size_t)nmax, "the prediction workspace");
    CUdeviceptr none = 0;
    for (int64_t i = 0; i < n; i += nmax) {
        int k = n - i < nmax ? (int)(n - i) : nmax;
        must(c, c->drv.cuMemcpyHtoDAsync(dx, (const char *)x + es * (size_t)i * in, es * (size_t)k * in, c->stream), "uploading inputs");
        /* the predict program writes its results into y (and J) */
        void *args[] = {&c->P, &none, &k, &nmax, &dx, &dy, &dJ, &none, &none, &c->pterms, &work};
        for (int j = 0; j < c->plan.n_predict; j++) launch(c, c->predict_fn[j], &c->plan.predict[j], k, args);
        must(c, c->drv.cuMemcpyDtoHAsync((char *)y + es * (size_t)i * out, dy, es * (size_t)k * out, c->stream), "reading predictions");
        if (J) must(c, c->drv.cuMemcpyDtoHAsync((char *)J + es * (size_t)i * out * in, dJ, es * (size_t)k * out * in, c->stream), "reading Jacobians");
        must(c, c->drv.cuStreamSynchronize(c->stream), "predicting");
    }
    c->drv.cuMemFree(dx), c->drv.cuMemFree(dy), c->drv.cuMemFree(work);
    if (dJ) c->drv.cuMemFree(dJ);
}

static void cuda_pull(Backend *b) {
    CudaBackend *c = (CudaBackend *)b;
    size_t bytes = c->es * (size_t)c->m->n_weights;
    must(c, c->drv.cuStreamSynchronize(c->stream), "training");
    must(c, c->drv.cuMemcpyDtoH(b->P, c->P, bytes), "reading the parameters");
    if (b->opt->m) must(c, c->drv.cuMemcpyDtoH(b->opt->m, c->M, bytes), "reading the optimiser state");
    if (b->opt->v) must(c, c->drv.cuMemcpyDtoH(b->opt->v, c->V, bytes), "reading the optimiser state");
}

static void cuda_push(Backend *b) {
    CudaBackend *c = (CudaBackend *)b;
    size_t bytes = c->es * (size_t)c->m->n_weights;
    must(c, c->drv.cuStreamSynchronize(c->stream), "training");
    must(c, c->drv.cuMemcpyHtoD(c->P, b->P, bytes), "copying the parameters");
    if (b->opt->m) must(c, c->drv.cuMemcpyHtoD(c->M, b->opt->m, bytes), "copying the optimiser state");
    if (b->opt->v) must(c, c->drv.cuMemcpyHtoD(c->V, b->opt->v, bytes), "copying the optimiser state");
}

static void cuda_free(Backend *b) {
    CudaBackend *c = (CudaBackend *)b;
    CUdeviceptr bufs[] = {c->P, c->G, c->M, c->V, c->X, c->Y, c->J, c->L, c->idx, c->bx, c->by, c->bJ, c->bl,
                          c->work, c->terms, c->step, c->loss, c->pterms};
    if (c->stream) c->drv.cuStreamSynchronize(c->stream);
    if (c->graph_exec) c->drv.cuGraphExecDestroy(c->graph_exec);
    if (c->graph) c->drv.cuGraphDestroy(c->graph);
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) c->drv.cuMemFree(bufs[i]);
    if (c->stream) c->drv.cuStreamDestroy(c->stream);
    if (c->mod) c->drv.cuModuleUnload(c->mod);
    cuda_close(&c->drv);
    free(c->train_fn), free(c->predict_fn), free(c->acc);
    cuda_plan_free(&c->plan);
    free(c);
}

/* ---------------------------------------------------------------------------- setup */

int cuda_available(char *err, size_t errlen) {
    CudaDriver d;
    if (cuda_open(&d, err, errlen)) return 0;
    cuda_close(&d);
    return 1;
}

/* The CUBIN for this source and GPU, from the cache or from NVRTC. */
static int get_cubin(CudaBackend *c, const char *src, size_t len, int use_cache, char **cubin, size_t *cubin_len,
                     double *secs, char *err, size_t errlen) {
    char arch[32];
    snprintf(arch, sizeof arch, "sm_%d%d", c->drv.cc_major, c->drv.cc_minor);
    int major = 0, minor = 0;
    if (nvrtc_version(&major, &minor) != NVRTC_OK) {
        snprintf(err, errlen, "the CUDA backend needs NVRTC (libnvrtc.so from the CUDA toolkit): not found; "
                 "install the toolkit or set CUDA_HOME, or use --backend cpu");
        return -1;
    }
    char key[256];
    snprintf(key, sizeof key, "%s nvrtc %d.%d -std=c++14 %s", arch, major, minor, nvrtc_speed_option());
    if (use_cache && cache_get("cuda", src, len, key, ".cubin", cubin, cubin_len) == 0) return 0;
    char *log = NULL;
    if (nvrtc_compile(src, "dino.cu", arch, 1, cubin, cubin_len, &log, err, errlen) != NVRTC_OK) {
        char saved[2048] = "";
        cache_save_source("cuda", src, len, key, ".cu", saved, sizeof saved);
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, "\n%s\nthe generated source is saved as %s", log ? log : "", saved);
        free(log);
        return -1;
    }
    free(log);
    *secs = 0;
    cache_put("cuda", src, len, key, ".cubin", *cubin, *cubin_len);
    return 0;
}

Backend *backend_cuda_new(const Model *m, int jac, uint64_t hash, void *P, Optim *opt, double *compile_secs,
                          char *err, size_t errlen) {
    CudaBackend *c = calloc(1, sizeof *c);
    if (!c || cuda_open(&c->drv, err, errlen)) {
        free(c);
        return NULL;
    }
    c->m = m;
    c->es = m->train.f64 ? 8 : 4;
    Arena a = {0};
    size_t len;
    /* $DINO_CUDA_FUSE (auto, none, tiles) chooses how kernels are grouped, for experiments */
    const char *fuse_env = getenv("DINO_CUDA_FUSE");
    int fuse = fuse_env && *fuse_env ? fuse_mode(fuse_env) : FUSE_AUTO;
    if (fuse < 0) {
        snprintf(err, errlen, "DINO_CUDA_FUSE must be auto, none or tiles, not '%s'", fuse_env);
        cuda_free(&c->base);
        return NULL;
    }
    /* $DINO_CUDA_SHARE=0: every stage of a tile kernel written out (see emit_cuda.c), to compare */
    const char *share_env = getenv("DINO_CUDA_SHARE");
    EmitOptions eo = {.f64 = m->train.f64, .spec_hash = hash, .fuse = fuse, .no_share = share_env && strcmp(share_env, "0") == 0};
    char *src = generate_cuda(&a, m, (JacMode)jac, &eo, &len, &c->plan, err, errlen);
    arena_free(&a);
    char *cubin = NULL;
    size_t cubin_len = 0;
    *compile_secs = 0;
    if (!src || get_cubin(c, src, len, 1, &cubin, &cubin_len, compile_secs, err, errlen)) {
        free(src);
        cuda_free(&c->base);
        return NULL;
    }
    if (c->drv.cuModuleLoadData(&c->mod, cubin) != 0) {   /* a corrupt cache entry is a miss */
        free(cubin);
        cubin = NULL;
        if (get_cubin(c, src, len, 0, &cubin, &cubin_len, compile_secs, err, errlen)) {
            free(src);
            cuda_free(&c->base);
            return NULL;
        }
        c->mod = NULL;
    }
    free(src);
    int bad = c->mod ? 0 : cu_check(&c->drv, c->drv.cuModuleLoadData(&c->mod, cubin), "loading the compiled kernels", err, errlen);
    free(cubin);
    if (!bad) bad = cu_check(&c->drv, c->drv.cuStreamCreate(&c->stream, 0), "cuStreamCreate", err, errlen);
    c->train_fn = calloc((size_t)c->plan.n_train + 1, sizeof(CUfunction));
    c->predict_fn = calloc((size_t)c->plan.n_predict + 1, sizeof(CUfunction));
    for (int i = 0; !bad && i < c->plan.n_train; i++)
        bad = cu_check(&c->drv, c->drv.cuModuleGetFunction(&c->train_fn[i], c->mod, c->plan.train[i].kernel), c->plan.train[i].kernel, err, errlen);
    for (int i = 0; !bad && i < c->plan.n_predict; i++)
        bad = cu_check(&c->drv, c->drv.cuModuleGetFunction(&c->predict_fn[i], c->mod, c->plan.predict[i].kernel), c->plan.predict[i].kernel, err, errlen);
    const char *util[] = {"dino_set_step", "dino_gather", "dino_gather_label", "dino_accumulate_loss", "dino_adam",
                          "dino_adamw", "dino_sgd"};
    CUfunction *fns[] = {&c->set_step, &c->gather_real, &c->gather_label, &c->accumulate_loss, &c->adam, &c->adamw, &c->sgd};
    for (int i = 0; !bad && i < 7; i++) bad = cu_check(&c->drv, c->drv.cuModuleGetFunction(fns[i], c->mod, util[i]), util[i], err, errlen);
    if (bad) {
        cuda_free(&c->base);
        return NULL;
    }
    size_t bytes = c->es * (size_t)m->n_weights;
    c->P = dalloc(c, bytes, "the parameters");
    c->G = dalloc(c, bytes, "the gradient");
    c->M = dalloc(c, bytes, "the optimiser state");
    c->V = dalloc(c, bytes, "the optimiser state");
    Backend *b = &c->base;
    b->n_monitors = monitor_count(m);
    size_t n_acc = (size_t)(1 + b->n_monitors);
    c->terms = dalloc(c, 8 * (size_t)(m->n_loss + b->n_monitors), "the loss terms");
    c->step = dalloc(c, 8 * STEP_VALUES, "the step's scalars");
    c->w = c->step + 8 * STEP_WEIGHTS;
    const char *graph_env = getenv("DINO_CUDA_GRAPH");
    c->graphs = c->drv.cuStreamBeginCapture && !(graph_env && strcmp(graph_env, "0") == 0);
    c->loss = dalloc(c, 8 * n_acc, "the loss sum");
    c->acc = calloc(n_acc, sizeof(double));
    c->pterms = dalloc(c, 8 * (size_t)(m->n_loss + b->n_monitors), "the prediction terms");
    must(c, c->drv.cuMemsetD8Async(c->loss, 0, 8 * n_acc, c->stream), "zeroing the loss");
    snprintf(b->name, sizeof b->name, "CUDA: %s (sm_%d%d, %d SMs)", c->drv.name, c->drv.cc_major, c->drv.cc_minor, c->drv.sms);
    b->f64 = m->train.f64;
    b->set_data = cuda_set_data;
    b->begin_epoch = cuda_begin_epoch;
    b->step = cuda_step;
    b->take_loss = cuda_take_loss;
    b->take_monitors = cuda_take_monitors;
    b->predict = cuda_predict;
    b->pull = cuda_pull;
    b->push = cuda_push;
    b->free = cuda_free;
    b->P = P;
    b->opt = opt;
    cuda_push(b);
    return b;
}
