/* test_basis.c - bases from data (runtime/basis.c) against analytic cases, compared as
 * projectors (the sign of an eigenvector is a convention):
 *
 *   pod, exact low rank: x = mu + A z with A [8, 2] of orthogonal columns (norms 3 and 1) and
 *     z ~ N(0, I): the centred rank-2 POD spans A exactly (projector to 1e-12), its eigenvalues
 *     are those of the sample covariance of (3 z1, z2) (to 1e-10), the shift is the sample mean,
 *     100 % of the trace, orthonormal (||E^T D - I|| < 1e-12), L2 floor 0;
 *   active subspace: f(x) = (a1.x)^2 + sin(a2.x), x ~ N(0, I_8), a1, a2 orthonormal: the mean of
 *     grad f grad f^T has eigenpairs (4, a1) and ((1 + e^-2) / 2, a2) and 0 otherwise; from
 *     40000 rows the eigenvalues agree to 3 % and the projectors to 0.03 (sampling error
 *     ~ 1 / sqrt(40000) times the eigenvalue ratios);
 *   randomized range finder (forced by a low dense_max) against the dense eigensolver on a
 *     spectrum decaying as 2^-j in dimension 40: projectors to 1e-8, eigenvalues to 1e-10;
 *   the sign rule: each column's entry of largest magnitude is positive;
 *   determinism: two computations are bit-identical; changing rows outside the training rows
 *     used (samples = K) leaves the basis bit-identical; the cache returns the same bits;
 *   the frozen layers: basis_fill_params writes W = E^T, b = -E^T shift for encode and W = D,
 *     b = shift for decode;
 *   float64 rows kept for float32 training (test_f32_train). */
#include <math.h>
#include <string.h>

#include "basis.h"
#include "cache.h"
#include "harness.h"
#include "rng.h"

enum { D8 = 8 };

/* ||P1 - P2||_F for P = D D^T of two [n, r] bases (r may differ: then it is large). */
static double projector_diff(const double *A, int ra, const double *B, int rb, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double pa = 0, pb = 0;
            for (int k = 0; k < ra; k++) pa += A[i * ra + k] * A[j * ra + k];
            for (int k = 0; k < rb; k++) pb += B[i * rb + k] * B[j * rb + k];
            s += (pa - pb) * (pa - pb);
        }
    return sqrt(s);
}

static Model one_basis(Basis *b, int in, int out) {
    return (Model){.name = "t", .in_dim = in, .out_dim = out, .bases = b, .n_bases = 1};
}

static BasisSet compute(T *t, const Model *m, const Dataset *d, int dense_max, int no_cache) {
    BasisSet bs;
    char err[512] = "";
    CHECK_OK(t, basis_set_init(&bs, m, err, sizeof err), err);
    bs.dense_max = dense_max;
    bs.no_cache = no_cache;
    CHECK_OK(t, basis_compute(m, &bs, d, 7, err, sizeof err), err);
    return bs;
}

