/* emit_c.c - IR programs -> C source for the CPU backend.
 *
 * The generated file has the fixed prelude (prelude_c.h: precision, activations, the matrix
 * multiply), then one function per program: dino_predict (output and Jacobian) and
 * dino_train_step (forward, Jacobian, loss, gradient: one fused pass per batch). Each IR
 * node becomes one commented block that runs it for the whole batch: layers and their
 * adjoints become matrix multiplies over batch x rows, everything else simple loops.
 *
 * Node values live in one workspace. A node's buffer is released after its last use and
 * reused by a later node of the same or smaller size, so memory follows what is live, not
 * the length of the program. */
#include "emit.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "prelude_c.inc"

uint64_t hash_bytes(const void *data, size_t len, uint64_t h) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

typedef struct {
    FILE *out;
    const Model *m;
    const Program *p;
    long *offset;           /* node id -> offset in the workspace, per sample; -1 none */
    long work;              /* workspace per sample, in reals */
} Emit;

static void line(Emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(Emit *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("    ", e->out);
    vfprintf(e->out, fmt, ap);
    fputc('\n', e->out);
    va_end(ap);
}

/* ---------------------------------------------------------------------------- buffers */

static int has_buffer(const IrNode *n) {
    return n->op != IR_INPUT && n->op != IR_DATA && n->op != IR_GRAD_W && n->op != IR_GRAD_B;
}

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
    for (int k = 0; k < n_keep; k++) last[keep[k]->id] = live->n;   /* outputs stay to the end */

    enum { MAX_SLOTS = 4096 };
    long slot_off[MAX_SLOTS], slot_size[MAX_SLOTS];
    int slot_free[MAX_SLOTS], n_slots = 0;
    int *slot_of = calloc((size_t)n_nodes, sizeof(int));
    for (int i = 0; i < live->n; i++) {
        const IrNode *n = live->items[i];
        if (has_buffer(n)) {
            long size = (long)n->rows * n->dim;
            int best = -1;
            for (int s = 0; s < n_slots; s++)
                if (slot_free[s] && slot_size[s] >= size && (best < 0 || slot_size[s] < slot_size[best])) best = s;
            if (best < 0 && n_slots < MAX_SLOTS) {
                best = n_slots++;
                slot_off[best] = e->work;
                slot_size[best] = size;
                e->work += (size + 15) / 16 * 16;
            } else if (best < 0) { /* out of slots: a fresh region */
                e->offset[n->id] = e->work;
                e->work += (size + 15) / 16 * 16;
                slot_of[n->id] = -1;
                continue;
            }
            slot_free[best] = 0;
            slot_of[n->id] = best;
            e->offset[n->id] = slot_off[best];
        }
        for (int k = 0; k < n->n_args; k++) {
            const IrNode *a = n->args[k];
            if (last[a->id] == i && e->offset[a->id] >= 0 && slot_of[a->id] >= 0) slot_free[slot_of[a->id]] = 1;
        }
    }
    free(slot_of);
    free(last);
}

/* ---------------------------------------------------------------------------- one node */

static const char *param_name(const Emit *e, int i) { return e->m->params[i].name; }

static void ref(const IrNode *n, char *buf, size_t len) {
    if (n->op == IR_INPUT) snprintf(buf, len, "x");
    else if (n->op == IR_DATA) snprintf(buf, len, "%s", n->aux == DATA_OUTPUT ? "y" : n->aux == DATA_JACOBIAN ? "J" : "label");
    else snprintf(buf, len, "v%d", n->id);
}

static void emit_elementwise(Emit *e, const IrNode *n, const char *a, const char *expr) {
    line(e, "#pragma omp parallel for simd if ((long)n * %d > PAR_MIN)", n->rows * n->dim);
    line(e, "for (long i = 0; i < (long)n * %d; i++) { real x = %s[i]; v%d[i] = %s; }", n->rows * n->dim, a, n->id, expr);
}

