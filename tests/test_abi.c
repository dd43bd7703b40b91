/* test_abi.c - the compiler/runtime contract (compiler/abi.h) against what the generators write.
 *
 * The generated sources are self-contained (NVRTC compiles the .cu with no include path), so
 * the generated side spells the contract's constants out itself; this test reads them back:
 *   1. prelude_cuda.h's DINO_STEP_* and DINO_THREADS equal abi.h's DinoStepSlot and
 *      DINO_CUDA_THREADS; the generated C declares dino_abi = DINO_C_ABI and the .cu
 *      dino_abi = DINO_CUDA_ABI; every kernel of the CUDA plan runs DINO_CUDA_THREADS threads
 *   2. the terms[] layout (term_layout, block_terms) against the lowered training program of
 *      specs with pint blocks (with and without a tol) and dopri5: the MONITOR nodes fill
 *      [n_loss, gate_base) exactly once each, the program's gates are the layout's, and every
 *      slot a dopri5 step control writes is inside its block's range
 *
 * Usage: test_abi SHARED_DIR tests/specs/abi_layout.dino. Exit 0 when every check passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "emit.h"
#include "frontend.h"
#include "prelude_cuda.inc"

static int failures, passes;

static void check(int ok, const char *fmt, const char *what) {
    failures += !ok;
    passes += ok;
    printf("  %-4s ", ok ? "ok" : "FAIL");
    printf(fmt, what);
    printf("\n");
}

/* The value of `#define NAME value` or `NAME = value` in text, or -1. */
static long defined(const char *text, const char *name) {
    char pat[96];
    snprintf(pat, sizeof pat, "#define %s ", name);
    const char *p = strstr(text, pat);
    if (!p) {
        snprintf(pat, sizeof pat, "%s = ", name);
        p = strstr(text, pat);
    }
    return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

static void constants(const char *shared) {
    printf("constants:\n");
    static const struct {
        const char *name;
        long value;
    } steps[] = {
        {"DINO_STEP_FIRST", STEP_FIRST},
        {"DINO_STEP_LR", STEP_LR},
        {"DINO_STEP_BC1", STEP_BC1},
        {"DINO_STEP_BC2", STEP_BC2},
        {"DINO_STEP_FIRST_UPDATE", STEP_FIRST_UPDATE},
        {"DINO_STEP_WEIGHTS", STEP_WEIGHTS},
        {"DINO_STEP_VALUES", STEP_VALUES},
        {"DINO_THREADS", DINO_CUDA_THREADS},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        check(defined(prelude_cuda, steps[i].name) == steps[i].value, "prelude_cuda.h's %s equals abi.h's",
              steps[i].name);

    char spec[4096], err[8192];
    snprintf(spec, sizeof spec, "%s/specs/dino_small.dino", shared);
    Frontend fe;
    if (frontend_run(&fe, spec, stderr, 0, NULL)) {
        check(0, "%s parses", spec);
        return;
    }
    size_t len;
    char *c = generate_c(&fe.arena, fe.model, JAC_AUTO, 0, fe.hash, &len, err, sizeof err);
    check(c && defined(c, "const int dino_abi") == DINO_C_ABI, "the generated C: %s = DINO_C_ABI", "dino_abi");
    free(c);
    EmitOptions eo = {.spec_hash = fe.hash};
    CudaPlan plan = {0};
    char *cu = generate_cuda(&fe.arena, fe.model, JAC_AUTO, &eo, &len, &plan, err, sizeof err);
    const char *at = cu ? strstr(cu, "const int dino_abi = ") : NULL;
    check(at && atoi(at + strlen("const int dino_abi = ")) == DINO_CUDA_ABI, "the generated CUDA: %s = DINO_CUDA_ABI",
          "dino_abi");
    int threads_ok = cu && plan.n_train > 0;
    for (int i = 0; i < plan.n_train; i++) threads_ok &= plan.train[i].block == DINO_CUDA_THREADS;
    for (int i = 0; i < plan.n_predict; i++) threads_ok &= plan.predict[i].block == DINO_CUDA_THREADS;
    check(threads_ok, "every kernel of %s's plan runs DINO_CUDA_THREADS threads a block", "dino_small");
    free(cu);
    cuda_plan_free(&plan);
    frontend_free(&fe);
}

/* ---------------------------------------------------------------------------- terms[] */

static void layout(const char *path) {
    char err[8192];
    printf("terms[] layout of %s:\n", path);
    Frontend fe;
    if (frontend_run(&fe, path, stderr, 0, NULL)) {
        check(0, "%s checks", path);
        return;
    }
    const Model *m = fe.model;
    TermLayout tl = term_layout(m);
    Programs pr;
    if (build_programs(&fe.arena, m, JAC_AUTO, &pr, err, sizeof err)) {
        check(0, "build_programs: %s", err);
        frontend_free(&fe);
        return;
    }
    const Program *p = &pr.train;
    check(tl.n_loss == m->n_loss && tl.n_terms == tl.n_loss + tl.n_corrections + tl.n_gates &&
              tl.gate_base == tl.n_loss + tl.n_corrections && tl.n_monitors == tl.n_terms - tl.n_loss,
          "%s: the counts add up", "TermLayout");
    check(p->gate_base == tl.gate_base && p->n_gates == tl.n_gates, "the program's %s are the layout's",
          "gate_base and gates");
    int *seen = calloc((size_t)tl.n_terms + 1, sizeof(int));
    int outside = 0;
    for (int i = 0; i < p->nodes.n; i++) {
        const IrNode *n = p->nodes.items[i];
        if (n->op == IR_MONITOR) {
            if (n->aux < tl.n_loss || n->aux >= tl.gate_base) outside++;
            else seen[n->aux]++;
        }
        if (n->op == IR_STEPCTL)
            for (int j = 0; j < 8; j++)
                if (n->slots[j] >= 0 && (n->slots[j] < tl.gate_base || n->slots[j] >= tl.n_terms)) outside++;
        if (n->op == IR_ERRNORM && (n->aux < tl.gate_base || n->aux >= tl.n_terms)) outside++;
    }
    int once = 1;
    for (int i = tl.n_loss; i < tl.gate_base; i++) once &= seen[i] == 1;
    check(once && outside == 0, "every correction slot written by one %s node, nothing outside the ranges", "MONITOR");
    /* the blocks' ranges tile the corrections and the gates in block order */
    int corr = tl.n_loss, gates = 0, tiled = 1;
    for (int i = 0; i < m->n_odes; i++) {
        BlockTerms bt = block_terms(m, i);
        tiled &= bt.corrections == corr && bt.gates_before == gates;
        corr += bt.n_corrections, gates += bt.n_gates;
    }
    check(tiled && corr == tl.gate_base && gates == tl.n_gates, "%s tile the layout in block order", "block_terms");
    BlockTerms b0 = block_terms(m, 0), b1 = block_terms(m, 1), b2 = block_terms(m, 2);
    check(b0.n_corrections == 6 && b0.n_gates == 2 && b1.n_corrections == 0 && b1.n_gates == 3 * DOPRI5_SLOTS &&
              b2.n_corrections == 4 && b2.n_gates == 0,
          "%s: pint 3 iterations with a tol (6 sums, 2 gates), dopri5 3 attempts, pint 2 iterations", "sizes");
    free(seen);
    frontend_free(&fe);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_abi SHARED_DIR tests/specs/abi_layout.dino\n");
        return 2;
    }
    constants(argv[1]);
    layout(argv[2]);
    printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