static void test_pod_low_rank(T *t) {
    int n = 500;
    double *x = malloc(sizeof(double) * (size_t)(n * D8)), A[D8 * 2] = {0}, mu[D8];
    Rng r;
    rng_seed(&r, 1);
    /* columns: 3 * e-ish and 1 * another, orthogonal: a = (1,1,1,1,0,0,0,0)/2, b = (1,-1,0,0,1,-1,0,0)/2 */
    double a[D8] = {.5, .5, .5, .5, 0, 0, 0, 0}, bb[D8] = {.5, -.5, 0, 0, .5, -.5, 0, 0};
    for (int i = 0; i < D8; i++) A[i * 2] = a[i], A[i * 2 + 1] = bb[i], mu[i] = 0.1 * i;
    double z1m = 0, z2m = 0, c11 = 0, c22 = 0, c12 = 0;
    double *z = malloc(sizeof(double) * 2 * (size_t)n);
    for (int k = 0; k < n; k++) {
        z[2 * k] = 3 * rng_normal(&r), z[2 * k + 1] = rng_normal(&r);
        z1m += z[2 * k] / n, z2m += z[2 * k + 1] / n;
        for (int i = 0; i < D8; i++) x[k * D8 + i] = mu[i] + a[i] * z[2 * k] + bb[i] * z[2 * k + 1];
    }
    for (int k = 0; k < n; k++) {
        double u = z[2 * k] - z1m, w = z[2 * k + 1] - z2m;
        c11 += u * u / n, c22 += w * w / n, c12 += u * w / n;
    }
    /* eigenvalues of [[c11, c12], [c12, c22]] */
    double tr = c11 + c22, det = c11 * c22 - c12 * c12, disc = sqrt(tr * tr / 4 - det);
    double l1 = tr / 2 + disc, l2 = tr / 2 - disc;
    Dataset d = {.n = n, .in = D8, .out = 1, .f64 = 1, .x = x};
    Basis b = {.name = "Vx",
               .method = BASIS_POD,
               .source = BASIS_OF_INPUT,
               .dim = D8,
               .rank = 2,
               .centre = 1,
               .text = "Vx = pod(x, rank = 2)",
               .source_name = "x",
               .used_encode = 1,
               .enc_param = -1,
               .dec_param = -1};
    Model m = one_basis(&b, D8, 1);
    BasisSet bs = compute(t, &m, &d, 0, 1);
    BasisValues *v = &bs.v[0];
    if (CHECK(t, v->origin == BASIS_FROM_DATA && v->eig)) {
        CHECK(t, projector_diff(v->D, 2, A, 2, D8) < 1e-12);
        CHECK_NEAR(t, v->eig[0], l1, 1e-10 * l1);
        CHECK_NEAR(t, v->eig[1], l2, 1e-10 * l1);
        CHECK_NEAR(t, (v->eig[0] + v->eig[1]) / v->trace, 1.0, 1e-12);
        CHECK(t, v->orth_err < 1e-12 && v->orthonormal);
        double mean_err = 0;
        for (int i = 0; i < D8; i++) mean_err = fmax(mean_err, fabs(v->shift[i] - (mu[i] + a[i] * z1m + bb[i] * z2m)));
        CHECK(t, mean_err < 1e-12);
        for (int j = 0; j < 2; j++) { /* the sign rule */
            int best = 0;
            for (int i = 1; i < D8; i++)
                if (fabs(v->D[i * 2 + j]) > fabs(v->D[best * 2 + j])) best = i;
            CHECK(t, v->D[best * 2 + j] > 0);
        }
        basis_floors(&m, &bs, &d, NULL);
        CHECK(t, v->floor_l2[0] < 1e-12 && isnan(v->floor_l2[1]));
    }
    basis_set_free(&bs);
    free(x), free(z);
}

static void test_active_subspace(T *t) {
    int n = 40000;
    double *x = malloc(sizeof(double) * (size_t)n * D8), *J = malloc(sizeof(double) * (size_t)n * D8);
    double *y = malloc(sizeof(double) * (size_t)n);
    double s = 1 / sqrt(2.0);
    double a1[D8] = {s, s, 0, 0, 0, 0, 0, 0}, a2[D8] = {0, 0, s, -s, 0, 0, 0, 0};
    Rng r;
    rng_seed(&r, 2);
    for (int k = 0; k < n; k++) {
        double p1 = 0, p2 = 0;
        for (int i = 0; i < D8; i++) {
            x[k * D8 + i] = rng_normal(&r);
            p1 += a1[i] * x[k * D8 + i], p2 += a2[i] * x[k * D8 + i];
        }
        y[k] = p1 * p1 + sin(p2);
        for (int i = 0; i < D8; i++) J[k * D8 + i] = 2 * p1 * a1[i] + cos(p2) * a2[i];
    }
    Dataset d = {.n = n, .in = D8, .out = 1, .f64 = 1, .x = x, .y = y, .J = J};
    Basis b = {.name = "Vm",
               .method = BASIS_ACTIVE,
               .source = BASIS_OF_JACOBIAN,
               .dim = D8,
               .rank = 2,
               .text = "Vm = active_subspace(dy/dx, rank = 2)",
               .source_name = "dy/dx",
               .used_encode = 1,
               .enc_param = -1,
               .dec_param = -1};
    Model m = one_basis(&b, D8, 1);
    BasisSet bs = compute(t, &m, &d, 0, 1);
    BasisValues *v = &bs.v[0];
    if (CHECK(t, v->eig != NULL)) {
        double want2 = (1 + exp(-2.0)) / 2, exact[D8 * 2], e1[D8];
        for (int i = 0; i < D8; i++) exact[2 * i] = a1[i], exact[2 * i + 1] = a2[i], e1[i] = v->D[2 * i];
        if (t->verbose) printf("  eigenvalues %.4f %.4f (want 4, %.4f)\n", v->eig[0], v->eig[1], want2);
        CHECK_NEAR(t, v->eig[0], 4.0, 0.03 * 4);
        CHECK_NEAR(t, v->eig[1], want2, 0.03 * want2);
        CHECK(t, projector_diff(v->D, 2, exact, 2, D8) < 0.03);
        CHECK(t, projector_diff(e1, 1, a1, 1, D8) < 0.03);
        CHECK_NEAR(t, (v->eig[0] + v->eig[1]) / v->trace, 1.0, 1e-12); /* the rest of the spectrum is 0 */
    }
    basis_set_free(&bs);
    free(x), free(J), free(y);
}

