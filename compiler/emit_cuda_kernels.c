/* emit_cuda_kernels.c - the text of each kind of CUDA kernel the CUDA emitter forms (fuse.c):
 * element-wise kernels and GEMMs with their epilogues, weight and bias gradients (also summed
 * over a tile kernel's uses), losses, diagnostics, Parareal gates, dopri5's error norm and step
 * control, zeroing and the results. Each is written either as a kernel of its own or, with
 * E->stage >= 0, as a stage of a tile kernel; the numbers in which equal stages may differ are
 * backquoted for share.c (emit_cuda_share.c). */
#include "fuse.h"
#include "names.h"

#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* ---------------------------------------------------------------------------- text helpers */

void cuda_table_number(Emit *E, int t, const char *num) {
    long k = E->n_table[t]++;
    fprintf(E->table[t], "%s%s", !k ? "    " : E->table_newline[t] ? ",\n    " : ", ", num);
    E->table_newline[t] = 0;
}

static int by_offset(const void *a, const void *b) {
    long x = ((const long *)a)[0], y = ((const long *)b)[0];
    return x < y ? -1 : x > y;
}

void cuda_slot_table(Emit *E) {
    int N = E->p->nodes.n;
    free(E->slot_of);
    E->slot_of = malloc(sizeof(int) * ((size_t)N + 1));
    long(*row)[2] = malloc(sizeof *row * ((size_t)E->live.n + 1));
    int k = 0;
    size_t cap = 64;
    while (cap < 2 * (size_t)E->live.n) cap *= 2;
    int *hash = malloc(sizeof(int) * cap); /* offset -> its row */
    for (size_t h = 0; h < cap; h++) hash[h] = -1;
    for (int i = 0; i < E->live.n; i++) { /* the first value at each offset names it */
        const IrNode *v = E->live.items[i];
        E->slot_of[v->id] = v->id;
        if (E->offset[v->id] < 0) continue;
        size_t h = (size_t)E->offset[v->id] * 2654435761u & (cap - 1);
        while (hash[h] >= 0 && row[hash[h]][0] != E->offset[v->id]) h = (h + 1) & (cap - 1);
        if (hash[h] < 0) hash[h] = k, row[k][0] = E->offset[v->id], row[k][1] = v->id, k++;
        E->slot_of[v->id] = (int)row[hash[h]][1];
    }
    free(hash);
    qsort(row, (size_t)k, sizeof *row, by_offset);
    SizeNames sz;
    size_names(E->m, &sz);
    char t = E->train ? 't' : 'p', gap[160];
    if (k) out(E, "\n/* workspace offsets per sample (values whose lives do not overlap share one) */\nenum {\n");
    for (int i = 0; i < k; i++) {
        if (!i) out(E, "    w%c_v%ld = %ld,\n", t, row[i][1], row[i][0]);
        else
            out(E, "    w%c_v%ld = w%c_v%ld + %s,\n", t, row[i][1], t, row[i - 1][1],
                size_sum_text(&sz, row[i][0] - row[i - 1][0], gap, sizeof gap));
    }
    if (k) out(E, "};\n");
    free(row);
}

/* A size as its name (q_0_dim) or the number; rows x dim as one name (q_dim_x_q_0_dim) or the
 * number (names.h). */
static const char *SZ(const Emit *E, long v) {
    static _Thread_local char ring[16][96];
    static _Thread_local int at;
    char *b = ring[at++ & 15];
    if (!E->sizes) return snprintf(b, 96, "%ld", v), b;
    return size_text(E->sizes, v, b, 96);
}

static const char *SZ2(const Emit *E, long rows, long dim) {
    static _Thread_local char ring[16][96];
    static _Thread_local int at;
    char *b = ring[at++ & 15];
    if (!E->sizes) return snprintf(b, 96, "%ld", rows * dim), b;
    return size_product(E->sizes, rows, dim, b, 96);
}

