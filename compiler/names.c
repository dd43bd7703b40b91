/* names.c - names from the model for generated code (see names.h). */
#include "names.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "ops.h"
#include "source.h"

/* An identifier from any text: characters outside [A-Za-z0-9_] become _. */
static void sanitize(char *dst, size_t len, const char *src) {
    size_t k = 0;
    if (src[0] >= '0' && src[0] <= '9' && k + 1 < len) dst[k++] = '_';
    for (; *src && k + 1 < len; src++) {
        char c = *src;
        dst[k++] = (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '_';
    }
    dst[k] = 0;
}

/* ---------------------------------------------------------------------------- sizes */

static int add_name(SizeNames *s, long v, const char *base, const char *suffix) {
    if (s->n == SIZE_NAMES_MAX) return -1;
    for (int k = 1;; k++) { /* a name no other size has */
        if (k == 1) snprintf(s->name[s->n], sizeof s->name[s->n], "%s%s", base, suffix);
        else snprintf(s->name[s->n], sizeof s->name[s->n], "%s%s%d", base, suffix, k);
        int clash = 0;
        for (int i = 0; i < s->n && !clash; i++) clash = !strcmp(s->name[i], s->name[s->n]);
        if (!clash) break;
    }
    s->a[s->n] = s->b[s->n] = -1;
    s->val[s->n] = v;
    return s->n++;
}

static void add_size(SizeNames *s, long v, const char *name, const char *suffix) {
    if (v <= 1) return;
    for (int i = 0; i < s->n; i++)
        if (s->val[i] == v) return;
    char base[24];
    sanitize(base, sizeof base, name);
    add_name(s, v, base, suffix);
}

void size_names(const Model *m, SizeNames *s) {
    s->n = 0;
    add_size(s, m->in_dim, m->input, "_dim");
    add_size(s, m->out_dim, m->output, "_dim");
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        char tag[40];
        snprintf(tag, sizeof tag, "%s", p->name);
        char *dot = strrchr(tag, '.');
        if (dot) *dot = 0;                                      /* q.1.weight -> q.1 */
        add_size(s, p->shape[0], tag, "_dim");                  /* a layer's width */
        if (p->ndim == 2) add_size(s, p->shape[1], tag, "_in"); /* what it reads */
    }
    s->n_base = s->n;
}

const char *size_text(const SizeNames *s, long v, char *buf, size_t len) {
    for (int i = 0; i < s->n_base; i++)
        if (s->val[i] == v) return s->name[i];
    snprintf(buf, len, "%ld", v);
    return buf;
}

const char *size_product(SizeNames *s, long rows, long dim, char *buf, size_t len) {
    if (rows == 1) return size_text(s, dim, buf, len);
    for (int i = 0; i < s->n; i++) /* one name per number, wherever it comes from */
        if (s->val[i] == rows * dim) return s->name[i];
    int a = -1, b = -1;
    for (int i = 0; i < s->n_base; i++) {
        if (s->val[i] == rows && a < 0) a = i;
        if (s->val[i] == dim && b < 0) b = i;
    }
    if (a < 0 || b < 0 || rows * dim > 2147483647L) {
        snprintf(buf, len, "%ld", rows * dim);
        return buf;
    }
    for (int i = s->n_base; i < s->n; i++)
        if (s->a[i] == a && s->b[i] == b) return s->name[i];
    char base[64];
    snprintf(base, sizeof base, "%.28s_x_%.28s", s->name[a], s->name[b]);
    int k = add_name(s, rows * dim, base, "");
    if (k < 0) {
        snprintf(buf, len, "%ld", rows * dim);
        return buf;
    }
    s->a[k] = a, s->b[k] = b;
    return s->name[k];
}

const char *size_sum_text(const SizeNames *s, long v, char *buf, size_t len) {
    for (int i = 0; i < s->n; i++)
        if (s->val[i] == v) return s->name[i];
    if (v > 1 && v <= 2147483647L)
        for (int i = 0; i < s->n_base; i++)
            for (int j = 0; j < s->n_base; j++)
                if (s->val[i] * s->val[j] == v) {
                    snprintf(buf, len, "%s * %s", s->name[i], s->name[j]);
                    return buf;
                }
    snprintf(buf, len, "%ld", v);
    return buf;
}

