/* fuse.c - kernel formation for the CUDA emitter: which IR nodes of a program run together
 * in one kernel, which kernels run as the stages of one tile kernel, where each stored value
 * lives in the workspace, and how each kernel is launched (the CudaPlan's entries). It writes
 * no text: emit_cuda_kernels.c writes the kernels, emit_cuda_share.c the program (fuse.h).
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
 * mode slots are reused only at the same size (assign_buffers). */
#include "fuse.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------- node kinds */

int cuda_is_small_layer(const IrNode *v) {
    return ir_op_is(v->op, OP_LAYER) && v->args[0]->dim <= SMALL_K && v->dim <= SMALL_D;
}

/* Reads its arguments at other elements than its own. */
static int is_gather(const IrNode *v) { return ir_op_is(v->op, OP_GATHER) || cuda_is_small_layer(v); }

/* One thread per element computes it. */
static int is_pointwise(const IrNode *v) { return ir_op_is(v->op, OP_ELEM | OP_FILL) || is_gather(v); }

static int is_kept(const Emit *E, const IrNode *v) { return !E->train && (v == E->p->output || v == E->p->jacobian); }

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

/* The values node u reads: its arguments, and the pieces of a virtual concatenation, into r
 * (room for cap); returns how many there are, which may be more than cap. */
static int reads_into(const Emit *E, const IrNode *u, const IrNode **r, int cap) {
    int n = 0;
    for (int k = 0; k < u->n_args; k++) {
        const IrNode *a = u->args[k];
        if (E->virt[a->id])
            for (int q = 0; q < a->n_args; q++, n++) {
                if (n < cap) r[n] = a->args[q];
            }
        else if (n++ < cap) r[n - 1] = a;
    }
    return n;
}

/* All the values u reads (reads_into): in buf (MAX_READS) when they fit, else in a malloc'd array
 * (a node with many operands: the concatenation of a trajectory's T saved states); free it with
 * reads_done. */
static const IrNode **reads_of(const Emit *E, const IrNode *u, const IrNode **buf, int *n) {
    *n = reads_into(E, u, buf, MAX_READS);
    if (*n <= MAX_READS) return buf;
    const IrNode **r = malloc(sizeof *r * (size_t)*n);
    if (!r) { /* out of memory: the first MAX_READS, as before */
        *n = MAX_READS;
        return buf;
    }
    reads_into(E, u, r, *n);
    return r;
}

static void reads_done(const IrNode **r, const IrNode **buf) {
    if (r != buf) free((void *)r);
}

/* Whether v can run in kernel ki, at its own elements. */
static int can_join(const Emit *E, int ki, const IrNode *v) {
    const Kernel *k = &E->kernels[ki];
    if ((k->kind != K_POINTWISE && k->kind != K_GEMM) || k->count >= MAX_MEMBERS) return 0;
    if (ki < E->barrier) return 0; /* before a kernel that sets the terms it may read */
    if (v->rows != k->rows || v->dim != k->dim || v->region != k->region) return 0;
    const IrNode *buf[MAX_READS];
    int n_reads, ok = 1;
    const IrNode **reads = reads_of(E, v, buf, &n_reads);
    for (int i = 0; i < n_reads && ok; i++) {
        const IrNode *a = reads[i];
        if (E->kern[a->id] != ki) continue;
        /* a value of this kernel is only in the registers of the thread that computed it */
        if (is_gather(v) || a->rows != v->rows || a->dim != v->dim) ok = 0;
    }
    reads_done(reads, buf);
    return ok;
}

