/* autodiff.c - differentiated IR: the Jacobian of the output and the gradient of the loss.
 *
 * Both are source-to-source transformations of the IR, so they produce IR again.
 *
 * The Jacobian J = d output / d input is built in forward mode (a tangent with dim(in) rows
 * pushed through every node, starting from the identity at the input) when dim(in) <= dim(out),
 * else in reverse mode (a cotangent with dim(out) rows pulled back from the identity at the
 * output). Forward mode yields J^T [in, out]; the loss and the emitters know.
 *
 * The training gradient is one reverse pass over everything the loss depends on: the forward
 * nodes and, for an h1 loss, the Jacobian's nodes too. That is what makes the H1 gradient a
 * derivative through the Jacobian: the Jacobian nodes (products with f'(a), transposed
 * layers) are ordinary nodes with ordinary adjoint rules, and f'' appears where an f' node is
 * differentiated. A LOSS node computes a term's value and its seed d loss / d prediction;
 * the reverse pass starts from those seeds and ends in GRAD_W / GRAD_B nodes that accumulate
 * each parameter's gradient.
 *
 * The adjoint rules, for y = op(a, b) with adjoint g of y:
 *   LINEAR     a W^T + b   a += LINEAR_T(g)          W += g^T a      b += sum g
 *   LINEAR_T   a W         a += LINEAR(g)            W += a^T g
 *   PROJECT(_T)            a += PROJECT_T(g) (PROJECT(g))
 *   ACT        f(a)        a += g * f'(a)
 *   DACT       f'(a)       a += g * f''(a)
 *   ADD / SUB              a += g, b += g (or -g)
 *   MUL        a * b       a += g * b,               b += reduce(g * a) to b's shape
 *   SCALE / ADDC           a += c g (or g)
 *   CONCAT / SLICE / PAD   slices and pads of g
 *   SUMROWS / SUMDIM       broadcast g back; BCAST_ROWS / BCAST_DIM: sum g
 *   STACK / ROWSLICE / ROWPAD  row slices and pads of g
 *   SELECT     gate ? a : b     a += gate ? g : 0,       b += gate ? 0 : g
 *
 * The adjoint of a stacked value (N slice rows) has N x seed rows, slice-major, like its
 * tangents; an adjoint with more rows than that is summed by groups. */
#include <string.h>

#include "ir.h"

typedef struct {
    Program *p;
    IrNode **adj;    /* adjoint of node id, NULL = zero */
    IrNode **dact;   /* f'(node), shared between uses */
    int seed_rows;   /* rows of the seed: 1 for the loss, dim(out) for a reverse Jacobian */
    int want_params; /* emit GRAD_W / GRAD_B (training) */
} Reverse;

/* f'(a) or f''(a); f'(a) of a forward node is made once and shared. */
static IrNode *derivative(Program *p, IrNode **memo, IrNode *a, int act, IrOp op) {
    int memo_ok = op == IR_DACT && memo && a->id < p->n_forward;
    /* With checkpointing a shared f'(a) made by the gradient pass would be read from two places
     * far apart (the reverse of the Jacobian and of the forward pass), living through both:
     * there each use makes its own (an element-wise op, cheap to repeat). */
    if (p->n_segs && p->n_primal && p->nodes.n >= p->n_primal) memo_ok = 0;
    if (memo_ok && memo[a->id] && memo[a->id]->aux == act) return memo[a->id];
    IrNode *d = ir_act(p, op, act, a);
    d->region = a->region; /* depends on a alone, wherever it is asked for */
    if (!p->n_primal) d->seg = a->seg;
    d->step = a->step;
    if (memo_ok) memo[a->id] = d;
    return d;
}

/* ---------------------------------------------------------------------------- forward mode */

static IrNode *zeros(Program *p, int rows, int dim) {
    IrNode *z = ir_node(p, IR_CONST, rows, dim);
    z->c = 0;
    return z;
}

/* T(a) * b for the tangent of a product, where b (1 row) may have dim 1 while T(a) has more. */
static IrNode *tangent_mul(Program *p, IrNode *ta, IrNode *b, int dim) {
    if (ta->dim < dim) ta = ir_unary(p, IR_BCAST_DIM, ta), ta->dim = dim;
    return ir_binary(p, IR_MUL, ta, b);
}

