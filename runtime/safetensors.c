/* safetensors.c - safetensors reader and writer (see safetensors.h for the format).
 *
 * Reading: map the file, check the 8-byte header length against the file, parse the JSON
 * header with the small strict parser of json.c into a node table, then walk the table: every
 * tensor needs a known dtype, a shape of at most 8 non-negative dimensions and data
 * offsets that lie inside the data section and hold exactly product(shape) * dtype_size
 * bytes. Nothing is trusted (json.c bounds-checks every read of the header, checks integers
 * for overflow, limits nesting and refuses duplicate names).
 *
 * Writing: build the header in a JsonBuf (json.h), pad it with spaces to a multiple of 8
 * bytes (so the data section is 8-byte aligned), then write header and data atomically. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "safetensors.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "json.h"

#define ST_MAX_HEADER 100000000u /* the limit the reference implementation uses */

/* ------------------------------------------------------------------------ reading */

static const char *const st_dtype_names[] = {"F32", "F64", "I32", "I64", "U8"}; /* by DType */

/* 0 and *dt set for a supported dtype, 1 for a safetensors dtype dino does not read,
 * 2 for a string that is no safetensors dtype at all. */
static int st_parse_dtype(const char *s, DType *dt) {
    static const char *const other[] = {"F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",
                                        "I8",  "I16",  "U16",     "U32",     "U64",     "BOOL",    "C64"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, st_dtype_names[i]) == 0) {
            *dt = (DType)i;
            return 0;
        }
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (strcmp(s, other[i]) == 0) return 1;
    return 2;
}

static int64_t st_count(int ndim, const int64_t *shape, int64_t max) {
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) return 0;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || n > max / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

/* Fill t from the tensor entry at node, checking it against a data section of data_len
 * bytes. Messages name the file and the tensor. */
