/* idx.c - IDX reader for MNIST-style data, gzip or plain (see idx.h).
 *
 * zlib's gzread reads gzip and plain files alike. The header is checked before anything
 * is allocated, and the data buffer grows as bytes actually arrive, so a 16-byte file that
 * claims 4 GiB costs nothing. After the data the file must end: a short read is reported
 * as truncation (zlib reports a cut gzip stream as Z_BUF_ERROR, not as an error return),
 * extra bytes as a mismatch with the header. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fileio.h"

#define IDX_FIRST_CHUNK ((size_t)1 << 20)

typedef struct {
    unsigned char code; /* the type byte in the header */
    size_t src_size;    /* bytes per element in the file */
    DType dtype;        /* what it is stored as in memory */
} IdxType;

static const IdxType idx_types[] = {
    {0x08, 1, DT_U8}, {0x09, 1, DT_I32}, {0x0B, 2, DT_I32}, {0x0C, 4, DT_I32}, {0x0D, 4, DT_F32}, {0x0E, 8, DT_F64},
};

/* zlib's message, without the "path: " prefix gzerror puts in front of some of them. */
static const char *gz_message(gzFile gz, const char *path, int *code) {
    const char *msg = gzerror(gz, code);
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ') msg += n + 2;
    return msg;
}

/* Read up to n bytes into buf (n,); returns the count (short at end of input) or -1 with
 * err set on a read or decompression error. */
