/* functions.c - the table of callable functions (see functions.h) and its markdown form. */
#include "functions.h"

#include <string.h>

#include "check.h"
#include "ops.h"

/* docs/language.md's one row for all the activations. */
static const char *const activations_meaning =
    "element-wise activations; `gelu` is the exact erf form, `gelu_tanh` the tanh approximation, "
    "`softplus` returns x above 20 (as PyTorch), `elu` has alpha 1";

const FunctionDef functions[] = {
    {"dense",
     FN_DENSE,
     "dense(x, n, bias = true)",
     "dense(x, n)",
     2,
     2,
     {{"x", ARG_TENSOR, NULL}, {"n", ARG_SIZE, NULL}},
     {{"bias", ARG_BOOL, "true"}},
     "`weight`, `bias`",
     "`W x + b`, W is `[n, dim(x)]`",
     check_dense,
     1,
     lower_dense},
    {"mlp",
     FN_MLP,
     "mlp(x, n, width = w, depth = d, act = gelu, residual = false, bias = true) or widths = [..]",
     "mlp(x, n, width = w, depth = d)",
     2,
     2,
     {{"x", ARG_TENSOR, NULL}, {"n", ARG_SIZE, NULL}},
     {{"width", ARG_SIZE, NULL},
      {"depth", ARG_SIZE, NULL},
      {"widths", ARG_SIZES, NULL},
      {"act", ARG_ACTIVATION, "gelu"},
      {"residual", ARG_BOOL, "false"},
      {"bias", ARG_BOOL, "true"}},
     "numbered",
     "`d` hidden layers `act(dense(h, w))`, then a linear `dense(h, n)`; `widths = [256, 128]` lists the "
     "hidden widths instead of width and depth; with `residual = true`, hidden layer `j >= 1` of the same "
     "width as layer `j-1` is `h + act(dense(h, w))`",
     check_mlp,
     1,
     lower_mlp},
    {"concat",
     FN_CONCAT,
     "concat(a, b, ...)",
     "concat(a, b)",
     1,
     1 << 20,
     {{"a", ARG_TENSORS, NULL}},
     {{0}},
     "none",
     "stack vectors; a scalar such as `t` counts as dimension 1",
     check_concat,
     1,
     lower_concat},
    {"project",
     FN_PROJECT,
     "project(x, \"P.npy\")",
     "project(x, \"P.npy\")",
     2,
     2,
     {{"x", ARG_TENSOR, NULL}, {"P", ARG_FILE, NULL}},
     {{0}},
     "none",
     "fixed linear map `P x`, P is `[n, dim(x)]` read from a `.npy` file relative to the spec file; "
     "not supported by the code generators yet (`--check` says so)",
     check_project,
     0,
     lower_project},
    {"encode",
     FN_ENCODE,
     "encode(x, B)",
     "encode(x, B)",
     2,
     2,
     {{"x", ARG_TENSOR, NULL}, {"B", ARG_BASIS, NULL}},
     {{0}},
     "none (frozen)",
     "reduced coordinates `E^T (x - shift)` of `x` in the basis `B` of the basis section; `dim(x)` must be "
     "`dim(B)`, the result has dimension `rank(B)`",
     check_encode,
     1,
     lower_encode},
    {"decode",
     FN_DECODE,
     "decode(h, B)",
     "decode(h, B)",
     2,
     2,
     {{"h", ARG_TENSOR, NULL}, {"B", ARG_BASIS, NULL}},
     {{0}},
     "none (frozen)",
     "back to the full space: `D h + shift`; `dim(h)` must be `rank(B)`, the result has dimension `dim(B)`",
     check_decode,
     1,
     lower_decode},
#define X(name, doc)                                                                                        \
    {#name, FN_ACT,           #name "(x)", #name "(x)",     1, 1, {{"x", ARG_TENSOR, NULL}}, {{0}}, "none", \
     doc,   check_activation, 1,           lower_activation},
    DINO_ACTIVATIONS(X)
#undef X
};
const int n_functions = (int)(sizeof functions / sizeof functions[0]);

const FunctionDef *function_lookup(const char *name) {
    for (int i = 0; i < n_functions; i++)
        if (strcmp(functions[i].name, name) == 0) return &functions[i];
    return NULL;
}

const FunctionDef *function_of_kind(CallKind kind) {
    for (int i = 0; i < n_functions; i++)
        if (functions[i].kind == kind) return &functions[i];
    return NULL;
}

const char *function_default(const FunctionDef *f, const char *key) {
    for (int i = 0; i < FN_MAX_ARGS && f->keys[i].name; i++)
        if (strcmp(f->keys[i].name, key) == 0) return f->keys[i].fallback;
    return NULL;
}

void functions_print_markdown(FILE *out) {
    fputs("| call | meaning | parameters |\n|---|---|---|\n", out);
    for (int i = 0; i < n_functions; i++) {
        const FunctionDef *f = &functions[i];
        if (f->kind != FN_ACT) {
            fprintf(out, "| `%s` | %s | %s |\n", f->usage, f->meaning, f->params);
            continue;
        }
        if (i > 0 && functions[i - 1].kind == FN_ACT) continue; /* the activations: one row */
        fputs("| `", out);
        for (int j = i; j < n_functions && functions[j].kind == FN_ACT; j++)
            fprintf(out, "%s%s", j > i ? " " : "", functions[j].name);
        fprintf(out, "` | %s | %s |\n", activations_meaning, f->params);
    }
}
