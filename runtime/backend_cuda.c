/* backend_cuda.c - the CUDA backend: generated kernels, data and parameters in GPU memory.
 *
 * Setup: the model's CUDA source (emit_cuda.c) is compiled by NVRTC for this GPU's
 * architecture to a CUBIN, cached on disk (cache.c), and loaded with the driver API.
 * Training: the whole training set is copied to the GPU once; each epoch the host uploads the
 * shuffled row indices (one small copy). A step is grad then update, all on one stream with no
 * host synchronisation. grad: gather the batch rows by index, run the training kernels of the
 * launch plan (the first zeroes the gradient and the loss terms), add the weighted loss and
 * the monitor terms to running sums on the GPU. update: the optimiser kernel over the flat
 * parameter buffer. Each part is captured once as a CUDA graph and replayed; when nothing
 * happens between them (Backend.fuse_update: one process), a full batch's gradient waits for
 * the update and both run as one graph, one launch a step. Under several processes with the
 * gradient summed by NCCL (Backend.sum_gradient), the backend enqueues the sum itself between
 * the gradient and the update: inside that one graph when the loaded NCCL can be captured
 * (2.9 or later), else outside the graphs. The host reads
 * the sums once per epoch (so a NaN is noticed at the end of the epoch in which it appeared).
 * Parameters and moments come back to the host only for evaluation output, checkpoints and
 * the NaN stop.
 *
 * Data that do not fit (issue 20): set_data decides from cuMemGetInfo, keeping a margin for
 * evaluation's buffers, whether the training set can live on the GPU; when it cannot (or its
 * allocation runs out of memory anyway, or DINO_CUDA_STREAM=1), the data stay in host memory
 * and the batches are streamed: grad gathers the batch's rows on the host (data_gather over the
 * shuffled order, as the CPU backend does) into one of two pinned host buffers and copies it with
 * cuMemcpyHtoDAsync, on a second stream, into one of two device batch buffers while the compute
 * stream trains on the other (double buffering). Events order the two streams: the compute
 * stream waits for the copy of its batch (`copied`), a copy into a device buffer waits until the
 * step that read it two steps earlier is done (`consumed`), and the host waits for the copy out of
 * a pinned buffer before it gathers into it again. The CUDA graphs stay: a step's kernels read
 * fixed device batch buffers, so each buffer (slot) has its own captured graphs, and the copy and
 * the waits are stream operations outside them.
 *
 * Nothing here prints or exits: a failure is a status with the message in Backend.err. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "backend.h"
#include "cache.h"
#include "cuda_driver.h"
#include "nvrtc.h"

enum { PREDICT_BATCH = 1024 };
enum { GRAPH_GRAD, GRAPH_UPDATE, GRAPH_STEP, N_GRAPHS }; /* CudaBackend.graph */

typedef struct {
    Backend base;
    CudaDriver drv;
    CUmodule mod;
    CUstream stream;
    CudaPlan plan;
    CUfunction *train_fn, *predict_fn;
    int *train_tiles, *predict_tiles; /* a tile kernel's max_tiles: blocks per SM x SMs */
    CUfunction set_step, gather_real, gather_label, accumulate_loss, adam, adamw, sgd;
    const Model *m;
    size_t es;
    int batch;
    int64_t n_train;
    /* device buffers */
    CUdeviceptr P, G, M, V;        /* [n_params] each */
    CUdeviceptr X, Y, J, L;        /* training set: [N, in], [N, out], [N, out, in], [N]; 0 streaming */
    CUdeviceptr idx;               /* [N] this epoch's row order; 0 streaming */
    CUdeviceptr bx[2], by[2];      /* a batch (in [0]); streaming: */
    CUdeviceptr bJ[2], bl[2];      /* two, one per slot */
    CUdeviceptr work, terms, loss; /* workspace; [n_loss + n_monitors] doubles;
                                               [1 + n_monitors + n_loss]: the epoch's loss, diagnostic
                                               and loss-term sums (Backend.take_sums) */
    CUdeviceptr step, w;           /* [STEP_VALUES] the step's scalars (abi.h); w = the loss
                                               weights in it */
    double stepv[STEP_VALUES];     /* host copy of the step's scalars (grad sets the first
                                               row and weights, update the rate and corrections) */
    /* Captured once as CUDA graphs and replayed: [GRAPH_GRAD] a full batch's gradient (the
     * last, partial batch of an epoch launches its kernels one by one), [GRAPH_UPDATE] the
     * update, [GRAPH_STEP] both, for a full batch when Backend.fuse_update allows */
    int graphs; /* 1 use graphs, 0 not (DINO_CUDA_GRAPH=0, no driver
                                               support, or a capture that failed) */
    /* [slot][GRAPH_*]: a step reads slot's batch buffers */
    CUgraph graph[2][N_GRAPHS];
    CUgraphExec graph_exec[2][N_GRAPHS];
    int deferred;       /* a full batch's gradient waits for the update (fuse_update) */
    double *acc;        /* [1 + n_monitors + n_loss] host copy of `loss` at take_sums */
    CUdeviceptr pterms; /* predict's terms: Parareal corrections and gates (pint tol) */
    int debug;          /* DINO_CUDA_DEBUG=1: synchronise after each launch, no graphs */
    char *src;          /* with debug: the .cu, for the kernels' stage comments */
    /* Streaming the training data from host memory (see the top of the file): the slot whose
     * batch buffers this step reads (0 when resident) and the next step's; the host training
     * set and this epoch's row order (begin_epoch); the pinned host batch buffers per slot; the
     * copies' stream; per slot the events recorded on `copy` after its batch's copy and on
     * `stream` after the kernels that read it, and whether each was recorded yet */
    int streaming;
    int slot, next_slot;
    const Dataset *data;
    const int64_t *order;
    DataReadAhead ahead; /* mapped training data: the next batches' pages asked for (data.h) */
    void *hx[2], *hy[2], *hJ[2];
    int32_t *hl[2];
    CUstream copy;
    CUevent copied[2], consumed[2];
    int copied_set[2], consumed_set[2];
    int oom;            /* the last dalloc ran out of memory */
    double graph_scale; /* the device sum's scale captured in the GRAPH_STEP graphs */
} CudaBackend;

/* A driver call's status: DINO_OK, or DINO_EINTERNAL with the message in Backend.err. */
static int must(CudaBackend *c, CUresult r, const char *what) {
    static const char prefix[] = "CUDA: ";
    if (r == 0) return DINO_OK;
    memcpy(c->base.err, prefix, sizeof prefix - 1);
    cu_check(&c->drv, r, what, c->base.err + sizeof prefix - 1, sizeof c->base.err - (sizeof prefix - 1));
    return DINO_EINTERNAL;
}

