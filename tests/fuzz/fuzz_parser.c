/* fuzz_parser.c - libFuzzer harness: arbitrary bytes through the whole front end.
 *
 * Each input goes source_from_text -> parse_source -> check_file (as dinoc --check does: the
 * checker runs only on a tree without syntax errors), then the AST dump and the parameter
 * table, with every diagnostic written to /dev/null. The arena and the source are freed after
 * each input, so LeakSanitizer sees any leak. project("P.npy") gets a made-up shape instead of
 * a file. Build and run it with tests/fuzz/run_fuzz.sh; it must not touch the file system. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "frontend.h"
#include "parse.h"

/* project(x, "P.npy"): names starting with 'x' do not exist, the others are [3, 4] matrices. */
static int fake_npy_shape(const char *path, int64_t *shape, int *ndim, char *err, size_t errlen) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (base[0] == 'x') {
        snprintf(err, errlen, "cannot open '%s'", path);
        return -1;
    }
    *ndim = 2;
    shape[0] = 3;
    shape[1] = 4;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *sink;
    if (!sink) sink = fopen("/dev/null", "w");
    if (!sink) return 0;

    Source src;
    source_from_text(&src, "fuzz.dino", (const char *)data, size);
    Arena arena = {0};
    Diag diag;
    diag_init(&diag, &src, sink);
    AstFile *ast = parse_source(&arena, &diag, &src);
    if (diag.n_errors == 0) {
        CheckOptions opt = {.spec_dir = "specs", .npy_shape = fake_npy_shape};
        Model *m = check_file(&arena, &diag, ast, &opt);
        ast_print(sink, ast);
        if (m) model_print_params(sink, m);
    }
    diag_summary(&diag);
    arena_free(&arena);
    source_free(&src);
    return 0;
}
