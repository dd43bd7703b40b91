/* slots.c - the workspace slot pool (slots.h): where the emitters put node values. */
#include "slots.h"

#include <stdlib.h>
#include <string.h>

void slots_init(SlotPool *s, int n_nodes) {
    memset(s, 0, sizeof *s);
    s->slot_of = malloc(sizeof(int) * (size_t)(n_nodes > 0 ? n_nodes : 1));
    for (int i = 0; i < n_nodes; i++) s->slot_of[i] = -1;
}

static int new_slot(SlotPool *s) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->off = realloc(s->off, sizeof(long) * (size_t)s->cap);
        s->size = realloc(s->size, sizeof(long) * (size_t)s->cap);
        s->in_use = realloc(s->in_use, (size_t)s->cap);
    }
    return s->n++;
}

static long rounded(long size) { return (size + 15) / 16 * 16; }

/* exact mode: a free slot of the same size, else a new one at the end */
static long take_exact(SlotPool *s, int node, long size) {
    int best = -1;
    for (int i = 0; i < s->n && best < 0; i++)
        if (!s->in_use[i] && s->size[i] == size) best = i;
    if (best < 0) {
        best = new_slot(s);
        s->off[best] = s->work;
        s->size[best] = size;
        s->work += rounded(size);
    }
    s->in_use[best] = 1;
    s->slot_of[node] = best;
    return s->off[best];
}

static void remove_free(SlotPool *s, int i) {
    memmove(s->free_off + i, s->free_off + i + 1, sizeof(long) * (size_t)(s->n_free - i - 1));
    memmove(s->free_len + i, s->free_len + i + 1, sizeof(long) * (size_t)(s->n_free - i - 1));
    s->n_free--;
}

long slots_take(SlotPool *s, int node, long size) {
    if (s->exact) return take_exact(s, node, size);
    long need = rounded(size);
    int best = -1;
    for (int i = 0; i < s->n_free; i++)
        if (s->free_len[i] >= need && (best < 0 || s->free_len[i] < s->free_len[best])) best = i;
    int slot = new_slot(s);
    s->size[slot] = need;
    s->in_use[slot] = 1;
    s->slot_of[node] = slot;
    if (best >= 0) { /* the front of the best-fitting free range */
        s->off[slot] = s->free_off[best];
        s->free_off[best] += need;
        s->free_len[best] -= need;
        if (s->free_len[best] == 0) remove_free(s, best);
    } else if (s->n_free && s->free_off[s->n_free - 1] + s->free_len[s->n_free - 1] == s->work) {
        s->off[slot] = s->free_off[s->n_free - 1]; /* the free range at the end, grown */
        s->work = s->off[slot] + need;
        remove_free(s, s->n_free - 1);
    } else {
        s->off[slot] = s->work;
        s->work += need;
    }
    return s->off[slot];
}

void slots_release(SlotPool *s, int node) {
    int slot = s->slot_of[node];
    if (slot < 0 || !s->in_use[slot]) return;
    s->in_use[slot] = 0;
    if (s->exact) return;
    long off = s->off[slot], len = s->size[slot];
    int i = 0;
    while (i < s->n_free && s->free_off[i] < off) i++;
    if (i > 0 && s->free_off[i - 1] + s->free_len[i - 1] == off) { /* merge with the one before */
        s->free_len[i - 1] += len;
        if (i < s->n_free && off + len == s->free_off[i]) s->free_len[i - 1] += s->free_len[i], remove_free(s, i);
        return;
    }
    if (i < s->n_free && off + len == s->free_off[i]) { /* with the one after */
        s->free_off[i] = off;
        s->free_len[i] += len;
        return;
    }
    if (s->n_free == s->cap_free) {
        s->cap_free = s->cap_free ? 2 * s->cap_free : 64;
        s->free_off = realloc(s->free_off, sizeof(long) * (size_t)s->cap_free);
        s->free_len = realloc(s->free_len, sizeof(long) * (size_t)s->cap_free);
    }
    memmove(s->free_off + i + 1, s->free_off + i, sizeof(long) * (size_t)(s->n_free - i));
    memmove(s->free_len + i + 1, s->free_len + i, sizeof(long) * (size_t)(s->n_free - i));
    s->free_off[i] = off;
    s->free_len[i] = len;
    s->n_free++;
}

void slots_free(SlotPool *s) {
    free(s->off), free(s->size), free(s->in_use), free(s->slot_of), free(s->free_off), free(s->free_len);
    memset(s, 0, sizeof *s);
}
