/* test_init.c - ctest "runtime_init": init.c's default initialisation. Determinism for a
 * seed, the documented draw order (replayed here with rng.h), float == (float) double, the
 * truncation bound |w| <= 2 std, the sample statistics of a large layer, zero biases, and
 * that nothing outside the parameters is written. */
#include "harness.h"

#include "init.h"
#include "model.h"
#include "rng.h"

/* The std of N(0, 1) cut at +-2 (redrawn outside): sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)). */
#define TRUNC2_STD 0.87962566103423978

static Param weight(const char *name, int out, int in, int64_t offset) {
    return (Param){
        .name = name, .ndim = 2, .shape = {out, in}, .offset = offset, .size = (int64_t)out * in, .fan_in = in};
}

static Param bias(const char *name, int out, int64_t offset) {
    return (Param){.name = name, .ndim = 1, .shape = {out, 0}, .offset = offset, .size = out};
}

static void test_small(T *t) {
    /* w1 [2, 3], b1 [2], a gap of 2 untouched elements, w2 [1, 2], b2 [1]. */
    Param ps[4] = {weight("h.weight", 2, 3, 0), bias("h.bias", 2, 6), weight("q.weight", 1, 2, 10),
                   bias("q.bias", 1, 12)};
    double a[13], b[13];
    float f[13];
    for (int i = 0; i < 13; i++) a[i] = b[i] = f[i] = 99;
    init_params(ps, 4, a, 1, 123);
    init_params(ps, 4, b, 1, 123);
    init_params(ps, 4, f, 0, 123);
    CHECK(t, memcmp(a, b, sizeof a) == 0); /* deterministic */
    int same_f = 1;
    for (int i = 0; i < 13; i++) same_f &= f[i] == (float)a[i];
    CHECK(t, same_f);                                 /* the same draws in both precisions */
    CHECK(t, a[6] == 0 && a[7] == 0 && a[12] == 0);   /* biases */
    CHECK(t, a[8] == 99 && a[9] == 99 && f[8] == 99); /* the gap is left alone */

    /* The draw order of init.h, replayed: one stream, weights in order, row-major elements,
   * each redrawn until |z| <= 2, times sqrt(1 / fan_in). */
    Rng r;
    rng_seed(&r, 123);
    double want[13];
    int64_t at[6] = {0, 1, 2, 3, 4, 5}, at2[2] = {10, 11};
    for (int k = 0; k < 8; k++) {
        double z;
        do z = rng_normal(&r);
        while (fabs(z) > 2);
        if (k < 6) want[at[k]] = z * sqrt(1.0 / 3);
        else want[at2[k - 6]] = z * sqrt(1.0 / 2);
    }
    int order = 1;
    for (int k = 0; k < 6; k++) order &= a[at[k]] == want[at[k]];
    for (int k = 0; k < 2; k++) order &= a[at2[k]] == want[at2[k]];
    CHECK(t, order);

    /* Another seed, other weights. */
    init_params(ps, 4, b, 1, 124);
    CHECK(t, memcmp(a, b, 6 * sizeof(double)) != 0);
    /* fan_in 0 falls back to shape[1]. */
    Param nofan = weight("w", 2, 3, 0);
    nofan.fan_in = 0;
    init_params(&nofan, 1, b, 1, 123);
    CHECK(t, memcmp(a, b, 6 * sizeof(double)) == 0);
    /* No parameters: nothing happens. */
    init_params(NULL, 0, b, 1, 1);
}

static void test_large(T *t) {
    /* One layer [500, 800] (fan_in 800) and its bias [500]. */
    enum { OUT = 500, IN = 800 };
    Param ps[2] = {weight("big.weight", OUT, IN, 0), bias("big.bias", OUT, (int64_t)OUT * IN)};
    int64_t n = (int64_t)OUT * IN;
    for (int f64 = 0; f64 <= 1; f64++) {
        void *P = malloc((size_t)(n + OUT) * (f64 ? 8 : 4));
        if (!CHECK(t, P != NULL)) return;
        memset(P, 0xff, (size_t)(n + OUT) * (f64 ? 8 : 4)); /* NaN everywhere */
        init_params(ps, 2, P, f64, 2024);
        double std = sqrt(1.0 / IN), bound = 2 * std;
        float fbound = (float)bound;
        double sum = 0, sum2 = 0;
        int64_t outside = 0, beyond_1std = 0;
        for (int64_t k = 0; k < n; k++) {
            double w = f64 ? ((double *)P)[k] : ((float *)P)[k];
            if (f64 ? !(fabs(w) <= bound) : !(fabsf((float)w) <= fbound)) outside++;
            beyond_1std += fabs(w) > std;
            sum += w;
            sum2 += w * w;
        }
        CHECK(t, outside == 0); /* |w| <= 2 std, every one */
        double mean = sum / (double)n, sd = sqrt(sum2 / (double)n - mean * mean);
        CHECK(t, fabs(mean) < 0.01 * std);
        /* The sample std matches the truncated distribution's, TRUNC2_STD sqrt(1 / fan_in),
     * within 1 % (the sampling error at this size is about 0.1 %). */
        CHECK_NEAR(t, sd / std, TRUNC2_STD, 0.01);
        /* Its shape: P(|z| > 1 | |z| <= 2) = (0.954500 - 0.682689) / 0.954500 = 0.284768. */
        CHECK_NEAR(t, (double)beyond_1std / (double)n, 0.284768, 0.005);
        int zero_bias = 1;
        for (int64_t k = n; k < n + OUT; k++) zero_bias &= (f64 ? ((double *)P)[k] : ((float *)P)[k]) == 0;
        CHECK(t, zero_bias);
        free(P);
    }
}

int main(int argc, char **argv) {
    T t;
    if (t_begin(&t, argc, argv, "init")) return 1;
    test_small(&t);
    test_large(&t);
    return t_end(&t, "runtime_init");
}
