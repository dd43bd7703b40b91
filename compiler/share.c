/* share.c - pieces of generated code that are equal but for some numbers, written once.
 *
 * Every step of an ODE solve runs the same operations on other buffers, and so do the passes
 * that differentiate it: written out, a long solve is the same code again and again with other
 * numbers (buffer offsets, times, step sizes) and other node names. The emitters cut their
 * output into pieces (emit_c.c: the parts of a program; emit_cuda.c: the stages of a tile
 * kernel), and this file finds the pieces that are equal once their node names are made local
 * and their numbers are left out, so that an emitter writes such a piece once, as a function
 * of the numbers in which its instances differ, and each instance as a call.
 *
 * Rules (ShareRules): the node names are identifiers made of one of the letters `prefixes`
 * and digits (v12, t7); they become u0, u1, ... in order of appearance. With marked_only, the
 * only numbers that may differ are those the emitter wrote between backquotes (`144`): every
 * other number is part of the code (template arguments, array sizes) and must be equal;
 * without it, every number may differ. Identifiers that r->symbol says are named integer
 * constants may differ as numbers do. Comments do not count; they are kept, with
 * local names. */
#include "share.h"
#include "source.h"

#include <stdlib.h>
#include <string.h>

static int is_ident(int c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int is_node_name(const char *b, const char *e, const char *prefixes) {
    if (e - b < 2 || !strchr(prefixes, b[0])) return 0;
    for (const char *q = b + 1; q < e; q++)
        if (!is_digit(*q)) return 0;
    return 1;
}

/* The end of the number at s: 12, 0.5, 1e-05, 6.2500000000000003e-02 */
static const char *number_end(const char *s) {
    const char *b = s;
    while (is_ident(*s) || *s == '.' || ((*s == '+' || *s == '-') && s > b && (s[-1] == 'e' || s[-1] == 'E'))) s++;
    return s;
}

void share_scan(const char *s, FILE *out, ShareItem *key, const char *kind, const int *slot, const ShareRules *r) {
    int *names = NULL, n_names = 0, cap = 0, num = 0, comment = 0;
    while (*s) {
        if (!comment && s[0] == '/' && s[1] == '*') {
            if (key) {
                const char *end = strstr(s + 2, "*/");
                s = end ? end + 2 : s + strlen(s);
                continue;
            }
            comment = 1;
            fputs("/*", out);
            s += 2;
            continue;
        }
        if (comment && s[0] == '*' && s[1] == '/') {
            comment = 0;
            fputs("*/", out);
            s += 2;
            continue;
        }
        if (is_ident(*s) && !is_digit(*s)) {
            const char *b = s;
            while (is_ident(*s)) s++;
            if (r->symbol && !comment && r->symbol(b, (size_t)(s - b), r->ctx)) { /* a named constant */
                size_t len = (size_t)(s - b);
                if (key) {
                    if (key->n_nums == key->cap_nums)
                        key->nums =
                            realloc(key->nums,
                                    sizeof(char *) * (size_t)(key->cap_nums = key->cap_nums ? 2 * key->cap_nums : 64));
                    key->nums[key->n_nums++] = strndup(b, len);
                    fputc('#', out);
                } else {
                    if (kind && kind[num]) fprintf(out, r->param_format, kind[num], slot[num]);
                    else fwrite(b, 1, len, out);
                    num++;
                }
                continue;
            }
            if (!is_node_name(b, s, r->prefixes)) {
                fwrite(b, 1, (size_t)(s - b), out);
                continue;
            }
            int id = atoi(b + 1) * 8 + (int)(strchr(r->prefixes, b[0]) - r->prefixes), k = 0;
            while (k < n_names && names[k] != id) k++;
            if (k == n_names) {
                if (n_names == cap) names = realloc(names, sizeof(int) * (size_t)(cap = cap ? 2 * cap : 64));
                names[n_names++] = id;
            }
            fprintf(out, "u%d", k);
            continue;
        }
        int marked = *s == '`';
        if (marked || (is_digit(*s) && !r->marked_only)) { /* a number that may differ */
            const char *b = s + marked, *e = number_end(b + (marked && (*b == '-' || *b == '+')));
            size_t len = (size_t)(e - b);
            s = e + (marked && *e == '`');
            if (comment) {
                fwrite(b, 1, len, out);
            } else if (key) {
                if (key->n_nums == key->cap_nums)
                    key->nums = realloc(
                        key->nums, sizeof(char *) * (size_t)(key->cap_nums = key->cap_nums ? 2 * key->cap_nums : 64));
                key->nums[key->n_nums++] = strndup(b, len);
                fputc('#', out);
            } else {
                if (kind && kind[num]) fprintf(out, r->param_format, kind[num], slot[num]);
                else fwrite(b, 1, len, out);
                num++;
            }
            continue;
        }
        if (is_digit(*s)) { /* a number that is part of the code */
            const char *e = number_end(s);
            fwrite(s, 1, (size_t)(e - s), out);
            s = e;
            continue;
        }
        fputc(*s++, out);
    }
    free(names);
}

static int all_digits(const char *s, const ShareRules *r) {
    if (r->symbol && !is_digit(*s) && r->symbol(s, strlen(s), r->ctx)) return 1; /* an integer constant */
    for (; *s; s++)
        if (!is_digit(*s)) return 0;
    return 1;
}

int share_group(ShareItem *items, int n, const ShareRules *r) {
    for (int i = 0; i < n; i++) {
        size_t len;
        FILE *f = open_memstream(&items[i].key, &len);
        share_scan(items[i].text, f, &items[i], NULL, NULL, r);
        fclose(f);
    }
    size_t m = n > 0 ? (size_t)n : 1, size = 64;
    int shared = 0;
    while (size < 2 * m) size *= 2;
    int *table = malloc(sizeof(int) * size), *count = calloc(m + 1, sizeof(int));
    unsigned long *hash = malloc(sizeof(unsigned long) * m);
    for (size_t k = 0; k < size; k++) table[k] = -1;
    for (int i = 0; i < n; i++) {
        hash[i] = (unsigned long)hash_bytes(items[i].key, strlen(items[i].key), HASH_START);
        size_t k = hash[i] & (size - 1);
        while (table[k] >= 0 && (hash[table[k]] != hash[i] || strcmp(items[table[k]].key, items[i].key) != 0))
            k = (k + 1) & (size - 1);
        if (table[k] < 0) table[k] = i;
        items[i].group = table[k];
        items[i].index = count[table[k]]++;
    }
    for (int i = 0; i < n; i++) {
        ShareItem *g = &items[items[i].group];
        g->count = count[items[i].group];
        if (g->count < 2) {
            items[i].index = -1;
            continue;
        }
        if (items[i].group != i) continue;
        shared++;
        /* the numbers that differ within the group: integers (L) or reals (D) */
        g->kind = calloc((size_t)g->n_nums + 1, 1);
        g->slot = calloc((size_t)g->n_nums + 1, sizeof(int));
        for (int p = 0; p < g->n_nums; p++) {
            int varies = 0, ints = all_digits(g->nums[p], r);
            for (int j = i + 1; j < n; j++) {
                if (items[j].group != i) continue;
                varies |= strcmp(items[j].nums[p], g->nums[p]) != 0;
                ints &= all_digits(items[j].nums[p], r);
            }
            if (varies) g->kind[p] = ints ? 'L' : 'D', g->slot[p] = ints ? g->n_L++ : g->n_D++;
        }
    }
    free(table), free(count), free(hash);
    return shared;
}

void share_strip(const char *text, FILE *out, const ShareRules *r) {
    ShareRules keep = *r;
    keep.prefixes = ""; /* node names as they are */
    share_scan(text, out, NULL, NULL, NULL, &keep);
}

void share_free(ShareItem *items, int n) {
    for (int i = 0; i < n; i++) {
        free(items[i].text), free(items[i].key), free(items[i].kind), free(items[i].slot);
        for (int k = 0; k < items[i].n_nums; k++) free(items[i].nums[k]);
        free(items[i].nums);
    }
    free(items);
}
