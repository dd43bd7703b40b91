/* basis.c - bases from data, files and the cache; the frozen layers filled from them (basis.h).
 *
 * The dense linear algebra is BLAS (dsyrk, dgemm) and LAPACK (dsyevr, dgeqrf, dorgqr) through
 * their C interfaces; nothing here is a hand-written eigensolver. Every computation is in f64. */
#include "basis.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "fileio.h"
#include "npy.h"
#include "rng.h"
#include "source.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------- the set */

int basis_set_init(BasisSet *bs, const Model *m, char *err, size_t errlen) {
    bs->n = m->n_bases;
    bs->v = calloc((size_t)(m->n_bases ? m->n_bases : 1), sizeof *bs->v);
    if (!bs->v) {
        snprintf(err, errlen, "out of memory for the bases");
        return -1;
    }
    for (int i = 0; i < m->n_bases; i++) {
        bs->v[i].dim = m->bases[i].dim;
        bs->v[i].rank = m->bases[i].rank;
        bs->v[i].floor_l2[0] = bs->v[i].floor_l2[1] = bs->v[i].floor_h1[0] = bs->v[i].floor_h1[1] = NAN;
    }
    return 0;
}

static void values_free(BasisValues *v) {
    free(v->D), free(v->E), free(v->shift), free(v->eig);
    v->D = v->E = v->shift = v->eig = NULL;
    v->origin = BASIS_FROM_NONE;
}

void basis_set_free(BasisSet *bs) {
    for (int i = 0; bs->v && i < bs->n; i++) values_free(&bs->v[i]);
    free(bs->v);
    bs->v = NULL;
    bs->n = 0;
}

int basis_set_ready(const BasisSet *bs, const Model *m) {
    for (int i = 0; i < m->n_bases; i++)
        if ((m->bases[i].used_encode || m->bases[i].used_decode) && (i >= bs->n || bs->v[i].origin == BASIS_FROM_NONE))
            return 0;
    return 1;
}

static int values_alloc(BasisValues *v, int with_eig) {
    size_t dr = (size_t)v->dim * (size_t)v->rank;
    v->D = calloc(dr, sizeof(double));
    v->E = calloc(dr, sizeof(double));
    v->shift = calloc((size_t)v->dim, sizeof(double));
    v->eig = with_eig ? calloc((size_t)v->rank, sizeof(double)) : NULL;
    return v->D && v->E && v->shift && (!with_eig || v->eig) ? 0 : -1;
}

/* ||E^T D - I||_F, and whether the basis is orthonormal with E = D. */
static void check_orthogonality(BasisValues *v) {
    int r = v->rank;
    double *G = malloc(sizeof(double) * (size_t)r * (size_t)r);
    if (!G) {
        v->orth_err = NAN;
        return;
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, r, v->dim, 1.0, v->E, r, v->D, r, 0.0, G, r);
    double s = 0;
    for (int i = 0; i < r; i++)
        for (int j = 0; j < r; j++) {
            double e = G[i * r + j] - (i == j);
            s += e * e;
        }
    free(G);
    v->orth_err = sqrt(s);
    v->orthonormal = memcmp(v->D, v->E, sizeof(double) * (size_t)v->dim * (size_t)r) == 0 && v->orth_err <= 1e-8;
}

/* ---------------------------------------------------------------------------- rows of the data */

/* The rows a basis is computed from: sample rows of x or y (width dim), or for a Jacobian the
 * out rows J_i[o, :] of each sample (width in). */
typedef struct {
    const Dataset *d;
    BasisSource src;
    int64_t samples; /* samples used */
    int width;       /* dim */
    int per_sample;  /* rows per sample */
} Rows;

/* Rows [r0, r0 + n) (in units of rows, not samples) into buf [n, width], minus mu when given. */
static void rows_get(const Rows *R, int64_t r0, int64_t n, const double *mu, double *buf) {
    const Dataset *d = R->d;
    const void *base = R->src == BASIS_OF_INPUT ? d->x : R->src == BASIS_OF_OUTPUT ? d->y : d->J;
    int64_t w = R->width;
    int as = basis_read_as(d);
    basis_elems(base, as, r0 * w, n * w, buf);
    for (int64_t k = 0; mu && k < n * w; k++) buf[k] -= mu[k % w];
}

