/* test_gpu.c - the CUDA backend on a GPU: reference values, agreement with the CPU backend,
 * and a short training run whose loss curve matches the CPU's. Without a usable GPU it prints
 * why and exits 77, which ctest shows as skipped (never as passed).
 *
 * usage: test_gpu SHARED_DIR SPECS_DIR   (SPECS_DIR: tests/specs, for gpu_wide and gpu_ckpt)
 *
 *   1. ../shared/reference/{dino_small,node_small,pint_small}: outputs and Jacobians from
 *      prediction, one SGD step (after_sgd) and three Adam steps (after_adam3) through the
 *      training loop, f64 within 1e-9 and f32 within 1e-4 (1e-3 for after_adam3 in f32, as on
 *      the CPU).
 *   2. A larger random model (200 -> 64 x 3 -> 25, H1 loss), and a neural ODE (20 -> 5) trained
 *      with checkpointing (rk4 6 steps, checkpoint 2), on random data: CUDA against CPU predictions and
 *      Jacobians, f64 within 1e-12 relative, f32 within 1e-5.
 *   3. Five epochs of training from the same initial parameters and shuffles: per-epoch losses
 *      of CUDA and CPU within 1e-9 relative in f64 (1e-3 in f32); and (f64) the same training
 *      with the gradient and the update as two graphs, and with the data streamed from host
 *      memory, equals the one-graph resident run: bit for bit on the stand-in driver, within
 *      1e-10 on a GPU, whose atomicAdd sums vary from run to run.
 * No check here compares two GPU runs exactly (issue 19, finding 8). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu_jit.h"
#include "emit.h"
#include "frontend.h"
#include "harness.h"
#include "npy.h"
#include "train.h"

static int failures, passes;

static void check(int ok, const char *what, double value, const char *unit) {
    failures += !ok;
    passes += ok;
    printf("  %-4s %-44s %.3e %s\n", ok ? "ok" : "FAIL", what, value, unit);
}

/* A library call's status: a failure is counted with its message. */
static void status_ok(int rc, const char *what, const char *err) {
    if (rc == 0) return;
    failures++;
    printf("  FAIL %s: status %d: %s\n", what, rc, err);
}

/* A Reducer for one process that counts the gradient reductions and changes nothing. */
static int count_gradient(Backend *b, double scale, void *user) {
    (void)b, (void)scale;
    ++*(int *)user;
    return 0;
}

static int keep_sums(double *v, int n, void *user) {
    (void)v, (void)n, (void)user;
    return 0;
}

static void compare(const char *what, const void *got, int f64, const void *want, int want_f64, long n, double tol) {
    int ok = t_close("  ", what, got, f64, want, want_f64, n, tol);
    failures += !ok;
    passes += ok;
}

static Frontend *load_spec(const char *path, int f64) {
    Frontend *fe = calloc(1, sizeof *fe);
    if (frontend_run(fe, path, stderr, 0, NULL)) exit(1);
    fe->model->train.f64 = f64;
    return fe;
}

static uint64_t spec_hash(const Frontend *fe) { return fe->hash; }

/* On the stand-in driver (tests/fake_cuda), whose emulation adds in a fixed order. Two CUDA runs
 * are equal bit for bit only there: on a GPU the gradient kernels' atomicAdd partial sums arrive
 * in another order each run (issue 19, finding 8), so there they are compared to a tolerance. */
static int emulated_driver(void) {
    const char *d = getenv("DINO_CUDA_DRIVER");
    return d && strstr(d, "fake_cuda") != NULL;
}

/* A trainer on the CUDA backend, or 0 after reporting why not. */
static int cuda_trainer(Trainer *t, Frontend *fe) {
    char err[8192];
    if (trainer_init(t, fe->model, spec_hash(fe), err, sizeof err)) return 0;
    double secs;
    EmitOptions eo = {.f64 = fe->model->train.f64, .spec_hash = spec_hash(fe), .fuse = FUSE_AUTO};
    CudaPlan plan = {0};
    size_t len = 0;
    Arena a = {0};
    char *src = generate_cuda(&a, fe->model, JAC_AUTO, &eo, &len, &plan, err, sizeof err);
    arena_free(&a);
    t->backend = src ? backend_cuda_new(fe->model, src, len, &plan, t->P, &t->opt, &secs, err, sizeof err) : NULL;
    free(src);
    cuda_plan_free(&plan);
    if (!t->backend) {
        printf("  FAIL CUDA backend: %s\n", err);
        failures++;
        trainer_free(t);
        return 0;
    }
    return 1;
}

