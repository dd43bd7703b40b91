/* lower.c - checked model -> IR: the forward pass of one sample.
 *
 * Walks the model statements in order, binding each name to the node that computes it.
 * Layers become LINEAR nodes on their parameters, activations ACT nodes, arithmetic ADD/SUB/
 * MUL/SCALE/ADDC. ODE blocks with fixed-step solvers are unrolled: every solver stage lowers
 * the block's statements again with the state and the time bound to that stage's values, so
 * the IR (and the gradient through it) is discretise-then-optimise by construction. A pint
 * block unrolls Parareal: a serial coarse sweep, then per iteration the fine solves of all
 * slices at once (the N slice states stacked as the N rows of one value, each row with its
 * own times, so every node of the fine solve runs all slices of all samples together) and
 * the sequential correction U[n+1] = G(U_new[n]) + F(U_old[n]) - G(U_old[n]). */
#include <string.h>

#include "functions.h"
#include "ir.h"
#include "ops.h"

struct Lower {
    Program *p;
    const char **names; /* open addressing: name -> node */
    IrNode **nodes;
    int cap;
    int stack_rows;  /* > 1 inside a stacked (all slices) solve */
    IrNode **copies; /* pairs: outside value, its stacked copy, for this solve */
    int n_copies, cap_copies;
    int n_monitors;        /* MONITOR terms so far */
    int checkpoint;        /* > 0: the serial solve being lowered tags every `checkpoint` steps
                               as one segment (IrNode.seg) for ir_recompute */
    const int *save_steps; /* the serial solve being lowered keeps its state after these steps */
    int n_saves;
    IrNode **saved; /* [n_saves] the kept states */
};

static unsigned name_slot(const Lower *l, const char *name) {
    unsigned i = (unsigned)hash_bytes(name, strlen(name), HASH_START) & (unsigned)(l->cap - 1);
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
static IrNode *stacked(Lower *l, IrNode *v);

/* ---------------------------------------------------------------------------- calls */
/* One function per kind of call, in functions.c's `lower` column. */

IrNode *lower_dense(Lower *l, const Expr *e) {
    const Call *k = e->call;
    return ir_linear(l->p, lower_expr(l, e->args[0].value), k->first_param, k->bias ? k->first_param + 1 : -1);
}

IrNode *lower_mlp(Lower *l, const Expr *e) {
    const Call *k = e->call;
    Program *p = l->p;
    IrNode *h = lower_expr(l, e->args[0].value);
    int per = k->bias ? 2 : 1;
    for (int j = 0; j < k->depth; j++) {
        int w = k->first_param + per * j;
        IrNode *a = ir_act(p, IR_ACT, k->act, ir_linear(p, h, w, k->bias ? w + 1 : -1));
        h = k->residual && j > 0 && k->widths[j] == k->widths[j - 1] ? ir_binary(p, IR_ADD, h, a) : a;
    }
    int w = k->first_param + per * k->depth;
    return ir_linear(p, h, w, k->bias ? w + 1 : -1);
}

IrNode *lower_activation(Lower *l, const Expr *e) {
    return ir_act(l->p, IR_ACT, e->call->act, lower_expr(l, e->args[0].value));
}

IrNode *lower_concat(Lower *l, const Expr *e) {
    Program *p = l->p;
    IrNode **args = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)e->n_args);
    for (int i = 0; i < e->n_args; i++) args[i] = lower_expr(l, e->args[i].value);
    IrNode *n = ir_node(p, IR_CONCAT, args[0]->rows, e->call->out); /* all 1 row, or all the slices */
    n->n_args = e->n_args;
    n->args = args;
    for (int i = 0; i < e->n_args; i++) {
        n->needs_param |= args[i]->needs_param;
        n->needs_input |= args[i]->needs_input;
    }
    return n;
}

