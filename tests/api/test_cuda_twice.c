/* test_cuda_twice.c - two dino_train calls on one model on the CUDA backend, run on the
 * stand-in driver (tests/fake_cuda; ctest sets DINO_CUDA_DRIVER and DINO_NVRTC): the second
 * call, on other data, trains on that data (its result equals the CPU backend's for the same
 * two calls, within 1e-9 relative in f64), and no device memory is left once the models are
 * freed (issue 19, finding 7: the second set_data leaked the first data's buffers and replayed
 * the graphs captured on them). The driver's free memory is read through the stand-in itself
 * (dlopen of $DINO_CUDA_DRIVER, already loaded: the same instance), which must also refuse a
 * synchronisation during stream capture and invalidate the capture. Exit 77 without it. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dino.h"

static const char *spec_text = "model twice { input x[3]; output y[2]\n"
                               "  h = tanh(dense(x, 16))\n"
                               "  y = dense(h, 2) }\n"
                               "data { split train 12, test 4 }\n"
                               "loss { l2 y weight 1.0 }\n"
                               "train { optimizer adam(lr = 1e-2); batch 4; epochs 2; seed 11; precision f64 }\n";

enum { IN = 3, OUT = 2, NA = 12, NB = 20, NP = 5 };
static double xa[NA * IN], ya[NA * OUT], xb[NB * IN], yb[NB * OUT], xp[NP * IN];

/* Trains on A for one epoch, then on B (the second epoch), and predicts xp into y. */
static int run(dino_backend backend, double *y) {
    dino_spec *spec = NULL;
    dino_model *model = NULL;
    dino_data *a = NULL, *b = NULL;
    dino_open_options oo = {.backend = backend};
    int rc = 1;
    if (dino_spec_from_text("twice.dino", spec_text, strlen(spec_text), &spec) != DINO_OK ||
        dino_model_open(spec, &oo, &model) != DINO_OK) {
        printf("FAIL: open (%s): %s\n", backend == DINO_BACKEND_CUDA ? "cuda" : "cpu", dino_last_error());
        goto done;
    }
    dino_arrays ta = {.n = NA, .x = xa, .y = ya}, tb = {.n = NB, .x = xb, .y = yb};
    dino_train_options first = {.until = 1}, second = {0};
    if (dino_data_from_arrays(model, &ta, NULL, &a) || dino_data_from_arrays(model, &tb, NULL, &b) ||
        dino_train(model, a, &first) || dino_train(model, b, &second) || dino_predict(model, NP, xp, y, NULL)) {
        printf("FAIL: training twice (%s): %s\n", backend == DINO_BACKEND_CUDA ? "cuda" : "cpu", dino_last_error());
        goto done;
    }
    rc = 0;
done:
    dino_data_free(a);
    dino_data_free(b);
    dino_model_free(model);
    dino_spec_free(spec);
    return rc;
}

int main(void) {
    const char *drv = getenv("DINO_CUDA_DRIVER");
    if (!drv || !*drv || !strstr(drv, "fake_cuda")) {
        printf("SKIP: DINO_CUDA_DRIVER is not the stand-in driver\n");
        return 77;
    }
    for (int i = 0; i < NA * IN; i++) xa[i] = sin(0.7 * i);
    for (int i = 0; i < NA * OUT; i++) ya[i] = cos(0.3 * i);
    for (int i = 0; i < NB * IN; i++) xb[i] = cos(1.1 * i) * 1.5;
    for (int i = 0; i < NB * OUT; i++) yb[i] = sin(0.9 * i) - 0.5;
    for (int i = 0; i < NP * IN; i++) xp[i] = sin(2.3 * i);
    double ycpu[NP * OUT], ygpu[NP * OUT];
    if (run(DINO_BACKEND_CPU, ycpu) || run(DINO_BACKEND_CUDA, ygpu)) return 1;
    int failures = 0;
    double worst = 0, scale = 1e-300;
    for (int i = 0; i < NP * OUT; i++) {
        worst = fmax(worst, fabs(ycpu[i] - ygpu[i]));
        scale = fmax(scale, fabs(ycpu[i]));
    }
    int same = worst <= 1e-9 * scale;
    printf("%s trained on A then B: CUDA predictions against the CPU's, max |diff| / max |value| %.2e\n",
           same ? "ok  " : "FAIL", worst / scale);
    failures += !same;
    void *lib = dlopen(drv, RTLD_NOW | RTLD_NOLOAD);
    int (*mem_info)(size_t *, size_t *) = lib ? (int (*)(size_t *, size_t *))dlsym(lib, "cuMemGetInfo_v2") : NULL;
    size_t free_b = 0, total = 0;
    if (!mem_info || mem_info(&free_b, &total)) {
        printf("FAIL: the stand-in driver is not loaded or has no cuMemGetInfo_v2\n");
        failures++;
    } else {
        printf("%s device memory in use after freeing the model: %zu bytes\n", free_b == total ? "ok  " : "FAIL",
               total - free_b);
        failures += free_b != total;
    }
    /* the stand-in refuses a synchronous call during stream capture and invalidates the capture,
     * as the real driver does (so the graph tests of cuda_fake_cli would see one in the runtime) */
    typedef int (*StreamFn)(void *);
    typedef int (*CaptureFn)(void *, int);
    typedef int (*EndFn)(void *, void **);
    typedef int (*CreateFn)(void **, unsigned);
    CreateFn create = lib ? (CreateFn)dlsym(lib, "cuStreamCreate") : NULL;
    CaptureFn begin = lib ? (CaptureFn)dlsym(lib, "cuStreamBeginCapture_v2") : NULL;
    StreamFn sync = lib ? (StreamFn)dlsym(lib, "cuStreamSynchronize") : NULL;
    EndFn end = lib ? (EndFn)dlsym(lib, "cuStreamEndCapture") : NULL;
    void *stream = NULL, *graph = (void *)1;
    int r_sync = -1, r_end = -1;
    if (create && begin && sync && end && !create(&stream, 0) && !begin(stream, 1)) {
        r_sync = sync(stream);
        r_end = end(stream, &graph);
    }
    int refused = r_sync == 900 && r_end == 901 && graph == NULL;
    printf("%s stand-in driver: cuStreamSynchronize during capture %d (900 expected), end of capture %d (901)\n",
           refused ? "ok  " : "FAIL", r_sync, r_end);
    failures += !refused;
    printf("%s\n", failures ? "FAIL" : "ok");
    return failures ? 1 : 0;
}
