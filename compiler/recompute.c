/* recompute.c - checkpointing: recompute a segment's values where a later pass reads them.
 *
 * A program runs in passes, one after the other: the forward pass (nodes [0, n_forward)), the
 * Jacobian pass ([n_forward, n_primal)) and the gradient pass ([n_primal, end)). A later pass
 * reads the values of an earlier one (a tangent reads f'(a), an adjoint reads the layer's
 * input), so without checkpointing every value of every ODE step is kept from the moment it
 * is computed until the pass that reads it last: memory grows with the number of steps.
 *
 * With `checkpoint N` the lowering tags each run of N steps of a serial solve as a segment
 * (IrNode.seg). A segment's values that other segments read in the same or an earlier pass
 * (the state at its end, the tangent of that state) are its stored inputs and outputs: they
 * are kept. Every other value of the segment that a later pass reads is not: where that pass
 * first reads it, the segment's nodes of the earlier passes are copied (with the copies
 * reading each other and the stored values) and the later pass reads the copies. The copies
 * are computed by the same operations from the same values, so they are equal, bit for bit,
 * to what they replace, and the result of the program does not change. The originals then
 * die within their own pass and segment, and the copies live while the later pass works
 * through the segment: a training step holds the stored states plus about one segment's
 * values (segments of about sqrt(steps) steps need the least), for one more forward
 * computation of the solve (two with a forward-mode Jacobian in the loss).
 *
 * A pass reads one segment in one run of nodes (the gradient pass goes through the segments
 * in reverse); when a pass comes back to a segment after working on two others, the segment
 * is recomputed again rather than kept. Copies nothing reads are dropped by ir_live. */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* The pass a node of the original program belongs to: 1 forward, 2 Jacobian, 3 gradient. */
static int pass_of(const Program *p, int id) { return id < p->n_forward ? 1 : id < p->n_primal ? 2 : 3; }

typedef struct {
    int pass;    /* the pass the current copies of the segment are for; 0 none */
    long serial; /* when they were made */
} SegCopies;

void ir_recompute(Program *p) {
    if (!p->n_segs) return;
    int n = p->nodes.n, S = p->n_segs;
    IrNode **orig = (IrNode **)p->nodes.items;

    /* kept[i]: node i is read outside its own segment within the earlier passes, or has no value */
    char *kept = calloc((size_t)n, 1);
    for (int i = 0; i < p->n_primal; i++) {
        IrNode *u = orig[i];
        if (u->dim == 0) kept[i] = 1;
        for (int k = 0; k < u->n_args; k++)
            if (u->args[k]->seg != u->seg) kept[u->args[k]->id] = 1;
    }
    /* the members of each segment, in order */
    int *count = calloc((size_t)S + 2, sizeof(int)), *first = calloc((size_t)S + 2, sizeof(int));
    for (int i = 0; i < p->n_primal; i++) count[orig[i]->seg]++;
    for (int s = 1; s <= S + 1; s++) first[s] = first[s - 1] + count[s - 1];
    int *members = malloc(sizeof(int) * (size_t)(p->n_primal ? p->n_primal : 1)),
        *fill = calloc((size_t)S + 1, sizeof(int));
    for (int i = 0; i < p->n_primal; i++) members[first[orig[i]->seg] + fill[orig[i]->seg]++] = i;

    IrNode **copy = calloc((size_t)n, sizeof(IrNode *)); /* original id -> its current copy */
    SegCopies *seg = calloc((size_t)S + 1, sizeof(SegCopies));
    long serial = 0;
    PtrVec out = {0};
    for (int i = 0; i < n; i++) {
        IrNode *u = orig[i];
        int pass = pass_of(p, i);
        for (int k = 0; k < u->n_args; k++) {
            IrNode *a = u->args[k];
            int s = a->seg;
            if (!s || kept[a->id] || pass_of(p, a->id) >= pass) continue;
            if (seg[s].pass != pass || seg[s].serial < serial - 1) { /* copy the segment here */
                seg[s] = (SegCopies){.pass = pass, .serial = ++serial};
                for (int m = first[s]; m < first[s] + count[s]; m++) {
                    IrNode *b = orig[members[m]];
                    if (kept[b->id] || pass_of(p, b->id) >= pass) continue;
                    IrNode *c = arena_alloc(p->arena, sizeof *c);
                    *c = *b;
                    c->recomputed = b->id + 1;
                    if (b->n_args) {
                        c->args = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)b->n_args);
                        for (int q = 0; q < b->n_args; q++) {
                            IrNode *x = b->args[q];
                            c->args[q] = x->seg == s && !kept[x->id] ? copy[x->id] : x;
                        }
                    }
                    copy[b->id] = c;
                    ptrvec_push(p->arena, &out, c);
                }
            }
            u->args[k] = copy[a->id];
        }
        ptrvec_push(p->arena, &out, u);
    }
    for (int i = 0; i < out.n; i++) ((IrNode *)out.items[i])->id = i;
    p->nodes = out;
    free(kept), free(count), free(first), free(members), free(fill), free(copy), free(seg);
}
