/* source.c - loading source files and finding their lines (see source.h). */
#include "source.h"
#include "arena.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void index_lines(Source *s) {
    int cap = 64;
    s->line_start = malloc(sizeof(size_t) * (size_t)cap);
    if (!s->line_start) arena_out_of_memory();
    s->n_lines = 0;
    s->line_start[s->n_lines++] = 0;
    for (size_t i = 0; i < s->len; i++) {
        if (s->text[i] != '\n') continue;
        if (s->n_lines == cap) {
            cap *= 2;
            size_t *grown = realloc(s->line_start, sizeof(size_t) * (size_t)cap);
            if (!grown) arena_out_of_memory();
            s->line_start = grown;
        }
        s->line_start[s->n_lines++] = i + 1;
    }
}

int source_load(Source *s, const char *path, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->path = path;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cannot read '%s': it is a directory", path);
        fclose(f);
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *text = malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= SOURCE_MAX_BYTES) {
                snprintf(err, errlen, "'%s' is larger than %d MiB; a .dino spec is a small text file", path,
                         SOURCE_MAX_BYTES >> 20);
                free(text);
                fclose(f);
                return -1;
            }
            cap *= 2;
            text = realloc(text, cap + 1);
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        free(text);
        fclose(f);
        return -1;
    }
    fclose(f);
    text[len] = 0;
    s->text = text;
    s->len = len;
    index_lines(s);
    return 0;
}

void source_from_text(Source *s, const char *path, const char *text, size_t len) {
    memset(s, 0, sizeof *s);
    s->path = path;
    s->text = malloc(len + 1);
    if (!s->text) arena_out_of_memory();
    memcpy(s->text, text, len);
    s->text[len] = 0;
    s->len = len;
    index_lines(s);
}

void source_free(Source *s) {
    free(s->text);
    free(s->line_start);
    memset(s, 0, sizeof *s);
}

const char *source_line(const Source *s, int line, size_t *len) {
    if (line < 1 || line > s->n_lines) {
        *len = 0;
        return "";
    }
    size_t a = s->line_start[line - 1];
    size_t b = line < s->n_lines ? s->line_start[line] - 1 : s->len;
    if (line == 1 && b >= 3 && memcmp(s->text, "\xEF\xBB\xBF", 3) == 0) a = 3; /* a byte-order mark */
    if (b > a && s->text[b - 1] == '\r') b--;
    *len = b - a;
    return s->text + a;
}

char *source_text(const Source *s, Loc loc, char *buf, size_t len) {
    if (len == 0) return buf;
    size_t n;
    const char *line = source_line(s, loc.line, &n);
    size_t from = loc.col > 0 ? (size_t)loc.col - 1 : 0;
    size_t to = loc.end_line == loc.line && loc.end_col > loc.col ? (size_t)loc.end_col - 1 : n;
    if (from > n) from = n;
    if (to > n) to = n;
    int cut = to - from > len - 1;
    size_t room = !cut ? len - 1 : len > 4 ? len - 4 : 0;
    if (cut) /* do not split a UTF-8 character */
        while (room > 0 && ((unsigned char)line[from + room] & 0xC0) == 0x80) room--;
    size_t k = 0;
    for (size_t i = from; i < to && k < room; i++) {
        unsigned char c = (unsigned char)line[i];
        buf[k++] = (c >= 0x20 && c < 0x7f) || c >= 0x80 ? (char)c : '?';
    }
    if (cut && len > 4) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = 0;
    return buf;
}

Loc loc_span(Loc a, Loc b) {
    Loc r = a;
    r.end_line = b.end_line;
    r.end_col = b.end_col;
    return r;
}

unsigned long long hash_bytes(const void *data, size_t len, unsigned long long h) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}
