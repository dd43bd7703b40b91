/* dinoc.c - the compiler command: checks a spec and writes what was asked for.
 *
 *   dinoc MODEL.dino [-o OUT] [--target cuda|c] [--emit ast|params|ir|ptx] [--check]
 *
 * Exit status: 0 success, 1 user error (bad spec, bad flag), 2 internal error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "npy.h"

/* Shape of a .npy file, for project(x, "P.npy"). */
static int npy_shape(const char *path, int64_t *shape, int *ndim, char *err, size_t errlen) {
    NpyArray a;
    if (npy_load(path, &a, err, errlen)) return -1;
    *ndim = a.ndim;
    for (int i = 0; i < a.ndim; i++) shape[i] = a.shape[i];
    npy_free(&a);
    return 0;
}

static void usage(FILE *out) {
    fputs("usage: dinoc MODEL.dino [-o OUT] [--target cuda|c] [--emit ast|params|ir|ptx] [--check]\n"
          "  --check         parse and check the spec only\n"
          "  --emit params   print each parameter's name and shape, in definition order\n"
          "  --emit ast      print the syntax tree\n"
          "  -o OUT          write generated source to OUT (default: standard output)\n",
          out);
}

int main(int argc, char **argv) {
    const char *spec = NULL, *out_path = NULL, *emit = NULL, *target = "cuda";
    int check_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--check") == 0) check_only = 1;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--emit") == 0 || strcmp(a, "--target") == 0)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "dinoc: error: %s needs a value\n", a);
                return 1;
            }
            const char *v = argv[++i];
            if (a[1] == 'o') out_path = v;
            else if (a[2] == 'e') emit = v;
            else target = v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "dinoc: error: unknown option '%s'\n", a);
            usage(stderr);
            return 1;
        } else if (spec) {
            fprintf(stderr, "dinoc: error: more than one spec file ('%s' and '%s')\n", spec, a);
            return 1;
        } else {
            spec = a;
        }
    }
    if (!spec) {
        fputs("dinoc: error: no spec file given\n", stderr);
        usage(stderr);
        return 1;
    }
    if (emit && strcmp(emit, "ast") && strcmp(emit, "params")) {
        fprintf(stderr, "dinoc: error: unknown --emit '%s'; expected ast or params\n", emit);
        return 1;
    }
    if (strcmp(target, "cuda") && strcmp(target, "c")) {
        fprintf(stderr, "dinoc: error: unknown --target '%s'; expected cuda or c\n", target);
        return 1;
    }

    Frontend fe;
    int rc = frontend_run(&fe, spec, stderr, 0, npy_shape);
    if (rc == 0 && emit && strcmp(emit, "ast") == 0) ast_print(stdout, fe.ast);
    if (rc == 0 && emit && strcmp(emit, "params") == 0) model_print_params(stdout, fe.model);
    if (rc == 0 && !check_only && !emit) {
        fprintf(stderr, "dinoc: error: code generation (--target %s) is not implemented yet; use --check or --emit\n", target);
        rc = 1;
    }
    (void)out_path;
    frontend_free(&fe);
    return rc;
}
