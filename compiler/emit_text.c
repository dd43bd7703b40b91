/* emit_text.c - strings from a spec or a path (the spec's path, model, parameter and tensor
 * names), made safe to put inside a comment of generated C or CUDA. */
#include "emit.h"

size_t emit_comment_text(FILE *out, const char *s) {
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        int next = c[1];
        if (*c == '\\') n += (size_t)fprintf(out, "\\\\");
        else if (*c < 0x20 || *c >= 0x7f) n += (size_t)fprintf(out, "\\x%02x", *c); /* newlines, non-ASCII */
        else if (*c == '*' && next == '/') n += (size_t)fprintf(out, "*\\");        /* no end of comment */
        else if (*c == '/' && next == '*') n += (size_t)fprintf(out, "/\\");        /* no comment in a comment */
        else if (*c == '?' && next == '?') n += (size_t)fprintf(out, "?\\");        /* no trigraph (C) */
        else fputc(*c, out), n++;
    }
    return n;
}