IrNode *lower_encode(Lower *l, const Expr *e) { /* a frozen dense layer: W = E^T, b = -E^T shift */
    Program *p = l->p;
    const Basis *b = &p->model->bases[e->call->basis];
    return ir_linear(p, lower_expr(l, e->args[0].value), b->enc_param, b->enc_param + 1);
}

IrNode *lower_decode(Lower *l, const Expr *e) { /* W = D, b = shift */
    Program *p = l->p;
    const Basis *b = &p->model->bases[e->call->basis];
    return ir_linear(p, lower_expr(l, e->args[0].value), b->dec_param, b->dec_param + 1);
}

IrNode *lower_project(Lower *l, const Expr *e) {
    Program *p = l->p;
    IrNode *n = ir_unary(p, IR_PROJECT, lower_expr(l, e->args[0].value));
    n->dim = e->call->out;
    n->name = e->call->file;
    p->has_project = 1;
    return n;
}

static IrNode *lower_call(Lower *l, const Expr *e) {
    const FunctionDef *f = function_of_kind(e->call->kind);
    return f && f->lower ? f->lower(l, e) : NULL;
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
    case E_NAME: return stacked(l, lookup(l, e->str));
    case E_CALL: return lower_call(l, e);
    case E_BINARY: return lower_binary(l, e);
    case E_NEG: return ir_scale(l->p, lower_expr(l, e->lhs), -1);
    default: return NULL; /* constants only appear inside binary ops; the checker saw to that */
    }
}

/* ---------------------------------------------------------------------------- ODE blocks */

/* What one integration covers: `rows` stacked states (the slices of a Parareal fine solve, or
 * one), row r running from t0[r] to t1[r]. */
typedef struct {
    int rows;
    const double *t0, *t1;
} Span;

static int uniform_steps(const Span *s) {
    for (int r = 1; r < s->rows; r++)
        if (s->t1[r] - s->t0[r] != s->t1[0] - s->t0[0]) return 0;
    return 1;
}

/* The time at step k of `steps`, plus frac (0, 1/2 or 1) of a step: [1, 1], or [rows, 1]. */
static IrNode *time_at(Lower *l, const Span *s, int k, int steps, double frac) {
    IrNode *tn = ir_node(l->p, IR_CONST, s->rows, 1);
    double *vals = s->rows > 1 ? arena_alloc(l->p->arena, sizeof(double) * (size_t)s->rows) : NULL;
    for (int r = 0; r < s->rows; r++) {
        double t0 = s->t0[r], t1 = s->t1[r], h = (t1 - t0) / steps;
        double t = t0 + (t1 - t0) * k / steps;
        t = frac == 0 ? t : frac == 1 ? t + h : t + h / 2;
        if (vals) vals[r] = t;
        else tn->c = t;
    }
    tn->vals = vals;
    return tn;
}

/* (h / div) * k, with each row's own step h when the slices differ in length. */
static IrNode *step_times(Lower *l, const Span *s, int steps, double div, IrNode *k) {
    Program *p = l->p;
    if (uniform_steps(s)) return ir_scale(p, k, (s->t1[0] - s->t0[0]) / steps / div);
    IrNode *h = ir_node(p, IR_CONST, s->rows, 1);
    double *vals = arena_alloc(p->arena, sizeof(double) * (size_t)s->rows);
    for (int r = 0; r < s->rows; r++) vals[r] = (s->t1[r] - s->t0[r]) / steps / div;
    h->vals = vals;
    return ir_binary(p, IR_MUL, k, h);
}

