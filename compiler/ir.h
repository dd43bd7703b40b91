/* ir.h - the IR: the per-sample computation as a list of operations on small matrices.
 *
 * Every value is a matrix of `rows` x `dim` per sample; the batch dimension is implicit
 * (the emitters loop or multiply over it). Primal values have one row, except inside a
 * Parareal fine solve, where the states of all N time slices are stacked as N rows and
 * solved together. Tangents and cotangents carry one row per direction: forward-mode
 * tangents of the input have dim(in) rows, reverse-mode cotangents of the output have
 * dim(out) rows; those of a stacked value have N x directions rows, slice-major (row
 * n * dirs + k). An operand with fewer rows than its user is read by groups: row i of the
 * user reads row i / (rows / operand rows), which is how a tangent meets its primal. So one
 * small set of operations expresses the forward pass, both Jacobian modes, the loss and the
 * gradient of the loss through the Jacobian, and the emitters only need to know how to run
 * each op on a batch.
 *
 * Values are in SSA form: a node is computed once from earlier nodes, and a Program lists
 * them in an order that is valid to run. Nodes that only have side effects (parameter
 * gradient accumulation, loss terms) have dim 0. */
#ifndef DINO_IR_H
#define DINO_IR_H

#include <stdio.h>

#include "abi.h"
#include "model.h"

/* What the passes and the emitters need to know of an op, one bit each (the flags column). */
enum {
    OP_ELEM = 1 << 0,     /* reads its operands at its own element (1-row or 1-column operands broadcast) */
    OP_GATHER = 1 << 1,   /* reads its operands at other elements than its own (slices, sums, concatenations) */
    OP_FILL = 1 << 2,     /* reads no operand: each element is a number (CONST, TERM, EYE) */
    OP_LAYER = 1 << 3,    /* a matrix product with a parameter: one output reads a whole row of its operand */
    OP_ARG = 1 << 4,      /* its value is an argument of the program (x, y, J, label), not computed */
    OP_EFFECT = 1 << 5,   /* has a side effect and no value of its own (no workspace buffer) */
    OP_GRAD = 1 << 6,     /* adds into a parameter's gradient G (param) */
    OP_TERMS = 1 << 7,    /* writes terms[] (the program zeroes them first) */
    OP_OWN = 1 << 8,      /* needs a kernel of its own: a sum over the batch, or a decision for it */
    OP_DECIDE = 1 << 9,   /* decides for the whole batch what runs next (later nodes wait for it) */
    OP_AUX_ACT = 1 << 10, /* aux is an activation */
    OP_AUX_AT = 1 << 11,  /* aux is an offset (columns or rows), printed as @aux */
    OP_C = 1 << 12,       /* the constant c enters its value (CONST, SCALE, ADDC) */
};

