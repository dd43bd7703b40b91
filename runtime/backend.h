/* backend.h - what the training loop needs from a device: one interface, two backends.
 *
 * The training loop (train.c) owns the host copy of the parameters, the optimiser moments and
 * the shuffle RNG; a backend runs training steps and predictions on its device. The CPU
 * backend (backend_cpu.c) works on the host arrays directly. The CUDA backend (backend_cuda.c)
 * keeps the data, the parameters and the moments in GPU memory and syncs them with the host
 * only when asked (evaluation, checkpoints), so a step needs no host round trip. */
#ifndef DINO_BACKEND_H
#define DINO_BACKEND_H

#include <stdint.h>

#include "abi.h"
#include "data.h"
#include "model.h"
#include "optim.h"
#include "status.h"

typedef struct Backend Backend;
/* Every function that returns int returns a status (status.h): DINO_OK, or DINO_EUSER (out of
 * memory: the message says how much was needed and free) or DINO_EINTERNAL (a driver error)
 * with the message in err. A backend never prints or exits.
 *
 * A training step is grad, then update. Between them (train.c, reduce_step) is the point
 * where a data-parallel layer sums the gradient buffer, the step's loss and, at the end of an
 * epoch, the loss and monitor sums across processes; the NaN stop is decided after it, from
 * those sums. */
struct Backend {
    char name[160];  /* for the user: "CPU (2 threads)", "CUDA: NVIDIA H100 80GB HBM3" */
    char err[512];   /* the message of the last failed call */
    char note[1024]; /* "" or one line for the user, set when the backend is made: a
                                damaged cache entry was rebuilt (the caller shows it) */
    int f64;
    /* Makes the training set available to grad(). Called once before training. */
    int (*set_data)(Backend *b, const Dataset *train, int batch);
    /* "" or one line for the user, set by set_data: where the training data are (the CUDA
     * backend: in GPU memory, or streamed from host memory batch by batch because they do not
     * fit); train() shows it as a note. */
    char data_note[512];
    /* The order of the training rows for this epoch ([N] indices, valid until the next call). */
    int (*begin_epoch)(Backend *b, const int64_t *order);
    /* The gradient of the loss with term weights w on rows order[first .. first+n) into the
     * gradient buffer (overwritten). Adds n * (the batch's weighted loss) and n * (each
     * monitor term) to the running sums that take_sums returns. When host_loss is set, also
     * *loss = n * the batch's weighted loss (else *loss is left alone: it is on the device). */
    int (*grad)(Backend *b, int64_t first, int n, const double *w, double *loss);
    /* One optimiser step (b->opt's kind and moments) from the gradient buffer at rate lr. */
    int (*update)(Backend *b, double lr);
    /* The gradient buffer: n_weights reals of host memory, or of device memory when
     * grad_on_device (a CUdeviceptr in the pointer's bits). */
    void *grad_buf;
    int grad_on_device;
    void *stream;  /* CUDA: the CUstream grad and update run on (NCCL's all-reduce joins it); else NULL */
    int host_loss; /* grad reports each step's loss on the host (no device round trip) */
    /* Data parallel with the gradient summed on the device (NCCL): when the backend sets
     * can_sum_in_step (1; 2: and it replays captured CUDA graphs), the trainer (train.c) gives
     * it the Reducer's gradient sum as sum_gradient (with sum_user), and the backend enqueues it
     * itself between a step's gradient and its update, on its stream, inside the step's
     * captured CUDA graph when sum_in_graph (the loaded NCCL allows capture), with scale
     * sum_scale (this process's share of the batch, set by the trainer before each grad).
     * full_rows: this process's rows in a full batch (what a captured step is for); 0: the
     * batch. */
    int can_sum_in_step;
    int (*sum_gradient)(Backend *b, double scale, void *user);
    void *sum_user;
    int sum_in_graph;
    double sum_scale;
    int full_rows;
    /* Set by the trainer when nothing happens between grad and update (one process, no
     * Reducer): the backend may then defer a step's gradient and run it with the update (the
     * CUDA backend launches both as one graph), so grad_buf holds it only after update. */
    int fuse_update;
    /* The running sums since the last call, then zeroed: sums[0] the loss sum (NaN or Inf if
     * any step's loss was), sums[1 .. n_monitors] the monitor sums: the Parareal corrections,
     * gates and dopri5 step control (abi.h, TermLayout, says what they are), then
     * sums[1 + n_monitors + i], i < n_loss, the sum of n * (loss term i, unweighted). */
    int (*take_sums)(Backend *b, double *sums);
    int n_monitors;
    /* Set by set_data: the training workspace, bytes per sample of the batch (every value the
     * backward pass reads, the stages of every ODE step included). */
    size_t work_per_sample;
    /* Predictions for n rows of host x [n, in] into host y [n, out] and J [n, out, in] (J may be NULL).
     * Sets unfinished. */
    int (*predict)(Backend *b, const void *x, int64_t n, void *y, void *J);
    /* [n_odes] after predict: the rows of that call whose dopri5 solve of ODE block i stopped
     * at max_steps short of t1 (dopri5's step control is shared by a chunk's rows); NULL for a
     * model without dopri5 blocks. */
    int64_t *unfinished;
    /* Host <-> device copies of the parameters and optimiser state (no-ops on the CPU). */
    int (*pull)(Backend *b);
    int (*push)(Backend *b);
    void (*free)(Backend *b);
    /* The host state the backend works on (set by the trainer). */
    void *P; /* [n_params] */
    Optim *opt;
};

