/* gemm_peak.c - the practical FP32 limit for bench/cpu_dino: dino's own GEMM (the generated
 * code's prelude) on a large square product with all threads. Prints GFLOP/s. */
#include "prelude_c.h"

#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
    long n = 1536;
    real *A = malloc(sizeof(real) * (size_t)(n * n)), *B = malloc(sizeof(real) * (size_t)(n * n)),
         *C = malloc(sizeof(real) * (size_t)(n * n));
    for (long i = 0; i < n * n; i++) A[i] = (real)(i % 7) * 0.1f, B[i] = (real)(i % 5) * 0.1f;
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t = now();
        gemm(0, 0, n, n, n, A, n, B, n, C, n, 0);
        t = now() - t;
        if (t < best) best = t;
    }
    printf("%.1f\n", 2.0 * n * n * n / best / 1e9);
    free(A), free(B), free(C);
    return 0;
}
