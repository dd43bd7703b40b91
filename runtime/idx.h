/* idx.h - MNIST-style IDX files, gzip-compressed or plain (zlib reads both).
 *
 * Layout: two zero bytes, a type code, the number of dimensions, one big-endian u32 per
 * dimension, then the big-endian data. Loaded fully into memory and converted to host
 * (little-endian) order:
 *   0x08 unsigned byte -> DT_U8
 *   0x09 signed byte   -> DT_I32 (widened: DType has no int8)
 *   0x0B short (i16)   -> DT_I32 (widened: DType has no int16)
 *   0x0C int (i32)     -> DT_I32
 *   0x0D float (f32)   -> DT_F32
 *   0x0E double (f64)  -> DT_F64
 * At most 4 dimensions and 4 GiB of converted data; the file must end with the data. */
#ifndef DINO_IDX_H
#define DINO_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

#define IDX_MAX_DIMS 4
#define IDX_MAX_BYTES ((size_t)4 << 30) /* cap on the converted data */

typedef struct {
    DType dtype;
    int ndim;                    /* 1..IDX_MAX_DIMS */
    int64_t shape[IDX_MAX_DIMS]; /* shape[0..ndim), e.g. (60000, 28, 28) for MNIST images */
    void *data;                  /* (shape[0], ..., shape[ndim-1]) elements of dtype, heap */
    size_t nbytes;               /* product(shape) * dtype_size(dtype) */
} IdxArray;

/* Load path into *out. Returns 0, or -1 with a one-line message in err (naming the file)
 * and *out zeroed. */
int idx_load(const char *path, IdxArray *out, char *err, size_t errlen);
/* Release the data; safe on a zeroed or already freed IdxArray. */
void idx_free(IdxArray *a);

#endif