/* The name of a value in generated code. */
static void ref(const IrNode *n, char *buf, size_t len) {
    if (n->op == IR_INPUT) snprintf(buf, len, "x");
    else if (n->op == IR_DATA)
        snprintf(buf, len, "%s", n->aux == DATA_OUTPUT ? "y" : n->aux == DATA_JACOBIAN ? "J" : "label");
    else snprintf(buf, len, "v%d", n->id);
}

static const char *param_name(const Emit *E, int i) { return E->m->params[i].name; }

/* The comment naming a node, as emit_c.c writes it (plus the activation, constant, offset). */
static void node_comment(Emit *E, const IrNode *n, const char *note) {
    out(E, "%s/* v%d = %s", E->stage >= 0 ? "    " : "", n->id, ir_op_names[n->op]);
    for (int k = 0; k < n->n_args; k++) out(E, " v%d", n->args[k]->id);
    if (n->param >= 0) out(E, " %s", param_name(E, n->param));
    if (n->param2 >= 0) out(E, " + %s", param_name(E, n->param2));
    if (ir_op_is(n->op, OP_AUX_ACT)) out(E, " %s", activation_names[n->aux]);
    if (ir_op_is(n->op, OP_C)) out(E, " %.17g", n->c);
    if (ir_op_is(n->op, OP_AUX_AT)) out(E, " @%d", n->aux);
    if (n->op == IR_LOSS) out(E, " %s%s", loss_names[E->m->loss[n->aux].kind], n->transposed ? " (transposed)" : "");
    if (n->dim) out(E, "   (n, %s, %s)", SZ(E, n->rows), SZ(E, n->dim));
    if (n->name && n->op != IR_PROJECT && n->op != IR_PROJECT_T) out(E, "   "), emit_comment_text(E->out, n->name);
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
    const IrNode *bufs[MAX_BUFS]; /* buffers the kernel touches, in order */
    char writes[MAX_BUFS];
    int n_bufs;
} Body;

