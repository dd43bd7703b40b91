/* dtype.h - the element types the runtime reads, writes and computes with.
 *
 * One enum shared by the .npy, safetensors and IDX layers and by the training runtime.
 * All data on disk and in memory is little-endian; the runtime refuses to build on a
 * big-endian host rather than silently misreading files. */
#ifndef DINO_DTYPE_H
#define DINO_DTYPE_H

#include <stddef.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "dino's file formats assume a little-endian host"
#endif

typedef enum {
    DT_F32, /* float32, NumPy '<f4', safetensors "F32" */
    DT_F64, /* float64, NumPy '<f8', safetensors "F64" */
    DT_I32, /* int32,   NumPy '<i4', safetensors "I32" */
    DT_I64, /* int64,   NumPy '<i8', safetensors "I64" */
    DT_U8,  /* uint8,   NumPy '|u1', safetensors "U8"  */
} DType;

/* Bytes per element; 0 for a value outside the enum (callers use that as "invalid"). */
size_t dtype_size(DType dt);
/* NumPy-style name ("float32", "int64", ...); "invalid" for a value outside the enum. */
const char *dtype_name(DType dt);
/* 1 for DT_F32 and DT_F64, else 0. */
int dtype_is_float(DType dt);

#endif
