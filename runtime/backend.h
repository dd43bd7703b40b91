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

#include "data.h"
#include "model.h"
#include "optim.h"

typedef struct Backend Backend;
struct Backend {
    char name[160];          /* for the user: "CPU (2 threads)", "CUDA: NVIDIA H100 80GB HBM3" */
    int f64;
    /* Makes the training set available to step(). Called once before training. */
    int (*set_data)(Backend *b, const Dataset *train, int batch, char *err, size_t errlen);
    /* The order of the training rows for this epoch ([N] indices, valid until the next call). */
    void (*begin_epoch)(Backend *b, const int64_t *order);
    /* One optimiser step on rows order[first .. first+n): gradient of the loss with term
     * weights w, then the update at rate lr. Adds n * (the batch's weighted loss) to the
     * running sum that take_loss returns. Returns 1 when the backend already knows the loss is
     * not finite (the CPU backend then skips the update), else 0. */
    int (*step)(Backend *b, int64_t first, int n, const double *w, double lr);
    /* The running loss sum since the last call (NaN if any step's loss was not finite). */
    double (*take_loss)(Backend *b);
    /* The running sums of n * (each diagnostic term) since the last take_loss: [n_monitors]
     * values, the Parareal corrections (monitor_count in ir.h says what they are). */
    void (*take_monitors)(Backend *b, double *sums);
    int n_monitors;
    /* Set by set_data: the training workspace, bytes per sample of the batch (every value the
     * backward pass reads, the stages of every ODE step included). */
    size_t work_per_sample;
    /* Predictions for n rows of host x [n, in] into host y [n, out] and J [n, out, in] (J may be NULL). */
    void (*predict)(Backend *b, const void *x, int64_t n, void *y, void *J);
    /* Host <-> device copies of the parameters and optimiser state (no-ops on the CPU). */
    void (*pull)(Backend *b);
    void (*push)(Backend *b);
    void (*free)(Backend *b);
    /* The host state the backend works on (set by the trainer). */
    void *P;                 /* [n_params] */
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

/* backend_cpu.c: runs the generated C module (cpu_jit.h). */
struct CpuModule;
Backend *backend_cpu_new(struct CpuModule *mod, const Model *m, void *P, Optim *opt);

/* backend_cuda.c: generates CUDA, compiles it with NVRTC (cached), loads it with the driver
 * API. NULL with the reason in err when there is no usable GPU, NVRTC or module. */
Backend *backend_cuda_new(const Model *m, int jac_mode, uint64_t spec_hash, void *P, Optim *opt,
                          double *compile_seconds, char *err, size_t errlen);
/* Whether a GPU is usable (driver loads and sees a device); err says why not. */
int cuda_available(char *err, size_t errlen);

#endif
