/* emit_cuda.c - IR programs -> CUDA C++ for the GPU backend, and the plan to launch it.
 *
 * The generated file is the fixed prelude (prelude_cuda.h: precision, activations, the tiled
 * matrix multiply, reductions, the utility and optimiser kernels), then the kernels of the
 * two programs: dino_predict_k0, k1, ... (output and Jacobian) and dino_train_k0, k1, ...
 * (forward, Jacobian, loss, gradient). A program is its kernels launched in order on one
 * stream; the CudaPlan says how (emit.h). It mirrors emit_c.c: the same node values in the
 * same kind of workspace, one commented block per IR node, the same arguments.
 *
 * Kernels. Walking a program's live nodes in order, each node either joins the kernel being
 * built or starts a new one:
 *   - LINEAR and LINEAR_T start a GEMM kernel: a tile of the batch's rows x the layer's
 *     outputs per block (gemm_tile), then an epilogue over the tile's elements.
 *   - Element-wise nodes (activations and their derivatives, + - *, scaling, broadcasts, and
 *     the shape ops: slices, pads, concatenations, row and column sums, identities) of the
 *     same shape as the kernel being built join it: in a GEMM kernel they run in the epilogue
 *     (the bias add, the activation, a residual sum), otherwise one thread per element. A value
 *     computed in the kernel is passed on in a register (t12), and stored to the workspace only
 *     if a later kernel reads it. A node that reads another element than its own (a slice, a
 *     sum, a broadcast) may only read values of earlier kernels, so no thread ever reads what
 *     another thread of the same launch writes; such a node starts a new kernel instead.
 *   - GRAD_W is a matrix multiply over the batch, split along the batch so that enough blocks
 *     run, the partial tiles added into G atomically; GRAD_B sums columns the same way; a LOSS
 *     is one block per sample whose term is reduced in the block and added to terms[i]
 *     atomically, seeds written as emit_c.c does. train starts with a kernel that zeroes G and
 *     terms; predict ends with one that writes y and J.
 *   - Constants that only element-wise nodes read are written as literals, not computed.
 *
 * Buffers. Stored values live in one workspace, each node at work + nmax * offset with
 * (n, rows, dim) inside, as in emit_c.c. Slots are assigned per kernel: a kernel's outputs get
 * slots before the values it reads last are released, so a kernel never writes over its own
 * inputs, and released slots are reused by later kernels (best fit).
 *
 * Tile kernels. When every layer is small (at most TILE_MAX_MACS multiply-adds per sample, as in
 * neural ODEs and small DINO networks), or there are more than TILE_MIN_LAYERS of them (a long
 * solve with large layers), a program is not launched kernel by kernel: runs of the
 * kernels above become the stages of one tile kernel, whose blocks each take a tile of the
 * batch's samples through all the stages in order, with __syncthreads() between stages. Every
 * value is per sample, so a block only ever reads what it wrote itself: no grid-wide barrier is
 * needed, and a whole fixed-step ODE integration, its Jacobian, the loss and the backward pass
 * through the steps are one launch, with the tile's values in L1 and L2 instead of a launch per
 * node. Element-wise stages loop over the tile's elements, layers over the tile's rows (the same
 * gemm_tile), losses and diagnostics over its samples. Only what needs the whole batch ends a
 * tile kernel: the Parareal tol gates and dopri5's step control (the batch decides), and the
 * parameter gradients: those are taken out of the stages and run at the end of the program, one
 * kernel per parameter that sums a^T b over every place the parameter is used (all the steps of
 * an ODE: one long matrix product instead of one atomic sum per step and block). The values
 * they read stay in the workspace until then; with checkpointing, the gradients deferred so far
 * are summed each time the gradient pass turns to another segment, so that a segment's
 * recomputed values die with it (that is where the memory is saved). The runtime chooses the
 * number of tiles (two per multiprocessor); the kernel divides the batch by gridDim.x. A block
 * owns its samples' part of every slot only while a slot holds values of one size, so in tile
 * mode slots are reused only at the same size (assign_buffers).
 *
 * Compile time. Code that is equal but for its numbers is written once (share.c): equal stages
 * of the tile kernels, and equal kernels (an MLP's layers, a checkpointed step's segments, the
 * gradient sums), become __noinline__ functions; their calls pass the kernel's arguments as one
 * struct and their numbers as pointers into two tables of the program, and repeated calls are
 * loops (in loops) over those tables (emit_stages). NVRTC's time then grows with the distinct
 * code, not with the steps.
 *
 * What is left for later: the tile's values in shared memory instead of L1/L2, and a prologue
 * fusion of element-wise producers into the GEMM's loads. Nothing here has run on a GPU yet
 * (see prelude_cuda.h). */
#include "emit.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "share.h"
#include "prelude_cuda.inc"

enum {
    THREADS = 256,        /* every block */
    MAX_PERIOD = 1000,    /* stages repeated in a loop (emit_stages) */
    MAX_LOOPS = 4,        /* loops in loops */
    MAX_MEMBERS = 64,     /* nodes per element-wise kernel: keeps kernels readable */
    KCHUNK = 256,         /* GRAD_W: batch rows per block (GRAD_W_ROWS in prelude_cuda.h) */
    SMALL_K = 64,         /* layers with at most this many inputs, */
    SMALL_D = 256,        /* and at most this many outputs, run as element-wise dot products */
    SMALL_GRAD = 4096,    /* weight gradients with at most this many entries: one thread each */
    GRAD_BIAS_ROWS = 64,  /* GRAD_B: rows per block (prelude_cuda.h) */
    EST_BATCH = 64,       /* the batch assumed when choosing tile sizes */
    TILE_MAX_MACS = 1 << 18, /* tile kernels when no layer has more multiply-adds per sample, */
    TILE_MIN_LAYERS = 256,   /* or when the program has more layers than this (want_tiles) */
    SUM_SAMPLES = 64,     /* a gradient sum kernel: samples per block */
    TILE_MAX_STAGES = 1000, /* stages per tile kernel */
    MAX_GRID_YZ = 65535,
    MAX_READS = 64,       /* values one node reads, through a virtual concatenation */
    MAX_BUFS = MAX_MEMBERS * (MAX_READS / 2 + 2),   /* buffers one kernel touches */
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
    const IrNode *members[MAX_MEMBERS];  /* the nodes it runs, in a valid order */
    int count;
    int rows, dim;          /* K_POINTWISE, K_GEMM: the shape of every member */
    int bm, bn;             /* K_GEMM, K_GRAD_W: tile */
    int region;             /* gate of its members (pint tol), 0 none: the kernel returns at once when closed */
} Kernel;

typedef struct {
    FILE *out;
    const Model *m;
    const Program *p;
    const char *name;           /* "predict" or "train" */
    int has_terms;              /* writes terms: loss terms, or Parareal corrections and gates */
    int barrier;                /* kernels before it are closed: a gate or step control came since */
    int train;
    Arena tmp;
    PtrVec live;
    Kernel *kernels;
    int n_kernels, cap_kernels;
    int stage;                  /* writing stage `stage` of a tile kernel; -1: a kernel of its own */
    int *kern;                  /* node id -> its kernel, -1 none (inputs, data, literals) */
    char *stored;               /* node id -> written to the workspace */
    char *inlined;              /* node id -> a CONST written as a literal */
    char *virt;                 /* node id -> a CONCAT that small layers read piece by piece */
    long *offset;               /* node id -> workspace offset per sample, -1 none */
    long work;                  /* workspace reals per sample */
    int fuse;                   /* a FuseMode, from the options */
    int share;                  /* equal stages and kernels share a function (share.c) */
    int tile_mode;              /* this program gets tile kernels */
    Unit *units;                /* what is launched, in order */
    int n_units;
    int *unit_of;               /* kernel -> its unit */
    CudaLaunch *launch;         /* one per unit */
    ShareItem *stages;          /* write_program: the stages of every tile kernel, grouped (share.c) */
    FILE *table[2];             /* write_program: the numbers of the shared functions' calls, L and D */
    long n_table[2];
    int table_used;
    int *first_stage;           /* unit -> its first stage in `stages` */
    char *err;
    size_t errlen;
} Emit;

/* ---------------------------------------------------------------------------- node kinds */

/* A layer small enough for one thread per output element (linear_at in prelude_cuda.h). */
static int is_small_layer(const IrNode *v) {
    return (v->op == IR_LINEAR || v->op == IR_LINEAR_T) && v->args[0]->dim <= SMALL_K && v->dim <= SMALL_D;
}

/* Reads its arguments at its own element (with broadcasting of 1-row or 1-column operands). */
static int is_elementwise(IrOp op) {
    switch (op) {
    case IR_ACT: case IR_DACT: case IR_D2ACT: case IR_ADD: case IR_SUB: case IR_MUL: case IR_SCALE:
    case IR_ADDC: case IR_BCAST_ROWS: case IR_BCAST_DIM: case IR_SELECT: return 1;
    default: return 0;
    }
}

/* Reads its arguments at other elements than its own. */
static int is_gather(const IrNode *v) {
    IrOp op = v->op;
    return op == IR_SLICE || op == IR_PAD || op == IR_CONCAT || op == IR_SUMROWS || op == IR_SUMDIM || op == IR_STACK ||
           op == IR_ROWSLICE || op == IR_ROWPAD || is_small_layer(v);
}

/* One thread per element computes it. */
static int is_pointwise(const IrNode *v) {
    return is_elementwise(v->op) || is_gather(v) || v->op == IR_CONST || v->op == IR_TERM || v->op == IR_EYE;
}

static int is_kept(const Emit *E, const IrNode *v) {
    return !E->train && (v == E->p->output || v == E->p->jacobian);
}

/* ---------------------------------------------------------------------------- kernels */

static int add_kernel(Emit *E, KernelKind kind, const IrNode *first) {
    if (E->n_kernels == E->cap_kernels) {
        E->cap_kernels = E->cap_kernels ? 2 * E->cap_kernels : 64;
        E->kernels = realloc(E->kernels, sizeof(Kernel) * (size_t)E->cap_kernels);
    }
    Kernel *k = &E->kernels[E->n_kernels];
    memset(k, 0, sizeof *k);
    k->kind = kind;
    if (first) k->rows = first->rows, k->dim = first->dim, k->region = first->region;
    return E->n_kernels++;
}

static void add_member(Emit *E, int ki, const IrNode *v) {
    Kernel *k = &E->kernels[ki];
    k->members[k->count++] = v;
    E->kern[v->id] = ki;
}

static const IrNode *member(const Emit *E, const Kernel *k, int i) {
    (void)E;
    return k->members[i];
}

/* The values node u reads: its arguments, and the pieces of a virtual concatenation. */
static int reads_of(const Emit *E, const IrNode *u, const IrNode **r) {
    int n = 0;
    for (int k = 0; k < u->n_args; k++) {
        const IrNode *a = u->args[k];
        if (E->virt[a->id])
            for (int q = 0; q < a->n_args && n < MAX_READS; q++) r[n++] = a->args[q];
        else if (n < MAX_READS)
            r[n++] = a;
    }
    return n;
}

/* Whether v can run in kernel ki, at its own elements. */
static int can_join(const Emit *E, int ki, const IrNode *v) {
    const Kernel *k = &E->kernels[ki];
    if ((k->kind != K_POINTWISE && k->kind != K_GEMM) || k->count >= MAX_MEMBERS) return 0;
    if (ki < E->barrier) return 0;   /* before a kernel that sets the terms it may read */
    if (v->rows != k->rows || v->dim != k->dim || v->region != k->region) return 0;
    const IrNode *reads[MAX_READS];
    int n_reads = reads_of(E, v, reads);
    for (int i = 0; i < n_reads; i++) {
        const IrNode *a = reads[i];
        if (E->kern[a->id] != ki) continue;
        /* a value of this kernel is only in the registers of the thread that computed it */
        if (is_gather(v) || a->rows != v->rows || a->dim != v->dim) return 0;
    }
    return 1;
}