static void use_buffer(Body *B, const IrNode *v, int write) {
    if (ir_op_is(v->op, OP_ARG)) return;
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
 * equal pieces of code (the layers of an MLP): the parameter's name in the offsets' enum
 * (P_q_1_weight, names.h) where the parameters fit an int, else the number; buf must hold
 * OB characters. */
enum { OB = 160 };
static const char *poff(const Emit *E, int param, char *buf) {
    char name[OB - 2];
    if (E->m->n_weights <= 2147483647) param_off_name(E->m, param, name, sizeof name);
    else snprintf(name, sizeof name, "%lld", (long long)E->m->params[param].offset);
    snprintf(buf, OB, "%s%s%s", quote(E), name, quote(E));
    return buf;
}

/* An offset inside a parameter, as a number. */
static const char *poff_at(const Emit *E, long long off, char *buf) {
    snprintf(buf, OB, "%s%lld%s", quote(E), off, quote(E));
    return buf;
}

static void literal(const Emit *E, double c, char *buf, size_t len) {
    snprintf(buf, len, "(real)%s%.17g%s", quote(E), c, quote(E));
}

/* A constant as read by a node of R rows at batch row m: a literal, or for one value per
 * row (the times of stacked slices) its table dino_<program>_rows_v<id> (write_program). */
static void const_at(const Emit *E, Body *B, const IrNode *c, int R, char *buf, size_t len) {
    if (c->op == IR_TERM) { /* a runtime scalar (dopri5 t, h) */
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
        snprintf(buf, len, "%s[b * %s + j]", name, SZ(E, a->dim));
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
    char ob[OB]; /* poff() */
    char a[96] = "", b[96] = "", expr[512];
    FILE *f = B->f;
    const char *in = B->indent;
    if (ir_op_is(v->op, OP_ELEM) && v->n_args > 0 && read_arg(E, B, v, v->args[0], a, sizeof a)) return -1;
    if (ir_op_is(v->op, OP_ELEM) && v->n_args > 1 && read_arg(E, B, v, v->args[1], b, sizeof b)) return -1;
    const char *act = ir_op_is(v->op, OP_AUX_ACT) ? activation_names[v->aux] : "";
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
            if (k == v->n_args - 1)
                fprintf(f, "%s%st%d = %s[(b * %d + r - %d) * %d + j];\n", in, k ? "else " : "", v->id, a, p->rows, off,
                        v->dim);
            else
                fprintf(f, "%s%sif (r < %d) t%d = %s[(b * %d + r - %d) * %d + j];\n", in, k ? "else " : "",
                        off + p->rows, v->id, a, p->rows, off, v->dim);
        }
        goto store;
    case IR_LINEAR:
    case IR_LINEAR_T: {
        const IrNode *A = v->args[0];
        const Param *w = &E->m->params[v->param];
        if (E->virt[A->id]) { /* the concatenation's pieces, one after another */
            int t = v->op == IR_LINEAR_T;
            B->use_j = 1;
            fprintf(f, "%sreal t%d = 0;   /* %s over the pieces of v%d */\n", in, v->id, param_name(E, v->param),
                    A->id);
            for (int k = 0, off = 0; k < A->n_args; off += A->args[k]->dim, k++) {
                const IrNode *p = A->args[k];
                char wp[OB + 64];
                if (t)
                    snprintf(wp, sizeof wp, "P + %s + j",
                             poff_at(E, (long long)(w->offset + (int64_t)off * v->dim), ob));
                else
                    snprintf(wp, sizeof wp, "P + %s + (long)j * %d", poff_at(E, (long long)(w->offset + off), ob),
                             A->dim);
                if (E->inlined[p->id]) {
                    char pl[96];
                    const_at(E, B, p, v->rows, pl, sizeof pl);
                    fprintf(f, "%st%d = dot_const(t%d, %s, %s, %d, %d);\n", in, v->id, v->id, pl, wp, t ? v->dim : 1,
                            p->dim);
                } else {
                    char row[32];
                    gather_arg(B, p, a, sizeof a);
                    row_of(B, p->rows, v->rows, row, sizeof row);
                    fprintf(f, "%st%d = dot_acc(t%d, %s + %s * %d, %s, %d, %d);\n", in, v->id, v->id, a, row, p->dim,
                            wp, t ? v->dim : 1, p->dim);
                }
            }
            if (v->param2 >= 0) fprintf(f, "%st%d += P[%s + j];\n", in, v->id, poff(E, v->param2, ob));
            goto store;
        }
        gather_arg(B, A, a, sizeof a);
        B->use_m = B->use_j = 1;
        if (v->op == IR_LINEAR)
            snprintf(expr, sizeof expr, "linear_at(%s, m, %s, P + %s, j)", a, SZ(E, A->dim), poff(E, v->param, ob));
        else
            snprintf(expr, sizeof expr, "linear_t_at(%s, m, %s, P + %s, %s, j)", a, SZ(E, A->dim),
                     poff(E, v->param, ob), SZ(E, v->dim));
        if (v->param2 >= 0) {
            size_t len = strlen(expr);
            snprintf(expr + len, sizeof expr - len, " + P[%s + j]", poff(E, v->param2, ob));
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
        out(E, "    %s%sreal *%sv%d = work + (long)nmax * %sw%c_v%d%s;   /* (n, %s, %s) */\n",
            E->stage >= 0 ? "    " : "", B->writes[i] ? "" : "const ", E->stage >= 0 ? "" : "__restrict__ ", v->id,
            quote(E), E->train ? 't' : 'p', E->slot_of[v->id], quote(E), SZ(E, v->rows), SZ(E, v->dim));
    }
}

/* Index variables for element e of (n, R, D) or, in a GEMM epilogue, for row m and column j. */
static void declare_indices(Emit *E, const Body *B, int R, int D, int gemm, const char *in) {
    int use_m = B->use_m || B->use_b || B->use_r || (!gemm && B->use_j);
    int use_b = B->use_b || B->use_r;
    if (gemm) {
        if (B->use_e) out(E, "%sconst long e = m * %s + j;\n", in, SZ(E, D));
    } else if (use_m) {
        if (D == 1) out(E, "%sconst long m = e;\n", in);
        else out(E, "%sconst long m = e / %s;\n", in, SZ(E, D));
        if (B->use_j) out(E, D == 1 ? "%sconst int j = 0;\n" : "%sconst int j = (int)(e - m * %s);\n", in, SZ(E, D));
    }
    if (use_b) {
        if (R == 1) out(E, "%sconst long b = m;\n", in);
        else out(E, "%sconst long b = m / %s;\n", in, SZ(E, R));
    }
    if (B->use_r) {
        if (R == 1) out(E, "%sconst int r = 0;\n", in);
        else out(E, "%sconst int r = (int)(m - b * %s);\n", in, SZ(E, R));
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

static void kernel_open(Emit *E, int ki, const char *what) {
    if (E->stage >= 0) {
        if (E->kernels[ki].count) out(E, "\n    /* -- stage v%d: %s */\n", member(E, &E->kernels[ki], 0)->id, what);
        else out(E, "\n    /* -- stage %d: %s */\n", E->stage, what);
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
        if (g)
            out(E, "    if (terms[%d] != 0) {   /* gate %d open: this Parareal iteration runs */\n",
                ir_gate_slot(E->p, g), g);
        else out(E, "    {\n");
        return;
    }
    out(E, "extern \"C\" __global__ void __launch_bounds__(%d) %s(DINO_%s_PARAMS) {\n", THREADS,
        E->launch[E->unit_of[ki]].kernel, E->train ? "TRAIN" : "PREDICT");
    if (g)
        out(E, "    if (terms[%d] == 0) return;   /* gate %d closed: this Parareal iteration does not run */\n",
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
    for (int i = 0; i < k->count; i++) layers += cuda_is_small_layer(member(E, k, i));
    kernel_open(E, ki,
                layers ? (k->count > 1 ? "small layer, a thread per output, fused" : "small layer, a thread per output")
                       : (k->count > 1 ? "element-wise, fused" : "element-wise"));
    for (int i = 0; i < k->count; i++) {
        const IrNode *v = member(E, k, i);
        if (cuda_is_small_layer(v) && E->virt[v->args[0]->id])
            node_comment(E, v->args[0], "(not built: read piece by piece)");
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
        out(E,
            "        for (long e = s0 * %s + threadIdx.x; e < s1 * %s; e += %d) {   /* the tile's elements of (n, %s, "
            "%s) */\n",
            SZ2(E, R, D), SZ2(E, R, D), THREADS, SZ(E, R), SZ(E, D));
        declare_indices(E, &B, R, D, 0, "            ");
        body_end(E, &B);
        out(E, "        }\n");
    } else {
        out(E, "    const long e = (long)blockIdx.x * %d + threadIdx.x;   /* element of (n, %s, %s) */\n", THREADS,
            SZ(E, R), SZ(E, D));
        out(E, "    if (e >= (long)n * %s) return;\n", SZ2(E, R, D));
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
    char ob[OB]; /* poff() */
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
    for (int i = 0; i < k->count; i++)
        node_comment(E, member(E, k, i), E->stored[member(E, k, i)->id] ? NULL : "(register)");
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
        fprintf(B.f, "%sconst real t%d = %s + P[%s + j];\n", in, v->id, prod, poff(E, v->param2, ob));
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
    const char *loop = tile ? "                " : "    "; /* inside the tile's loops over row and column tiles */
    if (tile) {
        out(E, "        const long M = s1 * %s;   /* the tile's rows end here */\n", SZ(E, R));
        out(E, "        for (long m0 = s0 * %s; m0 < M; m0 += %d)\n", SZ(E, R), bm);
        out(E, "            for (long n0 = 0; n0 < %s; n0 += %d) {\n", SZ(E, D), bn);
        out(E,
            "%sconst real *c = gemm_tile_shared<0, %d, %d, %d>(M, %s, 0, %s, %s, %s, P + %s, %s, m0, n0);   /* %s%s "
            "*/\n",
            loop, tb, bm, bn, SZ(E, D), SZ(E, K), a, SZ(E, A->dim), poff(E, v->param, ob), SZ(E, w->shape[1]),
            param_name(E, v->param), tb ? "^T" : "");
    } else {
        out(E, "    const long M = (long)n * %d, m0 = (long)blockIdx.x * %d, n0 = (long)blockIdx.y * %d;\n", R, bm, bn);
        out(E, "%sreal acc[%d][%d];\n", loop, bm / 16, bn / 16);
        out(E, "%sgemm_tile<0, %d, %d, %d>(M, %d, 0, %d, %s, %d, P + %s, %d, m0, n0, acc);   /* %s%s */\n", loop, tb,
            bm, bn, D, K, a, A->dim, poff(E, v->param, ob), w->shape[1], param_name(E, v->param), tb ? "^T" : "");
    }
    out(E, "%sfor (int i = 0; i < %d; i++) {\n", loop, bm / 16);
    out(E, "%s    const long m = m0 + threadIdx.x / 16 + 16 * i;\n", loop);
    out(E, "%s    if (m >= M) break;\n", loop);
    out(E, "%s    for (int jj = 0; jj < %d; jj++) {\n", loop, bn / 16);
    out(E, "%s        const int j = (int)(n0 + threadIdx.x %% 16 + 16 * jj);\n", loop);
    out(E, "%s        if (j >= %s) break;\n", loop, SZ(E, D));
    declare_indices(E, &B, R, D, 1, in);
    body_end(E, &B);
    out(E, "%s    }\n%s}\n", loop, loop);
    if (tile) out(E, "            }\n");
    kernel_close(E);
    return 0;
}

static void emit_grad_w(Emit *E, int ki) {
    char ob[OB]; /* poff() */
    const Kernel *k = &E->kernels[ki];
    const IrNode *v = member(E, k, 0), *A = v->args[0], *Bn = v->args[1];
    const Param *w = &E->m->params[v->param];
    int out_dim = w->shape[0], in_dim = w->shape[1];
    char what[160], a[32], b[32];
    if (k->bm)
        snprintf(what, sizeof what, "weight gradient, tile %d x %d, %d batch rows per block", k->bm, k->bn, KCHUNK);
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
            out_dim, in_dim, a, b, poff(E, v->param, ob), param_name(E, v->param), a, b);
        kernel_close(E);
        return;
    }
    out(E, "    /* G[%d, %d] += %s^T %s summed over the batch's n * %d rows, this block's share of them */\n", out_dim,
        in_dim, a, b, A->rows);
    out(E, "    const long K = (long)n * %d, k0 = (long)blockIdx.x * %d;\n", A->rows, KCHUNK);
    out(E, "    if (k0 >= K) return;\n");
    out(E, "    const long k1 = dino_minl(K, k0 + %d), m0 = (long)blockIdx.y * %d, n0 = (long)blockIdx.z * %d;\n",
        KCHUNK, k->bm, k->bn);
    out(E, "    real acc[%d][%d];\n", k->bm / 16, k->bn / 16);
    out(E, "    gemm_tile<1, 0, %d, %d>(%d, %d, k0, k1, %s, %d, %s, %d, m0, n0, acc);\n", k->bm, k->bn, out_dim, in_dim,
        a, A->dim, b, Bn->dim);
    out(E, "    gemm_tile_atomic_add<%d, %d>(acc, %d, %d, m0, n0, G + %s, %d);   /* %s */\n", k->bm, k->bn, out_dim,
        in_dim, poff(E, v->param, ob), in_dim, param_name(E, v->param));
    kernel_close(E);
}

static void emit_grad_b(Emit *E, int ki) {
    char ob[OB]; /* poff() */
    const IrNode *v = member(E, &E->kernels[ki], 0), *A = v->args[0];
    char a[32];
    kernel_open(E, ki, "bias gradient");
    node_comment(E, v, NULL);
    kernel_signature(E, ki);
    ref(A, a, sizeof a);
    Body B = {.n_bufs = 0};
    use_buffer(&B, A, 0);
    declare_buffers(E, &B);
    out(E, "    grad_bias_part((long)n * %d, %d, %s, G + %s);   /* %s += column sums of %s */\n", A->rows, A->dim, a,
        poff(E, v->param, ob), param_name(E, v->param), a);
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
            const IrNode *src = c < 2 && (c == 0 || with_b) ? v->args[c] : NULL;
            if (src && row[c] >= 0) snprintf(num, sizeof num, "w%c_v%d", E->train ? 't' : 'p', E->slot_of[src->id]);
            else snprintf(num, sizeof num, "%ld", row[c]);
            cuda_table_number(E, 0, num);
        }
    }
    out(E,
        "    const long *src = dino_%s_L + `%ld`;   /* its sources, four numbers each: a, b, rows per sample, gate "
        "*/\n",
        E->name, at);
    E->table_used = 1;
}

/* Tile mode: a weight's gradient from every GRAD_W node of it, as one product over all their
 * rows: G += sum over sources q of a_q^T b_q, SUM_SAMPLES samples of every source per block. */
static void emit_grad_w_sum(Emit *E, int ki) {
    char ob[OB]; /* poff() */
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
    out(E,
        "        const real *a = s[0] < 0 ? x : work + (long)nmax * s[0], *b = s[1] < 0 ? x : work + (long)nmax * "
        "s[1];\n");
    out(E, "        gemm_tile_acc<1, 0, %d, %d>(%d, %d, s0 * s[2], s1 * s[2], a, %d, b, %d, m0, n0, acc);\n", k->bm,
        k->bn, O, I, O, I);
    out(E, "    }\n");
    out(E, "    gemm_tile_atomic_add<%d, %d>(acc, %d, %d, m0, n0, G + %s, %d);   /* %s */\n", k->bm, k->bn, O, I,
        poff(E, v->param, ob), I, param_name(E, v->param));
    kernel_close(E);
}

/* Tile mode: a bias's gradient from every GRAD_B node of it: column sums over all their rows. */
static void emit_grad_b_sum(Emit *E, int ki) {
    char ob[OB]; /* poff() */
    const Kernel *k = &E->kernels[ki];
    const IrNode *v = member(E, k, 0);
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
    out(E, "    atomicAdd(G + %s + j, sum);   /* %s */\n", poff(E, v->param, ob), param_name(E, v->param));
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
    snprintf(what, sizeof what, "loss term %d (%s, weight w[%d]), a block per sample", v->aux, loss_names[l->kind],
             v->aux);
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
    out(E, "    const int s[8] = {%d, %d, %d, %d, %d, %d, %d, %d};\n", v->slots[0], v->slots[1], v->slots[2],
        v->slots[3], v->slots[4], v->slots[5], v->slots[6], v->slots[7]);
    out(E, "    dopri5_control(terms, s, %.17g, %.17g, %.17g);\n", v->vals[0], v->vals[1], v->vals[2]);
    if (v->aux) emit_landing(E->out, v, "    ");
    kernel_close(E);
}

static void emit_zero(Emit *E, int ki) {
    kernel_open(E, ki, E->train ? "zero the gradient and the loss terms" : "zero the Parareal terms");
    kernel_signature(E, ki);
    if (E->train)
        out(E,
            "    for (long i = (long)blockIdx.x * %d + threadIdx.x; i < %lldL; i += (long)gridDim.x * %d) G[i] = 0;\n",
            THREADS, (long long)E->m->n_weights, THREADS);
    out(E, "    if (blockIdx.x == 0)\n");
    out(E, "        for (int i = threadIdx.x; i < %d; i += %d) terms[i] = 0;\n", E->m->n_loss + monitor_count(E->m),
        THREADS);
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


int cuda_emit_kernel(Emit *E, int ki) {
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