static int st_read_tensor(const Json *j, int node, StTensor *t, size_t data_len, const char *path, char *err,
                          size_t errlen) {
    const JsonNode *nd = j->nodes;
    char name[80];
    fio_printable(name, sizeof name, nd[node].key, strlen(nd[node].key), 64);
    if (nd[node].type != JSON_OBJECT) {
        fio_errf(err, errlen,
                 "%s: tensor '%s': expected an object with dtype, shape and "
                 "data_offsets",
                 path, name);
        return -1;
    }
    int dtype_node = -1, shape_node = -1, off_node = -1;
    for (int c = nd[node].first; c >= 0; c = nd[c].next) {
        if (strcmp(nd[c].key, "dtype") == 0) dtype_node = c;
        else if (strcmp(nd[c].key, "shape") == 0) shape_node = c;
        else if (strcmp(nd[c].key, "data_offsets") == 0) off_node = c;
        else {
            char key[80];
            fio_printable(key, sizeof key, nd[c].key, strlen(nd[c].key), 64);
            fio_errf(err, errlen, "%s: tensor '%s': unexpected key '%s'", path, name, key);
            return -1;
        }
    }
    if (dtype_node < 0 || shape_node < 0 || off_node < 0) {
        fio_errf(err, errlen, "%s: tensor '%s': missing '%s'", path, name,
                 dtype_node < 0       ? "dtype"
                     : shape_node < 0 ? "shape"
                                      : "data_offsets");
        return -1;
    }
    if (nd[dtype_node].type != JSON_STRING) {
        fio_errf(err, errlen, "%s: tensor '%s': 'dtype' must be a string", path, name);
        return -1;
    }
    int kind = st_parse_dtype(nd[dtype_node].str, &t->dtype);
    if (kind != 0) {
        char dt[40];
        fio_printable(dt, sizeof dt, nd[dtype_node].str, strlen(nd[dtype_node].str), 16);
        fio_errf(err, errlen,
                 "%s: tensor '%s': unsupported dtype '%s'%s; dino reads F32, F64, "
                 "I32, I64 and U8",
                 path, name, dt, kind == 2 ? " (not a safetensors dtype)" : "");
        return -1;
    }
    if (nd[shape_node].type != JSON_ARRAY || nd[shape_node].count > ST_MAX_DIMS) {
        fio_errf(err, errlen,
                 "%s: tensor '%s': 'shape' must be an array of at most %d "
                 "non-negative integers",
                 path, name, ST_MAX_DIMS);
        return -1;
    }
    t->ndim = 0;
    for (int c = nd[shape_node].first; c >= 0; c = nd[c].next) {
        if (nd[c].type != JSON_INT || nd[c].ival < 0) {
            fio_errf(err, errlen,
                     "%s: tensor '%s': 'shape' must be an array of at most %d "
                     "non-negative integers",
                     path, name, ST_MAX_DIMS);
            return -1;
        }
        t->shape[t->ndim++] = nd[c].ival;
    }
    int b = nd[off_node].first, e = b >= 0 ? nd[b].next : -1;
    if (nd[off_node].type != JSON_ARRAY || nd[off_node].count != 2 || nd[b].type != JSON_INT ||
        nd[e].type != JSON_INT || nd[b].ival < 0 || nd[e].ival < 0) {
        fio_errf(err, errlen,
                 "%s: tensor '%s': 'data_offsets' must be [begin, end] with "
                 "non-negative integers",
                 path, name);
        return -1;
    }
    int64_t begin = nd[b].ival, end = nd[e].ival;
    if (begin > end || (uint64_t)end > (uint64_t)data_len) {
        fio_errf(err, errlen,
                 "%s: tensor '%s': data_offsets [%lld, %lld] out of range; the data "
                 "section has %zu bytes",
                 path, name, (long long)begin, (long long)end, data_len);
        return -1;
    }
    size_t size = dtype_size(t->dtype);
    int64_t numel = st_count(t->ndim, t->shape, INT64_MAX / (int64_t)size);
    if (numel < 0 || (uint64_t)(end - begin) != (uint64_t)numel * size) {
        char shp[200];
        size_t k = (size_t)snprintf(shp, sizeof shp, "[");
        for (int i = 0; i < t->ndim && k < sizeof shp; i++)
            k += (size_t)snprintf(shp + k, sizeof shp - k, "%s%lld", i ? "," : "", (long long)t->shape[i]);
        if (k < sizeof shp) snprintf(shp + k, sizeof shp - k, "]");
        if (numel < 0) fio_errf(err, errlen, "%s: tensor '%s': shape %s has too many elements", path, name, shp);
        else
            fio_errf(err, errlen,
                     "%s: tensor '%s': data_offsets [%lld, %lld] hold %lld bytes but "
                     "shape %s of %s needs %llu",
                     path, name, (long long)begin, (long long)end, (long long)(end - begin), shp,
                     st_dtype_names[t->dtype], (unsigned long long)numel * size);
        return -1;
    }
    t->begin = (size_t)begin;
    t->end = (size_t)end;
    return 0;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* The entries of "__metadata__": an object of strings. */
static int st_read_meta(const Json *j, int node, Safetensors *s, const char *path, char *err, size_t errlen) {
    const JsonNode *nd = j->nodes;
    if (nd[node].type != JSON_OBJECT) {
        fio_errf(err, errlen, "%s: '__metadata__' must be an object of strings", path);
        return -1;
    }
    int n = nd[node].count;
    s->meta_keys = calloc((size_t)n + 1, sizeof *s->meta_keys);
    s->meta_vals = calloc((size_t)n + 1, sizeof *s->meta_vals);
    if (!s->meta_keys || !s->meta_vals) goto oom;
    for (int c = nd[node].first; c >= 0; c = nd[c].next) {
        if (nd[c].type != JSON_STRING) {
            char key[80];
            fio_printable(key, sizeof key, nd[c].key, strlen(nd[c].key), 64);
            fio_errf(err, errlen, "%s: '__metadata__' entry '%s' must be a string", path, key);
            return -1;
        }
        s->meta_keys[s->n_meta] = dup_str(nd[c].key);
        s->meta_vals[s->n_meta] = dup_str(nd[c].str);
        s->n_meta++;
        if (!s->meta_keys[s->n_meta - 1] || !s->meta_vals[s->n_meta - 1]) goto oom;
    }
    return 0;
oom:
    fio_errf(err, errlen, "%s: out of memory", path);
    return -1;
}

/* Copy every tensor into one heap block, each at an 8-byte aligned offset. */
static int st_copy_aligned(Safetensors *s, const unsigned char *data, const char *path, char *err, size_t errlen) {
    size_t total = 8;
    for (int i = 0; i < s->n; i++) {
        size_t nb = s->tensors[i].end - s->tensors[i].begin, r = (nb + 7) & ~(size_t)7;
        if (r < nb || total > SIZE_MAX - r) goto oom;
        total += r;
    }
    unsigned char *block = malloc(total); /* (total,) bytes */
    if (!block) goto oom;
    size_t off = 0;
    for (int i = 0; i < s->n; i++) {
        StTensor *t = &s->tensors[i];
        size_t nb = t->end - t->begin;
        if (nb) memcpy(block + off, data + t->begin, nb);
        t->data = block + off;
        off += (nb + 7) & ~(size_t)7;
    }
    s->map_base = block;
    s->map_len = 0;
    return 0;
oom:
    fio_errf(err, errlen, "%s: out of memory copying unaligned tensors", path);
    return -1;
}

int st_load(const char *path, Safetensors *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    FileMap m;
    if (fio_map(path, &m, err, errlen)) return -1;
    const unsigned char *d = m.data; /* (m.len,) bytes of the file */
    if (m.len == 0) {
        fio_errf(err, errlen, "%s: empty file (0 bytes); not a safetensors file", path);
        return -1;
    }
    if (m.len < 8) {
        fio_errf(err, errlen, "%s: truncated: %zu bytes, too short for a safetensors file", path, m.len);
        fio_unmap(&m);
        return -1;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | d[i];
    if (hlen > ST_MAX_HEADER || hlen > m.len - 8) {
        fio_errf(err, errlen,
                 "%s: header length %llu is larger than the %s (%zu bytes); the file "
                 "is truncated or not a safetensors file",
                 path, (unsigned long long)hlen, hlen > ST_MAX_HEADER ? "limit" : "rest of the file",
                 hlen > ST_MAX_HEADER ? (size_t)ST_MAX_HEADER : m.len - 8);
        fio_unmap(&m);
        return -1;
    }
    const unsigned char *data = d + 8 + hlen; /* the data section, (data_len,) bytes */
    size_t data_len = m.len - 8 - (size_t)hlen;
    Json j;
    if (json_parse(&j, (const char *)d + 8, (size_t)hlen, path, "header", "tensor name", err, errlen)) goto fail;
    const JsonNode *nd = j.nodes;
    int n_tensors = nd[0].count;
    for (int c = nd[0].first; c >= 0; c = nd[c].next)
        if (strcmp(nd[c].key, "__metadata__") == 0) n_tensors--;
    out->tensors = calloc((size_t)n_tensors + 1, sizeof *out->tensors);
    if (!out->tensors) {
        fio_errf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    int misaligned = 0;
    for (int c = nd[0].first; c >= 0; c = nd[c].next) {
        if (strcmp(nd[c].key, "__metadata__") == 0) {
            if (st_read_meta(&j, c, out, path, err, errlen)) goto fail;
            continue;
        }
        StTensor *t = &out->tensors[out->n];
        if (st_read_tensor(&j, c, t, data_len, path, err, errlen)) goto fail;
        if (!(t->name = dup_str(nd[c].key))) {
            fio_errf(err, errlen, "%s: out of memory", path);
            goto fail;
        }
        out->n++;
        t->data = data + t->begin;
        if (t->end > t->begin && (uintptr_t)t->data % dtype_size(t->dtype) != 0) misaligned = 1;
    }
    json_free(&j);
    if (misaligned) {
        if (st_copy_aligned(out, data, path, err, errlen)) goto fail;
        fio_unmap(&m);
        return 0;
    }
    out->map_base = (void *)m.data;
    out->map_len = m.len;
    return 0;
fail:
    json_free(&j);
    st_free(out);
    fio_unmap(&m);
    return -1;
}

const StTensor *st_find(const Safetensors *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->tensors[i].name, name) == 0) return &s->tensors[i];
    return NULL;
}

const char *st_meta(const Safetensors *s, const char *key) {
    for (int i = 0; i < s->n_meta; i++)
        if (strcmp(s->meta_keys[i], key) == 0) return s->meta_vals[i];
    return NULL;
}

void st_free(Safetensors *s) {
    for (int i = 0; i < s->n; i++) free(s->tensors[i].name);
    free(s->tensors);
    for (int i = 0; i < s->n_meta; i++) {
        free(s->meta_keys[i]);
        free(s->meta_vals[i]);
    }
    free(s->meta_keys);
    free(s->meta_vals);
    if (s->map_base) {
        if (s->map_len) {
            FileMap m = {s->map_base, s->map_len};
            fio_unmap(&m);
        } else {
            free(s->map_base);
        }
    }
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------------ writing */

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* 1 if names[0..n) has a repeat; *dup set to it. */
static int has_duplicate(const char *const *names, int n, const char **dup) {
    if (n < 2) return 0;
    const char **sorted = malloc((size_t)n * sizeof *sorted); /* (n,) */
    if (!sorted) return 0; /* the writer fails on memory elsewhere; not a duplicate */
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str);
    int found = 0;
    for (int i = 1; i < n && !found; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            *dup = sorted[i];
            found = 1;
        }
    free(sorted);
    return found;
}

/* Check the arguments of st_save and compute each tensor's byte count into nbytes (n,). */
static int st_check_args(const char *path, const StWriteTensor *t, int n, const char *const *meta_keys,
                         const char *const *meta_vals, int n_meta, size_t *nbytes, char *err, size_t errlen) {
    if (n < 0 || n_meta < 0 || (n > 0 && !t) || (n_meta > 0 && (!meta_keys || !meta_vals))) {
        fio_errf(err, errlen, "%s: cannot save: bad tensor or metadata list", path);
        return -1;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const StWriteTensor *w = &t[i];
        if (!w->name || !w->name[0] || strcmp(w->name, "__metadata__") == 0) {
            fio_errf(err, errlen, "%s: cannot save: tensor %d has %s name", path, i,
                     !w->name || !w->name[0] ? "an empty" : "the reserved");
            return -1;
        }
        size_t size = dtype_size(w->dtype);
        int64_t numel = -1;
        int dims_ok = size > 0 && w->ndim >= 0 && w->ndim <= ST_MAX_DIMS && (w->ndim == 0 || w->shape);
        if (dims_ok) numel = st_count(w->ndim, w->shape, INT64_MAX / (int64_t)size);
        if (numel < 0) {
            fio_errf(err, errlen, "%s: cannot save: tensor '%s' has an invalid dtype or shape", path, w->name);
            return -1;
        }
        nbytes[i] = (size_t)numel * size;
        if (nbytes[i] > 0 && !w->data) {
            fio_errf(err, errlen, "%s: cannot save: tensor '%s' has no data", path, w->name);
            return -1;
        }
        if (nbytes[i] > (size_t)INT64_MAX - total) {
            fio_errf(err, errlen, "%s: cannot save: tensors too large", path);
            return -1;
        }
        total += nbytes[i];
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta_keys[i] || !meta_vals[i]) {
            fio_errf(err, errlen, "%s: cannot save: metadata entry %d is NULL", path, i);
            return -1;
        }
    }
    const char **names = malloc(((size_t)n + 1) * sizeof *names); /* (n,) */
    if (!names) {
        fio_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (int i = 0; i < n; i++) names[i] = t[i].name;
    const char *dup = NULL;
    int bad = has_duplicate(names, n, &dup);
    free(names);
    if (bad || has_duplicate(meta_keys, n_meta, &dup)) {
        fio_errf(err, errlen, "%s: cannot save: duplicate %s '%s'", path, bad ? "tensor name" : "metadata key", dup);
        return -1;
    }
    return 0;
}

int st_save(const char *path, const StWriteTensor *t, int n, const char *const *meta_keys, const char *const *meta_vals,
            int n_meta, char *err, size_t errlen) {
    size_t *nbytes = malloc(((size_t)(n > 0 ? n : 0) + 1) * sizeof *nbytes); /* (n,) */
    if (!nbytes) {
        fio_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    if (st_check_args(path, t, n, meta_keys, meta_vals, n_meta, nbytes, err, errlen)) {
        free(nbytes);
        return -1;
    }
    JsonBuf h = {0};
    jbuf_putn(&h, "{", 1);
    if (n_meta > 0) {
        jbuf_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) jbuf_putn(&h, ",", 1);
            jbuf_string(&h, meta_keys[i]);
            jbuf_putn(&h, ":", 1);
            jbuf_string(&h, meta_vals[i]);
        }
        jbuf_puts(&h, n > 0 ? "}," : "}");
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (i) jbuf_putn(&h, ",", 1);
        jbuf_string(&h, t[i].name);
        jbuf_puts(&h, ":{\"dtype\":\"");
        jbuf_puts(&h, st_dtype_names[t[i].dtype]);
        jbuf_puts(&h, "\",\"shape\":[");
        for (int k = 0; k < t[i].ndim; k++) {
            if (k) jbuf_putn(&h, ",", 1);
            jbuf_int(&h, (long long)t[i].shape[k]);
        }
        jbuf_puts(&h, "],\"data_offsets\":[");
        jbuf_int(&h, (long long)off);
        jbuf_putn(&h, ",", 1);
        jbuf_int(&h, (long long)(off + nbytes[i]));
        jbuf_puts(&h, "]}");
        off += nbytes[i];
    }
    jbuf_putn(&h, "}", 1);
    while (!h.oom && h.len % 8 != 0) jbuf_putn(&h, " ", 1);
    if (h.oom) {
        fio_errf(err, errlen, "%s: out of memory building the header", path);
        free(h.p);
        free(nbytes);
        return -1;
    }
    unsigned char len8[8]; /* the header length, little-endian */
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    AtomicFile f;
    int rc = fio_atomic_open(&f, path, err, errlen);
    if (rc == 0) rc = fio_atomic_write(&f, len8, 8, err, errlen);
    if (rc == 0) rc = fio_atomic_write(&f, h.p, h.len, err, errlen);
    for (int i = 0; i < n && rc == 0; i++) rc = fio_atomic_write(&f, t[i].data, nbytes[i], err, errlen);
    if (rc == 0) rc = fio_atomic_commit(&f, err, errlen);
    else if (f.path) fio_atomic_abort(&f);
    free(h.p);
    free(nbytes);
    return rc;
}