int size_is_name(const SizeNames *s, const char *b, size_t len) {
    for (int i = 0; i < s->n; i++)
        if (strlen(s->name[i]) == len && !memcmp(s->name[i], b, len)) return 1;
    return 0;
}

void emit_size_table(FILE *out, const SizeNames *s) {
    if (!s->n) return;
    fputs("/* sizes */\nenum {\n", out);
    for (int i = 0; i < s->n; i++) {
        if (s->a[i] >= 0) fprintf(out, "    %s = %s * %s,\n", s->name[i], s->name[s->a[i]], s->name[s->b[i]]);
        else fprintf(out, "    %s = %ld,\n", s->name[i], s->val[i]);
    }
    fputs("};\n\n", out);
}

const char *param_off_name(const Model *m, int i, char *buf, size_t len) {
    char base[200];
    sanitize(base, sizeof base, m->params[i].name);
    /* two names that sanitize alike (a.b and a_b) keep apart by their index */
    for (int k = 0; k < m->n_params; k++) {
        char other[200];
        if (k == i) continue;
        sanitize(other, sizeof other, m->params[k].name);
        if (!strcmp(other, base)) {
            snprintf(buf, len, "P%d_%s", i, base);
            return buf;
        }
    }
    snprintf(buf, len, "P_%s", base);
    return buf;
}

void emit_param_offsets(FILE *out, const Model *m, const SizeNames *sz) {
    if (!m->n_params) return;
    fputs("/* Parameters in the flat buffer P (and their gradients in G): offsets */\nenum {\n", out);
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        char b[256], prev[256], d0[128], d1[128];
        fprintf(out, "    %s = ", param_off_name(m, i, b, sizeof b));
        const Param *q = i ? &m->params[i - 1] : NULL;
        if (!q) fprintf(out, "%lld", (long long)p->offset);
        else if (q->offset + q->size == p->offset && q->ndim == 2)
            fprintf(out, "%s + %s * %s", param_off_name(m, i - 1, prev, sizeof prev),
                    size_text(sz, q->shape[0], d0, sizeof d0), size_text(sz, q->shape[1], d1, sizeof d1));
        else if (q->offset + q->size == p->offset)
            fprintf(out, "%s + %s", param_off_name(m, i - 1, prev, sizeof prev),
                    size_text(sz, q->shape[0], d0, sizeof d0));
        else fprintf(out, "%lld", (long long)p->offset);
        fputs(",   /* ", out);
        emit_comment_text(out, p->name);
        if (p->ndim == 2)
            fprintf(out, " [%s, %s] */\n", size_text(sz, p->shape[0], d0, sizeof d0),
                    size_text(sz, p->shape[1], d1, sizeof d1));
        else fprintf(out, " [%s] */\n", size_text(sz, p->shape[0], d0, sizeof d0));
    }
    fputs("};\n", out);
}

/* ---------------------------------------------------------------------------- node names */

/* A set of strings (open addressing). */
typedef struct {
    char **key;
    size_t cap, n;
} StrSet;

static size_t set_slot(const StrSet *s, const char *k, size_t len) {
    size_t h = (size_t)hash_bytes(k, len, HASH_START) & (s->cap - 1);
    while (s->key[h] && (strlen(s->key[h]) != len || memcmp(s->key[h], k, len) != 0)) h = (h + 1) & (s->cap - 1);
    return h;
}

static int set_has(const StrSet *s, const char *k, size_t len) { return s->cap && s->key[set_slot(s, k, len)] != NULL; }

static void set_add(StrSet *s, const char *k, size_t len) {
    if (2 * (s->n + 1) > s->cap) {
        StrSet g = {.cap = s->cap ? 2 * s->cap : 256};
        g.key = calloc(g.cap, sizeof(char *));
        for (size_t i = 0; i < s->cap; i++)
            if (s->key[i]) g.key[set_slot(&g, s->key[i], strlen(s->key[i]))] = s->key[i];
        free(s->key);
        *s = (StrSet){.key = g.key, .cap = g.cap, .n = s->n};
    }
    size_t h = set_slot(s, k, len);
    if (!s->key[h]) s->key[h] = strndup(k, len), s->n++;
}

