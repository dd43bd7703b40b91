/* test_safetensors.c - tests of safetensors.c: a round trip with every dtype, metadata and
 * names that need JSON escapes; the exact bytes the writer produces; JSON escapes and
 * unaligned data on read; every malformed header (length, offsets, byte counts, dtypes,
 * JSON syntax, duplicates, missing and unknown keys) with its message; truncation and
 * byte-mutation sweeps; and the writer's argument checks. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "harness.h"
#include "test_formats.h"

/* Write a safetensors file by hand: header length len_field (or strlen(json) when
 * len_field is -1), the JSON, then data (n,) bytes. Returns the path. */
static const char *make_st(T *t, const char *name, long long len_field, const char *json, const void *data, size_t n) {
    size_t jl = strlen(json);
    unsigned long long hl = len_field < 0 ? jl : (unsigned long long)len_field;
    unsigned char *buf = malloc(8 + jl + n + 1); /* (8 + jl + n,) the file */
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hl >> (8 * i));
    memcpy(buf + 8, json, jl);
    if (n) memcpy(buf + 8 + jl, data, n);
    const char *path = t_path(t, name);
    t_write_file(path, buf, 8 + jl + n);
    free(buf);
    return path;
}

/* ------------------------------------------------------------------------ round trip */

static void test_roundtrip(T *t) {
    float a[6] = {1.5f, -2, 3, 4, 5, 6};
    double b[4] = {1e-300, -0.0, 3.25, 1e300};
    int32_t c[3] = {-1, 0, 2147483647};
    int64_t d[2] = {INT64_MIN, 42};
    unsigned char e[5] = {0, 1, 128, 254, 255};
    double scalar = 2.5;
    const int64_t sa[2] = {2, 3}, sb[1] = {4}, sc[3] = {1, 3, 1}, sd[1] = {2}, se[1] = {5}, sz[2] = {0, 4};
    StWriteTensor w[] = {
        {"layer.weight", DT_F32, 2, sa, a},
        {"b \"quoted\" \\ name\n", DT_F64, 1, sb, b},
        {"i32", DT_I32, 3, sc, c},
        {"i64", DT_I64, 1, sd, d},
        {"u8", DT_U8, 1, se, e},
        {"scalar", DT_F64, 0, NULL, &scalar},
        {"empty", DT_F32, 2, sz, NULL},
        {"caf\xc3\xa9", DT_U8, 1, se, e},
    };
    int n = (int)(sizeof w / sizeof w[0]);
    const char *keys[] = {"spec_hash", "note\x01\t\"x\""}, *vals[] = {"abc123", "line1\nline2 \\"};
    char err[512];
    const char *p = t_path(t, "round.safetensors");
    CHECK_OK(t, st_save(p, w, n, keys, vals, 2, err, sizeof err), err);
    CHECK(t, t_no_tmp_left(p));
    size_t flen;
    unsigned char *file = t_read_file(p, &flen);
    if (CHECK(t, file && flen >= 8)) {
        unsigned long long hl = 0;
        for (int i = 7; i >= 0; i--) hl = hl << 8 | file[i];
        CHECK(t, hl % 8 == 0 && 8 + hl <= flen);
        CHECK(t, memcmp(file + 8, "{\"__metadata__\":{\"spec_hash\":\"abc123\",", 38) == 0);
    }
    free(file);
    Safetensors s;
    if (!CHECK_OK(t, st_load(p, &s, err, sizeof err), err)) return;
    CHECK(t, s.n == n && s.n_meta == 2);
    for (int i = 0; i < n && i < s.n; i++) {
        const StTensor *x = &s.tensors[i];
        size_t bytes = x->end - x->begin, numel = 1;
        for (int k = 0; k < w[i].ndim; k++) numel *= (size_t)w[i].shape[k];
        CHECK(t, strcmp(x->name, w[i].name) == 0 && x->dtype == w[i].dtype && x->ndim == w[i].ndim);
        for (int k = 0; k < x->ndim; k++) CHECK(t, x->shape[k] == w[i].shape[k]);
        CHECK(t, bytes == numel * dtype_size(w[i].dtype));
        CHECK(t, bytes == 0 || memcmp(x->data, w[i].data, bytes) == 0);
        CHECK(t, (uintptr_t)x->data % dtype_size(x->dtype) == 0);
        CHECK(t, st_find(&s, w[i].name) == x);
    }
    CHECK(t, st_find(&s, "nope") == NULL);
    CHECK(t, st_meta(&s, "spec_hash") && strcmp(st_meta(&s, "spec_hash"), "abc123") == 0);
    CHECK(t, st_meta(&s, keys[1]) && strcmp(st_meta(&s, keys[1]), vals[1]) == 0);
    CHECK(t, st_meta(&s, "nope") == NULL);
    st_free(&s);
    st_free(&s);

    /* The exact bytes: tensors in the given order, spaces to a multiple of 8. */
    uint8_t one = 7;
    StWriteTensor z[] = {{"zz", DT_U8, 1, (const int64_t[]){1}, &one}, {"a", DT_U8, 0, NULL, &one}};
    CHECK_OK(t, st_save(p, z, 2, NULL, NULL, 0, err, sizeof err), err);
    const char *want = "{\"zz\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                       "\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[1,2]}}";
    size_t wl = strlen(want), padded = (wl + 7) / 8 * 8;
    file = t_read_file(p, &flen);
    CHECK(t, file && flen == 8 + padded + 2 && file[0] == padded && file[1] == 0);
    CHECK(t, file && memcmp(file + 8, want, wl) == 0 && padded > wl);
    for (size_t i = wl; file && i < padded; i++) CHECK(t, file[8 + i] == ' ');
    CHECK(t, file && file[8 + padded] == 7 && file[9 + padded] == 7);
    free(file);
    /* No tensors at all. */
    CHECK_OK(t, st_save(p, NULL, 0, NULL, NULL, 0, err, sizeof err), err);
    if (CHECK_OK(t, st_load(p, &s, err, sizeof err), err)) {
        CHECK(t, s.n == 0 && s.n_meta == 0);
        st_free(&s);
    }
}

