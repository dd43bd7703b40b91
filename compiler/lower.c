/* lower.c - checked model -> IR: the forward pass of one sample.
 *
 * Walks the model statements in order, binding each name to the node that computes it.
 * Layers become LINEAR nodes on their parameters, activations ACT nodes, arithmetic ADD/SUB/
 * MUL/SCALE/ADDC. ODE blocks with fixed-step solvers are unrolled: every solver stage lowers
 * the block's statements again with the state and the time bound to that stage's values, so
 * the IR (and the gradient through it) is discretise-then-optimise by construction. A pint
 * block unrolls Parareal: a serial coarse sweep, then per iteration the fine solves of all
 * slices (independent of each other) and the sequential correction
 * U[n+1] = G(U_new[n]) + F(U_old[n]) - G(U_old[n]). */
#include <string.h>

#include "ir.h"
#include "ops.h"

typedef struct {
    Program *p;
    const char **names;     /* open addressing: name -> node */
    IrNode **nodes;
    int cap;
} Lower;

static unsigned name_slot(const Lower *l, const char *name) {
    unsigned h = 2166136261u;
    for (const char *s = name; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    unsigned i = h & (unsigned)(l->cap - 1);
    while (l->names[i] && strcmp(l->names[i], name) != 0) i = (i + 1) & (unsigned)(l->cap - 1);
    return i;
}

static void bind(Lower *l, const char *name, IrNode *n) {
    unsigned i = name_slot(l, name);
    l->names[i] = name;
    l->nodes[i] = n;
    if (!n->name) n->name = name;
}

static IrNode *lookup(const Lower *l, const char *name) {
    unsigned i = name_slot(l, name);
    return l->names[i] ? l->nodes[i] : NULL;
}

/* ---------------------------------------------------------------------------- expressions */

static IrNode *lower_expr(Lower *l, const Expr *e);

static IrNode *lower_mlp(Lower *l, const Expr *e, IrNode *h) {
    const Call *k = e->call;
    Program *p = l->p;
    int per = k->bias ? 2 : 1;
    for (int j = 0; j < k->depth; j++) {
        int w = k->first_param + per * j;
        IrNode *a = ir_act(p, IR_ACT, k->act, ir_linear(p, h, w, k->bias ? w + 1 : -1));
        h = k->residual && j > 0 && k->widths[j] == k->widths[j - 1] ? ir_binary(p, IR_ADD, h, a) : a;
    }
    int w = k->first_param + per * k->depth;
    return ir_linear(p, h, w, k->bias ? w + 1 : -1);
}

static IrNode *lower_call(Lower *l, const Expr *e) {
    const Call *k = e->call;
    Program *p = l->p;
    switch (k->kind) {
    case FN_DENSE: return ir_linear(p, lower_expr(l, e->args[0].value), k->first_param, k->bias ? k->first_param + 1 : -1);
    case FN_MLP: return lower_mlp(l, e, lower_expr(l, e->args[0].value));
    case FN_ACT: return ir_act(p, IR_ACT, k->act, lower_expr(l, e->args[0].value));
    case FN_CONCAT: {
        IrNode *n = ir_node(p, IR_CONCAT, 1, k->out);
        n->n_args = e->n_args;
        n->args = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)e->n_args);
        for (int i = 0; i < e->n_args; i++) {
            n->args[i] = lower_expr(l, e->args[i].value);
            n->needs_param |= n->args[i]->needs_param;
            n->needs_input |= n->args[i]->needs_input;
        }
        return n;
    }
    case FN_PROJECT: {
        IrNode *n = ir_unary(p, IR_PROJECT, lower_expr(l, e->args[0].value));
        n->dim = k->out;
        n->name = k->file;
        p->has_project = 1;
        return n;
    }
    }
    return NULL;
}

/* A tensor op a (op) b where either side may be a constant scalar (dim 0 in the AST). */
static IrNode *lower_binary(Lower *l, const Expr *e) {
    Program *p = l->p;
    const Expr *x = e->lhs, *y = e->rhs;
    if (x->dim == 0 || y->dim == 0) {
        int const_left = x->dim == 0;
        double c = (const_left ? x : y)->num;
        IrNode *v = lower_expr(l, const_left ? y : x);
        switch (e->op) {
        case '+':
            v = ir_unary(p, IR_ADDC, v);
            v->c = c;
            return v;
        case '-':
            if (const_left) v = ir_scale(p, v, -1);
            v = ir_unary(p, IR_ADDC, v);
            v->c = const_left ? c : -c;
            return v;
        case '*': return ir_scale(p, v, c);
        default: return ir_scale(p, v, 1 / c);
        }
    }
    IrNode *a = lower_expr(l, x), *b = lower_expr(l, y);
    switch (e->op) {
    case '+': return ir_binary(p, IR_ADD, a, b);
    case '-': return ir_binary(p, IR_SUB, a, b);
    default: /* '*': the dimension-1 side (a scalar such as t) is broadcast */
        return a->dim == 1 && b->dim > 1 ? ir_binary(p, IR_MUL, b, a) : ir_binary(p, IR_MUL, a, b);
    }
}

static IrNode *lower_expr(Lower *l, const Expr *e) {
    switch (e->kind) {
    case E_NAME: return lookup(l, e->str);
    case E_CALL: return lower_call(l, e);
    case E_BINARY: return lower_binary(l, e);
    case E_NEG: return ir_scale(l->p, lower_expr(l, e->lhs), -1);
    default: return NULL; /* constants only appear inside binary ops; the checker saw to that */
    }
}