static int64_t rows_count(const Rows *R) { return R->samples * R->per_sample; }

/* (1/N) sum over rows of (r - mu)(r - mu)^T applied to Q [dim, k] into Y [dim, k]. */
static int gram_apply(const Rows *R, const double *mu, const double *Q, int k, double *Y) {
    int64_t total = rows_count(R), w = R->width;
    double *buf = malloc(sizeof(double) * (size_t)(BASIS_BLOCK_ROWS * w));
    double *T = malloc(sizeof(double) * (size_t)(BASIS_BLOCK_ROWS * k));
    if (!buf || !T) {
        free(buf), free(T);
        return -1;
    }
    memset(Y, 0, sizeof(double) * (size_t)(w * k));
    for (int64_t r0 = 0; r0 < total; r0 += BASIS_BLOCK_ROWS) {
        int b = (int)(total - r0 < BASIS_BLOCK_ROWS ? total - r0 : BASIS_BLOCK_ROWS);
        rows_get(R, r0, b, mu, buf);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, k, (int)w, 1.0, buf, (int)w, Q, k, 0.0, T, k);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)w, k, b, 1.0, buf, (int)w, T, k, 1.0, Y, k);
    }
    double s = 1.0 / (double)R->samples;
    for (int64_t i = 0; i < w * k; i++) Y[i] *= s;
    free(buf), free(T);
    return 0;
}

/* Orthonormalises the columns of Q [n, k] in place (Householder QR). */
static int orthonormalise(double *Q, int n, int k) {
    double *tau = malloc(sizeof(double) * (size_t)k);
    if (!tau) return -1;
    int rc = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, n, k, Q, k, tau);
    if (rc == 0) rc = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, n, k, k, Q, k, tau);
    free(tau);
    return rc ? -1 : 0;
}

/* Top `rank` eigenpairs of the symmetric A [n, n] (upper triangle used; destroyed):
 * eigenvalues decreasing into w [rank], eigenvectors into Z [n, rank]. */
static int top_eigen(double *A, int n, int rank, double *w, double *Z) {
    double *wa = malloc(sizeof(double) * (size_t)n);
    double *za = malloc(sizeof(double) * (size_t)n * (size_t)rank);
    lapack_int *supp = malloc(sizeof(lapack_int) * 2 * (size_t)n);
    lapack_int found = 0;
    int rc = -1;
    if (wa && za && supp)
        rc = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', n, A, n, 0.0, 0.0, n - rank + 1, n, 0.0, &found, wa, za,
                            rank, supp);
    if (rc == 0 && found == rank) {
        for (int j = 0; j < rank; j++) { /* ascending -> decreasing */
            w[j] = wa[rank - 1 - j];
            for (int i = 0; i < n; i++) Z[(size_t)i * rank + j] = za[(size_t)i * rank + (rank - 1 - j)];
        }
    } else {
        rc = -1;
    }
    free(wa), free(za), free(supp);
    return rc;
}

/* The sign rule: each column's entry of largest magnitude (the first, on ties) is positive. */
static void fix_signs(double *Z, int n, int rank) {
    for (int j = 0; j < rank; j++) {
        int best = 0;
        for (int i = 1; i < n; i++)
            if (fabs(Z[(size_t)i * rank + j]) > fabs(Z[(size_t)best * rank + j])) best = i;
        if (Z[(size_t)best * rank + j] < 0)
            for (int i = 0; i < n; i++) Z[(size_t)i * rank + j] = -Z[(size_t)i * rank + j];
    }
}