static void test_randomized(T *t) {
    enum { N40 = 40, ROWS = 300 };
    double *x = malloc(sizeof(double) * N40 * ROWS);
    Rng r;
    rng_seed(&r, 3);
    for (int k = 0; k < ROWS; k++)
        for (int i = 0; i < N40; i++) x[k * N40 + i] = ldexp(rng_normal(&r), -i) * (1 + 0.1 * (i % 3));
    Dataset d = {.n = ROWS, .in = N40, .out = 1, .f64 = 1, .x = x};
    Basis b = {.name = "Vx",
               .method = BASIS_POD,
               .source = BASIS_OF_INPUT,
               .dim = N40,
               .rank = 3,
               .centre = 0,
               .text = "Vx = pod(x, rank = 3, centre = false)",
               .source_name = "x",
               .used_encode = 1,
               .enc_param = -1,
               .dec_param = -1};
    Model m = one_basis(&b, N40, 1);
    BasisSet dense = compute(t, &m, &d, 0, 1), rnd = compute(t, &m, &d, 10, 1), again = compute(t, &m, &d, 10, 1);
    if (CHECK(t, !dense.v[0].randomized && rnd.v[0].randomized && dense.v[0].eig && rnd.v[0].eig)) {
        CHECK(t, projector_diff(dense.v[0].D, 3, rnd.v[0].D, 3, N40) < 1e-8);
        for (int j = 0; j < 3; j++) CHECK_NEAR(t, rnd.v[0].eig[j], dense.v[0].eig[j], 1e-10 * dense.v[0].eig[0]);
        CHECK_NEAR(t, rnd.v[0].trace, dense.v[0].trace, 1e-12 * dense.v[0].trace);
        CHECK(t, memcmp(rnd.v[0].D, again.v[0].D, sizeof(double) * N40 * 3) == 0); /* deterministic for a seed */
    }
    basis_set_free(&dense), basis_set_free(&rnd), basis_set_free(&again);
    free(x);
}

/* samples = K: rows after K (the test or validation rows of a split) never change the basis;
 * the cache gives back the same bits. */