/* Returns from the calling function on a failed status. */
#define TRY(expr)                       \
    do {                                \
        int rc_ = (expr);               \
        if (rc_ != DINO_OK) return rc_; \
    } while (0)

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

/* Device memory for `what` into *p (0 for no bytes). Out of memory is a user error whose
 * message says how much was needed and how much is free, and for training buffers
 * (advice set) what needs less. */
static int dalloc(CudaBackend *c, CUdeviceptr *p, size_t bytes, const char *what, int advice) {
    *p = 0;
    c->oom = 0;
    if (bytes == 0) return DINO_OK;
    CUresult r = c->drv.cuMemAlloc(p, bytes);
    if (r == CUDA_ERROR_OUT_OF_MEMORY) {
        c->oom = 1;
        size_t free_b = 0, total = 0;
        char need[32], fr[32], tot[32];
        c->drv.cuMemGetInfo(&free_b, &total);
        *p = 0;
        snprintf(c->base.err, sizeof c->base.err, "out of GPU memory allocating %s: needs %s more, %s of %s free%s%s",
                 what, size_str(bytes, need, sizeof need), size_str(free_b, fr, sizeof fr),
                 size_str(total, tot, sizeof tot), advice ? "; " : "", advice ? workspace_advice(c->m) : "");
        return DINO_EUSER;
    }
    return must(c, r, what);
}

/* The stage comment emit_cuda writes above kernel `name` ("the gradient of h2.weight ..."),
 * into note; "" when the source or the comment is missing. */
static void stage_note(const char *src, const char *name, char *note, size_t len) {
    char key[96];
    note[0] = 0;
    snprintf(key, sizeof key, "/* ---- %s: ", name);
    const char *p = src ? strstr(src, key) : NULL;
    if (!p) return;
    p += strlen(key);
    size_t n = strcspn(p, "\n");
    if (n >= 3 && strncmp(p + n - 3, " */", 3) == 0) n -= 3;
    snprintf(note, len, "%.*s", (int)n, p);
}

/* With DINO_CUDA_DEBUG=1 (issue 19): the stream is synchronised after every launch, so a fault
 * is reported by the kernel that made it, named with its stage comment and launch geometry
 * (without it a fault surfaces at the next synchronisation, under that call's label, and
 * inside a graph nothing is named). */
static int launched(CudaBackend *c, CUresult r, const char *kernel, unsigned gx, unsigned gy, unsigned gz,
                    unsigned block, unsigned shared, long long n) {
    if (!c->debug) return must(c, r, kernel);
    if (r == 0) r = c->drv.cuStreamSynchronize(c->stream);
    if (r == 0) return DINO_OK;
    char note[512], what[1024];
    stage_note(c->src, kernel, note, sizeof note);
    snprintf(what, sizeof what,
             "kernel %s%s%s%s, grid (%u, %u, %u), block (%u, 1, 1), %u bytes dynamic shared memory, %lld rows", kernel,
             *note ? " (" : "", note, *note ? ")" : "", gx, gy, gz, block, shared, n);
    return must(c, r, what);
}

/* The most blocks of tile kernel f resident on the GPU at once (issue 19, finding 6): the
 * driver's occupancy for its registers and shared memory times the multiprocessors, not an
 * assumed two per multiprocessor (tile kernels use 110-220 registers a thread: one 256-thread
 * block per SM). 2 per SM when the driver can't say. */
static int max_tiles(CudaBackend *c, CUfunction f, const CudaLaunch *l) {
    int per_sm = 0;
    if (!c->drv.cuOccupancyMaxActiveBlocksPerMultiprocessor ||
        c->drv.cuOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, f, l->block, (size_t)l->shared) != 0 || per_sm < 1)
        per_sm = 2;
    return per_sm * (c->drv.sms > 0 ? c->drv.sms : 1);
}

static int launch_tiles(CudaBackend *c, CUfunction f, const CudaLaunch *l, int n, void **args, int tiles) {
    unsigned gx = (unsigned)cuda_grid_x(l, n, tiles > 0 ? tiles : 2 * c->drv.sms);
    CUresult r = c->drv.cuLaunchKernel(f, gx, (unsigned)l->grid_y, (unsigned)l->grid_z, (unsigned)l->block, 1, 1,
                                       (unsigned)l->shared, c->stream, args, NULL);
    return launched(c, r, l->kernel, gx, (unsigned)l->grid_y, (unsigned)l->grid_z, (unsigned)l->block,
                    (unsigned)l->shared, n);
}

static int launch_1d(CudaBackend *c, CUfunction f, long long count, void **args, const char *what) {
    long long blocks = (count + DINO_CUDA_THREADS - 1) / DINO_CUDA_THREADS;
    if (blocks > 65535 * 16) blocks = 65535 * 16; /* the kernels stride over the rest */
    if (blocks < 1) blocks = 1;
    CUresult r = c->drv.cuLaunchKernel(f, (unsigned)blocks, 1, 1, DINO_CUDA_THREADS, 1, 1, 0, c->stream, args, NULL);
    return launched(c, r, what, (unsigned)blocks, 1, 1, DINO_CUDA_THREADS, 0, count);
}

/* ---------------------------------------------------------------------------- interface */

/* Frees what set_data made (a second train() on the backend calls it again), and the graphs,
 * which were captured with its buffers (recaptured at their next launch). */
static void release_data(CudaBackend *c) {
    if (c->stream) c->drv.cuStreamSynchronize(c->stream); /* nothing may still read them */
    if (c->copy) c->drv.cuStreamSynchronize(c->copy);
    CUdeviceptr *dev[] = {&c->X,     &c->Y,     &c->J,     &c->L,     &c->idx,   &c->bx[0], &c->by[0],
                          &c->bJ[0], &c->bl[0], &c->bx[1], &c->by[1], &c->bJ[1], &c->bl[1], &c->work};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) {
        if (*dev[i]) c->drv.cuMemFree(*dev[i]);
        *dev[i] = 0;
    }
    for (int s = 0; s < 2; s++) {
        void **host[] = {&c->hx[s], &c->hy[s], &c->hJ[s], (void **)&c->hl[s]};
        for (int i = 0; i < 4; i++) {
            if (*host[i]) c->drv.cuMemFreeHost(*host[i]);
            *host[i] = NULL;
        }
        c->copied_set[s] = c->consumed_set[s] = 0;
        for (int i = 0; i < N_GRAPHS; i++) {
            if (c->graph_exec[s][i]) c->drv.cuGraphExecDestroy(c->graph_exec[s][i]);
            if (c->graph[s][i]) c->drv.cuGraphDestroy(c->graph[s][i]);
            c->graph_exec[s][i] = NULL, c->graph[s][i] = NULL;
        }
    }
    data_read_ahead_free(&c->ahead);
    c->streaming = 0, c->slot = c->next_slot = 0, c->data = NULL, c->order = NULL;
}