/* Constants read only by element-wise nodes become literals. */
static void find_literals(Emit *E) {
    for (int i = 0; i < E->live.n; i++) {
        const IrNode *v = E->live.items[i];
        if ((v->op == IR_CONST || v->op == IR_TERM) && !is_kept(E, v)) E->inlined[v->id] = 1;
    }
    for (int i = 0; i < E->live.n; i++) {
        const IrNode *u = E->live.items[i];
        if (is_elementwise(u->op) || u->op == IR_CONCAT) continue;
        for (int k = 0; k < u->n_args; k++) E->inlined[u->args[k]->id] = 0;
    }
}

/* Concatenations read only by small layers are never built: the layers read the pieces. */
static void find_virtual(Emit *E) {
    for (int i = 0; i < E->live.n; i++) {
        const IrNode *v = E->live.items[i];
        if (v->op == IR_CONCAT && !is_kept(E, v) && v->n_args <= MAX_READS / 2) E->virt[v->id] = 1;
    }
    for (int i = 0; i < E->live.n; i++) {
        const IrNode *u = E->live.items[i];
        for (int k = 0; k < u->n_args; k++)
            if (!is_small_layer(u) || k > 0) E->virt[u->args[k]->id] = 0;
    }
}

/* Tile mode: the kernels summing the deferred parameter-gradient nodes, one parameter's nodes
 * in order of first use, MAX_MEMBERS a kernel; empties the list. */
static void sum_gradients(Emit *E, PtrVec *deferred) {
    char *done = calloc((size_t)deferred->n + 1, 1);
    for (int i = 0; i < deferred->n; i++) {
        const IrNode *first = deferred->items[i];
        if (done[i]) continue;
        int ki = -1;
        for (int k = i; k < deferred->n; k++) {
            const IrNode *v = deferred->items[k];
            if (done[k] || v->op != first->op || v->param != first->param) continue;
            if (ki < 0 || E->kernels[ki].count == MAX_MEMBERS) {
                ki = add_kernel(E, first->op == IR_GRAD_W ? K_GRAD_W_SUM : K_GRAD_B_SUM, first);
                E->kernels[ki].region = 0;   /* always runs; each member's region is in its table */
            }
            add_member(E, ki, v);
            done[k] = 1;
        }
    }
    free(done);
    deferred->n = 0;
}

/* An element-wise node joins the kernel being built, else the latest kernel computing one of
 * its operands (so f'(a) runs in the epilogue that computes a), else starts a kernel. */
static int form_kernels(Emit *E) {
    int open = -1;
    PtrVec deferred = {0};   /* tile mode: GRAD_W and GRAD_B nodes */
    int seg = 0;             /* the checkpoint segment whose recomputed values are being read */
    E->has_terms = E->train;
    for (int i = 0; i < E->live.n; i++) {
        IrOp op = ((const IrNode *)E->live.items[i])->op;
        E->has_terms |= op == IR_MONITOR || op == IR_ERRNORM || op == IR_STEPCTL;
    }
    if (E->has_terms) add_kernel(E, K_ZERO, NULL);
    for (int i = 0; i < E->live.n; i++) {
        const IrNode *v = E->live.items[i];
        if (v->op == IR_INPUT || v->op == IR_DATA || E->inlined[v->id] || E->virt[v->id]) continue;
        if (v->recomputed && v->seg != seg) {
            /* checkpointing: the gradient pass recomputes another segment, so the gradients
             * deferred so far are summed here, and the values they read die with their segment */
            seg = v->seg;
            if (deferred.n) sum_gradients(E, &deferred), open = -1;
        }
        int ki;
        if (is_pointwise(v)) {
            const IrNode *reads[MAX_READS];
            int producer = -1, n_reads = reads_of(E, v, reads);
            for (int k = 0; k < n_reads; k++)
                if (E->kern[reads[k]->id] > producer) producer = E->kern[reads[k]->id];
            if (open >= 0 && can_join(E, open, v)) {
                add_member(E, open, v);
                continue;
            }
            if (producer >= 0 && can_join(E, producer, v)) {
                add_member(E, producer, v);
                continue;
            }
            ki = open = add_kernel(E, K_POINTWISE, v);
        } else if (v->op == IR_LINEAR || v->op == IR_LINEAR_T) {
            ki = open = add_kernel(E, K_GEMM, v);
        } else if (E->tile_mode && (v->op == IR_GRAD_W || v->op == IR_GRAD_B)) {
            ptrvec_push(&E->tmp, &deferred, (void *)v);   /* summed per parameter at the end */
            continue;
        } else if (v->op == IR_GRAD_W || v->op == IR_GRAD_B || v->op == IR_LOSS || v->op == IR_MONITOR || v->op == IR_GATE ||
                   v->op == IR_ERRNORM || v->op == IR_STEPCTL) {
            static const KernelKind kinds[] = {[IR_GRAD_W] = K_GRAD_W, [IR_GRAD_B] = K_GRAD_B, [IR_LOSS] = K_LOSS,
                                               [IR_MONITOR] = K_MONITOR, [IR_GATE] = K_GATE,
                                               [IR_ERRNORM] = K_ERRNORM, [IR_STEPCTL] = K_STEPCTL};
            ki = add_kernel(E, kinds[v->op], v);
            open = -1;
            if (v->op == IR_GATE || v->op == IR_STEPCTL) E->barrier = ki;
        } else {
            snprintf(E->err, E->errlen, "%s: error: the CUDA code generator cannot run IR node %s yet", E->m->path,
                     ir_op_names[v->op]);
            return -1;
        }
        add_member(E, ki, v);
    }
    sum_gradients(E, &deferred);
    if (!E->train) add_kernel(E, K_RESULTS, NULL);
    return 0;
}

/* Whether a kernel can be a stage of a tile kernel: it works sample by sample. */
static int is_stage(const Kernel *k) {
    switch (k->kind) {
    case K_POINTWISE: case K_GEMM: case K_LOSS: case K_MONITOR: case K_ERRNORM: case K_RESULTS: return 1;
    default: return 0;   /* the batch as a whole: zeroing, gates, step control, gradient sums */
    }
}

/* Tile mode for a program whose layers are all small (or when asked for): per sample, no layer
 * has more than TILE_MAX_MACS multiply-adds; or whose layers are so many (a long ODE solve with
 * large layers) that a kernel each would take minutes to compile and be launch-bound to run. */
static int want_tiles(const Emit *E) {
    if (E->fuse == FUSE_NONE) return 0;
    if (E->fuse == FUSE_TILES) return 1;
    int large = 0, layers = 0;
    for (int i = 0; i < E->live.n; i++) {
        const IrNode *v = E->live.items[i];
        if (v->op != IR_LINEAR && v->op != IR_LINEAR_T) continue;
        layers++;
        large |= (long)v->rows * v->dim * v->args[0]->dim > TILE_MAX_MACS;
    }
    return !large || layers > TILE_MIN_LAYERS;
}

/* Units: in tile mode each run of two or more stages is one tile kernel; every other kernel is
 * launched on its own. */
static void form_units(Emit *E) {
    E->units = calloc((size_t)E->n_kernels, sizeof(Unit));
    E->unit_of = malloc(sizeof(int) * (size_t)(E->n_kernels ? E->n_kernels : 1));
    for (int ki = 0; ki < E->n_kernels;) {
        int count = 1;
        if (E->tile_mode && is_stage(&E->kernels[ki]))
            while (ki + count < E->n_kernels && count < TILE_MAX_STAGES && is_stage(&E->kernels[ki + count])) count++;
        Unit *u = &E->units[E->n_units];
        *u = (Unit){.first = ki, .count = count};
        for (int k = ki; k < ki + count; k++) E->unit_of[k] = E->n_units;
        E->n_units++;
        ki += count;
    }
}

/* ---------------------------------------------------------------------------- buffers */

/* Marks the values later kernels read, and gives each a workspace slot, per kernel. */
static void assign_buffers(Emit *E) {
    int n_nodes = E->p->nodes.n;
    int *last = malloc(sizeof(int) * (size_t)n_nodes);
    for (int i = 0; i < n_nodes; i++) last[i] = -1;
    for (int ki = 0; ki < E->n_kernels; ki++) {
        const Kernel *k = &E->kernels[ki];
        for (int i = 0; i < k->count; i++) {
            const IrNode *u = member(E, k, i);
            if (u->op == IR_LOSS) E->stored[u->id] = 1;   /* the seed */
            const IrNode *reads[MAX_READS];
            int n_reads = reads_of(E, u, reads);
            for (int a = 0; a < n_reads; a++) {
                const IrNode *v = reads[a];
                if (E->kern[v->id] < 0 || E->kern[v->id] == ki) continue;
                E->stored[v->id] = 1;
                last[v->id] = ki;
            }
        }
    }
    const IrNode *keep[2] = {E->train ? NULL : E->p->output, E->train ? NULL : E->p->jacobian};
    for (int i = 0; i < 2; i++)
        if (keep[i] && E->kern[keep[i]->id] >= 0) E->stored[keep[i]->id] = 1, last[keep[i]->id] = E->n_kernels - 1;

    SlotPool pool;
    slots_init(&pool, n_nodes);
    /* A value (n, R, D) fills its slot sample by sample, so a slot reused by a smaller value puts
     * sample b where a larger one had an earlier sample: in a tile kernel that is another
     * block's sample, still being read. There, slots are only reused at the same size. */
    pool.exact = E->tile_mode;
    for (int ki = 0; ki < E->n_kernels; ki++) {
        const Kernel *k = &E->kernels[ki];
        for (int i = 0; i < k->count; i++) {
            const IrNode *v = member(E, k, i);
            if (E->stored[v->id]) E->offset[v->id] = slots_take(&pool, v->id, (long)v->rows * v->dim);
        }
        /* release what this kernel read last, and what it wrote but nobody reads */
        for (int i = 0; i < k->count; i++) {
            const IrNode *u = member(E, k, i), *reads[MAX_READS];
            int n_reads = reads_of(E, u, reads);
            for (int a = -1; a < n_reads; a++) {
                const IrNode *v = a < 0 ? u : reads[a];
                if (E->offset[v->id] < 0 || last[v->id] > ki) continue;
                if (a < 0 && last[v->id] >= 0) continue; /* u itself is read later */
                slots_release(&pool, v->id);
            }
        }
    }
    E->work = pool.work;
    slots_free(&pool);
    free(last);
}

/* ---------------------------------------------------------------------------- text helpers */

