/* poisson.c: finite differences, Newton and adjoint sensitivities for
 *
 *   -div( exp(u) grad y ) + c y^3 = f   on (0,1)^2,   y = 0 on the boundary.
 *
 * Discretisation (n x n interior nodes, h = 1/(n+1), kappa = exp(u) at every node, boundary nodes
 * included). The face coefficients are arithmetic means of the nodal kappa,
 *   kx(I,J) = (kappa(I,J) + kappa(I+1,J)) / 2,   ky(I,J) = (kappa(I,J) + kappa(I,J+1)) / 2,
 * and for every interior node (I,J) the residual is
 *   R(I,J) = [ kx(I,J)   (y(I,J) - y(I+1,J)) + kx(I-1,J) (y(I,J) - y(I-1,J))
 *            + ky(I,J)   (y(I,J) - y(I,J+1)) + ky(I,J-1) (y(I,J) - y(I,J-1)) ] / h^2
 *            + c y(I,J)^3 - f(I,J),
 * with y = 0 at boundary nodes. R is the gradient of the strictly convex energy
 *   E(y) = sum_faces k_f (y_a - y_b)^2 / (2 h^2) + sum_nodes (c y^4 / 4 - f y),
 * so the Newton Jacobian A(y) = K(kappa) + diag(3 c y^2) is symmetric positive definite, with
 * bandwidth n in the unknown ordering (I-1) + (J-1) n: one banded Cholesky per Newton step.
 * Newton starts from y = 0 and backtracks (Armijo on ||R||^2 / 2, for which the Newton step is
 * always a descent direction because A is nonsingular).
 *
 * Sensitivities. With A^T p_j = dq_j/dy (the bilinear weights of sensor j; A^T = A),
 *   dq_j/dm_k = -p_j^T dR/dm_k.
 * Since p_j = 0 and y = 0 at boundary nodes, p^T R = sum_faces k_f (y_a-y_b)(p_a-p_b)/h^2 +
 * (terms without u), and dk_f/du(node) = kappa(node)/2 for both end nodes of the face. So
 *   d(p^T R)/du(node) = kappa(node)/2 * sum_{faces f at node} (y_a-y_b)(p_a-p_b)/h^2 =: w(node),
 *   dq_j/dm_k = -sum_nodes w_j(node) sqrt(lambda_k) phi_k(node).
 */
#include "poisson.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

typedef struct {
    int a, b;
} mode;

static int mode_cmp(const void *pa, const void *pb) {
    const mode *x = pa, *y = pb;
    int rx = x->a * x->a + x->b * x->b, ry = y->a * y->a + y->b * y->b;
    if (rx != ry) return rx < ry ? -1 : 1;
    return (x->a > y->a) - (x->a < y->a);
}

int poisson_max_kl(int n) { return (n + 2) * (n + 2); }

void poisson_free(poisson *P) {
    free(P->kl_a);
    free(P->kl_b);
    free(P->lambda);
    free(P->phi);
    free(P->f);
    free(P->sens_node);
    free(P->sens_w);
    free(P->u);
    free(P->kap);
    free(P->kx);
    free(P->ky);
    free(P->y);
    free(P->band);
    free(P->r);
    free(P->d);
    free(P->yt);
    free(P->vec);
    free(P->p);
    memset(P, 0, sizeof *P);
}

