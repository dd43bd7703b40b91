/* test_cuda_emu.c - the generated CUDA, run on the CPU in emulation, against the CPU backend.
 *
 *   test_cuda_emu [--hazards] [--fma] [--fast] [--specs DIR] SOURCE_DIR SHARED_DIR [CASE...]
 *
 * --fma: f32 only, the emulated kernels compiled with every a * b + c the compiler finds fused
 * (-O1 -mfma -ffp-contract=fast), as NVRTC compiles them by default: the f32 dopri5 step control
 * must take the CPU's decisions under that perturbation too (issue 19, finding 8).
 *
 * --fast: f32 only, with fast math (train { math fast }): the emulated CUDA (CUDA's intrinsics,
 * emulated) against the CPU backend's fast math, as above, and that against the CPU backend's
 * default math within fast_tol.
 *
 * --hazards: the broken kernels of tests/emu/hazards.cu, each caught by its hazard mode of
 * cuda_emu.hpp, then the cases named (fuse auto; dino_poisson: tiles) in the normal mode and
 * again in each hazard mode, with the same results (run_hazards).
 *
 * DIR: the test specs (default SOURCE_DIR/tests/specs); CASE: run only the cases so named
 * (or "prelude").
 *
 * No GPU is needed: each generated .cu is compiled by the host C++ compiler ($CXX, else c++,
 * g++ or clang++) with tests/cuda_emu.hpp force-included, which runs every block as 256
 * fibers (see there). For each case below, in f64 and f32, the predict and train programs run
 * kernel by kernel as the CudaPlan says (grids from cuda_grid_x for a batch n smaller than the
 * workspace's nmax, so every per-sample stride is exercised), with the workspace, G and terms
 * first filled with NaN (a read of anything no kernel wrote shows up). y, J, G and the loss
 * terms must match the CPU backend's dino_predict / dino_train_step on the same parameters and
 * data: max |difference| / max |CPU value| per tensor at most 1e-10 in f64 and 2e-5 in f32
 * (summation order differs: tiles, split batches, atomics); in f32 the monitor terms (Parareal
 * corrections, dopri5's step control) to 1e-3 (monitor_tol: an ill-conditioned error norm).
 *
 * Also: the tiled gemm of prelude_cuda.h for every transpose and tile shape against a plain
 * triple loop (odd sizes, leading dimensions larger than the rows, accumulate on and off), the
 * optimiser kernels against runtime/optim.c over three steps (equal to 1e-15 relative), and
 * dino_set_step / dino_gather / dino_gather_label / dino_iota exactly.
 *
 * What this cannot show: GPU memory-model races, warp behaviour, speed. Exit 77 (skipped)
 * when no C++ compiler is found. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu_jit.h"
#include "emit.h"
#include "frontend.h"
#include "harness.h"
#include "init.h"
#include "optim.h"
#include "rng.h"

enum { SKIP = 77 };

typedef struct {
    const char *name;
    const char *file; /* the spec: <file>.dino in tests/specs, or in the shared specs folder */
    int shared;       /* 1: the shared specs folder */
    int n, nmax;      /* batch rows and workspace capacity */
    JacMode jac;
    int also; /* besides --fuse auto: ALSO_NONE, ALSO_TILES */
} Case;

enum { ALSO_NONE = 1, ALSO_TILES = 2 };

/* Tile kernels run with at most this many blocks, so tiles hold several samples, of unequal
 * numbers when n is not a multiple. */
enum { EMU_TILES = 3 };

/* Small specs (tests/specs) covering what the emitter does: every activation, both Jacobian
 * modes, broadcasts, concatenations with constants, slices of gradients, ODE solvers, Parareal,
 * Parareal with a partition (per-slice steps and times) and values from outside the block,
 * Parareal with tol (gated iterations: the terms show which ran), adaptive dopri5 (runtime
 * step sizes and step control in the terms), relative losses, a classifier, tiled layers
 * (dino_poisson: 400 wide), checkpointing (recomputed ODE segments), trajectory outputs (save). */
static const Case cases[] = {
    {"activations", "activations", 0, 37, 41, JAC_AUTO, ALSO_NONE},
    {"activations_forward", "activations", 0, 9, 9, JAC_FORWARD, 0},
    {"mlp_and_arithmetic", "mlp_and_arithmetic", 0, 70, 75, JAC_AUTO, 0},
    {"ode_solvers", "ode_solvers", 0, 13, 16, JAC_AUTO, ALSO_NONE},
    {"ode_checkpoint_rk4", "ode_checkpoint_rk4", 0, 13, 16, JAC_AUTO, ALSO_NONE}, /* tile kernels, and per stage */
    {"classifier", "classifier", 0, 33, 40, JAC_AUTO, ALSO_NONE},
    {"dino_small", "dino_small", 1, 70, 72, JAC_AUTO, 0},
    {"node_small", "node_small", 1, 6, 8, JAC_AUTO, ALSO_NONE},
    {"pint_small", "pint_small", 1, 5, 8, JAC_AUTO, 0},
    {"pint_partition", "pint_partition", 0, 9, 12, JAC_AUTO, 0},
    {"pint_partition_reverse", "pint_partition", 0, 9, 12, JAC_REVERSE, 0},
    {"pint_tol", "pint_tol", 0, 7, 8, JAC_AUTO, ALSO_NONE},
    {"dopri5", "dopri5", 0, 7, 8, JAC_AUTO, ALSO_NONE},
    {"dino_resnet", "dino_resnet", 1, 5, 6, JAC_AUTO, 0},
    {"dino_poisson", "dino_poisson", 1, 11, 12, JAC_AUTO, ALSO_TILES},
    {"ode_save", "ode_save", 0, 7, 9, JAC_AUTO, ALSO_NONE}, /* trajectories: saved states stacked as rows */
    {"ode_save_reverse", "ode_save", 0, 5, 5, JAC_REVERSE, 0},
    {"ode_save_checkpoint", "ode_save_checkpoint", 0, 6, 8, JAC_AUTO, 0},
    {"ode_save_dopri5", "ode_save_dopri5", 0, 7, 8, JAC_AUTO, ALSO_NONE}, /* landing on saved times */
    {"ode_save_parareal", "ode_save_parareal", 0, 6, 7, JAC_AUTO, ALSO_NONE},
    {"ode_save_pint_tol", "ode_save_pint_tol", 0, 5, 6, JAC_REVERSE, 0},
    {"ode_save_many", "ode_save_many", 0, 5, 6, JAC_AUTO, 0},        /* 100 saved states */
    {"basis_layers", "basis_layers", 0, 9, 12, JAC_AUTO, ALSO_NONE}, /* encode/decode: frozen layers */
    {"basis_layers_reverse", "basis_layers", 0, 9, 12, JAC_REVERSE, 0},
};