static void test_rows_and_cache(T *t) {
    enum { N6 = 6, ROWS = 200, K = 150 };
    double *x = malloc(sizeof(double) * N6 * ROWS);
    Rng r;
    rng_seed(&r, 4);
    for (int i = 0; i < N6 * ROWS; i++) x[i] = rng_normal(&r) * (1 + i % N6);
    Dataset d = {.n = ROWS, .in = N6, .out = 1, .f64 = 1, .x = x};
    Basis b = {.name = "Vx",
               .method = BASIS_POD,
               .source = BASIS_OF_INPUT,
               .dim = N6,
               .rank = 3,
               .centre = 1,
               .samples = K,
               .text = "Vx = pod(x, rank = 3, samples = 150)",
               .source_name = "x",
               .used_encode = 1,
               .enc_param = -1,
               .dec_param = -1};
    Model m = one_basis(&b, N6, 1);
    setenv("DINO_CACHE_DIR", t_path(t, "cache"), 1);
    BasisSet first = compute(t, &m, &d, 0, 0);
    { /* the cached basis is an entry of the cache folder: under its cap (cache.h), cleared with it */
        CacheInfo ci;
        char err[256];
        CHECK(t, cache_info(&ci, err, sizeof err) == 0 && ci.entries == 1);
    }
    for (int i = K * N6; i < ROWS * N6; i++) x[i] = 100 + rng_normal(&r); /* other rows change */
    BasisSet fresh = compute(t, &m, &d, 0, 1), cached = compute(t, &m, &d, 0, 0);
    CHECK(t, first.v[0].origin == BASIS_FROM_DATA && first.v[0].samples == K);
    CHECK(t, cached.v[0].origin == BASIS_FROM_CACHE);
    size_t bytes = sizeof(double) * N6 * 3;
    CHECK(t,
          memcmp(first.v[0].D, fresh.v[0].D, bytes) == 0 &&
              memcmp(first.v[0].eig, fresh.v[0].eig, 3 * sizeof(double)) == 0);
    CHECK(t, memcmp(first.v[0].shift, fresh.v[0].shift, N6 * sizeof(double)) == 0);
    CHECK(t,
          memcmp(first.v[0].D, cached.v[0].D, bytes) == 0 &&
              memcmp(first.v[0].shift, cached.v[0].shift, N6 * sizeof(double)) == 0);
    x[0] += 1; /* a training row changes: the key changes, the basis is computed again */
    BasisSet other = compute(t, &m, &d, 0, 0);
    CHECK(t, other.v[0].origin == BASIS_FROM_DATA && memcmp(first.v[0].D, other.v[0].D, bytes) != 0);

    /* the frozen layers: encode W = E^T [rank, dim], b = -E^T shift; decode W = D, b = shift */
    Param ps[4] = {{.name = "e.w", .ndim = 2, .shape = {3, N6}, .offset = 0, .size = 3 * N6, .frozen = 1},
                   {.name = "e.b", .ndim = 1, .shape = {3, 0}, .offset = 3 * N6, .size = 3, .frozen = 1},
                   {.name = "d.w", .ndim = 2, .shape = {N6, 3}, .offset = 3 * N6 + 3, .size = 3 * N6, .frozen = 1},
                   {.name = "d.b", .ndim = 1, .shape = {N6, 0}, .offset = 6 * N6 + 3, .size = N6, .frozen = 1}};
    b.enc_param = 0, b.dec_param = 2;
    m.params = ps, m.n_params = 4, m.n_weights = 7 * N6 + 3;
    double P[7 * N6 + 3];
    basis_fill_params(&m, &first, P, 1);
    const BasisValues *v = &first.v[0];
    double worst = 0;
    for (int j = 0; j < 3; j++) {
        double s = 0;
        for (int i = 0; i < N6; i++) {
            worst = fmax(worst, fabs(P[j * N6 + i] - v->E[i * 3 + j]));
            worst = fmax(worst, fabs(P[3 * N6 + 3 + i * 3 + j] - v->D[i * 3 + j]));
            s += v->E[i * 3 + j] * v->shift[i];
        }
        worst = fmax(worst, fabs(P[3 * N6 + j] + s));
    }
    for (int i = 0; i < N6; i++) worst = fmax(worst, fabs(P[6 * N6 + 3 + i] - v->shift[i]));
    CHECK(t, worst < 1e-15);
    basis_set_free(&first), basis_set_free(&fresh), basis_set_free(&cached), basis_set_free(&other);
    free(x);
}

/* basis_project streams over blocks of BASIS_BLOCK_ROWS rows (a block of J rows may end inside a
 * sample): against a plain per-sample computation (no BLAS), for n > BASIS_BLOCK_ROWS samples
 * whose out rows do not divide the block, in f64 and f32 data, with and without the extra row. */