static void out(Emit *E, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(Emit *E, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(E->out, fmt, ap);
    va_end(ap);
}

/* Appends a number to the program's table of integers (t = 0) or reals (t = 1), written in
 * write_program: dino_<program>_L and _D. */
static void table_number(Emit *E, int t, const char *num) {
    long k = E->n_table[t]++;
    fprintf(E->table[t], "%s%s", !k ? "    " : k % 16 ? ", " : ",\n    ", num);
}

/* The name of a value in generated code. */
static void ref(const IrNode *n, char *buf, size_t len) {
    if (n->op == IR_INPUT) snprintf(buf, len, "x");
    else if (n->op == IR_DATA) snprintf(buf, len, "%s", n->aux == DATA_OUTPUT ? "y" : n->aux == DATA_JACOBIAN ? "J" : "label");
    else snprintf(buf, len, "v%d", n->id);
}

static const char *param_name(const Emit *E, int i) { return E->m->params[i].name; }

/* The comment naming a node, as emit_c.c writes it (plus the activation, constant, offset). */
static void node_comment(Emit *E, const IrNode *n, const char *note) {
    out(E, "%s/* v%d = %s", E->stage >= 0 ? "    " : "", n->id, ir_op_names[n->op]);
    for (int k = 0; k < n->n_args; k++) out(E, " v%d", n->args[k]->id);
    if (n->param >= 0) out(E, " %s", param_name(E, n->param));
    if (n->param2 >= 0) out(E, " + %s", param_name(E, n->param2));
    if (n->op == IR_ACT || n->op == IR_DACT || n->op == IR_D2ACT) out(E, " %s", activation_names[n->aux]);
    if (n->op == IR_CONST || n->op == IR_SCALE || n->op == IR_ADDC) out(E, " %.17g", n->c);
    if (n->op == IR_SLICE || n->op == IR_PAD || n->op == IR_ROWSLICE || n->op == IR_ROWPAD) out(E, " @%d", n->aux);
    if (n->op == IR_LOSS)
        out(E, " %s%s", loss_names[E->m->loss[n->aux].kind], n->transposed ? " (transposed)" : "");
    if (n->dim) out(E, "   (n, %d, %d)", n->rows, n->dim);
    if (n->name && n->op != IR_PROJECT && n->op != IR_PROJECT_T) out(E, "   %s", n->name);
    if (note) out(E, "   %s", note);
    out(E, " */\n");
}

/* ---------------------------------------------------------------------------- element-wise bodies */

/* The body of an element-wise kernel or GEMM epilogue: statements computing each member at
 * one element, and which index variables and buffers they use. The element is e of the
 * kernel's shape (n, R, D): row m = e / D over the batch, column j, sample b, row r in it. */
typedef struct {
    FILE *f;
    char *text;
    size_t len;
    const char *indent;
    int ki;
    int use_e, use_m, use_j, use_b, use_r;
    const IrNode *bufs[MAX_BUFS];   /* buffers the kernel touches, in order */
    char writes[MAX_BUFS];
    int n_bufs;
} Body;

static void use_buffer(Body *B, const IrNode *v, int write) {
    if (v->op == IR_INPUT || v->op == IR_DATA) return;
    for (int i = 0; i < B->n_bufs; i++)
        if (B->bufs[i] == v) {
            B->writes[i] |= (char)write;
            return;
        }
    if (B->n_bufs < (int)(sizeof B->bufs / sizeof *B->bufs)) {
        B->bufs[B->n_bufs] = v;
        B->writes[B->n_bufs++] = (char)write;
    }
}

/* The numbers that differ from step to step (constants, buffer offsets) are written
 * `backquoted`, for share.c; write_program and emit_tile_kernel take the quotes out. */
static const char *quote(const Emit *E) { return E->share ? "`" : ""; }

/* A parameter (or gradient) offset, `backquoted` like the other numbers that differ between
 * equal pieces of code (the layers of an MLP): buf must hold 32 characters. */
static const char *poff(const Emit *E, long long off, char *buf) {
    snprintf(buf, 32, "%s%lld%s", quote(E), off, quote(E));
    return buf;
}

static void literal(const Emit *E, double c, char *buf, size_t len) {
    snprintf(buf, len, "(real)%s%.17g%s", quote(E), c, quote(E));
}

/* A constant as read by a node of R rows at batch row m: a literal, or for one value per
 * row (the times of stacked slices) its table dino_<program>_rows_v<id> (write_program). */
static void const_at(const Emit *E, Body *B, const IrNode *c, int R, char *buf, size_t len) {
    if (c->op == IR_TERM) {   /* a runtime scalar (dopri5 t, h) */
        snprintf(buf, len, "(real)terms[%d]", c->aux);
        return;
    }
    if (!c->vals) {
        literal(E, c->c, buf, len);
        return;
    }
    B->use_m = 1;
    if (R == c->rows) snprintf(buf, len, "dino_%s_rows_v%d[m %% %d]", E->name, c->id, R);
    else snprintf(buf, len, "dino_%s_rows_v%d[(m %% %d) / %d]", E->name, c->id, R, R / c->rows);
}

/* Row m of a value read by a node of R rows: m itself, the sample b for a one-row value, or
 * the group m / (R / rows) of a tangent's primal. */
static void row_of(Body *B, int rows, int R, char *buf, size_t len) {
    if (rows == R) B->use_m = 1, snprintf(buf, len, "m");
    else if (rows == 1) B->use_b = 1, snprintf(buf, len, "b");
    else B->use_m = 1, snprintf(buf, len, "(m / %d)", R / rows);
}

/* Argument a of node v at v's element: a register, a literal or a (broadcast) read. */
static int read_arg(Emit *E, Body *B, const IrNode *v, const IrNode *a, char *buf, size_t len) {
    if (E->inlined[a->id]) {
        const_at(E, B, a, v->rows, buf, len);
        return 0;
    }
    if (E->kern[a->id] == B->ki) {
        snprintf(buf, len, "t%d", a->id);
        return 0;
    }
    char name[32];
    ref(a, name, sizeof name);
    use_buffer(B, a, 0);
    if (a->rows == v->rows && a->dim == v->dim) {
        B->use_e = 1;
        snprintf(buf, len, "%s[e]", name);
    } else if (a->rows == v->rows && a->dim == 1) {
        B->use_m = 1;
        snprintf(buf, len, "%s[m]", name);
    } else if (a->rows == 1 && v->rows == 1 && a->dim == 1) { /* (1, 1) against (1, D) */
        B->use_m = 1;
        snprintf(buf, len, "%s[m]", name);
    } else if (a->rows == 1 && a->dim == v->dim) {
        B->use_b = B->use_j = 1;
        snprintf(buf, len, "%s[b * %d + j]", name, a->dim);
    } else if (a->rows == 1 && a->dim == 1) {
        B->use_b = 1;
        snprintf(buf, len, "%s[b]", name);
    } else if (v->rows % a->rows == 0 && (a->dim == v->dim || a->dim == 1)) { /* by groups of rows */
        B->use_m = 1;
        if (a->dim == 1) snprintf(buf, len, "%s[m / %d]", name, v->rows / a->rows);
        else B->use_j = 1, snprintf(buf, len, "%s[(m / %d) * %d + j]", name, v->rows / a->rows, a->dim);
    } else {
        snprintf(E->err, E->errlen, "internal error: v%d (%d, %d) reads v%d (%d, %d)", v->id, v->rows, v->dim, a->id,
                 a->rows, a->dim);
        return -1;
    }
    return 0;
}

/* A buffer read at another element (gather ops: never a value of this kernel). */
static void gather_arg(Body *B, const IrNode *a, char *buf, size_t len) {
    ref(a, buf, len);
    use_buffer(B, a, 0);
}

static int emit_member(Emit *E, Body *B, const IrNode *v) {
    char ob[32];   /* poff() */
    char a[96] = "", b[96] = "", expr[512];
    FILE *f = B->f;
    const char *in = B->indent;
    if (is_elementwise(v->op) && v->n_args > 0 && read_arg(E, B, v, v->args[0], a, sizeof a)) return -1;
    if (is_elementwise(v->op) && v->n_args > 1 && read_arg(E, B, v, v->args[1], b, sizeof b)) return -1;
    const char *act = v->op == IR_ACT || v->op == IR_DACT || v->op == IR_D2ACT ? activation_names[v->aux] : "";
    char lit[64];
    literal(E, v->c, lit, sizeof lit);
    switch (v->op) {
    case IR_ACT: snprintf(expr, sizeof expr, "act_%s(%s)", act, a); break;
    case IR_DACT: snprintf(expr, sizeof expr, "dact_%s(%s)", act, a); break;
    case IR_D2ACT: snprintf(expr, sizeof expr, "d2act_%s(%s)", act, a); break;
    case IR_ADD: snprintf(expr, sizeof expr, "%s + %s", a, b); break;
    case IR_SUB: snprintf(expr, sizeof expr, "%s - %s", a, b); break;
    case IR_MUL: snprintf(expr, sizeof expr, "%s * %s", a, b); break;
    case IR_SCALE: snprintf(expr, sizeof expr, "%s * %s", lit, a); break;
    case IR_ADDC: snprintf(expr, sizeof expr, "%s + %s", a, lit); break;
    case IR_SELECT: snprintf(expr, sizeof expr, "terms[%d] != 0 ? %s : %s", ir_gate_slot(E->p, v->aux), a, b); break;
    case IR_BCAST_ROWS:
    case IR_BCAST_DIM: snprintf(expr, sizeof expr, "%s", a); break;
    case IR_TERM: snprintf(expr, sizeof expr, "(real)terms[%d]", v->aux); break;
    case IR_CONST:
        if (v->vals) B->use_r = 1, snprintf(expr, sizeof expr, "dino_%s_rows_v%d[r]", E->name, v->id);
        else snprintf(expr, sizeof expr, "%s", lit);
        break;
    case IR_EYE:
        B->use_r = B->use_j = 1;
        snprintf(expr, sizeof expr, "(real)(r == j)");
        break;
    case IR_SLICE:
        gather_arg(B, v->args[0], a, sizeof a);
        B->use_m = B->use_j = 1;
        snprintf(expr, sizeof expr, "slice_at(%s, m, %d, %d, j)", a, v->args[0]->dim, v->aux);
        break;
    case IR_PAD:
        gather_arg(B, v->args[0], a, sizeof a);
        B->use_m = B->use_j = 1;
        snprintf(expr, sizeof expr, "pad_at(%s, m, %d, %d, j)", a, v->args[0]->dim, v->aux);
        break;
    case IR_SUMROWS: /* (n, R, D) from (n, Ra, D): groups of Ra / R rows */
        gather_arg(B, v->args[0], a, sizeof a);
        B->use_m = B->use_j = 1;
        snprintf(expr, sizeof expr, "sum_rows_at(%s, m, %d, %d, j)", a, v->args[0]->rows / v->rows, v->dim);
        break;
    case IR_ROWSLICE: /* rows aux .. of (n, Ra, D) */
        gather_arg(B, v->args[0], a, sizeof a);
        B->use_b = B->use_r = B->use_j = 1;
        snprintf(expr, sizeof expr, "%s[(b * %d + %d + r) * %d + j]", a, v->args[0]->rows, v->aux, v->dim);
        break;
    case IR_ROWPAD: /* (n, Ra, D) at rows aux .., zeros elsewhere */
        gather_arg(B, v->args[0], a, sizeof a);
        B->use_b = B->use_r = B->use_j = 1;
        snprintf(expr, sizeof expr, "r >= %d && r < %d ? %s[(b * %d + r - %d) * %d + j] : (real)0", v->aux,
                 v->aux + v->args[0]->rows, a, v->args[0]->rows, v->aux, v->dim);
        break;
    case IR_STACK: /* piece k (n, Rk, D) at rows off .. off + Rk */
        B->use_b = B->use_r = B->use_j = 1;
        fprintf(f, "%sreal t%d;\n", in, v->id);
        for (int k = 0, off = 0; k < v->n_args; off += v->args[k]->rows, k++) {
            const IrNode *p = v->args[k];
            gather_arg(B, p, a, sizeof a);
            if (k == v->n_args - 1) fprintf(f, "%s%st%d = %s[(b * %d + r - %d) * %d + j];\n", in, k ? "else " : "", v->id, a, p->rows, off, v->dim);
            else fprintf(f, "%s%sif (r < %d) t%d = %s[(b * %d + r - %d) * %d + j];\n", in, k ? "else " : "", off + p->rows, v->id, a, p->rows, off, v->dim);
        }
        goto store;
    case IR_LINEAR:
    case IR_LINEAR_T: {
        const IrNode *A = v->args[0];
        const Param *w = &E->m->params[v->param];
        if (E->virt[A->id]) { /* the concatenation's pieces, one after another */
            int t = v->op == IR_LINEAR_T;
            B->use_j = 1;
            fprintf(f, "%sreal t%d = 0;   /* %s over the pieces of v%d */\n", in, v->id, param_name(E, v->param), A->id);
            for (int k = 0, off = 0; k < A->n_args; off += A->args[k]->dim, k++) {
                const IrNode *p = A->args[k];
                char wp[96];
                if (t) snprintf(wp, sizeof wp, "P + %s + j", poff(E, (long long)(w->offset + (int64_t)off * v->dim), ob));
                else snprintf(wp, sizeof wp, "P + %s + (long)j * %d", poff(E, (long long)(w->offset + off), ob), A->dim);
                if (E->inlined[p->id]) {
                    char pl[96];
                    const_at(E, B, p, v->rows, pl, sizeof pl);
                    fprintf(f, "%st%d = dot_const(t%d, %s, %s, %d, %d);\n", in, v->id, v->id, pl, wp, t ? v->dim : 1, p->dim);
                } else {
                    char row[32];
                    gather_arg(B, p, a, sizeof a);
                    row_of(B, p->rows, v->rows, row, sizeof row);
                    fprintf(f, "%st%d = dot_acc(t%d, %s + %s * %d, %s, %d, %d);\n", in, v->id, v->id, a, row, p->dim, wp,
                            t ? v->dim : 1, p->dim);
                }
            }
            if (v->param2 >= 0)
                fprintf(f, "%st%d += P[%s + j];\n", in, v->id, poff(E, (long long)E->m->params[v->param2].offset, ob));
            goto store;
        }
        gather_arg(B, A, a, sizeof a);
        B->use_m = B->use_j = 1;
        if (v->op == IR_LINEAR)
            snprintf(expr, sizeof expr, "linear_at(%s, m, %d, P + %s, j)", a, A->dim, poff(E, (long long)w->offset, ob));
        else
            snprintf(expr, sizeof expr, "linear_t_at(%s, m, %d, P + %s, %d, j)", a, A->dim, poff(E, (long long)w->offset, ob), v->dim);
        if (v->param2 >= 0) {
            size_t len = strlen(expr);
            snprintf(expr + len, sizeof expr - len, " + P[%s + j]", poff(E, (long long)E->m->params[v->param2].offset, ob));
        }
        break;
    }
    case IR_SUMDIM: /* (n, R, 1) from (n, R, Da) */
        gather_arg(B, v->args[0], a, sizeof a);
        B->use_m = 1;
        snprintf(expr, sizeof expr, "sum_cols_at(%s, m, %d)", a, v->args[0]->dim);
        break;
    case IR_CONCAT: {
        /* piece k (Rk, Dk), broadcast over rows when Rk == 1, at columns off .. off + Dk */
        B->use_j = 1;
        if (v->n_args > 1) fprintf(f, "%sreal t%d;\n", in, v->id);
        for (int k = 0, off = 0; k < v->n_args; off += v->args[k]->dim, k++) {
            const IrNode *p = v->args[k];
            char piece[160];
            if (E->inlined[p->id]) {
                const_at(E, B, p, v->rows, piece, sizeof piece);
            } else {
                char row[32];
                gather_arg(B, p, a, sizeof a);
                row_of(B, p->rows, v->rows, row, sizeof row);
                snprintf(piece, sizeof piece, "%s[%s * %d + j - %d]", a, row, p->dim, off);
            }
            if (v->n_args == 1) fprintf(f, "%sconst real t%d = %s;\n", in, v->id, piece);
            else if (k == v->n_args - 1) fprintf(f, "%selse t%d = %s;\n", in, v->id, piece);
            else fprintf(f, "%s%sif (j < %d) t%d = %s;\n", in, k ? "else " : "", off + p->dim, v->id, piece);
        }
        goto store;
    }
    default:
        snprintf(E->err, E->errlen, "internal error: v%d (%s) is not element-wise", v->id, ir_op_names[v->op]);
        return -1;
    }
    fprintf(f, "%sconst real t%d = %s;\n", in, v->id, expr);
store:
    if (E->stored[v->id]) {
        B->use_e = 1;
        use_buffer(B, v, 1);
        fprintf(f, "%sv%d[e] = t%d;\n", in, v->id, v->id);
    }
    return 0;
}

/* Declarations of the workspace buffers a kernel touches. In a tile kernel a slot holds
 * different values in different stages, so its pointers there are not __restrict__. */
static void declare_buffers(Emit *E, const Body *B) {
    for (int i = 0; i < B->n_bufs; i++) {
        const IrNode *v = B->bufs[i];
        out(E, "    %s%sreal *%sv%d = work + (long)nmax * %s%ld%s;   /* (n, %d, %d) */\n", E->stage >= 0 ? "    " : "",
            B->writes[i] ? "" : "const ", E->stage >= 0 ? "" : "__restrict__ ", v->id, quote(E), E->offset[v->id],
            quote(E), v->rows, v->dim);
    }
}

/* Index variables for element e of (n, R, D) or, in a GEMM epilogue, for row m and column j. */
static void declare_indices(Emit *E, const Body *B, int R, int D, int gemm, const char *in) {
    int use_m = B->use_m || B->use_b || B->use_r || (!gemm && B->use_j);
    int use_b = B->use_b || B->use_r;
    if (gemm) {
        if (B->use_e) out(E, "%sconst long e = m * %d + j;\n", in, D);
    } else if (use_m) {
        if (D == 1) out(E, "%sconst long m = e;\n", in);
        else out(E, "%sconst long m = e / %d;\n", in, D);
        if (B->use_j) out(E, D == 1 ? "%sconst int j = 0;\n" : "%sconst int j = (int)(e - m * %d);\n", in, D);
    }
    if (use_b) {
        if (R == 1) out(E, "%sconst long b = m;\n", in);
        else out(E, "%sconst long b = m / %d;\n", in, R);
    }
    if (B->use_r) {
        if (R == 1) out(E, "%sconst int r = 0;\n", in);
        else out(E, "%sconst int r = (int)(m - b * %d);\n", in, R);
    }
}

static int body_begin(Body *B, int ki, const char *indent) {
    memset(B, 0, sizeof *B);
    B->ki = ki;
    B->indent = indent;
    B->f = open_memstream(&B->text, &B->len);
    return B->f ? 0 : -1;
}

static void body_end(Emit *E, Body *B) {
    fclose(B->f);
    fputs(B->text, E->out);
    free(B->text);
}

/* ---------------------------------------------------------------------------- kernels */

static long ceil_div(long a, long b) { return (a + b - 1) / b; }

/* A tile for an M x N product (M estimated for a typical batch): 64 x 64 when that gives
 * enough blocks, smaller halves until `want` blocks or 16 x 16. */
static void choose_tile(long M, long N, long chunks, int *bm, int *bn) {
    int tm = 64, tn = N <= 16 ? 16 : N <= 32 ? 32 : 64;
    if (M <= 16) tm = 16;
    else if (M <= 32) tm = 32;
    while (ceil_div(M, tm) * ceil_div(N, tn) * chunks < 64 && (tm > 16 || tn > 16)) {
        if (tm >= tn && tm > 16) tm /= 2;
        else tn /= 2;
    }
    *bm = tm, *bn = tn;
}

static void kernel_open(Emit *E, int ki, const char *what) {
    if (E->stage >= 0) {
        out(E, "\n    /* -- stage %d: %s */\n", E->stage, what);
        return;
    }
    const CudaLaunch *l = &E->launch[E->unit_of[ki]];
    out(E, "\n/* ---- %s: %s; grid (", l->kernel, what);
    if (l->per_sample) {
        if (l->per_block == 1) out(E, "n * %ld", l->per_sample);
        else if (l->per_sample == 1) out(E, "ceil(n / %d)", l->per_block);
        else out(E, "ceil(n * %ld / %d)", l->per_sample, l->per_block);
    } else {
        out(E, "%d", l->fixed_x);
    }
    out(E, ", %d, %d), block %d */\n", l->grid_y, l->grid_z, l->block);
}

/* Opens a kernel, or in a tile kernel the scope of a stage. */
static void kernel_signature(Emit *E, int ki) {
    int g = E->kernels[ki].region;
    if (E->stage >= 0) {
        if (g) out(E, "    if (terms[%d] != 0) {   /* gate %d open: this Parareal iteration runs */\n", ir_gate_slot(E->p, g), g);
        else out(E, "    {\n");
        return;
    }
    out(E, "extern \"C\" __global__ void __launch_bounds__(%d) %s(DINO_%s_PARAMS) {\n", THREADS,
        E->launch[E->unit_of[ki]].kernel, E->train ? "TRAIN" : "PREDICT");
    if (g) out(E, "    if (terms[%d] == 0) return;   /* gate %d closed: this Parareal iteration does not run */\n",
               ir_gate_slot(E->p, g), g);
}

/* Closes a kernel, or a stage: the next stage may read what any thread of the block wrote. */
static void kernel_close(Emit *E) {
    if (E->stage >= 0) out(E, "    }\n    __syncthreads();\n");
    else out(E, "}\n");
}

/* The first line of a statement inside a kernel or a stage. */
static const char *ind(const Emit *E) { return E->stage >= 0 ? "        " : "    "; }

static int emit_pointwise(Emit *E, int ki) {
    const Kernel *k = &E->kernels[ki];
    int R = k->rows, D = k->dim, tile = E->stage >= 0;
    int layers = 0;
    for (int i = 0; i < k->count; i++) layers += is_small_layer(member(E, k, i));
    kernel_open(E, ki, layers ? (k->count > 1 ? "small layer, a thread per output, fused" : "small layer, a thread per output")
                              : (k->count > 1 ? "element-wise, fused" : "element-wise"));
    for (int i = 0; i < k->count; i++) {
        const IrNode *v = member(E, k, i);
        if (is_small_layer(v) && E->virt[v->args[0]->id]) node_comment(E, v->args[0], "(not built: read piece by piece)");
        node_comment(E, v, E->stored[v->id] ? NULL : "(register)");
    }
    kernel_signature(E, ki);
    Body B;
    if (body_begin(&B, ki, tile ? "            " : "    ")) return -1;
    for (int i = 0; i < k->count; i++)
        if (emit_member(E, &B, member(E, k, i))) return fclose(B.f), free(B.text), -1;
    fflush(B.f);
    declare_buffers(E, &B);
    if (tile) {
        out(E, "        for (long e = s0 * %ld + threadIdx.x; e < s1 * %ld; e += %d) {   /* the tile's elements of (n, %d, %d) */\n",
            (long)R * D, (long)R * D, THREADS, R, D);
        declare_indices(E, &B, R, D, 0, "            ");
        body_end(E, &B);
        out(E, "        }\n");
    } else {
        out(E, "    const long e = (long)blockIdx.x * %d + threadIdx.x;   /* element of (n, %d, %d) */\n", THREADS, R, D);
        out(E, "    if (e >= (long)n * %ld) return;\n", (long)R * D);
        declare_indices(E, &B, R, D, 0, "    ");
        body_end(E, &B);
    }
    kernel_close(E);
    return 0;
}

/* Tile of a layer inside a tile kernel: few rows per block, so 16 rows; columns by width. */
static void stage_tile(const IrNode *v, int *bm, int *bn) {
    *bm = v->rows >= 32 ? 32 : 16;
    *bn = v->dim <= 16 ? 16 : v->dim <= 32 ? 32 : 64;
}

static int emit_gemm(Emit *E, int ki) {
    char ob[32];   /* poff() */
    const Kernel *k = &E->kernels[ki];
    const IrNode *v = member(E, k, 0), *A = v->args[0];
    const Param *w = &E->m->params[v->param];
    int R = v->rows, D = v->dim, K = A->dim, tb = v->op == IR_LINEAR, tile = E->stage >= 0;
    int bm = k->bm, bn = k->bn;
    if (tile) stage_tile(v, &bm, &bn);
    char what[160];
    snprintf(what, sizeof what, "%s, tile %d x %d%s", tb ? "layer" : "layer transposed", bm, bn,
             k->count > 1 ? ", element-wise epilogue" : "");
    kernel_open(E, ki, what);
    for (int i = 0; i < k->count; i++) node_comment(E, member(E, k, i), E->stored[member(E, k, i)->id] ? NULL : "(register)");
    kernel_signature(E, ki);
    const char *in = tile ? "                        " : "            ";
    Body B;
    if (body_begin(&B, ki, in)) return -1;
    char a[32];
    ref(A, a, sizeof a);
    use_buffer(&B, A, 0);
    /* the epilogue: the product (+ bias) is member 0's value */
    char prod[64];
    if (tile) snprintf(prod, sizeof prod, "tile_at(c, %d, i, jj)", bn);
    else snprintf(prod, sizeof prod, "acc[i][jj]");
    if (v->param2 >= 0) {
        B.use_j = 1;
        fprintf(B.f, "%sconst real t%d = %s + P[%s + j];\n", in, v->id, prod, poff(E, (long long)E->m->params[v->param2].offset, ob));
    } else {
        fprintf(B.f, "%sconst real t%d = %s;\n", in, v->id, prod);
    }
    if (E->stored[v->id]) {
        B.use_e = 1;
        use_buffer(&B, v, 1);
        fprintf(B.f, "%sv%d[e] = t%d;\n", in, v->id, v->id);
    }
    for (int i = 1; i < k->count; i++)
        if (emit_member(E, &B, member(E, k, i))) return fclose(B.f), free(B.text), -1;
    fflush(B.f);
    declare_buffers(E, &B);
    /* C (n*R, D) = A (n*R, K) op(W): W^T for a layer (W is [D, K]), W for its transpose ([K, D]) */
    const char *loop = tile ? "                " : "    ";   /* inside the tile's loops over row and column tiles */
    if (tile) {
        out(E, "        const long M = s1 * %d;   /* the tile's rows end here */\n", R);
        out(E, "        for (long m0 = s0 * %d; m0 < M; m0 += %d)\n", R, bm);
        out(E, "            for (long n0 = 0; n0 < %d; n0 += %d) {\n", D, bn);
        out(E, "%sconst real *c = gemm_tile_shared<0, %d, %d, %d>(M, %d, 0, %d, %s, %d, P + %s, %d, m0, n0);   /* %s%s */\n",
            loop, tb, bm, bn, D, K, a, A->dim, poff(E, (long long)w->offset, ob), w->shape[1], param_name(E, v->param), tb ? "^T" : "");
    } else {
        out(E, "    const long M = (long)n * %d, m0 = (long)blockIdx.x * %d, n0 = (long)blockIdx.y * %d;\n", R, bm, bn);
        out(E, "%sreal acc[%d][%d];\n", loop, bm / 16, bn / 16);
        out(E, "%sgemm_tile<0, %d, %d, %d>(M, %d, 0, %d, %s, %d, P + %s, %d, m0, n0, acc);   /* %s%s */\n", loop, tb, bm,
            bn, D, K, a, A->dim, poff(E, (long long)w->offset, ob), w->shape[1], param_name(E, v->param), tb ? "^T" : "");
    }
    out(E, "%sfor (int i = 0; i < %d; i++) {\n", loop, bm / 16);
    out(E, "%s    const long m = m0 + threadIdx.x / 16 + 16 * i;\n", loop);
    out(E, "%s    if (m >= M) break;\n", loop);
    out(E, "%s    for (int jj = 0; jj < %d; jj++) {\n", loop, bn / 16);
    out(E, "%s        const int j = (int)(n0 + threadIdx.x %% 16 + 16 * jj);\n", loop);
    out(E, "%s        if (j >= %d) break;\n", loop, D);
    declare_indices(E, &B, R, D, 1, in);
    body_end(E, &B);
    out(E, "%s    }\n%s}\n", loop, loop);
    if (tile) out(E, "            }\n");
    kernel_close(E);
    return 0;
}

static void emit_grad_w(Emit *E, int ki) {
    char ob[32];   /* poff() */
    const Kernel *k = &E->kernels[ki];
    const IrNode *v = member(E, k, 0), *A = v->args[0], *Bn = v->args[1];
    const Param *w = &E->m->params[v->param];
    int out_dim = w->shape[0], in_dim = w->shape[1];
    char what[160], a[32], b[32];
    if (k->bm) snprintf(what, sizeof what, "weight gradient, tile %d x %d, %d batch rows per block", k->bm, k->bn, KCHUNK);
    else snprintf(what, sizeof what, "weight gradient, a thread per entry, %d batch rows per block", KCHUNK);
    kernel_open(E, ki, what);
    node_comment(E, v, NULL);
    kernel_signature(E, ki);
    ref(A, a, sizeof a);
    ref(Bn, b, sizeof b);
    Body B = {.n_bufs = 0};
    use_buffer(&B, A, 0);
    use_buffer(&B, Bn, 0);
    declare_buffers(E, &B);
    if (!k->bm) {
        out(E, "    grad_w_part((long)n * %d, %d, %d, %s, %s, G + %s);   /* %s += %s^T %s over the batch */\n", A->rows,
            out_dim, in_dim, a, b, poff(E, (long long)w->offset, ob), param_name(E, v->param), a, b);
        kernel_close(E);
        return;
    }
    out(E, "    /* G[%d, %d] += %s^T %s summed over the batch's n * %d rows, this block's share of them */\n", out_dim,
        in_dim, a, b, A->rows);
    out(E, "    const long K = (long)n * %d, k0 = (long)blockIdx.x * %d;\n", A->rows, KCHUNK);
    out(E, "    if (k0 >= K) return;\n");
    out(E, "    const long k1 = dino_minl(K, k0 + %d), m0 = (long)blockIdx.y * %d, n0 = (long)blockIdx.z * %d;\n", KCHUNK,
        k->bm, k->bn);
    out(E, "    real acc[%d][%d];\n", k->bm / 16, k->bn / 16);
    out(E, "    gemm_tile<1, 0, %d, %d>(%d, %d, k0, k1, %s, %d, %s, %d, m0, n0, acc);\n", k->bm, k->bn, out_dim, in_dim, a,
        A->dim, b, Bn->dim);
    out(E, "    gemm_tile_atomic_add<%d, %d>(acc, %d, %d, m0, n0, G + %s, %d);   /* %s */\n", k->bm, k->bn, out_dim,
        in_dim, poff(E, (long long)w->offset, ob), in_dim, param_name(E, v->param));
    kernel_close(E);
}

static void emit_grad_b(Emit *E, int ki) {
    char ob[32];   /* poff() */
    const IrNode *v = member(E, &E->kernels[ki], 0), *A = v->args[0];
    const Param *w = &E->m->params[v->param];
    char a[32];
    kernel_open(E, ki, "bias gradient");
    node_comment(E, v, NULL);
    kernel_signature(E, ki);
    ref(A, a, sizeof a);
    Body B = {.n_bufs = 0};
    use_buffer(&B, A, 0);
    declare_buffers(E, &B);
    out(E, "    grad_bias_part((long)n * %d, %d, %s, G + %s);   /* %s += column sums of %s */\n", A->rows, A->dim, a,
        poff(E, (long long)w->offset, ob), param_name(E, v->param), a);
    kernel_close(E);
}

/* Where a gradient sum reads one of its values: a workspace offset, or -1 for the input x. */
static long source_offset(const Emit *E, const IrNode *v) { return v->op == IR_INPUT ? -1 : E->offset[v->id]; }

/* A gradient sum's sources, four numbers each in the program's integer table: the workspace
 * offsets of a and b (-1: the input x), the rows per sample, and the terms index of the gate
 * whose region it is in (-1: always runs; a closed region's values were never computed and are
 * skipped). Declares src, where they start. */
static void emit_sources(Emit *E, int ki, int with_b) {
    const Kernel *k = &E->kernels[ki];
    long at = E->n_table[0];
    for (int i = 0; i < k->count; i++) {
        const IrNode *v = member(E, k, i);
        long row[4] = {source_offset(E, v->args[0]), with_b ? source_offset(E, v->args[1]) : -1L, v->args[0]->rows,
                       v->region ? ir_gate_slot(E->p, v->region) : -1};
        for (int c = 0; c < 4; c++) {
            char num[32];
            snprintf(num, sizeof num, "%ld", row[c]);
            table_number(E, 0, num);
        }
    }
    out(E, "    const long *src = dino_%s_L + `%ld`;   /* its sources, four numbers each: a, b, rows per sample, gate */\n",
        E->name, at);
    E->table_used = 1;
}

/* Tile mode: a weight's gradient from every GRAD_W node of it, as one product over all their
 * rows: G += sum over sources q of a_q^T b_q, SUM_SAMPLES samples of every source per block. */
static void emit_grad_w_sum(Emit *E, int ki) {
    char ob[32];   /* poff() */
    const Kernel *k = &E->kernels[ki];
    const IrNode *v = member(E, k, 0);
    const Param *w = &E->m->params[v->param];
    int O = w->shape[0], I = w->shape[1];
    char what[200];
    snprintf(what, sizeof what, "the gradient of %s from its %d use%s, tile %d x %d, %d samples per block",
             param_name(E, v->param), k->count, k->count == 1 ? "" : "s", k->bm, k->bn, SUM_SAMPLES);
    kernel_open(E, ki, what);
    for (int i = 0; i < k->count; i++) node_comment(E, member(E, k, i), NULL);
    kernel_signature(E, ki);
    emit_sources(E, ki, 1);
    out(E, "    const long s0 = (long)blockIdx.x * %d, s1 = dino_minl(n, s0 + %d);\n", SUM_SAMPLES, SUM_SAMPLES);
    out(E, "    const long m0 = (long)blockIdx.y * %d, n0 = (long)blockIdx.z * %d;\n", k->bm, k->bn);
    out(E, "    if (s0 >= s1) return;\n");
    out(E, "    real acc[%d][%d] = {};\n", k->bm / 16, k->bn / 16);
    out(E, "    for (int q = 0; q < %d; q++) {\n", k->count);
    out(E, "        const long *s = src + 4 * q;\n");
    out(E, "        if (s[3] >= 0 && terms[s[3]] == 0) continue;\n");
    out(E, "        const real *a = s[0] < 0 ? x : work + (long)nmax * s[0], *b = s[1] < 0 ? x : work + (long)nmax * s[1];\n");
    out(E, "        gemm_tile_acc<1, 0, %d, %d>(%d, %d, s0 * s[2], s1 * s[2], a, %d, b, %d, m0, n0, acc);\n", k->bm, k->bn, O,
        I, O, I);
    out(E, "    }\n");
    out(E, "    gemm_tile_atomic_add<%d, %d>(acc, %d, %d, m0, n0, G + %s, %d);   /* %s */\n", k->bm, k->bn, O, I,
        poff(E, (long long)w->offset, ob), I, param_name(E, v->param));
    kernel_close(E);
}

/* Tile mode: a bias's gradient from every GRAD_B node of it: column sums over all their rows. */
static void emit_grad_b_sum(Emit *E, int ki) {
    char ob[32];   /* poff() */
    const Kernel *k = &E->kernels[ki];
    const IrNode *v = member(E, k, 0);
    const Param *w = &E->m->params[v->param];
    int D = v->args[0]->dim;
    char what[200];
    snprintf(what, sizeof what, "the gradient of %s from its %d use%s, a thread per column, %d samples per block",
             param_name(E, v->param), k->count, k->count == 1 ? "" : "s", SUM_SAMPLES);
    kernel_open(E, ki, what);
    for (int i = 0; i < k->count; i++) node_comment(E, member(E, k, i), NULL);
    kernel_signature(E, ki);
    emit_sources(E, ki, 0);
    out(E, "    const long s0 = (long)blockIdx.x * %d, s1 = dino_minl(n, s0 + %d);\n", SUM_SAMPLES, SUM_SAMPLES);
    out(E, "    const int j = blockIdx.y * %d + threadIdx.x;\n", THREADS);
    out(E, "    if (s0 >= s1 || j >= %d) return;\n", D);
    out(E, "    real sum = 0;\n");
    out(E, "    for (int q = 0; q < %d; q++) {\n", k->count);
    out(E, "        const long *s = src + 4 * q;\n");
    out(E, "        if (s[3] >= 0 && terms[s[3]] == 0) continue;\n");
    out(E, "        const real *a = work + (long)nmax * s[0];\n");
    out(E, "        for (long r = s0 * s[2]; r < s1 * s[2]; r++) sum += a[r * %d + j];\n", D);
    out(E, "    }\n");
    out(E, "    atomicAdd(G + %s + j, sum);   /* %s */\n", poff(E, (long long)w->offset, ob), param_name(E, v->param));
    kernel_close(E);
}

/* The loop over the samples a per-sample block function runs for: the block's own sample, or
 * in a tile kernel each sample of the tile in turn. */
static void sample_loop(Emit *E) {
    if (E->stage >= 0) out(E, "        for (long b = s0; b < s1; b++)\n    ");
    else out(E, "    if ((long)blockIdx.x >= n) return;\n    const long b = blockIdx.x;\n");
}

static void emit_loss(Emit *E, int ki) {
    const IrNode *v = member(E, &E->kernels[ki], 0), *pred = v->args[0], *data = v->args[1];
    const LossTerm *l = &E->m->loss[v->aux];
    char p[32], d[32], what[160];
    snprintf(what, sizeof what, "loss term %d (%s, weight w[%d]), a block per sample", v->aux, loss_names[l->kind], v->aux);
    kernel_open(E, ki, what);
    node_comment(E, v, "seed: d loss / d prediction");
    kernel_signature(E, ki);
    ref(pred, p, sizeof p);
    ref(data, d, sizeof d);
    Body B = {.n_bufs = 0};
    use_buffer(&B, pred, 0);
    use_buffer(&B, v, 1);
    declare_buffers(E, &B);
    sample_loop(E);
    if (l->kind == LOSS_CROSS_ENTROPY)
        out(E, "%sloss_cross_entropy(b, n, %d, %s, label, v%d, w[%d], terms + %d);\n", ind(E), v->dim, p, v->id, v->aux,
            v->aux);
    else
        out(E, "%sloss_squared(b, n, %d, %d, %d, %d, %s, %s, v%d, w[%d], terms + %d);\n", ind(E), v->rows, v->dim,
            v->transposed, l->relative, p, d, v->id, v->aux, v->aux);
    kernel_close(E);
}

static void emit_monitor(Emit *E, int ki) {
    const IrNode *v = member(E, &E->kernels[ki], 0), *a = v->args[0];
    char an[32], what[96];
    snprintf(what, sizeof what, "diagnostic term %d (a Parareal correction), a block per sample", v->aux);
    kernel_open(E, ki, what);
    node_comment(E, v, NULL);
    kernel_signature(E, ki);
    ref(a, an, sizeof an);
    Body B = {.n_bufs = 0};
    use_buffer(&B, a, 0);
    declare_buffers(E, &B);
    sample_loop(E);
    out(E, "%smonitor_sum(b, n, %ld, %s, terms + %d);\n", ind(E), (long)a->rows * a->dim, an, v->aux);
    kernel_close(E);
}

static void emit_gate(Emit *E, int ki) {
    const IrNode *v = member(E, &E->kernels[ki], 0);
    kernel_open(E, ki, "pint tol: does the next Parareal iteration run");
    node_comment(E, v, NULL);
    kernel_signature(E, ki);
    out(E, "    if (blockIdx.x == 0 && threadIdx.x == 0) terms[%d] = terms[%d] > %.17g * terms[%d] ? 1 : 0;\n",
        ir_gate_slot(E->p, v->aux), v->args[0]->aux, v->c, v->args[1]->aux);
    kernel_close(E);
}

static void emit_errnorm(Emit *E, int ki) {
    const IrNode *v = member(E, &E->kernels[ki], 0);
    char a[32], b[32], c[32];
    kernel_open(E, ki, "dopri5 error norm, a block per sample");
    node_comment(E, v, NULL);
    kernel_signature(E, ki);
    ref(v->args[0], a, sizeof a), ref(v->args[1], b, sizeof b), ref(v->args[2], c, sizeof c);
    Body B = {.n_bufs = 0};
    for (int i = 0; i < 3; i++) use_buffer(&B, v->args[i], 0);
    declare_buffers(E, &B);
    sample_loop(E);
    out(E, "%serr_norm_sum(b, n, %d, %s, %s, %s, %.17g, %.17g, terms + %d);\n", ind(E), v->args[0]->dim, a, b, c, v->c2,
        v->c, v->aux);
    kernel_close(E);
}

static void emit_stepctl(Emit *E, int ki) {
    const IrNode *v = member(E, &E->kernels[ki], 0);
    kernel_open(E, ki, "dopri5 step control, one thread");
    node_comment(E, v, NULL);
    kernel_signature(E, ki);
    out(E, "    if (blockIdx.x != 0 || threadIdx.x != 0) return;\n");
    out(E, "    const int s[8] = {%d, %d, %d, %d, %d, %d, %d, %d};\n", v->slots[0], v->slots[1], v->slots[2], v->slots[3],
        v->slots[4], v->slots[5], v->slots[6], v->slots[7]);
    out(E, "    dopri5_control(terms, s, %.17g, %.17g, %.17g);\n", v->vals[0], v->vals[1], v->vals[2]);
    kernel_close(E);
}

static void emit_zero(Emit *E, int ki) {
    kernel_open(E, ki, E->train ? "zero the gradient and the loss terms" : "zero the Parareal terms");
    kernel_signature(E, ki);
    if (E->train)
        out(E, "    for (long i = (long)blockIdx.x * %d + threadIdx.x; i < %lldL; i += (long)gridDim.x * %d) G[i] = 0;\n",
            THREADS, (long long)E->m->n_weights, THREADS);
    out(E, "    if (blockIdx.x == 0)\n");
    out(E, "        for (int i = threadIdx.x; i < %d; i += %d) terms[i] = 0;\n", E->m->n_loss + monitor_count(E->m), THREADS);
    kernel_close(E);
}

static void emit_results(Emit *E, int ki) {
    const IrNode *o = E->p->output, *jac = E->p->jacobian;
    int out_dim = E->m->out_dim, in_dim = E->m->in_dim;
    char on[32], jn[32];
    kernel_open(E, ki, "the results");
    kernel_signature(E, ki);
    ref(o, on, sizeof on);
    Body B = {.n_bufs = 0};
    use_buffer(&B, o, 0);
    if (jac) use_buffer(&B, jac, 0), ref(jac, jn, sizeof jn);
    declare_buffers(E, &B);
    const char *in = ind(E);
    if (E->stage >= 0) {
        out(E, "%sfor (long e = s0 * %d + threadIdx.x; e < s1 * %d; e += %d) y[e] = %s[e];   /* y (n, %d) */\n", in,
            out_dim, out_dim, THREADS, on, out_dim);
        if (jac) {
            out(E, "%sif (J)\n", in);
            out(E, "%s    for (long f = s0 * %ld + threadIdx.x; f < s1 * %ld; f += %d) {   /* J (n, %d, %d) */\n", in,
                (long)out_dim * in_dim, (long)out_dim * in_dim, THREADS, out_dim, in_dim);
        }
    } else {
        out(E, "    const long e = (long)blockIdx.x * %d + threadIdx.x;\n", THREADS);
        out(E, "    if (e < (long)n * %d) { /* y (n, %d) */\n", out_dim, out_dim);
        out(E, "        y[e] = %s[e];\n        return;\n    }\n", on);
        if (jac) {
            out(E, "    const long f = e - (long)n * %d;   /* J (n, %d, %d) */\n", out_dim, out_dim, in_dim);
            out(E, "    if (!J || f >= (long)n * %ld) return;\n", (long)out_dim * in_dim);
        }
    }
    if (jac) {
        const char *jin = E->stage >= 0 ? "            " : "    ";
        if (E->p->jac_forward) {
            out(E, "%s/* forward mode computed J^T (n, %d, %d) */\n", jin, in_dim, out_dim);
            out(E, "%sconst long b = f / %ld;\n", jin, (long)out_dim * in_dim);
            out(E, "%sconst int o = (int)(f / %d %% %d), i = (int)(f %% %d);\n", jin, in_dim, out_dim, in_dim);
            out(E, "%sJ[f] = %s[(b * %d + i) * %d + o];\n", jin, jn, in_dim, out_dim);
        } else {
            out(E, "%sJ[f] = %s[f];\n", jin, jn);
        }
        if (E->stage >= 0) out(E, "        }\n");
    }
    kernel_close(E);
}

/* ---------------------------------------------------------------------------- programs */

/* The launch of each unit (a kernel, or a tile kernel); checks the grid limits. */
static int plan_launches(Emit *E) {
    E->launch = calloc((size_t)(E->n_units ? E->n_units : 1), sizeof(CudaLaunch));
    for (int u = 0; u < E->n_units; u++) {
        int ki = E->units[u].first;
        Kernel *k = &E->kernels[ki];
        CudaLaunch *l = &E->launch[u];
        snprintf(l->kernel, sizeof l->kernel, "dino_%s_k%d", E->name, u);
        l->block = THREADS;
        l->grid_y = l->grid_z = 1;
        l->stages = E->units[u].count;
        const IrNode *v = k->count ? member(E, k, 0) : NULL;
        if (E->units[u].count > 1) {
            l->tiles = 1;
            continue;
        }
        switch (k->kind) {
        case K_ZERO:
            l->fixed_x = (int)(ceil_div(E->m->n_weights, THREADS) < 1024 ? ceil_div(E->m->n_weights, THREADS) : 1024);
            if (l->fixed_x < 1) l->fixed_x = 1;
            break;
        case K_POINTWISE:
            l->per_sample = (long)k->rows * k->dim;
            l->per_block = THREADS;
            break;
        case K_GEMM:
            choose_tile((long)v->rows * EST_BATCH, v->dim, 1, &k->bm, &k->bn);
            l->per_sample = v->rows;
            l->per_block = k->bm;
            l->grid_y = (int)ceil_div(v->dim, k->bn);
            break;
        case K_GRAD_W: {
            const Param *w = &E->m->params[v->param];
            if ((long)w->shape[0] * w->shape[1] <= SMALL_GRAD) { /* a thread per entry */
                k->bm = k->bn = 0;
                l->per_sample = v->args[0]->rows;
                l->per_block = KCHUNK;
                l->grid_y = (int)ceil_div((long)w->shape[0] * w->shape[1], THREADS);
                break;
            }
            choose_tile(w->shape[0], w->shape[1], ceil_div((long)v->args[0]->rows * EST_BATCH, KCHUNK), &k->bm, &k->bn);
            l->per_sample = v->args[0]->rows;
            l->per_block = KCHUNK;
            l->grid_y = (int)ceil_div(w->shape[0], k->bm);
            l->grid_z = (int)ceil_div(w->shape[1], k->bn);
            break;
        }
        case K_GRAD_W_SUM: {
            const Param *w = &E->m->params[v->param];
            choose_tile(w->shape[0], w->shape[1], ceil_div(EST_BATCH, SUM_SAMPLES), &k->bm, &k->bn);
            l->per_sample = 1;
            l->per_block = SUM_SAMPLES;
            l->grid_y = (int)ceil_div(w->shape[0], k->bm);
            l->grid_z = (int)ceil_div(w->shape[1], k->bn);
            break;
        }
        case K_GRAD_B:
            l->per_sample = v->args[0]->rows;
            l->per_block = GRAD_BIAS_ROWS;
            l->grid_y = (int)ceil_div(v->args[0]->dim, THREADS);
            break;
        case K_GRAD_B_SUM:
            l->per_sample = 1;
            l->per_block = SUM_SAMPLES;
            l->grid_y = (int)ceil_div(v->args[0]->dim, THREADS);
            break;
        case K_GATE:
        case K_STEPCTL: l->fixed_x = 1; break;
        case K_LOSS:
        case K_ERRNORM:
        case K_MONITOR:
            l->per_sample = 1;
            l->per_block = 1;
            break;
        case K_RESULTS:
            l->per_sample = E->m->out_dim + (E->p->jacobian ? (long)E->m->out_dim * E->m->in_dim : 0);
            l->per_block = THREADS;
            break;
        }
        if (l->grid_y > MAX_GRID_YZ || l->grid_z > MAX_GRID_YZ) {
            snprintf(E->err, E->errlen, "%s: error: a layer of %d x %d is too wide for the CUDA backend's grid",
                     E->m->path, v ? v->rows : 0, v ? v->dim : 0);
            return -1;
        }
    }
    return 0;
}

static int prepare_program(Emit *E, const Program *p, int train) {
    E->p = p;
    E->barrier = 0;
    E->train = train;
    E->stage = -1;
    E->name = train ? "train" : "predict";
    ir_live(p, &E->live, &E->tmp);
    int n = p->nodes.n;
    E->kern = malloc(sizeof(int) * (size_t)n);
    E->offset = malloc(sizeof(long) * (size_t)n);
    E->stored = calloc((size_t)n, 1);
    E->inlined = calloc((size_t)n, 1);
    E->virt = calloc((size_t)n, 1);
    for (int i = 0; i < n; i++) E->kern[i] = -1, E->offset[i] = -1;
    find_literals(E);
    find_virtual(E);
    E->tile_mode = want_tiles(E);
    if (form_kernels(E)) return -1;
    form_units(E);
    assign_buffers(E);
    return plan_launches(E);
}

/* One stage or kernel. */
static int emit_kernel(Emit *E, int ki) {
    switch (E->kernels[ki].kind) {
    case K_ZERO: emit_zero(E, ki); break;
    case K_POINTWISE: return emit_pointwise(E, ki);
    case K_GEMM: return emit_gemm(E, ki);
    case K_GRAD_W: emit_grad_w(E, ki); break;
    case K_GRAD_B: emit_grad_b(E, ki); break;
    case K_GRAD_W_SUM: emit_grad_w_sum(E, ki); break;
    case K_GRAD_B_SUM: emit_grad_b_sum(E, ki); break;
    case K_LOSS: emit_loss(E, ki); break;
    case K_MONITOR: emit_monitor(E, ki); break;
    case K_GATE: emit_gate(E, ki); break;
    case K_ERRNORM: emit_errnorm(E, ki); break;
    case K_STEPCTL: emit_stepctl(E, ki); break;
    case K_RESULTS: emit_results(E, ki); break;
    }
    return 0;
}

/* Stages of tile kernels that are equal but for their numbers and node names (the steps of an
 * ODE solve, the checkpoint segments of a training step; share.c) become one __noinline__
 * function of the program, and each stage a call: NVRTC then compiles a long solve's code once
 * instead of once per step. The numbers in which a group's items differ go to two tables of
 * the program, dino_<program>_L (integers) and _D (reals); a call passes the kernel's arguments
 * as one struct (DinoTrainArgs) and a pointer into each table, so its cost does not grow with
 * the numbers. */
static const ShareRules CUDA_RULES = {.prefixes = "vt", .marked_only = 1, .param_format = "%c[%d]"};

/* Whether code uses identifier `name` (outside comments, not as a member). */
static int uses_name(const char *text, const char *name) {
    size_t len = strlen(name);
    for (const char *c = text; *c;) {
        if (c[0] == '/' && c[1] == '*') {
            const char *end = strstr(c + 2, "*/");
            if (!end) return 0;
            c = end + 2;
        } else if (isalpha((unsigned char)*c) || *c == '_') {
            const char *w = c;
            while (isalnum((unsigned char)*c) || *c == '_') c++;
            int member = w > text && (w[-1] == '.' || w[-1] == '>');   /* threadIdx.x is not x */
            if (!member && (size_t)(c - w) == len && memcmp(w, name, len) == 0) return 1;
        } else if (isdigit((unsigned char)*c)) {
            while (isalnum((unsigned char)*c) || *c == '.') c++;   /* 1e5f: not the name e5f */
        } else {
            c++;
        }
    }
    return 0;
}

/* The function shared by group g (its first item): the kernels' arguments, `extra`, then the
 * numbers in which the group's items differ. */
static void emit_shared_function(Emit *E, const char *name, const char *extra, const ShareItem *g) {
    out(E, "__device__ __noinline__ void %s(const Dino%sArgs &kargs%s, const long *__restrict__ L, "
           "const double *__restrict__ D) {\n", name, E->train ? "Train" : "Predict", extra);
    static const char *const names[] = {"P", "G", "n", "nmax", "x", "y", "J", "label", "w", "terms", "work"};
    int all = uses_name(g->text, "DINO_ARGS");   /* a tile kernel's body: all of them, for its stages */
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)   /* the kernel arguments it uses */
        if (all || uses_name(g->text, names[i]))
            out(E, i == 2 || i == 3 ? "    const int %s = kargs.%s;\n" : "    auto *__restrict__ %s = kargs.%s;\n", names[i],
                names[i]);
    share_scan(g->text, E->out, NULL, g->kind, g->slot, &CUDA_RULES);
    out(E, "}\n");
}

