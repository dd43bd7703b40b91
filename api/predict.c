/* predict.c - dino.h's predictions: outputs, Jacobians, and the products J v and J^T w.
 *
 * The products are computed from the full Jacobian for now (in chunks of rows), so they cost
 * what the Jacobian costs; a generated forward (J v) and reverse (J^T w) pass would not. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

enum { CHUNK = 256 }; /* rows per Jacobian chunk in dino_jvp and dino_vjp */

/* After a prediction of n rows with counts[i] rows whose dopri5 solve of ODE block i stopped
 * short of t1 (NULL: none): md->unfinished and its message (dino_predict_unfinished). */
static void note_unfinished(dino_model *md, const int64_t *counts, long long n) {
    const Model *m = md->t.m;
    md->unfinished = 0;
    md->unfinished_msg[0] = 0;
    for (int i = 0; counts && i < m->n_odes; i++) {
        if (counts[i] == 0) continue;
        const OdeBlock *o = &m->odes[i];
        if (md->unfinished == 0)
            snprintf(md->unfinished_msg, sizeof md->unfinished_msg,
                     "%s:%d: dopri5 did not reach t = %g within max_steps %d for %lld of the %lld rows (their outputs "
                     "are wrong); raise max_steps or loosen rtol/atol",
                     m->path, o->solver.loc.line, o->t1, o->solver.max_steps, (long long)counts[i], n);
        if (counts[i] > md->unfinished) md->unfinished = counts[i];
    }
}

long long dino_predict_unfinished(const dino_model *md, const char **message) {
    if (message) *message = md->unfinished_msg;
    return md->unfinished;
}

/* A buffer of `bytes` for dino_predict's conversions: the model's, kept between calls up to
 * CONV_KEEP (a single sample's prediction paid more for malloc and free than for its forward
 * pass), else a fresh one that *fresh says to free. NULL: out of memory. */
enum { CONV_KEEP = 1 << 20 };
static void *conversion_buffer(dino_model *md, size_t bytes, int *fresh) {
    *fresh = 0;
    if (bytes <= md->conv_bytes) return md->conv;
    void *p = malloc(bytes ? bytes : 1);
    if (!p || bytes > CONV_KEEP) {
        *fresh = p != NULL;
        return p;
    }
    free(md->conv);
    md->conv = p;
    md->conv_bytes = bytes;
    return p;
}

dino_status api_finite_input(const void *x, int f64, long long n, int64_t in) {
    for (int64_t i = 0; i < n * in; i++)
        if (!isfinite(f64 ? ((const double *)x)[i] : ((const float *)x)[i]))
            return api_fail(DINO_EUSER, 0, "the input contains NaN or Inf at row %lld, column %lld",
                            (long long)(i / in), (long long)(i % in));
    return DINO_OK;
}

/* dino_predict on arrays of double (f64 1) or float (f64 0). */
static dino_status predict(dino_model *md, long long n, const void *x, void *y, void *J, int f64) {
    Trainer *t = &md->t;
    const Model *m = t->m;
    md->unfinished = 0;
    md->unfinished_msg[0] = 0;
    if (n < 0 || (n > 0 && (!x || !y))) return api_fail(DINO_EUSER, 0, "dino_predict needs n >= 0, x and y");
    if (J && m->classifier) return api_fail(DINO_EUSER, 0, "the classifier %s has no Jacobian", m->name);
    if (n == 0) return DINO_OK;
    int64_t in = m->in_dim, out = m->out_dim;
    dino_status st = api_finite_input(x, f64, n, in);
    if (st) return st;
    char err[1024];
    int rc;
    if (t->f64 == f64) { /* the model's own precision: no copies */
        rc = predict_rows(t, x, n, y, J, err, sizeof err);
        if (!rc) note_unfinished(md, t->backend->unfinished, n);
        return rc ? api_fail(rc, 0, "%s", err) : DINO_OK;
    }
    /* the model's precision in one buffer: x [n, in], y [n, out], J [n, out, in] */
    size_t es = t->f64 ? sizeof(double) : sizeof(float), nx = (size_t)(n * in), ny = (size_t)(n * out);
    size_t nj = J ? (size_t)(n * out * in) : 0;
    int fresh;
    char *buf = conversion_buffer(md, es * (nx + ny + nj), &fresh);
    if (!buf) return api_fail(DINO_EUSER, 0, "out of memory predicting %lld rows", n);
    void *xm = buf, *ym = buf + es * nx, *Jm = J ? buf + es * (nx + ny) : NULL;
    if (t->f64)
        for (size_t i = 0; i < nx; i++) ((double *)xm)[i] = ((const float *)x)[i];
    else
        for (size_t i = 0; i < nx; i++) ((float *)xm)[i] = (float)((const double *)x)[i];
    rc = predict_rows(t, xm, n, ym, Jm, err, sizeof err);
    if (!rc) {
        note_unfinished(md, t->backend->unfinished, n);
        if (t->f64) { /* to float, rounded once */
            for (size_t i = 0; i < ny; i++) ((float *)y)[i] = (float)((const double *)ym)[i];
            for (size_t i = 0; i < nj; i++) ((float *)J)[i] = (float)((const double *)Jm)[i];
        } else {
            for (size_t i = 0; i < ny; i++) ((double *)y)[i] = ((const float *)ym)[i];
            for (size_t i = 0; i < nj; i++) ((double *)J)[i] = ((const float *)Jm)[i];
        }
    }
    if (fresh) free(buf);
    return rc ? api_fail(rc, 0, "%s", err) : DINO_OK;
}

