/* rng.c - splitmix64-seeded xoshiro256**, uniform and normal doubles, unbiased bounded
 * integers and the Fisher-Yates shuffle. See rng.h for the exact definitions: the draw
 * order is part of the interface (initialisation and shuffling must be reproducible from a
 * seed), so change nothing here without changing the tests that pin it. */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rng_seed(Rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int k = 0; k < 4; k++) r->s[k] = splitmix64(&x);
    /* splitmix64 is a bijection of its counter, so four outputs are never all zero. */
}

uint64_t rng_next_u64(Rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rng_uniform(Rng *r) { return (double)(rng_next_u64(r) >> 11) * 0x1.0p-53; }

uint64_t rng_below(Rng *r, uint64_t n) {
    if (n == 0) return 0;
    /* Values below 2^64 mod n would make the low residues more likely: draw again. */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = rng_next_u64(r);
        if (x >= threshold) return x % n;
    }
}

double rng_normal(Rng *r) {
    double u1 = 1.0 - rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = rng_uniform(r);
    const double two_pi = 6.283185307179586476925287; /* M_PI is not in C11 */
    return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}

void rng_permute(Rng *r, int64_t *idx, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(r, (uint64_t)i + 1);
        int64_t tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
    }
}

void rng_save(const Rng *r, uint64_t out[4]) {
    for (int k = 0; k < 4; k++) out[k] = r->s[k];
}

int rng_restore(Rng *r, const uint64_t in[4]) {
    if ((in[0] | in[1] | in[2] | in[3]) == 0) return -1;
    for (int k = 0; k < 4; k++) r->s[k] = in[k];
    return 0;
}
