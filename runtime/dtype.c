/* dtype.c - sizes and names of the element types in dtype.h. */
#include "dtype.h"

size_t dtype_size(DType dt) {
    switch (dt) {
    case DT_F32: return 4;
    case DT_F64: return 8;
    case DT_I32: return 4;
    case DT_I64: return 8;
    case DT_U8: return 1;
    }
    return 0;
}

const char *dtype_name(DType dt) {
    switch (dt) {
    case DT_F32: return "float32";
    case DT_F64: return "float64";
    case DT_I32: return "int32";
    case DT_I64: return "int64";
    case DT_U8: return "uint8";
    }
    return "invalid";
}

int dtype_is_float(DType dt) { return dt == DT_F32 || dt == DT_F64; }
