/* rng.h: a small reproducible PRNG for dino-gen-poisson: splitmix64 seeding, xoshiro256**
 * stream, Box-Muller normals. The integer stream is identical everywhere for a given seed; the
 * normals also depend on libm's log, sin and cos (bit-identical with the same C library). */
#ifndef DINO_EXAMPLE_RNG_H
#define DINO_EXAMPLE_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
    double spare; /* second Box-Muller value */
    int has_spare;
} rng;

static inline uint64_t rng_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void rng_seed(rng *g, uint64_t seed) {
    for (int i = 0; i < 4; i++) g->s[i] = rng_splitmix64(&seed);
    g->has_spare = 0;
    g->spare = 0;
}

static inline uint64_t rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** */
static inline uint64_t rng_next(rng *g) {
    uint64_t *s = g->s;
    const uint64_t result = rng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return result;
}

/* Uniform in (0, 1]. */
static inline double rng_uniform(rng *g) { return (double)((rng_next(g) >> 11) + 1) * 0x1p-53; }

/* Standard normal (Box-Muller, both values used). */
static inline double rng_normal(rng *g) {
    if (g->has_spare) {
        g->has_spare = 0;
        return g->spare;
    }
    const double r = sqrt(-2.0 * log(rng_uniform(g)));
    const double th = 6.283185307179586476925 * rng_uniform(g);
    g->spare = r * sin(th);
    g->has_spare = 1;
    return r * cos(th);
}

#endif