/* Loops over batch b and row r with pointers pa, pb, py to the rows of a, b and the result. */
static void open_rows(Emit *e, const IrNode *n) {
    line(e, "#pragma omp parallel for if ((long)n * %d > PAR_MIN)", n->rows * n->dim);
    line(e, "for (long b = 0; b < n; b++)");
    line(e, "for (long r = 0; r < %d; r++) {", n->rows);
    line(e, "    real *py = v%d + (b * %d + r) * %d;", n->id, n->rows, n->dim);
}

static void row_ptr(Emit *e, const char *var, const char *name, const IrNode *a) {
    (void)0;
    line(e, "    const real *%s = %s + (b * %d + %s) * %d;", var, name, a->rows, a->rows > 1 ? "r" : "0", a->dim);
}

static void emit_loss(Emit *e, const IrNode *n, const char *a) {
    const LossTerm *l = &e->m->loss[n->aux];
    int i = n->aux;
    line(e, "{");
    line(e, "    double total = 0;");
    line(e, "    for (long b = 0; b < n; b++) {");
    if (l->kind == LOSS_CROSS_ENTROPY) {
        int D = n->dim;
        line(e, "        const real *p = %s + b * %d;", a, D);
        line(e, "        real *s = v%d + b * %d;", n->id, D);
        line(e, "        double mx = p[0], z = 0;");
        line(e, "        for (int j = 1; j < %d; j++) if (p[j] > mx) mx = p[j];", D);
        line(e, "        for (int j = 0; j < %d; j++) z += exp(p[j] - mx);", D);
        line(e, "        total += mx + log(z) - p[label[b]];");
        line(e, "        double coef = w[%d] / n;", i);
        line(e, "        for (int j = 0; j < %d; j++) s[j] = (real)(coef * (exp(p[j] - mx) / z - (j == label[b])));", D);
    } else {
        int size = n->rows * n->dim;
        const char *data = l->kind == LOSS_H1 ? "J" : "y";
        line(e, "        const real *p = %s + b * %d, *d = %s + b * %d;", a, size, data, size);
        line(e, "        real *s = v%d + b * %d;", n->id, size);
        line(e, "        double e2 = 0, d2 = 0;");
        if (n->transposed) { /* prediction [in, out], data [out, in] */
            int R = n->rows, D = n->dim;
            line(e, "        for (int i = 0; i < %d; i++) for (int o = 0; o < %d; o++) {", R, D);
            line(e, "            double dv = d[o * %d + i], ev = p[i * %d + o] - dv;", R, D);
            line(e, "            e2 += ev * ev; d2 += dv * dv;");
            line(e, "        }");
        } else {
            line(e, "        for (int j = 0; j < %d; j++) { double ev = p[j] - d[j]; e2 += ev * ev; d2 += (double)d[j] * d[j]; }", size);
        }
        line(e, "        double den = %s;", l->relative ? "d2 > 1e-300 ? d2 : 1e-300" : "1");
        line(e, "        total += e2 / den;");
        line(e, "        double coef = 2 * w[%d] / (n * den);", i);
        if (n->transposed)
            line(e, "        for (int i = 0; i < %d; i++) for (int o = 0; o < %d; o++) s[i * %d + o] = (real)(coef * (p[i * %d + o] - d[o * %d + i]));",
                 n->rows, n->dim, n->dim, n->dim, n->rows);
        else
            line(e, "        for (int j = 0; j < %d; j++) s[j] = (real)(coef * (p[j] - d[j]));", size);
    }
    line(e, "    }");
    line(e, "    terms[%d] = total / n;", i);
    line(e, "}");
}

