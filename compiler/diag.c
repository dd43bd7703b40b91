/* diag.c - turns a Loc into "file:line:col: error: ..." with the source line and an underline. */
#include "diag.h"

#include <stdarg.h>
#include <string.h>

enum { SHOW_MAX = 160 }; /* a longer source line is shown as a window around the error */
enum { MSG_MAX = 1024 }; /* longest message text */

void diag_init(Diag *d, const Source *src, FILE *out) {
    d->src = src;
    d->out = out;
    d->n_errors = 0;
    d->sink = NULL;
    d->sink_user = NULL;
}

static int is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

/* Prints the source line and a caret line under [col, end) of that line. Bytes that would
 * garble a terminal (control characters, stray high bytes) are shown as '?'. */
static void show_line(Diag *d, Loc loc) {
    size_t len;
    const char *line = source_line(d->src, loc.line, &len);
    size_t col = loc.col > 0 ? (size_t)loc.col - 1 : 0;
    if (col > len) col = len;
    size_t end = loc.end_line == loc.line && loc.end_col > loc.col ? (size_t)loc.end_col - 1 : len;
    if (end > len) end = len;
    if (end <= col) end = col + 1;

    size_t from = 0, to = len;
    if (len > SHOW_MAX) {
        from = col > SHOW_MAX / 2 ? col - SHOW_MAX / 2 : 0;
        to = from + SHOW_MAX < len ? from + SHOW_MAX : len;
        if (end > to) end = to + 1;
    }
    fputs("    ", d->out);
    if (from > 0) fputs("...", d->out);
    for (size_t i = from; i < to; i++) {
        unsigned char c = (unsigned char)line[i];
        int ok = c == '\t' || (c >= 0x20 && c < 0x7f) || (c >= 0x80 && c != 0xff && c != 0xfe);
        fputc(ok ? c : '?', d->out);
    }
    if (to < len) fputs("...", d->out);
    fputc('\n', d->out);

    fputs("    ", d->out);
    if (from > 0) fputs("   ", d->out);
    for (size_t i = from; i < col; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c == '\t') fputc('\t', d->out);
        else if (!is_continuation(c)) fputc(' ', d->out);
    }
    fputc('^', d->out);
    for (size_t i = col + 1; i < end && i < to; i++)
        if (!is_continuation((unsigned char)line[i])) fputc('~', d->out);
    fputc('\n', d->out);
}

/* A message is cut at MSG_MAX bytes: a name a megabyte long is not worth printing whole. */
static void report(Diag *d, const char *kind, Loc loc, const char *fmt, va_list ap) {
    char msg[MSG_MAX];
    if (vsnprintf(msg, sizeof msg, fmt, ap) >= (int)sizeof msg) memcpy(msg + sizeof msg - 4, "...", 4);
    if (d->sink) d->sink(d->sink_user, kind, loc, msg);
    if (loc.line > 0) fprintf(d->out, "%s:%d:%d: %s: %s\n", d->src->path, loc.line, loc.col, kind, msg);
    else fprintf(d->out, "%s: %s: %s\n", d->src->path, kind, msg);
    if (loc.line > 0) show_line(d, loc);
}

void diag_error(Diag *d, Loc loc, const char *fmt, ...) {
    d->n_errors++;
    if (d->n_errors > DIAG_MAX_ERRORS) return;
    va_list ap;
    va_start(ap, fmt);
    report(d, "error", loc, fmt, ap);
    va_end(ap);
}

void diag_note(Diag *d, Loc loc, const char *fmt, ...) {
    if (d->n_errors > DIAG_MAX_ERRORS) return;
    va_list ap;
    va_start(ap, fmt);
    report(d, "note", loc, fmt, ap);
    va_end(ap);
}

void diag_summary(Diag *d) {
    if (d->n_errors > DIAG_MAX_ERRORS) fprintf(d->out, "%d more errors not shown\n", d->n_errors - DIAG_MAX_ERRORS);
    if (d->n_errors > 1) fprintf(d->out, "%d errors\n", d->n_errors);
}
