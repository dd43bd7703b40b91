/* test_gemm_small.c - prelude_c.h's matrix multiply for a few rows (one sample's layer, its
 * Jacobian's rows) gives, element for element and bit for bit, what the packed path gives for
 * the same rows inside a large batch: predictions do not depend on the batch they came in.
 * Compiled once with DINO_REAL float and once with double. */
#include <stdio.h>

#include "prelude_c.h"

static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static real uniform(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (real)((double)(rng >> 11) / 9007199254740992.0 * 2 - 1);
}

int main(void) {
    int fails = 0, cases = 0;
    /* (N, K) of the layers of specs/poisson.dino and odd ones: tails of strips, K past KC */
    const long shapes[][2] = {{128, 64}, {128, 128}, {16, 128},         {64, 128}, {100, 37},
                              {7, 300},  {33, 5},    {2 * NR + 3, 513}, {48, 272}, {32, 512}};
    enum { BIG = 2 * MC + 5 };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        long N = shapes[s][0], K = shapes[s][1];
        real *A = malloc(sizeof(real) * BIG * K), *Bn = malloc(sizeof(real) * K * N),
             *Bt = malloc(sizeof(real) * N * K);
        real *Cbig = malloc(sizeof(real) * BIG * N), *C = malloc(sizeof(real) * BIG * N),
             *C0 = malloc(sizeof(real) * BIG * N);
        for (long i = 0; i < BIG * K; i++) A[i] = uniform();
        for (long i = 0; i < K * N; i++) Bn[i] = uniform(), Bt[i] = uniform();
        for (long i = 0; i < BIG * N; i++) C0[i] = uniform();
        for (int tb = 0; tb < 2; tb++)
            for (int acc = 0; acc < 2; acc++) {
                const real *B = tb ? Bt : Bn;
                long ldb = tb ? K : N;
                memcpy(Cbig, C0, sizeof(real) * BIG * N);
                gemm_serial(0, tb, BIG, N, K, A, K, B, ldb, Cbig, N, acc);
                /* the batch itself against the definition, in double (the packing is right) */
                double worst = 0;
                for (long i = 0; i < BIG; i++)
                    for (long j = 0; j < N; j++) {
                        double want = acc ? C0[i * N + j] : 0, scale = fabs(want);
                        for (long k = 0; k < K; k++) {
                            double p = (double)A[i * K + k] * (tb ? B[j * ldb + k] : B[k * ldb + j]);
                            want += p, scale += fabs(p);
                        }
                        double e = fabs(Cbig[i * N + j] - want) / scale;
                        worst = e > worst ? e : worst;
                    }
                if (worst > (sizeof(real) == 4 ? 1e-5 : 1e-13)) {
                    fprintf(stderr, "FAIL: N %ld K %ld tb %d acc %d: the batch is off by %.3g\n", N, K, tb, acc, worst);
                    fails++;
                }
                for (long M = 1; M <= SMALL_M + 2; M++)
                    for (long r0 = 0; r0 + M <= BIG; r0 += BIG / 3) {
                        memcpy(C, C0, sizeof(real) * BIG * N);
                        gemm_serial(0, tb, M, N, K, A + r0 * K, K, B, ldb, C + r0 * N, N, acc);
                        cases++;
                        if (memcmp(C + r0 * N, Cbig + r0 * N, sizeof(real) * (size_t)(M * N))) {
                            if (fails++ < 10)
                                fprintf(stderr,
                                        "FAIL: N %ld K %ld tb %d acc %d: rows %ld..%ld differ from the batch's\n", N, K,
                                        tb, acc, r0, r0 + M - 1);
                        }
                    }
            }
        free(A), free(Bn), free(Bt), free(Cbig), free(C), free(C0);
    }
    printf("%s: %d of %d small products equal the batch's rows bit for bit\n", sizeof(real) == 4 ? "f32" : "f64",
           cases - fails, cases);
    return fails != 0;
}