/* Appends the numbers of item `it` of group g to the program's tables; *L and *D (if not NULL)
 * get where they start. */
static void table_add(Emit *E, const ShareItem *g, const ShareItem *it, long *L, long *D) {
    if (L) *L = E->n_table[0];
    if (D) *D = E->n_table[1];
    for (int p = 0; p < g->n_nums; p++)
        if (g->kind[p]) table_number(E, g->kind[p] == 'D', it->nums[p]);
}

/* The loops a call is in (a nest of runs, below): each loop's variable and how far one of its
 * repeats moves in the tables. */
typedef struct {
    int depth;
    long stride[MAX_LOOPS][2];   /* L, D */
} Loops;

/* The table arguments of a call: its numbers start at L and D, plus each loop variable times
 * its stride; marked: the start backquoted (a number in which equal kernel bodies may differ). */
static void emit_table_args(Emit *E, long L, long D, const Loops *in, int marked) {
    E->table_used = 1;
    for (int t = 0; t < 2; t++) {
        out(E, marked ? ", dino_%s_%c + `%ld`" : ", dino_%s_%c + %ld", E->name, t ? 'D' : 'L', t ? D : L);
        for (int d = 0; in && d < in->depth; d++)
            if (in->stride[d][t]) out(E, " + k%d * %ld", d, in->stride[d][t]);
    }
}