static void *read_npy(const char *path, long *n, int *f64) {
    NpyArray a;
    char err[512];
    if (npy_load(path, &a, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    void *copy = malloc(a.nbytes);
    memcpy(copy, a.data, a.nbytes);
    *n = (long)(a.nbytes / dtype_size(a.dtype));
    *f64 = a.dtype == DT_F64;
    npy_free(&a);
    return copy;
}

/* ---------------------------------------------------------------------------- 1. reference */

static void reference(const char *shared, const char *name, int f64) {
    char spec[4096], dir[2048], path[4096], err[1024];
    snprintf(spec, sizeof spec, "%s/specs/%s.dino", shared, name);
    snprintf(dir, sizeof dir, "%s/reference/%s", shared, name);
    printf("%s on CUDA, %s:\n", name, f64 ? "f64" : "f32");
    double tol = f64 ? 1e-9 : 1e-4;
    for (int adam = 0; adam <= 1; adam++) {
        Frontend *fe = load_spec(spec, f64);
        Model *m = fe->model;
        m->train.schedule = SCHED_CONSTANT;
        m->train.batch = 8;
        m->train.epochs = adam ? 3 : 1;
        if (adam) {
            m->train.optimizer = OPT_ADAM;
            m->train.lr = 0.01, m->train.beta1 = 0.9, m->train.beta2 = 0.999, m->train.eps = 1e-8;
        }
        Trainer t;
        if (!cuda_trainer(&t, fe)) return;
        snprintf(path, sizeof path, "%s/params.safetensors", dir);
        if (checkpoint_load(path, m, t.P, f64, NULL, NULL, 0, NULL, err, sizeof err)) {
            printf("  FAIL %s\n", err);
            failures++;
            return;
        }
        status_ok(t.backend->push(t.backend), "push", t.backend->err);
        if (!adam) {
            long nx, ny, nj;
            int xf, yf, jf;
            snprintf(path, sizeof path, "%s/%s_data.npy", dir, m->input);
            void *x = read_npy(path, &nx, &xf);
            snprintf(path, sizeof path, "%s/expected/%s.npy", dir, m->output);
            void *want_y = read_npy(path, &ny, &yf);
            snprintf(path, sizeof path, "%s/expected/J.npy", dir);
            void *want_J = read_npy(path, &nj, &jf);
            size_t es = f64 ? 8 : 4;
            void *xs = malloc(es * (size_t)nx), *y = malloc(es * (size_t)ny), *J = malloc(es * (size_t)nj);
            for (long i = 0; i < nx; i++) {
                if (f64) ((double *)xs)[i] = t_at(x, xf, i);
                else ((float *)xs)[i] = (float)t_at(x, xf, i);
            }
            status_ok(predict_rows(&t, xs, nx / m->in_dim, y, J, err, sizeof err), "predict", err);
            compare("output", y, f64, want_y, yf, ny, tol);
            compare("Jacobian", J, f64, want_J, jf, nj, tol);
            free(x), free(want_y), free(want_J), free(xs), free(y), free(J);
        }
        Dataset tr, te;
        if (data_load(m, dir, f64, 1, &tr, &te, err, sizeof err)) {
            printf("  FAIL %s\n", err);
            failures++;
            return;
        }
        TrainOptions o = {0};
        status_ok(train(&t, &tr, &te, &o, err, sizeof err), "train", err);
        status_ok(t.backend->pull(t.backend), "pull", t.backend->err);
        Trainer want;
        trainer_init(&want, m, 0, err, sizeof err);
        snprintf(path, sizeof path, "%s/expected/%s.safetensors", dir, adam ? "after_adam3" : "after_sgd");
        if (checkpoint_load(path, m, want.P, f64, NULL, NULL, 0, NULL, err, sizeof err)) printf("  %s\n", err);
        compare(adam ? "after_adam3" : "after_sgd", t.P, f64, want.P, f64, m->n_weights, adam && !f64 ? 1e-3 : tol);
        trainer_free(&want);
        data_free(&tr), data_free(&te);
        trainer_free(&t);
        frontend_free(fe);
        free(fe);
    }
}

/* ---------------------------------------------------------------------------- 2, 3. against the CPU */

/* Two models of random data m[in] -> q[out] and its Jacobian; their specs are in tests/specs. */
static const char *specs_dir;
static const struct {
    const char *title;
    int in, out;
    const char *spec;
} models[] = {
    {"200 -> 64 x 3 -> 25", 200, 25, "gpu_wide"},
    {"neural ODE, rk4 6 steps, checkpoint 2", 20, 5, "gpu_ckpt"},
};

static void write_random_data(const char *dir, int in, int out) {
    int64_t N = 256, shape_m[2] = {N, in}, shape_q[2] = {N, out}, shape_J[3] = {N, out, in};
    double *m = malloc(sizeof(double) * (size_t)(N * in)), *q = malloc(sizeof(double) * (size_t)(N * out)),
           *J = malloc(sizeof(double) * (size_t)(N * out * in));
    uint64_t s = 12345;
    for (long i = 0; i < N * out * in; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(s >> 11) / 9007199254740992.0 - 0.5;
        if (i < N * in) m[i] = 2 * u;
        if (i < N * out) q[i] = u;
        J[i] = 0.1 * u;
    }
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/m_data.npy", dir);
    npy_save(path, DT_F64, 2, shape_m, m, err, sizeof err);
    snprintf(path, sizeof path, "%s/q_data.npy", dir);
    npy_save(path, DT_F64, 2, shape_q, q, err, sizeof err);
    snprintf(path, sizeof path, "%s/J_data.npy", dir);
    npy_save(path, DT_F64, 3, shape_J, J, err, sizeof err);
    free(m), free(q), free(J);
}

static double last_column(const char *line, int col) {
    for (int c = 0; c < col && line; c++) line = strchr(line, ',') ? strchr(line, ',') + 1 : NULL;
    return line ? atof(line) : NAN;
}

static void against_cpu(int which, int f64) {
    char dir[] = "/tmp/dino-gpu-test-XXXXXX", spec[4096], err[8192];
    if (!mkdtemp(dir)) return;
    write_random_data(dir, models[which].in, models[which].out);
    t_spec_path(spec, sizeof spec, specs_dir, models[which].spec);
    printf("CUDA against CPU, %s, %s:\n", models[which].title, f64 ? "f64" : "f32");
    Frontend *fe = load_spec(spec, f64);
    Model *m = fe->model;
    Arena a = {0};
    size_t len;
    char *src = generate_c(&a, m, JAC_AUTO, f64, spec_hash(fe), &len, err, sizeof err);
    CpuModule mod;
    Trainer cpu, gpu;
    if (!src || cpu_module_load(src, len, &mod, err, sizeof err) ||
        trainer_init(&cpu, m, spec_hash(fe), err, sizeof err)) {
        printf("  FAIL CPU module: %s\n", err);
        failures++;
        return;
    }
    free(src);
    cpu.backend = backend_cpu_new(&mod, m, cpu.P, &cpu.opt, err, sizeof err);
    if (!cpu.backend) {
        printf("  FAIL CPU backend: %s\n", err);
        failures++;
        return;
    }
    if (!cuda_trainer(&gpu, fe)) return;
    Dataset tr, te;
    if (data_load(m, dir, f64, 1, &tr, &te, err, sizeof err)) {
        printf("  FAIL %s\n", err);
        failures++;
        return;
    }
    size_t es = f64 ? 8 : 4;
    long ny = te.n * m->out_dim, nj = ny * m->in_dim;
    void *y1 = malloc(es * (size_t)ny), *y2 = malloc(es * (size_t)ny), *J1 = malloc(es * (size_t)nj),
         *J2 = malloc(es * (size_t)nj);
    status_ok(predict_rows(&cpu, te.x, te.n, y1, J1, err, sizeof err), "CPU predict", err);
    status_ok(predict_rows(&gpu, te.x, te.n, y2, J2, err, sizeof err), "CUDA predict", err);
    compare("predictions", y2, f64, y1, f64, ny, f64 ? 1e-12 : 1e-5);
    compare("Jacobians", J2, f64, J1, f64, nj, f64 ? 1e-12 : 1e-5);

    char log_cpu[4200], log_gpu[4200];
    snprintf(log_cpu, sizeof log_cpu, "%s/cpu.csv", dir);
    snprintf(log_gpu, sizeof log_gpu, "%s/gpu.csv", dir);
    TrainOptions oc = {.log = log_cpu}, og = {.log = log_gpu};
    status_ok(train(&cpu, &tr, &te, &oc, err, sizeof err), "CPU train", err);
    status_ok(train(&gpu, &tr, &te, &og, err, sizeof err), "CUDA train", err);
    FILE *fc = fopen(log_cpu, "r"), *fg = fopen(log_gpu, "r");
    char lc[512], lg[512];
    double worst = 0;
    int rows = 0;
    while (fc && fg && fgets(lc, sizeof lc, fc) && fgets(lg, sizeof lg, fg)) {
        if (rows++ == 0) continue; /* header: epoch,step,seconds,lr,train_loss,... */
        double a1 = last_column(lc, 4), a2 = last_column(lg, 4), rel = fabs(a1 - a2) / fabs(a1);
        if (!(rel <= worst)) worst = rel;
    }
    if (fc) fclose(fc);
    if (fg) fclose(fg);
    check(rows == 6 && worst <= (f64 ? 1e-9 : 1e-3), "loss curve over 5 epochs, CUDA vs CPU", worst, "relative");
    if (f64) {
        /* with a Reducer (one that leaves the sums as they are) the gradient and the update run
         * as two parts (graphs), with the reduction point between them: the same training */
        Trainer split;
        int calls = 0;
        Reducer keep = {.gradient = count_gradient, .sums = keep_sums, .user = &calls};
        if (cuda_trainer(&split, fe)) {
            split.reduce = &keep;
            TrainOptions os = {0};
            status_ok(train(&split, &tr, &te, &os, err, sizeof err), "CUDA train with a Reducer", err);
            status_ok(split.backend->pull(split.backend), "pull", split.backend->err);
            status_ok(gpu.backend->pull(gpu.backend), "pull", gpu.backend->err);
            /* bit for bit on the emulation; on a GPU within 1e-10 relative (atomic sums) */
            double rel = t_rel_diff(split.P, f64, gpu.P, f64, (long)m->n_weights, NULL, NULL);
            int same = emulated_driver() ? memcmp(split.P, gpu.P, es * (size_t)m->n_weights) == 0 : rel <= 1e-10;
            check(same && calls == 5 * 7, "grad, reduce, update as two graphs: the parameters of one", (double)calls,
                  "gradient reductions (5 epochs x 7 steps)");
            printf("       (parameters: relative difference %.3e, %s)\n", rel,
                   emulated_driver() ? "equal bit for bit required: emulation" : "within 1e-10: a GPU's atomic sums");
            trainer_free(&split);
        }
        /* the training data streamed from pinned host memory (issue 20; DINO_CUDA_STREAM=1):
         * the same kernels on the same batches, so the same parameters, bit for bit on the
         * emulation, and on a GPU within 1e-10 relative (its atomic sums vary, finding 8) */
        Trainer streamed;
        if (cuda_trainer(&streamed, fe)) {
            TrainOptions os = {0};
            setenv("DINO_CUDA_STREAM", "1", 1);
            status_ok(train(&streamed, &tr, &te, &os, err, sizeof err), "CUDA train, data streamed", err);
            unsetenv("DINO_CUDA_STREAM");
            status_ok(streamed.backend->pull(streamed.backend), "pull", streamed.backend->err);
            long differ = 0;
            for (size_t i = 0; i < es * (size_t)m->n_weights; i++)
                differ += ((const unsigned char *)streamed.P)[i] != ((const unsigned char *)gpu.P)[i];
            double rel = t_rel_diff(streamed.P, f64, gpu.P, f64, (long)m->n_weights, NULL, NULL);
            check((emulated_driver() ? differ == 0 : rel <= 1e-10) &&
                      strstr(streamed.backend->data_note, "streaming") != NULL,
                  "data streamed from host memory: resident's parameters", (double)differ, "bytes differ");
            printf("       (parameters: relative difference %.3e, %s)\n", rel,
                   emulated_driver() ? "equal bit for bit required: emulation" : "within 1e-10: a GPU's atomic sums");
            trainer_free(&streamed);
        }
    }
    free(y1), free(y2), free(J1), free(J2);
    data_free(&tr), data_free(&te);
    trainer_free(&cpu), trainer_free(&gpu);
    cpu_module_free(&mod);
    arena_free(&a);
    frontend_free(fe);
    free(fe);
}

int main(int argc, char **argv) {
    char err[1024];
    if (argc != 3) {
        fprintf(stderr, "usage: test_gpu SHARED_DIR SPECS_DIR\n");
        return 2;
    }
    if (!cuda_available(err, sizeof err)) {
        printf("SKIP: no usable GPU (%s)\n", err);
        return 77;
    }
    const char *shared = argv[1];
    specs_dir = argv[2];
    const char *refs[] = {"dino_small", "node_small", "pint_small"};
    for (int f64 = 1; f64 >= 0; f64--)
        for (int i = 0; i < 3; i++) reference(shared, refs[i], f64);
    for (int i = 0; i < (int)(sizeof models / sizeof *models); i++) {
        against_cpu(i, 1);
        against_cpu(i, 0);
    }
    printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
