/* test_idx.c - tests of idx.c: every type code through plain and gzip files written here
 * (big-endian conversion and i8/i16 widening), every rejected header with its message,
 * truncated and corrupted gzip streams, prefix sweeps, and the real MNIST files when
 * DINO_SHARED_DIR/data/mnist has them (else a SKIP: line). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "idx.h"
#include "harness.h"
#include "test_formats.h"

static void put_be(unsigned char *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
}

/* Write an IDX file: 00 00 code ndim, the dims big-endian, then payload (n,) bytes (already
 * big-endian); through zlib's gzopen "wb" when gz. Returns the path. */
static const char *make_idx(T *t, const char *name, int gz, unsigned code, int ndim, const uint32_t *dims,
                            const void *payload, size_t n) {
    size_t len = 4 + 4 * (size_t)ndim + n;
    unsigned char *buf = malloc(len); /* (len,) the uncompressed file */
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = (unsigned char)code;
    buf[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) put_be(buf + 4 + 4 * i, dims[i], 4);
    if (n) memcpy(buf + 4 + 4 * ndim, payload, n);
    const char *path = t_path(t, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (f) {
            gzwrite(f, buf, (unsigned)len);
            gzclose(f);
        }
    } else {
        t_write_file(path, buf, len);
    }
    free(buf);
    return path;
}

/* ------------------------------------------------------------------------ every type */

static void test_types(T *t) {
    char err[512];
    IdxArray a;
    for (int gz = 0; gz <= 1; gz++) {
        /* u8, 3-d */
        unsigned char u8[24];
        for (int i = 0; i < 24; i++) u8[i] = (unsigned char)(i * 11);
        const char *p =
            make_idx(t, gz ? "u8.idx.gz" : "u8.idx", gz, 0x08, 3, (const uint32_t[]){2, 3, 4}, u8, sizeof u8);
        if (CHECK_OK(t, idx_load(p, &a, err, sizeof err), err)) {
            CHECK(t,
                  a.dtype == DT_U8 && a.ndim == 3 && a.shape[0] == 2 && a.shape[1] == 3 && a.shape[2] == 4 &&
                      a.nbytes == 24);
            CHECK(t, memcmp(a.data, u8, 24) == 0);
            idx_free(&a);
            idx_free(&a);
        }
        /* i8 -> int32 */
        const int8_t i8v[5] = {-128, -1, 0, 1, 127};
        unsigned char i8b[5];
        for (int i = 0; i < 5; i++) i8b[i] = (unsigned char)(i8v[i] & 0xff);
        p = make_idx(t, "i8.idx", gz, 0x09, 1, (const uint32_t[]){5}, i8b, 5);
        if (CHECK_OK(t, idx_load(p, &a, err, sizeof err), err)) {
            const int32_t *v = a.data;
            CHECK(t, a.dtype == DT_I32 && a.nbytes == 20);
            for (int i = 0; i < 5; i++) CHECK(t, v[i] == i8v[i]);
            idx_free(&a);
        }
        /* i16 -> int32 */
        const int16_t i16v[5] = {-32768, -2, 0, 300, 32767};
        unsigned char i16b[10];
        for (int i = 0; i < 5; i++) put_be(i16b + 2 * i, (uint16_t)i16v[i], 2);
        p = make_idx(t, "i16.idx", gz, 0x0B, 1, (const uint32_t[]){5}, i16b, 10);
        if (CHECK_OK(t, idx_load(p, &a, err, sizeof err), err)) {
            const int32_t *v = a.data;
            CHECK(t, a.dtype == DT_I32 && a.nbytes == 20);
            for (int i = 0; i < 5; i++) CHECK(t, v[i] == i16v[i]);
            idx_free(&a);
        }
        /* i32 */
        const int32_t i32v[4] = {INT32_MIN, -2, 70000, INT32_MAX};
        unsigned char i32b[16];
        for (int i = 0; i < 4; i++) put_be(i32b + 4 * i, (uint32_t)i32v[i], 4);
        p = make_idx(t, "i32.idx", gz, 0x0C, 2, (const uint32_t[]){2, 2}, i32b, 16);
        if (CHECK_OK(t, idx_load(p, &a, err, sizeof err), err)) {
            CHECK(t, a.dtype == DT_I32 && a.ndim == 2 && memcmp(a.data, i32v, 16) == 0);
            idx_free(&a);
        }
        /* f32 */
        const float f32v[3] = {1.5f, -2.25f, 3e38f};
        unsigned char f32b[12];
        for (int i = 0; i < 3; i++) {
            uint32_t bits;
            memcpy(&bits, &f32v[i], 4);
            put_be(f32b + 4 * i, bits, 4);
        }
        p = make_idx(t, "f32.idx", gz, 0x0D, 1, (const uint32_t[]){3}, f32b, 12);
        if (CHECK_OK(t, idx_load(p, &a, err, sizeof err), err)) {
            CHECK(t, a.dtype == DT_F32 && memcmp(a.data, f32v, 12) == 0);
            idx_free(&a);
        }
        /* f64, 4-d */
        const double f64v[2] = {3.125, -1e300};
        unsigned char f64b[16];
        for (int i = 0; i < 2; i++) {
            uint64_t bits;
            memcpy(&bits, &f64v[i], 8);
            put_be(f64b + 8 * i, bits, 8);
        }
        p = make_idx(t, "f64.idx", gz, 0x0E, 4, (const uint32_t[]){1, 2, 1, 1}, f64b, 16);
        if (CHECK_OK(t, idx_load(p, &a, err, sizeof err), err)) {
            CHECK(t, a.dtype == DT_F64 && a.ndim == 4 && memcmp(a.data, f64v, 16) == 0);
            idx_free(&a);
        }
        /* An empty dimension. */
        p = make_idx(t, "empty.idx", gz, 0x08, 2, (const uint32_t[]){0, 28}, NULL, 0);
        if (CHECK_OK(t, idx_load(p, &a, err, sizeof err), err)) {
            CHECK(t, a.nbytes == 0 && a.data != NULL && a.shape[1] == 28);
            idx_free(&a);
        }
    }
}