/* A value from outside the block read in a stacked solve: one copy per slice, made once. */
static IrNode *stacked(Lower *l, IrNode *v) {
    if (l->stack_rows <= 1 || v->rows == l->stack_rows) return v;
    for (int i = 0; i < l->n_copies; i++)
        if (l->copies[2 * i] == v) return l->copies[2 * i + 1];
    IrNode **parts = arena_alloc(l->p->arena, sizeof(IrNode *) * (size_t)l->stack_rows);
    for (int r = 0; r < l->stack_rows; r++) parts[r] = v;
    IrNode *c = ir_stack(l->p, parts, l->stack_rows);
    if (l->n_copies == l->cap_copies) {
        l->cap_copies = l->cap_copies ? 2 * l->cap_copies : 8;
        IrNode **grown = arena_alloc(l->p->arena, sizeof(IrNode *) * 2 * (size_t)l->cap_copies);
        if (l->n_copies) memcpy(grown, l->copies, sizeof(IrNode *) * 2 * (size_t)l->n_copies);
        l->copies = grown;
    }
    l->copies[2 * l->n_copies] = v;
    l->copies[2 * l->n_copies + 1] = c;
    l->n_copies++;
    return c;
}

/* dz/dt at state z and time t: the block's statements lowered afresh. */
static IrNode *lower_rhs(Lower *l, const OdeBlock *o, IrNode *z, IrNode *t) {
    bind(l, o->state, z);
    bind(l, o->time, t);
    const Stmt *s = o->stmt;
    for (int i = 0; i < s->n_body; i++) {
        const Stmt *b = s->body[i];
        if (b->kind != S_ASSIGN || b == o->deriv) continue;
        bind(l, b->clauses[0].items[0]->str, lower_expr(l, b->value));
    }
    return lower_expr(l, o->deriv->value);
}

/* `steps` fixed steps of `kind` over the span, from the state z [span rows, dim]. */
static IrNode *integrate(Lower *l, const OdeBlock *o, SolverKind kind, int steps, IrNode *z, const Span *s) {
    Program *p = l->p;
    int outer = l->stack_rows, outer_copies = l->n_copies, outer_step = p->step;
    l->stack_rows = s->rows;
    if (s->rows > 1) l->n_copies = 0;
#define AT(frac) time_at(l, s, k, steps, frac)
#define AXPY(z, div, k) ir_binary(p, IR_ADD, z, step_times(l, s, steps, div, k))
    int next_save = 0; /* `save`: the states after save_steps[] steps (0: the initial state) */
    while (next_save < l->n_saves && l->save_steps[next_save] == 0) l->saved[next_save++] = z;
    for (int k = 0; k < steps; k++) {
        if (l->checkpoint && k % l->checkpoint == 0) p->seg = ++p->n_segs;
        p->step = ++p->n_steps;
        IrNode *k1 = lower_rhs(l, o, z, AT(0));
        if (kind == SOLVER_EULER) {
            z = AXPY(z, 1, k1);
        } else if (kind == SOLVER_MIDPOINT) {
            z = AXPY(z, 1, lower_rhs(l, o, AXPY(z, 2, k1), AT(0.5)));
        } else {
            IrNode *k2 = lower_rhs(l, o, AXPY(z, 2, k1), AT(0.5));
            IrNode *k3 = lower_rhs(l, o, AXPY(z, 2, k2), AT(0.5));
            IrNode *k4 = lower_rhs(l, o, AXPY(z, 1, k3), AT(1));
            IrNode *sum = ir_binary(p, IR_ADD, ir_binary(p, IR_ADD, k1, ir_scale(p, k2, 2)),
                                    ir_binary(p, IR_ADD, ir_scale(p, k3, 2), k4));
            z = AXPY(z, 6, sum);
        }
        while (next_save < l->n_saves && l->save_steps[next_save] == k + 1) l->saved[next_save++] = z;
    }
#undef AT
#undef AXPY
    p->seg = 0;
    p->step = outer_step;
    l->stack_rows = outer;
    if (s->rows > 1) l->n_copies = outer_copies;
    return z;
}

static IrNode *integrate_span(Lower *l, const OdeBlock *o, SolverKind kind, int steps, IrNode *z, double t0,
                              double t1) {
    Span s = {.rows = 1, .t0 = &t0, .t1 = &t1};
    return integrate(l, o, kind, steps, z, &s);
}

