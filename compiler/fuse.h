/* fuse.h - the kernels of an emitted CUDA program, shared by the four files of the CUDA
 * emitter (private to them; the public interface is emit.h):
 *   fuse.c               kernel formation: which IR nodes run together in one kernel, which
 *                        kernels become the stages of a tile kernel, workspace slots, launches
 *   emit_cuda_kernels.c  the text of each kind of kernel (and of a tile kernel's stages)
 *   emit_cuda_share.c    a program's text: equal stages and kernels share a function, the tables
 *                        of their numbers, loops (in loops) over repeated stages
 *   emit_cuda.c          the file: header, prelude, interface constants, both programs */
#ifndef DINO_FUSE_H
#define DINO_FUSE_H

#include <stdarg.h>
#include <stdio.h>

#include "emit.h"
#include "names.h"
#include "share.h"
#include "slots.h"

enum {
    THREADS = 256,                                /* every block */
    MAX_PERIOD = 1000,                            /* stages repeated in a loop (emit_stages) */
    MAX_LOOPS = 4,                                /* loops in loops */
    MAX_MEMBERS = 64,                             /* nodes per element-wise kernel: keeps kernels readable */
    KCHUNK = 256,                                 /* GRAD_W: batch rows per block (GRAD_W_ROWS in prelude_cuda.h) */
    SMALL_K = 64,                                 /* layers with at most this many inputs, */
    SMALL_D = 256,                                /* and at most this many outputs, run as element-wise dot products */
    SMALL_GRAD = 4096,                            /* weight gradients with at most this many entries: one thread each */
    GRAD_BIAS_ROWS = 64,                          /* GRAD_B: rows per block (prelude_cuda.h) */
    EST_BATCH = 64,                               /* the batch assumed when choosing tile sizes */
    TILE_MAX_MACS = 1 << 18,                      /* tile kernels when no layer has more multiply-adds per sample, */
    TILE_MIN_LAYERS = 256,                        /* or when the program has more layers than this (want_tiles) */
    SUM_SAMPLES = 64,                             /* a gradient sum kernel: samples per block */
    TILE_MAX_STAGES = 1000,                       /* stages per tile kernel */
    MAX_GRID_YZ = DINO_MAX_LAYER_DIM / 64,        /* CUDA's grid has at most 65535 blocks in y and z (model.h) */
    MAX_READS = 64,                               /* values one node reads, through a virtual concatenation */
    MAX_BUFS = MAX_MEMBERS * (MAX_READS / 2 + 2), /* buffers one kernel touches */
};

typedef enum {
    K_ZERO,       /* train: G = 0, terms = 0 */
    K_POINTWISE,  /* element-wise nodes of one shape, one thread per element */
    K_GEMM,       /* LINEAR / LINEAR_T as a tiled matrix multiply, element-wise nodes in its epilogue */
    K_GRAD_W,     /* a weight gradient: split-batch matrix multiply added atomically into G */
    K_GRAD_B,     /* a bias gradient: column sums added atomically into G */
    K_LOSS,       /* one loss term: a block per sample */
    K_MONITOR,    /* a diagnostic term (Parareal corrections): a block per sample */
    K_GATE,       /* pint tol: whether the next Parareal iteration runs, one thread */
    K_ERRNORM,    /* dopri5: the error norm of an attempt, a block per sample */
    K_STEPCTL,    /* dopri5: step control after an attempt, one thread */
    K_RESULTS,    /* predict: y and J from the output and Jacobian nodes */
    K_GRAD_W_SUM, /* tile mode: one weight's gradient summed over all its GRAD_W nodes (members) */
    K_GRAD_B_SUM, /* tile mode: one bias's gradient summed over all its GRAD_B nodes */
} KernelKind;

/* What the runtime launches: one kernel (count 1), or a tile kernel running kernels first ..
 * first + count - 1 as its stages. */
typedef struct {
    int first, count;
} Unit;