static void test_project_blocks(T *t) {
    enum { NS = 2 * BASIS_BLOCK_ROWS + 37, IN = 20, OUT = 3, R = 5 };
    double *x = malloc(sizeof(double) * NS * IN), *y = malloc(sizeof(double) * NS * OUT);
    double *J = malloc(sizeof(double) * NS * OUT * IN);
    float *xf = malloc(sizeof(float) * NS * IN), *yf = malloc(sizeof(float) * NS * OUT);
    float *Jf = malloc(sizeof(float) * NS * OUT * IN);
    Rng g;
    rng_seed(&g, 11);
    for (int i = 0; i < NS * IN; i++) x[i] = rng_normal(&g) * (1 + i % IN), xf[i] = (float)x[i];
    for (int i = 0; i < NS * OUT; i++) y[i] = rng_normal(&g), yf[i] = (float)y[i];
    for (int i = 0; i < NS * OUT * IN; i++) J[i] = rng_normal(&g) / (1 + i % IN), Jf[i] = (float)J[i];
    Basis b = {.name = "Vx",
               .method = BASIS_POD,
               .source = BASIS_OF_INPUT,
               .dim = IN,
               .rank = R,
               .centre = 1,
               .text = "Vx = pod(x, rank = 5)",
               .source_name = "x",
               .used_encode = 1,
               .enc_param = -1,
               .dec_param = -1};
    Model m = one_basis(&b, IN, OUT);
    Dataset d = {.n = NS, .in = IN, .out = OUT, .f64 = 1, .x = x, .y = y, .J = J};
    BasisSet bs = compute(t, &m, &d, 0, 1);
    const BasisValues *v = &bs.v[0];
    for (int f64 = 1; f64 >= 0; f64--)
        for (int aug = 0; aug <= 1; aug++) {
            Dataset dd = {.n = NS,
                          .in = IN,
                          .out = OUT,
                          .f64 = f64,
                          .x = f64 ? (void *)x : xf,
                          .y = f64 ? (void *)y : yf,
                          .J = f64 ? (void *)J : Jf};
            int oa = OUT + aug;
            double *px = malloc(sizeof(double) * NS * R), *py = malloc(sizeof(double) * NS * oa);
            double *pJ = malloc(sizeof(double) * NS * oa * R);
            CHECK(t, basis_project(v, &dd, aug, px, py, pJ) == 0);
            double worst = 0;
            for (int i = 0; i < NS; i++) {
                double row[IN];
                for (int k = 0; k < IN; k++) row[k] = (f64 ? x[i * IN + k] : (double)xf[i * IN + k]) - v->shift[k];
                for (int j = 0; j < R; j++) {
                    double s = 0;
                    for (int k = 0; k < IN; k++) s += row[k] * v->E[k * R + j];
                    worst = fmax(worst, fabs(px[i * R + j] - s) / (1 + fabs(s)));
                }
                for (int o = 0; o < oa; o++)
                    worst =
                        fmax(worst, fabs(py[i * oa + o] - (o < OUT ? (f64 ? y[i * OUT + o] : yf[i * OUT + o]) : 0)));
                double disc = 0;
                for (int o = 0; o < OUT; o++) {
                    const double *Jo = J + (i * OUT + o) * IN;
                    double je[R], jd[IN];
                    for (int k = 0; k < IN; k++) jd[k] = f64 ? Jo[k] : (double)Jf[(i * OUT + o) * IN + k];
                    for (int j = 0; j < R; j++) {
                        je[j] = 0;
                        for (int k = 0; k < IN; k++) je[j] += jd[k] * v->E[k * R + j];
                        worst = fmax(worst, fabs(pJ[(i * oa + o) * R + j] - je[j]) / (1 + fabs(je[j])));
                    }
                    for (int k = 0; k < IN; k++) {
                        double e = jd[k];
                        for (int j = 0; j < R; j++) e -= je[j] * v->E[k * R + j];
                        disc += e * e;
                    }
                }
                if (aug) {
                    worst = fmax(worst, fabs(pJ[(i * oa + OUT) * R] - sqrt(disc)) / sqrt(disc));
                    for (int j = 1; j < R; j++) worst = fmax(worst, fabs(pJ[(i * oa + OUT) * R + j]));
                }
            }
            if (t->verbose)
                printf("  project %s aug %d: worst relative difference %.2e\n", f64 ? "f64" : "f32", aug, worst);
            CHECK(t, worst < 1e-13);
            free(px), free(py), free(pJ);
        }
    basis_set_free(&bs);
    free(x), free(y), free(J), free(xf), free(yf), free(Jf);
}

/* float64 data kept for float32 training (Dataset.f32_train, data_load_sets_source): the bases
 * read the values rounded to float32, so they, their cache key and their floors are those of the
 * float32 data bit for bit; the projection reads the float64 values (the flag changes none of its
 * bits). Rounding that projection once to float32 is closer to the f64 projection than projecting
 * the float32 data: both errors measured, the first at most half an ulp of each value. */
