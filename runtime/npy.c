/* npy.c - NumPy .npy reader and writer (see npy.h for what is accepted).
 *
 * File layout: "\x93NUMPY", major, minor, header length (u16 little-endian for 1.0, u32
 * for 2.0 and 3.0), the header (a Python dict literal such as
 * {'descr': '<f8', 'fortran_order': False, 'shape': (10, 4), } padded with spaces and
 * ending in '\n'), then the raw data. The header is parsed by a small cursor over its
 * bytes that never reads past the end and accepts the keys in any order. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "npy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_HEADER (1u << 20) /* real headers are ~100 bytes; more means garbage */
#define NPY_ALIGN 64              /* NumPy aligns the data to 64 bytes */
#define NPY_GROWTH_DIGITS 21      /* NumPy leaves room to grow shape[0] in place */
#define NPY_EXPECTED "expected <f4, <f8, <i4, <i8 or |u1"

/* ------------------------------------------------------------------------ helpers */

/* Python's repr of a shape tuple: "()", "(5,)", "(10, 4)". buf: (n,) chars. */
static void format_shape(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, ndim == 1 ? ",)" : ")");
}

/* Number of elements of shape, or -1 when it does not fit in max_elems. */
static int64_t count_elements(int ndim, const int64_t *shape, int64_t max_elems) {
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) return 0;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || n > max_elems / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

/* ------------------------------------------------------------------------ header parser */

typedef struct {
    const char *s; /* header text, (len,) bytes, not NUL-terminated */
    size_t len, pos;
    const char *path;
    char *err;
    size_t errlen;
} Hdr;

static int hdr_fail(Hdr *h, const char *what) {
    fio_errf(h->err, h->errlen, "%s: malformed .npy header at byte %zu: %s", h->path, h->pos, what);
    return -1;
}

static void skip_ws(Hdr *h) {
    while (h->pos < h->len &&
           (h->s[h->pos] == ' ' || h->s[h->pos] == '\t' || h->s[h->pos] == '\n' || h->s[h->pos] == '\r'))
        h->pos++;
}

static int peek(const Hdr *h) { return h->pos < h->len ? (unsigned char)h->s[h->pos] : -1; }

