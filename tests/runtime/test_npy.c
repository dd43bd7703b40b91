/* test_npy.c - tests of npy.c: round trips for every dtype and rank, hand-made v1/v2/v3
 * headers in every legal spelling, every rejected case with its message, truncation and
 * byte-mutation sweeps (run under the sanitizers these prove no out-of-bounds reads),
 * npy_check_finite, and the writer's argument checks. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"
#include "harness.h"
#include "test_formats.h"

/* Write an .npy file by hand: magic, version major.0, header length (u16 for 1.0, u32 for
 * 2.0 and 3.0), dict padded with spaces and '\n' so that the data starts at a multiple of
 * align, then data (n,) bytes. Returns the path. */
static const char *make_npy(T *t, const char *name, int major, const char *dict, const void *data, size_t n,
                            size_t align) {
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict), hlen = dl + 1;
    while ((pre + hlen) % align) hlen++;
    unsigned char *buf = malloc(pre + hlen + n + 1); /* (pre + hlen + n,) the file */
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) buf[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', hlen - dl - 1);
    buf[pre + hlen - 1] = '\n';
    if (n) memcpy(buf + pre + hlen, data, n);
    const char *path = t_path(t, name);
    t_write_file(path, buf, pre + hlen + n);
    free(buf);
    return path;
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 37u + seed * 11u + 5u);
}

/* ------------------------------------------------------------------------ round trips */

static void test_roundtrip(T *t) {
    static const struct {
        int ndim;
        int64_t shape[3];
    } shapes[] = {
        {0, {0}}, {1, {5}}, {2, {3, 4}}, {3, {2, 3, 4}}, {2, {0, 3}}, {1, {1000}},
    };
    char err[512];
    for (int dt = DT_F32; dt <= DT_U8; dt++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            size_t numel = 1;
            for (int k = 0; k < shapes[s].ndim; k++) numel *= (size_t)shapes[s].shape[k];
            size_t nbytes = numel * dtype_size((DType)dt);
            unsigned char *data = malloc(nbytes + 1); /* (numel,) elements */
            fill(data, nbytes, (unsigned)(dt * 10 + (int)s));
            const char *path = t_path(t, "round.npy");
            CHECK_OK(t, npy_save(path, (DType)dt, shapes[s].ndim, shapes[s].shape, data, err, sizeof err), err);
            CHECK(t, t_no_tmp_left(path));
            NpyArray a;
            if (CHECK_OK(t, npy_load(path, &a, err, sizeof err), err)) {
                CHECK(t, a.dtype == (DType)dt && a.ndim == shapes[s].ndim && a.nbytes == nbytes);
                for (int k = 0; k < a.ndim; k++) CHECK(t, a.shape[k] == shapes[s].shape[k]);
                CHECK(t, nbytes == 0 || memcmp(a.data, data, nbytes) == 0);
                CHECK(t, a.map_len > 0); /* the writer aligns: no copy needed */
                npy_free(&a);
                npy_free(&a); /* a second free is harmless */
            }
            size_t n;
            unsigned char *file = t_read_file(path, &n);
            size_t hl = file && n >= 10 ? (size_t)file[8] | (size_t)file[9] << 8 : 0;
            CHECK(t, file && file[6] == 1 && file[7] == 0 && (10 + hl) % 64 == 0);
            CHECK(t, file && n == 10 + hl + nbytes && file[10 + hl - 1] == '\n');
            free(file);
            free(data);
        }
    }
    /* Saving over an existing file replaces it. */
    const char *path = t_path(t, "over.npy");
    int32_t one[2] = {1, 2}, two[3] = {7, 8, 9};
    CHECK_OK(t, npy_save(path, DT_I32, 1, (const int64_t[]){2}, one, err, sizeof err), err);
    CHECK_OK(t, npy_save(path, DT_I32, 1, (const int64_t[]){3}, two, err, sizeof err), err);
    NpyArray a;
    if (CHECK_OK(t, npy_load(path, &a, err, sizeof err), err)) {
        CHECK(t, a.shape[0] == 3 && memcmp(a.data, two, sizeof two) == 0);
        npy_free(&a);
    }
}

/* ------------------------------------------------------------------------ accepted headers */

