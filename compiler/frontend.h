/* frontend.h - source file -> checked model in one call: load, parse, fold, check.
 * Used by dinoc and dino-jit. Diagnostics go to the given stream. */
#ifndef DINO_FRONTEND_H
#define DINO_FRONTEND_H

#include <stdint.h>
#include <stdio.h>

#include "ast.h"
#include "diag.h"
#include "model.h"

typedef struct {
    Arena arena;
    Source src;
    Diag diag;
    AstFile *ast;
    Model *model;
    char *spec_dir;
    uint64_t hash; /* of the spec's text (hash_bytes) */
} Frontend;

/* Returns 0 when the spec is valid (fe->model set), 1 after user errors (reported). With
 * parse_only, stops after parsing (fe->ast set). The Frontend must be freed either way. */
int frontend_run(Frontend *fe, const char *path, FILE *diag_out, int parse_only, NpyShapeFn npy_shape);
void frontend_free(Frontend *fe);

/* One line per parameter: name and shape, in definition order (dinoc --emit params). */
void model_print_params(FILE *out, const Model *m);

#endif