static int expect_char(Hdr *h, char c, const char *what) {
    skip_ws(h);
    if (peek(h) != (unsigned char)c) return hdr_fail(h, what);
    h->pos++;
    return 0;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* A Python string literal in single or double quotes, without escapes. */
static int parse_str(Hdr *h, const char **start, size_t *n) {
    skip_ws(h);
    int q = peek(h);
    if (q != '\'' && q != '"') return hdr_fail(h, "expected a quoted string");
    size_t begin = ++h->pos;
    while (h->pos < h->len && (unsigned char)h->s[h->pos] != q) {
        if (h->s[h->pos] == '\\') return hdr_fail(h, "escape sequences are not supported");
        if (h->s[h->pos] == '\n') return hdr_fail(h, "unterminated string");
        h->pos++;
    }
    if (h->pos >= h->len) return hdr_fail(h, "unterminated string");
    *start = h->s + begin;
    *n = h->pos - begin;
    h->pos++;
    return 0;
}

static int match_word(Hdr *h, const char *w) {
    size_t n = strlen(w);
    if (h->len - h->pos < n || memcmp(h->s + h->pos, w, n) != 0) return 0;
    if (h->pos + n < h->len) { /* "Truex" is not True */
        char c = h->s[h->pos + n];
        if (c == '_' || is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 0;
    }
    h->pos += n;
    return 1;
}

static int parse_bool(Hdr *h, int *v) {
    skip_ws(h);
    if (match_word(h, "True")) *v = 1;
    else if (match_word(h, "False")) *v = 0;
    else return hdr_fail(h, "'fortran_order' must be True or False");
    return 0;
}

static int parse_descr(Hdr *h, DType *dt) {
    static const struct {
        const char *descr;
        DType dt;
    } known[] = {
        {"<f4", DT_F32}, {"<f8", DT_F64}, {"<i4", DT_I32}, {"<i8", DT_I64}, {"|u1", DT_U8}, {"<u1", DT_U8},
    };
    skip_ws(h);
    if (peek(h) == '[') {
        fio_errf(h->err, h->errlen, "%s: structured dtypes (a list 'descr') are not supported; %s", h->path,
                 NPY_EXPECTED);
        return -1;
    }
    const char *d;
    size_t n;
    if (parse_str(h, &d, &n)) return -1;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (n == strlen(known[i].descr) && memcmp(d, known[i].descr, n) == 0) {
            *dt = known[i].dt;
            return 0;
        }
    }
    char shown[40];
    fio_printable(shown, sizeof shown, d, n, 24);
    if (n >= 2 && d[0] == '>')
        fio_errf(h->err, h->errlen, "%s: dtype '%s' (big-endian) is not supported; " NPY_EXPECTED, h->path, shown);
    else fio_errf(h->err, h->errlen, "%s: dtype '%s' is not supported; " NPY_EXPECTED, h->path, shown);
    return -1;
}

/* A non-negative integer, optionally with Python 2's 'L' suffix. */
static int parse_dim(Hdr *h, int64_t *v) {
    skip_ws(h);
    if (peek(h) == '-') return hdr_fail(h, "negative dimension in 'shape'");
    if (!is_digit(peek(h))) return hdr_fail(h, "expected a dimension (a non-negative integer)");
    int64_t x = 0;
    while (is_digit(peek(h))) {
        int d = peek(h) - '0';
        if (x > (INT64_MAX - d) / 10) return hdr_fail(h, "dimension too large");
        x = x * 10 + d;
        h->pos++;
    }
    if (peek(h) == 'L') h->pos++;
    *v = x;
    return 0;
}

/* A Python tuple of dimensions: (), (5,), (10, 4), (10, 4,). */
static int parse_shape(Hdr *h, int *ndim, int64_t *shape) {
    if (expect_char(h, '(', "'shape' must be a tuple such as (10, 4)")) return -1;
    int n = 0;
    skip_ws(h);
    if (peek(h) == ')') {
        h->pos++;
        *ndim = 0;
        return 0;
    }
    for (;;) {
        if (n == NPY_MAX_DIMS) {
            fio_errf(h->err, h->errlen, "%s: arrays with more than %d dimensions are not supported", h->path,
                     NPY_MAX_DIMS);
            return -1;
        }
        if (parse_dim(h, &shape[n++])) return -1;
        skip_ws(h);
        int c = peek(h);
        if (c == ',') {
            h->pos++;
            skip_ws(h);
            if (peek(h) == ')') {
                h->pos++;
                break;
            }
        } else if (c == ')') {
            if (n == 1) return hdr_fail(h, "'shape' (N) is not a tuple; a 1-d shape is written (N,)");
            h->pos++;
            break;
        } else {
            return hdr_fail(h, "expected ',' or ')' in 'shape'");
        }
    }
    *ndim = n;
    return 0;
}

/* The header dict: exactly the keys 'descr', 'fortran_order' and 'shape', in any order,
 * then only padding. */
static int parse_header(Hdr *h, DType *dt, int *fortran, int *ndim, int64_t *shape) {
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    if (expect_char(h, '{', "expected '{' (the header is a Python dict)")) return -1;
    skip_ws(h);
    if (peek(h) == '}') h->pos++;
    else
        for (;;) {
            const char *key;
            size_t n;
            size_t key_pos = h->pos;
            if (parse_str(h, &key, &n)) return -1;
            if (expect_char(h, ':', "expected ':' after a key")) return -1;
            int *have;
            int rc;
            if (n == 5 && memcmp(key, "descr", 5) == 0) {
                have = &have_descr;
                rc = parse_descr(h, dt);
            } else if (n == 13 && memcmp(key, "fortran_order", 13) == 0) {
                have = &have_fortran;
                rc = parse_bool(h, fortran);
            } else if (n == 5 && memcmp(key, "shape", 5) == 0) {
                have = &have_shape;
                rc = parse_shape(h, ndim, shape);
            } else {
                char shown[40], what[120];
                fio_printable(shown, sizeof shown, key, n, 24);
                snprintf(what, sizeof what, "unexpected key '%s'; expected 'descr', 'fortran_order' and 'shape'",
                         shown);
                h->pos = key_pos;
                return hdr_fail(h, what);
            }
            if (rc) return -1;
            if (*have) {
                h->pos = key_pos;
                return hdr_fail(h, "duplicate key");
            }
            *have = 1;
            skip_ws(h);
            int c = peek(h);
            if (c == ',') {
                h->pos++;
                skip_ws(h);
                if (peek(h) == '}') {
                    h->pos++;
                    break;
                }
            } else if (c == '}') {
                h->pos++;
                break;
            } else {
                return hdr_fail(h, "expected ',' or '}' after a value");
            }
        }
    if (!have_descr) return hdr_fail(h, "the header lacks the key 'descr'");
    if (!have_fortran) return hdr_fail(h, "the header lacks the key 'fortran_order'");
    if (!have_shape) return hdr_fail(h, "the header lacks the key 'shape'");
    skip_ws(h);
    if (h->pos != h->len) return hdr_fail(h, "unexpected text after the header dict");
    return 0;
}

/* ------------------------------------------------------------------------ reading */

int npy_load(const char *path, NpyArray *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    FileMap m;
    if (fio_map(path, &m, err, errlen)) return -1;
    const unsigned char *d = m.data; /* (m.len,) bytes of the file */
    if (m.len == 0) {
        fio_errf(err, errlen, "%s: empty file (0 bytes); not an .npy file", path);
        return -1;
    }
    if (m.len < 6 || memcmp(d, NPY_MAGIC, 6) != 0) {
        fio_errf(err, errlen, "%s: not an .npy file (bad magic)", path);
        goto fail;
    }
    if (m.len < 10) {
        fio_errf(err, errlen, "%s: truncated: the file ends inside the .npy preamble (%zu bytes)", path, m.len);
        goto fail;
    }
    int major = d[6], minor = d[7];
    if (major < 1 || major > 3 || minor != 0) {
        fio_errf(err, errlen, "%s: unsupported .npy format version %d.%d; expected 1.0, 2.0 or 3.0", path, major,
                 minor);
        goto fail;
    }
    size_t pre = major == 1 ? 10 : 12; /* magic, version, header length */
    if (m.len < pre) {
        fio_errf(err, errlen, "%s: truncated: the file ends inside the .npy preamble (%zu bytes)", path, m.len);
        goto fail;
    }
    uint32_t hlen = major == 1 ? (uint32_t)d[8] | (uint32_t)d[9] << 8
                               : (uint32_t)d[8] | (uint32_t)d[9] << 8 | (uint32_t)d[10] << 16 | (uint32_t)d[11] << 24;
    if (hlen > NPY_MAX_HEADER) {
        fio_errf(err, errlen,
                 "%s: header length %lu is implausibly large (limit %u bytes); "
                 "the file is damaged or not an .npy file",
                 path, (unsigned long)hlen, NPY_MAX_HEADER);
        goto fail;
    }
    if (hlen > m.len - pre) {
        fio_errf(err, errlen,
                 "%s: truncated: header length is %lu bytes, file has %zu after the "
                 "preamble",
                 path, (unsigned long)hlen, m.len - pre);
        goto fail;
    }
    Hdr h = {(const char *)d + pre, hlen, 0, path, err, errlen};
    DType dt = DT_F32;
    int fortran = 0, ndim = 0;
    int64_t shape[NPY_MAX_DIMS] = {0};
    if (parse_header(&h, &dt, &fortran, &ndim, shape)) goto fail;
    if (fortran && ndim > 1) {
        fio_errf(err, errlen,
                 "%s: Fortran-ordered arrays are not supported; save with "
                 "np.ascontiguousarray",
                 path);
        goto fail;
    }
    size_t size = dtype_size(dt);
    char shape_str[200];
    format_shape(shape_str, sizeof shape_str, ndim, shape);
    int64_t numel = count_elements(ndim, shape, INT64_MAX / (int64_t)size);
    if (numel < 0) {
        fio_errf(err, errlen, "%s: shape %s has too many elements (the byte count overflows)", path, shape_str);
        goto fail;
    }
    size_t nbytes = (size_t)numel * size;
    size_t data_off = pre + hlen, avail = m.len - data_off;
    if (avail < nbytes) {
        fio_errf(err, errlen, "%s: truncated: header says %zu bytes of data, file has %zu", path, nbytes, avail);
        goto fail;
    }
    if (avail > nbytes) {
        fio_errf(err, errlen,
                 "%s: %zu unexpected bytes after the %zu bytes of data the header "
                 "describes (shape %s, %s)",
                 path, avail - nbytes, nbytes, shape_str, dtype_name(dt));
        goto fail;
    }
    out->dtype = dt;
    out->ndim = ndim;
    memcpy(out->shape, shape, sizeof shape);
    out->nbytes = nbytes;
    const unsigned char *data = d + data_off;
    if (nbytes > 0 && (uintptr_t)data % size != 0) { /* hand-made header: copy to align */
        void *copy = malloc(nbytes);
        if (!copy) {
            fio_errf(err, errlen, "%s: out of memory copying %zu bytes of unaligned data", path, nbytes);
            memset(out, 0, sizeof *out);
            goto fail;
        }
        memcpy(copy, data, nbytes);
        fio_unmap(&m);
        out->data = copy;
        out->map_base = copy;
        out->map_len = 0;
        return 0;
    }
    out->data = data;
    out->map_base = (void *)m.data;
    out->map_len = m.len;
    return 0;
fail:
    fio_unmap(&m);
    return -1;
}

void npy_free(NpyArray *a) {
    if (a->map_base) {
        if (a->map_len) {
            FileMap m = {a->map_base, a->map_len};
            fio_unmap(&m);
        } else {
            free(a->map_base);
        }
    }
    memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------------------ writing */

int npy_save(const char *path, DType dt, int ndim, const int64_t *shape, const void *data, char *err, size_t errlen) {
    static const char *const descr[] = {"<f4", "<f8", "<i4", "<i8", "|u1"}; /* by DType */
    size_t size = dtype_size(dt);
    if (size == 0) {
        fio_errf(err, errlen, "%s: cannot save: invalid dtype %d", path, (int)dt);
        return -1;
    }
    if (ndim < 0 || ndim > NPY_MAX_DIMS || (ndim > 0 && !shape)) {
        fio_errf(err, errlen, "%s: cannot save: %d dimensions (supported: 0 to %d)", path, ndim, NPY_MAX_DIMS);
        return -1;
    }
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            fio_errf(err, errlen, "%s: cannot save: negative dimension %lld", path, (long long)shape[i]);
            return -1;
        }
    }
    char shape_str[200];
    format_shape(shape_str, sizeof shape_str, ndim, shape);
    int64_t numel = count_elements(ndim, shape, INT64_MAX / (int64_t)size);
    if (numel < 0) {
        fio_errf(err, errlen, "%s: cannot save: shape %s has too many elements", path, shape_str);
        return -1;
    }
    size_t nbytes = (size_t)numel * size;
    if (nbytes > 0 && !data) {
        fio_errf(err, errlen, "%s: cannot save: no data for shape %s", path, shape_str);
        return -1;
    }

    /* Header exactly as NumPy writes it: dict, room to grow shape[0], spaces, '\n'. */
    char hdr[512]; /* (hlen,) chars, hlen < 400 */
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr[dt], shape_str);
    size_t hlen = (size_t)n;
    if (ndim > 0) {
        char first[32];
        size_t digits = (size_t)snprintf(first, sizeof first, "%lld", (long long)shape[0]);
        if (digits < NPY_GROWTH_DIGITS) {
            memset(hdr + hlen, ' ', NPY_GROWTH_DIGITS - digits);
            hlen += NPY_GROWTH_DIGITS - digits;
        }
    }
    size_t pad = NPY_ALIGN - (10 + hlen + 1) % NPY_ALIGN; /* 1..64, as NumPy */
    memset(hdr + hlen, ' ', pad);
    hlen += pad;
    hdr[hlen++] = '\n';
    unsigned char pre[10] = {
        0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};

    AtomicFile f;
    if (fio_atomic_open(&f, path, err, errlen)) return -1;
    if (fio_atomic_write(&f, pre, sizeof pre, err, errlen) || fio_atomic_write(&f, hdr, hlen, err, errlen) ||
        fio_atomic_write(&f, data, nbytes, err, errlen)) {
        fio_atomic_abort(&f);
        return -1;
    }
    return fio_atomic_commit(&f, err, errlen);
}

/* ------------------------------------------------------------------------ checks */

int npy_check_finite(const NpyArray *a, int64_t *bad_index) {
    if (!dtype_is_float(a->dtype)) return 1;
    size_t size = dtype_size(a->dtype), n = a->nbytes / size;
    const unsigned char *p = a->data; /* (n,) elements */
    for (size_t i = 0; i < n; i++) {
        double v;
        if (a->dtype == DT_F32) {
            float x;
            memcpy(&x, p + i * size, sizeof x);
            v = x;
        } else {
            memcpy(&v, p + i * size, sizeof v);
        }
        if (!isfinite(v)) {
            if (bad_index) *bad_index = (int64_t)i;
            return 0;
        }
    }
    return 1;
}

int npy_shape(const char *path, int64_t *shape, int *ndim, char *err, size_t errlen) {
    NpyArray a;
    if (npy_load(path, &a, err, errlen)) return -1;
    *ndim = a.ndim;
    for (int i = 0; i < a.ndim; i++) shape[i] = a.shape[i];
    npy_free(&a);
    return 0;
}