/* name, number of node operands (-1: one or more), flags, one-line meaning */
#define DINO_IR_OPS(X)                                                                                           \
    X(INPUT, 0, OP_ARG, "the sample's input vector                          [1, in]")                            \
    X(EYE, 0, OP_FILL, "identity seed of a Jacobian                         [n, n]")                             \
    X(CONST, 0, OP_FILL | OP_C, "c in every entry, or vals[r] in row r (ODE times)   [rows, dim]")               \
    X(LINEAR, 1, OP_LAYER, "a W^T (+ b): dense layer, param = W, param2 = b     [r, out]")                       \
    X(LINEAR_T, 1, OP_LAYER, "a W: back through a dense layer                     [r, in]")                      \
    X(PROJECT, 1, 0, "a P^T with a fixed matrix P (aux = matrix index)    [r, n]")                               \
    X(PROJECT_T, 1, 0, "a P                                                 [r, in]")                            \
    X(ACT, 1, OP_ELEM | OP_AUX_ACT, "f(a) element-wise, aux = activation                 [r, d]")                \
    X(DACT, 1, OP_ELEM | OP_AUX_ACT, "f'(a)                                               [r, d]")               \
    X(D2ACT, 1, OP_ELEM | OP_AUX_ACT, "f''(a)                                              [r, d]")              \
    X(ADD, 2, OP_ELEM, "a + b                                               [r, d]")                             \
    X(SUB, 2, OP_ELEM, "a - b                                               [r, d]")                             \
    X(MUL, 2, OP_ELEM, "a * b; b may have fewer rows (groups) or dim 1      [r, d]")                             \
    X(SCALE, 1, OP_ELEM | OP_C, "c * a                                               [r, d]")                    \
    X(ADDC, 1, OP_ELEM | OP_C, "a + c                                               [r, d]")                     \
    X(CONCAT, -1, OP_GATHER, "[a | b | ...] along dim                             [r, sum d]")                   \
    X(SLICE, 1, OP_GATHER | OP_AUX_AT, "columns aux .. aux + dim of a                       [r, dim]")           \
    X(PAD, 1, OP_GATHER | OP_AUX_AT, "a placed at columns aux .. of zeros (SLICE's adjoint) [r, dim]")           \
    X(SUMROWS, 1, OP_GATHER, "sum over each group of rows a.rows / rows            [rows, d]")                   \
    X(SUMDIM, 1, OP_GATHER, "sum over columns                                    [r, 1]")                        \
    X(BCAST_ROWS, 1, OP_ELEM, "each row of a repeated rows / a.rows times          [r, d]")                      \
    X(BCAST_DIM, 1, OP_ELEM, "a [r, 1] repeated to dim                            [r, d]")                       \
    X(STACK, -1, OP_GATHER, "[a; b; ...] along rows (Parareal slices)            [sum r, d]")                    \
    X(ROWSLICE, 1, OP_GATHER | OP_AUX_AT, "rows aux .. aux + rows of a                         [rows, d]")       \
    X(ROWPAD, 1, OP_GATHER | OP_AUX_AT, "a placed at rows aux .. of zeros (ROWSLICE's adjoint) [rows, d]")       \
    X(DATA, 0, OP_ARG, "the batch's training data for a loss, aux = DataKind  [rows, dim]")                      \
    X(LOSS, 2, OP_TERMS | OP_OWN, "loss term aux of (prediction a, data b); value = its seed d loss/d a")        \
    X(GRAD_W, 2, OP_EFFECT | OP_GRAD | OP_OWN, "grad[param] += sum over batch and rows of a^T b (side effect)")  \
    X(GRAD_B, 1, OP_EFFECT | OP_GRAD | OP_OWN, "grad[param] += sum over batch and rows of a      (side effect)") \
    X(MONITOR, 1, OP_EFFECT | OP_TERMS | OP_OWN,                                                                 \
      "terms[aux] = batch mean of the sum of a's entries (a diagnostic, no gradient)")                           \
    X(GATE, 2, OP_EFFECT | OP_TERMS | OP_OWN | OP_DECIDE,                                                        \
      "gate aux open when MONITOR a > c * MONITOR b (Parareal tol)  (side effect)")                              \
    X(SELECT, 2, OP_ELEM, "a when gate aux is open, else b                      [r, d]")                         \
    X(TERM, 0, OP_FILL, "terms[aux] in every entry: a runtime scalar (dopri5 t, h) [rows, dim]")                 \
    X(ERRNORM, 3, OP_EFFECT | OP_TERMS | OP_OWN,                                                                 \
      "terms[aux] = mean of (a / (atol + rtol max(|b|, |c|)))^2 (dopri5 error)")                                 \
    X(STEPCTL, 1, OP_EFFECT | OP_TERMS | OP_OWN | OP_DECIDE,                                                     \
      "dopri5 step control after ERRNORM a: accept, next t, h, run (side effect)")

typedef enum {
#define X(name, arity, flags, doc) IR_##name,
    DINO_IR_OPS(X)
#undef X
        IR_OP_COUNT
} IrOp;

typedef struct {
    const char *name;
    int arity;      /* operands; -1: one or more */
    unsigned flags; /* OP_* */
} IrOpInfo;

extern const IrOpInfo ir_ops[IR_OP_COUNT]; /* the table above (ir.c) */
extern const char *const ir_op_names[IR_OP_COUNT];

/* Whether op has any of the OP_* flags in `flags`. */
static inline int ir_op_is(IrOp op, unsigned flags) { return (ir_ops[op].flags & flags) != 0; }

/* Data a LOSS node compares against. */
typedef enum { DATA_OUTPUT, DATA_JACOBIAN, DATA_LABEL } DataKind;

typedef struct IrNode IrNode;
struct IrNode {
    IrOp op;
    int id;        /* position in the program that created it */
    int rows, dim; /* per-sample shape */
    IrNode **args;
    int n_args;
    int param, param2;  /* LINEAR: weight and bias (-1 none); GRAD_W/GRAD_B: target param */
    int aux;            /* ACT*: activation; SLICE/PAD: column offset; ROWSLICE/ROWPAD: row offset;
                               LOSS: loss term; PROJECT: matrix */
    double c;           /* CONST, SCALE, ADDC; ERRNORM: rtol */
    double c2;          /* ERRNORM: atol */
    const int *slots;   /* STEPCTL: terms indexes (err, run, t, h, accept, t', h', run'; -1 none) */
    const double *vals; /* CONST: one value per row instead of c (the times of stacked slices) */
    int transposed;     /* LOSS on a Jacobian: prediction is [in, out] (forward mode) */
    int needs_param;    /* depends on a parameter: has a gradient for training */
    int needs_input;    /* depends on the input: has a tangent */
    const char *name;   /* model tensor this computes, for comments; may be NULL */
    int region;         /* 0: always runs; g > 0: runs only while gate g is open (Parareal tol) */
    int seg;            /* 0, or the checkpoint segment (some steps of an ODE solve) it belongs to */
    int step;           /* 0, or the ODE solver step (or dopri5 attempt) it belongs to, in any pass:
                               the emitters find repeated code by it */
    int recomputed;     /* a copy of node `recomputed - 1`, made by ir_recompute for a later pass */
};