static void emit_shared_stage(Emit *E, int g) {
    const ShareItem *st = E->stages;
    char name[96];
    snprintf(name, sizeof name, "dino_%s_s%d", E->name, g);
    out(E, "\n/* %d stages of %s's tile kernels do this on other buffers and numbers (steps of an ODE solve) */\n",
        st[g].count, E->name);
    emit_shared_function(E, name, ", const long s0, const long s1", &st[g]);
}

/* Runs: the calls of a long solve repeat with a period (a step's stages; in a checkpointed
 * training step, a segment's recomputation and tangents), so a run of R repeats of the same p
 * shared stages is a loop, whose body is written the same way (loops in loops). */

/* The longest run at stage i of the stages st[i .. n): its period (0: none) and repeats. */
static int find_run(const ShareItem *st, int n, int i, int *repeats) {
    int best_p = 0, best_r = 0;
    for (int p = 1; p <= MAX_PERIOD && i + 2 * p <= n; p++) {
        int ok = 1;
        for (int q = 0; q < p && ok; q++) ok = st[i + q].index >= 0 && st[i + p + q].group == st[i + q].group;
        if (!ok) continue;
        int r = 2;
        while (i + (r + 1) * p <= n) {
            int same = 1;
            for (int q = 0; q < p && same; q++) same = st[i + r * p + q].group == st[i + q].group;
            if (!same) break;
            r++;
        }
        if (p * r > best_p * best_r) best_p = p, best_r = r;
    }
    *repeats = best_r;
    return best_p;
}