static void set_free(StrSet *s) {
    for (size_t i = 0; i < s->cap; i++) free(s->key[i]);
    free(s->key);
}

static int is_ident(int c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* Whether [b, e) is <c><digits> with c in prefixes: returns the node id, else -1. */
static int node_token(const char *b, const char *e, const char *prefixes) {
    if (e - b < 2 || !strchr(prefixes, b[0]) || e - b > 10) return -1;
    for (const char *q = b + 1; q < e; q++)
        if (!is_digit(*q)) return -1;
    return atoi(b + 1);
}

/* Whether [b, e) ends in _v<digits> after something: returns where the v is, else NULL. */
static const char *suffix_token(const char *b, const char *e) {
    const char *q = e;
    while (q > b && is_digit(q[-1])) q--;
    if (q == e || e - q > 9 || q - b < 3 || q[-1] != 'v' || q[-2] != '_') return NULL;
    return q - 1;
}

/* The layer a node belongs to, for its name: its parameter's, else its operands'. */
static const char *node_tag(const Model *m, const IrNode *n, char **tag, char *buf, size_t len) {
    if (n->param >= 0) {
        sanitize(buf, len, m->params[n->param].name);
        char *u = strrchr(buf, '_');
        if (u && (!strcmp(u, "_weight") || !strcmp(u, "_bias"))) *u = 0;
        return buf;
    }
    if (n->op == IR_INPUT) return sanitize(buf, len, m->input ? m->input : "x"), buf;
    if (n->op == IR_DATA) return snprintf(buf, len, "data"), buf;
    /* an activation's derivative names the product it enters: the layer it goes back through */
    for (int k = 0; k < n->n_args; k++) {
        const IrNode *a = n->args[k];
        if (ir_op_is(a->op, OP_AUX_ACT) && tag[a->id] && tag[a->id][0]) return tag[a->id];
    }
    if (n->name && n->n_args == 0) return sanitize(buf, len, n->name), buf;
    for (int k = 0; k < n->n_args; k++)
        if (tag[n->args[k]->id] && tag[n->args[k]->id][0]) return tag[n->args[k]->id];
    return "";
}

static void lower_case(char *dst, size_t len, const char *src) {
    size_t k = 0;
    for (; *src && k + 1 < len; src++) dst[k++] = (char)(*src >= 'A' && *src <= 'Z' ? *src - 'A' + 'a' : *src);
    dst[k] = 0;
}

void names_rename(FILE *out, const char *text, const Program *p, const char *prefixes) {
    const Model *m = p->model;
    int N = p->nodes.n;
    /* every identifier of the text that is not a node's: names must not meet them */
    StrSet other = {0}, used = {0};
    int *seen = calloc((size_t)N + 1, sizeof(int));
    StrSet pre = {0}; /* the X of X_v<id> identifiers */
    for (const char *s = text; *s;) {
        if (!is_ident(*s) || is_digit(*s)) {
            if (is_digit(*s))
                while (is_ident(*s) || *s == '.') s++;
            else s++;
            continue;
        }
        const char *b = s;
        while (is_ident(*s)) s++;
        int id = node_token(b, s, prefixes);
        const char *v = id < 0 ? suffix_token(b, s) : NULL;
        if (id < 0 && v) id = atoi(v + 1), set_add(&pre, b, (size_t)(v - 1 - b));
        if (id >= 0 && id < N) seen[id] = 1;
        else set_add(&other, b, (size_t)(s - b));
    }
    static const char *const keywords[] = {
        "auto",     "break",  "case",     "char",   "const",  "continue", "default", "do",     "double",   "else",
        "enum",     "extern", "float",    "for",    "goto",   "if",       "inline",  "int",    "long",     "register",
        "restrict", "return", "short",    "signed", "sizeof", "static",   "struct",  "switch", "typedef",  "union",
        "unsigned", "void",   "volatile", "while",  "real",   "new",      "delete",  "this",   "template", "class"};
    for (size_t k = 0; k < sizeof keywords / sizeof *keywords; k++) set_add(&other, keywords[k], strlen(keywords[k]));

    /* names by node, in program order: <pass><layer>_<role>, made unique */
    char **tag = calloc((size_t)N + 1, sizeof(char *)), **name = calloc((size_t)N + 1, sizeof(char *));
    for (int i = 0; i < N; i++) {
        const IrNode *n = p->nodes.items[i];
        if (n->id < 0 || n->id >= N) continue;
        char tb[200], role[32], base[256];
        tag[n->id] = strdup(node_tag(m, n, tag, tb, sizeof tb));
        if (!seen[n->id]) continue;
        lower_case(role, sizeof role, ir_op_names[n->op]);
        if (n->op == IR_DATA)
            snprintf(role, sizeof role, "%s", n->aux == DATA_OUTPUT ? "y" : n->aux == DATA_JACOBIAN ? "J" : "label");
        if (ir_op_is(n->op, OP_AUX_ACT))
            snprintf(role, sizeof role, "%s",
                     ir_op_names[n->op][0] == 'A' ? "act"
                         : n->op == IR_DACT       ? "dact"
                                                  : "d2act");
        /* the Jacobian pass (j) and the gradient pass (d); f, f' and f'' of a value are primal */
        const char *pass = ir_op_is(n->op, OP_AUX_ACT) || n->op == IR_DATA || n->id < p->n_forward ? ""
            : n->id < p->n_primal                                                                  ? "j"
                                                                                                   : "d";
        const char *t = tag[n->id];
        if (t[0]) snprintf(base, sizeof base, "%s%s_%s", pass, t, role);
        else snprintf(base, sizeof base, "%s%s%s", pass, pass[0] ? "_" : "", role);
        if (n->step) {
            size_t l = strlen(base);
            snprintf(base + l, sizeof base - l, "_s%d", n->step);
        }
        /* unique, and none of its forms (t_name, X_name) meets another identifier */
        char cand[300], form[600];
        for (int k = 1;; k++) {
            if (k == 1) snprintf(cand, sizeof cand, "%s", base);
            else snprintf(cand, sizeof cand, "%s_%d", base, k);
            int clash = 0;
            for (const char *c = prefixes; *c && !clash; c++) {
                if (*c == 'v') snprintf(form, sizeof form, "%s", cand);
                else snprintf(form, sizeof form, "%c_%s", *c, cand);
                clash = set_has(&other, form, strlen(form)) || set_has(&used, form, strlen(form));
            }
            for (size_t h = 0; h < pre.cap && !clash; h++) {
                if (!pre.key[h]) continue;
                snprintf(form, sizeof form, "%s_%s", pre.key[h], cand);
                clash = set_has(&other, form, strlen(form)) || set_has(&used, form, strlen(form));
            }
            if (!clash) break;
        }
        for (const char *c = prefixes; *c; c++) {
            if (*c == 'v') snprintf(form, sizeof form, "%s", cand);
            else snprintf(form, sizeof form, "%c_%s", *c, cand);
            set_add(&used, form, strlen(form));
        }
        for (size_t h = 0; h < pre.cap; h++) {
            if (!pre.key[h]) continue;
            snprintf(form, sizeof form, "%s_%s", pre.key[h], cand);
            set_add(&used, form, strlen(form));
        }
        name[n->id] = strdup(cand);
    }

    /* the text, renamed */
    for (const char *s = text; *s;) {
        if (!is_ident(*s) || is_digit(*s)) {
            const char *b = s;
            if (is_digit(*s))
                while (is_ident(*s) || *s == '.') s++;
            else s++;
            fwrite(b, 1, (size_t)(s - b), out);
            continue;
        }
        const char *b = s;
        while (is_ident(*s)) s++;
        int id = node_token(b, s, prefixes);
        const char *v = id < 0 ? suffix_token(b, s) : NULL;
        if (id < 0 && v) id = atoi(v + 1);
        if (id < 0 || id >= N || !name[id]) {
            fwrite(b, 1, (size_t)(s - b), out);
        } else if (v) {
            fwrite(b, 1, (size_t)(v - b), out);
            fputs(name[id], out);
        } else if (b[0] == 'v') {
            fputs(name[id], out);
        } else {
            fprintf(out, "%c_%s", b[0], name[id]);
        }
    }
    for (int i = 0; i < N; i++) free(tag[i]), free(name[i]);
    free(tag), free(name), free(seen);
    set_free(&other), set_free(&used), set_free(&pre);
}