typedef struct {
    KernelKind kind;
    const IrNode *members[MAX_MEMBERS]; /* the nodes it runs, in a valid order */
    int count;
    int rows, dim; /* K_POINTWISE, K_GEMM: the shape of every member */
    int bm, bn;    /* K_GEMM, K_GRAD_W: tile */
    int region;    /* gate of its members (pint tol), 0 none: the kernel returns at once when closed */
} Kernel;

typedef struct {
    FILE *out;
    const Model *m;
    const Program *p;
    const char *name; /* "predict" or "train" */
    int has_terms;    /* writes terms: loss terms, or Parareal corrections and gates */
    int barrier;      /* kernels before it are closed: a gate or step control came since */
    int train;
    Arena tmp;
    PtrVec live;
    Kernel *kernels;
    int n_kernels, cap_kernels;
    int stage;        /* writing stage `stage` of a tile kernel; -1: a kernel of its own */
    int *kern;        /* node id -> its kernel, -1 none (inputs, data, literals) */
    char *stored;     /* node id -> written to the workspace */
    char *inlined;    /* node id -> a CONST written as a literal */
    char *virt;       /* node id -> a CONCAT that small layers read piece by piece */
    long *offset;     /* node id -> workspace offset per sample, -1 none */
    int *slot_of;     /* node id -> the node whose slot constant (wp_v12) names its offset */
    SizeNames *sizes; /* sizes by name (names.h); NULL: numbers */
    long work;        /* workspace reals per sample */
    int fuse;         /* a FuseMode, from the options */
    int share;        /* equal stages and kernels share a function (share.c) */
    int tile_mode;    /* this program gets tile kernels */
    Unit *units;      /* what is launched, in order */
    int n_units;
    int *unit_of;       /* kernel -> its unit */
    CudaLaunch *launch; /* one per unit */
    ShareItem *stages;  /* write_program: the stages of every tile kernel, grouped (share.c) */
    FILE *table[2];     /* write_program: the numbers of the shared functions' calls, L and D */
    long n_table[2];
    int table_newline[2]; /* the next number starts a line: a call's numbers have a line of their own */
    int table_used;
    int *first_stage; /* unit -> its first stage in `stages` */
    char *err;
    size_t errlen;
} Emit;
/* ---------------------------------------------------------------------------- fuse.c */

/* Forms program p's kernels and units, assigns the workspace and plans the launches (E->out,
 * m, err, fuse and share set by the caller). Returns 0, or -1 with a message in E->err. */
int cuda_prepare_program(Emit *E, const Program *p, int train);
void cuda_free_program(Emit *E);
/* A layer small enough for one thread per output element (linear_at in prelude_cuda.h). */
int cuda_is_small_layer(const IrNode *v);

static inline const IrNode *member(const Emit *E, const Kernel *k, int i) {
    (void)E;
    return k->members[i];
}

static inline long ceil_div(long a, long b) { return (a + b - 1) / b; }

/* ---------------------------------------------------------------------------- emit_cuda_kernels.c */

static inline void out(Emit *E, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void out(Emit *E, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(E->out, fmt, ap);
    va_end(ap);
}

/* Appends a number to the program's table of integers (t = 0) or reals (t = 1), written in
 * cuda_write_program: dino_<program>_L and _D. */
void cuda_table_number(Emit *E, int t, const char *num);
/* One stage (E->stage >= 0) or kernel of its own. Returns 0, or -1 with a message in E->err. */
int cuda_emit_kernel(Emit *E, int ki);

/* ---------------------------------------------------------------------------- emit_cuda_share.c */

/* Names each workspace offset by its first value (E->slot_of) and writes their enum
 * (wp_v12 = 0, wp_v13 = wp_v12 + 128, ...; emit_cuda_kernels.c). */
void cuda_slot_table(Emit *E);
/* Writes program E->p's kernels: shared stage and body functions, their tables, the kernels. */
int cuda_write_program(Emit *E);

#endif
