/* pint_gpu.c - Parareal against the serial solve on the GPU (or any backend), through the public
 * C API (include/dino.h): the forward solve (dino_predict) of bench/pint's neural ODE classifier,
 *
 *     z0 = tanh(dense(x, DIM))                      x[8]
 *     ode z = z0, t in [0, 1] {
 *         a = tanh(dense(concat(z, t), 64)); dz/dt = dense(a, DIM)
 *         solver rk4 steps S
 *         [pint parareal { slices N; iterations K; coarse euler steps 1; fine rk4 steps S/N; eval parareal }]
 *     }
 *     y = dense(z, 4)
 *
 * The serial model is opened first; its parameters (seed 0) are saved and loaded into every
 * Parareal model, so both compute with the same parameters. For every batch B: the median time
 * per dino_predict call (serial and Parareal alternating repetition by repetition, after a
 * warm-up; each call copies the inputs in and the logits out, as a user's does), the speedup
 * serial / Parareal, and the error max |y_par - y_ser| / max |y_ser| over the logits. With
 * K = N Parareal is the serial fine solve: its error is rounding, a check that both models hold
 * the same parameters. The target (19): at batch 8, speedup >= 3 with error <= 1e-4.
 *
 * usage: pint_gpu [--backend cuda|cpu|auto] [--steps 256] [--batches 1,8,64] [--slices 8,16]
 *                 [--iters 1,2] [--dim 16] [--precision f32|f64] [--reps 9] [--min-ms 20]
 *                 [--dir DIR]   (DIR: the parameter file; default $TMPDIR or /tmp)
 * Output: a Markdown table, one row per (S, B, N, K); model open (compile) times on stderr.
 * Exit 1 when a model does not open or predict fails, 0 otherwise (the numbers are not judged). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dino.h"
#include "../pint/pint_spec.h"

enum { MAXL = 16 };

typedef struct {
    int steps[MAXL], n_steps, batches[MAXL], n_batches, slices[MAXL], n_slices, iters[MAXL], n_iters;
    int dim, f64, reps;
    double min_ms;
    dino_backend backend;
    const char *dir;
} Opts;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int parse_list(const char *s, int *out, int max) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        if (*s == 'N') out[n++] = -1, s++; /* K = N (the slice count) */
        else {
            long v = strtol(s, &end, 10);
            if (end == s || v <= 0) return -1;
            out[n++] = (int)v, s = end;
        }
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return n > 0 && !*s ? n : -1;
}

/* The model with S steps and the pint block `pint` ("" for the serial solve), opened; *spec is
 * its spec, which the model uses until dino_model_free (free it after the model). */
static dino_model *open_model(const Opts *o, const char *name, int steps, const char *pint, dino_spec **spec_out) {
    char text[2048];
    snprintf(text, sizeof text, PINT_SPEC, name, IN, OUT, o->dim, o->dim, steps, pint, OUT, o->f64 ? "f64" : "f32");
    dino_spec *spec = NULL;
    if (dino_spec_from_text(name, text, strlen(text), &spec)) {
        fprintf(stderr, "pint_gpu: %s: %s\n", name, spec ? dino_spec_diagnostics_text(spec) : dino_last_error());
        dino_spec_free(spec);
        return NULL;
    }
    dino_open_options opts = {.backend = o->backend};
    dino_model *m = NULL;
    double t0 = now();
    if (dino_model_open(spec, &opts, &m)) {
        fprintf(stderr, "pint_gpu: %s: %s\n", name, dino_last_error());
        dino_spec_free(spec);
        return NULL;
    }
    *spec_out = spec;
    dino_backend_info b;
    dino_model_backend(m, &b);
    fprintf(stderr, "  %-16s opened in %6.2f s (%s)\n", name, now() - t0, b.name);
    return m;
}

typedef struct {
    dino_model *m;
    int n, f64;
    const void *x;
    void *y;
    int failed;
} Call;