static void emit_node(Emit *e, const IrNode *n) {
    char a[32] = "", b[32] = "";
    if (n->n_args > 0) ref(n->args[0], a, sizeof a);
    if (n->n_args > 1) ref(n->args[1], b, sizeof b);
    const IrNode *A = n->n_args > 0 ? n->args[0] : NULL, *B = n->n_args > 1 ? n->args[1] : NULL;
    int R = n->rows, D = n->dim;

    fprintf(e->out, "\n    /* v%d = %s", n->id, ir_op_names[n->op]);
    for (int k = 0; k < n->n_args; k++) fprintf(e->out, " v%d", n->args[k]->id);
    if (n->param >= 0) fprintf(e->out, " %s", param_name(e, n->param));
    if (n->param2 >= 0) fprintf(e->out, " + %s", param_name(e, n->param2));
    if (D) fprintf(e->out, "   (n, %d, %d)", R, D);
    if (n->name && n->op != IR_PROJECT && n->op != IR_PROJECT_T) fprintf(e->out, "   %s", n->name);
    fputs(" */\n", e->out);
    if (has_buffer(n)) line(e, "real *restrict v%d = work + (long)nmax * %ld;", n->id, e->offset[n->id]);

    const Param *w = n->param >= 0 ? &e->m->params[n->param] : NULL;
    switch (n->op) {
    case IR_INPUT:
    case IR_DATA: break;
    case IR_CONST:
        line(e, "for (long i = 0; i < (long)n * %d; i++) v%d[i] = %.17g;", R * D, n->id, n->c);
        break;
    case IR_EYE:
        line(e, "memset(v%d, 0, sizeof(real) * (size_t)n * %d);", n->id, R * D);
        line(e, "for (long b = 0; b < n; b++) for (int i = 0; i < %d; i++) v%d[(b * %d + i) * %d + i] = 1;", R, n->id, R, D);
        break;
    case IR_LINEAR:
        line(e, "gemm(0, 1, (long)n * %d, %d, %d, %s, %d, P + %lld, %d, v%d, %d, 0);", R, D, A->dim, a, A->dim,
             (long long)w->offset, w->shape[1], n->id, D);
        if (n->param2 >= 0) {
            line(e, "for (long i = 0; i < (long)n * %d; i++)", R);
            line(e, "    for (int j = 0; j < %d; j++) v%d[i * %d + j] += P[%lld + j];", D, n->id, D,
                 (long long)e->m->params[n->param2].offset);
        }
        break;
    case IR_LINEAR_T:
        line(e, "gemm(0, 0, (long)n * %d, %d, %d, %s, %d, P + %lld, %d, v%d, %d, 0);", R, D, A->dim, a, A->dim,
             (long long)w->offset, w->shape[1], n->id, D);
        break;
    case IR_PROJECT:
    case IR_PROJECT_T: {
        /* the fixed matrix is emitted once per file as proj_<index>; see emit_projects */
        int k = n->aux;
        if (n->op == IR_PROJECT)
            line(e, "gemm(0, 1, (long)n * %d, %d, %d, %s, %d, proj_%d, %d, v%d, %d, 0);", R, D, A->dim, a, A->dim, k, A->dim, n->id, D);
        else
            line(e, "gemm(0, 0, (long)n * %d, %d, %d, %s, %d, proj_%d, %d, v%d, %d, 0);", R, D, A->dim, a, A->dim, k, D, n->id, D);
        break;
    }
    case IR_ACT:
    case IR_DACT:
    case IR_D2ACT: {
        char expr[64];
        snprintf(expr, sizeof expr, "%sact_%s(x)", n->op == IR_ACT ? "" : n->op == IR_DACT ? "d" : "d2",
                 activation_names[n->aux]);
        emit_elementwise(e, n, a, expr);
        break;
    }
    case IR_ADD:
    case IR_SUB:
        line(e, "#pragma omp parallel for simd if ((long)n * %d > PAR_MIN)", R * D);
        line(e, "for (long i = 0; i < (long)n * %d; i++) v%d[i] = %s[i] %c %s[i];", R * D, n->id, a,
             n->op == IR_ADD ? '+' : '-', b);
        break;
    case IR_SCALE: {
        char expr[64];
        snprintf(expr, sizeof expr, "(real)%.17g * x", n->c);
        emit_elementwise(e, n, a, expr);
        break;
    }
    case IR_ADDC: {
        char expr[64];
        snprintf(expr, sizeof expr, "x + (real)%.17g", n->c);
        emit_elementwise(e, n, a, expr);
        break;
    }
    case IR_MUL:
        if (A->rows == R && A->dim == D && B->rows == R && B->dim == D) {
            line(e, "#pragma omp parallel for simd if ((long)n * %d > PAR_MIN)", R * D);
            line(e, "for (long i = 0; i < (long)n * %d; i++) v%d[i] = %s[i] * %s[i];", R * D, n->id, a, b);
            break;
        }
        open_rows(e, n);
        row_ptr(e, "pa", a, A);
        row_ptr(e, "pb", b, B);
        line(e, "    for (int j = 0; j < %d; j++) py[j] = pa[%s] * pb[%s];", D, A->dim > 1 ? "j" : "0", B->dim > 1 ? "j" : "0");
        line(e, "}");
        break;
    case IR_CONCAT:
        open_rows(e, n);
        for (int k = 0, off = 0; k < n->n_args; off += n->args[k]->dim, k++) {
            char name[32];
            ref(n->args[k], name, sizeof name);
            line(e, "    { const real *pa = %s + (b * %d + %s) * %d; memcpy(py + %d, pa, sizeof(real) * %d); }", name,
                 n->args[k]->rows, n->args[k]->rows > 1 ? "r" : "0", n->args[k]->dim, off, n->args[k]->dim);
        }
        line(e, "}");
        break;
    case IR_SLICE:
        open_rows(e, n);
        row_ptr(e, "pa", a, A);
        line(e, "    memcpy(py, pa + %d, sizeof(real) * %d);", n->aux, D);
        line(e, "}");
        break;
    case IR_PAD:
        open_rows(e, n);
        row_ptr(e, "pa", a, A);
        line(e, "    memset(py, 0, sizeof(real) * %d);", D);
        line(e, "    memcpy(py + %d, pa, sizeof(real) * %d);", n->aux, A->dim);
        line(e, "}");
        break;
    case IR_SUMROWS:
        line(e, "for (long b = 0; b < n; b++)");
        line(e, "    for (int j = 0; j < %d; j++) {", D);
        line(e, "        real s = 0;");
        line(e, "        for (int r = 0; r < %d; r++) s += %s[(b * %d + r) * %d + j];", A->rows, a, A->rows, D);
        line(e, "        v%d[b * %d + j] = s;", n->id, D);
        line(e, "    }");
        break;
    case IR_SUMDIM:
        line(e, "for (long i = 0; i < (long)n * %d; i++) {", R);
        line(e, "    real s = 0;");
        line(e, "    for (int j = 0; j < %d; j++) s += %s[i * %d + j];", A->dim, a, A->dim);
        line(e, "    v%d[i] = s;", n->id);
        line(e, "}");
        break;
    case IR_BCAST_ROWS:
        open_rows(e, n);
        row_ptr(e, "pa", a, A);
        line(e, "    memcpy(py, pa, sizeof(real) * %d);", D);
        line(e, "}");
        break;
    case IR_BCAST_DIM:
        open_rows(e, n);
        row_ptr(e, "pa", a, A);
        line(e, "    for (int j = 0; j < %d; j++) py[j] = pa[0];", D);
        line(e, "}");
        break;
    case IR_LOSS: emit_loss(e, n, a); break;
    case IR_GRAD_W:
        /* G[out, in] += a^T b over batch x rows: a (n*R, out), b (n*R, in) */
        line(e, "gemm(1, 0, %d, %d, (long)n * %d, %s, %d, %s, %d, G + %lld, %d, 1);", w->shape[0], w->shape[1],
             A->rows, a, A->dim, b, B->dim, (long long)w->offset, w->shape[1]);
        break;
    case IR_GRAD_B:
        line(e, "for (long i = 0; i < (long)n * %d; i++)", A->rows);
        line(e, "    for (int j = 0; j < %d; j++) G[%lld + j] += %s[i * %d + j];", A->dim, (long long)w->offset, a, A->dim);
        break;
    case IR_OP_COUNT: break;
    }
}