dino_status dino_predict(dino_model *md, long long n, const double *x, double *y, double *J) {
    return predict(md, n, x, y, J, 1);
}

dino_status dino_predict_f32(dino_model *md, long long n, const float *x, float *y, float *J) {
    return predict(md, n, x, y, J, 0);
}

/* J v (transpose 0: v [n, in] -> r [n, out]) or J^T w (transpose 1: w [n, out] -> r [n, in]). */
static dino_status product(dino_model *md, long long n, const double *x, const double *v, double *y, double *r,
                           int transpose) {
    const Model *m = md->t.m;
    if (m->classifier) return api_fail(DINO_EUSER, 0, "the classifier %s has no Jacobian", m->name);
    if (n < 0 || (n > 0 && (!x || !v || !r)))
        return api_fail(DINO_EUSER, 0, "Jacobian products need n >= 0, x, the vectors and the result");
    int64_t in = m->in_dim, out = m->out_dim, c = n < CHUNK ? n : CHUNK;
    double *yb = malloc(sizeof(double) * (size_t)(c * out + 1)),
           *Jb = malloc(sizeof(double) * (size_t)(c * out * in + 1));
    dino_status st = yb && Jb ? DINO_OK : api_fail(DINO_EUSER, 0, "out of memory for a Jacobian chunk");
    const int64_t *u = md->t.backend->unfinished; /* per ODE block, of each dino_predict */
    int64_t *counts = u ? calloc((size_t)m->n_odes, sizeof(int64_t)) : NULL;
    if (st == DINO_OK && u && !counts) st = api_fail(DINO_EUSER, 0, "out of memory");
    for (int64_t i0 = 0; st == DINO_OK && i0 < n; i0 += c) {
        int64_t b = n - i0 < c ? n - i0 : c;
        st = dino_predict(md, b, x + i0 * in, yb, Jb);
        if (st) break;
        for (int k = 0; counts && k < m->n_odes; k++) counts[k] += u[k];
        if (y) memcpy(y + i0 * out, yb, sizeof(double) * (size_t)(b * out));
        for (int64_t s = 0; s < b; s++) {
            const double *Js = Jb + s * out * in;
            if (!transpose) {
                const double *vs = v + (i0 + s) * in;
                double *rs = r + (i0 + s) * out;
                for (int64_t o = 0; o < out; o++) {
                    double acc = 0;
                    for (int64_t k = 0; k < in; k++) acc += Js[o * in + k] * vs[k];
                    rs[o] = acc;
                }
            } else {
                const double *ws = v + (i0 + s) * out;
                double *rs = r + (i0 + s) * in;
                for (int64_t k = 0; k < in; k++) rs[k] = 0;
                for (int64_t o = 0; o < out; o++)
                    for (int64_t k = 0; k < in; k++) rs[k] += Js[o * in + k] * ws[o];
            }
        }
    }
    free(yb), free(Jb);
    note_unfinished(md, counts, n); /* over all the chunks */
    free(counts);
    return st;
}

dino_status dino_jvp(dino_model *md, long long n, const double *x, const double *v, double *y, double *Jv) {
    return product(md, n, x, v, y, Jv, 0);
}

dino_status dino_vjp(dino_model *md, long long n, const double *x, const double *w, double *y, double *JTw) {
    return product(md, n, x, w, y, JTw, 1);
}
