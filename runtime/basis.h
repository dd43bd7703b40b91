/* basis.h - the values of a spec's bases (its basis section): computed from the training rows,
 * read from .npy files, or loaded from a checkpoint; and the frozen encode/decode layers filled
 * from them.
 *
 * pod(x, rank = r): the top r eigenvectors of the covariance (1/N) sum_i (x_i - mu)(x_i - mu)^T
 * of the first N training rows (N = samples, else all of them), mu their mean (centre = false:
 * mu = 0, the second moment); active_subspace(dq/dm, rank = r): of (1/N) sum_i J_i^T J_i. Both
 * in f64 whatever the training precision, from the training rows only, streamed in blocks of
 * BASIS_BLOCK_ROWS rows read in place (the Dataset's arrays are never copied or written: they
 * may be a read-only mapping). Dimension <= BASIS_DENSE_MAX: the dim x dim matrix is formed
 * (BLAS dsyrk per block; at most 128 MiB at 4096) and LAPACK's dsyevr gives the top eigenpairs. Larger: a randomized range finder (Halko,
 * Martinsson, Tropp 2011) with rank + 10 columns and 2 power iterations, each re-orthonormalised
 * by QR (dgeqrf + dorgqr), then Rayleigh-Ritz (dsyevr on the small projected matrix); working
 * memory: BASIS_BLOCK_ROWS x (dim + rank + 10) and a few dim x (rank + 10) doubles. Its
 * Gaussian test matrix comes from the spec's seed, so the result is deterministic for a seed.
 * Eigenvalues are in decreasing order; the sign of each eigenvector is fixed so that its entry
 * of largest magnitude (the first such, on ties) is positive. E = D for computed bases.
 *
 * Computed bases are cached ($DINO_CACHE_DIR or ~/.cache/dino, basis-<key>.bin), keyed by the
 * basis line, the settings and the bytes of the training rows used (so changing the test rows
 * or the validation rows never changes a basis).
 *
 * Nothing here prints or exits: the report of each basis comes back as text (basis_describe). */
#ifndef DINO_BASIS_H
#define DINO_BASIS_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "model.h"

enum { BASIS_DENSE_MAX = 4096, BASIS_OVERSAMPLE = 10, BASIS_POWER_ITERS = 2, BASIS_BLOCK_ROWS = 256 };

typedef enum {
    BASIS_FROM_NONE,
    BASIS_FROM_DATA,
    BASIS_FROM_CACHE,
    BASIS_FROM_FILES,
    BASIS_FROM_CHECKPOINT
} BasisOrigin;

typedef struct {
    int dim, rank;
    double *D;                       /* [dim, rank] decoder, row-major */
    double *E;                       /* [dim, rank] encoder (== D's values for computed bases) */
    double *shift;                   /* [dim] */
    double *eig;                     /* [rank] eigenvalues, decreasing; NULL when not computed (npy) */
    BasisOrigin origin;              /* BASIS_FROM_NONE: no values yet */
    int randomized;                  /* computed with the randomized range finder */
    int64_t samples;                 /* training rows it was computed from */
    uint64_t key;                    /* cache key (computed bases) */
    double seconds;                  /* time to compute (or read) it */
    double trace;                    /* trace of the matrix whose eigenvectors it holds (computed bases) */
    double orth_err;                 /* ||E^T D - I||_F */
    int orthonormal;                 /* E = D and orth_err <= 1e-8: the exact reduced path may use it */
    double floor_l2[2], floor_h1[2]; /* train, test: the best relative L2 / H1 error through this
                                          basis alone (NaN: not applicable / no data) */
} BasisValues;

typedef struct {
    int n;
    BasisValues *v; /* [n], one per Model.bases entry */
    int dense_max;  /* 0: BASIS_DENSE_MAX; tests lower it to reach the randomized path */
    int no_cache;   /* 1: neither read nor write the cache (tests) */
} BasisSet;

/* Allocates a set for m's bases, all without values. 0, or -1 (out of memory) with err set. */
int basis_set_init(BasisSet *bs, const Model *m, char *err, size_t errlen);
void basis_set_free(BasisSet *bs);
/* Whether every basis that encode or decode uses has values. */
int basis_set_ready(const BasisSet *bs, const Model *m);

/* Gives values to every basis without them: npy files are read; pod and active_subspace are
 * taken from the cache or computed from train's rows (train must hold the Jacobian for an
 * active subspace), then cached. seed: the Gaussian test matrix of the randomized path.
 * Returns 0, or -1 with err set. */
int basis_compute(const Model *m, BasisSet *bs, const Dataset *train, uint64_t seed, char *err, size_t errlen);

/* The floors of each basis with values on the train and test rows (test may be NULL or empty). */
void basis_floors(const Model *m, BasisSet *bs, const Dataset *train, const Dataset *test);

