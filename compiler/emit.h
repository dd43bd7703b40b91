/* emit.h - the emitters: IR programs -> source text (emit_c.c for the CPU backend,
 * emit_cuda.c and the files of fuse.h for the GPU backend). */
#ifndef DINO_EMIT_H
#define DINO_EMIT_H

#include <stdint.h>
#include <stdio.h>

#include "ir.h"

/* The interface of a generated CPU module (what dino-jit looks up with dlsym):
 *
 *   const int  dino_abi;                 DINO_C_ABI
 *   const int  dino_in, dino_out;        input and output dimension
 *   const long dino_n_params;            elements in the flat parameter buffer
 *   const int  dino_f64;                 real is double
 *   const unsigned long long dino_spec_hash;
 *   long dino_predict_work(int nmax);    workspace (reals) for batches up to nmax
 *   void dino_predict(const real *P, int n, int nmax, const real *x, real *y, real *J, real *work);
 *        x [n, in] -> y [n, out], J [n, out, in] (J may be NULL; classifiers give no J)
 *   long dino_train_work(int nmax);
 *   void dino_train_step(const real *P, real *G, int n, int nmax, const real *x, const real *y,
 *                        const real *J, const int32_t *label, const double *w, double *terms,
 *                        real *work);
 *        one batch: G = d loss / d P (overwritten), terms[i] = mean of loss term i over the
 *        batch (unweighted), with the term weights w[i] applied to the gradient. */
enum { DINO_C_ABI = 1 };

/* How fuse.c groups a program's kernels (EmitOptions.fuse). */
typedef enum {
    FUSE_AUTO,      /* tile groups when every layer is small enough (see fuse.c), else none */
    FUSE_NONE,      /* one kernel per fused stage, each over the whole batch */
    FUSE_TILES,     /* tile groups whatever the layer sizes */
} FuseMode;

typedef struct {
    int f64;                    /* real is double */
    uint64_t spec_hash;
    int fuse;                   /* CUDA only: a FuseMode */
    int no_share;               /* CUDA only: write every stage of a tile kernel out, even where equal
                                   stages could share a function (DINO_CUDA_SHARE=0) */
} EmitOptions;

/* Returns 0, or -1 with a message in err (e.g. a project() matrix that can't be read). */
int emit_c(FILE *out, const Model *m, const Programs *pr, const EmitOptions *opt, char *err, size_t errlen);

/* Writes s for the inside of a comment of generated code (emit_text.c): backslashes,
 * control characters (newlines) and bytes outside ASCII escaped as \\ and \xHH, and a backslash
 * between the characters of a * / or / * pair and of ?? (trigraphs), so that no string from a
 * path or a spec can end the comment or inject code. Plain names are written as they are.
 * Returns the characters written. */
size_t emit_comment_text(FILE *out, const char *s);

/* The comment block listing every parameter's name, shape and offset in P (both emitters). */
void emit_param_table(FILE *out, const Model *m);

/* checked model -> IR programs -> C source in memory (malloc'd, *len bytes), for dino-jit and
 * the tests. Returns NULL with a message in err when the model can't be generated. */
char *generate_c(Arena *a, const Model *m, JacMode jac, int f64, uint64_t spec_hash, size_t *len, char *err,
                 size_t errlen);

/* ---------------------------------------------------------------------------- CUDA */
/* The interface of a generated CUDA module (emit_cuda.c), compiled by NVRTC and run with the
 * driver API. Each program is a list of kernels, launched in order on one stream, every one
 * with the arguments of the CPU functions above (the same pointers, device memory):
 *
 *   (const real *P, real *G, int n, int nmax, const real *x, real *y, real *J,
 *    const int32_t *label, const double *w, double *terms, real *work)
 *
 *   predict:  dino_predict_k0 .. k<n_predict-1>: x [n, in] -> y [n, out], J [n, out, in] (J may
 *             be NULL; classifiers give none). G, label, w, terms are unused (pass NULL).
 *   train:    dino_train_k0 .. k<n_train-1>: one batch. k0 zeroes G and terms; afterwards
 *             G = d loss / d P, terms[i] = mean of loss term i over the batch (unweighted),
 *             with the weights w[i] applied to the gradient, as dino_train_step.
 *   work:     nmax * predict_work (train_work) reals of device memory, for batches n <= nmax.
 *
 * The extern "C" utility kernels of prelude_cuda.h (dino_set_step, dino_gather, dino_gather_label, dino_iota,
 * dino_accumulate_loss, dino_adam, dino_adamw, dino_sgd) are in every module too. The step's
 * scalars that change from step to step are read from device memory (a step's launches can
 * then be captured once as a CUDA graph and replayed): dino_set_step(step, DinoStep) writes
 * them, in this layout (prelude_cuda.h's DINO_STEP_*). */
enum { DINO_CUDA_ABI = 2 };
typedef enum {
    STEP_FIRST,             /* the batch's first position in the epoch's row order (gathers) */
    STEP_LR,                /* the scheduled learning rate */
    STEP_BC1, STEP_BC2,     /* Adam: 1 - beta1^t, 1 - beta2^t */
    STEP_FIRST_UPDATE,      /* SGD: 1 on the first step (the momentum buffer starts at g) */
    STEP_WEIGHTS,           /* the loss weights w[0 .. n_loss) from here (the train kernels' w) */
    STEP_VALUES = 16        /* doubles in DinoStep */
} DinoStepSlot;

/* How to launch one kernel of a program for a batch of n rows: block (block, 1, 1),
 * grid (cuda_grid_x(l, n, max_tiles), grid_y, grid_z), `shared` bytes of dynamic shared memory.
 * A tile kernel (tiles = 1) runs many stages for a tile of samples per block, its grid.x is
 * min(n, max_tiles) and the runtime chooses max_tiles (about two blocks per multiprocessor);
 * the kernel splits the batch into gridDim.x tiles itself, so any grid.x from 1 to n works. */
typedef struct {
    char kernel[64];        /* entry point: "dino_train_k3" */
    long per_sample;        /* > 0: grid.x = ceil(n * per_sample / per_block); 0: grid.x = fixed_x */
    int per_block;
    int fixed_x;
    int tiles;              /* a tile kernel: grid.x = min(n, max_tiles) */
    int stages;             /* the stages (fused kernels) it runs: 1, or more in a tile kernel */
    int grid_y, grid_z;     /* >= 1 */
    int block;              /* threads per block (256) */
    int shared;             /* dynamic shared memory in bytes (0: the kernels' shared memory is static) */
} CudaLaunch;

typedef struct {
    CudaLaunch *predict, *train;    /* in launch order; malloc'd, cuda_plan_free */
    int n_predict, n_train;
    long predict_work, train_work;  /* workspace reals per row of batch capacity nmax */
    int in, out, n_loss, f64;
    long long n_params;
    uint64_t spec_hash;
} CudaPlan;

/* grid.x for a batch of n rows (at least 1: kernels check their bounds). */
static inline long cuda_grid_x(const CudaLaunch *l, int n, int max_tiles) {
    long x = l->tiles ? (n < max_tiles ? n : max_tiles)
             : l->per_sample > 0 ? ((long)n * l->per_sample + l->per_block - 1) / l->per_block : l->fixed_x;
    return x > 0 ? x : 1;
}

void cuda_plan_free(CudaPlan *plan);

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
