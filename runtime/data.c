/* data.c - loads the data a model's DataSpec describes: opens every file (npy_load maps an
 * .npy, idx_load reads an IDX file), checks dtype, shape and row counts against the model,
 * works out the split, then gives each part its rows in the training precision, checking every
 * value (NaN, Inf, overflow into float32, label range) on the way.
 *
 * Ownership: a part's array points into a read-only mapping of its file's rows when the file
 * already holds what training reads (an .npy of the training dtype, C order, unscaled, a
 * Jacobian out_in: map_rows; the values are checked by one streaming pass over the mapping),
 * and is a converted heap copy otherwise (convert_rows). Dataset.map says which, for data_free.
 * Each part maps only its own rows, so the train, valid and test sets are independent row
 * ranges of the file. data_load_sets_source may keep a part's float64 files as float64 for
 * float32 training (Dataset.f32_train; the reduced path projects them), checked against float32
 * all the same; data_convert converts such a part later, as convert_rows would have. The whole-file mappings npy_load made are closed before data_load
 * returns.
 *
 * Must not print or exit: every problem is one line in err, starting with the file's path. */
#define _DEFAULT_SOURCE /* mincore */
#include "data.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "idx.h"
#include "npy.h"

/* ---------------------------------------------------------------------------- sources */

typedef enum {
    ROLE_INPUT,  /* [N, in] floats (idx: any type, images [N, h, w] flattened) */
    ROLE_OUTPUT, /* [N, out] regression targets */
    ROLE_LABELS, /* [N] or [N, 1] integer class labels in [0, out) */
    ROLE_JAC,    /* [N, out, in], or [N, in, out] with layout = in_out */
} Role;

/* One opened data file. */
typedef struct {
    int present;
    char *path; /* dir/file, as every message names it (owned) */
    Role role;
    int is_idx;
    NpyArray npy; /* the mapping, when an .npy */
    IdxArray idx; /* the decoded data, when an IDX file */
    DType dtype;
    int ndim;
    const int64_t *shape; /* (ndim,) */
    const void *data;     /* (shape[0], ..., shape[ndim-1]) elements of dtype */
    int64_t rows;         /* shape[0] */
    int64_t row_len;      /* elements per row: product of shape[1..ndim) */
    double scale;         /* multiplies every value (idx scale = ...; 1 otherwise) */
    int in_out;           /* ROLE_JAC stored [N, in, out] */
} DataFile;

/* The files of one data set: input, output (targets or labels) and, optionally, Jacobian. */
typedef struct {
    DataFile x, y, J;
} FileSet;

typedef struct {
    const Model *m;
    const char *dir;
    int f64;       /* the precision of the part being filled (its Dataset's arrays) */
    int train_f64; /* the training precision: values must fit in it (float32: FLT_MAX) */
    int keep_f64;  /* a part whose files all map as float64 stays float64 (data_load_sets_source) */
    int map;       /* use files in place when they allow it (0: DINO_DATA_MAP=0, copy everything) */
    char *err;
    size_t errlen;
} Loader;

char *data_join_path(const char *dir, const char *file) {
    int plain = !dir || !dir[0] || file[0] == '/';
    size_t dl = plain ? 0 : strlen(dir), fl = strlen(file);
    int slash = !plain && dir[dl - 1] != '/';
    char *p = malloc(dl + (size_t)slash + fl + 1);
    if (!p) return NULL;
    if (dl) memcpy(p, dir, dl);
    if (slash) p[dl] = '/';
    memcpy(p + dl + (size_t)slash, file, fl + 1);
    return p;
}

/* "[100, 24]" */
static const char *shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int k = 0; k < ndim && at < n; k++)
        at += (size_t)snprintf(buf + at, n - at, "%s%lld", k ? ", " : "", (long long)shape[k]);
    if (at < n) snprintf(buf + at, n - at, "]");
    return buf;
}

static int is_int_dtype(DType dt) { return dt == DT_U8 || dt == DT_I32 || dt == DT_I64; }

