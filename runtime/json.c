/* json.c - the strict JSON parser and the output buffer of json.h.
 *
 * Parsing is recursive descent into a node table: json_value dispatches on the first byte,
 * json_container reads objects and arrays (children linked by first/next), json_string decodes
 * escapes (UTF-16 surrogate pairs to UTF-8) into one buffer sized by the input. */
#include "json.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

static int json_fail(Json *j, const char *what) {
    fio_errf(j->err, j->errlen, "%s: bad JSON %s at byte %zu: %s", j->path, j->doc, j->pos, what);
    return -1;
}

static void json_ws(Json *j) {
    while (j->pos < j->len &&
           (j->src[j->pos] == ' ' || j->src[j->pos] == '\t' || j->src[j->pos] == '\n' || j->src[j->pos] == '\r'))
        j->pos++;
}

static int json_peek(const Json *j) { return j->pos < j->len ? (unsigned char)j->src[j->pos] : -1; }

static int json_new(Json *j, JsonType type) {
    if (j->n == j->cap) {
        int cap = j->cap ? j->cap * 2 : 64;
        JsonNode *p = cap > 0 ? realloc(j->nodes, (size_t)cap * sizeof *p) : NULL;
        if (!p) return json_fail(j, "out of memory");
        j->nodes = p;
        j->cap = cap;
    }
    JsonNode *node = &j->nodes[j->n];
    memset(node, 0, sizeof *node);
    node->type = type;
    node->first = node->next = -1;
    return j->n++;
}

static int json_hex4(Json *j, unsigned *v) {
    if (j->len - j->pos < 4) return json_fail(j, "truncated \\u escape");
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        char c = j->src[j->pos + (size_t)i];
        int d = c >= '0' && c <= '9' ? c - '0'
            : c >= 'a' && c <= 'f'   ? c - 'a' + 10
            : c >= 'A' && c <= 'F'   ? c - 'A' + 10
                                     : -1;
        if (d < 0) return json_fail(j, "bad hex digit in \\u escape");
        x = x * 16 + (unsigned)d;
    }
    j->pos += 4;
    *v = x;
    return 0;
}

