/* npy.c: NumPy .npy (format version 1.0) float64 writer and strict reader; see npy.h.
 *
 * Layout written: "\x93NUMPY", bytes 1 0, uint16 little-endian header length L, then L bytes of
 *   {'descr': '<f8', 'fortran_order': False, 'shape': (d0, d1, ...), }
 * padded with spaces and ending in '\n' so that 10 + L is a multiple of 64, then the data in C
 * order as little-endian IEEE-754 doubles. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "npy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int host_is_little(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static const char DICT_HEAD[] = "{'descr': '<f8', 'fortran_order': False, 'shape': (";

size_t npy_header(char *buf, size_t cap, int ndim, const uint64_t *shape) {
    if (ndim < 0 || ndim > NPY_MAX_DIMS) return 0;
    char dict[512];
    size_t len = (size_t)snprintf(dict, sizeof dict, "%s", DICT_HEAD);
    for (int i = 0; i < ndim; i++)
        len += (size_t)snprintf(dict + len, sizeof dict - len, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
    len += (size_t)snprintf(dict + len, sizeof dict - len, "%s), }", ndim == 1 ? "," : "");
    /* 10 bytes of preamble + dict + padding + '\n' = multiple of 64. */
    size_t total = 10 + len + 1;
    total = (total + 63) / 64 * 64;
    const size_t hlen = total - 10;
    if (hlen > 65535 || total > cap) return 0;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, dict, len);
    memset(buf + 10 + len, ' ', hlen - len - 1);
    buf[total - 1] = '\n';
    return total;
}

static char *join_path(const char *dir, const char *name) {
    const size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

int npy_open(npy_writer *w, const char *dir, const char *name, int ndim, const uint64_t *shape, char *err,
             size_t errlen) {
    memset(w, 0, sizeof *w);
    char hdr[1024];
    const size_t hs = npy_header(hdr, sizeof hdr, ndim, shape);
    if (!hs) {
        set_err(err, errlen, "%s: invalid array shape", name);
        return -1;
    }
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] && count > UINT64_MAX / 8 / shape[i]) {
            set_err(err, errlen, "%s: array too large", name);
            return -1;
        }
        count *= shape[i];
    }
    char tmpname[256];
    snprintf(tmpname, sizeof tmpname, ".%s.tmp.%ld", name, (long)getpid());
    w->final_path = join_path(dir, name);
    w->tmp_path = join_path(dir, tmpname);
    if (!w->final_path || !w->tmp_path) {
        set_err(err, errlen, "out of memory");
        npy_abort(w);
        return -1;
    }
    w->fp = fopen(w->tmp_path, "wb");
    if (!w->fp) {
        set_err(err, errlen, "cannot write '%s': %s", w->tmp_path, strerror(errno));
        free(w->tmp_path); /* nothing to unlink */
        w->tmp_path = NULL;
        npy_abort(w);
        return -1;
    }
    w->expect = count;
    if (fwrite(hdr, 1, hs, w->fp) != hs) {
        set_err(err, errlen, "cannot write '%s': %s", w->tmp_path, strerror(errno));
        npy_abort(w);
        return -1;
    }
    return 0;
}

int npy_write(npy_writer *w, const double *x, size_t count) {
    if (!w->fp || count > w->expect - w->written) return -1;
    if (host_is_little()) {
        if (fwrite(x, sizeof(double), count, w->fp) != count) return -1;
    } else {
        for (size_t i = 0; i < count; i++) {
            uint64_t v;
            unsigned char b[8];
            memcpy(&v, &x[i], 8);
            for (int t = 0; t < 8; t++) b[t] = (unsigned char)(v >> (8 * t));
            if (fwrite(b, 1, 8, w->fp) != 8) return -1;
        }
    }
    w->written += count;
    return 0;
}

int npy_commit(npy_writer *w, char *err, size_t errlen) {
    if (!w->fp) {
        set_err(err, errlen, "npy writer not open");
        return -1;
    }
    if (w->written != w->expect) {
        set_err(err, errlen, "'%s': wrote %llu of %llu values", w->final_path, (unsigned long long)w->written,
                (unsigned long long)w->expect);
        npy_abort(w);
        return -1;
    }
    int bad = fflush(w->fp) != 0 || ferror(w->fp) || fsync(fileno(w->fp)) != 0;
    const int e1 = errno;
    bad |= fclose(w->fp) != 0;
    w->fp = NULL;
    if (bad) {
        set_err(err, errlen, "cannot write '%s': %s", w->tmp_path, strerror(e1 ? e1 : errno));
        npy_abort(w);
        return -1;
    }
    if (rename(w->tmp_path, w->final_path) != 0) {
        set_err(err, errlen, "cannot rename '%s' to '%s': %s", w->tmp_path, w->final_path, strerror(errno));
        npy_abort(w);
        return -1;
    }
    free(w->tmp_path);
    free(w->final_path);
    memset(w, 0, sizeof *w);
    return 0;
}