/* ------------------------------------------------------------------------ accepted input */

static void test_read_special(T *t) {
    char err[512];
    Safetensors s;
    unsigned char data[32] = {9};
    /* JSON escapes in names, whitespace, a surrogate pair. */
    const char *p = make_st(t, "esc.safetensors", -1,
                            " {\n \"a\\u00e9\\\"b\\\\\\/\" : {\"dtype\":\"U8\", \"shape\":[1],"
                            "\"data_offsets\":[0,1]} ,\"\\ud83d\\ude00\":{\"data_offsets\":[1,2],"
                            "\"shape\":[ ],\"dtype\":\"U8\"}, \"__metadata__\":{}}\t",
                            data, 2);
    if (CHECK_OK(t, st_load(p, &s, err, sizeof err), err)) {
        CHECK(t, s.n == 2 && s.n_meta == 0);
        CHECK(t, st_find(&s, "a\xc3\xa9\"b\\/") != NULL);
        CHECK(t, st_find(&s, "\xf0\x9f\x98\x80") != NULL && s.tensors[1].ndim == 0);
        st_free(&s);
    }
    /* An F64 tensor at an odd offset: read correctly from an aligned heap copy. */
    unsigned char odd[17] = {5};
    double v[2] = {1.25, -7.5};
    memcpy(odd + 1, v, sizeof v);
    char json[200] = "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                     "\"f\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[1,17]}}";
    while (strlen(json) % 8) strcat(json, " "); /* data section 8-aligned, so [1,17] is not */
    p = make_st(t, "odd.safetensors", -1, json, odd, sizeof odd);
    if (CHECK_OK(t, st_load(p, &s, err, sizeof err), err)) {
        const StTensor *f = st_find(&s, "f");
        CHECK(t, s.map_len == 0 && f && (uintptr_t)f->data % 8 == 0);
        CHECK(t, f && memcmp(f->data, v, sizeof v) == 0);
        CHECK(t, *(const unsigned char *)st_find(&s, "b")->data == 5);
        st_free(&s);
    }
}

