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
    /* One optimiser step on training rows idx[0..n): gradient of the loss with term weights w,
     * then the update at rate lr. Adds n * (the batch's weighted loss) to the running sum that
     * take_loss returns. Returns 1 when the backend already knows the loss is not finite (the
     * CPU backend then skips the update), else 0. */
    int (*step)(Backend *b, const int64_t *idx, int n, const double *w, double lr);
    /* The running loss sum since the last call (NaN if any step's loss was not finite). */
    double (*take_loss)(Backend *b);
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

/* backend_cpu.c: runs the generated C module (cpu_jit.h). */
struct CpuModule;
Backend *backend_cpu_new(struct CpuModule *mod, const Model *m, void *P, Optim *opt);

#endif