void npy_abort(npy_writer *w) {
    if (w->fp) fclose(w->fp);
    if (w->tmp_path) unlink(w->tmp_path);
    free(w->tmp_path);
    free(w->final_path);
    memset(w, 0, sizeof *w);
}

/* ------------------------------------------------------------------------------------- reader */

static int rd_u64(const char **s, uint64_t *v) {
    const char *p = *s;
    if (*p < '0' || *p > '9') return -1;
    uint64_t x = 0;
    while (*p >= '0' && *p <= '9') {
        const unsigned dgt = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - dgt) / 10) return -1;
        x = x * 10 + dgt;
        p++;
    }
    *s = p;
    *v = x;
    return 0;
}

double *npy_load(const char *path, int *ndim, uint64_t shape[NPY_MAX_DIMS], size_t *hdr_size, char *err,
                 size_t errlen) {
    FILE *fp = fopen(path, "rb");
    char *hdr = NULL;
    double *data = NULL;
    if (!fp) {
        set_err(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    unsigned char pre[12];
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        set_err(err, errlen, "'%s': not an .npy file", path);
        goto fail;
    }
    size_t hlen, pre_len;
    if (pre[6] == 1 && pre[7] == 0) {
        hlen = pre[8] | (size_t)pre[9] << 8;
        pre_len = 10;
    } else if (pre[6] == 2 && pre[7] == 0) {
        if (fread(pre + 10, 1, 2, fp) != 2) goto trunc;
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        pre_len = 12;
    } else {
        set_err(err, errlen, "'%s': unsupported .npy version %d.%d", path, pre[6], pre[7]);
        goto fail;
    }
    if ((pre_len + hlen) % 64 != 0) {
        set_err(err, errlen, "'%s': header size %zu is not a multiple of 64", path, pre_len + hlen);
        goto fail;
    }
    hdr = malloc(hlen + 1);
    if (!hdr) goto fail;
    if (fread(hdr, 1, hlen, fp) != hlen) goto trunc;
    hdr[hlen] = 0;
    if (hlen == 0 || hdr[hlen - 1] != '\n' || strlen(hdr) != hlen) {
        set_err(err, errlen, "'%s': header does not end in a newline", path);
        goto fail;
    }
    const char *s = hdr;
    if (strncmp(s, DICT_HEAD, sizeof DICT_HEAD - 1) != 0) {
        set_err(err, errlen, "'%s': header is not {'descr': '<f8', 'fortran_order': False, ...}", path);
        goto fail;
    }
    s += sizeof DICT_HEAD - 1;
    int nd = 0;
    uint64_t count = 1;
    while (*s != ')') {
        if (nd == NPY_MAX_DIMS || rd_u64(&s, &shape[nd]) != 0) {
            set_err(err, errlen, "'%s': bad shape in header", path);
            goto fail;
        }
        if (shape[nd] && count > UINT64_MAX / 8 / shape[nd]) {
            set_err(err, errlen, "'%s': array too large", path);
            goto fail;
        }
        count *= shape[nd++];
        if (*s == ',') s++;
        if (*s == ' ') s++;
    }
    s++;
    if (strncmp(s, ", }", 3) != 0 && strncmp(s, "}", 1) != 0) {
        set_err(err, errlen, "'%s': bad end of header dict", path);
        goto fail;
    }
    s += *s == ',' ? 3 : 1;
    while (*s == ' ') s++;
    if (*s != '\n' || s[1] != 0) {
        set_err(err, errlen, "'%s': bad header padding", path);
        goto fail;
    }
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || (uint64_t)sb.st_size != pre_len + hlen + 8 * count) {
        set_err(err, errlen, "'%s': file size does not match shape", path);
        goto fail;
    }
    data = malloc(count ? 8 * count : 1);
    if (!data) {
        set_err(err, errlen, "'%s': out of memory", path);
        goto fail;
    }
    if (fread(data, 8, count, fp) != count) goto trunc;
    if (!host_is_little()) {
        for (uint64_t i = 0; i < count; i++) {
            unsigned char b[8];
            memcpy(b, &data[i], 8);
            uint64_t v = 0;
            for (int t = 0; t < 8; t++) v |= (uint64_t)b[t] << (8 * t);
            memcpy(&data[i], &v, 8);
        }
    }
    fclose(fp);
    free(hdr);
    *ndim = nd;
    if (hdr_size) *hdr_size = pre_len + hlen;
    return data;
trunc:
    set_err(err, errlen, "'%s': truncated", path);
fail:
    fclose(fp);
    free(hdr);
    free(data);
    return NULL;
}