int poisson_init(poisson *P, int n, int K, int S, double c) {
    memset(P, 0, sizeof *P);
    if (n < 1 || n > 4096 || K < 1 || K > poisson_max_kl(n) || S < 1 || S > 4096 || !(c >= 0) || !isfinite(c))
        return -1;
    const int nn = n + 2;
    const size_t nodes = (size_t)nn * nn, unk = (size_t)n * n;
    P->n = n;
    P->nn = nn;
    P->K = K;
    P->S = S;
    P->nq = S * S;
    P->c = c;
    P->h = 1.0 / (n + 1);

    P->kl_a = malloc(sizeof(int) * K);
    P->kl_b = malloc(sizeof(int) * K);
    P->lambda = malloc(sizeof(double) * K);
    P->phi = malloc(sizeof(double) * K * nodes);
    P->f = calloc(nodes, sizeof(double));
    P->sens_node = malloc(sizeof(int) * 4 * P->nq);
    P->sens_w = malloc(sizeof(double) * 4 * P->nq);
    P->u = calloc(nodes, sizeof(double));
    P->kap = calloc(nodes, sizeof(double));
    P->kx = calloc(nodes, sizeof(double));
    P->ky = calloc(nodes, sizeof(double));
    P->y = calloc(nodes, sizeof(double));
    P->band = calloc(unk * (n + 1), sizeof(double));
    P->r = calloc(nodes, sizeof(double));
    P->d = calloc(nodes, sizeof(double));
    P->yt = calloc(nodes, sizeof(double));
    P->vec = calloc(nodes, sizeof(double));
    P->p = calloc(nodes, sizeof(double));
    mode *modes = malloc(sizeof(mode) * nodes);
    if (!P->kl_a || !P->kl_b || !P->lambda || !P->phi || !P->f || !P->sens_node || !P->sens_w || !P->u || !P->kap ||
        !P->kx || !P->ky || !P->y || !P->band || !P->r || !P->d || !P->yt || !P->vec || !P->p || !modes) {
        free(modes);
        poisson_free(P);
        return -1;
    }

    /* KL modes: cosine frequencies (a,b) in 0..n+1, ordered by decreasing eigenvalue. */
    size_t nm = 0;
    for (int b = 0; b < nn; b++)
        for (int a = 0; a < nn; a++) modes[nm++] = (mode){a, b};
    qsort(modes, nm, sizeof(mode), mode_cmp);
    for (int k = 0; k < K; k++) {
        const int a = modes[k].a, b = modes[k].b;
        const double lam =
            KL_SIGMA * KL_SIGMA * pow(1.0 + KL_ELL * KL_ELL * M_PI * M_PI * (double)(a * a + b * b), -KL_S);
        const double sc = sqrt(lam) * (a ? sqrt(2.0) : 1.0) * (b ? sqrt(2.0) : 1.0);
        P->kl_a[k] = a;
        P->kl_b[k] = b;
        P->lambda[k] = lam;
        double *ph = P->phi + (size_t)k * nodes;
        for (int J = 0; J < nn; J++) {
            const double cy = cos(b * M_PI * J * P->h);
            for (int I = 0; I < nn; I++) ph[I + (size_t)J * nn] = sc * cos(a * M_PI * I * P->h) * cy;
        }
    }
    free(modes);

    /* Source. */
    double fs = 0;
    for (int J = 0; J < nn; J++)
        for (int I = 0; I < nn; I++) {
            const double x1 = I * P->h - SRC_X1, x2 = J * P->h - SRC_X2;
            const double v = SRC_AMP * exp(-(x1 * x1 + x2 * x2) / (2 * SRC_WIDTH * SRC_WIDTH));
            P->f[I + (size_t)J * nn] = v;
            if (I >= 1 && I <= n && J >= 1 && J <= n) fs += v * v;
        }
    P->fnorm = sqrt(fs);

    /* Sensors: bilinear interpolation in the cell that holds ((jx+1)/(S+1), (jy+1)/(S+1)). */
    for (int jy = 0; jy < S; jy++)
        for (int jx = 0; jx < S; jx++) {
            const int j = jy * S + jx;
            const double xi = (double)(jx + 1) * (n + 1) / (S + 1);
            const double eta = (double)(jy + 1) * (n + 1) / (S + 1);
            int I0 = (int)floor(xi), J0 = (int)floor(eta);
            if (I0 > n) I0 = n;
            if (J0 > n) J0 = n;
            const double tx = xi - I0, ty = eta - J0;
            int *nd = P->sens_node + 4 * j;
            double *w = P->sens_w + 4 * j;
            nd[0] = I0 + J0 * nn;
            nd[1] = I0 + 1 + J0 * nn;
            nd[2] = I0 + (J0 + 1) * nn;
            nd[3] = I0 + 1 + (J0 + 1) * nn;
            w[0] = (1 - tx) * (1 - ty);
            w[1] = tx * (1 - ty);
            w[2] = (1 - tx) * ty;
            w[3] = tx * ty;
        }
    return 0;
}

void poisson_set_coefficient(poisson *P, const double *m) {
    const int nn = P->nn;
    const size_t nodes = (size_t)nn * nn;
    if (m) {
        memset(P->u, 0, sizeof(double) * nodes);
        for (int k = 0; k < P->K; k++) {
            const double mk = m[k];
            const double *ph = P->phi + (size_t)k * nodes;
            for (size_t i = 0; i < nodes; i++) P->u[i] += mk * ph[i];
        }
    }
    for (size_t i = 0; i < nodes; i++) P->kap[i] = exp(P->u[i]);
    memset(P->kx, 0, sizeof(double) * nodes);
    memset(P->ky, 0, sizeof(double) * nodes);
    for (int J = 0; J < nn; J++)
        for (int I = 0; I < nn; I++) {
            const size_t i = I + (size_t)J * nn;
            if (I + 1 < nn) P->kx[i] = 0.5 * (P->kap[i] + P->kap[i + 1]);
            if (J + 1 < nn) P->ky[i] = 0.5 * (P->kap[i] + P->kap[i + nn]);
        }
    P->factored = 0;
}