/* ---------------------------------------------------------------------------- ODE blocks */

/* dz/dt at state z and time t: the block's statements lowered afresh. */
static IrNode *lower_rhs(Lower *l, const OdeBlock *o, IrNode *z, double t) {
    IrNode *tn = ir_node(l->p, IR_CONST, 1, 1);
    tn->c = t;
    bind(l, o->state, z);
    bind(l, o->time, tn);
    const Stmt *s = o->stmt;
    for (int i = 0; i < s->n_body; i++) {
        const Stmt *b = s->body[i];
        if (b->kind != S_ASSIGN || b == o->deriv) continue;
        bind(l, b->clauses[0].items[0]->str, lower_expr(l, b->value));
    }
    return lower_expr(l, o->deriv->value);
}

static IrNode *axpy(Program *p, IrNode *z, double h, IrNode *k) { return ir_binary(p, IR_ADD, z, ir_scale(p, k, h)); }

/* `steps` fixed steps of `kind` from t0 to t1. */
static IrNode *integrate(Lower *l, const OdeBlock *o, SolverKind kind, int steps, IrNode *z, double t0, double t1) {
    Program *p = l->p;
    double h = (t1 - t0) / steps;
    for (int k = 0; k < steps; k++) {
        double t = t0 + (t1 - t0) * k / steps;
        IrNode *k1 = lower_rhs(l, o, z, t);
        if (kind == SOLVER_EULER) {
            z = axpy(p, z, h, k1);
        } else if (kind == SOLVER_MIDPOINT) {
            z = axpy(p, z, h, lower_rhs(l, o, axpy(p, z, h / 2, k1), t + h / 2));
        } else {
            IrNode *k2 = lower_rhs(l, o, axpy(p, z, h / 2, k1), t + h / 2);
            IrNode *k3 = lower_rhs(l, o, axpy(p, z, h / 2, k2), t + h / 2);
            IrNode *k4 = lower_rhs(l, o, axpy(p, z, h, k3), t + h);
            IrNode *sum = ir_binary(p, IR_ADD, ir_binary(p, IR_ADD, k1, ir_scale(p, k2, 2)),
                                    ir_binary(p, IR_ADD, ir_scale(p, k3, 2), k4));
            z = axpy(p, z, h / 6, sum);
        }
    }
    return z;
}

static IrNode *parareal(Lower *l, const OdeBlock *o, IrNode *z0) {
    Program *p = l->p;
    const Pint *pt = &o->pint;
    int N = pt->slices;
    IrNode **U = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)(N + 1));
    IrNode **G = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)N);   /* G(U[n]) of the last sweep */
    U[0] = z0;
    for (int n = 0; n < N; n++) {
        G[n] = integrate(l, o, pt->coarse.kind, pt->coarse.steps, U[n], pt->bounds[n], pt->bounds[n + 1]);
        U[n + 1] = G[n];
    }
    for (int it = 0; it < pt->iterations; it++) {
        IrNode **F = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)N);
        for (int n = 0; n < N; n++)   /* independent: all slices at once */
            F[n] = integrate(l, o, pt->fine.kind, pt->fine.steps, U[n], pt->bounds[n], pt->bounds[n + 1]);
        for (int n = 0; n < N; n++) { /* sequential correction */
            IrNode *g = integrate(l, o, pt->coarse.kind, pt->coarse.steps, U[n], pt->bounds[n], pt->bounds[n + 1]);
            IrNode *next = ir_binary(p, IR_ADD, g, ir_binary(p, IR_SUB, F[n], G[n]));
            G[n] = g;
            U[n + 1] = next;
        }
    }
    return U[N];
}

/* ---------------------------------------------------------------------------- the model */

void lower_forward(Program *p) {
    const Model *m = p->model;
    Lower l = {.p = p, .cap = 64};
    int n_names = m->n_body + 8;
    for (int i = 0; i < m->n_odes; i++) n_names += m->odes[i].stmt->n_body + 2;
    while (l.cap < 2 * n_names) l.cap *= 2;
    l.names = arena_alloc(p->arena, sizeof(char *) * (size_t)l.cap);
    l.nodes = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)l.cap);

    IrNode *x = ir_node(p, IR_INPUT, 1, m->in_dim);
    x->needs_input = 1;
    bind(&l, m->input, x);
    int ode = 0;
    for (int i = 0; i < m->n_body; i++) {
        const Stmt *s = m->body[i];
        if (s->kind == S_ASSIGN) {
            bind(&l, s->clauses[0].items[0]->str, lower_expr(&l, s->value));
        } else if (s->kind == S_ODE) {
            const OdeBlock *o = &m->odes[ode++];
            IrNode *z0 = lower_expr(&l, s->value);
            IrNode *z = o->pint.present && p->parareal
                            ? parareal(&l, o, z0)
                            : integrate(&l, o, o->solver.kind, o->solver.steps, z0, o->t0, o->t1);
            bind(&l, o->state, z);
        }
    }
    p->output = lookup(&l, m->output);
    p->output->name = m->output;
    p->n_forward = p->nodes.n;
    p->dact = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)(p->n_forward + 1));
}
