/* safetensors.h - safetensors checkpoints: read (memory-mapped) and write (atomically).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__":{"k":"v"}, "h1.weight":{"dtype":"F64","shape":[16,6],
 *    "data_offsets":[begin,end]}, ...}
 * then the raw little-endian data; offsets are relative to the start of the data section.
 * Supported dtypes: F32, F64, I32, I64, U8. PyTorch (safetensors.torch) and JAX load the
 * files written here directly. The reader checks each tensor's range on its own; gaps or
 * overlaps between tensors (which the writer never produces) are not rejected. */
#ifndef DINO_SAFETENSORS_H
#define DINO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

#define ST_MAX_DIMS 8

typedef struct {
    char *name; /* owned, NUL-terminated (decoded from JSON) */
    DType dtype;
    int ndim;                   /* 0..ST_MAX_DIMS */
    int64_t shape[ST_MAX_DIMS]; /* shape[0..ndim), row-major */
    size_t begin, end;          /* byte range in the data section, as in the file */
    const void *data;           /* (shape[0], ..., shape[ndim-1]) elements of dtype,
                                  aligned for dtype; read-only; end - begin bytes */
} StTensor;

typedef struct {
    StTensor *tensors; /* (n,) in the order they appear in the JSON header */
    int n;
    char **meta_keys; /* (n_meta,) owned strings from "__metadata__" */
    char **meta_vals; /* (n_meta,) */
    int n_meta;
    /* Ownership, for st_free. Normally the read-only mapping of the whole file
   * (map_len > 0). When some tensor's data is not aligned for its dtype, every tensor is
   * copied to one heap block instead: then map_len == 0 and map_base is that block. */
    void *map_base;
    size_t map_len;
} Safetensors;

/* Load path into *out. Returns 0, or -1 with a one-line message in err (naming the file
 * and, where it applies, the tensor) and *out zeroed. */
int st_load(const char *path, Safetensors *out, char *err, size_t errlen);
/* The tensor called name, or NULL. */
const StTensor *st_find(const Safetensors *s, const char *name);
/* The metadata value for key, or NULL. */
const char *st_meta(const Safetensors *s, const char *key);
/* Release what st_load took; safe on a zeroed or already freed Safetensors. */
void st_free(Safetensors *s);

typedef struct {
    const char *name;
    DType dtype;
    int ndim;             /* 0..ST_MAX_DIMS */
    const int64_t *shape; /* (ndim,) */
    const void *data;     /* (shape[0], ..., shape[ndim-1]) elements of dtype */
} StWriteTensor;

/* Write t[0..n) in that order (data offsets increasing), with n_meta metadata entries,
 * header padded with spaces to a multiple of 8 bytes; atomically (PATH.tmp.<pid>, fsync,
 * rename). Names must be non-empty, distinct and not "__metadata__"; metadata keys
 * distinct. Returns 0, or -1 with err set (and no file left behind). */
int st_save(const char *path, const StWriteTensor *t, int n, const char *const *meta_keys, const char *const *meta_vals,
            int n_meta, char *err, size_t errlen);

#endif
