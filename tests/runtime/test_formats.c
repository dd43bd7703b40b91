/* test_formats.c - ctest "runtime_formats": the runtime's file-format layer (npy.c,
 * safetensors.c, idx.c) on files written here, on hostile files built byte by byte, and on
 * the shared reference files and MNIST when DINO_SHARED_DIR has them (else a SKIP: line).
 * This file holds main and the reference-file checks; the per-format tests are in
 * test_npy.c, test_json.c, test_safetensors.c and test_idx.c, the harness is tests/harness.h.
 * Usage: test_formats [-v]   (-v prints every expected error message) */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npy.h"
#include "safetensors.h"
#include "harness.h"
#include "test_formats.h"

/* ------------------------------------------------------------------------ reference files */

static const struct {
    const char *name;
    int ndim;
    int64_t shape[2];
} ref_params[] = {
    {"h1.weight", 2, {16, 6}}, {"h1.bias", 1, {16}},     {"h2.weight", 2, {16, 16}},
    {"h2.bias", 1, {16}},      {"q.weight", 2, {4, 16}}, {"q.bias", 1, {4}},
};

static double f64_at(const void *data, size_t i) {
    double v;
    memcpy(&v, (const unsigned char *)data + 8 * i, 8);
    return v;
}

/* Load a reference checkpoint, check the parameter table, and re-save it byte for byte. */
static void check_ref_params(T *t, const char *path, int resave) {
    char err[512];
    Safetensors s;
    if (!CHECK_OK(t, st_load(path, &s, err, sizeof err), err)) return;
    CHECK(t, s.n == 6 && s.n_meta == 0);
    for (int i = 0; i < 6 && i < s.n; i++) {
        const StTensor *x = &s.tensors[i];
        CHECK(t, strcmp(x->name, ref_params[i].name) == 0); /* definition order */
        CHECK(t, x->dtype == DT_F64 && x->ndim == ref_params[i].ndim);
        for (int k = 0; k < x->ndim; k++) CHECK(t, x->shape[k] == ref_params[i].shape[k]);
        CHECK(t, st_find(&s, ref_params[i].name) == x);
    }
    if (!resave) {
        st_free(&s);
        return;
    }
    /* Values as Python's struct module reads them. */
    const StTensor *w = st_find(&s, "h1.weight"), *b = st_find(&s, "q.bias");
    CHECK(t, w && f64_at(w->data, 0) == -0.8488995009418249);
    CHECK(t, w && f64_at(w->data, 1) == -0.13714112342038215);
    CHECK(t, b && f64_at(b->data, 0) == -0.08646363125439248);
    StWriteTensor wt[6];
    for (int i = 0; i < s.n && i < 6; i++) {
        wt[i] = (StWriteTensor){s.tensors[i].name, s.tensors[i].dtype, s.tensors[i].ndim, s.tensors[i].shape,
                                s.tensors[i].data};
    }
    const char *out = t_path(t, "params_resaved.safetensors");
    CHECK_OK(t, st_save(out, wt, s.n, NULL, NULL, 0, err, sizeof err), err);
    size_t n1, n2;
    unsigned char *a = t_read_file(path, &n1), *c = t_read_file(out, &n2);
    CHECK(t, a && c && n1 == n2 && memcmp(a, c, n1) == 0); /* byte-identical */
    free(a);
    free(c);
    st_free(&s);
}

/* Load a reference .npy, check dtype and shape, and re-save it byte for byte. */
static void check_ref_npy(T *t, const char *path, int ndim, const int64_t *shape, double first) {
    char err[512];
    NpyArray a;
    if (!CHECK_OK(t, npy_load(path, &a, err, sizeof err), err)) return;
    CHECK(t, a.dtype == DT_F64 && a.ndim == ndim);
    for (int k = 0; k < ndim && k < a.ndim; k++) CHECK(t, a.shape[k] == shape[k]);
    CHECK(t, a.nbytes >= 8 && f64_at(a.data, 0) == first);
    CHECK(t, npy_check_finite(&a, NULL) == 1);
    const char *out = t_path(t, "resaved.npy");
    CHECK_OK(t, npy_save(out, a.dtype, a.ndim, a.shape, a.data, err, sizeof err), err);
    size_t n1, n2;
    unsigned char *x = t_read_file(path, &n1), *y = t_read_file(out, &n2);
    CHECK(t, x && y && n1 == n2 && memcmp(x, y, n1) == 0); /* as NumPy writes it */
    free(x);
    free(y);
    npy_free(&a);
}

static void test_reference(T *t) {
    char dir[600], p[700];
    snprintf(dir, sizeof dir, "%s/reference/dino_small", t->shared);
    if (!t_file_exists(dir)) {
        char what[700];
        snprintf(what, sizeof what, "reference files (%s not found)", dir);
        t_skip(t, what);
        return;
    }
    snprintf(p, sizeof p, "%s/params.safetensors", dir);
    check_ref_params(t, p, 1);
    const char *others[] = {"after_sgd", "after_adam3", "grads"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/expected/%s.safetensors", dir, others[i]);
        if (t_file_exists(p)) check_ref_params(t, p, 0);
    }
    snprintf(p, sizeof p, "%s/expected/q.npy", dir);
    check_ref_npy(t, p, 2, (const int64_t[]){10, 4}, 0.11292659529565517);
    snprintf(p, sizeof p, "%s/expected/J.npy", dir);
    check_ref_npy(t, p, 3, (const int64_t[]){10, 4, 6}, 0.07532474319333937);
    snprintf(p, sizeof p, "%s/expected/loss.npy", dir);
    check_ref_npy(t, p, 0, NULL, 16.95471633401124);
    snprintf(p, sizeof p, "%s/m_data.npy", dir);
    NpyArray m;
    char err[512];
    if (CHECK_OK(t, npy_load(p, &m, err, sizeof err), err)) {
        CHECK(t, m.dtype == DT_F64 && m.ndim == 2 && m.shape[0] == 10 && m.shape[1] == 6);
        npy_free(&m);
    }
}

/* ------------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    T t;
    if (t_begin(&t, argc, argv, "formats")) return 2;
    test_npy(&t);
    test_json(&t);
    test_safetensors(&t);
    test_idx(&t);
    test_reference(&t);
    return t_end(&t, "runtime_formats");
}