static int failures;
static char cxx[256], tmpdir[256], emu_header[4096];
static const char *specs_dir; /* tests/specs */
/* --fma: the emulated kernels compiled with fused multiply-adds wherever the compiler can
 * contract a * b + c, as NVRTC does by default (--fmad=true), instead of -O0's separate
 * roundings: the CPU backend (-O3 -march=native) contracts other pairs, so the two differ the way
 * a GPU and the CPU do. */
static const char *emu_flags = "-O0";
static int fma_only_f32; /* --fma runs f32 only: f64's step control is far from its rounding */
/* f32 monitors against the CPU's, relative to the largest: dopri5's error norm is a difference
 * of two solutions that agree to rtol, so its f32 rounding is about 1e-4 relative, and
 * contraction (NVRTC's, the CPU compiler's) moves it that much (measured 1.8e-4). A changed
 * accept/reject decision or step count still shows: it changes a flag or count by 1. Issue 19,
 * finding 8. */
static const double monitor_tol = 1e-3;

static int find_cxx(void) {
    const char *env = getenv("CXX");
    const char *names[] = {env, "c++", "g++", "clang++"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (!names[i] || !*names[i]) continue;
        char cmd[512];
        snprintf(cmd, sizeof cmd, "command -v '%s' >/dev/null 2>&1", names[i]);
        if (system(cmd) == 0) {
            snprintf(cxx, sizeof cxx, "%s", names[i]);
            return 0;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------------------- the emulated module */

typedef struct {
    void *handle;
    int (*launch)(void (*)(void *), void *, unsigned, unsigned, unsigned, unsigned);
    void (*shutdown)(void);
} Emu;

/* Compiles source (the generated .cu, plus `extra`) for emulation and loads it. */
static int emu_load(const char *tag, const char *src, size_t len, const char *extra, Emu *e) {
    char cu[512], so[512], cmd[8192];
    snprintf(cu, sizeof cu, "%s/%s.cu", tmpdir, tag);
    snprintf(so, sizeof so, "%s/%s.so", tmpdir, tag);
    FILE *f = fopen(cu, "w");
    if (!f) return -1;
    fwrite(src, 1, len, f);
    if (extra) fputs(extra, f);
    fclose(f);
    /* -fno-weak where the compiler knows it (g++): cuda_emu.hpp's shared-memory section */
    char probe[512];
    snprintf(probe, sizeof probe, "'%s' -fno-weak -fsyntax-only -x c++ /dev/null 2>/dev/null && echo -fno-weak", cxx);
    snprintf(cmd, sizeof cmd, "'%s' -std=c++17 %s -w -shared -fPIC $(%s) -include '%s' -x c++ '%s' -o '%s' 2>'%s.log'",
             cxx, emu_flags, probe, emu_header, cu, so, cu);
    if (system(cmd) != 0) {
        printf("  FAIL %s: the emulated CUDA did not compile (%s.log)\n", tag, cu);
        snprintf(cmd, sizeof cmd, "head -30 '%s.log'", cu);
        if (system(cmd)) {}
        return -1;
    }
    e->handle = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!e->handle) {
        printf("  FAIL %s: %s\n", tag, dlerror());
        return -1;
    }
    *(void **)&e->launch = dlsym(e->handle, "emu_launch");
    *(void **)&e->shutdown = dlsym(e->handle, "emu_shutdown");
    return e->launch && e->shutdown ? 0 : -1;
}

static void emu_free(Emu *e) {
    if (e->shutdown) e->shutdown();
    if (e->handle) dlclose(e->handle);
    memset(e, 0, sizeof *e);
}

/* One kernel of a program: the CPU functions' arguments. */
typedef void (*ProgFn)(const void *P, void *G, int n, int nmax, const void *x, void *y, void *J, const int32_t *label,
                       const double *w, double *terms, void *work);
typedef struct {
    ProgFn fn;
    const void *P;
    void *G;
    int n, nmax;
    const void *x;
    void *y, *J;
    const int32_t *label;
    const double *w;
    double *terms;
    void *work;
} ProgCall;

static void prog_thunk(void *c) {
    ProgCall *p = c;
    p->fn(p->P, p->G, p->n, p->nmax, p->x, p->y, p->J, p->label, p->w, p->terms, p->work);
}

/* Runs the kernels of a program in order. */
static int run_program(const Emu *e, const CudaLaunch *l, int count, ProgCall call) {
    for (int i = 0; i < count; i++) {
        *(void **)&call.fn = dlsym(e->handle, l[i].kernel);
        if (!call.fn) {
            printf("  FAIL kernel %s is in the plan but not in the module\n", l[i].kernel);
            return -1;
        }
        if (e->launch(prog_thunk, &call, (unsigned)cuda_grid_x(&l[i], call.n, EMU_TILES), (unsigned)l[i].grid_y,
                      (unsigned)l[i].grid_z, (unsigned)l[i].block)) {
            printf("  FAIL bad launch of %s\n", l[i].kernel);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------- comparing */

static void fill_nan(void *a, int f64, long n) {
    for (long i = 0; i < n; i++) {
        if (f64) ((double *)a)[i] = NAN;
        else ((float *)a)[i] = NAN;
    }
}

/* The emulated values against the CPU backend's: max |diff| / max |cpu| <= tol (a NaN fails). */
static void compare(const char *what, const void *cpu, const void *emu, int f64, long n, double tol) {
    if (!t_close("    ", what, emu, f64, cpu, f64, n, tol)) failures++;
}

/* ---------------------------------------------------------------------------- one spec */

/* --hazards: the modes of cuda_emu.hpp (DINO_EMU_HAZARDS), each run after the normal mode on
 * the same module and inputs; results must equal the normal mode's bit for bit, except the
 * parameter gradient and loss terms under `blocks`, which blocks sum with atomicAdd in another
 * order (to 1e-12 in f64, 1e-5 in f32). */
static const char *const hazard_modes[] = {"random", "reverse", "blocks", "poison", "divergence"};
enum { N_HAZARDS = sizeof hazard_modes / sizeof *hazard_modes };
static int hazards; /* run the cases under every mode too */
static int fast;    /* --fast: f32 with train { math fast } (f64 is not run) */
/* --fast: the fast f32 activations against the default ones, max |diff| / max |value| per
 * tensor on the CPU backend (docs/language.md, train: math fast) */
static const double fast_tol = 1e-5;

/* The programs' outputs: y, J (predict), G, terms (train). */
typedef struct {
    void *y, *J, *G;
    double pterms[64], terms[64];
    int ok;
} EmuRun;

/* Runs predict then train with fresh, NaN-filled workspaces. */
static void emu_run_programs(const Emu *emu, const CudaPlan *plan, int f64, ProgCall base, long ny, long nJ, long np,
                             EmuRun *r) {
    size_t es = f64 ? sizeof(double) : sizeof(float);
    long pw = (long)base.nmax * plan->predict_work, tw = (long)base.nmax * plan->train_work;
    void *work = malloc(es * (size_t)(pw > tw ? pw : tw) + 64);
    fill_nan(work, f64, pw);
    fill_nan(r->y, f64, ny);
    if (r->J) fill_nan(r->J, f64, nJ);
    fill_nan(r->pterms, 1, 64);
    ProgCall call = {.P = base.P,
                     .n = base.n,
                     .nmax = base.nmax,
                     .x = base.x,
                     .y = r->y,
                     .J = r->J,
                     .terms = r->pterms,
                     .work = work};
    r->ok = run_program(emu, plan->predict, plan->n_predict, call) == 0;
    fill_nan(work, f64, tw);
    fill_nan(r->G, f64, np);
    fill_nan(r->terms, 1, 64);
    call = base;
    call.G = r->G, call.terms = r->terms, call.work = work;
    r->ok = r->ok && run_program(emu, plan->train, plan->n_train, call) == 0;
    free(work);
}

/* Each hazard mode against the normal mode (want). */
static void run_hazards(const Emu *emu, const CudaPlan *plan, int f64, ProgCall base, long ny, long nJ, long np,
                        int n_terms, const EmuRun *want) {
    size_t es = f64 ? sizeof(double) : sizeof(float);
    for (int h = 0; h < N_HAZARDS; h++) {
        EmuRun got = {
            .y = malloc(es * (size_t)ny), .J = want->J ? malloc(es * (size_t)nJ) : NULL, .G = malloc(es * (size_t)np)};
        setenv("DINO_EMU_HAZARDS", hazard_modes[h], 1);
        emu_run_programs(emu, plan, f64, base, ny, nJ, np, &got);
        unsetenv("DINO_EMU_HAZARDS");
        char what[64];
        if (!got.ok) {
            printf("    FAIL %s: a launch failed\n", hazard_modes[h]);
            failures++;
        } else {
            double tol = strcmp(hazard_modes[h], "blocks") ? 0 : f64 ? 1e-12 : 1e-5;
            snprintf(what, sizeof what, "%s: y", hazard_modes[h]);
            compare(what, want->y, got.y, f64, ny, 0);
            if (want->J)
                snprintf(what, sizeof what, "%s: J", hazard_modes[h]), compare(what, want->J, got.J, f64, nJ, 0);
            snprintf(what, sizeof what, "%s: G", hazard_modes[h]);
            compare(what, want->G, got.G, f64, np, tol);
            snprintf(what, sizeof what, "%s: terms", hazard_modes[h]);
            compare(what, want->terms, got.terms, 1, n_terms, tol);
        }
        free(got.y), free(got.J), free(got.G);
    }
}

static int load_spec(const Case *c, const char *shared, char *path, size_t len) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/specs", shared);
    if (t_spec_path(path, len, c->shared ? dir : specs_dir, c->file)) return -1;
    return access(path, R_OK) == 0 ? 0 : -1;
}

static void run_case(const Case *c, int ci, const char *shared, int f64, int fuse) {
    static const char *const fuse_names[] = {"auto", "none", "tiles"};
    char path[512], err[4096], tag[128];
    printf("%s (%s, --fuse %s, n %d of %d)\n", c->name, f64 ? "f64" : "f32", fuse_names[fuse], c->n, c->nmax);
    if (load_spec(c, shared, path, sizeof path)) {
        printf("  SKIP: %s not found\n", path);
        return;
    }
    Frontend fe;
    if (frontend_run(&fe, path, stdout, 0, NULL)) {
        printf("  FAIL: the spec does not check\n");
        failures++;
        frontend_free(&fe);
        return;
    }
    if (fast) fe.model->train.fast_math = 1;
    const Model *m = fe.model;
    size_t len;
    double t0 = t_now();
    char *csrc = generate_c(&fe.arena, m, c->jac, f64, 42, &len, err, sizeof err);
    CpuModule cpu;
    if (!csrc || cpu_module_load(csrc, len, &cpu, err, sizeof err)) {
        printf("  FAIL CPU backend: %s\n", err);
        failures++;
        free(csrc);
        frontend_free(&fe);
        return;
    }
    free(csrc);
    CudaPlan plan;
    EmitOptions opt = {.f64 = f64, .spec_hash = 42, .fuse = fuse};
    char *cu = generate_cuda(&fe.arena, m, c->jac, &opt, &len, &plan, err, sizeof err);
    Emu emu = {0};
    snprintf(tag, sizeof tag, "%s_%s_%s", c->name, f64 ? "f64" : "f32", fuse_names[fuse]);
    int tiles = 0;
    for (int i = 0; cu && i < plan.n_train; i++) tiles += plan.train[i].tiles;
    if (cu) printf("  %d + %d kernels (%d tile kernels in train)\n", plan.n_predict, plan.n_train, tiles);
    if (!cu || emu_load(tag, cu, len, NULL, &emu)) {
        if (!cu) printf("  FAIL generate_cuda: %s\n", err);
        failures++;
        free(cu);
        cpu_module_free(&cpu);
        frontend_free(&fe);
        return;
    }
    free(cu);
    double t1 = t_now();

    int n = c->n, nmax = c->nmax, in = m->in_dim, out = m->out_dim;
    size_t es = f64 ? sizeof(double) : sizeof(float);
    long np = (long)m->n_weights;
    /* parameters: the default initialisation, weights scaled up and random biases so that
     * every activation works away from its linear range */
    double *Pd = malloc(sizeof(double) * (size_t)np);
    init_params(m->params, m->n_params, Pd, 1, 1234 + (uint64_t)ci);
    Rng r;
    rng_seed(&r, 99 + (uint64_t)ci);
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        for (int64_t k = 0; k < p->size; k++) /* a basis's frozen layer (zero after init_params): any matrix */
            Pd[p->offset + k] = p->ndim == 2 ? (p->frozen ? rng_normal(&r) / sqrt(p->fan_in) : 1.5 * Pd[p->offset + k])
                                             : 0.5 * rng_normal(&r);
    }
    void *P = malloc(es * (size_t)np), *x = malloc(es * (size_t)(nmax * in)), *y = malloc(es * (size_t)(nmax * out)),
         *J = malloc(es * (size_t)nmax * out * in);
    int32_t *label = malloc(sizeof(int32_t) * (size_t)nmax);
    for (long i = 0; i < np; i++) f64 ? (void)(((double *)P)[i] = Pd[i]) : (void)(((float *)P)[i] = (float)Pd[i]);
    for (long i = 0; i < (long)nmax * in; i++)
        f64 ? (void)(((double *)x)[i] = rng_normal(&r)) : (void)(((float *)x)[i] = (float)rng_normal(&r));
    for (long i = 0; i < (long)nmax * out; i++)
        f64 ? (void)(((double *)y)[i] = rng_normal(&r)) : (void)(((float *)y)[i] = (float)rng_normal(&r));
    for (long i = 0; i < (long)nmax * out * in; i++)
        f64 ? (void)(((double *)J)[i] = rng_normal(&r)) : (void)(((float *)J)[i] = (float)rng_normal(&r));
    for (int i = 0; i < nmax; i++) label[i] = (int32_t)rng_below(&r, (uint64_t)out);
    double w[16];
    for (int i = 0; i < m->n_loss && i < 16; i++) w[i] = m->loss[i].weight;
    double tol = f64 ? 1e-10 : 2e-5;

    /* predict */
    int has_J = !m->classifier;
    void *y_cpu = calloc((size_t)n * out, es), *J_cpu = calloc((size_t)n * out * in, es);
    void *y_emu = calloc((size_t)n * out, es), *J_emu = calloc((size_t)n * out * in, es);
    void *work_cpu = malloc(es * (size_t)cpu.predict_work(nmax) + 64);
    cpu.predict(P, n, nmax, x, y_cpu, has_J ? J_cpu : NULL, work_cpu);
    free(work_cpu);
    long pw = (long)nmax * plan.predict_work;
    void *work = malloc(es * (size_t)pw + 64);
    fill_nan(work, f64, pw);
    fill_nan(y_emu, f64, (long)n * out);
    fill_nan(J_emu, f64, (long)n * out * in);
    double pterms[64]; /* Parareal corrections and gates (pint tol), as the CUDA backend gives */
    fill_nan(pterms, 1, 64);
    ProgCall call = {
        .P = P, .n = n, .nmax = nmax, .x = x, .y = y_emu, .J = has_J ? J_emu : NULL, .terms = pterms, .work = work};
    if (run_program(&emu, plan.predict, plan.n_predict, call) == 0) {
        compare("y", y_cpu, y_emu, f64, (long)n * out, tol);
        if (has_J) compare("J", J_cpu, J_emu, f64, (long)n * out * in, tol);
    } else {
        failures++;
    }
    free(work);

    /* train */
    int n_terms = m->n_loss + monitor_count(m); /* loss terms, then Parareal corrections */
    double terms_cpu[64] = {0}, terms_emu[64];
    if (n_terms > 64) n_terms = 64, printf("  FAIL: more terms than the test holds (64)\n"), failures++;
    void *G_cpu = malloc(es * (size_t)np), *G_emu = malloc(es * (size_t)np);
    work_cpu = malloc(es * (size_t)cpu.train_work(nmax) + 64);
    cpu.train_step(P, G_cpu, n, nmax, x, y, J, label, w, terms_cpu, work_cpu);
    free(work_cpu);
    if (fast) { /* the CPU backend's fast math against its default math */
        fe.model->train.fast_math = 0;
        char *dsrc = generate_c(&fe.arena, m, c->jac, f64, 42, &len, err, sizeof err);
        fe.model->train.fast_math = 1;
        CpuModule def;
        if (!dsrc || cpu_module_load(dsrc, len, &def, err, sizeof err)) {
            printf("  FAIL CPU backend (default math): %s\n", err);
            failures++;
        } else {
            void *yd = calloc((size_t)n * out, es), *Jd = calloc((size_t)n * out * in, es),
                 *Gd = malloc(es * (size_t)np);
            double td[64] = {0};
            void *wd = malloc(es *
                                  (size_t)(def.predict_work(nmax) > def.train_work(nmax) ? def.predict_work(nmax)
                                                                                         : def.train_work(nmax)) +
                              64);
            def.predict(P, n, nmax, x, yd, has_J ? Jd : NULL, wd);
            def.train_step(P, Gd, n, nmax, x, y, J, label, w, td, wd);
            compare("fast math: y against default math", yd, y_cpu, f64, (long)n * out, fast_tol);
            if (has_J) compare("fast math: J against default math", Jd, J_cpu, f64, (long)n * out * in, fast_tol);
            compare("fast math: G against default math", Gd, G_cpu, f64, np, fast_tol);
            compare("fast math: terms against default math", td, terms_cpu, 1, n_terms, fast_tol);
            free(yd), free(Jd), free(Gd), free(wd);
            cpu_module_free(&def);
        }
        free(dsrc);
    }
    long tw = (long)nmax * plan.train_work;
    work = malloc(es * (size_t)tw + 64);
    fill_nan(work, f64, tw);
    fill_nan(G_emu, f64, np);
    fill_nan(terms_emu, 1, 64);
    call = (ProgCall){.P = P,
                      .G = G_emu,
                      .n = n,
                      .nmax = nmax,
                      .x = x,
                      .y = y,
                      .J = J,
                      .label = label,
                      .w = w,
                      .terms = terms_emu,
                      .work = work};
    if (run_program(&emu, plan.train, plan.n_train, call) == 0) {
        compare("G", G_cpu, G_emu, f64, np, tol);
        if (f64 || n_terms == m->n_loss) {
            compare("terms", terms_cpu, terms_emu, 1, n_terms, tol);
        } else { /* f32: the loss terms as the rest; the monitors (Parareal corrections, dopri5's
                  * error norms, times, steps and accept flags) to monitor_tol */
            compare("terms: loss", terms_cpu, terms_emu, 1, m->n_loss, tol);
            compare("terms: monitors", terms_cpu + m->n_loss, terms_emu + m->n_loss, 1, n_terms - m->n_loss,
                    monitor_tol);
        }
        if (n_terms > m->n_loss + correction_count(m)) { /* gate flags: which Parareal iterations ran */
            printf("    gates (iterations 2.. ran):");
            for (int i = m->n_loss + correction_count(m); i < n_terms; i++) printf(" %g", terms_emu[i]);
            printf("\n");
        }
    } else {
        failures++;
    }
    printf("    (%d + %d kernels, %.1f s to build, %.1f s to run)\n", plan.n_predict, plan.n_train, t1 - t0,
           t_now() - t1);
    free(work);
    if (hazards) { /* every hazard mode against the normal mode, on the same module and inputs */
        double t2 = t_now();
        EmuRun want = {.y = malloc(es * (size_t)n * out),
                       .J = has_J ? malloc(es * (size_t)n * out * in) : NULL,
                       .G = malloc(es * (size_t)np)};
        ProgCall base = {.P = P, .n = n, .nmax = nmax, .x = x, .y = y, .J = J, .label = label, .w = w};
        emu_run_programs(&emu, &plan, f64, base, (long)n * out, (long)n * out * in, np, &want);
        if (!want.ok) printf("    FAIL normal mode: a launch failed\n"), failures++;
        else run_hazards(&emu, &plan, f64, base, (long)n * out, (long)n * out * in, np, n_terms, &want);
        printf("    (hazard modes %s: %.1f s)\n", "random reverse blocks poison divergence", t_now() - t2);
        free(want.y), free(want.J), free(want.G);
    }
    free(G_cpu), free(G_emu), free(y_cpu), free(J_cpu), free(y_emu), free(J_emu);
    free(Pd), free(P), free(x), free(y), free(J), free(label);
    emu_free(&emu);
    cuda_plan_free(&plan);
    cpu_module_free(&cpu);
    frontend_free(&fe);
}

/* ---------------------------------------------------------------------------- prelude kernels */

/* Wrappers that make gemm<TA, TB, BM, BN> launchable. */
static const char *gemm_wrappers =
    "\n#define T(ta, tb, bm, bn) extern \"C\" __global__ void t_gemm_##ta##tb##_##bm##_##bn(long M, long N, long K, "
    "\\\n"
    "    const real *A, long lda, const real *B, long ldb, real *C, long ldc, int acc) { \\\n"
    "    gemm<ta, tb, bm, bn>(M, N, K, A, lda, B, ldb, C, ldc, acc); }\n"
    "T(0,0,64,64) T(0,1,64,64) T(1,0,64,64) T(1,1,64,64) T(0,0,16,16) T(1,1,16,16) T(0,1,32,16) T(1,0,16,64)\n"
    "T(0,0,32,32) T(1,0,64,16)\n";

typedef void (*GemmFn)(long, long, long, const void *, long, const void *, long, void *, long, int);
typedef struct {
    GemmFn fn;
    long M, N, K;
    const void *A;
    long lda;
    const void *B;
    long ldb;
    void *C;
    long ldc;
    int acc;
} GemmCall;
static void gemm_thunk(void *c) {
    GemmCall *g = c;
    g->fn(g->M, g->N, g->K, g->A, g->lda, g->B, g->ldb, g->C, g->ldc, g->acc);
}

/* The optimisers and gathers read the step's scalars from device memory (emit.h DinoStepSlot) */
typedef void (*AdamFn)(void *P, const void *G, void *m, void *v, long long count, const double *step, double b1,
                       double b2, double eps, double decay);
typedef void (*SgdFn)(void *P, const void *G, void *buf, long long count, const double *step, double decay,
                      double momentum);
typedef struct {
    int kind; /* 0 adam, 1 adamw, 2 sgd */
    void *fn, *P, *m, *v;
    const void *G;
    long long count;
    double b1, b2, eps, decay, momentum;
    double step[STEP_VALUES];
} OptCall;
static void opt_thunk(void *c) {
    OptCall *o = c;
    if (o->kind == 2) ((SgdFn)o->fn)(o->P, o->G, o->m, o->count, o->step, o->decay, o->momentum);
    else ((AdamFn)o->fn)(o->P, o->G, o->m, o->v, o->count, o->step, o->b1, o->b2, o->eps, o->decay);
}

typedef struct {
    double v[STEP_VALUES];
} StepArg;
typedef void (*SetStepFn)(double *step, StepArg s);
typedef void (*GatherFn)(const void *src, long long cols, const long long *idx, const double *step, int n, void *dst);
typedef void (*GatherLabelFn)(const int32_t *src, const long long *idx, const double *step, int n, int32_t *dst);
typedef void (*IotaFn)(long long *idx, long long count);
typedef struct {
    int kind;
    void *fn;
    const void *src;
    long long cols, count;
    const long long *idx;
    const double *step;
    int n;
    void *dst;
    StepArg values;
} GatherCall;
static void gather_thunk(void *c) {
    GatherCall *g = c;
    if (g->kind == 0) ((GatherFn)g->fn)(g->src, g->cols, g->idx, g->step, g->n, g->dst);
    else if (g->kind == 1) ((GatherLabelFn)g->fn)(g->src, g->idx, g->step, g->n, g->dst);
    else if (g->kind == 2) ((IotaFn)g->fn)((long long *)g->dst, g->count);
    else ((SetStepFn)g->fn)((double *)g->dst, g->values);
}

static void test_prelude(const char *shared, int f64) {
    char path[512], err[4096], tag[64];
    printf("prelude kernels (%s)\n", f64 ? "f64" : "f32");
    snprintf(path, sizeof path, "%s/specs/dino_small.dino", shared);
    Frontend fe;
    if (access(path, R_OK) || frontend_run(&fe, path, stdout, 0, NULL)) {
        printf("  SKIP: %s not found\n", path);
        return;
    }
    size_t len;
    EmitOptions opt = {.f64 = f64, .spec_hash = 42};
    char *cu = generate_cuda(&fe.arena, fe.model, JAC_AUTO, &opt, &len, NULL, err, sizeof err);
    frontend_free(&fe);
    Emu emu = {0};
    snprintf(tag, sizeof tag, "prelude_%s", f64 ? "f64" : "f32");
    if (!cu || emu_load(tag, cu, len, gemm_wrappers, &emu)) {
        failures++;
        free(cu);
        return;
    }
    free(cu);
    size_t es = f64 ? sizeof(double) : sizeof(float);
    Rng r;
    rng_seed(&r, 5);

    /* gemm: C (M, N) = (acc ? C : 0) + op(A) op(B) */
    static const int shapes[][4] = {{0, 0, 64, 64}, {0, 1, 64, 64}, {1, 0, 64, 64}, {1, 1, 64, 64}, {0, 0, 16, 16},
                                    {1, 1, 16, 16}, {0, 1, 32, 16}, {1, 0, 16, 64}, {0, 0, 32, 32}, {1, 0, 64, 16}};
    static const long sizes[][3] = {{70, 37, 45}, {1, 1, 1}, {64, 64, 16}, {130, 5, 200}, {3, 129, 17}};
    double worst = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++)
            for (int acc = 0; acc < 2; acc++) {
                int ta = shapes[s][0], tb = shapes[s][1], bm = shapes[s][2], bn = shapes[s][3];
                long M = sizes[z][0], N = sizes[z][1], K = sizes[z][2];
                long lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 1;
                long ar = ta ? K : M, br = tb ? N : K;
                double *A = malloc(sizeof(double) * (size_t)(ar * lda)),
                       *B = malloc(sizeof(double) * (size_t)(br * ldb)),
                       *C = malloc(sizeof(double) * (size_t)(M * ldc));
                void *Ae = malloc(es * (size_t)(ar * lda)), *Be = malloc(es * (size_t)(br * ldb)),
                     *Ce = malloc(es * (size_t)(M * ldc));
                for (long i = 0; i < ar * lda; i++) A[i] = f64 ? rng_normal(&r) : (float)rng_normal(&r);
                for (long i = 0; i < br * ldb; i++) B[i] = f64 ? rng_normal(&r) : (float)rng_normal(&r);
                for (long i = 0; i < M * ldc; i++) C[i] = f64 ? rng_normal(&r) : (float)rng_normal(&r);
                for (long i = 0; i < ar * lda; i++)
                    f64 ? (void)(((double *)Ae)[i] = A[i]) : (void)(((float *)Ae)[i] = (float)A[i]);
                for (long i = 0; i < br * ldb; i++)
                    f64 ? (void)(((double *)Be)[i] = B[i]) : (void)(((float *)Be)[i] = (float)B[i]);
                for (long i = 0; i < M * ldc; i++)
                    f64 ? (void)(((double *)Ce)[i] = C[i]) : (void)(((float *)Ce)[i] = (float)C[i]);
                char name[64];
                snprintf(name, sizeof name, "t_gemm_%d%d_%d_%d", ta, tb, bm, bn);
                GemmCall g = {
                    .M = M, .N = N, .K = K, .A = Ae, .lda = lda, .B = Be, .ldb = ldb, .C = Ce, .ldc = ldc, .acc = acc};
                *(void **)&g.fn = dlsym(emu.handle, name);
                emu.launch(gemm_thunk, &g, (unsigned)((M + bm - 1) / bm), (unsigned)((N + bn - 1) / bn), 1, 256);
                double scale = 0, diff = 0;
                for (long i = 0; i < M; i++)
                    for (long j = 0; j < ldc; j++) {
                        double want = C[i * ldc + j];
                        if (j < N) {
                            double sum = 0;
                            for (long k = 0; k < K; k++)
                                sum += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
                            want = acc ? want + sum : sum;
                        }
                        scale = fmax(scale, fabs(want));
                        diff = fmax(diff, fabs(want - t_at(Ce, f64, i * ldc + j))); /* column N: untouched */
                    }
                double rel = diff / scale;
                if (!(rel <= worst)) worst = rel;
                if (!(rel <= (f64 ? 1e-13 : 1e-5))) {
                    printf("    FAIL %s M %ld N %ld K %ld acc %d: max |diff| / max |C| = %.2e\n", name, M, N, K, acc,
                           rel);
                    failures++;
                }
                free(A), free(B), free(C), free(Ae), free(Be), free(Ce);
            }
    printf("    %-4s gemm, 4 transposes, 7 tiles, 5 sizes, accumulate on and off: worst %.2e\n",
           worst <= (f64 ? 1e-13 : 1e-5) ? "ok" : "FAIL", worst);

    /* optimisers over three steps, against runtime/optim.c */
    enum { NP = 1000 };
    static const struct {
        int kind;
        double decay, momentum;
        const char *name;
    } opts[] = {{0, 0, 0, "adam"},
                {0, 0.01, 0, "adam + L2"},
                {1, 0.01, 0, "adamw"},
                {2, 0, 0, "sgd"},
                {2, 0.001, 0.9, "sgd momentum + L2"}};
    for (size_t k = 0; k < sizeof opts / sizeof *opts; k++) {
        OptimConfig cfg = {.kind = opts[k].kind == 0 ? OPT_ADAM
                               : opts[k].kind == 1   ? OPT_ADAMW
                                                     : OPT_SGD,
                           .lr = 1e-2,
                           .beta1 = 0.9,
                           .beta2 = 0.999,
                           .eps = 1e-8,
                           .decay = opts[k].decay,
                           .momentum = opts[k].momentum};
        Optim o;
        optim_init(&o, &cfg, NP, f64);
        void *Pc = malloc(es * NP), *Pe = malloc(es * NP), *G = malloc(es * NP), *me = calloc(NP, es),
             *ve = calloc(NP, es);
        for (int i = 0; i < NP; i++) {
            double p = rng_normal(&r);
            f64 ? (void)(((double *)Pc)[i] = ((double *)Pe)[i] = p)
                : (void)(((float *)Pc)[i] = ((float *)Pe)[i] = (float)p);
        }
        OptCall oc = {.kind = opts[k].kind,
                      .P = Pe,
                      .m = me,
                      .v = ve,
                      .G = G,
                      .count = NP,
                      .b1 = cfg.beta1,
                      .b2 = cfg.beta2,
                      .eps = cfg.eps,
                      .decay = cfg.decay,
                      .momentum = cfg.momentum};
        oc.fn = dlsym(emu.handle, opts[k].kind == 0 ? "dino_adam" : opts[k].kind == 1 ? "dino_adamw" : "dino_sgd");
        for (int step = 1; step <= 3; step++) {
            for (int i = 0; i < NP; i++)
                f64 ? (void)(((double *)G)[i] = rng_normal(&r)) : (void)(((float *)G)[i] = (float)rng_normal(&r));
            double lr = cfg.lr * (1 - 0.1 * step);
            optim_step(&o, Pc, G, lr);
            oc.step[STEP_LR] = lr;
            oc.step[STEP_BC1] = 1.0 - pow(cfg.beta1, step);
            oc.step[STEP_BC2] = 1.0 - pow(cfg.beta2, step);
            oc.step[STEP_FIRST_UPDATE] = step == 1;
            emu.launch(opt_thunk, &oc, 3, 1, 1, 256);
        }
        compare(opts[k].name, Pc, Pe, f64, NP, 1e-15);
        optim_free(&o);
        free(Pc), free(Pe), free(G), free(me), free(ve);
    }

    /* dino_set_step, then gathers from position 3 of the row order, and iota */
    enum { ROWS = 10, COLS = 7, BATCH = 6, FIRST = 3 };
    long long idx[FIRST + BATCH] = {1, 4, 8, 7, 2, 9, 0, 2, 5}, iota[ROWS];
    double src[ROWS * COLS], step[STEP_VALUES];
    int32_t lab[ROWS], lab_out[BATCH];
    void *srce = malloc(es * ROWS * COLS), *dst = malloc(es * BATCH * COLS);
    for (int i = 0; i < ROWS * COLS; i++) {
        src[i] = i * 0.5 - 3;
        f64 ? (void)(((double *)srce)[i] = src[i]) : (void)(((float *)srce)[i] = (float)src[i]);
    }
    for (int i = 0; i < ROWS; i++) lab[i] = 100 + i;
    int bad = 0;
    GatherCall gc = {.kind = 3, .fn = dlsym(emu.handle, "dino_set_step"), .dst = step};
    for (int i = 0; i < STEP_VALUES; i++) gc.values.v[i] = i == STEP_FIRST ? FIRST : 0.25 * i;
    emu.launch(gather_thunk, &gc, 1, 1, 1, STEP_VALUES);
    for (int i = 0; i < STEP_VALUES; i++) bad += step[i] != gc.values.v[i];
    gc = (GatherCall){.kind = 0,
                      .fn = dlsym(emu.handle, "dino_gather"),
                      .src = srce,
                      .cols = COLS,
                      .idx = idx,
                      .step = step,
                      .n = BATCH,
                      .dst = dst};
    emu.launch(gather_thunk, &gc, 1, 1, 1, 256);
    for (int b = 0; b < BATCH; b++)
        for (int c = 0; c < COLS; c++) bad += t_at(dst, f64, b * COLS + c) != src[idx[FIRST + b] * COLS + c];
    gc = (GatherCall){.kind = 1,
                      .fn = dlsym(emu.handle, "dino_gather_label"),
                      .src = lab,
                      .idx = idx,
                      .step = step,
                      .n = BATCH,
                      .dst = lab_out};
    emu.launch(gather_thunk, &gc, 1, 1, 1, 256);
    for (int b = 0; b < BATCH; b++) bad += lab_out[b] != lab[idx[FIRST + b]];
    gc = (GatherCall){.kind = 2, .fn = dlsym(emu.handle, "dino_iota"), .count = ROWS, .dst = iota};
    emu.launch(gather_thunk, &gc, 2, 1, 1, 256);
    for (int i = 0; i < ROWS; i++) bad += iota[i] != i;
    printf("    %-4s dino_set_step, dino_gather, dino_gather_label, dino_iota\n", bad ? "FAIL" : "ok");
    if (bad) failures++;
    free(srce), free(dst);
    emu_free(&emu);
}

/* ---------------------------------------------------------------------------- broken kernels */
/* tests/emu/hazards.cu: one deliberately broken kernel per hazard mode, right in the normal mode
 * and caught (a wrong result or a failed launch) in its own, so each mode is shown to work. */

typedef void (*HazardFn)(float *out, const float *in, int stamp);
typedef struct {
    HazardFn fn;
    float *out;
    const float *in;
    int stamp;
} HazardCall;
static void hazard_thunk(void *c) {
    HazardCall *h = c;
    h->fn(h->out, h->in, h->stamp);
}

enum { HZ_BLOCKS = 4, HZ_THREADS = 64 };

/* What kernel k must write for stamp: the right answer. */
static float hazard_want(const char *k, const float *in, int stamp, int i) {
    if (strcmp(k, "missing_barrier") == 0) return (float)(stamp + i % HZ_THREADS - 1);
    if (strcmp(k, "block_chain") == 0) return (float)(stamp + i);
    if (strcmp(k, "shared_carry") == 0) return (float)(stamp + i * (i + 1) / 2);
    if (strcmp(k, "unzeroed_shared") == 0) {
        int count = 0, b = i / HZ_THREADS;
        for (int j = 0; j < HZ_THREADS; j++) count += ((int)in[b * HZ_THREADS + j] & 63) == i % HZ_THREADS;
        return (float)count;
    }
    return (float)(stamp + i % HZ_THREADS); /* divergent_barrier */
}

/* Runs kernel k in mode (NULL: normal); 1 when its result is right, 0 wrong, -1 a failed launch. */
static int hazard_run(const Emu *e, const char *k, const char *mode, int stamp) {
    enum { N = HZ_BLOCKS * HZ_THREADS };
    static float out[N], in[N];
    for (int i = 0; i < N; i++) out[i] = NAN, in[i] = (float)((i * 7 + i / 5) % 13);
    HazardCall c = {.out = out, .in = in, .stamp = stamp};
    *(void **)&c.fn = dlsym(e->handle, k);
    if (!c.fn) return -1;
    if (mode) setenv("DINO_EMU_HAZARDS", mode, 1);
    int per_block = strcmp(k, "block_chain") == 0 || strcmp(k, "shared_carry") == 0;
    int rc = e->launch(hazard_thunk, &c, HZ_BLOCKS, 1, 1, HZ_THREADS);
    unsetenv("DINO_EMU_HAZARDS");
    if (rc) return -1;
    for (int i = 0; i < (per_block ? HZ_BLOCKS : N); i++)
        if (!(out[i] == hazard_want(k, in, stamp, i))) { return 0; }
    return 1;
}

static void test_broken_kernels(const char *source_dir) {
    static const struct {
        const char *kernel, *mode;
    } broken[] = {{"missing_barrier", "random"}, {"missing_barrier", "reverse"}, {"block_chain", "blocks"},
                  {"shared_carry", "blocks"},    {"unzeroed_shared", "poison"},  {"divergent_barrier", "divergence"}};
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/emu/hazards.cu", source_dir);
    printf("hazard modes: broken kernels (%s)\n", path);
    FILE *f = fopen(path, "rb");
    char *src = NULL;
    size_t len = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        len = (size_t)ftell(f);
        rewind(f);
        src = malloc(len + 1);
        if (src && fread(src, 1, len, f) != len) len = 0;
        fclose(f);
    }
    Emu emu = {0};
    if (!src || !len || emu_load("hazards", src, len, NULL, &emu)) {
        printf("  FAIL: %s does not load\n", path);
        failures++;
        free(src);
        return;
    }
    free(src);
    size_t (*shared_bytes)(void) = (size_t(*)(void))dlsym(emu.handle, "emu_shared_bytes");
    size_t bytes = shared_bytes ? shared_bytes() : 0;
    printf("  %-4s the emulation finds the module's shared memory: %zu bytes (2 x 64 floats and 1 expected)\n",
           bytes >= 129 * sizeof(float) ? "ok" : "FAIL", bytes);
    failures += bytes < 129 * sizeof(float);
    for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
        int stamp = 1000 * (int)(i + 1);
        int normal = hazard_run(&emu, broken[i].kernel, NULL, stamp);
        int caught = hazard_run(&emu, broken[i].kernel, broken[i].mode, stamp + 100);
        int again = hazard_run(&emu, broken[i].kernel, NULL, stamp + 200); /* the emulation recovers */
        int ok = normal == 1 && caught != 1 && again == 1;
        const char *err = "";
        if (caught < 0) {
            const char *(*emu_error)(void) = (const char *(*)(void))dlsym(emu.handle, "emu_error");
            err = emu_error ? emu_error() : "";
        }
        printf("  %-4s %-18s right in the normal mode (%s), %s under %s%s%s\n", ok ? "ok" : "FAIL", broken[i].kernel,
               normal == 1 ? "yes" : "no",
               caught == 1       ? "NOT caught"
                   : caught == 0 ? "wrong"
                                 : "launch refused",
               broken[i].mode, *err ? ": " : "", err);
        failures += !ok;
    }
    emu_free(&emu);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--hazards") == 0) {
        hazards = 1;
        argv[1] = argv[0];
        argc--, argv++;
    }
    if (argc > 1 && strcmp(argv[1], "--fma") == 0) {
        char probe[600];
        snprintf(probe, sizeof probe, "'%s' -mfma -fsyntax-only -x c++ /dev/null 2>/dev/null",
                 getenv("CXX") ? getenv("CXX") : "c++");
        emu_flags = system(probe) == 0 ? "-O1 -mfma -ffp-contract=fast" : "-O1 -ffp-contract=fast";
        fma_only_f32 = 1;
        argv[1] = argv[0];
        argc--, argv++;
    }
    if (argc > 1 && strcmp(argv[1], "--fast") == 0) {
        fast = 1;
        argv[1] = argv[0];
        argc--, argv++;
    }
    if (argc > 2 && strcmp(argv[1], "--specs") == 0) {
        specs_dir = argv[2];
        argv[2] = argv[0];
        argc -= 2, argv += 2;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: test_cuda_emu [--specs DIR] SOURCE_DIR SHARED_DIR [CASE...]\n");
        return 2;
    }
    static char default_specs[4096];
    snprintf(default_specs, sizeof default_specs, "%s/tests/specs", argv[1]);
    if (!specs_dir) specs_dir = default_specs;
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* The CPU reference runs single-threaded: the same sums in the same order every run. */
    setenv("OMP_NUM_THREADS", "1", 1);
    if (find_cxx()) {
        printf("SKIP: no C++ compiler ($CXX, c++, g++, clang++) to build the emulated CUDA\n");
        return SKIP;
    }
    snprintf(emu_header, sizeof emu_header, "%s/tests/cuda_emu.hpp", argv[1]);
    snprintf(tmpdir, sizeof tmpdir, "%s/dino_cuda_emu.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    const char *shared = argv[2];
    double t0 = t_now();
    int only = argc > 3;
    for (int f64 = fast || fma_only_f32 ? 0 : 1; f64 >= 0; f64--) {
        int want_prelude = !only;
        for (int i = 3; i < argc; i++) want_prelude |= strcmp(argv[i], "prelude") == 0;
        if (want_prelude && !hazards) test_prelude(shared, f64);
        if (hazards && f64) test_broken_kernels(argv[1]);
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            int want = !only;
            for (int k = 3; k < argc; k++) want |= strcmp(argv[k], cases[i].name) == 0;
            if (!want) continue;
            if (hazards) { /* fuse auto: tile kernels, where the barriers and shared memory are;
                            * mlp_and_arithmetic: gemm kernels of many blocks (--fuse none) */
                run_case(&cases[i], (int)i, shared, f64,
                         strcmp(cases[i].name, "mlp_and_arithmetic") ? FUSE_AUTO : FUSE_NONE);
                continue;
            }
            run_case(&cases[i], (int)i, shared, f64, FUSE_AUTO);
            if (fma_only_f32) continue; /* --fma: the tile kernels NVRTC would contract */
            if (cases[i].also & ALSO_NONE) run_case(&cases[i], (int)i, shared, f64, FUSE_NONE);
            if (cases[i].also & ALSO_TILES) run_case(&cases[i], (int)i, shared, f64, FUSE_TILES);
        }
    }
    if (!failures) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd)) {}
    } else {
        printf("(emulated sources kept in %s)\n", tmpdir);
    }
    printf("%s: %d failure%s, %.0f s\n", failures ? "FAIL" : "ok", failures, failures == 1 ? "" : "s", t_now() - t0);
    return failures ? 1 : 0;
}