/* Pinned host memory for `what` into *p (NULL for no bytes). */
static int halloc(CudaBackend *c, void **p, size_t bytes, const char *what) {
    *p = NULL;
    if (bytes == 0) return DINO_OK;
    CUresult r = c->drv.cuMemHostAlloc(p, bytes, 0);
    if (r == CUDA_ERROR_OUT_OF_MEMORY) {
        char need[32];
        *p = NULL;
        snprintf(c->base.err, sizeof c->base.err, "out of pinned host memory allocating %s (%s) to stream batches",
                 what, size_str(bytes, need, sizeof need));
        return DINO_EUSER;
    }
    return must(c, r, what);
}

/* Slot s's batch buffers on the GPU for B rows of what d holds (x, y, J, labels). */
static int alloc_batch(CudaBackend *c, const Dataset *d, int s, size_t B, const char *what) {
    size_t es = c->es, in = (size_t)c->m->in_dim, out = (size_t)c->m->out_dim;
    TRY(dalloc(c, &c->bx[s], es * B * in, what, 1));
    if (d->y) TRY(dalloc(c, &c->by[s], es * B * out, what, 1));
    if (d->J) TRY(dalloc(c, &c->bJ[s], es * B * out * in, what, 1));
    if (d->label) TRY(dalloc(c, &c->bl[s], 4 * B, what, 1));
    return DINO_OK;
}

/* The training set in GPU memory, its batch buffers and the workspace. */
static int alloc_resident(CudaBackend *c, const Dataset *d, int batch) {
    const Model *m = c->m;
    size_t es = c->es, N = (size_t)d->n, in = (size_t)m->in_dim, out = (size_t)m->out_dim, B = (size_t)batch;
    TRY(dalloc(c, &c->X, es * N * in, "the training inputs", 1));
    TRY(must(c, c->drv.cuMemcpyHtoD(c->X, d->x, es * N * in), "copying the training inputs"));
    if (d->y) {
        TRY(dalloc(c, &c->Y, es * N * out, "the training outputs", 1));
        TRY(must(c, c->drv.cuMemcpyHtoD(c->Y, d->y, es * N * out), "copying the training outputs"));
    }
    if (d->J) {
        TRY(dalloc(c, &c->J, es * N * out * in, "the training Jacobians", 1));
        TRY(must(c, c->drv.cuMemcpyHtoD(c->J, d->J, es * N * out * in), "copying the training Jacobians"));
    }
    if (d->label) {
        TRY(dalloc(c, &c->L, 4 * N, "the training labels", 1));
        TRY(must(c, c->drv.cuMemcpyHtoD(c->L, d->label, 4 * N), "copying the training labels"));
    }
    TRY(dalloc(c, &c->idx, 8 * N, "the row order", 1));
    TRY(alloc_batch(c, d, 0, B, "a batch"));
    return dalloc(c, &c->work, es * (size_t)c->plan.train_work * B, "the training workspace", 1);
}

/* Two batch buffers on the GPU and two pinned on the host, the workspace, the copy stream and
 * the events. */
static int alloc_streaming(CudaBackend *c, const Dataset *d, int batch) {
    const Model *m = c->m;
    size_t es = c->es, in = (size_t)m->in_dim, out = (size_t)m->out_dim, B = (size_t)batch;
    for (int s = 0; s < 2; s++) {
        TRY(alloc_batch(c, d, s, B, "a streamed batch"));
        TRY(halloc(c, &c->hx[s], es * B * in, "a batch's inputs"));
        if (d->y) TRY(halloc(c, &c->hy[s], es * B * out, "a batch's outputs"));
        if (d->J) TRY(halloc(c, &c->hJ[s], es * B * out * in, "a batch's Jacobians"));
        if (d->label) TRY(halloc(c, (void **)&c->hl[s], 4 * B, "a batch's labels"));
    }
    TRY(dalloc(c, &c->work, es * (size_t)c->plan.train_work * B, "the training workspace", 1));
    if (!c->copy) TRY(must(c, c->drv.cuStreamCreate(&c->copy, 0), "creating the copy stream"));
    for (int s = 0; s < 2; s++) {
        if (!c->copied[s])
            TRY(must(c, c->drv.cuEventCreate(&c->copied[s], CU_EVENT_DISABLE_TIMING), "creating an event"));
        if (!c->consumed[s])
            TRY(must(c, c->drv.cuEventCreate(&c->consumed[s], CU_EVENT_DISABLE_TIMING), "creating an event"));
    }
    if (data_read_ahead_open(&c->ahead, d, batch)) {
        snprintf(c->base.err, sizeof c->base.err, "out of memory: the read-ahead of a batch");
        return DINO_EUSER;
    }
    c->data = d;
    c->streaming = 1;
    return DINO_OK;
}

/* DINO_CUDA_STREAM: -1 unset (stream when the data do not fit), 0 never, 1 always; -2 invalid. */
static int stream_setting(void) {
    const char *v = getenv("DINO_CUDA_STREAM");
    if (!v || !*v) return -1;
    if (strcmp(v, "0") == 0) return 0;
    if (strcmp(v, "1") == 0) return 1;
    return -2;
}

