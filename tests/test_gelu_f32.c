/* test_gelu_f32.c - prelude_c.h's f32 gelu (the inlined, vectorised phi and Phi) against the
 * libm formulas of activations.def that it replaced (phi_libm, Phi_libm), through the batch
 * loops the generated code calls (ew_act_gelu, ew_dact_gelu, ew_d2act_gelu), compiled as
 * dino-jit compiles generated code.
 *
 * On [-5, 8] (where the libm formulas are accurate to float) the results must be the same but
 * for a few inputs in a million, and those at most 2 ulp apart. Below -5 the libm formula's
 * 0.5 (1 + erf) loses Phi's digits (it is 0 from -8.3 on), so there the new values are checked
 * against 0.5 erfc(-x / sqrt 2) in double instead, to 2 ulp, down to -37.5 (beyond, both are
 * 0). Above 8 both are x (gelu) and 1 (its derivative). inf, -inf and NaN give what they gave.
 *
 * usage: test_gelu_f32 [--all]   (--all: every float in [-37.5, 8], a few minutes; by default
 * every 61st) */
#include <stdio.h>

#include "prelude_c.h"

enum { CHUNK = 4096 };

static long long ulps(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    if (ia < 0) ia = INT32_MIN - ia;
    if (ib < 0) ib = INT32_MIN - ib;
    long long d = (long long)ia - ib;
    return d < 0 ? -d : d;
}

static float act_old(float x) { return x * Phi_libm(x); }
static float dact_old(float x) { return Phi_libm(x) + x * phi_libm(x); }
static float d2act_old(float x) { return phi_libm(x) * (2 - x * x); }
/* the same formulas on Phi from erfc (accurate where Phi is small) */
static float Phi_erfc(float x) { return (float)(0.5 * erfc(-(double)x * SQRT_2_INV)); }
static float act_erfc(float x) { return x * Phi_erfc(x); }
static float dact_erfc(float x) { return Phi_erfc(x) + x * phi_libm(x); }

int main(int argc, char **argv) {
    uint32_t stride = argc > 1 && !strcmp(argv[1], "--all") ? 1 : 61;
    static float x[CHUNK], y[3][CHUNK];
    float (*old[3])(float) = {act_old, dact_old, d2act_old};
    float (*tail[3])(float) = {act_erfc, dact_erfc, d2act_old};
    const char *name[3] = {"act_gelu", "dact_gelu", "d2act_gelu"};
    long long n = 0, differ[3] = {0}, worst[3] = {0}, tail_worst[3] = {0};
    float at[3] = {0}, tail_at[3] = {0};
    int fails = 0;
    /* every stride-th bit pattern: positive floats up to 8, then negative ones down to -37.5 */
    for (int sign = 0; sign < 2; sign++) {
        uint32_t top = sign ? 0x42160000u /* 37.5 */ : 0x41000000u /* 8 */;
        for (uint32_t b = 0; b <= top;) {
            int k = 0;
            for (; k < CHUNK && b <= top; b += stride) {
                uint32_t bits = b | (sign ? 0x80000000u : 0);
                memcpy(&x[k++], &bits, sizeof bits);
            }
            ew_act_gelu(k, x, y[0]);
            ew_dact_gelu(k, x, y[1]);
            ew_d2act_gelu(k, x, y[2]);
            for (int i = 0; i < k; i++) {
                int far = x[i] < -5;
                n += !far;
                for (int f = 0; f < 3; f++) {
                    float want = far ? tail[f](x[i]) : old[f](x[i]);
                    long long d = ulps(y[f][i], want);
                    if (!far) {
                        differ[f] += d != 0;
                        if (d > worst[f]) worst[f] = d, at[f] = x[i];
                    } else if (d > tail_worst[f]) {
                        tail_worst[f] = d, tail_at[f] = x[i];
                    }
                }
            }
        }
    }
    for (int f = 0; f < 3; f++) {
        printf("%s: %lld of %lld inputs in [-5, 8] differ from libm's formula, at most %lld ulp (x = %.9g); "
               "below -5 at most %lld ulp from erfc's (x = %.9g)\n",
               name[f], differ[f], n, worst[f], at[f], tail_worst[f], tail_at[f]);
        if (worst[f] > 2 || differ[f] * 1000000 > n * 5 || tail_worst[f] > 2) {
            printf("FAIL: %s is further from the libm formulas than allowed\n", name[f]);
            fails++;
        }
    }
    /* non-finite inputs behave as before */
    float special[3] = {INFINITY, -INFINITY, NAN};
    for (int s = 0; s < 3; s++) {
        float v = special[s], got[3];
        ew_act_gelu(1, &v, &got[0]);
        ew_dact_gelu(1, &v, &got[1]);
        ew_d2act_gelu(1, &v, &got[2]);
        for (int f = 0; f < 3; f++) {
            float want = old[f](v);
            if (!(got[f] == want || (isnan(got[f]) && isnan(want)))) {
                printf("FAIL: %s(%g) = %g, the libm formula %g\n", name[f], v, got[f], want);
                fails++;
            }
        }
    }
    printf(fails ? "FAIL\n" : "ok\n");
    return fails != 0;
}