/* One line about basis i: "basis Vq: pod(q) rank 24 of 64 from 1600 rows in 0.02 s; eigenvalues
 * 3.1e+01 .. 2.0e-03, 99.87 % of the trace; ||E^T D - I|| 3e-15; floor rel_l2 1.2e-03 (train)
 * 1.3e-03 (test)". */
void basis_describe(const Model *m, const BasisSet *bs, int i, char *buf, size_t len);

/* Writes the frozen encode/decode layers of P (float or double per f64) from the values. */
void basis_fill_params(const Model *m, const BasisSet *bs, void *P, int f64);

/* The exact reduced path's data (api/reduced.c), for an input basis v (E orthonormal) and d's
 * rows: x [n, rank] = E^T (x_i - shift); y [n, out + aug] = [y_i; 0] (y may be NULL: labels);
 * J [n, out + aug, rank] = J_i E and, when aug, the extra row (||J_i (I - E E^T)||_F, 0, ..., 0),
 * the part of J_i that the basis discards (J may be NULL, or d without Jacobians). In f64, with
 * BLAS, streaming over blocks of BASIS_BLOCK_ROWS rows of x and of J (rows J_i[o, :]): d's arrays
 * are only read (they may be a read-only mapping of the data files) and the working memory
 * besides the results is (dim + rank) x BASIS_BLOCK_ROWS doubles. Returns 0, or -1 when out of
 * memory. */
int basis_project(const BasisValues *v, const Dataset *d, int aug, double *x, double *y, double *J);

/* basis_reduced.c: both sides reduced (api/reduced.c's output-side path; the identity is in
 * basis_reduced.c's header). BASIS_OUT_EXTRA extra output coordinates carry each sample's
 * discarded part so that error and norm are the full space's. */
enum { BASIS_OUT_EXTRA = 2 };
/* The inner model's output shift [rank + BASIS_OUT_EXTRA] = [D^T s; |(I - D D^T) s|; 0] of an
 * orthonormal output basis. Returns 0, or -1 when out of memory. */
int basis_out_shift(const BasisValues *out, double *shift);
/* Rows r0 .. r0 + n of d, for an orthonormal input basis vin and output basis vout: x [n, r1] =
 * E^T (x_i - shift); y [n, r2 + 2] = [D^T q_i; a1; a2] (y may be NULL: labels); J [n, r2 + 2, r1]
 * = [D^T J_i E; (|J_i - D D^T J_i E E^T|_F, 0, ...); 0] (J may be NULL, or d without
 * Jacobians). vin NULL: the input stays full (E = I, r1 = in, x copied). Returns 0, or -1 when
 * out of memory. */
int basis_project_both(const BasisValues *vin, const BasisValues *vout, const Dataset *d, int64_t r0, int64_t n,
                       double *x, double *y, double *J);
/* z [n, rank] = E^T (x_i - shift) for x [n, dim] in f64 (any basis, oblique too). */
void basis_encode_rows(const BasisValues *v, int64_t n, const double *x, double *z);

/* Element i of a float (f64 0) or double (f64 1) array, as a double; f64 2: of a double array,
 * rounded to float (BASIS_READ_F32). */
enum { BASIS_READ_F32 = 2 };
static inline double basis_elem(const void *p, int f64, int64_t i) {
    return f64 == BASIS_READ_F32 ? (double)(float)((const double *)p)[i]
        : f64                    ? ((const double *)p)[i]
                                 : ((const float *)p)[i];
}
/* out[0..n) = elements at .. at + n of p read as basis_elem reads them (one loop per kind, so
 * that it vectorises). */
static inline void basis_elems(const void *p, int f64, int64_t at, int64_t n, double *out) {
    if (f64 == BASIS_READ_F32)
        for (int64_t k = 0; k < n; k++) out[k] = (double)(float)((const double *)p)[at + k];
    else if (f64)
        for (int64_t k = 0; k < n; k++) out[k] = ((const double *)p)[at + k];
    else
        for (int64_t k = 0; k < n; k++) out[k] = ((const float *)p)[at + k];
}
/* How the bases read d's values (basis_elem's f64): as float32 values when d holds float64 kept
 * for float32 training (Dataset.f32_train), so that a basis, its cache key and its floors are
 * those of a float32 load of the same files, bit for bit. The projection reads d->f64: the
 * values as they are. */
static inline int basis_read_as(const Dataset *d) { return d->f64 && d->f32_train ? BASIS_READ_F32 : d->f64; }
/* z [rank] = E^T (x[at .. at + dim) - shift), one GEMV, with row [dim] as scratch: how every
 * projection encodes a sample (so a sample's coordinates do not depend on its neighbours). */
void basis_encode_row(const BasisValues *v, const void *x, int f64, int64_t at, double *row, double *z);

#endif
