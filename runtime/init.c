/* init.c - default parameter initialisation (truncated normal weights, zero biases) into the
 * flat parameter buffer. The exact draw order is documented in init.h. */
#include "init.h"

#include <math.h>

#include "rng.h"

/* One weight element: a standard normal redrawn until |z| <= 2 (about 4.6 % of draws are
 * rejected), times std. */
static double truncated_normal(Rng *r, double std) {
    double z;
    do { z = rng_normal(r); } while (!(fabs(z) <= 2.0));
    return z * std;
}

void init_params(const Param *params, int n_params, void *P, int f64, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    float *Pf = f64 ? NULL : (float *)P;   /* (n_weights,) in f32 */
    double *Pd = f64 ? (double *)P : NULL; /* (n_weights,) in f64 */
    for (int i = 0; i < n_params; i++) {
        const Param *p = &params[i];
        if (p->frozen) { /* a basis's layer: filled from the basis (basis.c); zero until then */
            for (int64_t k = 0; k < p->size; k++) {
                if (f64) Pd[p->offset + k] = 0.0;
                else Pf[p->offset + k] = 0.0f;
            }
        } else if (p->ndim == 2) {
            int fan_in = p->fan_in > 0 ? p->fan_in : p->shape[1];
            double std = sqrt(1.0 / (fan_in > 0 ? fan_in : 1));
            for (int64_t k = 0; k < p->size; k++) {
                double w = truncated_normal(&rng, std);
                if (f64) Pd[p->offset + k] = w;
                else Pf[p->offset + k] = (float)w;
            }
        } else {
            for (int64_t k = 0; k < p->size; k++) {
                if (f64) Pd[p->offset + k] = 0.0;
                else Pf[p->offset + k] = 0.0f;
            }
        }
    }
}
