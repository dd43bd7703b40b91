/* emit.h - the emitters: IR programs -> source text (emit_c.c for the CPU backend,
 * emit_cuda.c and the files of fuse.h for the GPU backend). */
#ifndef DINO_EMIT_H
#define DINO_EMIT_H

#include <stdint.h>
#include <stdio.h>

#include "abi.h"
#include "ir.h"

/* The interface of a generated CPU module and of a CUDA module, the CUDA launch plan and the
 * layout of terms[]: abi.h, the contract with the runtime. */

/* How fuse.c groups a program's kernels (EmitOptions.fuse). */
typedef enum {
    FUSE_AUTO,  /* tile groups when every layer is small enough (see fuse.c), else none */
    FUSE_NONE,  /* one kernel per fused stage, each over the whole batch */
    FUSE_TILES, /* tile groups whatever the layer sizes */
} FuseMode;

typedef struct {
    int f64; /* real is double */
    uint64_t spec_hash;
    int fuse;     /* CUDA only: a FuseMode */
    int no_share; /* CUDA only: write every stage of a tile kernel out, even where equal
                                   stages could share a function (DINO_CUDA_SHARE=0) */
} EmitOptions;

/* Returns 0, or -1 with a message in err (e.g. a project() matrix that can't be read). */
int emit_c(FILE *out, const Model *m, const Programs *pr, const EmitOptions *opt, char *err, size_t errlen);

/* Writes s for the inside of a comment of generated code (emit_text.c): backslashes,
 * control characters (newlines) and bytes outside ASCII escaped as \\ and \xHH, and a backslash
 * between the characters of a * / or / * pair and of ?? (trigraphs), so that no string from a
 * path or a spec can end the comment or inject code. Plain names are written as they are.
 * Returns the characters written. */
/* emit_c.c: the code after dopri5_control that lands on a block's saved times (a STEPCTL node
 * with aux saved times), for both targets. */
struct IrNode;
void emit_landing(FILE *out, const struct IrNode *n, const char *indent);
size_t emit_comment_text(FILE *out, const char *s);

/* The comment block listing every parameter's name, shape and offset in P (both emitters). */
void emit_param_table(FILE *out, const Model *m);

/* checked model -> IR programs -> C source in memory (malloc'd, *len bytes), for dino-jit and
 * the tests. Returns NULL with a message in err when the model can't be generated. */
char *generate_c(Arena *a, const Model *m, JacMode jac, int f64, uint64_t spec_hash, size_t *len, char *err,
                 size_t errlen);

/* Writes a prelude (prelude_c or prelude_cuda, cuda 1) with the default activations, or with
 * fast f32 ones when fast (fast_math.c; only for f32, train { math fast }). 0, or -1 when
 * the prelude lacks the line fast mode replaces. */
int emit_prelude(FILE *out, const char *prelude, int fast, int cuda);

/* ---------------------------------------------------------------------------- CUDA */

/* Writes the .cu and, when plan is not NULL, fills it (cuda_plan_free it). Returns 0, or -1
 * with a message in err (a layer too wide for a CUDA grid, a node the emitter can't run). */
int emit_cuda(FILE *out, const Model *m, const Programs *pr, const EmitOptions *opt, CudaPlan *plan, char *err,
              size_t errlen);

/* checked model -> IR programs -> CUDA source in memory (malloc'd, *len bytes) and its plan
 * (plan may be NULL). Returns NULL with a message in err when the model can't be generated. */
char *generate_cuda(Arena *a, const Model *m, JacMode jac, const EmitOptions *opt, size_t *len, CudaPlan *plan,
                    char *err, size_t errlen);

/* "auto", "none", "tiles" -> a FuseMode; -1 for anything else. */
int fuse_mode(const char *name);

#endif
