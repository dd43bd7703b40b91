/* basis_reduced.c - the data of exact training in reduced coordinates on both sides, and the
 * reduced coordinates of inputs (basis.h: basis_out_shift, basis_project_both, basis_encode_rows;
 * api/reduced.c uses them). All in f64 with BLAS.
 *
 * Output side. With an orthonormal output basis (D^T D = I, E = D, shift s), split each output
 * q = D D^T q + w, w = (I - D D^T) q, and the shift s = D D^T s + p, p = (I - D D^T) s. The
 * network's prediction D h + s = D (h + D^T s) + p; the sample's error and norm are
 *     ||q - D h - s||^2 = ||D^T q - (h + D^T s)||^2 + ||w - p||^2,
 *     ||q||^2            = ||D^T q||^2 + ||w||^2.
 * The two discarded vectors w (per sample) and p (the same for every sample) live in the plane
 * spanned by p and w; in the orthonormal frame (p / |p|, the unit part of w orthogonal to p) they
 * are p = (|p|, 0) and w = (a1, a2) with a1 = <w, p> / |p|, a2 = |w - a1 p / |p||. Distances and
 * norms are those of the full vectors, so two extra coordinates carry both exactly: the data row
 * is y' = [D^T q; a1; a2] and the prediction [h + D^T s; |p|; 0], a constant in its last two
 * entries (the inner model's frozen decode with D' = [I; 0; 0], shift' = [D^T s; |p|; 0]). Then
 * ||y' - pred'||^2 is the full squared error and ||y'||^2 = ||q||^2, which is what a `relative`
 * l2 term divides by. (One extra row holding sqrt(||q||^2 - ||D^T (q - s)||^2) cannot: that
 * difference is negative when the shift points against the sample.) With p = 0: (a1, a2) =
 * (|w|, 0) and the prediction's extra entries are 0.
 *
 * Jacobians: the prediction's Jacobian is D G E^T (G = dh/dz, E the input basis). For each sample
 * J = D (D^T J E) E^T + R with R Frobenius-orthogonal to every D X E^T, so
 * ||J - D G E^T||^2 = ||D^T J E - G||^2 + ||R||^2 and ||J||^2 = ||D^T J E||^2 + ||R||^2: the
 * data rows are [D^T J E; (|R|, 0, ..., 0); 0] and the prediction's extra rows have Jacobian 0
 * (constants). |R| is computed as the norm of J - D (D^T J E) E^T, not as a difference of norms.
 * The Jacobians go BOTH_BLOCK samples at a time: J E and the residual by one GEMM each over the
 * block's rows (the float64 rows read in place), D^T (J E) per sample; with OpenBLAS a sample's
 * values are the same bits as one sample at a time (checked on the Poisson data against c019c7b),
 * and tests/runtime/test_basis.c checks them against a plain per-sample sum. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basis.h"

static double norm(const double *v, int64_t n) {
    double s = 0;
    for (int64_t k = 0; k < n; k++) s += v[k] * v[k];
    return sqrt(s);
}

/* Ds [rank] = D^T s and p [dim] = (I - D D^T) s; returns |p|. */
static double shift_parts(const BasisValues *v, double *Ds, double *p) {
    cblas_dgemv(CblasRowMajor, CblasTrans, v->dim, v->rank, 1.0, v->D, v->rank, v->shift, 1, 0.0, Ds, 1);
    memcpy(p, v->shift, sizeof(double) * (size_t)v->dim);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, v->dim, v->rank, -1.0, v->D, v->rank, Ds, 1, 1.0, p, 1);
    return norm(p, v->dim);
}

int basis_out_shift(const BasisValues *out, double *shift) {
    double *p = malloc(sizeof(double) * (size_t)out->dim);
    if (!p) return -1;
    shift[out->rank] = shift_parts(out, shift, p);
    shift[out->rank + 1] = 0;
    free(p);
    return 0;
}

void basis_encode_rows(const BasisValues *v, int64_t n, const double *x, double *z) {
    double *row = malloc(sizeof(double) * (size_t)v->dim);
    for (int64_t i = 0; i < n; i++) {
        const double *xi = x + i * v->dim;
        if (row) {
            basis_encode_row(v, x, 1, i * v->dim, row, z + i * v->rank);
        } else { /* no scratch: the same sums, one coordinate at a time */
            for (int j = 0; j < v->rank; j++) {
                double s = 0;
                for (int k = 0; k < v->dim; k++) s += v->E[(int64_t)k * v->rank + j] * (xi[k] - v->shift[k]);
                z[i * v->rank + j] = s;
            }
        }
    }
    free(row);
}

enum { BOTH_BLOCK = 8 }; /* samples per GEMM of the Jacobians: [8 out, in] rows at a time */

