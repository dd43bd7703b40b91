/* rng.h - the runtime's seeded pseudo-random numbers: parameter initialisation (init.c) and
 * the per-epoch shuffle of the training rows (train.c).
 *
 * Generator: xoshiro256** (Blackman & Vigna), its 256-bit state seeded from one 64-bit seed
 * by four successive outputs of splitmix64, as the authors recommend. The whole state is the
 * four words in Rng.s, so a checkpoint saves and restores it exactly (TrainState.rng).
 * Nothing here is cryptographic, and nothing here keeps hidden state: rng_normal draws two
 * uniforms per call (no cached second Box-Muller value), so s[4] is all there is. */
#ifndef DINO_RNG_H
#define DINO_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4]; /* xoshiro256** state; never all zero once seeded */
} Rng;

/* s[k] = the (k+1)-th output of splitmix64 started at seed, k = 0..3. */
void rng_seed(Rng *r, uint64_t seed);

/* The next 64 random bits (xoshiro256**). */
uint64_t rng_next_u64(Rng *r);

/* A double in [0, 1): the top 53 bits of one rng_next_u64, times 2^-53. */
double rng_uniform(Rng *r);

/* A uniform integer in [0, n), without modulo bias (rejection); n >= 1. Uses one or, rarely,
 * more rng_next_u64 draws. Returns 0 for n == 0. */
uint64_t rng_below(Rng *r, uint64_t n);

/* A standard normal double, Box-Muller: u1 = 1 - rng_uniform (in (0, 1]), then
 * u2 = rng_uniform, result sqrt(-2 ln u1) * cos(2 pi u2). Exactly two draws per call. */
double rng_normal(Rng *r);

/* Fisher-Yates shuffle of idx[0..n) in place: for i = n-1 down to 1, swap idx[i] with
 * idx[rng_below(i + 1)]. Fill idx with 0..n-1 first for a uniformly random permutation;
 * shuffling the previous epoch's order again is just as uniform. */
void rng_permute(Rng *r, int64_t *idx, int64_t n);

/* Copy the state out (for a checkpoint) and back in. rng_restore refuses an all-zero state
 * (xoshiro would output zeros forever): returns -1 and leaves r unchanged; else 0. */
void rng_save(const Rng *r, uint64_t out[4]);
int rng_restore(Rng *r, const uint64_t in[4]);

#endif