typedef struct {
    Arena *arena;
    const Model *model;
    PtrVec nodes;     /* IrNode *, in a valid order */
    IrNode *output;   /* the model output [1, out] */
    IrNode *jacobian; /* d output / d input: [out, in], or [in, out] when jac_forward */
    int jac_forward;
    int has_project; /* uses project(): not in the code generator yet */
    int parareal;    /* ODE blocks with a pint block run Parareal (else the serial fine solve) */
    int monitor;     /* report each Parareal iteration's correction (MONITOR nodes) */
    int n_gates;     /* gates 1..n_gates (pint tol): their flags are terms[gate_base + g - 1] */
    int gate_base;
    int region;    /* the region new nodes start in (see IrNode.region) */
    int seg;       /* the segment new nodes start in (see IrNode.seg) */
    int n_segs;    /* checkpoint segments 1..n_segs */
    int step;      /* the step new nodes start in (see IrNode.step) */
    int n_steps;   /* solver steps 1..n_steps */
    PtrVec roots;  /* what the program must compute: outputs and side effects */
    int n_forward; /* nodes of the forward pass */
    int n_primal;  /* nodes before the gradient pass: forward and Jacobian */
    IrNode **dact; /* f'(node) by forward node id, shared by the Jacobian and the gradient */
} Program;

typedef enum { JAC_AUTO, JAC_FORWARD, JAC_REVERSE } JacMode;

/* ---------------------------------------------------------------------------- building */

IrNode *ir_node(Program *p, IrOp op, int rows, int dim);
IrNode *ir_unary(Program *p, IrOp op, IrNode *a); /* same shape as a */
IrNode *ir_binary(Program *p, IrOp op, IrNode *a, IrNode *b);
IrNode *ir_linear(Program *p, IrNode *a, int weight, int bias);
IrNode *ir_linear_t(Program *p, IrNode *a, int weight);
IrNode *ir_act(Program *p, IrOp op, int act, IrNode *a);
IrNode *ir_scale(Program *p, IrNode *a, double c);
IrNode *ir_sum(Program *p, IrNode *a, IrNode *b);                   /* a + b where either may be NULL */
IrNode *ir_stack(Program *p, IrNode **parts, int k);                /* rows of parts[0], then parts[1], ... */
IrNode *ir_rows(Program *p, IrOp op, IrNode *a, int off, int rows); /* ROWSLICE / ROWPAD */
IrNode *ir_select(Program *p, IrNode *a, IrNode *b, int gate);      /* in b's region */
void ir_root(Program *p, IrNode *n);

/* ---------------------------------------------------------------------------- stages */

/* lower.c: the forward pass of the checked model. */
void lower_forward(Program *p);
/* The diagnostic terms a training step writes after the model's n_loss loss terms (Parareal
 * corrections, gates, dopri5 step control) are laid out by abi.h (TermLayout, term_layout). */

/* Gating (pint tol): iteration k >= 2 of a Parareal block runs only while the correction of
 * iteration k - 1 was above tol, decided per batch by a GATE node. Its nodes are in the
 * gate's region and are not run when it is closed; values leave a region only through SELECT
 * (the result, or an adjoint routed back: gate closed, zero), so a closed region is never
 * read. A node is in the latest region of its operands (gates of one block close in order). */
int ir_gate_slot(const Program *p, int gate); /* terms index of gate g's flag */
/* autodiff.c: the Jacobian of the output w.r.t. the input (sets p->jacobian). */
void build_jacobian(Program *p, JacMode mode);
/* autodiff.c: loss seeds and the reverse pass accumulating every parameter gradient. */
void build_gradient(Program *p);
/* recompute.c: checkpointing. Values of a checkpoint segment that a later pass reads (the
 * Jacobian pass, the gradient pass) are recomputed there from the segment's stored inputs
 * instead of being kept from the forward pass. Renumbers the nodes. */
void ir_recompute(Program *p);
/* Marks what the roots need; returns the nodes to run, in order. */
void ir_live(const Program *p, PtrVec *out, Arena *a);
/* Whether every node has the operands its op takes (the arity column); -1 with a message if not. */
int ir_check_ops(const Program *p, char *err, size_t errlen);

/* The programs an emitter writes: prediction (output and Jacobian) and a training step. */
typedef struct {
    Program predict; /* roots: output, jacobian (when regression) */
    Program train;   /* roots: loss terms and gradients */
} Programs;
/* programs.c: returns 0, or -1 with a message in err for a model the code generator can't
 * handle yet. */
int build_programs(Arena *a, const Model *m, JacMode mode, Programs *out, char *err, size_t errlen);

void ir_print(FILE *out, const Program *p, const char *title);

#endif