static void predict(Call *c) {
    dino_status st =
        c->f64 ? dino_predict(c->m, c->n, c->x, c->y, NULL) : dino_predict_f32(c->m, c->n, c->x, c->y, NULL);
    if (st && !c->failed) fprintf(stderr, "pint_gpu: predict: %s\n", dino_last_error());
    if (st) c->failed = 1;
}

/* Seconds per call: as many calls as fit in min_s (at least one), timed together. */
static double time_calls(Call *c, double min_s) {
    int calls = 0;
    double t0 = now(), t;
    do {
        predict(c);
        calls++;
        t = now() - t0;
    } while (t < min_s && !c->failed);
    return t / calls;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double get(const void *p, int f64, long i) { return f64 ? ((const double *)p)[i] : ((const float *)p)[i]; }

static double rel_error(const void *a, const void *b, long n, int f64) {
    double d = 0, s = 0;
    for (long i = 0; i < n; i++) {
        double u = get(a, f64, i), v = get(b, f64, i);
        if (!(fabs(u - v) <= d)) d = fabs(u - v); /* NaN stays */
        if (fabs(v) > s) s = fabs(v);
    }
    return s > 0 ? d / s : d;
}

static void usage(void) {
    fputs("usage: pint_gpu [--backend cuda|cpu|auto] [--steps 256] [--batches 1,8,64] [--slices 8,16] [--iters 1,2]\n"
          "                [--dim 16] [--precision f32|f64] [--reps 9] [--min-ms 20] [--dir DIR]\n",
          stderr);
}

int main(int argc, char **argv) {
    Opts o = {.steps = {256},
              .n_steps = 1,
              .batches = {1, 8, 64},
              .n_batches = 3,
              .slices = {8, 16},
              .n_slices = 2,
              .iters = {1, 2},
              .n_iters = 2,
              .dim = 16,
              .reps = 9,
              .min_ms = 20,
              .backend = DINO_BACKEND_CUDA};
    const char *tmp = getenv("TMPDIR");
    o.dir = tmp && *tmp ? tmp : "/tmp";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!v) bad = 1;
        else if (!strcmp(a, "--steps")) bad = (o.n_steps = parse_list(v, o.steps, MAXL)) < 0;
        else if (!strcmp(a, "--batches")) bad = (o.n_batches = parse_list(v, o.batches, MAXL)) < 0;
        else if (!strcmp(a, "--slices")) bad = (o.n_slices = parse_list(v, o.slices, MAXL)) < 0;
        else if (!strcmp(a, "--iters")) bad = (o.n_iters = parse_list(v, o.iters, MAXL)) < 0;
        else if (!strcmp(a, "--dim")) bad = (o.dim = atoi(v)) <= 0;
        else if (!strcmp(a, "--reps")) bad = (o.reps = atoi(v)) <= 0 || o.reps > 64;
        else if (!strcmp(a, "--min-ms")) bad = (o.min_ms = atof(v)) < 0;
        else if (!strcmp(a, "--dir")) o.dir = v;
        else if (!strcmp(a, "--precision")) bad = strcmp(v, "f32") && strcmp(v, "f64"), o.f64 = !strcmp(v, "f64");
        else if (!strcmp(a, "--backend"))
            o.backend = !strcmp(v, "cpu") ? DINO_BACKEND_CPU
                : !strcmp(v, "auto")      ? DINO_BACKEND_AUTO
                                          : DINO_BACKEND_CUDA,
            bad = strcmp(v, "cpu") && strcmp(v, "auto") && strcmp(v, "cuda");
        else bad = 1;
        if (bad) {
            fprintf(stderr, "pint_gpu: bad option %s %s\n", a, v ? v : "");
            usage();
            return 2;
        }
        i++;
    }
    int maxb = 0;
    for (int i = 0; i < o.n_batches; i++) maxb = o.batches[i] > maxb ? o.batches[i] : maxb;
    size_t es = o.f64 ? sizeof(double) : sizeof(float);
    void *x = malloc(es * (size_t)maxb * IN), *ys = malloc(es * (size_t)maxb * OUT),
         *yp = malloc(es * (size_t)maxb * OUT);
    if (!x || !ys || !yp) return 2;
    srand(1);
    for (long i = 0; i < (long)maxb * IN; i++) {
        double v = 2.0 * rand() / RAND_MAX - 1.0;
        if (o.f64) ((double *)x)[i] = v;
        else ((float *)x)[i] = (float)v;
    }
    char params[4096];
    snprintf(params, sizeof params, "%s/pint_gpu_params_%ld.safetensors", o.dir, (long)getpid());
    int status = 0;
    printf("| S | batch | N | K | serial ms/call | Parareal ms/call | speedup | error "
           "|\n|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
    for (int si = 0; si < o.n_steps; si++) {
        int S = o.steps[si];
        char name[64];
        snprintf(name, sizeof name, "pint_serial_%d", S);
        dino_spec *ser_spec = NULL, *par_spec = NULL;
        dino_model *ser = open_model(&o, name, S, "", &ser_spec);
        if (!ser || dino_model_save(ser, params)) {
            if (ser) fprintf(stderr, "pint_gpu: saving the parameters: %s\n", dino_last_error());
            dino_model_free(ser), dino_spec_free(ser_spec);
            status = 1;
            continue;
        }
        for (int ni = 0; ni < o.n_slices; ni++) {
            int N = o.slices[ni];
            if (S % N) {
                fprintf(stderr, "pint_gpu: %d slices do not divide %d steps: skipped\n", N, S);
                continue;
            }
            for (int ki = 0; ki < o.n_iters; ki++) {
                int K = o.iters[ki] < 0 ? N : o.iters[ki];
                char pint[512];
                snprintf(pint, sizeof pint,
                         "    pint parareal { slices %d; iterations %d; coarse euler steps 1; fine rk4 steps %d; "
                         "eval parareal }\n",
                         N, K, S / N);
                snprintf(name, sizeof name, "pint_%d_n%d_k%d", S, N, K);
                dino_model *par = open_model(&o, name, S, pint, &par_spec);
                if (!par || dino_model_load(par, params, NULL)) {
                    if (par) fprintf(stderr, "pint_gpu: loading the parameters: %s\n", dino_last_error());
                    dino_model_free(par), dino_spec_free(par_spec);
                    status = 1;
                    continue;
                }
                for (int bi = 0; bi < o.n_batches; bi++) {
                    int B = o.batches[bi];
                    Call cs = {ser, B, o.f64, x, ys, 0}, cp = {par, B, o.f64, x, yp, 0};
                    double ts[64], tp[64];
                    for (int w = 0; w < 3; w++) predict(&cs), predict(&cp); /* warm-up */
                    for (int r = 0; r < o.reps && !cs.failed && !cp.failed; r++) {
                        ts[r] = time_calls(&cs, o.min_ms * 1e-3);
                        tp[r] = time_calls(&cp, o.min_ms * 1e-3);
                    }
                    if (cs.failed || cp.failed) {
                        printf("| %d | %d | %d | %d | failed | | | |\n", S, B, N, K);
                        status = 1;
                        continue;
                    }
                    predict(&cs), predict(&cp); /* the outputs compared: one more call of each */
                    double ms = 1e3 * median(ts, o.reps), mp = 1e3 * median(tp, o.reps);
                    printf("| %d | %d | %d | %d%s | %.4f | %.4f | %.2fx | %.1e |\n", S, B, N, K, K == N ? " (= N)" : "",
                           ms, mp, ms / mp, rel_error(yp, ys, (long)B * OUT, o.f64));
                    fflush(stdout);
                }
                dino_model_free(par), dino_spec_free(par_spec);
            }
        }
        dino_model_free(ser), dino_spec_free(ser_spec);
        remove(params);
    }
    free(x), free(ys), free(yp);
    return status;
}
