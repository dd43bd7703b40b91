/* share.h - generated code that is equal but for some numbers, written once (share.c). */
#ifndef DINO_SHARE_H
#define DINO_SHARE_H

#include <stdio.h>

typedef struct {
    const char *prefixes;     /* letters of node names: "v" (v12), "vt" (v12, t7) */
    int marked_only;          /* only `backquoted` numbers may differ */
    const char *param_format; /* a differing number in the shared code: "%c[%d]" -> L[3], D[0] */
    /* identifiers that are integer constants and may differ like numbers (emit_c.c's sizes,
       parameter and slot offsets: q_0_dim, P_q_1_weight, wt_v12); NULL: none */
    int (*symbol)(const char *name, size_t len, const void *ctx);
    const void *ctx;
} ShareRules;

/* One piece of code (an emitter's part or stage). share_group fills everything but text. */
typedef struct {
    char *text;  /* the code as the emitter wrote it (malloc'd) */
    char *key;   /* comments left out, node names local, differing numbers as '#' */
    char **nums; /* the numbers that may differ, in order */
    int n_nums, cap_nums;
    int group;  /* the first piece with the same key */
    int index;  /* its instance number in the group; -1: the only one */
    int count;  /* the first of a group: its instances */
    char *kind; /* the first of a group, per number: 'L' (integers), 'D' (reals) where
                                   the instances differ, 0 where all are equal */
    int *slot;  /* the first of a group, per differing number: its index in L or D */
    int n_L, n_D;
} ShareItem;

/* Groups items[0 .. n) by key. Returns the number of groups of two or more. */
int share_group(ShareItem *items, int n, const ShareRules *r);
/* Writes the shared code of group g (items[g].text with local names and the differing numbers
 * as parameters), or with kind == NULL an item's own code; the backquotes go. */
void share_scan(const char *text, FILE *out, ShareItem *key, const char *kind, const int *slot, const ShareRules *r);
/* An item's code as it stands, without the backquotes. */
void share_strip(const char *text, FILE *out, const ShareRules *r);
void share_free(ShareItem *items, int n);

#endif