/* Checks dtype and shape against the model; sets rows and row_len. */
static int check_source(Loader *L, DataFile *s) {
    const Model *m = L->m;
    char found[160];
    shape_str(found, sizeof found, s->ndim, s->shape);
    int64_t row_len = 1; /* saturates: an empty file may declare absurd trailing dimensions */
    for (int k = 1; k < s->ndim; k++)
        row_len = s->shape[k] && row_len > INT64_MAX / s->shape[k] ? INT64_MAX : row_len * s->shape[k];
    int ok = 0;
    switch (s->role) {
    case ROLE_INPUT:
    case ROLE_OUTPUT: {
        int input = s->role == ROLE_INPUT;
        int dim = input ? m->in_dim : m->out_dim;
        const char *what = input ? "input" : "output", *name = input ? m->input : m->output;
        if (!s->is_idx && !dtype_is_float(s->dtype)) {
            fio_errf(L->err, L->errlen, "%s: dtype %s where float32 or float64 is expected (data for the %s %s)",
                     s->path, dtype_name(s->dtype), what, name);
            return -1;
        }
        if (!input && m->trajectory) { /* [N, T, dim]: the saved states of each sample */
            ok = s->ndim == 3 && s->shape[1] == m->out_rows && s->shape[2] == m->out_cols;
            if (!ok) {
                fio_errf(L->err, L->errlen,
                         "%s: expected shape [N, %d, %d] (the output %s is a trajectory: %d "
                         "saved times of dimension %d), found %s",
                         s->path, m->out_rows, m->out_cols, name, m->out_rows, m->out_cols, found);
                return -1;
            }
            break;
        }
        ok = (s->ndim == 2 && s->shape[1] == dim) || (s->ndim == 1 && dim == 1) ||
            (s->is_idx && s->ndim >= 3 && row_len == dim);
        if (!ok && s->is_idx && s->ndim >= 3) {
            fio_errf(L->err, L->errlen,
                     "%s: expected shape [N, %d] or images [N, h, w] with h*w = %d (the %s %s has "
                     "dimension %d), found %s",
                     s->path, dim, dim, what, name, dim, found);
            return -1;
        }
        if (!ok) {
            fio_errf(L->err, L->errlen,
                     "%s: expected shape [N, %d] (the %s %s has dimension %d), "
                     "found %s",
                     s->path, dim, what, name, dim, found);
            return -1;
        }
        break;
    }
    case ROLE_LABELS:
        if (!is_int_dtype(s->dtype)) {
            fio_errf(L->err, L->errlen,
                     "%s: dtype %s where an integer dtype (uint8, int32 or int64) is expected (class "
                     "labels for the output %s)",
                     s->path, dtype_name(s->dtype), m->output);
            return -1;
        }
        if (!(s->ndim == 1 || (s->ndim == 2 && s->shape[1] == 1))) {
            fio_errf(L->err, L->errlen,
                     "%s: expected shape [N] or [N, 1] (one class label per row "
                     "for the output %s), found %s",
                     s->path, m->output, found);
            return -1;
        }
        break;
    case ROLE_JAC: {
        if (!dtype_is_float(s->dtype)) {
            fio_errf(L->err, L->errlen,
                     "%s: dtype %s where float32 or float64 is expected "
                     "(Jacobian data d%s/d%s)",
                     s->path, dtype_name(s->dtype), m->output, m->input);
            return -1;
        }
        if (m->trajectory) { /* [N, T, out, in] or [N, T, in, out] */
            int T = m->out_rows, a = s->in_out ? m->in_dim : m->out_cols, b = s->in_out ? m->out_cols : m->in_dim;
            ok = s->ndim == 4 && s->shape[1] == T && s->shape[2] == a && s->shape[3] == b;
            if (!ok) {
                int transposed = s->ndim == 4 && s->shape[1] == T && s->shape[2] == b && s->shape[3] == a;
                const char *hint = !transposed ? ""
                    : s->in_out                ? "; the file looks out_in: drop layout = in_out"
                                               : "; the file looks transposed: add layout = in_out";
                fio_errf(L->err, L->errlen,
                         "%s: expected shape [N, %d, %d, %d] (d%s/d%s%s at each of the %d saved "
                         "times: [N, T, dim(%s), dim(%s)]), found %s%s",
                         s->path, T, a, b, m->output, m->input, s->in_out ? " with layout = in_out" : "", T,
                         s->in_out ? m->input : m->output, s->in_out ? m->output : m->input, found, hint);
                return -1;
            }
            break;
        }
        int a = s->in_out ? m->in_dim : m->out_dim, b = s->in_out ? m->out_dim : m->in_dim;
        ok = s->ndim == 3 && s->shape[1] == a && s->shape[2] == b;
        if (!ok) {
            int transposed = s->ndim == 3 && s->shape[1] == b && s->shape[2] == a;
            const char *hint = !transposed ? ""
                : s->in_out                ? "; the file looks out_in: drop layout = in_out"
                                           : "; the file looks transposed: add layout = in_out";
            fio_errf(L->err, L->errlen,
                     "%s: expected shape [N, %d, %d] (d%s/d%s%s: [N, dim(%s), "
                     "dim(%s)]), found %s%s",
                     s->path, a, b, m->output, m->input, s->in_out ? " with layout = in_out" : "",
                     s->in_out ? m->input : m->output, s->in_out ? m->output : m->input, found, hint);
            return -1;
        }
        break;
    }
    }
    s->rows = s->shape[0];
    s->row_len = row_len;
    if (s->rows == 0) {
        fio_errf(L->err, L->errlen, "%s: no rows (shape %s)", s->path, found);
        return -1;
    }
    return 0;
}

static const char *role_noun(const Model *m, Role r, char *buf, size_t n) {
    switch (r) {
    case ROLE_INPUT: snprintf(buf, n, "the input %s", m->input); break;
    case ROLE_OUTPUT:
    case ROLE_LABELS: snprintf(buf, n, "the output %s", m->output); break;
    case ROLE_JAC: snprintf(buf, n, "d%s/d%s", m->output, m->input); break;
    }
    return buf;
}

/* Opens src for role. optional: a missing file is not an error (s->present stays 0). */
static int open_source(Loader *L, const DataSource *src, Role role, int optional, DataFile *s) {
    memset(s, 0, sizeof *s);
    if (src->kind == SRC_NONE || !src->file) {
        char noun[128];
        fio_errf(L->err, L->errlen, "%s: no data file for %s", L->m->path ? L->m->path : "spec",
                 role_noun(L->m, role, noun, sizeof noun));
        return -1;
    }
    s->path = data_join_path(L->dir, src->file);
    if (!s->path) {
        fio_errf(L->err, L->errlen, "%s: out of memory", src->file);
        return -1;
    }
    struct stat sb;
    if (stat(s->path, &sb) != 0 && errno == ENOENT) {
        if (optional) {
            free(s->path);
            s->path = NULL;
            return 0;
        }
        if (src->defaulted) {
            char noun[128];
            fio_errf(L->err, L->errlen,
                     "%s: cannot open: %s (the default file for %s; name "
                     "another in the data block or pass --data DIR)",
                     s->path, strerror(ENOENT), role_noun(L->m, role, noun, sizeof noun));
            return -1;
        }
    }
    s->role = role;
    s->is_idx = src->kind == SRC_IDX;
    s->scale = src->scale != 0 ? src->scale : 1.0;
    s->in_out = src->in_out;
    if (s->is_idx) {
        if (idx_load(s->path, &s->idx, L->err, L->errlen)) return -1;
        s->dtype = s->idx.dtype;
        s->ndim = s->idx.ndim;
        s->shape = s->idx.shape;
        s->data = s->idx.data;
    } else {
        if (npy_load(s->path, &s->npy, L->err, L->errlen)) return -1;
        s->dtype = s->npy.dtype;
        s->ndim = s->npy.ndim;
        s->shape = s->npy.shape;
        s->data = s->npy.data;
    }
    s->present = 1;
    return check_source(L, s);
}

static void close_source(DataFile *s) {
    npy_free(&s->npy);
    idx_free(&s->idx);
    free(s->path);
    memset(s, 0, sizeof *s);
}