/* A string at j->pos (the opening quote), decoded into j->strings. */
static int json_string(Json *j, const char **out) {
    j->pos++;
    char *dst = j->strings + j->slen;
    size_t k = 0;
    for (;;) {
        if (j->pos >= j->len) return json_fail(j, "unterminated string");
        unsigned char c = (unsigned char)j->src[j->pos];
        if (c == '"') {
            j->pos++;
            break;
        }
        if (c < 0x20) return json_fail(j, "control character in a string");
        if (c != '\\') {
            dst[k++] = (char)c;
            j->pos++;
            continue;
        }
        if (j->pos + 1 >= j->len) return json_fail(j, "unterminated string");
        char e = j->src[j->pos + 1];
        j->pos += 2;
        switch (e) {
        case '"': dst[k++] = '"'; break;
        case '\\': dst[k++] = '\\'; break;
        case '/': dst[k++] = '/'; break;
        case 'b': dst[k++] = '\b'; break;
        case 'f': dst[k++] = '\f'; break;
        case 'n': dst[k++] = '\n'; break;
        case 'r': dst[k++] = '\r'; break;
        case 't': dst[k++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (json_hex4(j, &cp)) return -1;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return json_fail(j, "unpaired surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (j->len - j->pos < 2 || j->src[j->pos] != '\\' || j->src[j->pos + 1] != 'u')
                    return json_fail(j, "unpaired surrogate in \\u escape");
                j->pos += 2;
                if (json_hex4(j, &lo)) return -1;
                if (lo < 0xDC00 || lo > 0xDFFF) return json_fail(j, "unpaired surrogate in \\u escape");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0) return json_fail(j, "\\u0000 is not supported in strings");
            if (cp < 0x80) {
                dst[k++] = (char)cp;
            } else if (cp < 0x800) {
                dst[k++] = (char)(0xC0 | cp >> 6);
                dst[k++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                dst[k++] = (char)(0xE0 | cp >> 12);
                dst[k++] = (char)(0x80 | (cp >> 6 & 0x3F));
                dst[k++] = (char)(0x80 | (cp & 0x3F));
            } else {
                dst[k++] = (char)(0xF0 | cp >> 18);
                dst[k++] = (char)(0x80 | (cp >> 12 & 0x3F));
                dst[k++] = (char)(0x80 | (cp >> 6 & 0x3F));
                dst[k++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: j->pos -= 2; return json_fail(j, "invalid escape sequence");
        }
    }
    dst[k] = '\0';
    j->slen += k + 1;
    *out = dst;
    return 0;
}

static int json_int(Json *j, int64_t *v) {
    int neg = 0;
    if (json_peek(j) == '-') {
        neg = 1;
        j->pos++;
    }
    int c = json_peek(j);
    if (c < '0' || c > '9') return json_fail(j, "expected a digit");
    if (c == '0' && j->pos + 1 < j->len && j->src[j->pos + 1] >= '0' && j->src[j->pos + 1] <= '9')
        return json_fail(j, "leading zeros are not allowed");
    uint64_t x = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    while ((c = json_peek(j)) >= '0' && c <= '9') {
        unsigned d = (unsigned)(c - '0');
        if (x > (limit - d) / 10) return json_fail(j, "integer out of range");
        x = x * 10 + d;
        j->pos++;
    }
    if (c == '.' || c == 'e' || c == 'E') return json_fail(j, "only integers are allowed (no fractions or exponents)");
    *v = neg ? (x == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)x) : (int64_t)x;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Object keys must be distinct (JSON allows duplicates; a checkpoint must not). */
static int json_check_keys(Json *j, int obj) {
    int n = j->nodes[obj].count;
    if (n < 2) return 0;
    const char **keys = malloc((size_t)n * sizeof *keys); /* (n,) */
    if (!keys) return json_fail(j, "out of memory");
    int i = 0;
    for (int c = j->nodes[obj].first; c >= 0; c = j->nodes[c].next) keys[i++] = j->nodes[c].key;
    qsort(keys, (size_t)n, sizeof *keys, cmp_str);
    for (i = 1; i < n; i++) {
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            char shown[80], what[160];
            fio_printable(shown, sizeof shown, keys[i], strlen(keys[i]), 64);
            snprintf(what, sizeof what, "duplicate %s '%s'", obj == 0 && j->root_keys ? j->root_keys : "key", shown);
            free(keys);
            return json_fail(j, what);
        }
    }
    free(keys);
    return 0;
}

static int json_value(Json *j, int *out);

/* An object or array at j->pos (the opening bracket). */
static int json_container(Json *j, int *out) {
    int is_obj = j->src[j->pos] == '{';
    char close = is_obj ? '}' : ']';
    if (++j->depth > JSON_MAX_DEPTH) return json_fail(j, "nesting too deep");
    int self = json_new(j, is_obj ? JSON_OBJECT : JSON_ARRAY);
    if (self < 0) return -1;
    j->pos++;
    json_ws(j);
    if (json_peek(j) == close) {
        j->pos++;
    } else {
        int last = -1;
        for (;;) {
            const char *key = NULL;
            json_ws(j);
            if (is_obj) {
                if (json_peek(j) != '"') return json_fail(j, "expected a string key");
                if (json_string(j, &key)) return -1;
                json_ws(j);
                if (json_peek(j) != ':') return json_fail(j, "expected ':' after a key");
                j->pos++;
            }
            int child;
            if (json_value(j, &child)) return -1;
            j->nodes[child].key = key;
            if (last < 0) j->nodes[self].first = child;
            else j->nodes[last].next = child;
            last = child;
            j->nodes[self].count++;
            json_ws(j);
            int c = json_peek(j);
            if (c == ',') {
                j->pos++;
                continue;
            }
            if (c == close) {
                j->pos++;
                break;
            }
            return json_fail(j, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    j->depth--;
    if (is_obj && json_check_keys(j, self)) return -1;
    *out = self;
    return 0;
}

static int json_value(Json *j, int *out) {
    json_ws(j);
    int c = json_peek(j);
    if (c < 0) {
        char what[64];
        snprintf(what, sizeof what, "unexpected end of %s", j->doc);
        return json_fail(j, what);
    }
    if (c == '{' || c == '[') return json_container(j, out);
    int node;
    if (c == '"') {
        const char *s;
        if (json_string(j, &s)) return -1;
        if ((node = json_new(j, JSON_STRING)) < 0) return -1;
        j->nodes[node].str = s;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        int64_t v;
        if (json_int(j, &v)) return -1;
        if ((node = json_new(j, JSON_INT)) < 0) return -1;
        j->nodes[node].ival = v;
    } else {
        return json_fail(j, "unsupported value (only objects, arrays, strings and integers)");
    }
    *out = node;
    return 0;
}

int json_parse(Json *j, const char *src, size_t len, const char *path, const char *doc, const char *root_keys,
               char *err, size_t errlen) {
    memset(j, 0, sizeof *j);
    j->src = src;
    j->len = len;
    j->path = path;
    j->doc = doc ? doc : "document";
    j->root_keys = root_keys;
    j->err = err;
    j->errlen = errlen;
    j->strings = malloc(len + 1);
    if (!j->strings) return json_fail(j, "out of memory");
    json_ws(j);
    if (json_peek(j) != '{') {
        char what[64];
        snprintf(what, sizeof what, "the %s must be a JSON object", j->doc);
        return json_fail(j, what);
    }
    int root;
    if (json_value(j, &root)) return -1;
    json_ws(j);
    if (j->pos != j->len) return json_fail(j, "unexpected text after the JSON object");
    return 0;
}

void json_free(Json *j) {
    free(j->nodes);
    free(j->strings);
    j->nodes = NULL;
    j->strings = NULL;
}

/* ------------------------------------------------------------------------ writing */

void jbuf_putn(JsonBuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void jbuf_puts(JsonBuf *b, const char *s) { jbuf_putn(b, s, strlen(s)); }

void jbuf_int(JsonBuf *b, long long v) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", v);
    jbuf_puts(b, tmp);
}

void jbuf_string(JsonBuf *b, const char *s) {
    jbuf_putn(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"') jbuf_puts(b, "\\\"");
        else if (c == '\\') jbuf_puts(b, "\\\\");
        else if (c == '\n') jbuf_puts(b, "\\n");
        else if (c == '\r') jbuf_puts(b, "\\r");
        else if (c == '\t') jbuf_puts(b, "\\t");
        else if (c == '\b') jbuf_puts(b, "\\b");
        else if (c == '\f') jbuf_puts(b, "\\f");
        else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            jbuf_puts(b, esc);
        } else {
            jbuf_putn(b, (const char *)&c, 1);
        }
    }
    jbuf_putn(b, "\"", 1);
}