/* Computes v (dim, rank set) from the rows: mean, trace, eigenpairs. */
static int compute_values(const Basis *b, BasisValues *v, const Rows *R, uint64_t seed, int dense_max, char *err,
                          size_t errlen) {
    int n = v->dim, r = v->rank;
    int64_t total = rows_count(R);
    if (R->samples < 1) {
        snprintf(err, errlen, "basis %s: no training rows to compute it from", b->name);
        return -1;
    }
    if (values_alloc(v, 1)) goto oom;
    double *buf = malloc(sizeof(double) * (size_t)BASIS_BLOCK_ROWS * (size_t)n);
    if (!buf) goto oom;
    /* the mean (pod with centre) */
    if (b->method == BASIS_POD && b->centre) {
        for (int64_t r0 = 0; r0 < total; r0 += BASIS_BLOCK_ROWS) {
            int nb = (int)(total - r0 < BASIS_BLOCK_ROWS ? total - r0 : BASIS_BLOCK_ROWS);
            rows_get(R, r0, nb, NULL, buf);
            for (int k = 0; k < nb; k++)
                for (int i = 0; i < n; i++) v->shift[i] += buf[(size_t)k * n + i];
        }
        for (int i = 0; i < n; i++) v->shift[i] /= (double)R->samples;
    }
    const double *mu = b->method == BASIS_POD && b->centre ? v->shift : NULL;
    v->randomized = n > dense_max;
    int rc = -1;
    if (!v->randomized) {
        double *C = calloc((size_t)n * (size_t)n, sizeof(double));
        if (!C) {
            free(buf);
            goto oom;
        }
        for (int64_t r0 = 0; r0 < total; r0 += BASIS_BLOCK_ROWS) {
            int nb = (int)(total - r0 < BASIS_BLOCK_ROWS ? total - r0 : BASIS_BLOCK_ROWS);
            rows_get(R, r0, nb, mu, buf);
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, n, nb, 1.0, buf, n, 1.0, C, n);
        }
        double s = 1.0 / (double)R->samples;
        for (int64_t i = 0; i < (int64_t)n * n; i++) C[i] *= s;
        v->trace = 0;
        for (int i = 0; i < n; i++) v->trace += C[(size_t)i * n + i];
        rc = top_eigen(C, n, r, v->eig, v->D);
        free(C);
    } else {
        int k = r + BASIS_OVERSAMPLE < n ? r + BASIS_OVERSAMPLE : n;
        double *Q = malloc(sizeof(double) * (size_t)n * (size_t)k), *Y = malloc(sizeof(double) * (size_t)n * (size_t)k);
        double *B = malloc(sizeof(double) * (size_t)k * (size_t)k), *U = malloc(sizeof(double) * (size_t)k * (size_t)r);
        if (!Q || !Y || !B || !U) {
            free(Q), free(Y), free(B), free(U), free(buf);
            goto oom;
        }
        Rng rng;
        rng_seed(&rng, seed ^ 0x4241534953ull); /* "BASIS": a stream of its own */
        for (int64_t i = 0; i < (int64_t)n * k; i++) Y[i] = rng_normal(&rng);
        rc = 0;
        for (int it = 0; rc == 0 && it <= BASIS_POWER_ITERS; it++) {
            memcpy(Q, Y, sizeof(double) * (size_t)n * (size_t)k);
            rc = orthonormalise(Q, n, k);
            if (rc == 0) rc = gram_apply(R, mu, Q, k, Y);
        }
        if (rc == 0) { /* Rayleigh-Ritz: B = Q^T C Q */
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, k, n, 1.0, Q, k, Y, k, 0.0, B, k);
            for (int i = 0; i < k; i++)
                for (int j = i + 1; j < k; j++) B[i * k + j] = B[j * k + i] = 0.5 * (B[i * k + j] + B[j * k + i]);
            rc = top_eigen(B, k, r, v->eig, U);
        }
        if (rc == 0) cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, r, k, 1.0, Q, k, U, r, 0.0, v->D, r);
        /* the trace, by one more pass */
        v->trace = 0;
        for (int64_t r0 = 0; rc == 0 && r0 < total; r0 += BASIS_BLOCK_ROWS) {
            int nb = (int)(total - r0 < BASIS_BLOCK_ROWS ? total - r0 : BASIS_BLOCK_ROWS);
            rows_get(R, r0, nb, mu, buf);
            for (int64_t i = 0; i < (int64_t)nb * n; i++) v->trace += buf[i] * buf[i];
        }
        v->trace /= (double)R->samples;
        free(Q), free(Y), free(B), free(U);
    }
    free(buf);
    if (rc) {
        snprintf(err, errlen, "basis %s: the eigensolver failed (LAPACK)", b->name);
        return -1;
    }
    fix_signs(v->D, n, r);
    memcpy(v->E, v->D, sizeof(double) * (size_t)n * (size_t)r);
    return 0;
