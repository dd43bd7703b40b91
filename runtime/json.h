/* json.h - a small strict JSON parser and writer for file headers (the safetensors header).
 *
 * Parsing: the subset of JSON a header needs: objects, arrays, strings (with all JSON escapes,
 * \u0000 excepted) and integers; true, false, null, fractions and exponents are rejected.
 * Nothing is trusted: every read is bounds-checked, integers are overflow-checked, nesting is
 * limited to JSON_MAX_DEPTH, the keys of an object must be distinct (JSON allows duplicates; a
 * checkpoint must not). The document is parsed into a table of nodes; node 0 is the root,
 * which must be an object.
 *
 * Writing: a growable byte buffer with string escaping; building a document is the caller's.
 *
 * Errors are one line in err: "PATH: bad JSON DOC at byte N: what" (DOC is the noun the caller
 * gives, e.g. "header"). Nothing here prints or exits. */
#ifndef DINO_JSON_H
#define DINO_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64

typedef enum {
    JSON_OBJECT, /* children are the members, each with its key */
    JSON_ARRAY,  /* children are the elements */
    JSON_STRING, /* str */
    JSON_INT,    /* ival */
} JsonType;

typedef struct {
    JsonType type;
    int64_t ival;    /* JSON_INT */
    const char *str; /* JSON_STRING: decoded, NUL-terminated, inside Json.strings */
    const char *key; /* member name when the parent is an object, else NULL */
    int first, next; /* first child, next sibling: indices into Json.nodes, -1 for none */
    int count;       /* number of children */
} JsonNode;

typedef struct {
    JsonNode *nodes; /* (n,) nodes; node 0 is the root object */
    int n, cap;
    /* the parser's state; callers only read nodes and n */
    const char *src; /* the text, (len,) bytes, not NUL-terminated */
    size_t len, pos;
    char *strings; /* (len + 1,) decoded strings; a decoded string plus its NUL is never
                       longer than its quoted source, so this cannot overflow */
    size_t slen;
    int depth;
    const char *path, *doc, *root_keys;
    char *err;
    size_t errlen;
} Json;

/* Parse src[0..len) into *j (the root must be an object). path names the file in messages,
 * doc names the document ("header"; NULL: "document"), root_keys what the root object's keys are ("tensor name") in
 * the duplicate-key message (NULL: "key"). Returns 0, or -1 with err set; call json_free in
 * both cases. */
int json_parse(Json *j, const char *src, size_t len, const char *path, const char *doc, const char *root_keys,
               char *err, size_t errlen);
/* Release what json_parse took; safe twice. */
void json_free(Json *j);

/* A growable output buffer; zero-initialise it. After an allocation failure every write is a
 * no-op and oom stays set; check it once at the end. */
typedef struct {
    char *p; /* (cap,) bytes, len used; owned (free(p)) */
    size_t len, cap;
    int oom;
} JsonBuf;

void jbuf_putn(JsonBuf *b, const char *s, size_t n);
void jbuf_puts(JsonBuf *b, const char *s);
void jbuf_int(JsonBuf *b, long long v);
/* A JSON string literal: quotes, backslashes and control characters escaped; other bytes
 * (UTF-8) as they are. */
void jbuf_string(JsonBuf *b, const char *s);

#endif