/* Stages [i, end) of unit u, inside the loops `in`; off[j] is where stage j's numbers start in
 * the tables (L, D), for the first repeat of every loop it is in. */
static void emit_stages(Emit *E, int u, int i, int end, Loops *in, long (*off)[2]) {
    const ShareItem *st = E->stages + E->first_stage[u];
    char pad[4 * MAX_LOOPS + 8];
    snprintf(pad, sizeof pad, "%*s", 4 * (in->depth + 1), "");
    while (i < end) {
        int r, p = in->depth < MAX_LOOPS ? find_run(st, end, i, &r) : 0;
        if (p) {
            out(E, "\n%sfor (int k%d = 0; k%d < %d; k%d++) {   /* stages %d .. %d: %d times the same %d stages */\n", pad,
                in->depth, in->depth, r, in->depth, i, i + p * r - 1, r, p);
            in->stride[in->depth][0] = off[i + p][0] - off[i][0];
            in->stride[in->depth][1] = off[i + p][1] - off[i][1];
            in->depth++;
            emit_stages(E, u, i, i + p, in, off);
            in->depth--;
            out(E, "%s}\n", pad);
            i += p * r;
        } else if (st[i].index < 0) {
            fputs(st[i].text, E->out);   /* backquotes kept: equal tile kernels share a body */
            i++;
        } else {
            out(E, "%s%sdino_%s_s%d(args, s0, s1", in->depth ? "" : "\n", pad, E->name, st[i].group);
            emit_table_args(E, off[i][0], off[i][1], in, 1);
            out(E, ");   /* stage %d */\n", i);
            i++;
        }
    }
}

