/* error.c - dino.h's version, per-thread error messages and dino_free. */
#include <stdio.h>
#include <stdlib.h>

#include "api.h"

#define STR2(x) #x
#define STR(x) STR2(x)

const char *dino_version(void) {
    return STR(DINO_VERSION_MAJOR) "." STR(DINO_VERSION_MINOR) "." STR(DINO_VERSION_PATCH);
}

static _Thread_local char last_error[16384];
static _Thread_local int last_complete;

dino_status api_fail(dino_status status, int complete, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    last_complete = complete;
    return status;
}

const char *dino_last_error(void) { return last_error; }

int dino_last_error_is_complete(void) { return last_complete; }

void dino_free(void *p) { free(p); }

JacMode api_jac_mode(dino_jacobian j) {
    return j == DINO_JACOBIAN_FORWARD ? JAC_FORWARD : j == DINO_JACOBIAN_REVERSE ? JAC_REVERSE : JAC_AUTO;
}
