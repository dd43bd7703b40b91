/* predict_loop.c - libdino's own time for one sample's dino_predict (no Python): the C side of
 * bench/python_latency. Times 10 rounds of CALLS calls of dino_predict on one row of a fixed
 * input, with the Jacobian (J) or without (y), and for an f32 model dino_predict_f32 too, and
 * prints the best round's wall and the mean CPU time per call, in microseconds.
 *
 * build: cc -O2 -Iinclude bench/python_latency/predict_loop.c -Lbuild -ldino -Wl,-rpath,$PWD/build -o predict_loop
 * usage: predict_loop SPEC CHECKPOINT f32|f64 [CALLS]   (DINO_CACHE_DIR, OMP_NUM_THREADS as for dino-jit) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dino.h"

static double seconds(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: predict_loop SPEC CHECKPOINT f32|f64 [CALLS]\n");
        return 2;
    }
    dino_spec *spec;
    dino_model *model;
    dino_open_options o = {.backend = DINO_BACKEND_CPU,
                           .precision = strcmp(argv[3], "f64") ? DINO_PRECISION_F32 : DINO_PRECISION_F64};
    if (dino_spec_load(argv[1], &spec) || dino_model_open(spec, &o, &model) || dino_model_load(model, argv[2], NULL)) {
        fprintf(stderr, "predict_loop: %s\n", dino_last_error());
        return 1;
    }
    dino_spec_info info;
    dino_spec_info_get(spec, &info);
    int calls = argc > 4 ? atoi(argv[4]) : 2000, in = info.in_dim, out = info.out_dim;
    double *x = malloc(sizeof(double) * in), *y = malloc(sizeof(double) * out), *J = malloc(sizeof(double) * in * out);
    float *xf = malloc(sizeof(float) * in), *yf = malloc(sizeof(float) * out), *Jf = malloc(sizeof(float) * in * out);
    for (int i = 0; i < in; i++) x[i] = 0.1 * ((i * 37) % 11 - 5), xf[i] = (float)x[i];
    /* dino_predict (float64 arrays) and, for an f32 model, dino_predict_f32 (float32 arrays: no
     * conversions), which the Python package calls for float64 and float32 inputs */
    for (int api = 0; api < (o.precision == DINO_PRECISION_F32 ? 2 : 1); api++)
        for (int with_j = 1; with_j >= 0; with_j--) {
            double best = 1e30, cpu = 0;
            for (int i = 0; i < 200; i++) {
                if (api) dino_predict_f32(model, 1, xf, yf, with_j ? Jf : NULL);
                else dino_predict(model, 1, x, y, with_j ? J : NULL);
            }
            for (int r = 0; r < 10; r++) {
                double t = seconds(CLOCK_MONOTONIC), c = seconds(CLOCK_PROCESS_CPUTIME_ID);
                for (int i = 0; i < calls; i++) {
                    if (api) dino_predict_f32(model, 1, xf, yf, with_j ? Jf : NULL);
                    else dino_predict(model, 1, x, y, with_j ? J : NULL);
                }
                t = (seconds(CLOCK_MONOTONIC) - t) / calls * 1e6;
                cpu += (seconds(CLOCK_PROCESS_CPUTIME_ID) - c) / calls * 1e6 / 10;
                best = t < best ? t : best;
            }
            printf("{\"impl\": \"libdino\", \"what\": \"%s %s%s\", \"min_us\": %.2f, \"cpu_us\": %.2f}\n",
                   with_j ? "value+jacobian" : "value", argv[3], api ? ", f32 input (dino_predict_f32)" : "", best,
                   cpu);
        }
    free(x), free(y), free(J), free(xf), free(yf), free(Jf);
    dino_model_free(model);
    dino_spec_free(spec);
    return 0;
}
