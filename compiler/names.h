/* names.h - names from the model for generated code (names.c), so that a spec edit changes
 * the lines it should and not every line: values named by tensor, layer and role (q_1_act,
 * dq_1_mul), sizes by the dimension they are (q_0_dim), parameter offsets by the parameter
 * (P_q_1_weight).
 *
 * The emitters write node values as v12 (and CUDA registers as t12), as share.c expects when
 * it finds equal pieces of code; names_rename then renames them in the finished text. The
 * renaming is a bijection onto identifiers that the text does not otherwise use, so it changes
 * names only, never what the code computes. */
#ifndef DINO_NAMES_H
#define DINO_NAMES_H

#include <stdio.h>

#include "ir.h"

/* The sizes that have a name: the model's input and output dimensions and every layer's width
 * (the first layer with that width names it), and the products of two of them that the code
 * uses (q_dim_x_m_dim = q_dim * m_dim). */
enum { SIZE_NAMES_MAX = 128 };
typedef struct {
    int n, n_base; /* names; the first n_base are dimensions, the rest products */
    long val[SIZE_NAMES_MAX];
    int a[SIZE_NAMES_MAX], b[SIZE_NAMES_MAX]; /* a product's factors */
    char name[SIZE_NAMES_MAX][64];
} SizeNames;

void size_names(const Model *m, SizeNames *s);
/* v as the name of a size (q_0_dim), or the number. */
const char *size_text(const SizeNames *s, long v, char *buf, size_t len);
/* rows x dim as one identifier: the name of dim when rows is 1, a product's name (added when
 * new) when both have names and it fits an int, else the number. */
const char *size_product(SizeNames *s, long rows, long dim, char *buf, size_t len);
/* v as a term of a sum: a name, a product of two (a * b), or the number. */
const char *size_sum_text(const SizeNames *s, long v, char *buf, size_t len);
/* Whether [b, b + len) is one of the names. */
int size_is_name(const SizeNames *s, const char *b, size_t len);
/* The enum of the named sizes, one per line. */
void emit_size_table(FILE *out, const SizeNames *s);
/* Parameter i's offset as an identifier (P_q_1_weight), and the enum of all of them. */
const char *param_off_name(const Model *m, int i, char *buf, size_t len);
/* The parameters' offsets as an enum, each from the one before and its shape by names
 * (P_q_0_bias = P_q_0_weight + q_0_dim * m_dim), with its checkpoint name and shape. */
void emit_param_offsets(FILE *out, const Model *m, const SizeNames *sz);

/* Writes text with the node names of program p renamed: v<id> to the node's name, <c><id>
 * (c one of the other letters of prefixes, such as t) to <c>_<name>, and identifiers ending in
 * _v<id> (slot constants, row tables) to end in _<name>. */
void names_rename(FILE *out, const char *text, const Program *p, const char *prefixes);

/* Of the pieces of code a shared function does, the node that names it: the first node of
 * the piece of the lowest layer (parameter), then step, then id, so that adding a layer or a step
 * at the end leaves the name as it was (names.h). */
static inline int names_first(const IrNode *a, const IrNode *b) {
    int pa = a->param >= 0 ? a->param : 1 << 30, pb = b->param >= 0 ? b->param : 1 << 30;
    if (pa != pb) return pa < pb;
    if (a->step != b->step) return a->step < b->step;
    return a->id < b->id;
}

#endif