static void close_set(FileSet *ss) {
    close_source(&ss->x);
    close_source(&ss->y);
    close_source(&ss->J);
}

static int same_rows(Loader *L, const DataFile *a, const DataFile *b) {
    if (!b->present || a->rows == b->rows) return 0;
    fio_errf(L->err, L->errlen, "%s: row counts differ: %s has %lld rows, %s has %lld", b->path, a->path,
             (long long)a->rows, b->path, (long long)b->rows);
    return -1;
}

/* jac_mode: 0 no Jacobian, 1 required, 2 used when the file exists. */
static int open_set(Loader *L, const DataSource *x, const DataSource *y, const DataSource *J, int jac_mode,
                    FileSet *ss) {
    memset(ss, 0, sizeof *ss);
    if (open_source(L, x, ROLE_INPUT, 0, &ss->x)) return -1;
    if (open_source(L, y, L->m->classifier ? ROLE_LABELS : ROLE_OUTPUT, 0, &ss->y)) return -1;
    if (jac_mode && open_source(L, J, ROLE_JAC, jac_mode == 2, &ss->J)) return -1;
    if (same_rows(L, &ss->x, &ss->y) || same_rows(L, &ss->x, &ss->J)) return -1;
    return 0;
}

/* ---------------------------------------------------------------------------- conversion */

/* Element k of an array of dtype dt, as a double (exact for every supported dtype but
 * int64 beyond 2^53, which only labels use, and they go through elem_i64). */
static double elem_f64(const void *p, DType dt, int64_t k) {
    switch (dt) {
    case DT_F32: return ((const float *)p)[k];
    case DT_F64: return ((const double *)p)[k];
    case DT_I32: return ((const int32_t *)p)[k];
    case DT_I64: return (double)((const int64_t *)p)[k];
    case DT_U8: return ((const uint8_t *)p)[k];
    }
    return 0;
}

static int64_t elem_i64(const void *p, DType dt, int64_t k) {
    switch (dt) {
    case DT_I32: return ((const int32_t *)p)[k];
    case DT_I64: return ((const int64_t *)p)[k];
    case DT_U8: return ((const uint8_t *)p)[k];
    default: return -1; /* float labels are rejected by check_source */
    }
}

/* "row 7, column 3" or "row 7, entry [2, 5]", in the file's own layout. */
static const char *position(const DataFile *s, int64_t row, int64_t k, char *buf, size_t n) {
    if (s->ndim <= 1) {
        snprintf(buf, n, "row %lld", (long long)row);
    } else if (s->ndim == 2) {
        snprintf(buf, n, "row %lld, column %lld", (long long)row, (long long)k);
    } else {
        int64_t idx[NPY_MAX_DIMS];
        for (int d = s->ndim - 1; d >= 1; d--) {
            idx[d] = k % s->shape[d];
            k /= s->shape[d];
        }
        shape_str(buf, n, s->ndim - 1, idx + 1);
        char tmp[128];
        snprintf(tmp, sizeof tmp, "row %lld, entry %s", (long long)row, buf);
        snprintf(buf, n, "%s", tmp);
    }
    return buf;
}

/* Converts file rows [r0, r0 + n) of s into dst (n, row_len) of the training precision, times
 * s->scale, checking every value. A Jacobian stored in_out ([in, out] per row) is transposed
 * into out_in ([out, in] per row). */
static int convert_rows(Loader *L, const DataFile *s, int64_t r0, int64_t n, void *dst) {
    int64_t len = s->row_len;
    int transpose = s->role == ROLE_JAC && s->in_out;
    int64_t a = transpose ? s->shape[s->ndim - 2] : 0, b = transpose ? s->shape[s->ndim - 1] : 1; /* file [.., a, b] */
    double *dd = L->f64 ? (double *)dst : NULL;                                                   /* (n, len) */
    float *df = L->f64 ? NULL : (float *)dst;                                                     /* (n, len) */
    for (int64_t r = 0; r < n; r++) {
        for (int64_t k = 0; k < len; k++) {
            double v = elem_f64(s->data, s->dtype, (r0 + r) * len + k);
            char where[160];
            if (!isfinite(v)) {
                fio_errf(L->err, L->errlen, "%s: contains %s at %s", s->path,
                         isnan(v)    ? "NaN"
                             : v > 0 ? "Inf"
                                     : "-Inf",
                         position(s, r0 + r, k, where, sizeof where));
                return -1;
            }
            double w = v * s->scale;
            if (!isfinite(w) || (!L->f64 && fabs(w) > FLT_MAX)) {
                char scaled[64] = "";
                if (s->scale != 1) snprintf(scaled, sizeof scaled, " times scale %g", s->scale);
                fio_errf(L->err, L->errlen, "%s: value %g%s at %s does not fit in %s", s->path, v, scaled,
                         position(s, r0 + r, k, where, sizeof where), L->f64 ? "float64" : "float32");
                return -1;
            }
            int64_t kk = k % (a * b + !transpose); /* within one saved time's [a, b] (trajectories: [T, a, b]) */
            int64_t dk = transpose ? k - kk + (kk % b) * a + kk / b : k; /* file [i, o] -> [o, i] */
            if (dd) dd[r * len + dk] = w;
            else df[r * len + dk] = (float)w;
        }
    }
    return 0;
}

/* Checks labels rows [r0, r0 + n) of s and, when dst is not NULL, copies them into it. */
static int convert_labels(Loader *L, const DataFile *s, int64_t r0, int64_t n, int32_t *dst) {
    int classes = L->m->out_dim;
    for (int64_t r = 0; r < n; r++) {
        int64_t v = elem_i64(s->data, s->dtype, r0 + r);
        if (v < 0 || v >= classes) {
            fio_errf(L->err, L->errlen,
                     "%s: label %lld at row %lld is outside [0, %d) (the output "
                     "%s has %d classes)",
                     s->path, (long long)v, (long long)(r0 + r), classes, L->m->output, classes);
            return -1;
        }
        if (dst) dst[r] = (int32_t)v;
    }
    return 0;
}

/* ---------------------------------------------------------------------------- data sets */