/* What needs less training workspace, for an out-of-memory message: "a smaller --batch", and
 * for a model with an ODE block that stores every step, checkpointing. */
static inline const char *workspace_advice(const Model *m) {
    for (int i = 0; i < m->n_odes; i++)
        if (!m->odes[i].checkpoint && !m->odes[i].pint.present && m->odes[i].solver.kind != SOLVER_DOPRI5)
            return "a smaller --batch, or `checkpoint N` in the ode block (the backward pass then recomputes the steps "
                   "between every N-th state instead of storing them), needs less";
    return "a smaller --batch needs less workspace";
}

/* Whether m has an ODE block solved by dopri5 (its predictions report unfinished solves). */
static inline int has_dopri5(const Model *m) {
    for (int i = 0; i < m->n_odes; i++)
        if (!m->odes[i].pint.present && m->odes[i].solver.kind == SOLVER_DOPRI5) return 1;
    return 0;
}

/* After a prediction chunk of k rows whose program left terms[] (abi.h): counts them in
 * b->unfinished for each dopri5 block that stopped short of t1. */
static inline void count_unfinished(Backend *b, const Model *m, const double *terms, int k) {
    for (int i = 0; b->unfinished && i < m->n_odes; i++)
        if (dopri5_unfinished(m, i, terms)) b->unfinished[i] += k;
}

/* backend_cpu.c: runs the generated C module (cpu_jit.h). */
struct CpuModule;
/* NULL with the reason in err when memory runs out. */
Backend *backend_cpu_new(struct CpuModule *mod, const Model *m, void *P, Optim *opt, char *err, size_t errlen);

/* backend_cuda.c: compiles the generated CUDA source [len] with NVRTC (cached) and loads it
 * with the driver API; the launch plan is the emitter's for that source, handed over by the
 * library (api/model.c generates both: the runtime never calls the emitters), and the backend
 * owns it from here (*plan is zeroed, freed on failure too). NULL with the reason in err when
 * there is no usable GPU, NVRTC or module. */
Backend *backend_cuda_new(const Model *m, const char *src, size_t len, CudaPlan *plan, void *P, Optim *opt,
                          double *compile_seconds, char *err, size_t errlen);
/* Whether a GPU is usable (driver loads and sees a device); err says why not. */
int cuda_available(char *err, size_t errlen);

#endif
