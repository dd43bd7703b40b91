/* test_threads.c - two models of one spec, computing at once from two threads, give the
 * results each gives alone (issue 19: the generated C module's GEMM packing buffers were kept
 * per OpenMP thread number, shared by every model of the process, so two callers' thread 0
 * packed into the same buffer). Each thread predicts (with the Jacobian) on its own inputs
 * many times; every result must equal, bit for bit, that model's serial result. CPU backend;
 * needs a C compiler at run time; DINO_CACHE_DIR is set by ctest. */
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dino.h"

static const char *spec_text = "model wide { input x[48]; output y[24]\n"
                               "  h = tanh(dense(x, 192))\n"
                               "  g = tanh(dense(h, 192))\n"
                               "  y = dense(g, 24) }\n"
                               "data { split train 8, test 8 }\n"
                               "loss { l2 y weight 1.0; h1 dy/dx weight 0.5 }\n"
                               "train { optimizer adam(lr = 1e-3); batch 8; epochs 1; seed 5; precision f64 }\n";

enum { IN = 48, OUT = 24, N = 96, ROUNDS = 40 };

typedef struct {
    dino_model *model;
    double x[N * IN], y[N * OUT], J[N * OUT * IN]; /* inputs, serial results */
    double y2[N * OUT], J2[N * OUT * IN];
    int mismatches, errors;
    pthread_barrier_t *start;
} Job;

static void *run(void *arg) {
    Job *j = arg;
    pthread_barrier_wait(j->start);
    for (int r = 0; r < ROUNDS; r++) {
        if (dino_predict(j->model, N, j->x, j->y2, j->J2) != DINO_OK) {
            j->errors++;
            continue;
        }
        j->mismatches += memcmp(j->y, j->y2, sizeof j->y) != 0 || memcmp(j->J, j->J2, sizeof j->J) != 0;
    }
    return NULL;
}

int main(void) {
    static Job jobs[2];
    dino_spec *spec[2] = {NULL, NULL};
    dino_open_options oo = {.backend = DINO_BACKEND_CPU};
    for (int m = 0; m < 2; m++) {
        if (dino_spec_from_text("wide.dino", spec_text, strlen(spec_text), &spec[m]) != DINO_OK ||
            dino_model_open(spec[m], &oo, &jobs[m].model) != DINO_OK) {
            printf("FAIL: could not open model %d: %s\n", m, dino_last_error());
            return 1;
        }
        for (int i = 0; i < N * IN; i++) jobs[m].x[i] = sin(0.37 * i + 1.3 * m) * (m ? 2.0 : 0.5);
        if (dino_predict(jobs[m].model, N, jobs[m].x, jobs[m].y, jobs[m].J) != DINO_OK) {
            printf("FAIL: serial predict %d: %s\n", m, dino_last_error());
            return 1;
        }
    }
    int differ = memcmp(jobs[0].y, jobs[1].y, sizeof jobs[0].y) != 0;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    pthread_t th[2];
    for (int m = 0; m < 2; m++) {
        jobs[m].start = &start;
        pthread_create(&th[m], NULL, run, &jobs[m]);
    }
    for (int m = 0; m < 2; m++) pthread_join(th[m], NULL);
    pthread_barrier_destroy(&start);
    int failures = !differ;
    if (!differ) printf("FAIL: the two models' inputs give the same outputs (the test cannot see a mix-up)\n");
    for (int m = 0; m < 2; m++) {
        printf("%s model %d: %d of %d concurrent predictions differ from its serial one, %d errors\n",
               jobs[m].mismatches || jobs[m].errors ? "FAIL" : "ok  ", m, jobs[m].mismatches, ROUNDS, jobs[m].errors);
        failures += jobs[m].mismatches + jobs[m].errors;
        dino_model_free(jobs[m].model);
        dino_spec_free(spec[m]);
    }
    printf("%s\n", failures ? "FAIL" : "ok");
    return failures ? 1 : 0;
}