/* Whether the rows of s can be used in place, through a mapping (see data.h): an .npy that
 * npy_load mapped (aligned data), unscaled, of the dtype training reads, and a Jacobian stored
 * out_in. */
/* The dtype training reads s's values in. */
static DType train_dtype(const Loader *L, const DataFile *s) {
    return s->role == ROLE_LABELS ? DT_I32 : L->f64 ? DT_F64 : DT_F32;
}

static int can_map(const Loader *L, const DataFile *s) {
    if (!L->map || s->is_idx || s->npy.map_len == 0 || s->scale != 1) return 0;
    if (s->role == ROLE_JAC && s->in_out) return 0;
    return s->dtype == train_dtype(L, s);
}

/* Why s is copied rather than mapped, as advice for an out-of-memory message: "" when nothing
 * would map it (IDX, a scale, unaligned data). */
static const char *copied_why(const Loader *L, const DataFile *s, char *buf, size_t n) {
    buf[0] = 0;
    if (!L->map) snprintf(buf, n, "; DINO_DATA_MAP=0 asks for this copy, without it the file is read in place");
    else if (s->is_idx || s->npy.map_len == 0 || s->scale != 1) return buf;
    else if (s->role == ROLE_JAC && s->in_out)
        snprintf(buf, n, "; a Jacobian stored out_in [N, out, in] (not layout = in_out) would be read in place");
    else if (s->dtype != train_dtype(L, s))
        snprintf(buf, n, "; the file is %s: saved as %s (the training precision) it would be read in place",
                 dtype_name(s->dtype), dtype_name(train_dtype(L, s)));
    return buf;
}

static void *alloc_rows(Loader *L, const DataFile *s, int64_t n, int64_t len, size_t es) {
    if (n <= 0 || len <= 0) return NULL;
    if ((uint64_t)len > SIZE_MAX / es / (uint64_t)n) {
        fio_errf(L->err, L->errlen, "%s: %lld rows of %lld values are too many for memory", s->path, (long long)n,
                 (long long)len);
        return NULL;
    }
    size_t bytes = (size_t)n * (size_t)len * es;
    void *p = malloc(bytes);
    if (!p) {
        char why[200];
        fio_errf(L->err, L->errlen, "%s: out of memory: %lld rows need %zu bytes%s", s->path, (long long)n, bytes,
                 copied_why(L, s, why, sizeof why));
    }
    return p;
}

/* The index of the first element of a[0..n) (float32 or float64) that is NaN or Inf, or -1.
 * Exponent bits all ones, tested on the bits in blocks so that the loop vectorises: this pass
 * reads a whole mapped file at disk or memory speed. */