/* ---------------------------------------------------------------------------- programs */

static void emit_program(Emit *e, const Program *p, int train) {
    Arena tmp = {0};
    PtrVec live = {0};
    ir_live(p, &live, &tmp);
    e->p = p;
    e->work = 0;
    const IrNode *keep[2] = {p->output, p->jacobian};
    assign_buffers(e, &live, keep, p->jacobian ? 2 : 1);
    const char *name = train ? "train" : "predict";
    fprintf(e->out, "\n/* ---------------------------------------------------------------------------- %s */\n\n", name);
    fprintf(e->out, "long dino_%s_work(int nmax) { return (long)nmax * %ld; }\n\n", name, e->work);
    if (train)
        fprintf(e->out, "void dino_train_step(const real *restrict P, real *restrict G, int n, int nmax, const real *restrict x,\n"
                        "                     const real *restrict y, const real *restrict J, const int32_t *restrict label,\n"
                        "                     const double *restrict w, double *restrict terms, real *restrict work) {\n"
                        "    (void)y; (void)J; (void)label; (void)w; (void)terms;\n"
                        "    memset(G, 0, sizeof(real) * %lld);\n", (long long)e->m->n_weights);
    else
        fprintf(e->out, "void dino_predict(const real *restrict P, int n, int nmax, const real *restrict x, real *restrict y,\n"
                        "                  real *restrict J, real *restrict work) {\n");
    for (int i = 0; i < live.n; i++) emit_node(e, live.items[i]);
    if (!train) {
        char o[32];
        ref(p->output, o, sizeof o);
        int out = e->m->out_dim, in = e->m->in_dim;
        fprintf(e->out, "\n    /* results: y (n, %d)%s */\n", out, p->jacobian ? ", J (n, out, in)" : "");
        line(e, "memcpy(y, %s, sizeof(real) * (size_t)n * %d);", o, out);
        if (p->jacobian) {
            char j[32];
            ref(p->jacobian, j, sizeof j);
            line(e, "if (J) {");
            if (p->jac_forward)
                line(e, "    for (long b = 0; b < n; b++) for (int o = 0; o < %d; o++) for (int i = 0; i < %d; i++)\n"
                        "        J[(b * %d + o) * %d + i] = %s[(b * %d + i) * %d + o];", out, in, out, in, j, in, out);
            else
                line(e, "    memcpy(J, %s, sizeof(real) * (size_t)n * %d);", j, out * in);
            line(e, "}");
        }
    }
    fputs("}\n", e->out);
    free(e->offset);
    arena_free(&tmp);
}

