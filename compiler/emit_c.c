/* emit_c.c - IR programs -> C source for the CPU backend.
 *
 * The generated file has the fixed prelude (prelude_c.h: precision, activations, the matrix
 * multiply), then one function per program: dino_predict (output and Jacobian) and
 * dino_train_step (forward, Jacobian, loss, gradient: one fused pass per batch). Each IR
 * node becomes one commented block that runs it for the whole batch: layers and their
 * adjoints become matrix multiplies over batch x rows, everything else simple loops.
 *
 * A program is written as parts, functions of a few dozen nodes each, called in order; the
 * parts of equal ODE steps differ only in numbers and share one function (repeated parts,
 * below), so the C compiler's time does not grow with the steps.
 *
 * Node values live in one workspace. A node's buffer is released after its last use and
 * reused by a later node of the same or smaller size, so memory follows what is live, not
 * the length of the program. */
#include "emit.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "ops.h"
#include "prelude_c.inc"
#include "share.h"
#include "slots.h"

void emit_param_table(FILE *out, const Model *m) {
    fputs("/* Parameters in the flat buffer P (and their gradients in G):\n", out);
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        fputs(" *   ", out);
        for (size_t w = emit_comment_text(out, p->name); w < 24; w++) fputc(' ', out);
        if (p->ndim == 2) fprintf(out, " [%d, %d] at %lld\n", p->shape[0], p->shape[1], (long long)p->offset);
        else fprintf(out, " [%d] at %lld\n", p->shape[0], (long long)p->offset);
    }
    fputs(" */\n", out);
}

typedef struct {
    FILE *out;
    const Model *m;
    const Program *p;
    long *offset;       /* node id -> offset in the workspace, per sample; -1 none */
    int *slot_of;       /* node id -> the node whose slot constant names its offset */
    long work;          /* workspace per sample, in reals */
    char slot_prefix;   /* slot constants: wp_v12 (predict), wt_v12 (train) */
    SizeNames sizes;    /* sizes by name (names.h) */
    int named_params;   /* parameter offsets by name (P_q_1_weight): they fit an int */
    int *part_first;    /* part -> the id of its first node, which names a shared part (steps_v12) */
    char ring[16][128]; /* text of sizes and offsets for the line being written */
    int ring_i;
    const char *j_only; /* node id -> 1: only the Jacobian needs it (predict; NULL: none) */
    int indent;         /* extra levels of line() */
} Emit;

/* A size as its name (q_0_dim) or the number. */
static const char *S(Emit *e, long v) {
    char *b = e->ring[e->ring_i++ & 15];
    return size_text(&e->sizes, v, b, sizeof e->ring[0]);
}

/* rows x dim as one name (q_dim_x_q_0_dim) or the number: one token, as share.c needs. */
static const char *S2(Emit *e, long rows, long dim) {
    char *b = e->ring[e->ring_i++ & 15];
    return size_product(&e->sizes, rows, dim, b, sizeof e->ring[0]);
}

/* Parameter i's offset in P and G: P_q_1_weight, or the number. */
static const char *PO(Emit *e, int i) {
    char *b = e->ring[e->ring_i++ & 15];
    if (e->named_params) return param_off_name(e->m, i, b, sizeof e->ring[0]);
    snprintf(b, sizeof e->ring[0], "%lld", (long long)e->m->params[i].offset);
    return b;
}