static int64_t read_full(gzFile gz, unsigned char *buf, size_t n, const char *path, char *err, size_t errlen) {
    size_t got = 0;
    while (got < n) {
        size_t want = n - got > ((size_t)1 << 30) ? (size_t)1 << 30 : n - got;
        int r = gzread(gz, buf + got, (unsigned)want);
        if (r < 0) {
            int code;
            const char *msg = gz_message(gz, path, &code);
            fio_errf(err, errlen, "%s: read error: %s", path, msg);
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

/* " (the gzip stream is cut short)" when zlib saw a truncated stream, else "". */
static const char *gz_cut_note(gzFile gz, const char *path) {
    int code;
    gz_message(gz, path, &code);
    return code == Z_BUF_ERROR ? " (the gzip stream is cut short)" : "";
}

/* Big-endian file bytes to host values, in place. buf: (n * out_size,) bytes, of which
 * the first n * t->src_size hold the file's data. Widening runs backwards so that no
 * element is overwritten before it is read. */
static void convert(unsigned char *buf, size_t n, const IdxType *t) {
    if (t->code == 0x09) {
        for (size_t i = n; i-- > 0;) {
            int32_t v = buf[i] >= 128 ? (int32_t)buf[i] - 256 : (int32_t)buf[i];
            memcpy(buf + 4 * i, &v, 4);
        }
    } else if (t->code == 0x0B) {
        for (size_t i = n; i-- > 0;) {
            int32_t u = (int32_t)buf[2 * i] << 8 | buf[2 * i + 1];
            int32_t v = u >= 32768 ? u - 65536 : u;
            memcpy(buf + 4 * i, &v, 4);
        }
    } else if (t->src_size == 4) {
        for (size_t i = 0; i < n; i++) {
            unsigned char *p = buf + 4 * i;
            uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            memcpy(p, &v, 4);
        }
    } else if (t->src_size == 8) {
        for (size_t i = 0; i < n; i++) {
            unsigned char *p = buf + 8 * i;
            uint64_t v = 0;
            for (int k = 0; k < 8; k++) v = v << 8 | p[k];
            memcpy(p, &v, 8);
        }
    }
}

int idx_load(const char *path, IdxArray *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        fio_errf(err, errlen, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        return -1;
    }
    gzbuffer(gz, 1u << 17);
    unsigned char *buf = NULL; /* (cap,) bytes; becomes the data */
    unsigned char hdr[4 + 4 * IDX_MAX_DIMS];
    int64_t got = read_full(gz, hdr, 4, path, err, errlen);
    if (got < 0) goto fail;
    if (got == 0) {
        fio_errf(err, errlen, "%s: empty file; not an IDX file", path);
        goto fail;
    }
    if (got < 4) {
        fio_errf(err, errlen, "%s: truncated: the file ends inside the IDX header", path);
        goto fail;
    }
    if (hdr[0] != 0 || hdr[1] != 0) {
        fio_errf(err, errlen,
                 "%s: not an IDX file (bad magic %02x %02x %02x %02x; expected "
                 "00 00 <type> <ndim>)",
                 path, hdr[0], hdr[1], hdr[2], hdr[3]);
        goto fail;
    }
    const IdxType *type = NULL;
    for (size_t i = 0; i < sizeof idx_types / sizeof idx_types[0]; i++)
        if (idx_types[i].code == hdr[2]) type = &idx_types[i];
    if (!type) {
        fio_errf(err, errlen,
                 "%s: unknown IDX type code 0x%02X; expected 0x08, 0x09, 0x0B, 0x0C, "
                 "0x0D or 0x0E",
                 path, hdr[2]);
        goto fail;
    }
    int ndim = hdr[3];
    if (ndim < 1 || ndim > IDX_MAX_DIMS) {
        fio_errf(err, errlen, "%s: IDX file with %d dimensions; supported: 1 to %d", path, ndim, IDX_MAX_DIMS);
        goto fail;
    }
    got = read_full(gz, hdr + 4, 4 * (size_t)ndim, path, err, errlen);
    if (got < 0) goto fail;
    if (got < 4 * ndim) {
        fio_errf(err, errlen, "%s: truncated: the file ends inside the IDX dimensions%s", path, gz_cut_note(gz, path));
        goto fail;
    }

    /* Element count, capped so that the converted data fits in IDX_MAX_BYTES. */
    size_t out_size = dtype_size(type->dtype), max_elems = IDX_MAX_BYTES / out_size, numel = 1;
    int too_big = 0, empty = 0;
    char dims[100]; /* "60000 x 28 x 28", for messages */
    size_t k = 0;
    for (int i = 0; i < ndim; i++) {
        const unsigned char *p = hdr + 4 + 4 * i;
        uint32_t d = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        out->shape[i] = d;
        k += (size_t)snprintf(dims + k, sizeof dims - k, "%s%lu", i ? " x " : "", (unsigned long)d);
        if (d == 0) empty = 1;
        else if (numel > max_elems / d) too_big = 1;
        else numel *= d;
    }
    if (empty) numel = 0;
    if (too_big && !empty) {
        fio_errf(err, errlen, "%s: IDX dimensions %s are too large (more than %zu GiB of data)", path, dims,
                 IDX_MAX_BYTES >> 30);
        goto fail;
    }
    size_t src_bytes = numel * type->src_size, out_bytes = numel * out_size;

    /* The data: grow the buffer only as bytes arrive. */
    size_t cap = 0, have = 0;
    while (have < src_bytes) {
        if (have == cap) {
            size_t ncap = cap ? cap * 2 : IDX_FIRST_CHUNK;
            if (ncap > src_bytes) ncap = src_bytes;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                fio_errf(err, errlen, "%s: out of memory reading %zu bytes", path, src_bytes);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        size_t want = cap - have;
        got = read_full(gz, buf + have, want, path, err, errlen);
        if (got < 0) goto fail;
        have += (size_t)got;
        if ((size_t)got < want) break; /* short read: end of input */
    }
    if (have < src_bytes) {
        fio_errf(err, errlen, "%s: truncated: header says %zu bytes of data (%s), file has %zu%s", path, src_bytes,
                 dims, have, gz_cut_note(gz, path));
        goto fail;
    }
    unsigned char extra[1];
    got = read_full(gz, extra, 1, path, err, errlen);
    if (got < 0) goto fail;
    if (got > 0) {
        fio_errf(err, errlen,
                 "%s: unexpected bytes after the %zu bytes of data the header "
                 "describes (%s)",
                 path, src_bytes, dims);
        goto fail;
    }
    if (*gz_cut_note(gz, path)) {
        fio_errf(err, errlen, "%s: truncated: the gzip stream is cut short after the data", path);
        goto fail;
    }
    size_t alloc = out_bytes ? out_bytes : 1;
    unsigned char *nb = realloc(buf, alloc); /* widen i8/i16 to i32; at least one byte */
    if (!nb) {
        fio_errf(err, errlen, "%s: out of memory converting %zu bytes", path, out_bytes);
        goto fail;
    }
    buf = nb;
    convert(buf, numel, type);
    gzclose(gz);
    out->dtype = type->dtype;
    out->ndim = ndim;
    out->data = buf;
    out->nbytes = out_bytes;
    return 0;
fail:
    free(buf);
    gzclose(gz);
    memset(out, 0, sizeof *out);
    return -1;
}

void idx_free(IdxArray *a) {
    free(a->data);
    memset(a, 0, sizeof *a);
}