oom:
    snprintf(err, errlen, "basis %s: out of memory (dimension %d, rank %d)", b->name, n, r);
    return -1;
}

/* ---------------------------------------------------------------------------- npy files */

static int read_matrix(const char *path, int rows, int cols, double *out, char *err, size_t errlen) {
    NpyArray a;
    if (npy_load(path, &a, err, errlen)) return -1;
    int64_t count = (int64_t)rows * cols, have = 1;
    for (int i = 0; i < a.ndim; i++) have *= a.shape[i];
    int rc = 0;
    if (have != count || (a.dtype != DT_F32 && a.dtype != DT_F64)) {
        snprintf(err, errlen, "%s: expected %d x %d float32 or float64 values", path, rows, cols);
        rc = -1;
    }
    for (int64_t i = 0; rc == 0 && i < count; i++) {
        out[i] = basis_elem(a.data, a.dtype == DT_F64, i);
        if (!isfinite(out[i])) {
            snprintf(err, errlen, "%s: element %lld is not finite", path, (long long)i);
            rc = -1;
        }
    }
    npy_free(&a);
    return rc;
}

static int read_files(const Basis *b, BasisValues *v, char *err, size_t errlen) {
    if (values_alloc(v, 0)) {
        snprintf(err, errlen, "basis %s: out of memory", b->name);
        return -1;
    }
    if (read_matrix(b->decoder, v->dim, v->rank, v->D, err, errlen)) return -1;
    if (b->encoder && read_matrix(b->encoder, v->dim, v->rank, v->E, err, errlen)) return -1;
    if (!b->encoder) memcpy(v->E, v->D, sizeof(double) * (size_t)v->dim * (size_t)v->rank);
    if (b->shift && read_matrix(b->shift, 1, v->dim, v->shift, err, errlen)) return -1;
    return 0;
}

/* ---------------------------------------------------------------------------- the cache */

/* The key: the basis line, its settings, the precision and the bytes of the rows used. */
static uint64_t cache_key(const Basis *b, const Rows *R, uint64_t seed, int randomized) {
    uint64_t h = hash_bytes("dino-basis-1", 12, HASH_START);
    h = hash_bytes(b->text, strlen(b->text), h);
    const Dataset *d = R->d;
    int as = basis_read_as(d);
    int64_t nums[8] = {b->method, b->source,  b->dim,  b->rank,
                       b->centre, R->samples, as == 1, randomized ? (int64_t)seed : 0};
    h = hash_bytes(nums, sizeof nums, h);
    const void *base = R->src == BASIS_OF_INPUT ? d->x : R->src == BASIS_OF_OUTPUT ? d->y : d->J;
    size_t count = (size_t)rows_count(R) * (size_t)R->width;
    if (as != BASIS_READ_F32) return hash_bytes(base, (d->f64 ? sizeof(double) : sizeof(float)) * count, h);
    float block[4096]; /* the bytes of the float32 values (the hash is bytewise: blocks chain) */
    for (size_t k0 = 0; k0 < count; k0 += 4096) {
        size_t e = count - k0 < 4096 ? count - k0 : 4096;
        for (size_t k = 0; k < e; k++) block[k] = (float)((const double *)base)[k0 + k];
        h = hash_bytes(block, sizeof(float) * e, h);
    }
    return h;
}

static int cache_path(uint64_t key, char *path, size_t len) {
    char dir[4096], err[256];
    if (cache_dir(dir, sizeof dir, err, sizeof err)) return -1;
    snprintf(path, len, "%s/basis-%016llx.bin", dir, (unsigned long long)key);
    return 0;
}

