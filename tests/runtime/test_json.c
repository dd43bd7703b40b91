/* test_json.c - tests of json.c on its own: the node table of a document (types, keys,
 * children in order, integers at their limits, every escape decoded to UTF-8), each syntax
 * error with its message and byte position, the nesting limit, duplicate keys, and the
 * writer's escaping read back by the parser. (test_safetensors.c covers the parser again
 * through the safetensors reader.) */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "test_formats.h"

static int parse(Json *j, const char *text, char *err, size_t errlen) {
    return json_parse(j, text, strlen(text), "doc.json", "header", "tensor name", err, errlen);
}

/* The child of node called key, or -1. */
static int member(const Json *j, int node, const char *key) {
    for (int c = j->nodes[node].first; c >= 0; c = j->nodes[c].next)
        if (strcmp(j->nodes[c].key, key) == 0) return c;
    return -1;
}

static void expect_error(T *t, const char *text, const char *want) {
    Json j;
    char err[512] = "";
    int rc = parse(&j, text, err, sizeof err);
    CHECK_ERR(t, rc, err, "doc.json", want);
    if (t->verbose) printf("  expected: %s\n", err);
    json_free(&j);
}

static void test_tree(T *t) {
    const char *text = " {\"a\": [1, -2, 9223372036854775807, -9223372036854775808],\n"
                       "  \"s\": \"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\","
                       "  \"o\": {}, \"e\": []} ";
    Json j;
    char err[512] = "";
    if (!CHECK_OK(t, parse(&j, text, err, sizeof err), err)) {
        json_free(&j);
        return;
    }
    CHECK(t, j.nodes[0].type == JSON_OBJECT && j.nodes[0].count == 4);
    int a = member(&j, 0, "a"), s = member(&j, 0, "s"), o = member(&j, 0, "o"), e = member(&j, 0, "e");
    CHECK(t, a >= 0 && s >= 0 && o >= 0 && e >= 0);
    if (a >= 0 && CHECK(t, j.nodes[a].type == JSON_ARRAY && j.nodes[a].count == 4)) {
        int64_t want[4] = {1, -2, INT64_MAX, INT64_MIN};
        int i = 0;
        for (int c = j.nodes[a].first; c >= 0; c = j.nodes[c].next, i++)
            CHECK(t, j.nodes[c].type == JSON_INT && j.nodes[c].ival == want[i] && !j.nodes[c].key);
        CHECK(t, i == 4);
    }
    if (s >= 0 && CHECK(t, j.nodes[s].type == JSON_STRING))
        CHECK(t, strcmp(j.nodes[s].str, "q\"\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") == 0);
    if (o >= 0) CHECK(t, j.nodes[o].type == JSON_OBJECT && j.nodes[o].count == 0 && j.nodes[o].first < 0);
    if (e >= 0) CHECK(t, j.nodes[e].type == JSON_ARRAY && j.nodes[e].count == 0);
    json_free(&j);
    json_free(&j); /* safe twice */
}