int basis_project_both(const BasisValues *vin, const BasisValues *vout, const Dataset *d, int64_t r0, int64_t n,
                       double *x, double *y, double *J) {
    int in = d->in, out = d->out, r1 = vin ? vin->rank : in, r2 = vout->rank, oa = r2 + BASIS_OUT_EXTRA;
    size_t big = (size_t)out * (size_t)in, S = BOTH_BLOCK;
    double *Ds = malloc(sizeof(double) * (size_t)r2), *p = malloc(sizeof(double) * (size_t)out);
    double *row = malloc(sizeof(double) * (size_t)in), *w = malloc(sizeof(double) * (size_t)out);
    int jac = J && d->J;
    /* the Jacobians of S samples: Jb [S out, in] (a copy unless d holds doubles), res [S out, in],
     * A = Jb E and DB = D (D^T J E) [S out, r1] */
    double *Jb = jac && !d->f64 ? malloc(sizeof(double) * S * big) : NULL;
    double *res = jac ? malloc(sizeof(double) * S * big) : NULL;
    double *A = jac ? malloc(sizeof(double) * S * (size_t)out * (size_t)r1) : NULL;
    double *DB = jac ? malloc(sizeof(double) * S * (size_t)out * (size_t)r1) : NULL;
    int rc = !Ds || !p || !row || !w || (jac && ((!d->f64 && !Jb) || !res || !A || !DB)) ? -1 : 0;
    double pn = rc ? 0 : shift_parts(vout, Ds, p);
    for (int64_t k = 0; !rc && pn > 0 && k < out; k++) p[k] /= pn; /* the unit vector p / |p| */
    for (int64_t i = r0; !rc && i < r0 + n; i++) {
        int64_t o = i - r0; /* the row in the outputs */
        if (vin) {
            basis_encode_row(vin, d->x, d->f64, i * in, row, x + o * r1); /* E^T (x - s) */
        } else {
            for (int k = 0; k < in; k++) x[o * in + k] = basis_elem(d->x, d->f64, i * in + k); /* the input as it is */
        }
        if (y && d->y) {
            double *yi = y + o * oa;
            for (int k = 0; k < out; k++) w[k] = basis_elem(d->y, d->f64, i * out + k);
            cblas_dgemv(CblasRowMajor, CblasTrans, out, r2, 1.0, vout->D, r2, w, 1, 0.0, yi, 1); /* D^T q */
            cblas_dgemv(CblasRowMajor, CblasNoTrans, out, r2, -1.0, vout->D, r2, yi, 1, 1.0, w,
                        1); /* w = q - D D^T q */
            if (pn > 0) {
                double a1 = cblas_ddot(out, w, 1, p, 1);
                cblas_daxpy(out, -a1, p, 1, w, 1);
                yi[r2] = a1, yi[r2 + 1] = norm(w, out);
            } else {
                yi[r2] = norm(w, out), yi[r2 + 1] = 0;
            }
        }
    }
    for (int64_t i0 = r0; !rc && jac && i0 < r0 + n; i0 += (int64_t)S) {
        int b = (int)(r0 + n - i0 < (int64_t)S ? r0 + n - i0 : (int64_t)S), rows = b * out;
        const double *Jd = d->f64 ? (const double *)d->J + (size_t)i0 * big : Jb;
        if (!d->f64) basis_elems(d->J, 0, i0 * (int64_t)big, (int64_t)((size_t)b * big), Jb);
        if (vin) /* J E, the b samples' rows at once */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, r1, in, 1.0, Jd, in, vin->E, r1, 0.0, A, r1);
        else memcpy(A, Jd, sizeof(double) * (size_t)b * big);
        for (int s = 0; s < b; s++) {
            double *Ji = J + (i0 - r0 + s) * (int64_t)oa * r1, *As = A + (size_t)s * out * r1;
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r2, r1, out, 1.0, vout->D, r2, As, r1, 0.0, Ji,
                        r1); /* D^T J E */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, r1, r2, 1.0, vout->D, r2, Ji, r1, 0.0,
                        DB + (size_t)s * out * r1, r1);
        }
        memcpy(res, Jd, sizeof(double) * (size_t)b * big);
        if (vin) /* R = J - D (D^T J E) E^T */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, in, r1, -1.0, DB, r1, vin->E, r1, 1.0, res, in);
        else /* R = J - D D^T J */ cblas_daxpy((int)((size_t)b * big), -1.0, DB, 1, res, 1);
        for (int s = 0; s < b; s++) {
            double *Ji = J + (i0 - r0 + s) * (int64_t)oa * r1;
            memset(Ji + (int64_t)r2 * r1, 0, sizeof(double) * (size_t)BASIS_OUT_EXTRA * (size_t)r1);
            Ji[(int64_t)r2 * r1] = norm(res + (size_t)s * big, (int64_t)big);
        }
    }
    free(Ds), free(p), free(row), free(w), free(Jb), free(res), free(A), free(DB);
    return rc;
}