static void line(Emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(Emit *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    for (int i = 0; i <= e->indent; i++) fputs("    ", e->out);
    vfprintf(e->out, fmt, ap);
    fputc('\n', e->out);
    va_end(ap);
}

/* ---------------------------------------------------------------------------- buffers */

static int has_buffer(const IrNode *n) { return !ir_op_is(n->op, OP_ARG | OP_EFFECT); }

/* Assigns each live node a workspace slot, reusing slots whose values are dead. */
static void assign_buffers(Emit *e, const PtrVec *live, const IrNode *const *keep, int n_keep) {
    int n_nodes = e->p->nodes.n;
    int *last = calloc((size_t)n_nodes, sizeof(int));
    e->offset = calloc((size_t)n_nodes, sizeof(long));
    for (int i = 0; i < n_nodes; i++) e->offset[i] = -1;
    for (int i = 0; i < live->n; i++) {
        const IrNode *n = live->items[i];
        for (int k = 0; k < n->n_args; k++) last[n->args[k]->id] = i;
    }
    for (int k = 0; k < n_keep; k++) last[keep[k]->id] = live->n; /* outputs stay to the end */

    SlotPool pool;
    slots_init(&pool, n_nodes);
    for (int i = 0; i < live->n; i++) {
        const IrNode *n = live->items[i];
        if (has_buffer(n)) e->offset[n->id] = slots_take(&pool, n->id, (long)n->rows * n->dim);
        for (int k = 0; k < n->n_args; k++)
            if (last[n->args[k]->id] == i) slots_release(&pool, n->args[k]->id);
    }
    e->work = pool.work;
    slots_free(&pool);
    free(last);
    /* each offset is named by the first value that lives there (wt_v12, renamed wt_q_1_act) */
    e->slot_of = calloc((size_t)n_nodes, sizeof(int));
    size_t cap = 64;
    while (cap < 2 * (size_t)live->n) cap *= 2;
    long *key = malloc(sizeof(long) * cap);
    int *first = malloc(sizeof(int) * cap);
    for (size_t k = 0; k < cap; k++) key[k] = -1;
    for (int i = 0; i < live->n; i++) {
        const IrNode *n = live->items[i];
        if (!has_buffer(n)) continue;
        size_t k = (size_t)e->offset[n->id] * 2654435761u & (cap - 1);
        while (key[k] >= 0 && key[k] != e->offset[n->id]) k = (k + 1) & (cap - 1);
        if (key[k] < 0) key[k] = e->offset[n->id], first[k] = n->id;
        e->slot_of[n->id] = first[k];
    }
    free(key), free(first);
}

/* The slot constants of a program: one per offset, named by its first value, in order of
 * offset, each from the one before plus the gap by names (wt_q_1_act = wt_q_0_act + q_0_dim),
 * so that a width edit changes the sizes' table, not this one. */
static int by_offset(const void *a, const void *b) {
    long x = ((const long *)a)[0], y = ((const long *)b)[0];
    return x < y ? -1 : x > y;
}

static void emit_slot_table(Emit *e, const PtrVec *live) {
    long(*row)[2] = malloc(sizeof *row * (size_t)(live->n + 1));
    int k = 0;
    for (int i = 0; i < live->n; i++) {
        const IrNode *n = live->items[i];
        if (has_buffer(n) && e->slot_of[n->id] == n->id) row[k][0] = e->offset[n->id], row[k][1] = n->id, k++;
    }
    qsort(row, (size_t)k, sizeof *row, by_offset);
    if (k)
        fputs("\n/* workspace offsets per sample (values whose lives do not overlap share one) */\nenum {\n", e->out);
    for (int i = 0; i < k; i++) {
        if (!i || row[i][0] - row[i - 1][0] > 2147483647L)
            fprintf(e->out, "    w%c_v%ld = %ld,\n", e->slot_prefix, row[i][1], row[i][0]);
        else
            fprintf(e->out, "    w%c_v%ld = w%c_v%ld + %s,\n", e->slot_prefix, row[i][1], e->slot_prefix, row[i - 1][1],
                    size_sum_text(&e->sizes, row[i][0] - row[i - 1][0], e->ring[e->ring_i++ & 15], sizeof e->ring[0]));
    }
    if (k) fputs("};\n", e->out);
    free(row);
}

/* ---------------------------------------------------------------------------- one node */

static const char *param_name(const Emit *e, int i) { return e->m->params[i].name; }

static void ref(const IrNode *n, char *buf, size_t len) {
    if (n->op == IR_INPUT) snprintf(buf, len, "x");
    else if (n->op == IR_DATA)
        snprintf(buf, len, "%s", n->aux == DATA_OUTPUT ? "y" : n->aux == DATA_JACOBIAN ? "J" : "label");
    else snprintf(buf, len, "v%d", n->id);
}

static void emit_loss(Emit *e, const IrNode *n, const char *a) {
    const LossTerm *l = &e->m->loss[n->aux];
    int i = n->aux;
    line(e, "{");
    line(e, "    double total = 0;");
    line(e, "    for (long b = 0; b < n; b++) {");
    if (l->kind == LOSS_CROSS_ENTROPY) {
        int D = n->dim;
        line(e, "        const real *p = %s + b * %s;", a, S(e, D));
        line(e, "        real *s = v%d + b * %s;", n->id, S(e, D));
        line(e, "        double mx = p[0], z = 0;");
        line(e, "        for (int j = 1; j < %s; j++) if (p[j] > mx) mx = p[j];", S(e, D));
        line(e, "        for (int j = 0; j < %s; j++) z += exp(p[j] - mx);", S(e, D));
        line(e, "        total += mx + log(z) - p[label[b]];");
        line(e, "        double coef = w[%d] / n;", i);
        line(e, "        for (int j = 0; j < %s; j++) s[j] = (real)(coef * (exp(p[j] - mx) / z - (j == label[b])));",
             S(e, D));
    } else {
        char size[128];
        snprintf(size, sizeof size, "%s", S2(e, n->rows, n->dim));
        const char *data = l->kind == LOSS_H1 ? "J" : "y";
        line(e, "        const real *p = %s + b * %s, *d = %s + b * %s;", a, size, data, size);
        line(e, "        real *s = v%d + b * %s;", n->id, size);
        const char *d2 = l->relative ? " d2 += dv * dv;" : ""; /* |data|^2: only a relative term reads it */
        line(e, "        double e2 = 0%s;", l->relative ? ", d2 = 0" : "");
        if (n->transposed) { /* prediction [in, out], data [out, in] */
            const char *R = S(e, n->rows), *D = S(e, n->dim);
            line(e, "        for (int i = 0; i < %s; i++) for (int o = 0; o < %s; o++) {", R, D);
            line(e, "            double dv = d[o * %s + i], ev = p[i * %s + o] - dv;", R, D);
            line(e, "            e2 += ev * ev;%s", d2);
            line(e, "        }");
        } else {
            line(e, "        for (int j = 0; j < %s; j++) { double ev = p[j] - d[j]; e2 += ev * ev;%s }", size,
                 l->relative ? " d2 += (double)d[j] * d[j];" : "");
        }
        line(e, "        double den = %s;", l->relative ? "d2 > 1e-300 ? d2 : 1e-300" : "1");
        line(e, "        total += e2 / den;");
        line(e, "        double coef = 2 * w[%d] / (n * den);", i);
        if (n->transposed) {
            const char *R = S(e, n->rows), *D = S(e, n->dim);
            line(e,
                 "        for (int i = 0; i < %s; i++) for (int o = 0; o < %s; o++) s[i * %s + o] = (real)(coef * (p[i "
                 "* %s + o] - d[o * %s + i]));",
                 R, D, D, D, R);
        } else {
            line(e, "        for (int j = 0; j < %s; j++) s[j] = (real)(coef * (p[j] - d[j]));", size);
        }
    }
    line(e, "    }");
    line(e, "    terms[%d] = total / n;", i);
    line(e, "}");
}

static void emit_op(Emit *e, const IrNode *n);

/* A dopri5 block with a save line: after dopri5_control, an accepted step that ends on a saved
 * time (to rounding) lands exactly on it and says so in terms[s[8]], and the next step is cut
 * to end on the next saved time (emit_cuda_kernels.c writes the same). */
void emit_landing(FILE *out, const IrNode *n, const char *in) {
    const double *v = n->vals;
    fprintf(out, "%s{ /* land on the saved times */\n%s    const double sv[%d] = {", in, in, n->aux);
    for (int j = 0; j < n->aux; j++) fprintf(out, "%s%.17g", j ? ", " : "", v[3 + j]);
    fprintf(out, "};\n%s    const int s[3] = {%d, %d, %d};   /* t', h', landed */\n", in, n->slots[5], n->slots[6],
            n->slots[8]);
    fprintf(out, "%s    double tn = terms[s[0]], hn = terms[s[1]], eps = 1e-12 * (%.17g - %.17g);\n", in, v[1], v[0]);
    fprintf(out, "%s    int land = 0;\n", in);
    fprintf(out, "%s    if (terms[%d] != 0)   /* accepted */\n", in, n->slots[4]);
    fprintf(out, "%s        for (int j = 0; j < %d; j++) if (fabs(tn - sv[j]) <= eps) { tn = sv[j]; land = 1; }\n", in,
            n->aux);
    fprintf(
        out,
        "%s    for (int j = 0; j < %d; j++) if (sv[j] > tn + eps) { if (tn + hn > sv[j]) hn = sv[j] - tn; break; }\n",
        in, n->aux);
    fprintf(out, "%s    terms[s[0]] = tn; terms[s[1]] = hn; terms[s[2]] = land;\n%s}\n", in, in);
}

/* A node, behind its gate when it has one (pint tol: the iteration may not run). */
static void emit_node(Emit *e, const IrNode *n) {
    if (!n->region) {
        emit_op(e, n);
        return;
    }
    line(e, "if (terms[%d] != 0) {   /* gate %d: the Parareal iteration runs */", ir_gate_slot(e->p, n->region),
         n->region);
    emit_op(e, n);
    if (n->op == IR_MONITOR || n->op == IR_ERRNORM) line(e, "} else {\n        terms[%d] = 0;", n->aux);
    line(e, "}");
}

static void emit_op(Emit *e, const IrNode *n) {
    char a[32] = "", b[32] = "";
    if (n->n_args > 0) ref(n->args[0], a, sizeof a);
    if (n->n_args > 1) ref(n->args[1], b, sizeof b);
    const IrNode *A = n->n_args > 0 ? n->args[0] : NULL, *B = n->n_args > 1 ? n->args[1] : NULL;
    int R = n->rows, D = n->dim;

    for (int i = 0; i < e->indent; i++) fputs("    ", e->out);
    fprintf(e->out, "    /* v%d = %s", n->id, ir_op_names[n->op]);
    for (int k = 0; k < n->n_args; k++) fprintf(e->out, " v%d", n->args[k]->id);
    if (n->param >= 0) fprintf(e->out, " %s", param_name(e, n->param));
    if (n->param2 >= 0) fprintf(e->out, " + %s", param_name(e, n->param2));
    if (n->op == IR_ROWSLICE || n->op == IR_ROWPAD) fprintf(e->out, " @%d", n->aux);
    if (D) fprintf(e->out, "   (n, %s, %s)", S(e, R), S(e, D));
    if (n->name && n->op != IR_PROJECT && n->op != IR_PROJECT_T)
        fputs("   ", e->out), emit_comment_text(e->out, n->name);
    fputs(" */\n", e->out);

    const Param *w = n->param >= 0 ? &e->m->params[n->param] : NULL;
    char size[128]; /* the elements of a sample: rows x dim */
    snprintf(size, sizeof size, "%s", S2(e, R, D));
    const char *act = ir_op_is(n->op, OP_AUX_ACT) ? activation_names[n->aux] : "";
    switch (n->op) {
    case IR_INPUT:
    case IR_DATA: break;
    case IR_CONST:
        if (n->vals) {
            fprintf(e->out, "    { const real c[%s] = {", S(e, R));
            for (int r = 0; r < R; r++) fprintf(e->out, "%s%.17g", r ? ", " : "", n->vals[r]);
            fprintf(e->out, "};\n      row_fill(n, %s, %s, c, v%d); }\n", S(e, R), S(e, D), n->id);
        } else {
            line(e, "ew_fill((long)n * %s, %.17g, v%d);", size, n->c, n->id);
        }
        break;
    case IR_EYE: line(e, "eye(n, %s, v%d);", S(e, R), n->id); break;
    case IR_LINEAR:
        line(e, "gemm(0, 1, (long)n * %s, %s, %s, %s, %s, P + %s, %s, v%d, %s, 0);", S(e, R), S(e, D), S(e, A->dim), a,
             S(e, A->dim), PO(e, n->param), S(e, w->shape[1]), n->id, S(e, D));
        if (n->param2 >= 0)
            line(e, "bias_add((long)n * %s, %s, P + %s, v%d);", S(e, R), S(e, D), PO(e, n->param2), n->id);
        break;
    case IR_LINEAR_T:
        line(e, "gemm(0, 0, (long)n * %s, %s, %s, %s, %s, P + %s, %s, v%d, %s, 0);", S(e, R), S(e, D), S(e, A->dim), a,
             S(e, A->dim), PO(e, n->param), S(e, w->shape[1]), n->id, S(e, D));
        break;
    case IR_PROJECT:
    case IR_PROJECT_T: break; /* rejected by build_programs until the emitter carries the matrix */
    case IR_ACT: line(e, "ew_act_%s((long)n * %s, %s, v%d);", act, size, a, n->id); break;
    case IR_DACT: line(e, "ew_dact_%s((long)n * %s, %s, v%d);", act, size, a, n->id); break;
    case IR_D2ACT: line(e, "ew_d2act_%s((long)n * %s, %s, v%d);", act, size, a, n->id); break;
    case IR_ADD: line(e, "ew_add((long)n * %s, %s, %s, v%d);", size, a, b, n->id); break;
    case IR_SUB: line(e, "ew_sub((long)n * %s, %s, %s, v%d);", size, a, b, n->id); break;
    case IR_SCALE: line(e, "ew_scale((long)n * %s, %.17g, %s, v%d);", size, n->c, a, n->id); break;
    case IR_ADDC: line(e, "ew_addc((long)n * %s, %.17g, %s, v%d);", size, n->c, a, n->id); break;
    case IR_MUL:
        line(e, "mul_bcast(n, %s, %s, %s, %s, %s, %s, %s, %s, v%d);", S(e, R), S(e, D), a, S(e, A->rows), S(e, A->dim),
             b, S(e, B->rows), S(e, B->dim), n->id);
        break;
    case IR_CONCAT:
        for (int k = 0, off = 0; k < n->n_args; off += n->args[k]->dim, k++) {
            char name[32];
            ref(n->args[k], name, sizeof name);
            line(e, "concat_piece(n, %s, %s, %d, %s, %s, %s, v%d);", S(e, R), S(e, D), off, name,
                 S(e, n->args[k]->rows), S(e, n->args[k]->dim), n->id);
        }
        break;
    case IR_SLICE:
        line(e, "slice_cols((long)n * %s, %s, %d, %s, %s, v%d);", S(e, R), S(e, A->dim), n->aux, S(e, D), a, n->id);
        break;
    case IR_PAD:
        line(e, "pad_cols((long)n * %s, %s, %d, %s, %s, v%d);", S(e, R), S(e, A->dim), n->aux, S(e, D), a, n->id);
        break;
    case IR_SUMROWS:
        line(e, "sum_rows((long)n * %s, %s, %s, %s, v%d);", S(e, R), S(e, A->rows / R), S(e, D), a, n->id);
        break;
    case IR_SUMDIM: line(e, "sum_cols((long)n * %s, %s, %s, v%d);", S(e, R), S(e, A->dim), a, n->id); break;
    case IR_BCAST_ROWS:
        line(e, "bcast_rows((long)n * %s, %s, %s, %s, v%d);", S(e, A->rows), S(e, R / A->rows), S(e, D), a, n->id);
        break;
    case IR_STACK:
        for (int k = 0, off = 0; k < n->n_args; off += n->args[k]->rows, k++) {
            char name[32];
            ref(n->args[k], name, sizeof name);
            line(e, "stack_piece(n, %s, %s, %d, %s, %s, v%d);", S(e, R), S(e, D), off, name, S(e, n->args[k]->rows),
                 n->id);
        }
        break;
    case IR_ROWSLICE:
        line(e, "row_slice(n, %s, %d, %s, %s, %s, v%d);", S(e, A->rows), n->aux, S(e, R), S(e, D), a, n->id);
        break;
    case IR_ROWPAD:
        line(e, "row_pad(n, %s, %d, %s, %s, %s, v%d);", S(e, R), n->aux, S(e, A->rows), S(e, D), a, n->id);
        break;
    case IR_BCAST_DIM: line(e, "bcast_cols((long)n * %s, %s, %s, v%d);", S(e, R), S(e, D), a, n->id); break;
    case IR_LOSS: emit_loss(e, n, a); break;
    case IR_GRAD_W:
        /* G[out, in] += a^T b over batch x rows: a (n*R, out), b (n*R, in) */
        line(e, "gemm(1, 0, %s, %s, (long)n * %s, %s, %s, %s, %s, G + %s, %s, 1);", S(e, w->shape[0]),
             S(e, w->shape[1]), S(e, A->rows), a, S(e, A->dim), b, S(e, B->dim), PO(e, n->param), S(e, w->shape[1]));
        break;
    case IR_GRAD_B:
        line(e, "grad_bias((long)n * %s, %s, %s, G + %s);", S(e, A->rows), S(e, A->dim), a, PO(e, n->param));
        break;
    case IR_MONITOR: line(e, "terms[%d] = sum_all((long)n * %s, %s) / n;", n->aux, S2(e, A->rows, A->dim), a); break;
    case IR_GATE:
        line(e, "terms[%d] = terms[%d] > %.17g * terms[%d];   /* open while the correction is above tol */",
             ir_gate_slot(e->p, n->aux), A->aux, n->c, B->aux);
        break;
    case IR_TERM: line(e, "ew_fill((long)n * %s, (real)terms[%d], v%d);", size, n->aux, n->id); break;
    case IR_ERRNORM: {
        char c[32];
        ref(n->args[2], c, sizeof c);
        line(e, "terms[%d] = err_norm((long)n * %s, %s, %s, %s, %.17g, %.17g);   /* dopri5 error, squared RMS */",
             n->aux, S(e, A->dim), a, b, c, n->c2, n->c);
        break;
    }
    case IR_STEPCTL:
        line(e, "{ const int s[8] = {%d, %d, %d, %d, %d, %d, %d, %d};", n->slots[0], n->slots[1], n->slots[2],
             n->slots[3], n->slots[4], n->slots[5], n->slots[6], n->slots[7]);
        line(e, "  dopri5_control(terms, s, %.17g, %.17g, %.17g); }", n->vals[0], n->vals[1], n->vals[2]);
        if (n->aux) emit_landing(e->out, n, "    ");
        break;
    case IR_SELECT:
        line(e, "memcpy(v%d, terms[%d] != 0 ? %s : %s, sizeof(real) * (size_t)n * %s);   /* gate %d */", n->id,
             ir_gate_slot(e->p, n->aux), a, b, size, n->aux);
        break;
    case IR_OP_COUNT: break;
    }
}

/* ---------------------------------------------------------------------------- programs */

/* The arguments every part of a program receives. */
#define PART_PARAMS                                                                        \
    "const real *restrict P, real *restrict G, int n, int nmax, const real *restrict x,\n" \
    "    const real *restrict y, const real *restrict J, const int32_t *restrict label,\n" \
    "    const double *restrict w, double *restrict terms, real *restrict work"
#define PART_ARGS "P, G, n, nmax, x, y, J, label, w, terms, work"

enum { PART_NODES = 48 }; /* nodes per function: keeps each function small for the C compiler */

/* Nodes [from, to) of the live list: the statements of one part (its function's body). */
static void emit_part(Emit *e, const PtrVec *live, int from, int to) {
    fputs("    (void)P; (void)G; (void)x; (void)y; (void)J; (void)label; (void)w; (void)terms;\n", e->out);
    /* pointers to every buffer this part touches */
    char *seen = calloc((size_t)e->p->nodes.n, 1);
    int any = 0;
    for (int i = from; i < to; i++) {
        const IrNode *n = live->items[i];
        for (int k = -1; k < n->n_args; k++) {
            const IrNode *v = k < 0 ? n : n->args[k];
            if (!has_buffer(v) || seen[v->id]) continue;
            seen[v->id] = 1;
            if (!any++) line(e, "/* workspace slots: values whose lives do not overlap share one, so no restrict */");
            line(e, "real *v%d = work + (long)nmax * w%c_v%d;", v->id, e->slot_prefix, e->slot_of[v->id]);
        }
    }
    free(seen);
    if (!any) line(e, "(void)n; (void)nmax; (void)work;   /* no buffer here (a part that only names the input) */");
    for (int i = from; i < to;) {
        const IrNode *n = live->items[i];
        if (!e->j_only || !e->j_only[n->id]) {
            emit_node(e, n);
            i++;
            continue;
        }
        /* a run of nodes only the Jacobian needs: skipped when the caller asks for y alone */
        line(e, "if (J) {");
        e->indent++;
        for (; i < to && e->j_only[((const IrNode *)live->items[i])->id]; i++) emit_node(e, live->items[i]);
        e->indent--;
        line(e, "}");
    }
}

/* For a prediction with a Jacobian: the live nodes that only the Jacobian needs (the output,
 * the ODE solvers' step control and the other roots do not), 1 at their id; NULL without. */
static const char *jacobian_only(const Program *p, const PtrVec *live, Arena *a) {
    if (!p->jacobian) return NULL;
    char *need = arena_alloc(a, (size_t)p->nodes.n + 1), *only = arena_alloc(a, (size_t)p->nodes.n + 1);
    for (int i = 0; i < p->roots.n; i++)
        if (p->roots.items[i] != p->jacobian) need[((const IrNode *)p->roots.items[i])->id] = 1;
    for (int i = p->nodes.n - 1; i >= 0; i--) {
        const IrNode *n = p->nodes.items[i];
        if (need[n->id])
            for (int k = 0; k < n->n_args; k++) need[n->args[k]->id] = 1;
    }
    for (int i = 0; i < live->n; i++) {
        const IrNode *n = live->items[i];
        only[n->id] = !need[n->id];
    }
    return only;
}

/* ---------------------------------------------------------------------------- repeated parts */
/* A part starts at every new ODE step (IrNode.step), so the parts of equal steps are equal but
 * for their numbers (buffer offsets, times, step sizes, term indexes) and their node names
 * (share.c). Such parts are written once, as a function of a row of two tables, L (integers)
 * and D (reals), holding the numbers in which they differ; each part is a call with its row.
 * The function computes exactly what the parts did. */

/* The named constants that stand for numbers: sizes, parameter offsets (P_q_1_weight, P3_a_b)
 * and the program's slot offsets (wt_v12). */
static int c_symbol(const char *b, size_t len, const void *ctx) {
    const Emit *e = ctx;
    if (len > 3 && b[0] == 'w' && b[1] == e->slot_prefix && b[2] == '_') return 1;
    if (len > 2 && b[0] == 'P' && (b[1] == '_' || (b[1] >= '0' && b[1] <= '9'))) return 1;
    return size_is_name(&e->sizes, b, len);
}

static ShareRules c_rules(const Emit *e) {
    return (ShareRules){.prefixes = "v", .marked_only = 0, .param_format = "%c[%d]", .symbol = c_symbol, .ctx = e};
}

/* Writes the function shared by group g and its tables. */
static void emit_shared(Emit *e, const char *name, const ShareItem *parts, int n_parts, int g) {
    const ShareItem *first = &parts[g];
    fprintf(e->out,
            "\n/* %d parts of %s do this on other buffers and numbers (steps of an ODE solve): each calls\n"
            " * it with its row of L_%s_steps_v%d (integers) and D_%s_steps_v%d (reals). */\n",
            first->count, name, name, e->part_first[g], name, e->part_first[g]);
    fprintf(e->out,
            "static void %s_steps_v%d(" PART_PARAMS ",\n    const long *restrict L, const double *restrict D) {\n",
            name, e->part_first[g]);
    fputs("    (void)L; (void)D;\n", e->out);
    ShareRules rules = c_rules(e);
    share_scan(first->text, e->out, NULL, first->kind, first->slot, &rules);
    fputs("}\n", e->out);
    for (int t = 0; t < 2; t++) {
        int cols = t ? first->n_D : first->n_L;
        char k = t ? 'D' : 'L';
        if (!cols) continue;
        fprintf(e->out, "static const %s %c_%s_steps_v%d[%d][%d] = {\n", t ? "double" : "long", k, name,
                e->part_first[g], first->count, cols);
        for (int p = g; p < n_parts; p++) {
            if (parts[p].group != g) continue;
            fputs("    {", e->out);
            for (int i = 0, c = 0; i < first->n_nums; i++)
                if (first->kind[i] == k) fprintf(e->out, "%s%s", c++ ? ", " : "", parts[p].nums[i]);
            fputs("},\n", e->out);
        }
        fputs("};\n", e->out);
    }
}

/* The parts of a program: a new one at every step and after PART_NODES nodes. Writes each
 * part's function (or the function shared by equal parts); returns the parts. */
static int emit_parts(Emit *e, const char *name, const PtrVec *live, ShareItem **out) {
    int n_parts = 0, cap = 0;
    ShareItem *parts = NULL;
    for (int i = 0; i < live->n;) {
        int step = ((const IrNode *)live->items[i])->step, to = i + 1;
        while (to < live->n && to - i < PART_NODES && ((const IrNode *)live->items[to])->step == step) to++;
        if (n_parts == cap) {
            parts = realloc(parts, sizeof(ShareItem) * (size_t)(cap = cap ? 2 * cap : 64));
            e->part_first = realloc(e->part_first, sizeof(int) * (size_t)cap);
        }
        e->part_first[n_parts] = ((const IrNode *)live->items[i])->id;
        ShareItem *pt = &parts[n_parts++];
        memset(pt, 0, sizeof *pt);
        size_t len;
        FILE *saved = e->out;
        e->out = open_memstream(&pt->text, &len);
        emit_part(e, live, i, to);
        fclose(e->out);
        e->out = saved;
        i = to;
    }
    ShareRules rules = c_rules(e);
    share_group(parts, n_parts, &rules);
    /* a shared part's function is named by the first node of its instance of the lowest layer,
     * then step (names_first in fuse.h): the group's first part names it in part_first */
    for (int p = 0; p < n_parts; p++) {
        int g = parts[p].group;
        if (g == p || parts[p].index < 0) continue;
        const IrNode *a = (const IrNode *)e->p->nodes.items[e->part_first[p]];
        const IrNode *b = (const IrNode *)e->p->nodes.items[e->part_first[g]];
        if (names_first(a, b)) e->part_first[g] = e->part_first[p];
    }
    for (int p = 0; p < n_parts; p++) {
        if (parts[p].group != p) continue;
        if (parts[p].count > 1) {
            emit_shared(e, name, parts, n_parts, p);
        } else {
            fprintf(e->out, "\nstatic void %s_part%d(" PART_PARAMS ") {\n", name, p);
            fputs(parts[p].text, e->out);
            fputs("}\n", e->out);
        }
    }
    *out = parts;
    return n_parts;
}

/* The call of part p in the program's function. */
static void emit_call(Emit *e, const char *name, const ShareItem *parts, int p) {
    const ShareItem *pt = &parts[p], *g = &parts[pt->group];
    if (pt->index < 0) {
        fprintf(e->out, "    %s_part%d(" PART_ARGS ");\n", name, p);
        return;
    }
    char L[64] = "NULL", D[64] = "NULL";
    if (g->n_L) snprintf(L, sizeof L, "L_%s_steps_v%d[%d]", name, e->part_first[pt->group], pt->index);
    if (g->n_D) snprintf(D, sizeof D, "D_%s_steps_v%d[%d]", name, e->part_first[pt->group], pt->index);
    fprintf(e->out, "    %s_steps_v%d(" PART_ARGS ", %s, %s);\n", name, e->part_first[pt->group], L, D);
}

static void emit_program(Emit *e, const Program *p, int train) {
    Arena tmp = {0};
    PtrVec live = {0};
    ir_live(p, &live, &tmp);
    e->p = p;
    e->work = 0;
    e->slot_prefix = train ? 't' : 'p';
    e->j_only = train ? NULL : jacobian_only(p, &live, &tmp);
    const IrNode *keep[2] = {p->output, p->jacobian};
    assign_buffers(e, &live, keep, p->jacobian ? 2 : 1);
    const char *name = train ? "train" : "predict";
    /* the program's text with node names v12, renamed from the model at the end (names.h) */
    FILE *final = e->out;
    char *text = NULL;
    size_t text_len = 0;
    e->out = open_memstream(&text, &text_len);
    fprintf(e->out, "\n/* ---------------------------------------------------------------------------- %s */\n", name);
    emit_slot_table(e, &live);
    ShareItem *parts;
    int n_parts = emit_parts(e, name, &live, &parts);

    fprintf(e->out, "\nlong dino_%s_work(int nmax) { return (long)nmax * %ld; }\n\n", name, e->work);
    if (train)
        fprintf(
            e->out,
            "void dino_train_step(const real *restrict P, real *restrict G, int n, int nmax, const real *restrict x,\n"
            "                     const real *restrict y, const real *restrict J, const int32_t *restrict label,\n"
            "                     const double *restrict w, double *restrict terms, real *restrict work) {\n"
            "    memset(G, 0, sizeof(real) * %lld);\n",
            (long long)e->m->n_weights);
    else
        fprintf(e->out,
                "void dino_predict_terms(const real *restrict P, int n, int nmax, const real *restrict x, real "
                "*restrict y,\n"
                "                        real *restrict J, real *restrict work, double *restrict terms_out) {\n"
                "    real *G = NULL; const int32_t *label = NULL; const double *w = NULL;\n"
                "    double terms[%d] = {0};   /* loss terms (unused), Parareal corrections and gates */\n"
                "    real *yout = y, *Jout = J;%s\n",
                e->m->n_loss + monitor_count(e->m) + 1,
                p->jacobian ? "" : "\n    (void)Jout;   /* a classifier has no Jacobian */");
    for (int k = 0; k < n_parts; k++) emit_call(e, name, parts, k);
    share_free(parts, n_parts);
    if (!train) {
        char o[32];
        ref(p->output, o, sizeof o);
        int out = e->m->out_dim, in = e->m->in_dim;
        fprintf(e->out, "\n    /* results: y (n, %s)%s */\n", S(e, out), p->jacobian ? ", J (n, out, in)" : "");
        if (p->output->op != IR_INPUT)
            line(e, "const real *%s = work + (long)nmax * wp_v%d;", o, e->slot_of[p->output->id]);
        line(e, "memcpy(yout, %s, sizeof(real) * (size_t)n * %s);", o, S(e, out));
        if (p->jacobian) {
            char j[32];
            ref(p->jacobian, j, sizeof j);
            line(e, "const real *%s = work + (long)nmax * wp_v%d;", j, e->slot_of[p->jacobian->id]);
            line(e, "if (Jout) {");
            if (p->jac_forward)
                line(e,
                     "    for (long b = 0; b < n; b++) for (int o = 0; o < %s; o++) for (int i = 0; i < %s; i++)\n"
                     "        Jout[(b * %s + o) * %s + i] = %s[(b * %s + i) * %s + o];",
                     S(e, out), S(e, in), S(e, out), S(e, in), j, S(e, in), S(e, out));
            else line(e, "    memcpy(Jout, %s, sizeof(real) * (size_t)n * %s);", j, S2(e, out, in));
            line(e, "}");
        }
        int n_terms = e->m->n_loss + monitor_count(e->m);
        line(e, "if (terms_out) memcpy(terms_out, terms, sizeof(double) * %d);   /* the gates: did dopri5 reach t1 */",
             n_terms);
        fputs("}\n", e->out);
        fputs("\nvoid dino_predict(const real *restrict P, int n, int nmax, const real *restrict x, real *restrict y,\n"
              "                  real *restrict J, real *restrict work) {\n"
              "    dino_predict_terms(P, n, nmax, x, y, J, work, NULL);\n",
              e->out);
    }
    fputs("}\n", e->out);
    fclose(e->out);
    e->out = final;
    names_rename(final, text, p, "v");
    free(text);
    free(e->offset);
    free(e->slot_of);
    free(e->part_first);
    e->part_first = NULL;
    e->j_only = NULL;
    arena_free(&tmp);
}

int emit_c(FILE *out, const Model *m, const Programs *pr, const EmitOptions *opt, char *err, size_t errlen) {
    Emit e = {.out = out, .m = m};
    const char *base = strrchr(m->path, '/') ? strrchr(m->path, '/') + 1 : m->path;
    fputs("/* Generated by dinoc from ", out);
    emit_comment_text(out, base);
    fprintf(out, " (spec hash %016llx): the CPU backend of model '", (unsigned long long)opt->spec_hash);
    emit_comment_text(out, m->name);
    fprintf(out, "'.\n * %d -> %d, %d parameter tensors, %lld parameters, %s. Regenerate instead of editing. */\n",
            m->in_dim, m->out_dim, m->n_params, (long long)m->n_weights, opt->f64 ? "f64" : "f32");
    fprintf(out, "#define DINO_REAL %s\n", opt->f64 ? "double" : "float");
    if (emit_prelude(out, prelude_c, !opt->f64 && m->train.fast_math, 0)) {
        snprintf(err, errlen,
                 "internal error: fast math: the C prelude has no activation rows, or activations_fast.def lacks a row "
                 "of activations.def");
        return -1;
    }
    fputs("\n/* ---------------------------------------------------------------------------- interface */\n\n", out);
    fprintf(out, "const int dino_abi = %d;\nconst int dino_in = %d, dino_out = %d, dino_f64 = %d;\n", DINO_C_ABI,
            m->in_dim, m->out_dim, opt->f64);
    fprintf(out, "const long dino_n_params = %lld;\nconst unsigned long long dino_spec_hash = 0x%016llxull;\n\n",
            (long long)m->n_weights, (unsigned long long)opt->spec_hash);
    /* the programs first: they add the products of sizes they use to the table of sizes */
    size_names(m, &e.sizes);
    e.named_params = m->n_weights <= 2147483647;
    char *prog[2] = {NULL, NULL};
    size_t prog_len[2];
    for (int t = 0; t < 2; t++) {
        e.out = open_memstream(&prog[t], &prog_len[t]);
        if (!e.out) {
            free(prog[0]);
            snprintf(err, errlen, "out of memory generating code");
            return -1;
        }
        emit_program(&e, t ? &pr->train : &pr->predict, t);
        fclose(e.out);
    }
    emit_size_table(out, &e.sizes);
    if (e.named_params) emit_param_offsets(out, m, &e.sizes);
    else emit_param_table(out, m);
    fputs(prog[0], out);
    fputs(prog[1], out);
    free(prog[0]), free(prog[1]);
    return 0;
}

char *generate_c(Arena *a, const Model *m, JacMode jac, int f64, uint64_t spec_hash, size_t *len, char *err,
                 size_t errlen) {
    Programs pr;
    if (build_programs(a, m, jac, &pr, err, errlen)) return NULL;
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) {
        snprintf(err, errlen, "out of memory generating code");
        return NULL;
    }
    EmitOptions opt = {.f64 = f64, .spec_hash = spec_hash};
    int rc = emit_c(f, m, &pr, &opt, err, errlen);
    fclose(f);
    if (rc) {
        free(buf);
        return NULL;
    }
    return buf;
}
