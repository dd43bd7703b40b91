/* npy.h - NumPy .npy files: read (memory-mapped) and write (atomically).
 *
 * Accepted on read: format versions 1.0, 2.0 and 3.0; C order (Fortran order only for
 * 0-d and 1-d arrays, where it is the same thing); dtypes '<f4', '<f8', '<i4', '<i8' and
 * '|u1'; at most 8 dimensions. The file must hold exactly the bytes the header describes.
 * Anything else is rejected with a one-line message that starts with the file's path. */
#ifndef DINO_NPY_H
#define DINO_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

#define NPY_MAX_DIMS 8

typedef struct {
    DType dtype;
    int ndim;                    /* 0..NPY_MAX_DIMS; 0 for a scalar */
    int64_t shape[NPY_MAX_DIMS]; /* shape[0..ndim), row-major (C order) */
    const void *data;            /* (shape[0], ..., shape[ndim-1]) elements of dtype;
                                   aligned for dtype; read-only */
    size_t nbytes;               /* product(shape) * dtype_size(dtype) */
    /* Ownership, for npy_free. Normally the read-only mapping of the whole file
   * (map_len > 0). When the file's data is not aligned for its dtype the data is copied
   * to the heap instead: then map_len == 0 and map_base is that heap block. */
    void *map_base;
    size_t map_len;
} NpyArray;

/* Load path into *out. Returns 0, or -1 with err set and *out zeroed. */
int npy_load(const char *path, NpyArray *out, char *err, size_t errlen);

/* Release what npy_load took; safe on a zeroed or already freed NpyArray. */
void npy_free(NpyArray *a);

/* Write a version 1.0 file as NumPy does (header padded so the data is 64-byte aligned),
 * atomically: PATH.tmp.<pid>, fsync, rename. data: (shape[0], ..., shape[ndim-1]) C order.
 * Returns 0, or -1 with err set (and no file left behind). */
int npy_save(const char *path, DType dt, int ndim, const int64_t *shape, const void *data, char *err, size_t errlen);

/* For float dtypes: 1 if every element is finite, else 0 and *bad_index (when not NULL)
 * set to the flat index of the first NaN or Inf. Integer dtypes are always finite. */
int npy_check_finite(const NpyArray *a, int64_t *bad_index);

/* Only the shape of a .npy file (for the checker's project(x, "P.npy")): the NpyShapeFn of
 * compiler/model.h. 0, or -1 with err set. */
int npy_shape(const char *path, int64_t *shape, int *ndim, char *err, size_t errlen);

#endif