void poisson_residual(const poisson *P, const double *y, double *r) {
    const int n = P->n, nn = P->nn;
    const double ih2 = 1.0 / (P->h * P->h), c = P->c;
    memset(r, 0, sizeof(double) * nn * nn);
    for (int J = 1; J <= n; J++)
        for (int I = 1; I <= n; I++) {
            const size_t i = I + (size_t)J * nn;
            const double yi = y[i];
            const double flux = P->kx[i] * (yi - y[i + 1]) + P->kx[i - 1] * (yi - y[i - 1]) +
                P->ky[i] * (yi - y[i + nn]) + P->ky[i - nn] * (yi - y[i - nn]);
            r[i] = flux * ih2 + c * yi * yi * yi - P->f[i];
        }
}

static double norm_interior(const poisson *P, const double *v) {
    double s = 0;
    for (int J = 1; J <= P->n; J++)
        for (int I = 1; I <= P->n; I++) {
            const double x = v[I + (size_t)J * P->nn];
            s += x * x;
        }
    return sqrt(s);
}

void poisson_observe(const poisson *P, const double *y, double *q) {
    for (int j = 0; j < P->nq; j++) {
        double s = 0;
        for (int t = 0; t < 4; t++) s += P->sens_w[4 * j + t] * y[P->sens_node[4 * j + t]];
        q[j] = s;
    }
}

/* Band storage: row r holds columns r-n..r at band[r*(n+1) + (col - r + n)]; diagonal at n. */

/* Assembles A(y) = K + diag(3 c y^2) and factors it in place, A = L L^T. Returns 0, or -1 if A
 * is not numerically positive definite. */
static int assemble_factor(poisson *P, const double *y) {
    const int n = P->n, nn = P->nn, w = n;
    const size_t N = (size_t)n * n, ld = (size_t)n + 1;
    const double ih2 = 1.0 / (P->h * P->h), c3 = 3.0 * P->c;
    double *B = P->band;
    memset(B, 0, sizeof(double) * N * ld);
    for (int J = 1; J <= n; J++)
        for (int I = 1; I <= n; I++) {
            const size_t i = I + (size_t)J * nn, r = (size_t)(I - 1) + (size_t)(J - 1) * n;
            double *row = B + r * ld;
            row[w] = (P->kx[i] + P->kx[i - 1] + P->ky[i] + P->ky[i - nn]) * ih2 + c3 * y[i] * y[i];
            if (I > 1) row[w - 1] = -P->kx[i - 1] * ih2;
            if (J > 1) row[0] = -P->ky[i - nn] * ih2;
        }
    /* Row-oriented banded Cholesky: L(r,c) = (A(r,c) - sum_t L(r,t) L(c,t)) / L(c,c). */
    for (size_t r = 0; r < N; r++) {
        double *Lr = B + r * ld;
        const size_t c0 = r >= (size_t)w ? r - w : 0;
        for (size_t c = c0; c <= r; c++) {
            const double *Lc = B + c * ld;
            double s = Lr[c + w - r];
            /* t runs over c0..c-1, inside the band of both rows. */
            for (size_t t = c0; t < c; t++) s -= Lr[t + w - r] * Lc[t + w - c];
            if (c < r) {
                Lr[c + w - r] = s / Lc[w];
            } else {
                if (!(s > 0) || !isfinite(s)) return -1;
                Lr[w] = sqrt(s);
            }
        }
    }
    P->factored = 1;
    return 0;
}

/* Solves L L^T x = b in place, x and b of length n*n. */
static void band_solve(const poisson *P, double *x) {
    const int n = P->n, w = n;
    const size_t N = (size_t)n * n, ld = (size_t)n + 1;
    const double *B = P->band;
    for (size_t r = 0; r < N; r++) {
        const double *Lr = B + r * ld;
        const size_t c0 = r >= (size_t)w ? r - w : 0;
        double s = x[r];
        for (size_t t = c0; t < r; t++) s -= Lr[t + w - r] * x[t];
        x[r] = s / Lr[w];
    }
    for (size_t r = N; r-- > 0;) {
        const double *Lr = B + r * ld;
        const size_t c0 = r >= (size_t)w ? r - w : 0;
        const double xr = x[r] / Lr[w];
        x[r] = xr;
        for (size_t t = c0; t < r; t++) x[t] -= Lr[t + w - r] * xr;
    }
}

static void gather(const poisson *P, const double *node, double *unk) {
    for (int J = 1; J <= P->n; J++)
        for (int I = 1; I <= P->n; I++) unk[(I - 1) + (size_t)(J - 1) * P->n] = node[I + (size_t)J * P->nn];
}

static void scatter(const poisson *P, const double *unk, double *node) {
    memset(node, 0, sizeof(double) * P->nn * P->nn);
    for (int J = 1; J <= P->n; J++)
        for (int I = 1; I <= P->n; I++) node[I + (size_t)J * P->nn] = unk[(I - 1) + (size_t)(J - 1) * P->n];
}