static void test_headers(T *t) {
    char err[512];
    NpyArray a;
    int32_t i4[6] = {1, -2, 3, -4, 5, -6};
    double f8[3] = {0.5, -1.25, 1e300};
    /* Keys in another order, no trailing comma. */
    const char *p =
        make_npy(t, "v1.npy", 1, "{'shape': (2, 3), 'fortran_order': False, 'descr': '<i4'}", i4, sizeof i4, 64);
    if (CHECK_OK(t, npy_load(p, &a, err, sizeof err), err)) {
        CHECK(t, a.dtype == DT_I32 && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3);
        CHECK(t, memcmp(a.data, i4, sizeof i4) == 0);
        npy_free(&a);
    }
    /* Version 2.0, double quotes, odd whitespace. */
    p = make_npy(t, "v2.npy", 2, "{ \"descr\" : \"<f8\" ,\n 'fortran_order':False,'shape':(3,) , }", f8, sizeof f8, 64);
    if (CHECK_OK(t, npy_load(p, &a, err, sizeof err), err)) {
        CHECK(t, a.dtype == DT_F64 && a.ndim == 1 && a.shape[0] == 3);
        CHECK(t, memcmp(a.data, f8, sizeof f8) == 0);
        npy_free(&a);
    }
    /* Version 3.0, a 0-d uint8. */
    unsigned char u1 = 200;
    p = make_npy(t, "v3.npy", 3, "{'descr': '|u1', 'fortran_order': False, 'shape': (), }", &u1, 1, 64);
    if (CHECK_OK(t, npy_load(p, &a, err, sizeof err), err)) {
        CHECK(t, a.dtype == DT_U8 && a.ndim == 0 && a.nbytes == 1);
        CHECK(t, *(const unsigned char *)a.data == 200);
        npy_free(&a);
    }
    /* Python 2 'L' suffixes; int64. */
    int64_t i8[4] = {1, -1, INT64_MAX, INT64_MIN};
    p = make_npy(t, "py2.npy", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2L, 2L), }", i8, sizeof i8, 16);
    if (CHECK_OK(t, npy_load(p, &a, err, sizeof err), err)) {
        CHECK(t, a.dtype == DT_I64 && a.shape[0] == 2 && a.shape[1] == 2);
        CHECK(t, memcmp(a.data, i8, sizeof i8) == 0);
        npy_free(&a);
    }
    /* Fortran order is harmless for 1-d. */
    float f4[4] = {1, 2, 3, 4};
    p = make_npy(t, "f1.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (4,), }", f4, sizeof f4, 64);
    if (CHECK_OK(t, npy_load(p, &a, err, sizeof err), err)) {
        CHECK(t, a.dtype == DT_F32 && memcmp(a.data, f4, sizeof f4) == 0);
        npy_free(&a);
    }
    /* Data not aligned for its dtype (a hand-made header): copied to the heap. */
    p = make_npy(t, "unaligned.npy", 1, "{'descr':'<f8','fortran_order':False,'shape':(3,)}", f8, sizeof f8, 1);
    if (CHECK_OK(t, npy_load(p, &a, err, sizeof err), err)) {
        CHECK(t, a.map_len == 0 && (uintptr_t)a.data % 8 == 0);
        CHECK(t, memcmp(a.data, f8, sizeof f8) == 0 && ((const double *)a.data)[2] == 1e300);
        npy_free(&a);
    }
    /* An empty array. */
    p = make_npy(t, "empty_arr.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 7), }", NULL, 0, 64);
    if (CHECK_OK(t, npy_load(p, &a, err, sizeof err), err)) {
        CHECK(t, a.nbytes == 0 && a.ndim == 2 && a.shape[1] == 7);
        npy_free(&a);
    }
}

/* ------------------------------------------------------------------------ rejected files */

static void expect_dict_error(T *t, const char *dict, size_t nbytes, const char *want) {
    unsigned char data[64] = {0};
    const char *p = make_npy(t, "bad.npy", 1, dict, data, nbytes, 64);
    char err[512] = "";
    NpyArray a;
    CHECK_ERR(t, npy_load(p, &a, err, sizeof err), err, p, want);
    CHECK(t, a.data == NULL && a.map_base == NULL);
}