static int cuda_set_data(Backend *b, const Dataset *d, int batch) {
    CudaBackend *c = (CudaBackend *)b;
    const Model *m = c->m;
    release_data(c);
    b->data_note[0] = 0;
    int setting = stream_setting();
    if (setting == -2) {
        snprintf(b->err, sizeof b->err,
                 "DINO_CUDA_STREAM must be 0 (never stream the training data), 1 (always) or unset "
                 "(stream when they do not fit in GPU memory), not '%s'",
                 getenv("DINO_CUDA_STREAM"));
        return DINO_EUSER;
    }
    size_t es = c->es, N = (size_t)d->n, in = (size_t)m->in_dim, out = (size_t)m->out_dim, B = (size_t)batch;
    size_t data = es * N * (in + (d->y ? out : 0) + (d->J ? out * in : 0)) + (d->label ? 4 * N : 0);
    size_t one_batch = es * B * (in + (d->y ? out : 0) + (d->J ? out * in : 0)) + (d->label ? 4 * B : 0);
    size_t work = es * (size_t)c->plan.train_work * B;
    size_t resident = data + 8 * N + one_batch + work, streamed = 2 * one_batch + work;
    /* kept free beside the resident data: evaluation's buffers (cuda_predict: a chunk of up to
     * PREDICT_BATCH rows with Jacobians) and 1/64 of the GPU (at most 256 MiB) for the driver */
    size_t chunk = N < PREDICT_BATCH ? (N ? N : 1) : PREDICT_BATCH;
    size_t free_b = 0, total = 0;
    c->drv.cuMemGetInfo(&free_b, &total);
    size_t slack = total / 64 < ((size_t)256 << 20) ? total / 64 : (size_t)256 << 20;
    size_t margin = es * chunk * (in + out + out * in + (size_t)c->plan.predict_work) + slack;
    int can_stream = c->drv.cuMemHostAlloc != NULL;
    char nb[32], fb[32], tb[32], sb[32], db[32], mb[32];
    size_str(free_b, fb, sizeof fb), size_str(total, tb, sizeof tb), size_str(data, db, sizeof db);
    if (setting == 1 && !can_stream) {
        snprintf(b->err, sizeof b->err, "DINO_CUDA_STREAM=1: this CUDA driver lacks pinned memory or events");
        return DINO_EUSER;
    }
    int stream = setting == 1 || (setting < 0 && can_stream && resident + margin > free_b);
    /* resident when it fits, or when streaming is off or needs as much */
    if (stream && setting < 0 && resident <= free_b && streamed >= resident) stream = 0;
    c->batch = batch;
    c->n_train = d->n;
    b->work_per_sample = es * (size_t)c->plan.train_work;
    const char *why = setting == 1 ? "DINO_CUDA_STREAM=1" : "they do not fit";
    if (!stream) {
        if (resident > free_b && !can_stream) {
            snprintf(b->err, sizeof b->err,
                     "out of GPU memory: the training data and workspace need %s, %s of %s are free (%s)",
                     size_str(resident, nb, sizeof nb), fb, tb, workspace_advice(m));
            return DINO_EUSER;
        }
        if (resident > free_b && setting == 0) {
            snprintf(
                b->err, sizeof b->err,
                "out of GPU memory: the training data and workspace need %s, %s of %s are free (DINO_CUDA_STREAM=0 "
                "forbids streaming the batches from host memory; %s)",
                size_str(resident, nb, sizeof nb), fb, tb, workspace_advice(m));
            return DINO_EUSER;
        }
        int rc = alloc_resident(c, d, batch);
        if (rc == DINO_OK) {
            snprintf(b->data_note, sizeof b->data_note, "training data in GPU memory (%s; %s of %s were free)", db, fb,
                     tb);
            return DINO_OK;
        }
        if (!c->oom || setting == 0 || !can_stream) return rc;
        release_data(c); /* cuMemAlloc ran out although cuMemGetInfo said it fits: stream */
        c->batch = batch, c->n_train = d->n;
        why = "allocating them ran out of GPU memory";
        c->drv.cuMemGetInfo(&free_b, &total);
        size_str(free_b, fb, sizeof fb);
    }
    if (streamed > free_b) {
        snprintf(b->err, sizeof b->err,
                 "out of GPU memory: the training data and workspace need %s, %s of %s are free (streaming the batches "
                 "from host memory would need %s for two batches and the workspace; %s)",
                 size_str(resident, nb, sizeof nb), fb, tb, size_str(streamed, sb, sizeof sb), workspace_advice(m));
        return DINO_EUSER;
    }
    TRY(alloc_streaming(c, d, batch));
    snprintf(b->data_note, sizeof b->data_note,
             "streaming the training data from host memory (%s; %s: %s of %s GPU memory free, %s kept for evaluation): "
             "batches gathered into pinned host buffers and copied to the GPU while it trains on the previous one",
             db, why, fb, tb, size_str(margin, mb, sizeof mb));
    return DINO_OK;
}

/* Gathers rows order[first .. first+n) of a device array [N, cols] into dst [n, cols]. */
static int gather(CudaBackend *c, CUdeviceptr src, CUdeviceptr dst, long long cols, int n) {
    void *args[] = {&src, &cols, &c->idx, &c->step, &n, &dst};
    return launch_1d(c, c->gather_real, (long long)n * cols, args, "dino_gather");
}

static int gather_labels(CudaBackend *c, int n) {
    void *args[] = {&c->L, &c->idx, &c->step, &n, &c->bl[0]};
    return launch_1d(c, c->gather_label, n, args, "dino_gather_label");
}

/* The epoch's row order goes to the GPU once; the host array must stay valid until the copy
 * is done, so wait for it (one small copy per epoch). Streaming, the host gathers by it. */
static int cuda_begin_epoch(Backend *b, const int64_t *order) {
    CudaBackend *c = (CudaBackend *)b;
    if (c->streaming) {
        c->order = order;
        data_read_ahead_epoch(&c->ahead, order);
        return DINO_OK;
    }
    TRY(must(c, c->drv.cuMemcpyHtoDAsync(c->idx, order, 8 * (size_t)c->n_train, c->stream), "uploading the row order"));
    return must(c, c->drv.cuStreamSynchronize(c->stream), "uploading the row order");
}

/* The launches of a step's gradient on a batch of n rows: gather, the training kernels, the
 * weighted loss and monitor terms added to the running sums. What changes from step to step
 * is read from c->step, so this sequence can be captured once and replayed. */