static void test_errors(T *t) {
    expect_error(t, "{\"a\":", "bad JSON header at byte 5: unexpected end of header");
    expect_error(t, "[]", "the header must be a JSON object");
    expect_error(t, "{} {}", "unexpected text after the JSON object");
    expect_error(t, "{\"a\" 1}", "bad JSON header at byte 5: expected ':' after a key");
    expect_error(t, "{1:2}", "expected a string key");
    expect_error(t, "{\"a\":1 \"b\":2}", "expected ',' or '}'");
    expect_error(t, "{\"a\":[1 2]}", "expected ',' or ']'");
    expect_error(t, "{\"a\":01}", "leading zeros are not allowed");
    expect_error(t, "{\"a\":-}", "expected a digit");
    expect_error(t, "{\"a\":9223372036854775808}", "integer out of range");
    expect_error(t, "{\"a\":-9223372036854775809}", "integer out of range");
    expect_error(t, "{\"a\":2.5}", "only integers are allowed");
    expect_error(t, "{\"a\":false}", "unsupported value");
    expect_error(t, "{\"a\":\"x\ty\"}", "control character in a string");
    expect_error(t, "{\"a\":\"\\x\"}", "invalid escape sequence");
    expect_error(t, "{\"a\":\"\\u12", "truncated \\u escape");
    expect_error(t, "{\"a\":\"\\u12g4\"}", "bad hex digit");
    expect_error(t, "{\"a\":\"\\ud800x\"}", "unpaired surrogate");
    expect_error(t, "{\"a\":\"\\udc00\"}", "unpaired surrogate");
    expect_error(t, "{\"a\":\"\\u0000\"}", "\\u0000 is not supported");
    expect_error(t, "{\"a\":1,\"a\":2}", "duplicate tensor name 'a'");
    expect_error(t, "{\"a\":{\"k\":1,\"k\":2}}", "duplicate key 'k'");
    /* nesting: JSON_MAX_DEPTH levels parse, one more does not */
    char deep[2 * JSON_MAX_DEPTH + 16], *p = deep;
    *p++ = '{';
    p += sprintf(p, "\"a\":");
    for (int i = 1; i < JSON_MAX_DEPTH; i++) *p++ = '[';
    for (int i = 1; i < JSON_MAX_DEPTH; i++) *p++ = ']';
    *p++ = '}';
    *p = 0;
    Json j;
    char err[512] = "";
    CHECK_OK(t, parse(&j, deep, err, sizeof err), err);
    json_free(&j);
    p = deep;
    *p++ = '{';
    p += sprintf(p, "\"a\":");
    for (int i = 0; i < JSON_MAX_DEPTH; i++) *p++ = '[';
    for (int i = 0; i < JSON_MAX_DEPTH; i++) *p++ = ']';
    *p++ = '}';
    *p = 0;
    expect_error(t, deep, "nesting too deep");
    /* the document noun and the root-key noun are the caller's */
    CHECK(t,
          json_parse(&j, "[", 1, "x.json", NULL, NULL, err, sizeof err) == -1 &&
              strcmp(err, "x.json: bad JSON document at byte 0: the document must be a JSON object") == 0);
    json_free(&j);
    CHECK(t,
          json_parse(&j, "{\"k\":1,\"k\":1}", 13, "x.json", NULL, NULL, err, sizeof err) == -1 &&
              strstr(err, "duplicate key 'k'"));
    json_free(&j);
}

/* Every byte 1..255 written by jbuf_string and read back unchanged. */
static void test_writer(T *t) {
    char all[256];
    for (int i = 1; i < 256; i++) all[i - 1] = (char)i;
    all[255] = 0;
    JsonBuf b = {0};
    jbuf_puts(&b, "{");
    jbuf_string(&b, all);
    jbuf_putn(&b, ":", 1);
    jbuf_int(&b, -1234567890123LL);
    jbuf_puts(&b, "}");
    if (!CHECK(t, !b.oom && b.p)) return;
    CHECK(t, memchr(b.p, '\n', b.len) == NULL && memchr(b.p, '\x01', b.len) == NULL);
    Json j;
    char err[512] = "";
    if (CHECK_OK(t, json_parse(&j, b.p, b.len, "w.json", NULL, NULL, err, sizeof err), err)) {
        int c = j.nodes[0].first;
        CHECK(t, c >= 0 && strcmp(j.nodes[c].key, all) == 0);
        CHECK(t, c >= 0 && j.nodes[c].type == JSON_INT && j.nodes[c].ival == -1234567890123LL);
    }
    json_free(&j);
    JsonBuf e = {0};
    jbuf_string(&e, "a\"b\\c\x1f");
    CHECK(t, !e.oom && e.len == 15 && memcmp(e.p, "\"a\\\"b\\\\c\\u001f\"", 15) == 0);
    free(e.p);
    free(b.p);
}

void test_json(T *t) {
    test_tree(t);
    test_errors(t);
    test_writer(t);
}