int poisson_solve_state(poisson *P, double *q, poisson_stats *st) {
    const int nn = P->nn;
    const size_t nodes = (size_t)nn * nn;
    poisson_stats s = {0};
    s.kap_min = INFINITY;
    s.kap_max = -INFINITY;
    for (size_t i = 0; i < nodes; i++) {
        if (P->kap[i] < s.kap_min) s.kap_min = P->kap[i];
        if (P->kap[i] > s.kap_max) s.kap_max = P->kap[i];
    }
    double *y = P->y, *r = P->r, *yt = P->yt, *rt = P->vec, *d = P->d;
    memset(y, 0, sizeof(double) * nodes);
    poisson_residual(P, y, r);
    double rn = norm_interior(P, r);
    s.res0 = rn;
    const double tol = NEWTON_RTOL * P->fnorm;
    int ok = 0;
    for (int it = 0;; it++) {
        if (assemble_factor(P, y) != 0) break;
        if (rn <= tol) {
            ok = 1;
            break;
        }
        if (it == NEWTON_MAXIT || !isfinite(rn)) break;
        /* Newton step A d = -R, then backtracking: accept t when ||R(y + t d)||^2 <= (1 - 2e-4 t)
     * ||R(y)||^2 (Armijo for ||R||^2/2, whose slope along d is -||R||^2). */
        gather(P, r, yt);
        for (size_t i = 0; i < (size_t)P->n * P->n; i++) yt[i] = -yt[i];
        band_solve(P, yt);
        scatter(P, yt, d);
        double t = 1, rnt = INFINITY;
        for (; t >= 0x1p-30; t *= 0.5) {
            for (size_t i = 0; i < nodes; i++) yt[i] = y[i] + t * d[i];
            poisson_residual(P, yt, rt);
            rnt = norm_interior(P, rt);
            if (rnt * rnt <= (1 - 2e-4 * t) * rn * rn) break;
        }
        if (t < 0x1p-30) {
            /* No decrease: only acceptable at the round-off floor (A is still factored at y). */
            if (rn <= NEWTON_FLOOR * P->fnorm) {
                ok = 1;
                s.floor_hit = 1;
            }
            break;
        }
        memcpy(y, yt, sizeof(double) * nodes);
        memcpy(r, rt, sizeof(double) * nodes);
        rn = rnt;
        s.iters = it + 1;
    }
    s.res = rn;
    if (st) *st = s;
    if (!ok) {
        P->factored = 0;
        return -1;
    }
    if (q) poisson_observe(P, y, q);
    return 0;
}

int poisson_solve(poisson *P, const double *m, double *q, poisson_stats *st) {
    poisson_set_coefficient(P, m);
    return poisson_solve_state(P, q, st);
}

void poisson_jacobian(poisson *P, double *Jac) {
    const int n = P->n, nn = P->nn, K = P->K;
    const size_t nodes = (size_t)nn * nn;
    const double ih2 = 1.0 / (P->h * P->h);
    const double *y = P->y;
    double *p = P->p, *x = P->d, *g = P->yt;
    for (int j = 0; j < P->nq; j++) {
        /* Adjoint: A p = dq_j/dy (boundary stencil nodes carry no unknown). */
        memset(p, 0, sizeof(double) * nodes);
        for (int t = 0; t < 4; t++) p[P->sens_node[4 * j + t]] += P->sens_w[4 * j + t];
        gather(P, p, x);
        band_solve(P, x);
        scatter(P, x, p);
        /* w(node) = kappa(node)/2 * sum over faces at node of (y_a - y_b)(p_a - p_b) / h^2. */
        memset(g, 0, sizeof(double) * nodes);
        for (int J = 1; J <= n; J++)
            for (int I = 0; I <= n; I++) {
                const size_t a = I + (size_t)J * nn, b = a + 1;
                const double v = (y[a] - y[b]) * (p[a] - p[b]);
                g[a] += v;
                g[b] += v;
            }
        for (int J = 0; J <= n; J++)
            for (int I = 1; I <= n; I++) {
                const size_t a = I + (size_t)J * nn, b = a + nn;
                const double v = (y[a] - y[b]) * (p[a] - p[b]);
                g[a] += v;
                g[b] += v;
            }
        for (size_t i = 0; i < nodes; i++) g[i] *= 0.5 * ih2 * P->kap[i];
        double *row = Jac + (size_t)j * K;
        for (int k = 0; k < K; k++) {
            const double *ph = P->phi + (size_t)k * nodes;
            double s = 0;
            for (size_t i = 0; i < nodes; i++) s += g[i] * ph[i];
            row[k] = -s;
        }
    }
}
