/* frontend.c - load, parse, check (see frontend.h). */
#include "frontend.h"

#include <string.h>

#include "parse.h"

int frontend_run(Frontend *fe, const char *path, FILE *diag_out, int parse_only, NpyShapeFn npy_shape) {
    memset(fe, 0, sizeof *fe);
    char err[512];
    if (source_load(&fe->src, path, err, sizeof err)) {
        fprintf(diag_out, "%s: error: %s\n", path, err);
        return 1;
    }
    fe->hash = hash_bytes(fe->src.text, fe->src.len, HASH_START);
    diag_init(&fe->diag, &fe->src, diag_out);
    fe->ast = parse_source(&fe->arena, &fe->diag, &fe->src);
    if (fe->diag.n_errors == 0 && !parse_only) {
        const char *slash = strrchr(path, '/');
        fe->spec_dir = slash ? arena_strndup(&fe->arena, path, (size_t)(slash - path + (slash == path))) : ".";
        CheckOptions opt = {.spec_dir = fe->spec_dir, .npy_shape = npy_shape};
        fe->model = check_file(&fe->arena, &fe->diag, fe->ast, &opt);
    }
    diag_summary(&fe->diag);
    return fe->diag.n_errors ? 1 : 0;
}

void frontend_free(Frontend *fe) {
    arena_free(&fe->arena);
    source_free(&fe->src);
}

void model_print_params(FILE *out, const Model *m) {
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        if (p->ndim == 2) fprintf(out, "%s [%d, %d]\n", p->name, p->shape[0], p->shape[1]);
        else fprintf(out, "%s [%d]\n", p->name, p->shape[0]);
    }
}
