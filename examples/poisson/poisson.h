/* poisson.h: the discrete nonlinear diffusion-reaction problem behind dino-gen-poisson.
 *
 *   -div( exp(u(x)) grad y ) + c y^3 = f(x)   on (0,1)^2,   y = 0 on the boundary,
 *   u(x) = sum_k m_k sqrt(lambda_k) phi_k(x),   q_j(m) = y(s_j)   (bilinear interpolation).
 *
 * See README.md next to this file for the maths; poisson.c for the implementation.
 *
 * Grid: nodes (I,J), I,J = 0..n+1, x = (I h, J h), h = 1/(n+1); node index I + J*(n+2).
 * Unknowns: the n*n interior nodes, unknown index (I-1) + (J-1)*n.
 * Observables: j = jy*S + jx is the sensor at ((jx+1)/(S+1), (jy+1)/(S+1)).
 */
#ifndef DINO_EXAMPLE_POISSON_H
#define DINO_EXAMPLE_POISSON_H

#include <stddef.h>

/* Prior of the log-coefficient: lambda_{ab} = KL_SIGMA^2 (1 + KL_ELL^2 pi^2 (a^2+b^2))^(-KL_S). */
#ifndef KL_SIGMA
#define KL_SIGMA 0.25
#endif
#ifndef KL_ELL
#define KL_ELL 0.15
#endif
#ifndef KL_S
#define KL_S 2.0
#endif

/* Source: f(x) = SRC_AMP exp(-|x - (SRC_X1, SRC_X2)|^2 / (2 SRC_WIDTH^2)). */
#ifndef SRC_AMP
#define SRC_AMP 100.0
#endif
#ifndef SRC_X1
#define SRC_X1 0.35
#endif
#ifndef SRC_X2
#define SRC_X2 0.6
#endif
#ifndef SRC_WIDTH
#define SRC_WIDTH 0.2
#endif

/* Newton: stop when ||R||_2 <= NEWTON_RTOL ||f||_2 (R, f over the interior unknowns). */
#define NEWTON_RTOL 1e-12
#define NEWTON_MAXIT 100
/* Accept a stall at the round-off floor when ||R|| <= NEWTON_FLOOR ||f||. */
#define NEWTON_FLOOR 1e-9

typedef struct {
    int n;    /* interior grid points per side */
    int nn;   /* n + 2 nodes per side */
    int K;    /* number of KL terms = dim m */
    int S;    /* sensors per side */
    int nq;   /* S*S = dim q */
    double c; /* reaction coefficient (>= 0) */
    double h; /* 1/(n+1) */

    int *kl_a, *kl_b; /* [K] cosine frequencies of mode k */
    double *lambda;   /* [K] KL eigenvalues, descending */
    double *phi;      /* [K][nn*nn] sqrt(lambda_k) phi_k at the nodes */
    double *f;        /* [nn*nn] source at the nodes (boundary entries unused) */
    double fnorm;     /* ||f||_2 over the interior nodes */
    int *sens_node;   /* [nq][4] node indices of the bilinear stencil */
    double *sens_w;   /* [nq][4] bilinear weights */

    /* state of the last solve */
    double *u;    /* [nn*nn] log-coefficient */
    double *kap;  /* [nn*nn] exp(u) */
    double *kx;   /* [nn*nn] face coefficient between (I,J) and (I+1,J) */
    double *ky;   /* [nn*nn] face coefficient between (I,J) and (I,J+1) */
    double *y;    /* [nn*nn] state, zero on the boundary */
    double *band; /* [n*n][n+1] Cholesky factor of the Newton Jacobian at y */
    int factored; /* band holds the factor at the current y */

    /* workspace */
    double *r, *d, *yt, *vec, *p;
} poisson;

typedef struct {
    int iters;               /* Newton steps taken */
    int floor_hit;           /* converged at the round-off floor rather than at NEWTON_RTOL */
    double res0;             /* ||R(0)|| = ||f|| */
    double res;              /* final ||R|| */
    double kap_min, kap_max; /* range of exp(u) over the nodes */
} poisson_stats;

/* Sets up the grid, the KL basis, the source and the sensors. Returns 0, or -1 on bad sizes or
 * allocation failure (P is then safe to free). */
int poisson_init(poisson *P, int n, int K, int S, double c);
void poisson_free(poisson *P);

/* Largest K that poisson_init accepts for grid n. */
int poisson_max_kl(int n);

/* Sets u = sum_k m_k phi_k from m[K] (or, with m == NULL, keeps P->u as set by the caller) and
 * derives kap, kx, ky. */
void poisson_set_coefficient(poisson *P, const double *m);

/* Solves R(y) = 0 for the coefficient set by poisson_set_coefficient, starting from y = 0, and
 * writes q[nq] (if q != NULL). Returns 0 on convergence, -1 otherwise. Leaves the Newton
 * Jacobian at the solution factored for poisson_jacobian. */
int poisson_solve_state(poisson *P, double *q, poisson_stats *st);

/* poisson_set_coefficient(m) + poisson_solve_state. */
int poisson_solve(poisson *P, const double *m, double *q, poisson_stats *st);

/* After a successful solve: J[nq][K], J[j][k] = dq_j/dm_k, by one adjoint solve per observable. */
void poisson_jacobian(poisson *P, double *J);

/* The discrete residual R(y) for the current coefficient: r[nn*nn], boundary entries set to 0. */
void poisson_residual(const poisson *P, const double *y, double *r);

/* The observables of the node vector y. */
void poisson_observe(const poisson *P, const double *y, double *q);

#endif
