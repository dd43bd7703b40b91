/* ir.c - building IR nodes, finding what a program needs, printing it (dinoc --emit ir). */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

#include "ops.h"

const IrOpInfo ir_ops[IR_OP_COUNT] = {
#define X(name, arity, flags, doc) {#name, arity, flags},
    DINO_IR_OPS(X)
#undef X
};

const char *const ir_op_names[IR_OP_COUNT] = {
#define X(name, arity, flags, doc) #name,
    DINO_IR_OPS(X)
#undef X
};

IrNode *ir_node(Program *p, IrOp op, int rows, int dim) {
    IrNode *n = arena_alloc(p->arena, sizeof *n);
    n->op = op;
    n->id = p->nodes.n;
    n->rows = rows;
    n->dim = dim;
    n->param = n->param2 = -1;
    n->region = p->region;
    n->seg = p->seg;
    n->step = p->step;
    ptrvec_push(p->arena, &p->nodes, n);
    return n;
}

static void set_args(Program *p, IrNode *n, IrNode **args, int k) {
    n->args = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)k);
    n->n_args = k;
    for (int i = 0; i < k; i++) {
        n->args[i] = args[i];
        n->needs_param |= args[i]->needs_param;
        n->needs_input |= args[i]->needs_input;
        if (args[i]->region > n->region) n->region = args[i]->region;
    }
}

IrNode *ir_unary(Program *p, IrOp op, IrNode *a) {
    IrNode *n = ir_node(p, op, a->rows, a->dim);
    set_args(p, n, &a, 1);
    return n;
}

IrNode *ir_binary(Program *p, IrOp op, IrNode *a, IrNode *b) {
    int rows = a->rows > b->rows ? a->rows : b->rows;
    int dim = a->dim > b->dim ? a->dim : b->dim;
    IrNode *n = ir_node(p, op, rows, dim);
    IrNode *args[2] = {a, b};
    set_args(p, n, args, 2);
    return n;
}

IrNode *ir_linear(Program *p, IrNode *a, int weight, int bias) {
    const Param *w = &p->model->params[weight];
    IrNode *n = ir_node(p, IR_LINEAR, a->rows, w->shape[0]);
    set_args(p, n, &a, 1);
    n->param = weight;
    n->param2 = bias;
    n->needs_param |= !w->frozen; /* a basis's frozen layer has no gradient of its own */
    return n;
}

IrNode *ir_linear_t(Program *p, IrNode *a, int weight) {
    const Param *w = &p->model->params[weight];
    IrNode *n = ir_node(p, IR_LINEAR_T, a->rows, w->shape[1]);
    set_args(p, n, &a, 1);
    n->param = weight;
    n->needs_param |= !w->frozen;
    return n;
}

IrNode *ir_act(Program *p, IrOp op, int act, IrNode *a) {
    IrNode *n = ir_unary(p, op, a);
    n->aux = act;
    return n;
}

IrNode *ir_scale(Program *p, IrNode *a, double c) {
    IrNode *n = ir_unary(p, IR_SCALE, a);
    n->c = c;
    return n;
}

IrNode *ir_sum(Program *p, IrNode *a, IrNode *b) {
    if (!a) return b;
    if (!b) return a;
    return ir_binary(p, IR_ADD, a, b);
}

IrNode *ir_stack(Program *p, IrNode **parts, int k) {
    int rows = 0;
    for (int i = 0; i < k; i++) rows += parts[i]->rows;
    IrNode *n = ir_node(p, IR_STACK, rows, parts[0]->dim);
    set_args(p, n, parts, k);
    return n;
}

IrNode *ir_rows(Program *p, IrOp op, IrNode *a, int off, int rows) {
    IrNode *n = ir_unary(p, op, a);
    n->rows = rows;
    n->aux = off;
    return n;
}

IrNode *ir_select(Program *p, IrNode *a, IrNode *b, int gate) {
    IrNode *n = ir_binary(p, IR_SELECT, a, b);
    n->aux = gate;
    n->region = b->region;
    return n;
}

int ir_gate_slot(const Program *p, int gate) { return p->gate_base + gate - 1; }

void ir_root(Program *p, IrNode *n) { ptrvec_push(p->arena, &p->roots, n); }

/* ---------------------------------------------------------------------------- liveness */

void ir_live(const Program *p, PtrVec *out, Arena *a) {
    char *live = arena_alloc(a, (size_t)p->nodes.n + 1);
    for (int i = 0; i < p->roots.n; i++) live[((IrNode *)p->roots.items[i])->id] = 1;
    for (int i = p->nodes.n - 1; i >= 0; i--) {
        const IrNode *n = p->nodes.items[i];
        if (!live[i]) continue;
        for (int k = 0; k < n->n_args; k++) live[n->args[k]->id] = 1;
    }
    for (int i = 0; i < p->nodes.n; i++)
        if (live[i]) ptrvec_push(a, out, p->nodes.items[i]);
}

int ir_check_ops(const Program *p, char *err, size_t errlen) {
    for (int i = 0; i < p->nodes.n; i++) {
        const IrNode *n = p->nodes.items[i];
        int arity = ir_ops[n->op].arity;
        if ((arity >= 0 && n->n_args != arity) || (arity < 0 && n->n_args < 1)) {
            snprintf(err, errlen, "internal error: IR node v%d (%s) has %d operands, its op takes %d", n->id,
                     ir_op_names[n->op], n->n_args, arity);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------- printing */

void ir_print(FILE *out, const Program *p, const char *title) {
    Arena tmp = {0};
    PtrVec live = {0};
    ir_live(p, &live, &tmp);
    fprintf(out, "program %s: %d live nodes of %d\n", title, live.n, p->nodes.n);
    for (int i = 0; i < live.n; i++) {
        const IrNode *n = live.items[i];
        fprintf(out, "  v%-4d = %-10s", n->id, ir_op_names[n->op]);
        for (int k = 0; k < n->n_args; k++) fprintf(out, " v%d", n->args[k]->id);
        if (n->param >= 0) fprintf(out, " %s", p->model->params[n->param].name);
        if (n->param2 >= 0) fprintf(out, " %s", p->model->params[n->param2].name);
        if (ir_op_is(n->op, OP_AUX_ACT)) fprintf(out, " %s", activation_names[n->aux]);
        if (n->op == IR_CONST && n->vals) {
            for (int r = 0; r < n->rows; r++) fprintf(out, "%s%.17g", r ? ", " : " rows ", n->vals[r]);
        } else if (ir_op_is(n->op, OP_C)) {
            fprintf(out, " %.17g", n->c);
        }
        if (ir_op_is(n->op, OP_AUX_AT)) fprintf(out, " @%d", n->aux);
        if (n->op == IR_SELECT) fprintf(out, " gate %d", n->aux);
        if (n->op == IR_GATE) fprintf(out, " gate %d > %.3g", n->aux, n->c);
        if (n->op == IR_MONITOR) fprintf(out, " terms[%d]", n->aux);
        if (n->region) fprintf(out, "   (gate %d)", n->region);
        if (n->recomputed) fprintf(out, "   (recomputes v%d)", n->recomputed - 1);
        if (n->op == IR_LOSS)
            fprintf(out, " %s%s", loss_names[p->model->loss[n->aux].kind], n->transposed ? " (transposed)" : "");
        if (n->dim) fprintf(out, "   [%d, %d]", n->rows, n->dim);
        if (n->name) fprintf(out, "   %s", n->name);
        fputc('\n', out);
    }
    arena_free(&tmp);
}