static void forward_jacobian(Program *p, IrNode **dact) {
    int n = p->nodes.n, rows = p->model->in_dim;
    IrNode **T = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)n);
    for (int i = 0; i < n; i++) {
        IrNode *v = p->nodes.items[i];
        IrNode *ta = v->n_args > 0 ? T[v->args[0]->id] : NULL, *tb = v->n_args > 1 ? T[v->args[1]->id] : NULL;
        IrNode *t = NULL;
        p->region = v->region; /* a tangent runs where its primal does */
        p->seg = v->seg;
        p->step = v->step;
        switch (v->op) {
        case IR_INPUT:
            t = ir_node(p, IR_EYE, rows, rows);
            t->needs_input = 1;
            break;
        case IR_LINEAR:
            if (ta) t = ir_linear(p, ta, v->param, -1);
            break;
        case IR_PROJECT:
            if (ta) t = ir_unary(p, IR_PROJECT, ta), t->dim = v->dim, t->name = v->name;
            break;
        case IR_ACT:
            if (ta) t = ir_binary(p, IR_MUL, ta, derivative(p, dact, v->args[0], v->aux, IR_DACT));
            break;
        case IR_ADD: t = ir_sum(p, ta, tb); break;
        case IR_SUB: t = tb ? (ta ? ir_binary(p, IR_SUB, ta, tb) : ir_scale(p, tb, -1)) : ta; break;
        case IR_MUL:
            if (ta) t = tangent_mul(p, ta, v->args[1], v->dim);
            if (tb) t = ir_sum(p, t, tangent_mul(p, tb, v->args[0], v->dim));
            break;
        case IR_SCALE:
            if (ta) t = ir_scale(p, ta, v->c);
            break;
        case IR_ADDC: t = ta; break;
        case IR_CONCAT: {
            int any = 0;
            for (int k = 0; k < v->n_args; k++) any |= T[v->args[k]->id] != NULL;
            if (!any) break;
            IrNode **args = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)v->n_args);
            for (int k = 0; k < v->n_args; k++) /* operands before their user */
                args[k] = T[v->args[k]->id] ? T[v->args[k]->id] : zeros(p, rows * v->args[k]->rows, v->args[k]->dim);
            t = ir_node(p, IR_CONCAT, rows * v->rows, v->dim);
            t->n_args = v->n_args;
            t->args = args;
            for (int k = 0; k < v->n_args; k++) t->needs_param |= args[k]->needs_param;
            t->needs_input = 1;
            break;
        }
        case IR_STACK: {
            int any = 0;
            for (int k = 0; k < v->n_args; k++) any |= T[v->args[k]->id] != NULL;
            if (!any) break;
            IrNode **args = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)v->n_args);
            for (int k = 0; k < v->n_args; k++)
                args[k] = T[v->args[k]->id] ? T[v->args[k]->id] : zeros(p, rows * v->args[k]->rows, v->dim);
            t = ir_stack(p, args, v->n_args);
            break;
        }
        case IR_ROWSLICE:
        case IR_ROWPAD:
            if (ta) t = ir_rows(p, v->op, ta, v->aux * rows, v->rows * rows);
            break;
        case IR_SELECT:
            if (ta || tb)
                t = ir_select(p, ta ? ta : zeros(p, rows * v->rows, v->dim), tb ? tb : zeros(p, rows * v->rows, v->dim),
                              v->aux);
            break;
        default: break; /* CONST and data: no tangent */
        }
        T[i] = t;
    }
    p->region = 0;
    p->seg = 0;
    p->step = 0;
    IrNode *J = T[p->output->id];
    p->jacobian = J ? J : zeros(p, rows, p->model->out_dim);
    p->jac_forward = 1;
}

/* ---------------------------------------------------------------------------- reverse mode */

static int wants(const Reverse *r, const IrNode *a) { return r->want_params ? a->needs_param : a->needs_input; }