/* Stored: D [dim, rank], shift [dim], eig [rank], trace. */
static size_t cache_bytes(const BasisValues *v) {
    return sizeof(double) * ((size_t)v->dim * (size_t)v->rank + (size_t)v->dim + (size_t)v->rank + 1);
}

static int cache_read(BasisValues *v, uint64_t key) {
    char path[4200], why[256];
    size_t len;
    if (cache_path(key, path, sizeof path) || cache_entry_check(path, key, &len, why, sizeof why) != 0 ||
        len != cache_bytes(v))
        return -1;
    FileMap fm;
    char err[256];
    if (fio_map(path, &fm, err, sizeof err)) return -1;
    if (fm.len < len || values_alloc(v, 1)) {
        fio_unmap(&fm);
        return -1;
    }
    const double *p = (const double *)fm.data; /* the entry's content starts the file */
    size_t dr = (size_t)v->dim * (size_t)v->rank;
    double tmp;
    memcpy(v->D, p, sizeof(double) * dr);
    memcpy(v->shift, (const char *)p + sizeof(double) * dr, sizeof(double) * (size_t)v->dim);
    memcpy(v->eig, (const char *)p + sizeof(double) * (dr + (size_t)v->dim), sizeof(double) * (size_t)v->rank);
    memcpy(&tmp, (const char *)p + sizeof(double) * (dr + (size_t)v->dim + (size_t)v->rank), sizeof tmp);
    v->trace = tmp;
    memcpy(v->E, v->D, sizeof(double) * dr);
    fio_unmap(&fm);
    return 0;
}

static void cache_write(const BasisValues *v, uint64_t key) {
    char path[4200], err[256];
    size_t len = cache_bytes(v), dr = (size_t)v->dim * (size_t)v->rank;
    char *buf = malloc(len);
    if (!buf || cache_path(key, path, sizeof path)) {
        free(buf);
        return;
    }
    memcpy(buf, v->D, sizeof(double) * dr);
    memcpy(buf + sizeof(double) * dr, v->shift, sizeof(double) * (size_t)v->dim);
    memcpy(buf + sizeof(double) * (dr + (size_t)v->dim), v->eig, sizeof(double) * (size_t)v->rank);
    memcpy(buf + sizeof(double) * (dr + (size_t)v->dim + (size_t)v->rank), &v->trace, sizeof(double));
    cache_entry_write(path, buf, len, key, err, sizeof err); /* a cache that can't be written is no error */
    free(buf);
}

/* ---------------------------------------------------------------------------- computing */

int basis_compute(const Model *m, BasisSet *bs, const Dataset *train, uint64_t seed, char *err, size_t errlen) {
    for (int i = 0; i < m->n_bases; i++) {
        const Basis *b = &m->bases[i];
        BasisValues *v = &bs->v[i];
        if (v->origin == BASIS_FROM_CHECKPOINT) check_orthogonality(v); /* as saved: is it orthonormal? */
        if (v->origin != BASIS_FROM_NONE) continue;
        double t0 = now();
        if (b->method == BASIS_NPY) {
            if (read_files(b, v, err, errlen)) {
                values_free(v);
                return -1;
            }
            v->origin = BASIS_FROM_FILES;
        } else {
            Rows R = {.d = train,
                      .src = b->source,
                      .width = b->dim,
                      .per_sample = b->source == BASIS_OF_JACOBIAN ? m->out_dim : 1};
            const void *base = R.src == BASIS_OF_INPUT ? train->x : R.src == BASIS_OF_OUTPUT ? train->y : train->J;
            if (!base) {
                snprintf(err, errlen, "basis %s: the training data have no %s", b->name,
                         R.src == BASIS_OF_JACOBIAN ? "Jacobians (J_data.npy or the data block's dq/dm)" : "values");
                return -1;
            }
            R.samples = b->samples > 0 && b->samples < train->n ? b->samples : train->n;
            v->samples = R.samples;
            int dense_max = bs->dense_max > 0 ? bs->dense_max : BASIS_DENSE_MAX;
            v->randomized = b->dim > dense_max;
            v->key = cache_key(b, &R, seed, v->randomized);
            if (!bs->no_cache && cache_read(v, v->key) == 0) {
                v->origin = BASIS_FROM_CACHE;
            } else {
                values_free(v);
                if (compute_values(b, v, &R, seed, dense_max, err, errlen)) {
                    values_free(v);
                    return -1;
                }
                v->origin = BASIS_FROM_DATA;
                if (!bs->no_cache) cache_write(v, v->key);
            }
        }
        check_orthogonality(v);
        v->seconds = now() - t0;
    }
    return 0;
}