/* Constants read only by element-wise nodes become literals. */
static void find_literals(Emit *E) {
    for (int i = 0; i < E->live.n; i++) {
        const IrNode *v = E->live.items[i];
        if ((v->op == IR_CONST || v->op == IR_TERM) && !is_kept(E, v)) E->inlined[v->id] = 1;
    }
    for (int i = 0; i < E->live.n; i++) {
        const IrNode *u = E->live.items[i];
        if (ir_op_is(u->op, OP_ELEM) || u->op == IR_CONCAT) continue;
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
            if (!cuda_is_small_layer(u) || k > 0) E->virt[u->args[k]->id] = 0;
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
                E->kernels[ki].region = 0; /* always runs; each member's region is in its table */
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
    PtrVec deferred = {0}; /* tile mode: GRAD_W and GRAD_B nodes */
    int seg = 0;           /* the checkpoint segment whose recomputed values are being read */
    E->has_terms = E->train;
    for (int i = 0; i < E->live.n; i++) { E->has_terms |= ir_op_is(((const IrNode *)E->live.items[i])->op, OP_TERMS); }
    if (E->has_terms) add_kernel(E, K_ZERO, NULL);
    for (int i = 0; i < E->live.n; i++) {
        const IrNode *v = E->live.items[i];
        if (ir_op_is(v->op, OP_ARG) || E->inlined[v->id] || E->virt[v->id]) continue;
        if (v->recomputed && v->seg != seg) {
            /* checkpointing: the gradient pass recomputes another segment, so the gradients
             * deferred so far are summed here, and the values they read die with their segment */
            seg = v->seg;
            if (deferred.n) sum_gradients(E, &deferred), open = -1;
        }
        int ki;
        if (is_pointwise(v)) {
            const IrNode *buf[MAX_READS];
            int producer = -1, n_reads;
            const IrNode **reads = reads_of(E, v, buf, &n_reads);
            for (int k = 0; k < n_reads; k++)
                if (E->kern[reads[k]->id] > producer) producer = E->kern[reads[k]->id];
            reads_done(reads, buf);
            if (open >= 0 && can_join(E, open, v)) {
                add_member(E, open, v);
                continue;
            }
            if (producer >= 0 && can_join(E, producer, v)) {
                add_member(E, producer, v);
                continue;
            }
            ki = open = add_kernel(E, K_POINTWISE, v);
        } else if (ir_op_is(v->op, OP_LAYER)) {
            ki = open = add_kernel(E, K_GEMM, v);
        } else if (E->tile_mode && ir_op_is(v->op, OP_GRAD)) {
            ptrvec_push(&E->tmp, &deferred, (void *)v); /* summed per parameter at the end */
            continue;
        } else if (ir_op_is(v->op, OP_OWN)) {
            static const KernelKind kinds[] = {
                [IR_GRAD_W] = K_GRAD_W, [IR_GRAD_B] = K_GRAD_B,   [IR_LOSS] = K_LOSS,      [IR_MONITOR] = K_MONITOR,
                [IR_GATE] = K_GATE,     [IR_ERRNORM] = K_ERRNORM, [IR_STEPCTL] = K_STEPCTL};
            ki = add_kernel(E, kinds[v->op], v);
            open = -1;
            if (ir_op_is(v->op, OP_DECIDE)) E->barrier = ki;
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
    case K_POINTWISE:
    case K_GEMM:
    case K_LOSS:
    case K_MONITOR:
    case K_ERRNORM:
    case K_RESULTS: return 1;
    default: return 0; /* the batch as a whole: zeroing, gates, step control, gradient sums */
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
        if (!ir_op_is(v->op, OP_LAYER)) continue;
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
            if (u->op == IR_LOSS) E->stored[u->id] = 1; /* the seed */
            const IrNode *buf[MAX_READS];
            int n_reads;
            const IrNode **reads = reads_of(E, u, buf, &n_reads);
            for (int a = 0; a < n_reads; a++) {
                const IrNode *v = reads[a];
                if (E->kern[v->id] < 0 || E->kern[v->id] == ki) continue;
                E->stored[v->id] = 1;
                last[v->id] = ki;
            }
            reads_done(reads, buf);
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
            const IrNode *u = member(E, k, i), *buf[MAX_READS];
            int n_reads;
            const IrNode **reads = reads_of(E, u, buf, &n_reads);
            for (int a = -1; a < n_reads; a++) {
                const IrNode *v = a < 0 ? u : reads[a];
                if (E->offset[v->id] < 0 || last[v->id] > ki) continue;
                if (a < 0 && last[v->id] >= 0) continue; /* u itself is read later */
                slots_release(&pool, v->id);
            }
            reads_done(reads, buf);
        }
    }
    E->work = pool.work;
    slots_free(&pool);
    free(last);
}

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

/* ---------------------------------------------------------------------------- programs */

/* A parameter's gradient kernel is named by the parameter, dino_train_grad_q_1_weight, so that
 * a layer added before it leaves its name as it was (diffable code); kept dino_train_k<u> where
 * the name would be too long, end in _v<digits> or be taken by an earlier kernel. */
static void grad_kernel_name(const Emit *E, int u, const IrNode *v, CudaLaunch *l) {
    if (v->param < 0) return;
    char name[sizeof l->kernel];
    int n = snprintf(name, sizeof name, "dino_%s_grad_%s", E->name, E->m->params[v->param].name);
    if (n < 0 || (size_t)n >= sizeof name) return;
    for (char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))) *c = '_';
    const char *d = name + strlen(name); /* X_v12 would be renamed as a node's (names.h) */
    while (d > name && *(d - 1) >= '0' && *(d - 1) <= '9') d--;
    if (*d && d - name >= 2 && d[-1] == 'v' && d[-2] == '_') return;
    for (int i = 0; i < u; i++)
        if (!strcmp(E->launch[i].kernel, name)) return;
    memcpy(l->kernel, name, sizeof name);
}

/* The launch of each unit (a kernel, or a tile kernel); checks the grid limits. */
static int plan_launches(Emit *E) {
    E->launch = calloc((size_t)(E->n_units ? E->n_units : 1), sizeof(CudaLaunch));
    for (int u = 0; u < E->n_units; u++) {
        int ki = E->units[u].first;
        Kernel *k = &E->kernels[ki];
        CudaLaunch *l = &E->launch[u];
        snprintf(l->kernel, sizeof l->kernel, "dino_%s_k%d", E->name, u);
        if (E->units[u].count == 1 && k->count &&
            (k->kind == K_GRAD_W || k->kind == K_GRAD_W_SUM || k->kind == K_GRAD_B || k->kind == K_GRAD_B_SUM))
            grad_kernel_name(E, u, member(E, k, 0), l);
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

int cuda_prepare_program(Emit *E, const Program *p, int train) {
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

void cuda_free_program(Emit *E) {
    free(E->kernels);
    free(E->units);
    free(E->unit_of);
    free(E->kern);
    free(E->stored);
    free(E->inlined);
    free(E->virt);
    free(E->offset);
    free(E->slot_of);
    free(E->launch);
    arena_free(&E->tmp);
}