static int grad_launches(CudaBackend *c, int n) {
    const Model *m = c->m;
    if (!c->streaming) { /* streaming, the batch was copied into slot's buffers (stage_batch) */
        TRY(gather(c, c->X, c->bx[0], m->in_dim, n));
        if (c->Y) TRY(gather(c, c->Y, c->by[0], m->out_dim, n));
        if (c->J) TRY(gather(c, c->J, c->bJ[0], (long long)m->out_dim * m->in_dim, n));
        if (c->L) TRY(gather_labels(c, n));
    }
    /* the first training kernel zeroes G and the loss terms */
    int nmax = c->batch, s = c->slot;
    void *args[] = {&c->P, &c->G, &n, &nmax, &c->bx[s], &c->by[s], &c->bJ[s], &c->bl[s], &c->w, &c->terms, &c->work};
    for (int i = 0; i < c->plan.n_train; i++)
        TRY(launch_tiles(c, c->train_fn[i], &c->plan.train[i], n, args, c->train_tiles[i]));
    int n_terms = m->n_loss, n_monitors = c->base.n_monitors;
    void *acc[] = {&c->terms, &c->w, &n_terms, &n_monitors, &n, &c->loss};
    TRY(launched(c, c->drv.cuLaunchKernel(c->accumulate_loss, 1, 1, 1, 1, 1, 1, 0, c->stream, acc, NULL),
                 "dino_accumulate_loss", 1, 1, 1, 1, 0, n));
    /* The unweighted loss terms into loss[1 + n_monitors ..] (Backend.take_sums): the same kernel
     * with no weighted terms adds n * terms[i], i < n_loss, to acc[1 + i] (and 0 to acc[0]), so
     * with acc = loss + n_monitors. */
    int none = 0;
    CUdeviceptr by_term = c->loss + 8 * (CUdeviceptr)n_monitors;
    void *acc_terms[] = {&c->terms, &c->w, &none, &n_terms, &n, &by_term};
    return launched(c, c->drv.cuLaunchKernel(c->accumulate_loss, 1, 1, 1, 1, 1, 1, 0, c->stream, acc_terms, NULL),
                    "dino_accumulate_loss", 1, 1, 1, 1, 0, n);
}

/* The launch of an update: the optimiser over the contiguous parameter buffer (the same
 * formulas as optim.c), its rate and bias corrections read from c->step. */
static int update_launches(CudaBackend *c) {
    const OptimConfig *k = &c->base.opt->cfg;
    long long count = c->base.opt->n;
    double b1 = k->beta1, b2 = k->beta2, eps = k->eps, decay = k->decay, mom = k->momentum;
    if (k->kind == OPT_SGD) {
        void *args_sgd[] = {&c->P, &c->G, &c->M, &count, &c->step, &decay, &mom};
        return launch_1d(c, c->sgd, count, args_sgd, "dino_sgd");
    }
    void *args_adam[] = {&c->P, &c->G, &c->M, &c->V, &count, &c->step, &b1, &b2, &eps, &decay};
    return launch_1d(c, k->kind == OPT_ADAMW ? c->adamw : c->adam, count, args_adam, "dino_adam");
}

/* The rows of a full batch on this process (what the graphs are captured for). */
static int full_rows(const CudaBackend *c) { return c->base.full_rows > 0 ? c->base.full_rows : c->batch; }

/* The launches of a GRAPH_* for a full batch: the gradient, then for GRAPH_STEP with a device
 * gradient sum (Backend.sum_gradient, NCCL) the sum, then the update. */
static int step_launches(CudaBackend *c, int what) {
    Backend *b = &c->base;
    int rc = what == GRAPH_UPDATE ? DINO_OK : grad_launches(c, full_rows(c));
    if (rc == DINO_OK && what == GRAPH_STEP && b->sum_gradient) {
        c->graph_scale = b->sum_scale;
        rc = b->sum_gradient(b, b->sum_scale, b->sum_user);
    }
    return rc == DINO_OK && what != GRAPH_GRAD ? update_launches(c) : rc;
}

/* Captures the launches of a full batch's gradient, of the update, or of both (a GRAPH_*) as
 * a graph, reading the batch buffers of slot c->slot. A driver that refuses (too old, or an
 * error in the capture) leaves graphs off: the steps then launch their kernels one by one. */
static void capture(CudaBackend *c, int what) {
    int s = what == GRAPH_UPDATE ? 0 : c->slot;
    CudaDriver *d = &c->drv;
    if (d->cuStreamBeginCapture(c->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL) != 0) {
        c->graphs = 0;
        return;
    }
    int rc = step_launches(c, what);
    CUgraph g = NULL;
    CUgraphExec e = NULL;
    CUresult r = d->cuStreamEndCapture(c->stream, &g);
    if (rc == DINO_OK && r == 0 && d->cuGraphInstantiate(&e, g, 0) == 0) {
        c->graph[s][what] = g, c->graph_exec[s][what] = e;
        return;
    }
    if (r == 0 && g) d->cuGraphDestroy(g);
    c->graphs = 0;
}

/* Launches a captured graph (capturing it first); with graphs off (or refused), the launches
 * themselves. */
static int run_graph(CudaBackend *c, int what) {
    static const char *const names[] = {"launching the gradient", "launching the update",
                                        "launching the training step"};
    int s = what == GRAPH_UPDATE ? 0 : c->slot;
    if (c->graphs && !c->graph_exec[s][what]) capture(c, what);
    if (c->graphs) return must(c, c->drv.cuGraphLaunch(c->graph_exec[s][what], c->stream), names[what]);
    return step_launches(c, what);
}

/* Writes the step's scalars (c->stepv) to the device; a kernel argument, so no host memory
 * the copy could race with. */
static int set_step(CudaBackend *c) {
    struct {
        double v[STEP_VALUES];
    } s;
    memcpy(s.v, c->stepv, sizeof s.v);
    void *args[] = {&c->step, &s};
    return launched(c, c->drv.cuLaunchKernel(c->set_step, 1, 1, 1, STEP_VALUES, 1, 1, 0, c->stream, args, NULL),
                    "dino_set_step", 1, 1, 1, STEP_VALUES, 0, 1);
}

_Static_assert(STEP_WEIGHTS + LOSS_CROSS_ENTROPY + 1 <= STEP_VALUES, "DinoStep holds a weight per loss kind");

/* Streaming: rows order[first .. first+n) gathered on the host into the next slot's pinned
 * buffers once the copy out of them two steps ago is done, copied on the copy stream into the
 * slot's device buffers once the step that read them two steps ago is done, and the compute
 * stream made to wait for the copy. Returns with c->slot the slot. */
static int stage_batch(CudaBackend *c, int64_t first, int n) {
    CudaDriver *d = &c->drv;
    const Model *m = c->m;
    int s = c->slot = c->next_slot;
    c->next_slot ^= 1;
    if (c->copied_set[s]) TRY(must(c, d->cuEventSynchronize(c->copied[s]), "waiting for a batch's copy"));
    data_read_ahead_step(&c->ahead, first, n); /* mapped data: the next batches' pages (data.h) */
    data_gather(c->data, c->order + first, n, c->hx[s], c->hy[s], c->hJ[s], c->hl[s]);
    if (c->consumed_set[s]) TRY(must(c, d->cuStreamWaitEvent(c->copy, c->consumed[s], 0), "ordering a batch's copy"));
    size_t es = c->es, k = (size_t)n, in = (size_t)m->in_dim, out = (size_t)m->out_dim;
    TRY(must(c, d->cuMemcpyHtoDAsync(c->bx[s], c->hx[s], es * k * in, c->copy), "copying a batch"));
    if (c->hy[s]) TRY(must(c, d->cuMemcpyHtoDAsync(c->by[s], c->hy[s], es * k * out, c->copy), "copying a batch"));
    if (c->hJ[s]) TRY(must(c, d->cuMemcpyHtoDAsync(c->bJ[s], c->hJ[s], es * k * out * in, c->copy), "copying a batch"));
    if (c->hl[s]) TRY(must(c, d->cuMemcpyHtoDAsync(c->bl[s], c->hl[s], 4 * k, c->copy), "copying a batch"));
    TRY(must(c, d->cuEventRecord(c->copied[s], c->copy), "recording a batch's copy"));
    c->copied_set[s] = 1;
    return must(c, d->cuStreamWaitEvent(c->stream, c->copied[s], 0), "waiting for a batch's copy");
}