static int64_t first_not_finite(const void *a, DType dt, int64_t n) {
    enum { BLOCK = 4096 };
    for (int64_t b0 = 0; b0 < n; b0 += BLOCK) {
        int64_t e = n - b0 < BLOCK ? n - b0 : BLOCK;
        unsigned any = 0;
        if (dt == DT_F32) {
            const uint32_t *u = (const uint32_t *)a + b0; /* (e,) float32 bits */
            for (int64_t i = 0; i < e; i++) any |= (u[i] & 0x7f800000u) == 0x7f800000u;
        } else {
            const uint64_t *u = (const uint64_t *)a + b0; /* (e,) float64 bits */
            for (int64_t i = 0; i < e; i++) any |= (u[i] & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
        }
        if (!any) continue;
        for (int64_t i = b0; i < b0 + e; i++)
            if (!isfinite(elem_f64(a, dt, i))) return i;
    }
    return -1;
}

/* The index of the first element of the float64 array a[0..n) that is NaN or Inf or does not fit
 * in float32 (|v| > FLT_MAX), or -1: first_not_finite and the float32 range in one pass (NaN
 * fails every comparison). */
static int64_t first_not_f32(const double *a, int64_t n) {
    enum { BLOCK = 4096 };
    for (int64_t b0 = 0; b0 < n; b0 += BLOCK) {
        int64_t e = n - b0 < BLOCK ? n - b0 : BLOCK;
        unsigned any = 0;
        for (int64_t i = 0; i < e; i++) any |= !(fabs(a[b0 + i]) <= FLT_MAX);
        if (!any) continue;
        for (int64_t i = b0; i < b0 + e; i++)
            if (!(fabs(a[i]) <= FLT_MAX)) return i;
    }
    return -1;
}

/* Points *dst at file rows [r0, r0 + n) of s, through a read-only mapping of just those rows that
 * d->map[k] owns, and checks every value in one sequential pass (the finite check of
 * convert_rows; labels in range; float64 kept for float32 training: the range of float32, with
 * convert_rows's message). The values need no conversion: can_map said so. */
static int map_rows(Loader *L, const DataFile *s, int64_t r0, int64_t n, Dataset *d, DataArray k, void **dst) {
    size_t row = (size_t)s->row_len * dtype_size(s->dtype);
    size_t data_off = (size_t)((const char *)s->npy.data - (const char *)s->npy.map_base);
    FileMap fm;
    const void *at;
    if (fio_map_range(s->path, s->npy.map_len, data_off + (size_t)r0 * row, (size_t)n * row, &fm, &at, L->err,
                      L->errlen))
        return -1;
    d->map[k].base = (void *)fm.data;
    d->map[k].len = fm.len;
    *dst = (void *)at;
    posix_madvise(d->map[k].base, d->map[k].len, POSIX_MADV_SEQUENTIAL); /* for the check below */
    int rc = 0;
    if (s->role == ROLE_LABELS) {
        rc = convert_labels(L, s, r0, n, NULL);
    } else {
        int to_f32 = !L->train_f64 && s->dtype == DT_F64; /* float64 kept for float32 training */
        int64_t bad = to_f32 ? first_not_f32(at, n * s->row_len) : first_not_finite(at, s->dtype, n * s->row_len);
        if (bad >= 0 && isfinite(elem_f64(at, s->dtype, bad))) { /* finite: too large for float32 */
            char where[160];
            fio_errf(L->err, L->errlen, "%s: value %g at %s does not fit in float32", s->path,
                     ((const double *)at)[bad],
                     position(s, r0 + bad / s->row_len, bad % s->row_len, where, sizeof where));
            rc = -1;
        } else if (bad >= 0) {
            char where[160];
            double v = elem_f64(at, s->dtype, bad);
            fio_errf(L->err, L->errlen, "%s: contains %s at %s", s->path,
                     isnan(v)    ? "NaN"
                         : v > 0 ? "Inf"
                                 : "-Inf",
                     position(s, r0 + bad / s->row_len, bad % s->row_len, where, sizeof where));
            rc = -1;
        }
    }
    posix_madvise(d->map[k].base, d->map[k].len, POSIX_MADV_NORMAL);
    return rc;
}

/* The precision of the part of ss being filled: the training precision, or float64 for float32
 * training when keep_f64 asks for it and every float file of ss maps as float64 as it is (so
 * that nothing is copied: a file that would be converted is converted to the training precision,
 * the smaller copy). */
static int part_f64(const Loader *L, const FileSet *ss) {
    if (L->train_f64 || !L->keep_f64) return L->train_f64;
    Loader as64 = *L;
    as64.f64 = 1;
    return can_map(&as64, &ss->x) && (L->m->classifier || can_map(&as64, &ss->y)) &&
        (!ss->J.present || can_map(&as64, &ss->J));
}

/* d = file rows [r0, r0 + n) of ss: in place (mapped) or converted. */
static int fill_dataset(Loader *L, const FileSet *ss, int64_t r0, int64_t n, Dataset *d) {
    const Model *m = L->m;
    L->f64 = part_f64(L, ss);
    size_t es = L->f64 ? sizeof(double) : sizeof(float);
    *d = (Dataset){.n = n,
                   .in = m->in_dim,
                   .out = m->out_dim,
                   .f64 = L->f64,
                   .f32_train = L->f64 && !L->train_f64,
                   .classifier = m->classifier};
    if (n == 0) return 0;
    if (can_map(L, &ss->x)) {
        if (map_rows(L, &ss->x, r0, n, d, DATASET_X, &d->x)) goto fail;
    } else {
        if (!(d->x = alloc_rows(L, &ss->x, n, m->in_dim, es))) goto fail;
        if (convert_rows(L, &ss->x, r0, n, d->x)) goto fail;
    }
    if (m->classifier) {
        if (can_map(L, &ss->y)) {
            void *p;
            if (map_rows(L, &ss->y, r0, n, d, DATASET_LABEL, &p)) goto fail;
            d->label = p;
        } else {
            if (!(d->label = alloc_rows(L, &ss->y, n, 1, sizeof(int32_t)))) goto fail;
            if (convert_labels(L, &ss->y, r0, n, d->label)) goto fail;
        }
    } else if (can_map(L, &ss->y)) {
        if (map_rows(L, &ss->y, r0, n, d, DATASET_Y, &d->y)) goto fail;
    } else {
        if (!(d->y = alloc_rows(L, &ss->y, n, m->out_dim, es))) goto fail;
        if (convert_rows(L, &ss->y, r0, n, d->y)) goto fail;
    }
    if (ss->J.present && can_map(L, &ss->J)) {
        if (map_rows(L, &ss->J, r0, n, d, DATASET_J, &d->J)) goto fail;
    } else if (ss->J.present) {
        if (!(d->J = alloc_rows(L, &ss->J, n, ss->J.row_len, es))) goto fail;
        if (convert_rows(L, &ss->J, r0, n, d->J)) goto fail;
    }
    return 0;
fail:
    data_free(d);
    return -1;
}

/* A relative loss term divides each sample's term by ||q_i||^2 (l2) or ||J_i||_F^2 (h1): an
 * all-zero row of the training targets makes it 0/0, which training would only report as a
 * loss that is not finite. A data error naming the file, the first rows and how many. The
 * training rows are the file's rows 0 .. d->n - 1 (every split puts them first). */
static int check_relative_rows(Loader *L, const FileSet *ss, const Dataset *d) {
    const Model *m = L->m;
    for (int t = 0; t < m->n_loss && !m->classifier; t++) {
        const LossTerm *lt = &m->loss[t];
        if (!lt->relative || (lt->kind != LOSS_L2 && lt->kind != LOSS_H1)) continue;
        const void *a = lt->kind == LOSS_L2 ? d->y : d->J;
        const DataFile *f = lt->kind == LOSS_L2 ? &ss->y : &ss->J;
        if (!a) continue;
        int64_t len = lt->kind == LOSS_L2 ? (int64_t)m->out_dim : (int64_t)m->out_dim * m->in_dim, count = 0;
        char rows[160] = "";
        size_t at = 0;
        for (int64_t r = 0; r < d->n; r++) {
            int zero = 1;
            for (int64_t k = 0; k < len && zero; k++) /* zero in the training precision */
                zero = d->f64 ? (L->train_f64 ? ((const double *)a)[r * len + k] == 0
                                              : (float)((const double *)a)[r * len + k] == 0)
                              : ((const float *)a)[r * len + k] == 0;
            if (!zero) continue;
            if (count < 5 && at < sizeof rows)
                at += (size_t)snprintf(rows + at, sizeof rows - at, "%s%lld", count ? ", " : "", (long long)r);
            count++;
        }
        if (count == 0) continue;
        fio_errf(L->err, L->errlen,
                 "%s: %lld training row%s all zero (row%s %s%s), but the %s term is relative: it divides "
                 "each sample's error by %s, so the loss would be 0/0; remove those rows or drop `relative` (%s:%d)",
                 f->path, (long long)count, count == 1 ? " is" : "s are", count == 1 ? "" : "s", rows,
                 count > 5 ? ", ..." : "", lt->kind == LOSS_L2 ? "l2" : "h1",
                 lt->kind == LOSS_L2 ? "the target's squared norm" : "the Jacobian's squared norm",
                 m->path ? m->path : "spec", lt->loc.line);
        return -1;
    }
    return 0;
}

/* "train 0.8, test 0.2" or "train 1400, valid 200, test 400", as the split was written. */
static const char *split_text(const DataSpec *ds, char *buf, size_t n) {
    if (ds->split == SPLIT_COUNT && ds->valid > 0)
        snprintf(buf, n, "train %lld, valid %lld, test %lld", (long long)ds->train, (long long)ds->valid,
                 (long long)ds->test);
    else if (ds->split == SPLIT_COUNT)
        snprintf(buf, n, "train %lld, test %lld", (long long)ds->train, (long long)ds->test);
    else if (ds->valid > 0) snprintf(buf, n, "train %g, valid %g, test %g", ds->train, ds->valid, ds->test);
    else snprintf(buf, n, "train %g, test %g", ds->train, ds->test);
    return buf;
}

/* Rows of the train, valid and test parts of one file set of N rows, per the spec's split
 * (contiguous: train rows, then valid rows, then test rows). */
static int split_rows(Loader *L, const FileSet *ss, int64_t *ntr, int64_t *nva, int64_t *nte) {
    const DataSpec *ds = &L->m->data;
    int64_t N = ss->x.rows;
    const char *path = ss->x.path;
    char text[160];
    *nva = 0;
    if (ds->split == SPLIT_FRACTION) {
        *ntr = llround(ds->train * (double)N);
        *nva = llround(ds->valid * (double)N);
        *nte = llround(ds->test * (double)N);
        /* Parts rounded up past N (0.5 / 0.5 of an odd N): the test part, then the valid part,
     * gives back the rows. */
        if (*ntr + *nva + *nte > N && ds->train + ds->valid + ds->test <= 1 + 1e-9) {
            int64_t over = *ntr + *nva + *nte - N, give = over < *nte ? over : *nte;
            *nte -= give, over -= give;
            *nva -= over < *nva ? over : *nva;
        }
        const char *empty = ds->train > 0 && *ntr <= 0 ? "training"
            : ds->valid > 0 && *nva <= 0               ? "validation"
            : ds->test > 0 && *nte <= 0                ? "test"
                                                       : NULL;
        if (empty) {
            fio_errf(L->err, L->errlen,
                     "%s: split %s of %lld rows leaves the %s set "
                     "empty; use more rows or a larger fraction%s",
                     path, split_text(ds, text, sizeof text), (long long)N, empty,
                     strcmp(empty, "test") ? "" : " (or test 0 to train without a test set)");
            return -1;
        }
        if (*ntr + *nva + *nte > N) {
            if (*nva)
                fio_errf(L->err, L->errlen, "%s: split %s needs %lld + %lld + %lld rows, found %lld", path,
                         split_text(ds, text, sizeof text), (long long)*ntr, (long long)*nva, (long long)*nte,
                         (long long)N);
            else
                fio_errf(L->err, L->errlen, "%s: split %s needs %lld + %lld rows, found %lld", path,
                         split_text(ds, text, sizeof text), (long long)*ntr, (long long)*nte, (long long)N);
            return -1;
        }
    } else {
        *ntr = (int64_t)ds->train;
        *nva = (int64_t)ds->valid;
        if (ds->test < 0) {
            if (*ntr + *nva >= N) {
                if (*nva)
                    fio_errf(L->err, L->errlen,
                             "%s: split train %lld, valid %lld leaves no test rows: the file has "
                             "%lld rows (write test 0 to train without a test set)",
                             path, (long long)*ntr, (long long)*nva, (long long)N);
                else
                    fio_errf(L->err, L->errlen,
                             "%s: split train %lld leaves no test rows: the file has "
                             "%lld rows (write test 0 to train without a test set)",
                             path, (long long)*ntr, (long long)N);
                return -1;
            }
            *nte = N - *ntr - *nva;
        } else {
            *nte = (int64_t)ds->test;
            if (*ntr + *nva > N - *nte) {
                fio_errf(L->err, L->errlen, "%s: split %s needs %lld rows, but the file has %lld", path,
                         split_text(ds, text, sizeof text), (long long)(*ntr + *nva + *nte), (long long)N);
                return -1;
            }
        }
        if (*ntr <= 0) {
            fio_errf(L->err, L->errlen, "%s: split train %lld leaves the training set empty", path, (long long)*ntr);
            return -1;
        }
    }
    return 0;
}

int data_load_sets(const Model *m, const char *dir, int f64, int need_jac, Dataset *train, Dataset *valid,
                   Dataset *test, char *err, size_t errlen) {
    return data_load_sets_source(m, dir, f64, 0, need_jac, train, valid, test, err, errlen);
}

int data_load_sets_source(const Model *m, const char *dir, int f64, int keep_f64, int need_jac, Dataset *train,
                          Dataset *valid, Dataset *test, char *err, size_t errlen) {
    memset(train, 0, sizeof *train);
    memset(valid, 0, sizeof *valid);
    memset(test, 0, sizeof *test);
    const char *map_env = getenv("DINO_DATA_MAP"); /* 0: copy every file (tests compare the two paths) */
    Loader L = {.m = m,
                .dir = dir,
                .f64 = f64 != 0,
                .train_f64 = f64 != 0,
                .keep_f64 = keep_f64 != 0,
                .map = !map_env || strcmp(map_env, "0") != 0,
                .err = err,
                .errlen = errlen};
    const DataSpec *ds = &m->data;
    if (!m->input || !m->output || m->in_dim <= 0 || m->out_dim <= 0) {
        fio_errf(err, errlen, "%s: the model has no input or output to load data for", m->path ? m->path : "spec");
        return -1;
    }

    /* Which Jacobian file the training set uses, and whether it must exist. */
    DataSource jac = ds->jac;
    int jac_mode = 0;
    if (!m->classifier) {
        if (jac.kind != SRC_NONE) {
            jac_mode = 1;
        } else {
            jac = (DataSource){.kind = SRC_NPY, .file = "J_data.npy", .scale = 1, .defaulted = 1};
            jac_mode = need_jac ? 1 : 2;
        }
    }

    FileSet whole, tset, vset;
    memset(&whole, 0, sizeof whole);
    memset(&tset, 0, sizeof tset);
    memset(&vset, 0, sizeof vset);
    int rc = -1;
    int64_t ntr = 0, nva = 0, nte = 0;
    if (open_set(&L, &ds->input, &ds->output, &jac, jac_mode, &whole)) goto done;
    if (ds->split == SPLIT_TEST_FILES) {
        int test_jac = !m->classifier && ds->test_jac.kind != SRC_NONE;
        if (open_set(&L, &ds->test_input, &ds->test_output, &ds->test_jac, test_jac, &tset)) goto done;
        ntr = whole.x.rows;
        nte = tset.x.rows;
        if (fill_dataset(&L, &whole, 0, ntr, train) || check_relative_rows(&L, &whole, train) ||
            fill_dataset(&L, &tset, 0, nte, test))
            goto done;
    } else {
        if (split_rows(&L, &whole, &ntr, &nva, &nte)) goto done;
        if (fill_dataset(&L, &whole, 0, ntr, train) || check_relative_rows(&L, &whole, train) ||
            fill_dataset(&L, &whole, ntr, nva, valid) || fill_dataset(&L, &whole, ntr + nva, nte, test))
            goto done;
    }
    if (ds->valid_input.kind != SRC_NONE) { /* separate validation files */
        int valid_jac = !m->classifier && ds->valid_jac.kind != SRC_NONE;
        if (open_set(&L, &ds->valid_input, &ds->valid_output, &ds->valid_jac, valid_jac, &vset) ||
            fill_dataset(&L, &vset, 0, vset.x.rows, valid))
            goto done;
    }
    rc = 0;
done:
    close_set(&whole);
    close_set(&tset);
    close_set(&vset);
    if (rc) {
        data_free(train);
        data_free(valid);
        data_free(test);
    }
    return rc;
}

int data_load(const Model *m, const char *dir, int f64, int need_jac, Dataset *train, Dataset *test, char *err,
              size_t errlen) {
    Dataset valid;
    int rc = data_load_sets(m, dir, f64, need_jac, train, &valid, test, err, errlen);
    data_free(&valid);
    return rc;
}

/* ---------------------------------------------------------------------------- batches */

void data_gather(const Dataset *d, const int64_t *idx, int n, void *x, void *y, void *J, int32_t *label) {
    size_t es = d->f64 ? sizeof(double) : sizeof(float);
    size_t xrow = (size_t)d->in * es, yrow = (size_t)d->out * es, jrow = xrow * (size_t)d->out;
    for (int r = 0; r < n; r++) {
        size_t i = (size_t)idx[r];
        if (x && d->x) memcpy((char *)x + (size_t)r * xrow, (const char *)d->x + i * xrow, xrow);
        if (y && d->y) memcpy((char *)y + (size_t)r * yrow, (const char *)d->y + i * yrow, yrow);
        if (J && d->J) memcpy((char *)J + (size_t)r * jrow, (const char *)d->J + i * jrow, jrow);
        if (label && d->label) label[r] = d->label[i];
    }
}

void data_free(Dataset *d) {
    void *arrays[4] = {d->x, d->y, d->J, d->label}; /* by DataArray */
    for (int k = 0; k < 4; k++) {
        if (d->map[k].base) munmap(d->map[k].base, d->map[k].len);
        else free(arrays[k]);
    }
    memset(d, 0, sizeof *d);
}

int data_convert(Dataset *d, int f64, const char *which, char *err, size_t errlen) {
    if (d->f64 == f64 || d->n == 0) {
        d->f64 = f64, d->f32_train = 0;
        return 0;
    }
    int64_t lens[3] = {d->n * d->in, d->n * d->out, d->n * d->out * d->in}; /* by DataArray */
    void **arrays[3] = {&d->x, &d->y, &d->J}, *conv[3] = {NULL, NULL, NULL};
    size_t es = f64 ? sizeof(double) : sizeof(float);
    for (int k = 0; k < 3; k++) {
        if (!*arrays[k]) continue;
        if (!(conv[k] = malloc(es * (size_t)lens[k]))) {
            fio_errf(err, errlen, "out of memory converting the %s set (%lld rows) to %s: %zu bytes", which,
                     (long long)d->n, f64 ? "float64" : "float32", es * (size_t)lens[k]);
            for (int j = 0; j < k; j++) free(conv[j]);
            return -1;
        }
        const void *src = *arrays[k];
        for (int64_t i = 0; i < lens[k]; i++) {
            if (f64) ((double *)conv[k])[i] = ((const float *)src)[i];
            else ((float *)conv[k])[i] = (float)((const double *)src)[i];
        }
    }
    for (int k = 0; k < 3; k++) {
        if (!conv[k]) continue;
        if (d->map[k].base) munmap(d->map[k].base, d->map[k].len);
        else free(*arrays[k]);
        d->map[k].base = NULL, d->map[k].len = 0;
        *arrays[k] = conv[k];
    }
    d->f64 = f64, d->f32_train = 0;
    return 0;
}

/* The bytes of one row of each of d's arrays, by DataArray (x, y, J, label). */
static void row_bytes(const Dataset *d, size_t rows[4]) {
    size_t es = d->f64 ? sizeof(double) : sizeof(float);
    rows[0] = (size_t)d->in * es, rows[1] = (size_t)d->out * es, rows[2] = (size_t)d->in * (size_t)d->out * es;
    rows[3] = sizeof(int32_t);
}

size_t data_mapped(const Dataset *d) {
    size_t n = (size_t)d->n, rows[4], bytes = 0;
    row_bytes(d, rows);
    for (int k = 0; k < 4; k++)
        if (d->map[k].base) bytes += n * rows[k];
    return bytes;
}

void data_advise(const Dataset *d, DataAccess how) {
    for (int k = 0; k < 4; k++)
        if (d->map[k].base)
            posix_madvise(d->map[k].base, d->map[k].len, how == DATASET_RANDOM ? POSIX_MADV_RANDOM : POSIX_MADV_NORMAL);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int data_ahead_init(DataAhead *a, int cap) {
    memset(a, 0, sizeof *a);
    a->rows = malloc(sizeof *a->rows * (size_t)(cap > 0 ? cap : 1));
    a->cap = a->rows ? cap : 0;
    return a->rows ? 0 : -1;
}

void data_ahead_free(DataAhead *a) {
    free(a->rows);
    memset(a, 0, sizeof *a);
}

/* Asks for [lo, hi) (lo on a page boundary) of array k, less what the last range asked for
 * holds: with block shuffles batch after batch asks for the same window. Overlapping ranges are
 * remembered as their union, up to 64 MiB (then afresh, so that pages evicted since are asked for
 * again). */
static void willneed(DataAhead *a, int k, uintptr_t lo, uintptr_t hi, uintptr_t page) {
    uintptr_t olo = a->lo[k], ohi = a->hi[k];
    if (ohi && lo <= ohi && hi >= olo && (hi > ohi ? hi : ohi) - (lo < olo ? lo : olo) <= ((uintptr_t)64 << 20)) {
        if (lo < olo) posix_madvise((void *)lo, olo - lo, POSIX_MADV_WILLNEED);
        if (hi > ohi) posix_madvise((void *)(ohi - ohi % page), hi - (ohi - ohi % page), POSIX_MADV_WILLNEED);
        a->lo[k] = lo < olo ? lo : olo, a->hi[k] = hi > ohi ? hi : ohi;
        return;
    }
    posix_madvise((void *)lo, hi - lo, POSIX_MADV_WILLNEED);
    a->lo[k] = lo, a->hi[k] = hi;
}

void data_prefetch(const Dataset *d, const int64_t *idx, int n, DataAhead *a) {
    if (n <= 0 || !data_mapped(d)) return;
    if (n > a->cap) n = a->cap;
    memcpy(a->rows, idx, sizeof *a->rows * (size_t)n);
    qsort(a->rows, (size_t)n, sizeof *a->rows, cmp_i64);
    size_t rows[4];
    row_bytes(d, rows);
    const void *arrays[4] = {d->x, d->y, d->J, d->label}; /* by DataArray */
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t page = (uintptr_t)(pg > 0 ? pg : 4096), gap = 16 * page; /* rows closer than this: one range */
    for (int k = 0; k < 4; k++) {
        if (!d->map[k].base) continue;
        uintptr_t lo = 0, hi = 0; /* the range being merged, [lo, hi) */
        for (int i = 0; i <= n; i++) {
            uintptr_t b0 = 0, b1 = 0;
            if (i < n) {
                b0 = (uintptr_t)arrays[k] + (uintptr_t)a->rows[i] * rows[k];
                b1 = b0 + rows[k];
                b0 -= b0 % page;
                if (hi && b0 <= hi + gap) { /* near the range: extend it */
                    if (b1 > hi) hi = b1;
                    continue;
                }
            }
            if (hi) willneed(a, k, lo, hi, page);
            lo = b0, hi = b1;
        }
    }
}

double data_resident(const Dataset *d) {
    enum { PLACES = 64, PAGES = 16 };
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = (size_t)(pg > 0 ? pg : 4096), in = 0, all = 0;
    unsigned char v[PAGES];
    for (int k = 0; k < 4; k++) {
        if (!d->map[k].base) continue;
        size_t pages = (d->map[k].len + page - 1) / page, next = 0; /* pages before next: sampled */
        for (int s = 0; s < PLACES; s++) {
            size_t first = pages * (size_t)s / PLACES;
            if (first < next) first = next; /* a small array: no page twice */
            if (first >= pages) break;
            size_t n = pages - first < PAGES ? pages - first : PAGES;
            next = first + n;
            if (mincore((char *)d->map[k].base + first * page, n * page, v)) continue;
            for (size_t i = 0; i < n; i++) in += v[i] & 1;
            all += n;
        }
    }
    return all ? (double)in / (double)all : 1.0;
}

/* ---------------------------------------------------------------------------- a reader's read-ahead */

enum { READ_AHEAD_BYTES = 4 << 20, READ_AHEAD_MAX = 256 };

int data_read_ahead_open(DataReadAhead *r, const Dataset *d, int batch) {
    data_read_ahead_free(r);
    r->d = d;
    r->batch = batch;
    if (!data_mapped(d) || batch < 1) return 0;
    if (data_ahead_init(&r->a, batch)) return -1;
    size_t rows[4], row = 0;
    row_bytes(d, rows);
    const void *arrays[4] = {d->x, d->y, d->J, d->label}; /* by DataArray */
    for (int k = 0; k < 4; k++)
        if (arrays[k]) row += rows[k];
    size_t per_batch = row * (size_t)batch, k = (READ_AHEAD_BYTES + per_batch - 1) / per_batch;
    r->batches = k < 2 ? 2 : k > READ_AHEAD_MAX ? READ_AHEAD_MAX : (int)k;
    return 0;
}

void data_read_ahead_epoch(DataReadAhead *r, const int64_t *order) {
    r->order = order;
    r->ahead = 0;
    /* asking for pages already cached costs a system call a row for nothing (5x the gather of a
     * small network's epoch, measured): only when a tenth of the data is out of the cache */
    const char *force = getenv("DINO_READ_AHEAD"); /* 1: always, 0: never (for tests and measurements) */
    r->on = r->a.rows && (force && *force ? strcmp(force, "0") != 0 : data_resident(r->d) < 0.9);
    memset(r->a.lo, 0, sizeof r->a.lo); /* asked for last epoch: maybe evicted since */
    memset(r->a.hi, 0, sizeof r->a.hi);
}

/* This reader's share of batch +j starts j batches after this one's (exact for full batches;
 * the last, partial batch is near enough). */
void data_read_ahead_step(DataReadAhead *r, int64_t first, int n) {
    int64_t N = r->d ? r->d->n : 0;
    for (int j = 1; r->on && j <= r->batches; j++) {
        int64_t p = first + (int64_t)j * r->batch;
        if (p >= N) break;
        if (p < r->ahead) continue;
        data_prefetch(r->d, r->order + p, N - p < n ? (int)(N - p) : n, &r->a);
        r->ahead = p + 1;
    }
}

void data_read_ahead_free(DataReadAhead *r) {
    data_ahead_free(&r->a);
    memset(r, 0, sizeof *r);
}