/* ------------------------------------------------------------------------ rejected files */

static void expect_error(T *t, const char *path, const char *want) {
    char err[512] = "";
    IdxArray a;
    CHECK_ERR(t, idx_load(path, &a, err, sizeof err), err, path, want);
    CHECK(t, a.data == NULL && a.nbytes == 0);
}

static void test_errors(T *t) {
    const char *p = t_path(t, "raw.idx");
    t_write_file(p, "\x01\x00\x08\x01\x00\x00\x00\x01\x05", 9);
    expect_error(t, p, "not an IDX file (bad magic 01 00 08 01");
    t_write_file(p, "hello world", 11);
    expect_error(t, p, "not an IDX file (bad magic");
    t_write_file(p, "\x00\x00\x0a\x01\x00\x00\x00\x01\x05", 9);
    expect_error(t, p, "unknown IDX type code 0x0A");
    t_write_file(p, "\x00\x00\x08\x00", 4);
    expect_error(t, p, "with 0 dimensions");
    t_write_file(p, "\x00\x00\x08\x05", 4);
    expect_error(t, p, "with 5 dimensions");
    t_write_file(p, "\x00\x00\x08", 3);
    expect_error(t, p, "ends inside the IDX header");
    t_write_file(p, "\x00\x00\x08\x02\x00\x00\x00\x01", 8);
    expect_error(t, p, "ends inside the IDX dimensions");
    t_write_file(p, "", 0);
    expect_error(t, p, "empty file");
    unsigned char data[25] = {0};
    p = make_idx(t, "short.idx", 0, 0x08, 3, (const uint32_t[]){2, 3, 4}, data, 10);
    expect_error(t, p, "truncated: header says 24 bytes of data (2 x 3 x 4), file has 10");
    p = make_idx(t, "long.idx", 0, 0x08, 3, (const uint32_t[]){2, 3, 4}, data, 25);
    expect_error(t, p, "unexpected bytes after the 24 bytes of data");
    p = make_idx(t, "huge.idx", 0, 0x08, 2, (const uint32_t[]){0xFFFFFFFF, 0xFFFFFFFF}, data, 8);
    expect_error(t, p, "dimensions 4294967295 x 4294967295 are too large (more than 4 GiB");
    p = make_idx(t, "huge.idx", 1, 0x08, 3, (const uint32_t[]){65536, 65536, 2}, data, 8);
    expect_error(t, p, "too large");
    p = make_idx(t, "huge.idx", 0, 0x0D, 1, (const uint32_t[]){1u << 31}, data, 8);
    expect_error(t, p, "too large");
    /* Exactly at the cap: accepted until the data runs out (and nothing big is allocated). */
    p = make_idx(t, "cap.idx", 1, 0x0D, 2, (const uint32_t[]){1u << 15, 1u << 15}, data, 8);
    expect_error(t, p, "truncated: header says 4294967296 bytes of data");
    p = t_path(t, "missing.idx");
    expect_error(t, p, "cannot open: No such file or directory");
    expect_error(t, t->dir, "read error");

    /* Damaged gzip streams. */
    unsigned char payload[6000];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (unsigned char)((i * 2654435761u) >> 13);
    const char *gz = make_idx(t, "data.idx.gz", 1, 0x08, 2, (const uint32_t[]){60, 100}, payload, sizeof payload);
    size_t n;
    unsigned char *file = t_read_file(gz, &n);
    if (!CHECK(t, file && n > 100)) return;
    p = t_path(t, "cut.idx.gz");
    t_write_file(p, file, n / 2);
    expect_error(t, p, "the gzip stream is cut short");
    t_write_file(p, file, n - 4); /* all the data, part of the trailer */
    expect_error(t, p, "truncated");
    file[n / 2] ^= 0x5a;
    t_write_file(p, file, n);
    char err[512] = "";
    IdxArray a;
    CHECK_ERR(t, idx_load(p, &a, err, sizeof err), err, p, "");
    file[n / 2] ^= 0x5a;
    file[n - 6] ^= 0x01; /* the CRC */
    t_write_file(p, file, n);
    CHECK_ERR(t, idx_load(p, &a, err, sizeof err), err, p, "read error");
    file[n - 6] ^= 0x01;
    /* Every prefix of the gzip and the plain file is rejected. */
    int bad = 0;
    for (size_t len = 0; len < n; len += 7) {
        t_write_file(p, file, len);
        err[0] = '\0';
        if (idx_load(p, &a, err, sizeof err) != -1 || strncmp(err, p, strlen(p)) != 0) bad++;
    }
    const char *plain = make_idx(t, "data.idx", 0, 0x0B, 2, (const uint32_t[]){30, 100}, payload, sizeof payload);
    free(file);
    file = t_read_file(plain, &n);
    for (size_t len = 0; file && len < n; len += len < 64 ? 1 : 97) {
        t_write_file(p, file, len);
        err[0] = '\0';
        if (idx_load(p, &a, err, sizeof err) != -1 || strncmp(err, p, strlen(p)) != 0) bad++;
    }
    CHECK(t, bad == 0);
    free(file);
}