/* MONITOR nodes for one iteration: the squared size of the change of the slice ends, and of
 * the slice ends themselves, summed over the slices. Returns the first; the second follows. */
static IrNode **monitor_iteration(Lower *l, IrNode **U_old, IrNode **U_new, int N) {
    Program *p = l->p;
    IrNode *now = ir_stack(p, U_new + 1, N), *d = ir_binary(p, IR_SUB, now, ir_stack(p, U_old + 1, N));
    IrNode *sq[2] = {ir_binary(p, IR_MUL, d, d), ir_binary(p, IR_MUL, now, now)};
    IrNode **mon = arena_alloc(p->arena, sizeof(IrNode *) * 2);
    for (int k = 0; k < 2; k++) {
        mon[k] = ir_unary(p, IR_MONITOR, sq[k]);
        mon[k]->rows = mon[k]->dim = 0;
        mon[k]->aux = p->model->n_loss + l->n_monitors++;
        ir_root(p, mon[k]);
    }
    return mon;
}

/* The gate of the next iteration: open while this one's correction is above tol. */
static int gate_after(Lower *l, IrNode **mon, double tol) {
    Program *p = l->p;
    int outer = p->region;
    p->region = 0; /* decided every time, so a skipped iteration leaves its successor closed */
    IrNode *g = ir_binary(p, IR_GATE, mon[0], mon[1]);
    g->rows = g->dim = 0;
    g->region = 0;
    g->aux = ++p->n_gates;
    g->c = tol * tol;
    ir_root(p, g);
    p->region = outer;
    return g->aux;
}

/* The saved states [T, dim] of a Parareal solve from its slice starts U[0 .. N] (U[N] the end):
 * a saved time on a slice boundary is that U[n]; the states inside the slices come from one more
 * fine solve of every slice at once from its start (the checker allows saves with uniform
 * slices, whose fine steps are the solver line's). */
static IrNode *parareal_saves(Lower *l, const OdeBlock *o, IrNode **U, const Span *all) {
    Program *p = l->p;
    const Pint *pt = &o->pint;
    int N = pt->slices, fs = pt->fine.steps, T = o->n_saves;
    IrNode **rows = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)T);
    int *inner = arena_alloc(p->arena, sizeof(int) * (size_t)(fs + 1)); /* fine steps within a slice to keep */
    int n_inner = 0;
    for (int k = 1; k < fs; k++) {
        int want = 0;
        for (int j = 0; j < T; j++) want |= o->save_steps[j] % fs == k;
        if (want) inner[n_inner++] = k;
    }
    IrNode **kept = NULL;
    if (n_inner) {
        kept = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)n_inner);
        l->save_steps = inner, l->n_saves = n_inner, l->saved = kept;
        integrate(l, o, pt->fine.kind, fs, N > 1 ? ir_stack(p, U, N) : U[0], all);
        l->n_saves = 0;
    }
    for (int j = 0; j < T; j++) {
        int g = o->save_steps[j], n = g / fs, k = g % fs;
        if (!k) {
            rows[j] = U[n];
            continue;
        }
        int i = 0;
        while (inner[i] != k) i++;
        rows[j] = N > 1 ? ir_rows(p, IR_ROWSLICE, kept[i], n, 1) : kept[i];
    }
    return T > 1 ? ir_stack(p, rows, T) : rows[0];
}