static void test_f32_train(T *t) {
    enum { NS = 300, IN = 40, OUT = 6, R1 = 5, R2 = 3 };
    double *x = malloc(sizeof(double) * NS * IN), *y = malloc(sizeof(double) * NS * OUT);
    double *J = malloc(sizeof(double) * NS * OUT * IN);
    float *xf = malloc(sizeof(float) * NS * IN), *yf = malloc(sizeof(float) * NS * OUT);
    float *Jf = malloc(sizeof(float) * NS * OUT * IN);
    Rng g;
    rng_seed(&g, 12);
    for (int i = 0; i < NS * IN; i++) x[i] = rng_normal(&g) * (1 + i % IN), xf[i] = (float)x[i];
    for (int i = 0; i < NS * OUT; i++) y[i] = 3 + rng_normal(&g) * (1 + i % OUT), yf[i] = (float)y[i];
    for (int i = 0; i < NS * OUT * IN; i++) J[i] = rng_normal(&g) / (1 + i % IN), Jf[i] = (float)J[i];
    Basis b[2] = {{.name = "Vm",
                   .method = BASIS_ACTIVE,
                   .source = BASIS_OF_JACOBIAN,
                   .dim = IN,
                   .rank = R1,
                   .text = "Vm = active_subspace(dq/dm, rank = 5)",
                   .source_name = "dq/dm",
                   .used_encode = 1,
                   .enc_param = -1,
                   .dec_param = -1},
                  {.name = "Vq",
                   .method = BASIS_POD,
                   .source = BASIS_OF_OUTPUT,
                   .dim = OUT,
                   .rank = R2,
                   .centre = 1,
                   .text = "Vq = pod(q, rank = 3)",
                   .source_name = "q",
                   .used_decode = 1,
                   .enc_param = -1,
                   .dec_param = -1}};
    Model m = {.name = "t", .in_dim = IN, .out_dim = OUT, .bases = b, .n_bases = 2};
    Dataset d64 = {.n = NS, .in = IN, .out = OUT, .f64 = 1, .x = x, .y = y, .J = J};
    Dataset kept = d64, d32 = {.n = NS, .in = IN, .out = OUT, .f64 = 0, .x = xf, .y = yf, .J = Jf};
    kept.f32_train = 1;
    setenv("DINO_CACHE_DIR", t_path(t, "cache_f32"), 1);
    BasisSet bk = compute(t, &m, &kept, 0, 0), b32 = compute(t, &m, &d32, 0, 0), b64 = compute(t, &m, &d64, 0, 1);
    basis_floors(&m, &bk, &kept, NULL);
    basis_floors(&m, &b32, &d32, NULL);
    for (int i = 0; i < 2; i++) {
        const BasisValues *a = &bk.v[i], *c = &b32.v[i];
        size_t bytes = sizeof(double) * (size_t)a->dim * (size_t)a->rank;
        CHECK(t, a->origin == BASIS_FROM_DATA && c->origin == BASIS_FROM_CACHE && a->key == c->key);
        CHECK(t,
              memcmp(a->D, c->D, bytes) == 0 && memcmp(a->E, c->E, bytes) == 0 &&
                  memcmp(a->shift, c->shift, sizeof(double) * (size_t)a->dim) == 0 &&
                  memcmp(a->eig, c->eig, sizeof(double) * (size_t)a->rank) == 0);
        CHECK(t,
              memcmp(a->floor_l2, c->floor_l2, sizeof a->floor_l2) == 0 &&
                  memcmp(a->floor_h1, c->floor_h1, sizeof a->floor_h1) == 0);
        CHECK(t, a->key != b64.v[i].key && memcmp(a->D, b64.v[i].D, bytes) != 0); /* f64 values: another basis */
    }
    /* the projection (both sides) of the kept float64 rows, of the same rows without the flag, and
     * of the float32 rows, with the same bases */
    int oa = R2 + BASIS_OUT_EXTRA;
    size_t nx = (size_t)NS * R1, ny = (size_t)NS * (size_t)oa, nj = (size_t)NS * (size_t)oa * R1;
    double *P[3][3];
    const Dataset *sets[3] = {&kept, &d64, &d32};
    for (int k = 0; k < 3; k++) {
        P[k][0] = malloc(sizeof(double) * nx), P[k][1] = malloc(sizeof(double) * ny);
        P[k][2] = malloc(sizeof(double) * nj);
        CHECK(t, basis_project_both(&bk.v[0], &bk.v[1], sets[k], 0, NS, P[k][0], P[k][1], P[k][2]) == 0);
    }
    CHECK(t,
          memcmp(P[0][0], P[1][0], sizeof(double) * nx) == 0 && memcmp(P[0][1], P[1][1], sizeof(double) * ny) == 0 &&
              memcmp(P[0][2], P[1][2], sizeof(double) * nj) == 0);
    { /* the Jacobian rows (GEMMs over blocks of samples) against a plain per-sample computation:
       * D^T J E and |J - D D^T J E E^T|_F, for the float64 and the float32 rows */
        const BasisValues *vi = &bk.v[0], *vo = &bk.v[1];
        double worst_j = 0;
        for (int k = 1; k <= 2; k++)
            for (int i = 0; i < NS; i++) {
                double Jd[OUT * IN], B[R2 * R1], R = 0;
                for (int e = 0; e < OUT * IN; e++) Jd[e] = k == 1 ? J[i * OUT * IN + e] : (double)Jf[i * OUT * IN + e];
                for (int a = 0; a < R2; a++)
                    for (int c = 0; c < R1; c++) {
                        double v = 0;
                        for (int o = 0; o < OUT; o++)
                            for (int e = 0; e < IN; e++) v += vo->D[o * R2 + a] * Jd[o * IN + e] * vi->E[e * R1 + c];
                        B[a * R1 + c] = v;
                        worst_j = fmax(worst_j, fabs(P[k][2][((size_t)i * oa + a) * R1 + c] - v) / (1 + fabs(v)));
                    }
                for (int o = 0; o < OUT; o++)
                    for (int e = 0; e < IN; e++) {
                        double v = Jd[o * IN + e];
                        for (int a = 0; a < R2; a++)
                            for (int c = 0; c < R1; c++) v -= vo->D[o * R2 + a] * B[a * R1 + c] * vi->E[e * R1 + c];
                        R += v * v;
                    }
                worst_j = fmax(worst_j, fabs(P[k][2][((size_t)i * oa + R2) * R1] - sqrt(R)) / sqrt(R));
            }
        if (t->verbose)
            printf("  project_both: Jacobian rows against per sample: worst relative difference %.2e\n", worst_j);
        CHECK(t, worst_j < 1e-12);
    }
    /* relative to the f64 projection: float32 of it (the fix) against float32 of the float32 rows'
     * projection (before): the root mean square of |error| / |value| and the worst */
    size_t lens[3] = {nx, ny, nj};
    double ss[2] = {0, 0}, worst[2] = {0, 0};
    size_t count = 0;
    for (int a = 0; a < 3; a++)
        for (size_t i = 0; i < lens[a]; i++) {
            double ref = P[1][a][i];
            if (fabs(ref) < 1e-30) continue;
            double e[2] = {fabs((double)(float)P[0][a][i] - ref) / fabs(ref),
                           fabs((double)(float)P[2][a][i] - ref) / fabs(ref)};
            for (int k = 0; k < 2; k++) ss[k] += e[k] * e[k], worst[k] = fmax(worst[k], e[k]);
            count++;
        }
    double rms[2] = {sqrt(ss[0] / (double)count), sqrt(ss[1] / (double)count)};
    printf("  f32 training on float64 rows, against the f64 projection (%zu values): projected in f64 then rounded: "
           "rms %.2e, worst %.2e; rounded to float32 then projected: rms %.2e, worst %.2e\n",
           count, rms[0], worst[0], rms[1], worst[1]);
    CHECK(t, worst[0] <= 0x1p-24 && rms[0] < rms[1]);
    for (int k = 0; k < 3; k++) free(P[k][0]), free(P[k][1]), free(P[k][2]);
    basis_set_free(&bk), basis_set_free(&b32), basis_set_free(&b64);
    free(x), free(y), free(J), free(xf), free(yf), free(Jf);
}

int main(int argc, char **argv) {
    T t;
    if (t_begin(&t, argc, argv, "runtime_basis")) return 1;
    test_pod_low_rank(&t);
    test_active_subspace(&t);
    test_randomized(&t);
    test_rows_and_cache(&t);
    test_project_blocks(&t);
    test_f32_train(&t);
    return t_end(&t, "runtime_basis");
}
