/* diag.h - error messages that point at the source.
 *
 * Format (CONVENTIONS.md):
 *     file:line:col: error: message
 *         h2 = dense(h1, 16) + h1
 *              ^~~~~~~~~~~~~~~~~~
 * Every stage reports through a Diag and goes on, so one run shows every error it can find.
 * After DIAG_MAX_ERRORS errors, further ones are counted but not printed. */
#ifndef DINO_DIAG_H
#define DINO_DIAG_H

#include <stdio.h>

#include "source.h"

enum { DIAG_MAX_ERRORS = 50 };

/* Optional: every diagnostic that is printed is also passed here, as data (libdino's
 * dino_spec_diagnostic); kind is "error" or "note", msg the message without location. */
typedef void (*DiagSink)(void *user, const char *kind, Loc loc, const char *msg);

typedef struct {
    const Source *src;
    FILE *out;
    int n_errors;
    DiagSink sink; /* NULL: none (diag_init) */
    void *sink_user;
} Diag;

void diag_init(Diag *d, const Source *src, FILE *out);
void diag_error(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prints "N errors" when more than one, and the count of suppressed ones. */
void diag_summary(Diag *d);

#endif