/* The stages of tile kernel u, each written to memory (st[0 .. count)), for share_group. */
static int render_stages(Emit *E, int u, ShareItem *st) {
    const Unit *un = &E->units[u];
    FILE *file = E->out;
    int rc = 0;
    for (int i = 0; i < un->count; i++) {
        size_t len;
        E->stage = i;
        E->out = open_memstream(&st[i].text, &len);
        if (!rc) rc = emit_kernel(E, un->first + i);
        fclose(E->out);
    }
    E->out = file;
    E->stage = -1;
    return rc;
}

/* Tile kernel u, its stages from E->stages; their numbers go to the tables in order. */
static void emit_tile_kernel(Emit *E, int u) {
    const Unit *un = &E->units[u];
    const CudaLaunch *l = &E->launch[u];
    const ShareItem *all = E->stages, *st = all + E->first_stage[u];
    long (*off)[2] = malloc(sizeof *off * (size_t)(un->count + 1));
    int shared = 0;
    for (int i = 0; i <= un->count; i++) {
        off[i][0] = E->n_table[0], off[i][1] = E->n_table[1];
        if (i < un->count && st[i].index >= 0) table_add(E, &all[st[i].group], &st[i], NULL, NULL), shared = 1;
    }
    out(E, "\n/* ---- %s: tile kernel of %d stages; each block takes a tile of ceil(n / gridDim.x) samples\n"
           " * through every stage; grid (min(n, tiles), 1, 1), block %d */\n",
        l->kernel, un->count, THREADS);
    out(E, "extern \"C\" __global__ void __launch_bounds__(%d) %s(DINO_%s_PARAMS) {\n", THREADS, l->kernel,
        E->train ? "TRAIN" : "PREDICT");
    out(E, "    const long tile = ((long)n + gridDim.x - 1) / gridDim.x;\n");
    out(E, "    const long s0 = (long)blockIdx.x * tile, s1 = dino_minl(n, s0 + tile);   /* this block's samples */\n");
    out(E, "    if (s0 >= s1) return;\n");
    if (shared) out(E, "    const Dino%sArgs args = DINO_ARGS;   /* for the shared stages */\n", E->train ? "Train" : "Predict");
    Loops in = {0};
    emit_stages(E, u, 0, un->count, &in, off);
    out(E, "}\n");
    free(off);
}

/* Groups the pieces of code that are equal but for their numbers (share.c); with sharing off,
 * or after an error, each piece stands alone. */
static void group_items(const Emit *E, ShareItem *items, int n, int rc) {
    if (!rc && E->share) share_group(items, n, &CUDA_RULES);
    else
        for (int i = 0; i < n; i++) items[i].group = i, items[i].index = -1;
}