/* Streaming: the kernels that read slot's batch buffers are enqueued; the next copy into them
 * waits for this. */
static int batch_consumed(CudaBackend *c) {
    if (!c->streaming) return DINO_OK;
    TRY(must(c, c->drv.cuEventRecord(c->consumed[c->slot], c->stream), "recording a batch's use"));
    c->consumed_set[c->slot] = 1;
    return DINO_OK;
}

static int cuda_grad(Backend *b, int64_t first_row, int n, const double *w, double *loss) {
    CudaBackend *c = (CudaBackend *)b;
    (void)loss; /* the loss stays on the device until take_sums */
    c->stepv[STEP_FIRST] = (double)first_row;
    for (int i = 0; i < c->m->n_loss; i++) c->stepv[STEP_WEIGHTS + i] = w[i];
    if (c->streaming) TRY(stage_batch(c, first_row, n));
    int full = n == full_rows(c);
    /* launched with the update (and the device sum: sum_in_graph), as one graph; the scale of
     * the sum is the one captured (a full batch's share, the same every step) */
    if (c->graphs && full && b->fuse_update &&
        (!b->sum_gradient ||
         (b->sum_in_graph && (!c->graph_exec[c->slot][GRAPH_STEP] || c->graph_scale == b->sum_scale)))) {
        c->deferred = 1;
        return DINO_OK;
    }
    TRY(set_step(c));
    TRY(c->graphs && full ? run_graph(c, GRAPH_GRAD) : grad_launches(c, n));
    if (b->sum_gradient) TRY(b->sum_gradient(b, b->sum_scale, b->sum_user)); /* outside the graphs */
    return batch_consumed(c);
}

static int cuda_update(Backend *b, double lr) {
    CudaBackend *c = (CudaBackend *)b;
    Optim *o = b->opt;
    o->step++;
    const OptimConfig *k = &o->cfg;
    c->stepv[STEP_LR] = lr;
    c->stepv[STEP_BC1] = 1 - pow(k->beta1, (double)o->step);
    c->stepv[STEP_BC2] = 1 - pow(k->beta2, (double)o->step);
    c->stepv[STEP_FIRST_UPDATE] = o->step == 1;
    TRY(set_step(c));
    int what = c->deferred ? GRAPH_STEP : GRAPH_UPDATE;
    c->deferred = 0;
    TRY(run_graph(c, what));
    return what == GRAPH_STEP ? batch_consumed(c) : DINO_OK;
}

static int cuda_take_sums(Backend *b, double *sums) {
    CudaBackend *c = (CudaBackend *)b;
    size_t bytes = sizeof(double) * (size_t)(1 + b->n_monitors + c->m->n_loss);
    TRY(must(c, c->drv.cuMemcpyDtoHAsync(c->acc, c->loss, bytes, c->stream), "reading the loss"));
    TRY(must(c, c->drv.cuStreamSynchronize(c->stream), "training"));
    TRY(must(c, c->drv.cuMemsetD8Async(c->loss, 0, bytes, c->stream), "zeroing the loss"));
    memcpy(sums, c->acc, bytes);
    return DINO_OK;
}

/* Whether the rows of a prediction chunk depend on each other (dopri5's step control and a
 * Parareal tol decide per chunk), so that its size may not change. */
static int rows_coupled(const Model *m) {
    for (int i = 0; i < m->n_odes; i++) {
        const OdeBlock *o = &m->odes[i];
        if (o->solver.kind == SOLVER_DOPRI5 ||
            (o->pint.present &&
             (o->pint.tol > 0 || o->pint.fine.kind == SOLVER_DOPRI5 || o->pint.coarse.kind == SOLVER_DOPRI5)))
            return 1;
    }
    return 0;
}

