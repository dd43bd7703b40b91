/* abi.h - the contract between the code generators (emit_c.c, emit_cuda.c, lower.c) and the
 * runtime (backend_cpu.c, backend_cuda.c, train.c): what a generated module exports, how its
 * kernels are launched, what the step's scalars are, and the layout of `terms[]`. Both sides
 * read this header and nothing else of the other: the runtime never includes ir.h or emit.h
 * for these, and a change here is a change of DINO_C_ABI or DINO_CUDA_ABI.
 *
 * Nothing here prints or exits. */
#ifndef DINO_ABI_H
#define DINO_ABI_H

#include <stdint.h>

#include "model.h"

/* ---------------------------------------------------------------------------- the C module */
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
 *   void dino_predict_terms(... the same ..., double *terms);
 *        dino_predict, and when terms is not NULL the program's terms[] (TermLayout, n_terms
 *        doubles; the loss terms 0) copied out: the gates tell whether dopri5 reached t1
 *   long dino_train_work(int nmax);
 *   void dino_train_step(const real *P, real *G, int n, int nmax, const real *x, const real *y,
 *                        const real *J, const int32_t *label, const double *w, double *terms,
 *                        real *work);
 *        one batch: G = d loss / d P (overwritten), terms[] as TermLayout below (loss term i =
 *        mean of term i over the batch, unweighted), with the term weights w[i] applied to
 *        the gradient. */
enum { DINO_C_ABI = 1 };

/* ---------------------------------------------------------------------------- the CUDA module */
/* The interface of a generated CUDA module (emit_cuda.c), compiled by NVRTC and run with the
 * driver API. Each program is a list of kernels, launched in order on one stream, every one
 * with the arguments of the CPU functions above (the same pointers, device memory):
 *
 *   (const real *P, real *G, int n, int nmax, const real *x, real *y, real *J,
 *    const int32_t *label, const double *w, double *terms, real *work)
 *
 *   predict:  the plan's predict kernels: x [n, in] -> y [n, out], J [n, out, in] (J may
 *             be NULL; classifiers give none). G, label, w, terms are unused (pass NULL).
 *   train:    the plan's train kernels: one batch. The first zeroes G and terms; afterwards
 *             G = d loss / d P, terms[] as TermLayout (loss terms unweighted batch means),
 *             with the weights w[i] applied to the gradient, as dino_train_step.
 *   work:     nmax * predict_work (train_work) reals of device memory, for batches n <= nmax.
 *
 * The extern "C" utility kernels of prelude_cuda.h (dino_set_step, dino_gather, dino_gather_label, dino_iota,
 * dino_accumulate_loss, dino_adam, dino_adamw, dino_sgd) are in every module too; they run in
 * blocks of DINO_CUDA_THREADS threads. The step's scalars that change from step to step are
 * read from device memory (a step's launches can then be captured once as a CUDA graph and
 * replayed): dino_set_step(step, DinoStep) writes them, in this layout (prelude_cuda.h's
 * DINO_STEP_* say the same for the generated side). */
enum { DINO_CUDA_ABI = 2 };
enum {
    DINO_CUDA_THREADS = 256
}; /* threads per block of every generated and utility kernel (prelude_cuda.h's DINO_THREADS) */
typedef enum {
    STEP_FIRST, /* the batch's first position in the epoch's row order (gathers) */
    STEP_LR,    /* the scheduled learning rate */
    STEP_BC1,
    STEP_BC2,          /* Adam: 1 - beta1^t, 1 - beta2^t */
    STEP_FIRST_UPDATE, /* SGD: 1 on the first step (the momentum buffer starts at g) */
    STEP_WEIGHTS,      /* the loss weights w[0 .. n_loss) from here (the train kernels' w) */
    STEP_VALUES = 16   /* doubles in DinoStep */
} DinoStepSlot;

/* How to launch one kernel of a program for a batch of n rows: block (block, 1, 1),
 * grid (cuda_grid_x(l, n, max_tiles), grid_y, grid_z), `shared` bytes of dynamic shared memory.
 * A tile kernel (tiles = 1) runs many stages for a tile of samples per block, its grid.x is
 * min(n, max_tiles) and the runtime chooses max_tiles (the blocks the driver says fit on a
 * multiprocessor, cuOccupancyMaxActiveBlocksPerMultiprocessor, times the multiprocessors);
 * the kernel splits the batch into gridDim.x tiles itself, so any grid.x from 1 to n works. */