/* ------------------------------------------------------------------------ MNIST */

static void check_mnist(T *t, const char *dir, const char *prefix, int64_t n, const unsigned char *first_labels) {
    char p[700], err[512];
    IdxArray img, lab;
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    if (CHECK_OK(t, idx_load(p, &img, err, sizeof err), err)) {
        CHECK(t,
              img.dtype == DT_U8 && img.ndim == 3 && img.shape[0] == n && img.shape[1] == 28 && img.shape[2] == 28 &&
                  img.nbytes == (size_t)n * 784);
        idx_free(&img);
    }
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    if (CHECK_OK(t, idx_load(p, &lab, err, sizeof err), err)) {
        CHECK(t, lab.dtype == DT_U8 && lab.ndim == 1 && lab.shape[0] == n);
        const unsigned char *l = lab.data;
        int in_range = 1;
        for (size_t i = 0; i < lab.nbytes; i++) in_range &= l[i] < 10;
        CHECK(t, in_range && lab.nbytes >= 5 && memcmp(l, first_labels, 5) == 0);
        idx_free(&lab);
    }
}

static void test_mnist(T *t) {
    char dir[600], probe[700];
    snprintf(dir, sizeof dir, "%s/data/mnist", t->shared);
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", dir);
    if (!t_file_exists(probe)) {
        char what[800];
        snprintf(what, sizeof what, "real MNIST (%s not found)", probe);
        t_skip(t, what);
        return;
    }
    check_mnist(t, dir, "train", 60000, (const unsigned char[]){5, 0, 4, 1, 9});
    check_mnist(t, dir, "t10k", 10000, (const unsigned char[]){7, 2, 1, 0, 4});
}

void test_idx(T *t) {
    test_types(t);
    test_errors(t);
    test_mnist(t);
}