static int cuda_predict(Backend *b, const void *x, int64_t n, void *y, void *J) {
    CudaBackend *c = (CudaBackend *)b;
    const Model *m = c->m;
    size_t es = c->es, in = (size_t)m->in_dim, out = (size_t)m->out_dim;
    int nmax = n < PREDICT_BATCH ? (int)(n > 0 ? n : 1) : PREDICT_BATCH;
    CUdeviceptr dx = 0, dy = 0, dJ = 0, work = 0, none = 0;
    /* In a GPU memory too small for a full chunk (the training data streamed beside it), fewer
     * rows a chunk, when the rows do not depend on each other: the same predictions. */
    int coupled = rows_coupled(m), rc;
    size_t per_row = es * (in + out + (J ? out * in : 0) + (size_t)c->plan.predict_work), free_b = 0, total = 0;
    if (!coupled && per_row && c->drv.cuMemGetInfo(&free_b, &total) == 0 && (size_t)nmax * per_row > free_b / 8 * 7) {
        size_t fit = free_b / 8 * 7 / per_row;
        nmax = fit < 1 ? 1 : (int)fit;
    }
    for (;;) {
        rc = dalloc(c, &dx, es * (size_t)nmax * in, "prediction inputs", 0);
        if (!rc) rc = dalloc(c, &dy, es * (size_t)nmax * out, "predictions", 0);
        if (!rc && J) rc = dalloc(c, &dJ, es * (size_t)nmax * out * in, "predicted Jacobians", 0);
        if (!rc) rc = dalloc(c, &work, es * (size_t)c->plan.predict_work * (size_t)nmax, "the prediction workspace", 0);
        if (rc == DINO_OK || !c->oom || coupled || nmax == 1) break;
        CUdeviceptr *got[] = {&dx, &dy, &dJ, &work}; /* out of memory: half the rows */
        for (int i = 0; i < 4; i++) {
            if (*got[i]) c->drv.cuMemFree(*got[i]);
            *got[i] = 0;
        }
        nmax /= 2;
    }
    size_t n_terms = (size_t)(m->n_loss + b->n_monitors);
    double *terms = b->unfinished ? calloc(n_terms + 1, sizeof(double)) : NULL;
    if (!rc && b->unfinished && !terms) rc = DINO_EUSER, snprintf(b->err, sizeof b->err, "out of memory");
    if (b->unfinished) memset(b->unfinished, 0, sizeof(int64_t) * (size_t)m->n_odes);
    for (int64_t i = 0; !rc && i < n; i += nmax) {
        int k = n - i < nmax ? (int)(n - i) : nmax;
        rc =
            must(c, c->drv.cuMemcpyHtoDAsync(dx, (const char *)x + es * (size_t)i * in, es * (size_t)k * in, c->stream),
                 "uploading inputs");
        /* the predict program writes its results into y (and J) */
        void *args[] = {&c->P, &none, &k, &nmax, &dx, &dy, &dJ, &none, &none, &c->pterms, &work};
        for (int j = 0; !rc && j < c->plan.n_predict; j++)
            rc = launch_tiles(c, c->predict_fn[j], &c->plan.predict[j], k, args, c->predict_tiles[j]);
        if (!rc)
            rc =
                must(c, c->drv.cuMemcpyDtoHAsync((char *)y + es * (size_t)i * out, dy, es * (size_t)k * out, c->stream),
                     "reading predictions");
        if (!rc && J)
            rc = must(c,
                      c->drv.cuMemcpyDtoHAsync((char *)J + es * (size_t)i * out * in, dJ, es * (size_t)k * out * in,
                                               c->stream),
                      "reading Jacobians");
        if (!rc && terms) /* the chunk's gates: did dopri5 reach t1 */
            rc = must(c, c->drv.cuMemcpyDtoHAsync(terms, c->pterms, sizeof(double) * n_terms, c->stream),
                      "reading the prediction terms");
        if (!rc) rc = must(c, c->drv.cuStreamSynchronize(c->stream), "predicting");
        if (!rc && terms) count_unfinished(b, m, terms, k);
    }
    free(terms);
    if (rc) c->drv.cuStreamSynchronize(c->stream); /* nothing may still write into y or read x */
    CUdeviceptr bufs[] = {dx, dy, dJ, work};
    for (int i = 0; i < 4; i++)
        if (bufs[i]) c->drv.cuMemFree(bufs[i]);
    return rc;
}

static int cuda_pull(Backend *b) {
    CudaBackend *c = (CudaBackend *)b;
    size_t bytes = c->es * (size_t)c->m->n_weights;
    TRY(must(c, c->drv.cuStreamSynchronize(c->stream), "training"));
    TRY(must(c, c->drv.cuMemcpyDtoH(b->P, c->P, bytes), "reading the parameters"));
    size_t obytes = c->es * (size_t)b->opt->n; /* the trained parameters only (not a basis's frozen layers) */
    if (b->opt->m) TRY(must(c, c->drv.cuMemcpyDtoH(b->opt->m, c->M, obytes), "reading the optimiser state"));
    if (b->opt->v) TRY(must(c, c->drv.cuMemcpyDtoH(b->opt->v, c->V, obytes), "reading the optimiser state"));
    return DINO_OK;
}

static int cuda_push(Backend *b) {
    CudaBackend *c = (CudaBackend *)b;
    size_t bytes = c->es * (size_t)c->m->n_weights;
    TRY(must(c, c->drv.cuStreamSynchronize(c->stream), "training"));
    TRY(must(c, c->drv.cuMemcpyHtoD(c->P, b->P, bytes), "copying the parameters"));
    size_t obytes = c->es * (size_t)b->opt->n;
    if (b->opt->m) TRY(must(c, c->drv.cuMemcpyHtoD(c->M, b->opt->m, obytes), "copying the optimiser state"));
    if (b->opt->v) TRY(must(c, c->drv.cuMemcpyHtoD(c->V, b->opt->v, obytes), "copying the optimiser state"));
    return DINO_OK;
}

static void cuda_free(Backend *b) {
    CudaBackend *c = (CudaBackend *)b;
    release_data(c); /* the data, batches, workspace and graphs */
    CUdeviceptr bufs[] = {c->P, c->G, c->M, c->V, c->terms, c->step, c->loss, c->pterms};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) c->drv.cuMemFree(bufs[i]);
    for (int s = 0; s < 2; s++) {
        if (c->copied[s]) c->drv.cuEventDestroy(c->copied[s]);
        if (c->consumed[s]) c->drv.cuEventDestroy(c->consumed[s]);
    }
    if (c->copy) c->drv.cuStreamDestroy(c->copy);
    if (c->stream) c->drv.cuStreamDestroy(c->stream);
    if (c->mod) c->drv.cuModuleUnload(c->mod);
    cuda_close(&c->drv);
    free(c->train_fn), free(c->predict_fn), free(c->train_tiles), free(c->predict_tiles), free(c->acc),
        free(b->unfinished), free(c->src);
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
        snprintf(err, errlen,
                 "the CUDA backend needs NVRTC (libnvrtc.so from the CUDA toolkit): not found; "
                 "install the toolkit or set CUDA_HOME, or use --backend cpu");
        return -1;
    }
    char key[256];
    snprintf(key, sizeof key, "%s nvrtc %d.%d -std=c++14 %s", arch, major, minor, nvrtc_speed_option());
    /* a damaged entry is removed and compiled again below; the note tells the user */
    if (use_cache &&
        cache_get_noted("cuda", src, len, key, ".cubin", cubin, cubin_len, c->base.note, sizeof c->base.note) == 0)
        return 0;
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