int emit_c(FILE *out, const Model *m, const Programs *pr, const EmitOptions *opt, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    Emit e = {.out = out, .m = m};
    fprintf(out, "/* Generated by dinoc from %s (spec hash %016llx): the CPU backend of model '%s'.\n"
                 " * %d -> %d, %d parameter tensors, %lld parameters, %s. Regenerate instead of editing. */\n",
            m->path, (unsigned long long)opt->spec_hash, m->name, m->in_dim, m->out_dim, m->n_params,
            (long long)m->n_weights, opt->f64 ? "f64" : "f32");
    fprintf(out, "#define DINO_REAL %s\n", opt->f64 ? "double" : "float");
    fputs(prelude_c, out);
    fputs("\n/* ---------------------------------------------------------------------------- interface */\n\n", out);
    fprintf(out, "const int dino_abi = %d;\nconst int dino_in = %d, dino_out = %d, dino_f64 = %d;\n", DINO_C_ABI,
            m->in_dim, m->out_dim, opt->f64);
    fprintf(out, "const long dino_n_params = %lld;\nconst unsigned long long dino_spec_hash = 0x%016llxull;\n\n",
            (long long)m->n_weights, (unsigned long long)opt->spec_hash);
    fputs("/* Parameters in the flat buffer P (and their gradients in G):\n", out);
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        if (p->ndim == 2)
            fprintf(out, " *   %-24s [%d, %d] at %lld\n", p->name, p->shape[0], p->shape[1], (long long)p->offset);
        else
            fprintf(out, " *   %-24s [%d] at %lld\n", p->name, p->shape[0], (long long)p->offset);
    }
    fputs(" */\n", out);
    emit_program(&e, &pr->predict, 0);
    emit_program(&e, &pr->train, 1);
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