static IrNode *parareal(Lower *l, const OdeBlock *o, IrNode *z0) {
    Program *p = l->p;
    const Pint *pt = &o->pint;
    /* this block's terms follow those of the blocks before it (abi.h, TermLayout) */
    const Model *m = p->model;
    BlockTerms bt = block_terms(m, (int)(o - m->odes));
    l->n_monitors = bt.corrections - m->n_loss, p->n_gates = bt.gates_before;
    int N = pt->slices;
    IrNode **U = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)(N + 1));
    IrNode **G = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)N); /* G(U[n]) of the last sweep */
    U[0] = z0;
    for (int n = 0; n < N; n++) {
        G[n] = integrate_span(l, o, pt->coarse.kind, pt->coarse.steps, U[n], pt->bounds[n], pt->bounds[n + 1]);
        U[n + 1] = G[n];
    }
    Span all = {.rows = N, .t0 = pt->bounds, .t1 = pt->bounds + 1};
    IrNode **U_old = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)(N + 1));
    IrNode *result = U[N];
    /* `save`: every slice start of the last iteration that ran (U[N] is result) */
    IrNode **last = o->n_saves ? arena_alloc(p->arena, sizeof(IrNode *) * (size_t)(N + 1)) : NULL;
    if (last) memcpy(last, U, sizeof(IrNode *) * (size_t)(N + 1));
    int gate = 0, tol = pt->tol > 0;
    for (int it = 0; it < pt->iterations; it++) {
        p->region = gate; /* iteration 1 always runs; with tol, iteration k >= 2 behind a gate */
        memcpy(U_old, U, sizeof(IrNode *) * (size_t)(N + 1));
        /* the fine solves of all slices at once: slice n is row n */
        IrNode *F = integrate(l, o, pt->fine.kind, pt->fine.steps, N > 1 ? ir_stack(p, U, N) : U[0], &all);
        for (int n = 0; n < N; n++) { /* sequential correction */
            IrNode *g = integrate_span(l, o, pt->coarse.kind, pt->coarse.steps, U[n], pt->bounds[n], pt->bounds[n + 1]);
            IrNode *f = N > 1 ? ir_rows(p, IR_ROWSLICE, F, n, 1) : F;
            IrNode *next = ir_binary(p, IR_ADD, g, ir_binary(p, IR_SUB, f, G[n]));
            G[n] = g;
            U[n + 1] = next;
        }
        IrNode **mon = p->monitor || tol ? monitor_iteration(l, U_old, U, N) : NULL;
        result = gate ? ir_select(p, U[N], result, gate) : U[N];
        for (int n = 1; last && n < N; n++) last[n] = gate ? ir_select(p, U[n], last[n], gate) : U[n];
        if (tol && it + 1 < pt->iterations) gate = gate_after(l, mon, pt->tol);
    }
    p->region = 0;
    if (!last) return result;
    last[N] = result;
    return parareal_saves(l, o, last, &all);
}

/* ---------------------------------------------------------------------------- dopri5 */

/* The Dormand-Prince 5(4) tableau: nodes, stages (row 6 is the 5th-order solution, whose
 * derivative is the next step's first stage), and the error weights b - b*. */
static const double DP_C[7] = {0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1};
static const double DP_A[7][6] = {
    {0},
    {1.0 / 5},
    {3.0 / 40, 9.0 / 40},
    {44.0 / 45, -56.0 / 15, 32.0 / 9},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
    {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84},
};
static const double DP_E[7] = {71.0 / 57600, 0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200, 22.0 / 525, -1.0 / 40};

/* sum_j coef[j] k[j] over the nonzero coefficients */
static IrNode *combination(Program *p, IrNode **k, const double *coef, int n) {
    IrNode *s = NULL;
    for (int j = 0; j < n; j++)
        if (coef[j] != 0) s = ir_sum(p, s, coef[j] == 1 ? k[j] : ir_scale(p, k[j], coef[j]));
    return s;
}

static IrNode *scalar(Program *p, IrOp op, double c, int slot) {
    IrNode *n = ir_node(p, op, 1, 1);
    n->c = c;
    n->aux = slot;
    return n;
}

/* R [T, dim] shifted up a row with y [1, dim] as its last row. */
static IrNode *shift_in(Program *p, IrNode *R, IrNode *y, int T) {
    if (T == 1) return y;
    IrNode *parts[2] = {ir_rows(p, IR_ROWSLICE, R, 1, T - 1), y};
    return ir_stack(p, parts, 2);
}