Backend *backend_cuda_new(const Model *m, const char *source, size_t len, CudaPlan *plan, void *P, Optim *opt,
                          double *compile_secs, char *err, size_t errlen) {
    CudaBackend *c = calloc(1, sizeof *c);
    if (!c || cuda_open(&c->drv, err, errlen)) {
        free(c);
        cuda_plan_free(plan);
        return NULL;
    }
    c->m = m;
    c->es = m->train.f64 ? 8 : 4;
    c->plan = *plan; /* the backend owns the plan from here */
    memset(plan, 0, sizeof *plan);
    char *src = malloc(len + 1);
    if (!src) {
        snprintf(err, errlen, "out of memory for the CUDA source");
        cuda_free(&c->base);
        return NULL;
    }
    memcpy(src, source, len);
    src[len] = 0;
    char *cubin = NULL;
    size_t cubin_len = 0;
    *compile_secs = 0;
    if (!src || get_cubin(c, src, len, 1, &cubin, &cubin_len, compile_secs, err, errlen)) {
        free(src);
        cuda_free(&c->base);
        return NULL;
    }
    if (c->drv.cuModuleLoadData(&c->mod, cubin) != 0) { /* a corrupt cache entry is a miss */
        free(cubin);
        cubin = NULL;
        snprintf(c->base.note, sizeof c->base.note,
                 "the cached CUBIN for this model did not load on the GPU; compiled it again");
        if (get_cubin(c, src, len, 0, &cubin, &cubin_len, compile_secs, err, errlen)) {
            free(src);
            cuda_free(&c->base);
            return NULL;
        }
        c->mod = NULL;
    }
    const char *debug_env = getenv("DINO_CUDA_DEBUG");
    c->debug = debug_env && *debug_env && strcmp(debug_env, "0") != 0;
    if (c->debug) c->src = src; /* for the stage comments */
    else free(src);
    int bad = c->mod
        ? 0
        : cu_check(&c->drv, c->drv.cuModuleLoadData(&c->mod, cubin), "loading the compiled kernels", err, errlen);
    free(cubin);
    if (!bad) bad = cu_check(&c->drv, c->drv.cuStreamCreate(&c->stream, 0), "cuStreamCreate", err, errlen);
    c->train_fn = calloc((size_t)c->plan.n_train + 1, sizeof(CUfunction));
    c->predict_fn = calloc((size_t)c->plan.n_predict + 1, sizeof(CUfunction));
    if (!bad && (!c->train_fn || !c->predict_fn)) bad = 1, snprintf(err, errlen, "out of memory");
    for (int i = 0; !bad && i < c->plan.n_train; i++)
        bad = cu_check(&c->drv, c->drv.cuModuleGetFunction(&c->train_fn[i], c->mod, c->plan.train[i].kernel),
                       c->plan.train[i].kernel, err, errlen);
    for (int i = 0; !bad && i < c->plan.n_predict; i++)
        bad = cu_check(&c->drv, c->drv.cuModuleGetFunction(&c->predict_fn[i], c->mod, c->plan.predict[i].kernel),
                       c->plan.predict[i].kernel, err, errlen);
    c->train_tiles = calloc((size_t)c->plan.n_train + 1, sizeof(int));
    c->predict_tiles = calloc((size_t)c->plan.n_predict + 1, sizeof(int));
    if (!bad && (!c->train_tiles || !c->predict_tiles)) bad = 1, snprintf(err, errlen, "out of memory");
    for (int i = 0; !bad && i < c->plan.n_train; i++)
        if (c->plan.train[i].tiles) c->train_tiles[i] = max_tiles(c, c->train_fn[i], &c->plan.train[i]);
    for (int i = 0; !bad && i < c->plan.n_predict; i++)
        if (c->plan.predict[i].tiles) c->predict_tiles[i] = max_tiles(c, c->predict_fn[i], &c->plan.predict[i]);
    const char *util[] = {"dino_set_step", "dino_gather", "dino_gather_label", "dino_accumulate_loss",
                          "dino_adam",     "dino_adamw",  "dino_sgd"};
    CUfunction *fns[] = {&c->set_step, &c->gather_real, &c->gather_label, &c->accumulate_loss,
                         &c->adam,     &c->adamw,       &c->sgd};
    for (int i = 0; !bad && i < 7; i++)
        bad = cu_check(&c->drv, c->drv.cuModuleGetFunction(fns[i], c->mod, util[i]), util[i], err, errlen);
    if (bad) {
        cuda_free(&c->base);
        return NULL;
    }
    Backend *b = &c->base;
    b->n_monitors = term_layout(m).n_monitors;
    size_t bytes = c->es * (size_t)m->n_weights, n_acc = (size_t)(1 + b->n_monitors + m->n_loss);
    size_t n_terms = (size_t)(m->n_loss + b->n_monitors);
    int rc = dalloc(c, &c->P, bytes, "the parameters", 0);
    if (!rc) rc = dalloc(c, &c->G, bytes, "the gradient", 0);
    if (!rc) rc = dalloc(c, &c->M, bytes, "the optimiser state", 0);
    if (!rc) rc = dalloc(c, &c->V, bytes, "the optimiser state", 0);
    if (!rc) rc = dalloc(c, &c->terms, 8 * n_terms, "the loss terms", 0);
    if (!rc) rc = dalloc(c, &c->step, 8 * STEP_VALUES, "the step's scalars", 0);
    if (!rc) rc = dalloc(c, &c->loss, 8 * n_acc, "the loss sum", 0);
    if (!rc) rc = dalloc(c, &c->pterms, 8 * n_terms, "the prediction terms", 0);
    if (!rc && has_dopri5(m) && !(b->unfinished = calloc((size_t)m->n_odes, sizeof(int64_t))))
        rc = DINO_EUSER, snprintf(b->err, sizeof b->err, "out of memory");
    if (!rc) rc = must(c, c->drv.cuMemsetD8Async(c->loss, 0, 8 * n_acc, c->stream), "zeroing the loss");
    c->w = c->step + 8 * STEP_WEIGHTS;
    const char *graph_env = getenv("DINO_CUDA_GRAPH");
    c->graphs = c->drv.cuStreamBeginCapture && !(graph_env && strcmp(graph_env, "0") == 0) && !c->debug;
    c->acc = calloc(n_acc, sizeof(double));
    if (!rc && !c->acc) rc = DINO_EUSER, snprintf(b->err, sizeof b->err, "out of memory");
    snprintf(b->name, sizeof b->name, "CUDA: %s (sm_%d%d, %d SMs)", c->drv.name, c->drv.cc_major, c->drv.cc_minor,
             c->drv.sms);
    b->f64 = m->train.f64;
    b->set_data = cuda_set_data;
    b->begin_epoch = cuda_begin_epoch;
    b->grad = cuda_grad;
    b->update = cuda_update;
    b->grad_buf = (void *)(uintptr_t)c->G;
    b->grad_on_device = 1;
    b->can_sum_in_step = c->graphs ? 2 : 1;
    b->stream = (void *)c->stream;
    b->take_sums = cuda_take_sums;
    b->predict = cuda_predict;
    b->pull = cuda_pull;
    b->push = cuda_push;
    b->free = cuda_free;
    b->P = P;
    b->opt = opt;
    if (!rc) rc = cuda_push(b);
    if (rc) {
        snprintf(err, errlen, "%s", b->err);
        cuda_free(b);
        return NULL;
    }
    return b;
}
