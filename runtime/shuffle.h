/* shuffle.h - an epoch's order of the training rows (train.c), as the train section's `shuffle`
 * setting asks: all rows shuffled (`shuffle rows`, the default), or blocks of consecutive rows
 * visited in random order with the rows shuffled within windows (`shuffle blocks B window W`), so
 * that an epoch reads a memory-mapped file nearly sequentially.
 *
 * Both draw only from the Rng they are given, so an order is a function of the RNG state, the
 * row count and the setting: the same on every process of a data-parallel run, and the same again
 * when a checkpoint (which saves the RNG before each epoch's shuffle) resumes. */
#ifndef DINO_SHUFFLE_H
#define DINO_SHUFFLE_H

#include <stdint.h>

#include "rng.h"

/* Fills idx[0..n) with an order of the rows 0..n-1.
 *   block 0:  0..n-1 shuffled by rng_permute (the full row shuffle of every release so far).
 *   block B:  the blocks [0, B), [B, 2B), ... (the last may be shorter) in an order drawn by
 *             rng_permute over the block numbers, their rows concatenated in that order; then each
 *             run of `window` consecutive places, [0, W), [W, 2W), ..., is shuffled by rng_permute
 *             (window 0 means W = B). With W = B and B dividing n every window is one block's
 *             rows; W < B keeps each window inside a block; W > B mixes rows of about W / B
 *             consecutively visited blocks.
 * Uses no memory beyond idx. n >= 0, block >= 0, window >= 0. */
void shuffle_rows(Rng *r, int64_t *idx, int64_t n, int64_t block, int64_t window);

#endif
