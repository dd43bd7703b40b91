/* optim.h - optimisers over the one contiguous parameter buffer, learning-rate schedules and
 * loss-term weight ramps.
 *
 * All parameters live in one flat buffer P (n,) of float or double, and so do the gradients
 * G (n,) and the optimiser's moments, so one step is one loop (one kernel on a GPU). The
 * update is computed in double even when P is float; the moments are stored in P's
 * precision (as PyTorch keeps them in the parameter's dtype).
 *
 * The formulas are PyTorch's (torch.optim defaults: no amsgrad, no nesterov, dampening 0,
 * maximize false), with t the step count after this step's increment and lr the scheduled
 * rate passed to optim_step:
 *   adam:  g += decay p (only when decay != 0; the spec's adam has none)
 *          m = b1 m + (1 - b1) g      (computed as PyTorch's lerp: m + (1 - b1) (g - m))
 *          v = b2 v + (1 - b2) g^2
 *          p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *   adamw: p *= 1 - lr decay, then adam without the g += decay p
 *   sgd:   g += decay p (only when decay != 0); with momentum mu != 0: buf = g on the first
 *          step, else buf = mu buf + g, then p -= lr buf; with mu == 0: p -= lr g */
#ifndef DINO_OPTIM_H
#define DINO_OPTIM_H

#include <stdint.h>

#include "model.h"

typedef struct {
    OptimizerKind kind;
    double lr;           /* base rate (the schedule scales it) */
    double beta1, beta2; /* adam, adamw */
    double eps;          /* adam, adamw */
    double decay;        /* adamw: decoupled decay; adam, sgd: L2 added to g (0 by default) */
    double momentum;     /* sgd */
} OptimConfig;

typedef struct {
    OptimConfig cfg;
    int f64;      /* P, G, m, v are double (1) or float (0) */
    int64_t n;    /* number of parameters */
    int64_t step; /* updates done so far; 0 before the first */
    void *m;      /* (n,) adam/adamw: first moment; sgd with momentum: the momentum buffer;
                   NULL otherwise */
    void *v;      /* (n,) adam/adamw: second moment; NULL otherwise */
} Optim;

/* The optimiser part of a TrainSpec. */
OptimConfig optim_config(const TrainSpec *t);

/* Allocates the moments (zeroed) that cfg->kind needs and sets step = 0. Returns 0, or -1
 * when n < 0, the kind is not an OptimizerKind, or memory runs out (*o is then zeroed). */
int optim_init(Optim *o, const OptimConfig *cfg, int64_t n, int f64);

/* One update of P (n,) from G (n,), both in o->f64's precision, with learning rate lr
 * (schedule_lr of this step). Increments o->step. */
void optim_step(Optim *o, void *P, const void *G, double lr);

/* Frees the moments; safe on a zeroed or already freed Optim. */
void optim_free(Optim *o);

/* The learning rate for update number step (0 for the first) of total_steps, with progress
 * s = step / total_steps clamped to [0, 1] and the schedule of t:
 *   constant:          base
 *   linear(end):       base (1 + (end - 1) s)
 *   cosine(end):       base (end + (1 - end) (1 + cos(pi s)) / 2)
 *   step(at, factor):  base factor^k, k = the number of milestones a in at with s >= a
 * total_steps <= 0 gives base. */
double schedule_lr(const TrainSpec *t, double base_lr, int64_t step, int64_t total_steps);

/* A loss term's weight during epoch (0 for the first). Without a ramp: l->weight. With one:
 * weight + (weight_end - weight) epoch / ramp_epochs while epoch < ramp_epochs, then
 * weight_end (so epoch 0 uses weight and epoch ramp_epochs uses weight_end). */
double loss_weight(const LossTerm *l, int64_t epoch);

#endif