/* Adaptive Dormand-Prince, one step size for the whole batch: max_steps attempts, unrolled.
 * Attempt i (behind gate run_i from i = 1) computes the stages from the runtime t_i and h_i,
 * the error norm over the batch, and a STEPCTL node decides: accept (the state and the FSAL
 * stage advance through SELECT), the next h (0.9 err^-1/5, clamped to [0.2, 5], cut at t1),
 * and whether attempt i + 1 runs (t < t1). The gradient treats t and h as constants
 * (discretise-then-optimise through the accepted steps). */
static IrNode *dopri5(Lower *l, const OdeBlock *o, IrNode *z) {
    Program *p = l->p;
    const Solver *s = &o->solver;
    double t0 = o->t0, t1 = o->t1, h0 = (t1 - t0) / s->steps;
    for (int j = 0; j < o->n_saves; j++) /* the first step ends on the first saved time after t0 at the latest */
        if (o->save_times[j] > t0) {
            if (h0 > o->save_times[j] - t0) h0 = o->save_times[j] - t0;
            break;
        }
    double *times = arena_alloc(p->arena, sizeof(double) * 3);
    times[0] = t0, times[1] = t1, times[2] = h0;
    p->n_gates = block_terms(p->model, (int)(o - p->model->odes)).gates_before;
    IrNode *t = scalar(p, IR_CONST, t0, 0), *h = scalar(p, IR_CONST, h0, 0);
    /* `save`: the step control shortens a step to land on each saved time, and the attempt that
     * lands shifts the saved states up a row and puts the state in the last (a shift register
     * [T, dim]: after the T landings, row k holds the state at save_times[k]) */
    int T = o->n_saves;
    IrNode *R = NULL;
    if (T) {
        IrNode **rows = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)T);
        for (int r = 0; r < T; r++) rows[r] = z;
        R = T > 1 ? ir_stack(p, rows, T) : z;
        if (o->save_times[0] == t0) R = shift_in(p, R, z, T);
        times = arena_alloc(p->arena, sizeof(double) * (size_t)(3 + T));
        times[0] = t0, times[1] = t1, times[2] = h0;
        memcpy(times + 3, o->save_times, sizeof(double) * (size_t)T);
    }
    IrNode *k1 = lower_rhs(l, o, z, t);
    int run = 0; /* gate of this attempt; attempt 0 always runs */
    int t_slot = -1, h_slot = -1;
    for (int i = 0; i < s->max_steps; i++) {
        p->region = run;
        p->step = ++p->n_steps;
        IrNode *k[7] = {k1}, *y = NULL;
        for (int st = 1; st < 7; st++) {
            y = ir_binary(p, IR_ADD, z, ir_binary(p, IR_MUL, combination(p, k, DP_A[st], st), h));
            IrNode *ts = ir_binary(p, IR_ADD, t, ir_scale(p, h, DP_C[st]));
            k[st] = lower_rhs(l, o, y, ts);
        }
        IrNode *err = ir_binary(p, IR_MUL, combination(p, k, DP_E, 7), h);
        IrNode *norm = ir_node(p, IR_ERRNORM, 0, 0);
        IrNode *args[3] = {err, z, y};
        norm->args = arena_alloc(p->arena, sizeof args);
        memcpy(norm->args, args, sizeof args);
        norm->n_args = 3;
        norm->aux = ir_gate_slot(p, ++p->n_gates);
        norm->c = s->rtol, norm->c2 = s->atol;
        ir_root(p, norm);

        p->region = 0;
        int *slots = arena_alloc(p->arena, sizeof(int) * 9);
        slots[0] = norm->aux, slots[1] = run ? ir_gate_slot(p, run) : -1, slots[2] = t_slot, slots[3] = h_slot;
        int accept = ++p->n_gates;
        for (int j = 4; j < 8; j++) slots[j] = ir_gate_slot(p, j == 4 ? accept : ++p->n_gates);
        int land = T ? ++p->n_gates : 0; /* the accepted step landed on a saved time */
        slots[8] = T ? ir_gate_slot(p, land) : -1;
        IrNode *ctl = ir_unary(p, IR_STEPCTL, norm);
        ctl->rows = ctl->dim = 0;
        ctl->region = 0;
        ctl->slots = slots;
        ctl->vals = times;
        ctl->aux = T; /* vals[3 ..] are the saved times */
        ir_root(p, ctl);
        if (T) R = ir_select(p, shift_in(p, R, y, T), R, land);
        z = ir_select(p, y, z, accept);
        k1 = ir_select(p, k[6], k1, accept);
        t_slot = slots[5], h_slot = slots[6];
        t = scalar(p, IR_TERM, 0, t_slot), h = scalar(p, IR_TERM, 0, h_slot);
        run = accept + 3; /* the gate id of slots[7] */
    }
    p->region = 0;
    p->step = 0;
    return T ? R : z;
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
    p->gate_base = term_layout(m).gate_base;
    int ode = 0;
    for (int i = 0; i < m->n_body; i++) {
        const Stmt *s = m->body[i];
        if (s->kind == S_ASSIGN) {
            bind(&l, s->clauses[0].items[0]->str, lower_expr(&l, s->value));
        } else if (s->kind == S_ODE) {
            const OdeBlock *o = &m->odes[ode++];
            IrNode *z0 = lower_expr(&l, s->value), *z;
            if (o->pint.present && p->parareal) {
                z = parareal(&l, o, z0); /* with a save line: the saved states [T, dim] */
            } else if (o->solver.kind == SOLVER_DOPRI5) {
                z = dopri5(&l, o, z0); /* with a save line: the saved states [T, dim] */
            } else {
                l.checkpoint = o->checkpoint; /* the checker allows it only here */
                l.n_saves = o->n_saves, l.save_steps = o->save_steps;
                if (o->n_saves) l.saved = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)o->n_saves);
                z = integrate_span(&l, o, o->solver.kind, o->solver.steps, z0, o->t0, o->t1);
                l.checkpoint = 0;
                l.n_saves = 0;
            }
            if (o->n_saves) {
                /* the saved states as the rows of one value: every later statement runs on all of
                 * them at once (the block is the model's last; outside values get stacked copies) */
                if (!(o->pint.present && p->parareal) && o->solver.kind != SOLVER_DOPRI5)
                    z = o->n_saves > 1 ? ir_stack(p, l.saved, o->n_saves) : l.saved[0];
                l.stack_rows = o->n_saves;
                l.n_copies = 0;
            }
            bind(&l, o->state, z);
        }
    }
    p->output = stacked(&l, lookup(&l, m->output));
    if (p->output->rows > 1) {
        /* a trajectory [T, dim] as one row [1, T * dim] (the same numbers in memory): the
         * Jacobian, the loss and the emitters see an ordinary output of dim T * dim */
        IrNode *o = p->output;
        int T = o->rows;
        IrNode **parts = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)T);
        for (int r = 0; r < T; r++)
            parts[r] = o->op == IR_STACK && o->n_args == T ? o->args[r] : ir_rows(p, IR_ROWSLICE, o, r, 1);
        IrNode *flat = ir_node(p, IR_CONCAT, 1, T * o->dim);
        flat->args = parts;
        flat->n_args = T;
        for (int r = 0; r < T; r++)
            flat->needs_param |= parts[r]->needs_param, flat->needs_input |= parts[r]->needs_input;
        p->output = flat;
    }
    p->output->name = m->output;
    p->n_forward = p->nodes.n;
    p->dact = arena_alloc(p->arena, sizeof(IrNode *) * (size_t)(p->n_forward + 1));
}
