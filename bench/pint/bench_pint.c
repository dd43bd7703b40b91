/* bench_pint.c - Parareal against the serial solve: forward solve (predict) and one training
 * step, through the whole compiler and the CPU backend.
 *
 * The network (a neural ODE classifier, so that predict computes the logits only, no Jacobian):
 *
 *     z0 = tanh(dense(x, DIM))                      x[8]
 *     ode z = z0, t in [0, 1] {
 *         a = tanh(dense(concat(z, t), 64)); dz/dt = dense(a, DIM)
 *         solver rk4 steps S
 *         [pint parareal { slices N; iterations K; coarse euler steps 1; fine rk4 steps S/N; eval parareal }]
 *     }
 *     y = dense(z, 4)                               loss: cross_entropy y
 *
 * For every S, the serial spec (no pint block) and, for every slice count N dividing S and every
 * K, the Parareal spec are generated, compiled (cached in $DINO_CACHE_DIR) and loaded. Both get
 * the same parameters (default initialisation, seed 0, times --scale), inputs and labels. For
 * every batch B: the median time per call of predict and of train_step (after a warm-up; the
 * serial and the Parareal module alternate repetition by repetition so that both see the same
 * load), the speedup serial / Parareal, and the error of Parareal against the serial solve:
 * max |y_par - y_ser| / max |y_ser| over the logits, and the same over the gradient G.
 *
 * usage: bench_pint [--steps 64,128,256] [--batches 1,8,64] [--slices 8,16] [--iters 1,2,4,N]
 *                   [--dim 16] [--precision f64|f32] [--reps 7] [--min-ms 20] [--scale 1]
 *                   [--dir DIR]    (DIR: where the generated specs go; default /tmp)
 *                   [--errors-only]   (no timing: the two error columns only)
 *                   [--compile-only [--shard I/N]]   (fill the cache only: specs I, I+N, ...,
 *                                                     so that N processes compile in parallel)
 * Output: one line per configuration, as a Markdown table row, plus compile times on stderr. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu_jit.h"
#include "emit.h"
#include "frontend.h"
#include "init.h"
#include "pint_spec.h"

enum { MAXL = 16 };

typedef struct {
    int steps[MAXL], n_steps, batches[MAXL], n_batches, slices[MAXL], n_slices, iters[MAXL], n_iters;
    int dim, f64, reps, compile_only, errors_only, shard, shards;
    double min_ms, scale;
    const char *dir;
} Opts;

typedef struct {
    Frontend fe;
    Arena arena;
    CpuModule mod;
    double gen_s, cc_s; /* front end + IR + C generation; host compiler (0 when cached) */
    int loaded;
} Spec;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int parse_list(const char *s, int *out, int max) {
    int n = 0;
    while (*s && n < max) {
        if (*s == 'N') out[n++] = -1, s++; /* K = N (the slice count) */
        else out[n++] = (int)strtol(s, (char **)&s, 10);
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return n;
}

/* Writes the spec (pint may be "") to DIR/NAME.dino and generates, compiles and loads it. */
static int load_spec(Spec *sp, const Opts *o, const char *name, int steps, const char *pint) {
    char path[4096], err[4096];
    memset(sp, 0, sizeof *sp);
    snprintf(path, sizeof path, "%s/%s.dino", o->dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    fprintf(f, PINT_SPEC, name, IN, OUT, o->dim, o->dim, steps, pint, OUT, o->f64 ? "f64" : "f32");
    fclose(f);
    double t0 = now();
    if (frontend_run(&sp->fe, path, stderr, 0, NULL)) return -1;
    size_t len;
    char *src = generate_c(&sp->arena, sp->fe.model, JAC_AUTO, o->f64, sp->fe.hash, &len, err, sizeof err);
    if (!src) {
        fprintf(stderr, "%s: %s\n", name, err);
        return -1;
    }
    sp->gen_s = now() - t0;
    double t1 = now();
    if (cpu_module_load(src, len, &sp->mod, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", name, err);
        free(src);
        return -1;
    }
    double load_s = now() - t1;
    sp->cc_s = sp->mod.compile_seconds;
    if (o->compile_only || sp->cc_s > 0)
        fprintf(stderr, "  %-22s C source %7.1f KiB, generated in %6.2f s, %s %6.2f s\n", name, len / 1024.0, sp->gen_s,
                sp->cc_s > 0 ? "compiled in" : "loaded from the cache in", sp->cc_s > 0 ? sp->cc_s : load_s);
    free(src);
    sp->loaded = 1;
    return 0;
}

static void free_spec(Spec *sp) {
    if (!sp->loaded) return;
    cpu_module_free(&sp->mod);
    arena_free(&sp->arena);
    frontend_free(&sp->fe);
    sp->loaded = 0;
}

typedef struct {
    const Spec *sp;
    void *P, *G, *x, *y, *work_p, *work_t;
    const int32_t *label;
    int n;
} Bench;

static void call_predict(const Bench *c) { c->sp->mod.predict(c->P, c->n, c->n, c->x, c->y, NULL, c->work_p); }

static void call_train(const Bench *c) {
    /* terms: the loss term, then (newer compilers) one Parareal correction monitor per iteration */
    static double terms[4096];
    double w[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    c->sp->mod.train_step(c->P, c->G, c->n, c->n, c->x, NULL, NULL, c->label, w, terms, c->work_t);
}

/* Seconds per call: as many calls as fit in min_ms (at least one), timed together. */
static double time_calls(void (*fn)(const Bench *), const Bench *c, double min_s) {
    int calls = 0;
    double t0 = now(), t;
    do {
        fn(c);
        calls++;
        t = now() - t0;
    } while (t < min_s);
    return t / calls;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds per call of fn on a and on b, alternating a and b repetition by repetition. */
static void time_pair(void (*fn)(const Bench *), const Bench *a, const Bench *b, const Opts *o, double *ta,
                      double *tb) {
    double sa[64], sb[64];
    int reps = o->reps < 64 ? o->reps : 64;
    fn(a), fn(b), fn(a), fn(b); /* warm-up: page in the workspaces, start the OpenMP threads */
    for (int r = 0; r < reps; r++) {
        sa[r] = time_calls(fn, a, o->min_ms * 1e-3);
        sb[r] = time_calls(fn, b, o->min_ms * 1e-3);
    }
    qsort(sa, (size_t)reps, sizeof(double), cmp_double);
    qsort(sb, (size_t)reps, sizeof(double), cmp_double);
    *ta = reps % 2 ? sa[reps / 2] : 0.5 * (sa[reps / 2 - 1] + sa[reps / 2]);
    *tb = reps % 2 ? sb[reps / 2] : 0.5 * (sb[reps / 2 - 1] + sb[reps / 2]);
}

static double get(const void *p, int f64, long i) { return f64 ? ((const double *)p)[i] : ((const float *)p)[i]; }

static double rel_error(const void *a, const void *b, long n, int f64) {
    double d = 0, s = 0;
    for (long i = 0; i < n; i++) {
        double u = get(a, f64, i), v = get(b, f64, i);
        if (fabs(u - v) > d) d = fabs(u - v);
        if (fabs(v) > s) s = fabs(v);
    }
    return s > 0 ? d / s : d;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "bench_pint: out of memory\n");
        exit(2);
    }
    return p;
}

static const char *fmt_ms(double s, char *buf) {
    snprintf(buf, 32, s < 1e-3 ? "%.4f" : s < 1e-2 ? "%.3f" : s < 1 ? "%.2f" : "%.1f", s * 1e3);
    return buf;
}

/* The K of --iters entry ki for N slices, or -1 to skip it (K > N, or the same K listed twice,
 * e.g. 8 and N with N = 8). */
static int pick_k(const Opts *o, int ki, int N) {
    int K = o->iters[ki] < 0 ? N : o->iters[ki];
    for (int kj = 0; kj < ki; kj++)
        if ((o->iters[kj] < 0 ? N : o->iters[kj]) == K) return -1;
    return K > N ? -1 : K;
}

/* The Parareal spec's name (64 bytes) and pint block (512 bytes). */
static void pint_spec(const Opts *o, int S, int N, int K, char *name, char *pint) {
    snprintf(pint, 512,
             "    pint parareal { slices %d; iterations %d; coarse euler steps 1; fine rk4 steps %d; eval parareal }\n",
             N, K, S / N);
    snprintf(name, 64, "pint_d%d_s%d_n%d_k%d_%s", o->dim, S, N, K, o->f64 ? "f64" : "f32");
}

int main(int argc, char **argv) {
    Opts o = {.dim = 16, .f64 = 1, .reps = 7, .min_ms = 20, .scale = 1, .dir = "/tmp", .shards = 1};
    o.n_steps = parse_list("64,128,256", o.steps, MAXL);
    o.n_batches = parse_list("1,8,64", o.batches, MAXL);
    o.n_slices = parse_list("8,16", o.slices, MAXL);
    o.n_iters = parse_list("1,2,4,N", o.iters, MAXL);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = !v;
        if (!strcmp(a, "--compile-only") || !strcmp(a, "--errors-only")) {
            *(a[2] == 'c' ? &o.compile_only : &o.errors_only) = 1;
            continue;
        }
        if (bad) {
        } else if (!strcmp(a, "--steps")) bad = (o.n_steps = parse_list(v, o.steps, MAXL)) <= 0;
        else if (!strcmp(a, "--batches")) bad = (o.n_batches = parse_list(v, o.batches, MAXL)) <= 0;
        else if (!strcmp(a, "--slices")) bad = (o.n_slices = parse_list(v, o.slices, MAXL)) <= 0;
        else if (!strcmp(a, "--iters")) bad = (o.n_iters = parse_list(v, o.iters, MAXL)) <= 0;
        else if (!strcmp(a, "--dim")) o.dim = atoi(v);
        else if (!strcmp(a, "--precision")) o.f64 = !strcmp(v, "f64"), bad = strcmp(v, "f64") && strcmp(v, "f32");
        else if (!strcmp(a, "--reps")) o.reps = atoi(v);
        else if (!strcmp(a, "--min-ms")) o.min_ms = atof(v);
        else if (!strcmp(a, "--scale")) o.scale = atof(v);
        else if (!strcmp(a, "--dir")) o.dir = v;
        else if (!strcmp(a, "--shard"))
            bad = sscanf(v, "%d/%d", &o.shard, &o.shards) != 2 || o.shard < 0 || o.shard >= o.shards;
        else bad = 1;
        if (bad) {
            fprintf(stderr, "bench_pint: bad option %s (see the comment at the top of bench_pint.c)\n", a);
            return 2;
        }
        i++;
    }
    size_t es = o.f64 ? sizeof(double) : sizeof(float);
    int bmax = 1;
    for (int i = 0; i < o.n_batches; i++) bmax = o.batches[i] > bmax ? o.batches[i] : bmax;
    void *x = xcalloc((size_t)bmax * IN, es);
    int32_t *label = xcalloc((size_t)bmax, sizeof(int32_t));
    for (int i = 0; i < bmax * IN; i++) {
        double v = sin(1.3 * i + 0.2) + 0.5 * cos(0.7 * i);
        if (o.f64) ((double *)x)[i] = v;
        else ((float *)x)[i] = (float)v;
    }
    for (int i = 0; i < bmax; i++) label[i] = (int32_t)((7 * i + 3) % OUT);

    if (o.compile_only) { /* fill the cache: this shard's share of the specs, no timing */
        int index = 0;
        for (int si = 0; si < o.n_steps; si++) {
            int S = o.steps[si];
            char name[64], pint[512];
            Spec sp;
            snprintf(name, sizeof name, "serial_d%d_s%d_%s", o.dim, S, o.f64 ? "f64" : "f32");
            if (index++ % o.shards == o.shard) {
                if (load_spec(&sp, &o, name, S, "")) return 1;
                free_spec(&sp);
            }
            for (int ni = 0; ni < o.n_slices; ni++) {
                int N = o.slices[ni];
                if (N < 1 || S % N) continue;
                for (int ki = 0; ki < o.n_iters; ki++) {
                    int K = pick_k(&o, ki, N);
                    if (K < 0 || index++ % o.shards != o.shard) continue;
                    pint_spec(&o, S, N, K, name, pint);
                    if (load_spec(&sp, &o, name, S, pint)) return 1;
                    free_spec(&sp);
                }
            }
        }
        return 0;
    }
    if (o.errors_only) {
        printf("| S | B | N | K | output error | gradient error |\n");
        printf("|---|---|---|---|---|---|\n");
    } else {
        printf("| S | B | N | K | predict serial ms | predict Parareal ms | predict speedup | output error | "
               "train serial ms | train Parareal ms | train speedup | gradient error |\n");
        printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    }
    fflush(stdout);
    for (int si = 0; si < o.n_steps; si++) {
        int S = o.steps[si];
        char name[64], pint[512], b1[32], b2[32], b3[32], b4[32];
        Spec ser;
        snprintf(name, sizeof name, "serial_d%d_s%d_%s", o.dim, S, o.f64 ? "f64" : "f32");
        if (load_spec(&ser, &o, name, S, "")) return 1;
        const Model *m = ser.fe.model;
        void *P = xcalloc((size_t)m->n_weights, es);
        init_params(m->params, m->n_params, P, o.f64, 0);
        for (long i = 0; i < m->n_weights; i++) {
            if (o.f64) ((double *)P)[i] *= o.scale;
            else ((float *)P)[i] = (float)(((float *)P)[i] * o.scale);
        }
        for (int ni = 0; ni < o.n_slices; ni++) {
            int N = o.slices[ni];
            if (N < 1 || S % N) continue;
            for (int ki = 0; ki < o.n_iters; ki++) {
                int K = pick_k(&o, ki, N);
                if (K < 0) continue;
                Spec par;
                pint_spec(&o, S, N, K, name, pint);
                if (load_spec(&par, &o, name, S, pint)) return 1;
                if (par.fe.model->n_weights != m->n_weights) {
                    fprintf(stderr, "bench_pint: %s has %lld parameters, the serial spec %lld\n", name,
                            (long long)par.fe.model->n_weights, (long long)m->n_weights);
                    return 1;
                }
                for (int bi = 0; bi < o.n_batches; bi++) {
                    int B = o.batches[bi];
                    Bench cs = {.sp = &ser, .P = P, .x = x, .label = label, .n = B}, cp = cs;
                    cp.sp = &par;
                    cs.G = xcalloc((size_t)m->n_weights, es), cp.G = xcalloc((size_t)m->n_weights, es);
                    cs.y = xcalloc((size_t)B * OUT, es), cp.y = xcalloc((size_t)B * OUT, es);
                    cs.work_p = xcalloc((size_t)ser.mod.predict_work(B), es);
                    cp.work_p = xcalloc((size_t)par.mod.predict_work(B), es);
                    cs.work_t = xcalloc((size_t)ser.mod.train_work(B), es);
                    cp.work_t = xcalloc((size_t)par.mod.train_work(B), es);
                    double tps = 0, tpp = 0, tts = 0, ttp = 0;
                    if (o.errors_only) {
                        call_predict(&cs), call_predict(&cp), call_train(&cs), call_train(&cp);
                    } else {
                        time_pair(call_predict, &cs, &cp, &o, &tps, &tpp);
                        time_pair(call_train, &cs, &cp, &o, &tts, &ttp);
                    }
                    double ey = rel_error(cp.y, cs.y, (long)B * OUT, o.f64);
                    double eg = rel_error(cp.G, cs.G, m->n_weights, o.f64);
                    if (o.errors_only) printf("| %d | %d | %d | %d | %.1e | %.1e |\n", S, B, N, K, ey, eg);
                    else
                        printf("| %d | %d | %d | %d | %s | %s | %.2fx | %.1e | %s | %s | %.2fx | %.1e |\n", S, B, N, K,
                               fmt_ms(tps, b1), fmt_ms(tpp, b2), tps / tpp, ey, fmt_ms(tts, b3), fmt_ms(ttp, b4),
                               tts / ttp, eg);
                    fflush(stdout);
                    free(cs.G), free(cp.G), free(cs.y), free(cp.y);
                    free(cs.work_p), free(cp.work_p), free(cs.work_t), free(cp.work_t);
                }
                free_spec(&par);
            }
        }
        free(P);
        free_spec(&ser);
    }
    free(x), free(label);
    return 0;
}