typedef struct {
    char kernel[64]; /* entry point: "dino_train_k3" (the 4th), or a parameter's gradient
                               kernel named by it: "dino_train_grad_q_1_weight" */
    long per_sample; /* > 0: grid.x = ceil(n * per_sample / per_block); 0: grid.x = fixed_x */
    int per_block;
    int fixed_x;
    int tiles;          /* a tile kernel: grid.x = min(n, max_tiles) */
    int stages;         /* the stages (fused kernels) it runs: 1, or more in a tile kernel */
    int grid_y, grid_z; /* >= 1 */
    int block;          /* threads per block (DINO_CUDA_THREADS) */
    int shared;         /* dynamic shared memory in bytes (0: the kernels' shared memory is static) */
} CudaLaunch;

typedef struct {
    CudaLaunch *predict, *train; /* in launch order; malloc'd, cuda_plan_free */
    int n_predict, n_train;
    long predict_work, train_work; /* workspace reals per row of batch capacity nmax */
    int in, out, n_loss, f64;
    long long n_params;
    uint64_t spec_hash;
} CudaPlan;

/* grid.x for a batch of n rows (at least 1: kernels check their bounds). */
static inline long cuda_grid_x(const CudaLaunch *l, int n, int max_tiles) {
    long x = l->tiles       ? (n < max_tiles ? n : max_tiles)
        : l->per_sample > 0 ? ((long)n * l->per_sample + l->per_block - 1) / l->per_block
                            : l->fixed_x;
    return x > 0 ? x : 1;
}

void cuda_plan_free(CudaPlan *plan);

/* ---------------------------------------------------------------------------- terms[] */
/* A training step writes terms[] (doubles, TermLayout.n_terms of them):
 *
 *   [0, n_loss)                  the loss terms, in the order of m->loss (batch means, unweighted)
 *   [n_loss, gate_base)          the Parareal corrections: for each pint block in order and each
 *                                iteration k = 1..K, the batch means of sum_n |U_k[n] - U_k-1[n]|^2
 *                                and of sum_n |U_k[n]|^2 over the slice ends n = 1..N (zero for an
 *                                iteration that did not run)
 *   [gate_base, n_terms)         the gates, for each ODE block in order: a pint block with a tol
 *                                has a flag per iteration k = 2..K (1 when it ran, else 0); a
 *                                dopri5 block (without pint) has, per attempt i = 0 .. max_steps-1,
 *                                DOPRI5_SLOTS values: the error norm, accepted (0/1), the next t
 *                                and h, and whether attempt i + 1 runs; with a save line one more,
 *                                whether the accepted step landed on a saved time (0/1)
 *
 * Gate g (1-based, counted over all blocks) is terms[gate_base + g - 1]. Everything after the
 * loss terms is a monitor: the runtime sums n * terms[n_loss + i] over an epoch's batches. */
enum { DOPRI5_SLOTS = 5 };
/* Terms per dopri5 attempt of block o: DOPRI5_SLOTS, one more with a save line. */
static inline int dopri5_slots(const OdeBlock *o) { return DOPRI5_SLOTS + (o->n_saves > 0); }

typedef struct {
    int corrections;   /* terms index of the block's first correction sum */
    int n_corrections; /* 2 * iterations for a pint block, else 0 */
    int gates_before;  /* gate ids the blocks before it use: its gates are gates_before + 1 .. */
    int n_gates;       /* iterations - 1 for a pint block with a tol, DOPRI5_SLOTS * max_steps for dopri5, else 0 */
} BlockTerms;

typedef struct {
    int n_loss;        /* loss terms */
    int n_corrections; /* Parareal correction sums, all blocks */
    int n_gates;       /* gate slots, all blocks */
    int gate_base;     /* n_loss + n_corrections: the terms index of gate 1 */
    int n_monitors;    /* n_corrections + n_gates: what follows the loss terms */
    int n_terms;       /* n_loss + n_monitors */
} TermLayout;

/* abi.c: the layout of m's terms[], and where ODE block i's entries are. */
TermLayout term_layout(const Model *m);
BlockTerms block_terms(const Model *m, int block);

/* For ODE block i solved by dopri5 (without pint): whether a program's terms[] say that its
 * last attempt still wanted another one, i.e. the solve stopped at max_steps short of t1
 * (the gate "attempt max_steps runs"). 0 for other blocks. */
static inline int dopri5_unfinished(const Model *m, int block, const double *terms) {
    const OdeBlock *o = &m->odes[block];
    if (o->pint.present || o->solver.kind != SOLVER_DOPRI5) return 0;
    int g = term_layout(m).gate_base + block_terms(m, block).gates_before + DOPRI5_SLOTS * o->solver.max_steps - 1;
    return terms[g] != 0;
}

/* The same counts by their older names (lower.c, the emitters, tests). */
static inline int correction_count(const Model *m) { return term_layout(m).n_corrections; }
static inline int monitor_count(const Model *m) { return term_layout(m).n_monitors; }
static inline int slots_before(const Model *m, const OdeBlock *o) {
    return o < m->odes + m->n_odes ? block_terms(m, (int)(o - m->odes)).gates_before : term_layout(m).n_gates;
}

#endif
