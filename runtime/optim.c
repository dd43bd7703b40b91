/* optim.c - Adam, AdamW and SGD (with and without momentum) over the flat parameter buffer,
 * the learning-rate schedules and the loss-weight ramps. This is the CPU reference of the
 * update; a GPU backend runs the same formulas (optim.h) in one kernel.
 * Must not allocate per step or read anything but its arguments. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------- helpers */

/* Element i of a float (f64 == 0) or double (f64 == 1) array, as double. */
static inline double ld(const void *a, int f64, int64_t i) {
    return f64 ? ((const double *)a)[i] : (double)((const float *)a)[i];
}

static inline void st(void *a, int f64, int64_t i, double x) {
    if (f64) ((double *)a)[i] = x;
    else ((float *)a)[i] = (float)x;
}

/* PyTorch's lerp(self, end, w): the same value as (1 - w) self + w end, rounded as torch does. */
static inline double lerp(double self, double end, double w) {
    return w < 0.5 ? self + w * (end - self) : end - (end - self) * (1.0 - w);
}

/* ---------------------------------------------------------------------------- optimisers */

OptimConfig optim_config(const TrainSpec *t) {
    return (OptimConfig){.kind = t->optimizer,
                         .lr = t->lr,
                         .beta1 = t->beta1,
                         .beta2 = t->beta2,
                         .eps = t->eps,
                         .decay = t->decay,
                         .momentum = t->momentum};
}

int optim_init(Optim *o, const OptimConfig *cfg, int64_t n, int f64) {
    memset(o, 0, sizeof *o);
    if (n < 0 || (int)cfg->kind < 0 || cfg->kind >= OPT_COUNT) return -1;
    size_t es = f64 ? sizeof(double) : sizeof(float);
    if ((uint64_t)n > SIZE_MAX / es) return -1;
    int need_m = cfg->kind != OPT_SGD || cfg->momentum != 0;
    int need_v = cfg->kind != OPT_SGD;
    size_t bytes = (size_t)n * es + (n == 0); /* calloc(0) may return NULL */
    if (need_m && !(o->m = calloc(1, bytes))) return -1;
    if (need_v && !(o->v = calloc(1, bytes))) {
        free(o->m);
        o->m = NULL;
        return -1;
    }
    o->cfg = *cfg;
    o->f64 = f64 != 0;
    o->n = n;
    return 0;
}

static void adam_step(Optim *o, void *P, const void *G, double lr) {
    const OptimConfig *c = &o->cfg;
    int f64 = o->f64, adamw = c->kind == OPT_ADAMW;
    double t = (double)o->step;
    double bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
    double step_size = lr / bc1, bc2_sqrt = sqrt(bc2);
    double keep = 1.0 - lr * c->decay; /* adamw's decoupled decay factor */
    for (int64_t i = 0; i < o->n; i++) {
        double p = ld(P, f64, i), g = ld(G, f64, i);
        if (adamw) p *= keep;
        else if (c->decay != 0) g += c->decay * p;
        double m = lerp(ld(o->m, f64, i), g, 1.0 - c->beta1);
        double v = ld(o->v, f64, i) * c->beta2 + (1.0 - c->beta2) * g * g;
        st(o->m, f64, i, m);
        st(o->v, f64, i, v);
        /* The rounded moments, as the next step will see them, make the update (as in torch). */
        m = ld(o->m, f64, i);
        v = ld(o->v, f64, i);
        double denom = sqrt(v) / bc2_sqrt + c->eps;
        st(P, f64, i, p - step_size * m / denom);
    }
}

static void sgd_step(Optim *o, void *P, const void *G, double lr) {
    const OptimConfig *c = &o->cfg;
    int f64 = o->f64, first = o->step == 1;
    for (int64_t i = 0; i < o->n; i++) {
        double p = ld(P, f64, i), g = ld(G, f64, i);
        if (c->decay != 0) g += c->decay * p;
        if (c->momentum != 0) {
            double buf = first ? g : c->momentum * ld(o->m, f64, i) + g;
            st(o->m, f64, i, buf);
            g = ld(o->m, f64, i);
        }
        st(P, f64, i, p - lr * g);
    }
}

void optim_step(Optim *o, void *P, const void *G, double lr) {
    o->step++;
    if (o->cfg.kind == OPT_SGD) sgd_step(o, P, G, lr);
    else adam_step(o, P, G, lr);
}

void optim_free(Optim *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

/* ---------------------------------------------------------------------------- schedules */

double schedule_lr(const TrainSpec *t, double base_lr, int64_t step, int64_t total_steps) {
    if (total_steps <= 0) return base_lr;
    double s = (double)step / (double)total_steps;
    if (s < 0) s = 0;
    if (s > 1) s = 1;
    const double pi = 3.141592653589793238462643; /* M_PI is not in C11 */
    switch (t->schedule) {
    case SCHED_LINEAR: return base_lr * (1.0 + (t->end - 1.0) * s);
    case SCHED_COSINE: return base_lr * (t->end + (1.0 - t->end) * (1.0 + cos(pi * s)) / 2.0);
    case SCHED_STEP: {
        int passed = 0; /* milestones reached */
        for (int k = 0; k < t->n_at && k < MAX_STEP_MILESTONES; k++) passed += s >= t->at[k];
        return base_lr * pow(t->factor, passed);
    }
    case SCHED_CONSTANT:
    default: return base_lr;
    }
}

double loss_weight(const LossTerm *l, int64_t epoch) {
    if (!l->ramp) return l->weight;
    if (epoch >= l->ramp_epochs) return l->weight_end;
    if (epoch <= 0) return l->weight;
    return l->weight + (l->weight_end - l->weight) * (double)epoch / (double)l->ramp_epochs;
}