/* Adds contribution c to the adjoint of a, summing away broadcast rows and columns. */
static void accumulate(Reverse *r, IrNode *a, IrNode *c) {
    if (!wants(r, a)) return;
    Program *p = r->p;
    if (c->rows > a->rows * r->seed_rows) c = ir_unary(p, IR_SUMROWS, c), c->rows = a->rows * r->seed_rows;
    if (c->dim > a->dim) c = ir_unary(p, IR_SUMDIM, c), c->dim = 1;
    if (c->region > a->region) { /* out of a gated region: zero when the gate is closed */
        IrNode *z = ir_node(p, IR_CONST, c->rows, c->dim);
        z->region = 0;
        c = ir_select(p, c, z, c->region);
    }
    int outer = p->region;
    p->region = a->region; /* the sum is as live as a */
    r->adj[a->id] = ir_sum(p, r->adj[a->id], c);
    p->region = outer;
}

static void reverse_node(Reverse *r, IrNode *v, IrNode *g) {
    Program *p = r->p;
    IrNode *a = v->n_args > 0 ? v->args[0] : NULL, *b = v->n_args > 1 ? v->args[1] : NULL;
    int S = r->seed_rows; /* rows of an adjoint per row of its primal */
    switch (v->op) {
    case IR_LINEAR:
        if (wants(r, a)) accumulate(r, a, ir_linear_t(p, g, v->param));
        if (r->want_params && !p->model->params[v->param].frozen) {
            IrNode *gw = ir_binary(p, IR_GRAD_W, g, a);
            gw->param = v->param;
            gw->rows = gw->dim = 0;
            ir_root(p, gw);
            if (v->param2 >= 0) {
                IrNode *gb = ir_unary(p, IR_GRAD_B, g);
                gb->param = v->param2;
                gb->rows = gb->dim = 0;
                ir_root(p, gb);
            }
        }
        break;
    case IR_LINEAR_T:
        if (wants(r, a)) accumulate(r, a, ir_linear(p, g, v->param, -1));
        if (r->want_params && !p->model->params[v->param].frozen) {
            IrNode *gw = ir_binary(p, IR_GRAD_W, a, g);
            gw->param = v->param;
            gw->rows = gw->dim = 0;
            ir_root(p, gw);
        }
        break;
    case IR_PROJECT:
    case IR_PROJECT_T: {
        IrNode *t = ir_unary(p, v->op == IR_PROJECT ? IR_PROJECT_T : IR_PROJECT, g);
        t->dim = a->dim;
        t->name = v->name;
        accumulate(r, a, t);
        break;
    }
    case IR_ACT: accumulate(r, a, ir_binary(p, IR_MUL, g, derivative(p, r->dact, a, v->aux, IR_DACT))); break;
    case IR_DACT: accumulate(r, a, ir_binary(p, IR_MUL, g, derivative(p, NULL, a, v->aux, IR_D2ACT))); break;
    case IR_ADD:
        accumulate(r, a, g);
        accumulate(r, b, g);
        break;
    case IR_SUB:
        accumulate(r, a, g);
        if (wants(r, b)) accumulate(r, b, ir_scale(p, g, -1));
        break;
    case IR_MUL:
        if (wants(r, a)) accumulate(r, a, ir_binary(p, IR_MUL, g, b));
        if (wants(r, b)) accumulate(r, b, ir_binary(p, IR_MUL, g, a));
        break;
    case IR_SCALE: accumulate(r, a, ir_scale(p, g, v->c)); break;
    case IR_ADDC: accumulate(r, a, g); break;
    case IR_CONCAT:
        for (int k = 0, off = 0; k < v->n_args; off += v->args[k]->dim, k++) {
            if (!wants(r, v->args[k])) continue;
            IrNode *s = ir_unary(p, IR_SLICE, g);
            s->aux = off;
            s->dim = v->args[k]->dim;
            accumulate(r, v->args[k], s);
        }
        break;
    case IR_SLICE: {
        IrNode *s = ir_unary(p, IR_PAD, g);
        s->aux = v->aux;
        s->dim = a->dim;
        accumulate(r, a, s);
        break;
    }
    case IR_PAD: {
        IrNode *s = ir_unary(p, IR_SLICE, g);
        s->aux = v->aux;
        s->dim = a->dim;
        accumulate(r, a, s);
        break;
    }
    case IR_SUMROWS: {
        IrNode *s = ir_unary(p, IR_BCAST_ROWS, g);
        s->rows = a->rows * r->seed_rows;
        accumulate(r, a, s);
        break;
    }
    case IR_SUMDIM: {
        IrNode *s = ir_unary(p, IR_BCAST_DIM, g);
        s->dim = a->dim;
        accumulate(r, a, s);
        break;
    }
    case IR_STACK:
        for (int k = 0, off = 0; k < v->n_args; off += v->args[k]->rows, k++)
            if (wants(r, v->args[k]))
                accumulate(r, v->args[k], ir_rows(p, IR_ROWSLICE, g, off * S, v->args[k]->rows * S));
        break;
    case IR_ROWSLICE: accumulate(r, a, ir_rows(p, IR_ROWPAD, g, v->aux * S, a->rows * S)); break;
    case IR_ROWPAD: accumulate(r, a, ir_rows(p, IR_ROWSLICE, g, v->aux * S, a->rows * S)); break;
    case IR_SELECT: {
        IrNode *z = ir_node(p, IR_CONST, g->rows, g->dim);
        z->region = 0;
        if (wants(r, a)) accumulate(r, a, ir_select(p, g, z, v->aux));
        if (wants(r, b)) accumulate(r, b, ir_select(p, z, g, v->aux));
        break;
    }
    case IR_BCAST_ROWS: accumulate(r, a, g); break; /* accumulate sums the rows */
    case IR_BCAST_DIM: accumulate(r, a, g); break;  /* accumulate sums the columns */
    default: break;                                 /* INPUT, EYE, CONST, DATA, D2ACT: nothing to pass on */
    }
}