/* ---------------------------------------------------------------------------- floors */

/* Mean over d's rows of ||x - x_hat||^2 / ||x||^2 for a basis of the input or output, where
 * x_hat = D E^T (x - shift) + shift; and of ||J - J_hat||_F^2 / ||J||_F^2 where J_hat = D E^T J
 * (output basis) or J E D^T (input basis). The square roots, as the metrics rel_l2, rel_h1. */
static void floors_on(const Model *m, const Basis *b, BasisValues *v, const Dataset *d, int which) {
    if (!d || d->n == 0) return;
    int n = v->dim, r = v->rank;
    int out = b->source == BASIS_OF_OUTPUT;
    int vec = (b->source == BASIS_OF_OUTPUT && d->y) || (b->source == BASIS_OF_INPUT && d->x);
    int jac = d->J && (b->source == BASIS_OF_OUTPUT || b->source == BASIS_OF_INPUT || b->source == BASIS_OF_JACOBIAN);
    if (b->source == BASIS_OF_FILES) { /* npy: it sits where encode or decode use it */
        out = b->used_decode && n == m->out_dim;
        int in = b->used_encode && n == m->in_dim;
        if (!out && !in) return;
        vec = out ? d->y != NULL : d->x != NULL;
        jac = d->J != NULL;
    }
    int rows_in = m->in_dim, rows_out = m->out_dim;
    double *x = malloc(sizeof(double) * (size_t)n), *z = malloc(sizeof(double) * (size_t)r);
    double *J = jac ? malloc(sizeof(double) * (size_t)rows_out * (size_t)rows_in) : NULL;
    double *T = jac ? malloc(sizeof(double) * (size_t)rows_out * (size_t)rows_in) : NULL;
    double *Z = jac ? malloc(sizeof(double) * (size_t)(out ? r * rows_in : rows_out * r)) : NULL;
    if (!x || !z || (jac && (!J || !T || !Z))) goto done;
    double s2 = 0, h2 = 0;
    for (int64_t i = 0; i < d->n; i++) {
        if (vec) {
            const void *src = out ? d->y : d->x;
            double e = 0, q = 0;
            basis_encode_row(v, src, basis_read_as(d), i * n, x, z); /* x = sample - shift, z = E^T x */
            for (int k = 0; k < n; k++) {
                double full = x[k] + v->shift[k], hat = v->shift[k];
                for (int j = 0; j < r; j++) hat += v->D[(size_t)k * r + j] * z[j];
                e += (full - hat) * (full - hat);
                q += full * full;
            }
            s2 += e / (q > 0 ? q : 1e-300);
        }
        if (jac) {
            int64_t sz = (int64_t)rows_out * rows_in;
            basis_elems(d->J, basis_read_as(d), i * sz, sz, J);
            if (out) { /* T = D (E^T J) */
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, rows_in, rows_out, 1.0, v->E, r, J, rows_in,
                            0.0, Z, rows_in);
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows_out, rows_in, r, 1.0, v->D, r, Z, rows_in,
                            0.0, T, rows_in);
            } else { /* T = (J E) D^T */
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows_out, r, rows_in, 1.0, J, rows_in, v->E, r,
                            0.0, Z, r);
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows_out, rows_in, r, 1.0, Z, r, v->D, r, 0.0, T,
                            rows_in);
            }
            double e = 0, q = 0;
            for (int64_t k = 0; k < sz; k++) e += (J[k] - T[k]) * (J[k] - T[k]), q += J[k] * J[k];
            h2 += e / (q > 0 ? q : 1e-300);
        }
    }
    if (vec) v->floor_l2[which] = sqrt(s2 / (double)d->n);
    if (jac) v->floor_h1[which] = sqrt(h2 / (double)d->n);
