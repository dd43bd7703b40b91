/* source.h - a source file in memory and source ranges.
 *
 * A Loc is a range of bytes in one source file, given as 1-based line and column of its first
 * byte and of the byte just past its end. Every token and AST node carries one. This module
 * only loads text and finds lines; diag.c turns a Loc into a message with a caret line. */
#ifndef DINO_SOURCE_H
#define DINO_SOURCE_H

#include <stddef.h>

typedef struct {
    int line, col;         /* first byte, 1-based */
    int end_line, end_col; /* one past the last byte */
} Loc;

typedef struct {
    const char *path; /* as given by the user */
    char *text;       /* the bytes, NUL-terminated (the file may contain NULs itself) */
    size_t len;
    size_t *line_start; /* byte offset of each line; line_start[0] is line 1 */
    int n_lines;
} Source;

enum { SOURCE_MAX_BYTES = 64 << 20 }; /* specs are small; refuse anything above 64 MiB */

/* Reads a file. On failure returns -1 and writes a one-line reason into err. */
int source_load(Source *s, const char *path, char *err, size_t errlen);
/* Wraps text already in memory (copied). */
void source_from_text(Source *s, const char *path, const char *text, size_t len);
void source_free(Source *s);
/* The text of a 1-based line, without its newline (nor a byte-order mark starting the file);
 * *len receives its length. */
const char *source_line(const Source *s, int line, size_t *len);

/* The text of the range `loc` (its first line only) in buf, cut short with "..." when it does
 * not fit; bytes that would garble a terminal become '?'. Returns buf. */
char *source_text(const Source *s, Loc loc, char *buf, size_t len);

Loc loc_span(Loc a, Loc b); /* from the start of a to the end of b */

/* FNV-1a over bytes, continuing from h: HASH_START for a fresh hash. Identifies specs and
 * generated code (cache keys, checkpoint metadata); not for security. */
#define HASH_START 1469598103934665603ull
unsigned long long hash_bytes(const void *data, size_t len, unsigned long long h);

#endif