/* Pulls the seeded adjoints back through nodes [0, n). */
static void reverse(Reverse *r, int n) {
    for (int i = n - 1; i >= 0; i--) {
        IrNode *v = r->p->nodes.items[i];
        r->p->region = v->region;                /* an adjoint runs where its primal does */
        r->p->seg = r->p->n_primal ? 0 : v->seg; /* the gradient pass is not segmented */
        r->p->step = v->step;
        if (r->adj[i]) reverse_node(r, v, r->adj[i]);
    }
    r->p->region = 0;
    r->p->seg = 0;
    r->p->step = 0;
}

static Reverse reverse_new(Program *p, IrNode **dact, int seed_rows, int want_params) {
    Reverse r = {.p = p, .dact = dact, .seed_rows = seed_rows, .want_params = want_params};
    r.adj = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)(p->nodes.n + 1));
    return r;
}

static void reverse_jacobian(Program *p, IrNode **dact) {
    int n = p->nodes.n, rows = p->model->out_dim;
    Reverse r = reverse_new(p, dact, rows, 0);
    IrNode *seed = ir_node(p, IR_EYE, rows, rows);
    r.adj[p->output->id] = seed;
    reverse(&r, n);
    IrNode *J = r.adj[0]; /* node 0 is the input */
    p->jacobian = J ? J : zeros(p, rows, p->model->in_dim);
    p->jac_forward = 0;
}

/* ---------------------------------------------------------------------------- entry points */

void build_jacobian(Program *p, JacMode mode) {
    const Model *m = p->model;
    IrNode **dact = p->dact;
    if (mode == JAC_FORWARD || (mode == JAC_AUTO && m->in_dim <= m->out_dim)) forward_jacobian(p, dact);
    else reverse_jacobian(p, dact);
}

void build_gradient(Program *p) {
    const Model *m = p->model;
    int n = p->nodes.n;
    p->n_primal = n;
    Reverse r = reverse_new(p, p->dact, 1, 1);
    for (int i = 0; i < m->n_loss; i++) {
        const LossTerm *l = &m->loss[i];
        IrNode *pred = l->kind == LOSS_H1 ? p->jacobian : p->output;
        IrNode *data = ir_node(p, IR_DATA, 1, 0);
        if (l->kind == LOSS_H1) data->aux = DATA_JACOBIAN, data->rows = m->out_dim, data->dim = m->in_dim;
        else if (l->kind == LOSS_L2) data->aux = DATA_OUTPUT, data->dim = m->out_dim;
        else data->aux = DATA_LABEL, data->dim = 1;
        IrNode *loss = ir_binary(p, IR_LOSS, pred, data);
        loss->rows = pred->rows;
        loss->dim = pred->dim;
        loss->aux = i;
        loss->transposed = l->kind == LOSS_H1 && p->jac_forward;
        ir_root(p, loss);
        if (pred->needs_param) r.adj[pred->id] = ir_sum(p, r.adj[pred->id], loss);
    }
    reverse(&r, n);
}