/* ------------------------------------------------------------------------ rejected input */

static void expect_json_error(T *t, const char *json, size_t ndata, const char *want) {
    unsigned char data[64] = {0};
    const char *p = make_st(t, "bad.safetensors", -1, json, data, ndata);
    char err[512] = "";
    Safetensors s;
    CHECK_ERR(t, st_load(p, &s, err, sizeof err), err, p, want);
    CHECK(t, s.tensors == NULL && s.map_base == NULL && s.n == 0);
}

#define U8_1 "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}"

static void test_errors(T *t) {
    expect_json_error(t, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
                      "tensor 'a': data_offsets [0, 16] out of range; the data section has 8 bytes");
    expect_json_error(t, "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8, "out of range");
    expect_json_error(t, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                      "tensor 'a': data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12");
    expect_json_error(t, "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8,
                      "tensor 'a': unsupported dtype 'F16'");
    expect_json_error(t, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8,
                      "unsupported dtype 'BF16'");
    expect_json_error(t, "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8,
                      "unsupported dtype 'Q7' (not a safetensors dtype)");
    expect_json_error(t, "{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,4]}}", 8, "'dtype' must be a string");
    expect_json_error(t, "{\"a\":" U8_1 ",\"b\":" U8_1 ",\"a\":" U8_1 "}", 8, "duplicate tensor name 'a'");
    expect_json_error(t,
                      "{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],"
                      "\"data_offsets\":[0,1]}}",
                      8, "duplicate key 'dtype'");
    expect_json_error(t, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 8, "missing 'data_offsets'");
    expect_json_error(t, "{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 8, "missing 'dtype'");
    expect_json_error(t, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":[]}}", 8,
                      "tensor 'a': unexpected key 'x'");
    expect_json_error(t, "{\"a\":{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}}", 8,
                      "'shape' must be an array");
    expect_json_error(t, "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 8,
                      "'shape' must be an array");
    expect_json_error(t,
                      "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                      "\"data_offsets\":[0,1]}}",
                      8, "at most 8");
    expect_json_error(t, "{\"a\":{\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]}}", 8,
                      "'shape' must be an array");
    expect_json_error(t, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 8,
                      "'data_offsets' must be [begin, end]");
    expect_json_error(t, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 8,
                      "'data_offsets' must be [begin, end]");
    expect_json_error(t, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":{}}}", 8,
                      "'data_offsets' must be [begin, end]");
    expect_json_error(t,
                      "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296,4294967296],"
                      "\"data_offsets\":[0,8]}}",
                      8, "too many elements");
    expect_json_error(t, "{\"a\":1}", 8, "tensor 'a': expected an object");
    expect_json_error(t, "{\"__metadata__\":{\"k\":1}}", 0, "'__metadata__' entry 'k' must be a string");
    expect_json_error(t, "{\"__metadata__\":[]}", 0, "'__metadata__' must be an object");
    /* JSON syntax. */
    expect_json_error(t, "{\"a\":", 0, "bad JSON header at byte 5: unexpected end of header");
    expect_json_error(t, "{\"a\" 1}", 0, "expected ':' after a key");
    expect_json_error(t, "[1,2]", 0, "the header must be a JSON object");
    expect_json_error(t, "", 0, "the header must be a JSON object");
    expect_json_error(t, "{} x", 0, "unexpected text after the JSON object");
    expect_json_error(t, "{\"a\":1.5}", 0, "only integers are allowed");
    expect_json_error(t, "{\"a\":1e3}", 0, "only integers are allowed");
    expect_json_error(t, "{\"a\":true}", 0, "unsupported value");
    expect_json_error(t, "{\"a\":null}", 0, "unsupported value");
    expect_json_error(t, "{\"a\":\"abc", 0, "unterminated string");
    expect_json_error(t, "{\"a\\q\":1}", 0, "invalid escape sequence");
    expect_json_error(t, "{\"\\ud800\":1}", 0, "unpaired surrogate");
    expect_json_error(t, "{\"\\udc00\":1}", 0, "unpaired surrogate");
    expect_json_error(t, "{\"\\ud800\\u0041\":1}", 0, "unpaired surrogate");
    expect_json_error(t, "{\"a\\u12\":1}", 0, "bad hex digit");
    expect_json_error(t, "{\"a\\u1", 0, "truncated \\u escape");
    expect_json_error(t, "{\"a\\u0000\":1}", 0, "\\u0000 is not supported");
    expect_json_error(t, "{\"a\x01\":1}", 0, "control character");
    expect_json_error(t, "{\"a\":01}", 0, "leading zeros");
    expect_json_error(t, "{\"a\":-}", 0, "expected a digit");
    expect_json_error(t, "{\"a\":99999999999999999999}", 0, "integer out of range");
    expect_json_error(t, "{\"a\":[1,2}", 0, "expected ',' or ']'");
    expect_json_error(t, "{\"a\":1,}", 0, "expected a string key");
    expect_json_error(t, "{,}", 0, "expected a string key");
    expect_json_error(t, "{\"a\":1 \"b\":2}", 0, "expected ',' or '}'");
    {
        char deep[3000];
        memset(deep, '[', sizeof deep - 1);
        deep[0] = '{';
        deep[1] = '"';
        deep[2] = 'a';
        deep[3] = '"';
        deep[4] = ':';
        deep[sizeof deep - 1] = '\0';
        expect_json_error(t, deep, 0, "nesting too deep");
    }

    /* The 8-byte length. */
    char err[512];
    Safetensors s;
    const char *p = make_st(t, "len.safetensors", 1000, "{}", NULL, 0);
    CHECK_ERR(t, st_load(p, &s, err, sizeof err), err, p,
              "header length 1000 is larger than the rest of the file (2 bytes)");
    p = make_st(t, "len.safetensors", (long long)1 << 62, "{}", NULL, 0);
    CHECK_ERR(t, st_load(p, &s, err, sizeof err), err, p, "larger than the limit");
    p = make_st(t, "len.safetensors", 0, "", NULL, 0);
    CHECK_ERR(t, st_load(p, &s, err, sizeof err), err, p, "must be a JSON object");
    p = t_path(t, "short.safetensors");
    t_write_file(p, "\x02\x00\x00", 3);
    CHECK_ERR(t, st_load(p, &s, err, sizeof err), err, p, "truncated: 3 bytes");
    t_write_file(p, "", 0);
    CHECK_ERR(t, st_load(p, &s, err, sizeof err), err, p, "empty file");
    p = t_path(t, "missing.safetensors");
    CHECK_ERR(t, st_load(p, &s, err, sizeof err), err, p, "cannot open: No such file or directory");
}

/* ------------------------------------------------------------------------ hostile sweeps */

static void test_sweeps(T *t) {
    char err[512];
    float a[4] = {1, 2, 3, 4};
    int64_t b[2] = {5, 6};
    StWriteTensor w[] = {{"a", DT_F32, 2, (const int64_t[]){2, 2}, a}, {"b", DT_I64, 1, (const int64_t[]){2}, b}};
    const char *keys[] = {"k"}, *vals[] = {"v\\u"};
    const char *good = t_path(t, "good.safetensors");
    CHECK_OK(t, st_save(good, w, 2, keys, vals, 1, err, sizeof err), err);
    size_t n;
    unsigned char *file = t_read_file(good, &n);
    if (!CHECK(t, file != NULL && n > 8)) return;
    const char *p = t_path(t, "cut.safetensors");
    int bad = 0;
    for (size_t len = 0; len < n; len++) {
        Safetensors s;
        t_write_file(p, file, len);
        err[0] = '\0';
        if (st_load(p, &s, err, sizeof err) != -1 || strncmp(err, p, strlen(p)) != 0) bad++;
    }
    CHECK(t, bad == 0);
    static const unsigned char nasty[] = {0x00, 0xff, ' ', '{', '}', '[', ']', ',',  ':', '"',
                                          '\\', '9',  '0', '-', 'u', 'e', '.', 0x80, 0x01};
    size_t header_end = 8 + file[0];
    bad = 0;
    for (size_t pos = 0; pos < header_end; pos++) {
        for (size_t v = 0; v < sizeof nasty; v++) {
            unsigned char keep = file[pos];
            file[pos] = nasty[v];
            t_write_file(p, file, n);
            file[pos] = keep;
            Safetensors s;
            err[0] = '\0';
            int rc = st_load(p, &s, err, sizeof err);
            if (rc == 0) {
                for (int i = 0; i < s.n; i++)
                    if (s.tensors[i].end > n || s.tensors[i].begin > s.tensors[i].end) bad++;
                st_free(&s);
            } else if (rc != -1 || strncmp(err, p, strlen(p)) != 0) {
                bad++;
            }
        }
    }
    CHECK(t, bad == 0);
    free(file);
}

/* ------------------------------------------------------------------------ writer checks */

static void test_save_errors(T *t) {
    char err[512];
    float x[2] = {0};
    const int64_t s2[1] = {2};
    const char *p = t_path(t, "w.safetensors");
    StWriteTensor dup[] = {{"a", DT_F32, 1, s2, x}, {"b", DT_F32, 1, s2, x}, {"a", DT_F32, 1, s2, x}};
    CHECK_ERR(t, st_save(p, dup, 3, NULL, NULL, 0, err, sizeof err), err, p, "duplicate tensor name 'a'");
    StWriteTensor reserved[] = {{"__metadata__", DT_F32, 1, s2, x}};
    CHECK_ERR(t, st_save(p, reserved, 1, NULL, NULL, 0, err, sizeof err), err, p, "reserved name");
    StWriteTensor empty[] = {{"", DT_F32, 1, s2, x}};
    CHECK_ERR(t, st_save(p, empty, 1, NULL, NULL, 0, err, sizeof err), err, p, "empty name");
    StWriteTensor bad_dt[] = {{"a", (DType)99, 1, s2, x}};
    CHECK_ERR(t, st_save(p, bad_dt, 1, NULL, NULL, 0, err, sizeof err), err, p, "invalid dtype or shape");
    StWriteTensor neg[] = {{"a", DT_F32, 1, (const int64_t[]){-2}, x}};
    CHECK_ERR(t, st_save(p, neg, 1, NULL, NULL, 0, err, sizeof err), err, p, "invalid dtype or shape");
    StWriteTensor nodata[] = {{"a", DT_F32, 1, s2, NULL}};
    CHECK_ERR(t, st_save(p, nodata, 1, NULL, NULL, 0, err, sizeof err), err, p, "no data");
    StWriteTensor ok[] = {{"a", DT_F32, 1, s2, x}};
    const char *keys[] = {"k", "k"}, *vals[] = {"1", "2"};
    CHECK_ERR(t, st_save(p, ok, 1, keys, vals, 2, err, sizeof err), err, p, "duplicate metadata key 'k'");
    CHECK(t, !t_file_exists(p) && t_no_tmp_left(p));
    p = "/nonexistent_dino_dir/w.safetensors";
    CHECK_ERR(t, st_save(p, ok, 1, NULL, NULL, 0, err, sizeof err), err, p, "cannot create");
}

void test_safetensors(T *t) {
    test_roundtrip(t);
    test_read_special(t);
    test_errors(t);
    test_sweeps(t);
    test_save_errors(t);
}