static int write_program(Emit *E) {
    int tiles = 0;
    for (int u = 0; u < E->n_units; u++) tiles += E->units[u].count > 1;
    out(E, "\n/* ---------------------------------------------------------------------------- %s */\n", E->name);
    out(E, "/* %d kernel%s", E->n_units, E->n_units == 1 ? "" : "s");
    if (tiles) out(E, " (%d of them tile kernels, %d stages in all)", tiles, E->n_kernels);
    out(E, "; workspace: nmax * %ld reals */\n", E->work);
    for (int i = 0; i < E->live.n; i++) {   /* constants with one value per row */
        const IrNode *v = E->live.items[i];
        if (v->op != IR_CONST || !v->vals) continue;
        out(E, "__device__ const real dino_%s_rows_v%d[%d] = {", E->name, v->id, v->rows);
        for (int r = 0; r < v->rows; r++) out(E, "%s(real)%.17g", r ? ", " : "", v->vals[r]);
        out(E, "};   /* %s */\n", v->name ? v->name : "per-row constant");
    }
    /* the stages of the tile kernels, written to memory: equal ones share a function */
    char *table_text[2];
    size_t table_len[2];
    for (int t = 0; t < 2; t++) E->table[t] = open_memstream(&table_text[t], &table_len[t]), E->n_table[t] = 0;
    E->table_used = 0;
    E->first_stage = calloc((size_t)E->n_units + 1, sizeof(int));
    int n_stages = 0, rc = 0;
    for (int u = 0; u < E->n_units; u++) {
        E->first_stage[u] = n_stages;
        if (E->units[u].count > 1) n_stages += E->units[u].count;
    }
    E->stages = calloc((size_t)n_stages + 1, sizeof(ShareItem));
    for (int u = 0; u < E->n_units && !rc; u++)
        if (E->units[u].count > 1) rc = render_stages(E, u, E->stages + E->first_stage[u]);
    group_items(E, E->stages, n_stages, rc);
    for (int i = 0; i < n_stages && !rc; i++)
        if (E->stages[i].group == i && E->stages[i].index >= 0) emit_shared_stage(E, i);

    /* every kernel written to memory: kernels of their own whose bodies are equal but for
     * their numbers share one __noinline__ function (share.c), called by each kernel */
    ShareItem *items = calloc((size_t)E->n_units + 1, sizeof(ShareItem));   /* the bodies */
    char **head = calloc((size_t)E->n_units + 1, sizeof(char *));
    int *unit_of = calloc((size_t)E->n_units + 1, sizeof(int)), *item_of = calloc((size_t)E->n_units + 1, sizeof(int));
    FILE *file = E->out;
    int n_bodies = 0;
    for (int u = 0; u < E->n_units && !rc; u++) {
        size_t len;
        E->out = open_memstream(&head[u], &len);
        if (E->units[u].count > 1) emit_tile_kernel(E, u);
        else rc = emit_kernel(E, E->units[u].first);
        fclose(E->out);
        item_of[u] = -1;
        char *sig = strstr(head[u], "extern \"C\" __global__");
        char *open = sig ? strchr(sig, '\n') : NULL;
        size_t hl = open ? (size_t)(open + 1 - head[u]) : 0, total = strlen(head[u]);
        if (!open || total < hl + 2) continue;
        items[n_bodies].text = strndup(head[u] + hl, total - hl - 2);     /* without the closing "}\n" */
        head[u][hl] = 0;
        unit_of[n_bodies] = u, item_of[u] = n_bodies++;
    }
    E->out = file;
    group_items(E, items, n_bodies, rc);
    long *at = calloc((size_t)n_bodies + 1, 2 * sizeof(long));   /* where each body call's numbers start */
    for (int i = 0; i < n_bodies && !rc; i++)
        if (items[i].index >= 0) table_add(E, &items[items[i].group], &items[i], &at[2 * i], &at[2 * i + 1]), E->table_used = 1;
    for (int t = 0; t < 2; t++) {   /* the tables */
        fclose(E->table[t]);
        if (rc || !E->table_used) continue;
        out(E, "\n/* the numbers of the shared functions' calls: %s */\n",
            E->n_table[t] ? (t ? "reals" : "integers") : t ? "reals (none; the calls point here all the same)"
                                                            : "integers (none; the calls point here all the same)");
        out(E, "__device__ const %s dino_%s_%c[%ld] = {\n%s%s\n};\n", t ? "double" : "long", E->name, t ? 'D' : 'L',
            E->n_table[t] ? E->n_table[t] : 1, table_text[t], E->n_table[t] ? "" : "    0");
    }
    for (int i = 0; i < n_bodies && !rc; i++) {
        if (items[i].group != i || items[i].index < 0) continue;
        char name[64];
        snprintf(name, sizeof name, "dino_%s_b%d", E->name, i);
        out(E, "\n/* the body of %d kernels (%s and others) that differ only in buffers and numbers */\n", items[i].count,
            E->launch[unit_of[i]].kernel);
        emit_shared_function(E, name, "", &items[i]);
    }
    for (int u = 0; u < E->n_units && !rc; u++) {
        share_strip(head[u], E->out, &CUDA_RULES);
        int i = item_of[u];
        if (i < 0) continue;
        if (items[i].index < 0) {
            share_strip(items[i].text, E->out, &CUDA_RULES);
        } else {
            out(E, "    const Dino%sArgs args = DINO_ARGS;\n", E->train ? "Train" : "Predict");
            out(E, "    dino_%s_b%d(args", E->name, items[i].group);
            emit_table_args(E, at[2 * i], at[2 * i + 1], NULL, 0);
            out(E, ");\n");
        }
        out(E, "}\n");
    }
    for (int u = 0; u < E->n_units; u++) free(head[u]);
    free(head), free(unit_of), free(item_of), free(at);
    for (int t = 0; t < 2; t++) free(table_text[t]);
    share_free(items, n_bodies);
    share_free(E->stages, n_stages);
    free(E->first_stage);
    E->stages = NULL, E->first_stage = NULL;
    return rc ? -1 : 0;
}

static void free_program(Emit *E) {
    free(E->kernels);
    free(E->units);
    free(E->unit_of);
    free(E->kern);
    free(E->stored);
    free(E->inlined);
    free(E->virt);
    free(E->offset);
    free(E->launch);
    arena_free(&E->tmp);
}

void cuda_plan_free(CudaPlan *plan) {
    free(plan->predict);
    free(plan->train);
    plan->predict = plan->train = NULL;
    plan->n_predict = plan->n_train = 0;
}

static void write_header(FILE *out, const Model *m, const EmitOptions *opt, const Emit *pe, const Emit *te) {
    fprintf(out, "/* Generated by dinoc from %s (spec hash %016llx): the CUDA backend of model '%s'.\n"
                 " * %d -> %d, %d parameter tensors, %lld parameters, %s. Regenerate instead of editing.\n",
            m->path, (unsigned long long)opt->spec_hash, m->name, m->in_dim, m->out_dim, m->n_params,
            (long long)m->n_weights, opt->f64 ? "f64" : "f32");
    char cols[5][2][64];
    snprintf(cols[0][0], 64, "P (n_params) parameters");
    snprintf(cols[0][1], 64, "G (n_params) their gradient (train)");
    snprintf(cols[1][0], 64, "n rows in this batch");
    snprintf(cols[1][1], 64, "nmax rows the workspace holds");
    snprintf(cols[2][0], 64, "x (n, %d) input", m->in_dim);
    snprintf(cols[2][1], 64, "y (n, %d) output (written by predict)", m->out_dim);
    snprintf(cols[3][0], 64, "J (n, %d, %d) Jacobian", m->out_dim, m->in_dim);
    snprintf(cols[3][1], 64, "label (n) classes (cross_entropy)");
    snprintf(cols[4][0], 64, "w (%d) loss-term weights", m->n_loss);
    snprintf(cols[4][1], 64, "terms (%d) loss terms, batch means", m->n_loss);
    fprintf(out, " *\n"
                 " * Self-contained: NVRTC compiles it with no include path (dinoc --emit ptx does). ABI %d: every\n"
                 " * kernel of a program takes the CPU backend's arguments (DINO_PREDICT_PARAMS, DINO_TRAIN_PARAMS):\n",
            DINO_CUDA_ABI);
    for (int i = 0; i < 5; i++) fprintf(out, " *   %-34s %s\n", cols[i][0], cols[i][1]);
    fprintf(out,
            " *   work the workspace\n"
            " * predict: dino_predict_k0 .. k%d in order, work = nmax * %ld reals; J may be NULL.\n"
            " * train:   dino_train_k0 .. k%d in order, work = nmax * %ld reals; k0 zeroes G and terms.\n"
            " * Each kernel's launch is in the comment above it: block 256 threads, grid.x scales with n;\n"
            " * a tile kernel's grid.x is min(n, tiles) for any tiles >= 1 (two per multiprocessor).\n"
            " * Generated for the GPU but not yet run on one: checked with NVRTC and a CPU emulation. */\n",
            pe->n_units - 1, pe->work, te->n_units - 1, te->work);
    fprintf(out, "#define DINO_REAL %s\n", opt->f64 ? "double" : "float");
}

int emit_cuda(FILE *out, const Model *m, const Programs *pr, const EmitOptions *opt, CudaPlan *plan, char *err,
              size_t errlen) {
    Emit pe = {.out = out, .m = m, .err = err, .errlen = errlen, .fuse = opt->fuse, .share = !opt->no_share, .stage = -1}, te = pe;
    int rc = prepare_program(&pe, &pr->predict, 0);
    if (!rc) rc = prepare_program(&te, &pr->train, 1);
    if (!rc) {
        write_header(out, m, opt, &pe, &te);
        fputs(prelude_cuda, out);
        fputs("\n/* ---------------------------------------------------------------------------- interface */\n\n", out);
        fprintf(out, "extern \"C\" __device__ const int dino_abi = %d, dino_in = %d, dino_out = %d, dino_f64 = %d;\n",
                DINO_CUDA_ABI, m->in_dim, m->out_dim, opt->f64);
        fprintf(out, "extern \"C\" __device__ const long long dino_n_params = %lld, dino_predict_work = %ld, "
                     "dino_train_work = %ld;\n",
                (long long)m->n_weights, pe.work, te.work);
        fprintf(out, "extern \"C\" __device__ const unsigned long long dino_spec_hash = 0x%016llxull;\n\n",
                (unsigned long long)opt->spec_hash);
        emit_param_table(out, m);
        rc = write_program(&pe);
        if (!rc) rc = write_program(&te);
    }
    if (!rc && plan) {
        *plan = (CudaPlan){.n_predict = pe.n_units, .n_train = te.n_units, .predict_work = pe.work,
                           .train_work = te.work, .in = m->in_dim, .out = m->out_dim, .n_loss = m->n_loss,
                           .f64 = opt->f64, .n_params = (long long)m->n_weights, .spec_hash = opt->spec_hash};
        plan->predict = pe.launch, pe.launch = NULL;
        plan->train = te.launch, te.launch = NULL;
    }
    free_program(&pe);
    free_program(&te);
    return rc ? -1 : 0;
}

int fuse_mode(const char *name) {
    static const char *const names[] = {[FUSE_AUTO] = "auto", [FUSE_NONE] = "none", [FUSE_TILES] = "tiles"};
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

char *generate_cuda(Arena *a, const Model *m, JacMode jac, const EmitOptions *opt, size_t *len, CudaPlan *plan,
                    char *err, size_t errlen) {
    Programs pr;
    if (build_programs(a, m, jac, &pr, err, errlen)) return NULL;
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) {
        snprintf(err, errlen, "out of memory generating code");
        return NULL;
    }
    int rc = emit_cuda(f, m, &pr, opt, plan, err, errlen);
    fclose(f);
    if (rc) {
        free(buf);
        return NULL;
    }
    return buf;
}
