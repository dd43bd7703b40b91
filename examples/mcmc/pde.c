/* pde.c - dino-gen-poisson's solver (examples/poisson/poisson.c) as a small shared library, so
 * that the MCMC example (mcmc.py) can run the same sampler on the true PDE that it runs on the
 * DINO surrogate: q(m) and J = dq/dm for one parameter vector per call, and the field u(m).
 * Plain C, no printing; the sizes are dino-gen-poisson's options (grid, kl, sensors, reaction). */
#include <stdlib.h>
#include <string.h>

#include "../poisson/poisson.h"

#define EXPORT __attribute__((visibility("default")))

/* A solver for G x G interior nodes, K KL terms, S x S sensors and reaction c; NULL on bad sizes. */
EXPORT void *pde_new(int grid, int kl, int sensors, double reaction) {
    poisson *P = calloc(1, sizeof *P);
    if (!P) return NULL;
    if (poisson_init(P, grid, kl, sensors, reaction) != 0) {
        poisson_free(P);
        free(P);
        return NULL;
    }
    return P;
}

EXPORT void pde_free(void *p) {
    if (!p) return;
    poisson_free(p);
    free(p);
}

/* q [S*S] = q(m) for m [K]; J [S*S, K] = dq/dm when J is not NULL. 0, or -1 when Newton fails. */
EXPORT int pde_solve(void *p, const double *m, double *q, double *J) {
    poisson *P = p;
    poisson_stats st;
    if (poisson_solve(P, m, q, &st) != 0) return -1;
    if (J) poisson_jacobian(P, J);
    return 0;
}

/* u [(G+2)^2] = the log-coefficient sum_k m_k sqrt(lambda_k) phi_k at the nodes, node (I, J) at
 * I + J (G+2). */
EXPORT void pde_field(void *p, const double *m, double *u) {
    poisson *P = p;
    poisson_set_coefficient(P, m);
    memcpy(u, P->u, sizeof(double) * (size_t)P->nn * (size_t)P->nn);
}