static void test_errors(T *t) {
    char err[512];
    NpyArray a;
    expect_dict_error(t, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", 48,
                      "Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
    {
        unsigned char half[800] = {0};
        const char *p = make_npy(t, "trunc.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (200,), }", half,
                                 sizeof half, 64);
        CHECK_ERR(t, npy_load(p, &a, err, sizeof err), err, p,
                  "truncated: header says 1600 bytes of data, file has 800");
    }
    expect_dict_error(t, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8,
                      "dtype '>f4' (big-endian) is not supported; expected <f4, <f8, <i4, <i8 or "
                      "|u1");
    expect_dict_error(t, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", 4,
                      "dtype '<f2' is not supported; expected");
    expect_dict_error(t, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, "structured dtypes");
    expect_dict_error(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", 4,
                      "unexpected key 'extra'");
    expect_dict_error(t, "{'descr': '<f4', 'fortran_order': False}", 4, "lacks the key 'shape'");
    expect_dict_error(t, "{}", 0, "lacks the key 'descr'");
    expect_dict_error(t, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}", 4, "duplicate key");
    expect_dict_error(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 0, "negative dimension");
    expect_dict_error(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (5), }", 20, "is not a tuple");
    expect_dict_error(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", 4,
                      "more than 8 dimensions");
    expect_dict_error(t,
                      "{'descr': '<f4', 'fortran_order': False, "
                      "'shape': (4294967296, 4294967296, 4294967296), }",
                      0, "too many elements");
    expect_dict_error(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 0,
                      "dimension too large");
    expect_dict_error(t, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}", 4, "must be True or False");
    expect_dict_error(t, "{'descr': '<f4', 'fortran_order': Truely, 'shape': (1,)}", 4, "must be True or False");
    expect_dict_error(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} xyz", 4,
                      "unexpected text after the header dict");
    expect_dict_error(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 8,
                      "4 unexpected bytes after the 4 bytes of data");
    expect_dict_error(t, "{'descr': '<f4", 0, "unterminated string");
    expect_dict_error(t, "{'de\\scr': '<f4'}", 0, "escape sequences are not supported");
    expect_dict_error(t, "{'descr': '<f4' 'fortran_order': False}", 0, "expected ',' or '}'");
    expect_dict_error(t, "{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}", 0, "expected ',' or ')'");
    expect_dict_error(t, "['descr', '<f4']", 0, "expected '{'");
    expect_dict_error(t, "", 0, "expected '{'");

    /* Garbage bytes where the header should be. */
    char garbage[120];
    for (int i = 0; i < 119; i++) garbage[i] = (char)(1 + (i * 97) % 255);
    garbage[119] = '\0';
    expect_dict_error(t, garbage, 0, "malformed .npy header");

    /* Preamble problems, built byte by byte. */
    const char *p = t_path(t, "magic.npy");
    t_write_file(p, "hello, this is not numpy data", 29);
    CHECK_ERR(t, npy_load(p, &a, err, sizeof err), err, p, "not an .npy file (bad magic)");
    t_write_file(p, "\x93NU", 3);
    CHECK_ERR(t, npy_load(p, &a, err, sizeof err), err, p, "not an .npy file (bad magic)");
    t_write_file(p, "", 0);
    CHECK_ERR(t, npy_load(p, &a, err, sizeof err), err, p, "empty file");
    t_write_file(p, "\x93NUMPY\x01\x00", 8);
    CHECK_ERR(t, npy_load(p, &a, err, sizeof err), err, p, "truncated");
    t_write_file(p, "\x93NUMPY\x02\x00\x10\x00", 10);
    CHECK_ERR(t, npy_load(p, &a, err, sizeof err), err, p, "truncated");
    t_write_file(p, "\x93NUMPY\x04\x00\x10\x00{}", 12);
    CHECK_ERR(t, npy_load(p, &a, err, sizeof err), err, p, "unsupported .npy format version 4.0");
    t_write_file(p, "\x93NUMPY\x01\x01\x02\x00{}", 12);
    CHECK_ERR(t, npy_load(p, &a, err, sizeof err), err, p, "version 1.1");
    t_write_file(p, "\x93NUMPY\x01\x00\xe8\x03{'descr'", 18); /* says 1000 header bytes */
    CHECK_ERR(t, npy_load(p, &a, err, sizeof err), err, p, "truncated: header length is 1000");
    t_write_file(p, "\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14);
    CHECK_ERR(t, npy_load(p, &a, err, sizeof err), err, p, "implausibly large");
    p = t_path(t, "no_such_file.npy");
    CHECK_ERR(t, npy_load(p, &a, err, sizeof err), err, p, "cannot open: No such file or directory");
    CHECK_ERR(t, npy_load(t->dir, &a, err, sizeof err), err, t->dir, "not a regular file");
    /* A NULL or tiny error buffer is allowed. */
    CHECK(t, npy_load(p, &a, NULL, 0) == -1);
    char tiny[4];
    CHECK(t, npy_load(p, &a, tiny, sizeof tiny) == -1 && strlen(tiny) == 3);
}

/* ------------------------------------------------------------------------ hostile sweeps */

static void test_sweeps(T *t) {
    char err[512];
    float data[12];
    for (int i = 0; i < 12; i++) data[i] = (float)i;
    const char *good = t_path(t, "good.npy");
    CHECK_OK(t, npy_save(good, DT_F32, 2, (const int64_t[]){3, 4}, data, err, sizeof err), err);
    size_t n;
    unsigned char *file = t_read_file(good, &n);
    if (!CHECK(t, file != NULL)) return;
    /* Every proper prefix of the file is rejected. */
    const char *p = t_path(t, "cut.npy");
    int bad = 0;
    for (size_t len = 0; len < n; len++) {
        NpyArray a;
        t_write_file(p, file, len);
        err[0] = '\0';
        if (npy_load(p, &a, err, sizeof err) != -1 || strncmp(err, p, strlen(p)) != 0) bad++;
    }
    CHECK(t, bad == 0);
    /* Any byte of the preamble and header replaced by a nasty value: no crash, and either a
   * clean error or an array consistent with the file. */
    static const unsigned char nasty[] = {0x00, 0xff, ' ', '(', ')', ',',  '\'', '"', '9',
                                          '{',  '}',  ':', 'L', '-', '\n', '\\', 'T', 0x80};
    size_t data_off = 10 + ((size_t)file[8] | (size_t)file[9] << 8);
    bad = 0;
    for (size_t pos = 0; pos < data_off; pos++) {
        for (size_t v = 0; v < sizeof nasty; v++) {
            unsigned char keep = file[pos];
            file[pos] = nasty[v];
            t_write_file(p, file, n);
            file[pos] = keep;
            NpyArray a;
            err[0] = '\0';
            int rc = npy_load(p, &a, err, sizeof err);
            if (rc == 0) {
                if (a.nbytes > n || (a.nbytes && a.data == NULL)) bad++;
                npy_free(&a);
            } else if (rc != -1 || strncmp(err, p, strlen(p)) != 0) {
                bad++;
            }
        }
    }
    CHECK(t, bad == 0);
    free(file);
}

/* ------------------------------------------------------------------------ finite check, writer */

static void test_finite(T *t) {
    float f[10] = {0, 1, 2, 3, 4, 5, 6, NAN, 8, INFINITY};
    double d[5] = {0, 1, 2, INFINITY, NAN};
    int32_t i[3] = {1, 2, 3};
    int64_t bad = -1;
    NpyArray a = {DT_F32, 1, {10}, f, sizeof f, NULL, 0};
    CHECK(t, npy_check_finite(&a, &bad) == 0 && bad == 7);
    NpyArray b = {DT_F64, 1, {5}, d, sizeof d, NULL, 0};
    CHECK(t, npy_check_finite(&b, &bad) == 0 && bad == 3);
    d[3] = -INFINITY;
    CHECK(t, npy_check_finite(&b, NULL) == 0);
    NpyArray c = {DT_F64, 1, {3}, d, 3 * sizeof(double), NULL, 0};
    CHECK(t, npy_check_finite(&c, &bad) == 1);
    NpyArray e = {DT_I32, 1, {3}, i, sizeof i, NULL, 0};
    CHECK(t, npy_check_finite(&e, &bad) == 1);
    NpyArray z = {DT_F32, 1, {0}, f, 0, NULL, 0};
    CHECK(t, npy_check_finite(&z, &bad) == 1);
    /* Through a file. */
    char err[512];
    const char *p = t_path(t, "nan.npy");
    CHECK_OK(t, npy_save(p, DT_F32, 2, (const int64_t[]){2, 5}, f, err, sizeof err), err);
    NpyArray l;
    if (CHECK_OK(t, npy_load(p, &l, err, sizeof err), err)) {
        CHECK(t, npy_check_finite(&l, &bad) == 0 && bad == 7);
        npy_free(&l);
    }
}

static void test_save_errors(T *t) {
    char err[512];
    float x[4] = {0};
    const char *p = "/nonexistent_dino_dir/x.npy";
    CHECK_ERR(t, npy_save(p, DT_F32, 1, (const int64_t[]){4}, x, err, sizeof err), err, p, "cannot create");
    p = t_path(t, "s.npy");
    CHECK_ERR(t, npy_save(p, (DType)42, 1, (const int64_t[]){4}, x, err, sizeof err), err, p, "invalid dtype");
    CHECK_ERR(t, npy_save(p, DT_F32, 9, (const int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, x, err, sizeof err), err, p,
              "9 dimensions");
    CHECK_ERR(t, npy_save(p, DT_F32, 1, (const int64_t[]){-4}, x, err, sizeof err), err, p, "negative dimension");
    CHECK_ERR(t, npy_save(p, DT_F32, 1, (const int64_t[]){4}, NULL, err, sizeof err), err, p, "no data");
    CHECK_ERR(t, npy_save(p, DT_F64, 2, (const int64_t[]){INT64_MAX, 2}, x, err, sizeof err), err, p,
              "too many elements");
    CHECK(t, !t_file_exists(p) && t_no_tmp_left(p));
}

void test_npy(T *t) {
    test_roundtrip(t);
    test_headers(t);
    test_errors(t);
    test_sweeps(t);
    test_finite(t);
    test_save_errors(t);
}
