/* slots.h - the workspace slot pool of the emitters (slots.c). */
#ifndef DINO_SLOTS_H
#define DINO_SLOTS_H

/* Where node values live in an emitted program's workspace (per sample of the batch). A value
 * takes the best-fitting free range (sizes rounded up to 16 reals, 64 bytes in f32), or grows
 * the workspace at its end; a range released after the value's last use merges with free
 * neighbours. In `exact` mode (CUDA tile kernels, see fuse.c) a released slot is reused
 * only by a value of the same size. Shared by emit_c.c and fuse.c, which differ only in
 * when they release. */
typedef struct {
    long *off, *size; /* [n] slots (allocations) */
    char *in_use;
    int n, cap;
    int *slot_of;              /* node id -> slot, -1 none */
    long *free_off, *free_len; /* free ranges below work, by offset (not exact mode) */
    int n_free, cap_free;
    long work; /* workspace size so far, in reals per sample */
    int exact; /* reuse a slot only for a value of the same size (see fuse.c) */
} SlotPool;

void slots_init(SlotPool *s, int n_nodes);
long slots_take(SlotPool *s, int node, long size); /* the node's offset */
void slots_release(SlotPool *s, int node);         /* no-op when the node holds no slot */
void slots_free(SlotPool *s);

#endif