done:
    free(x), free(z), free(J), free(T), free(Z);
}

void basis_floors(const Model *m, BasisSet *bs, const Dataset *train, const Dataset *test) {
    if (m->classifier) return;
    for (int i = 0; i < m->n_bases; i++) {
        if (bs->v[i].origin == BASIS_FROM_NONE) continue;
        floors_on(m, &m->bases[i], &bs->v[i], train, 0);
        floors_on(m, &m->bases[i], &bs->v[i], test, 1);
    }
}

/* ---------------------------------------------------------------------------- report, layers */

void basis_describe(const Model *m, const BasisSet *bs, int i, char *buf, size_t len) {
    const Basis *b = &m->bases[i];
    const BasisValues *v = &bs->v[i];
    static const char *const origin[] = {"no values", "computed", "from the cache", "read from files",
                                         "from the checkpoint"};
    size_t n = 0;
#define ADD(...) (n += n < len ? (size_t)snprintf(buf + n, len - n, __VA_ARGS__) : 0)
    ADD("basis %s: %s", b->name, basis_method_names[b->method]);
    if (b->source_name) ADD("(%s)", b->source_name);
    ADD(" rank %d of %d, %s", v->rank, v->dim, origin[v->origin]);
    if (v->samples) ADD(" (%lld training rows)", (long long)v->samples);
    if (v->randomized) ADD(" (randomized)");
    ADD(" in %.2f s", v->seconds);
    if (v->eig) {
        double kept = 0;
        for (int j = 0; j < v->rank; j++) kept += v->eig[j];
        ADD("; eigenvalues %.3e .. %.3e", v->eig[0], v->eig[v->rank - 1]);
        if (v->trace > 0) ADD(", %.2f %% of the trace", 100 * kept / v->trace);
    }
    ADD("; ||E^T D - I|| %.1e", v->orth_err);
    if (!isnan(v->floor_l2[0])) ADD("; floor rel_l2 %.3e (train) %.3e (test)", v->floor_l2[0], v->floor_l2[1]);
    if (!isnan(v->floor_h1[0])) ADD("; floor rel_h1 %.3e (train) %.3e (test)", v->floor_h1[0], v->floor_h1[1]);
#undef ADD
}

void basis_fill_params(const Model *m, const BasisSet *bs, void *P, int f64) {
    for (int i = 0; i < m->n_bases; i++) {
        const Basis *b = &m->bases[i];
        const BasisValues *v = &bs->v[i];
        if (v->origin == BASIS_FROM_NONE) continue;
        int n = v->dim, r = v->rank;
#define PUT(off, val) (f64 ? (void)(((double *)P)[off] = (val)) : (void)(((float *)P)[off] = (float)(val)))
        if (b->enc_param >= 0) { /* W = E^T [rank, dim], bias = -E^T shift */
            int64_t w = m->params[b->enc_param].offset, bo = m->params[b->enc_param + 1].offset;
            for (int j = 0; j < r; j++) {
                double s = 0;
                for (int k = 0; k < n; k++) {
                    PUT(w + (int64_t)j * n + k, v->E[(size_t)k * r + j]);
                    s += v->E[(size_t)k * r + j] * v->shift[k];
                }
                PUT(bo + j, -s);
            }
        }
        if (b->dec_param >= 0) { /* W = D [dim, rank], bias = shift */
            int64_t w = m->params[b->dec_param].offset, bo = m->params[b->dec_param + 1].offset;
            for (int64_t k = 0; k < (int64_t)n * r; k++) PUT(w + k, v->D[k]);
            for (int k = 0; k < n; k++) PUT(bo + k, v->shift[k]);
        }
#undef PUT
    }
}

/* ---------------------------------------------------------------------------- projection */

