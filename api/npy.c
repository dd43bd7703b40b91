/* npy.c - dino.h's .npy files: read into doubles, write doubles as float32 or float64. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "npy.h"

dino_status dino_npy_read(const char *path, dino_npy *out) {
    memset(out, 0, sizeof *out);
    char err[1024];
    NpyArray a;
    if (npy_load(path, &a, err, sizeof err)) return api_fail(DINO_EUSER, 0, "%s", err);
    int64_t n = 1;
    for (int i = 0; i < a.ndim; i++) n *= a.shape[i];
    double *d = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!d) {
        npy_free(&a);
        return api_fail(DINO_EUSER, 0, "%s: out of memory reading %lld values", path, (long long)n);
    }
    for (int64_t i = 0; i < n; i++) {
        switch (a.dtype) {
        case DT_F32: d[i] = ((const float *)a.data)[i]; break;
        case DT_F64: d[i] = ((const double *)a.data)[i]; break;
        case DT_I32: d[i] = ((const int32_t *)a.data)[i]; break;
        case DT_I64: d[i] = (double)((const int64_t *)a.data)[i]; break;
        case DT_U8: d[i] = ((const uint8_t *)a.data)[i]; break;
        }
    }
    out->data = d;
    out->ndim = a.ndim;
    for (int i = 0; i < a.ndim; i++) out->shape[i] = a.shape[i];
    out->dtype = dtype_name(a.dtype);
    out->is_float = dtype_is_float(a.dtype);
    npy_free(&a);
    return DINO_OK;
}

void dino_npy_free(dino_npy *a) {
    free(a->data);
    memset(a, 0, sizeof *a);
}

dino_status dino_npy_write(const char *path, int f64, int ndim, const long long *shape, const double *data) {
    if (ndim < 0 || ndim > NPY_MAX_DIMS) return api_fail(DINO_EUSER, 0, "%s: %d dimensions; at most 8", path, ndim);
    int64_t s[NPY_MAX_DIMS], n = 1;
    for (int i = 0; i < ndim; i++) n *= s[i] = shape[i];
    const void *buf = data;
    float *f = NULL;
    if (!f64) {
        if (!(f = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1))))
            return api_fail(DINO_EUSER, 0, "%s: out of memory", path);
        for (int64_t i = 0; i < n; i++) f[i] = (float)data[i];
        buf = f;
    }
    char err[1024];
    int rc = npy_save(path, f64 ? DT_F64 : DT_F32, ndim, s, buf, err, sizeof err);
    free(f);
    return rc ? api_fail(DINO_EUSER, 0, "%s", err) : DINO_OK;
}