/* Streams over d's rows in blocks of BASIS_BLOCK_ROWS rows (of x: samples; of J: the out rows
 * J_i[o, :] of width in, so a block may end inside a sample): each block is converted to f64 in
 * buf [block, in], multiplied by E in one GEMM into T [block, rank], and for J its residual
 * buf - T E^T (the discarded part) is summed row by row into its sample's extra row, in the
 * order of the elements (the sum of a sample's squares does not depend on where the blocks
 * fall). d's arrays are only read: they may be a read-only mapping. Working memory besides the
 * results: (in + rank) x BASIS_BLOCK_ROWS doubles. The results are bit for bit those of the
 * former one-sample-at-a-time computation (checked with OpenBLAS: J E and the discarded part by
 * GEMM over a block give the same bits as per sample; x_r keeps its per-row GEMV, as GEMM over
 * a block would change its last bits). */
void basis_encode_row(const BasisValues *v, const void *x, int f64, int64_t at, double *row, double *z) {
    basis_elems(x, f64, at, v->dim, row);
    for (int k = 0; k < v->dim; k++) row[k] -= v->shift[k];
    cblas_dgemv(CblasRowMajor, CblasTrans, v->dim, v->rank, 1.0, v->E, v->rank, row, 1, 0.0, z, 1);
}

int basis_project(const BasisValues *v, const Dataset *d, int aug, double *x, double *y, double *J) {
    int r = v->rank, in = d->in, out = d->out, oa = out + aug;
    double *buf = malloc(sizeof(double) * (size_t)BASIS_BLOCK_ROWS * (size_t)in);
    double *T = malloc(sizeof(double) * (size_t)BASIS_BLOCK_ROWS * (size_t)r);
    if (!buf || !T) {
        free(buf), free(T);
        return -1;
    }
    for (int64_t i0 = 0; i0 < d->n; i0 += BASIS_BLOCK_ROWS) { /* x_r = (x - shift) E, y = [y; 0] */
        int b = (int)(d->n - i0 < BASIS_BLOCK_ROWS ? d->n - i0 : BASIS_BLOCK_ROWS);
        for (int k = 0; k < b; k++) /* per row (GEMV): the same bits as one sample at a time */
            basis_encode_row(v, d->x, d->f64, (i0 + k) * in, buf, x + (i0 + k) * r);
        for (int64_t i = i0; y && i < i0 + b; i++)
            for (int o = 0; o < oa; o++) y[i * oa + o] = o < out ? basis_elem(d->y, d->f64, i * out + o) : 0;
    }
    if (J && d->J) {
        int64_t rows = d->n * out;
        for (int64_t i = 0; aug && i < d->n; i++) /* the extra rows: (sum of squares, 0, ..., 0) */
            memset(J + (i * oa + out) * r, 0, sizeof(double) * (size_t)r);
        for (int64_t r0 = 0; r0 < rows; r0 += BASIS_BLOCK_ROWS) {
            int b = (int)(rows - r0 < BASIS_BLOCK_ROWS ? rows - r0 : BASIS_BLOCK_ROWS);
            basis_elems(d->J, d->f64, r0 * in, (int64_t)b * in, buf);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, r, in, 1.0, buf, in, v->E, r, 0.0, T,
                        r);               /* J E */
            for (int k = 0; k < b; k++) { /* row r0 + k is J_i[o, :] */
                int64_t i = (r0 + k) / out, o = (r0 + k) % out;
                memcpy(J + (i * oa + o) * r, T + (size_t)k * r, sizeof(double) * (size_t)r);
            }
            if (!aug) continue;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, in, r, -1.0, T, r, v->E, r, 1.0, buf,
                        in); /* J - J E E^T */
            for (int k = 0; k < b; k++) {
                double *acc = J + (((r0 + k) / out) * oa + out) * r;
                for (int c = 0; c < in; c++) *acc += buf[(size_t)k * in + c] * buf[(size_t)k * in + c];
            }
        }
        for (int64_t i = 0; aug && i < d->n; i++) J[(i * oa + out) * r] = sqrt(J[(i * oa + out) * r]);
    }
    free(buf), free(T);
    return 0;
}
