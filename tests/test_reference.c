/* test_reference.c - the CPU backend against ../shared/reference, tensor by tensor.
 *
 * For each reference spec: generate C in f64 and f32 with the Jacobian in forward and in
 * reverse mode, load it, put the reference parameters in, and compare the outputs, the
 * Jacobians, the loss, every parameter's gradient, one SGD step (after_sgd) and three Adam
 * steps (after_adam3) with the values PyTorch computed. On a mismatch it prints the first
 * values and the largest difference. f64 must agree to 1e-9 relative, f32 to 1e-4.
 *
 * usage: test_reference SHARED_DIR SPEC_NAME */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_jit.h"
#include "emit.h"
#include "frontend.h"
#include "harness.h"
#include "npy.h"
#include "optim.h"
#include "safetensors.h"

static int failures;

/* Compares n values (got in precision f64 or f32) with double references (harness.h t_close:
 * on a mismatch the largest difference and the first values). */
static void compare(const char *what, const void *got, int f64, const double *want, long n, double tol) {
    if (!t_close("  ", what, got, f64, want, 1, n, tol)) failures++;
}

static double *as_doubles(const void *data, DType dt, long n) {
    double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (long i = 0; i < n; i++) d[i] = dt == DT_F64 ? ((const double *)data)[i] : ((const float *)data)[i];
    return d;
}

static void *to_precision(const double *d, long n, int f64) {
    void *p = malloc((f64 ? 8 : 4) * (size_t)(n ? n : 1));
    for (long i = 0; i < n; i++) {
        if (f64) ((double *)p)[i] = d[i];
        else ((float *)p)[i] = (float)d[i];
    }
    return p;
}

static double *load_npy(const char *dir, const char *name, long *n) {
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    NpyArray a;
    if (npy_load(path, &a, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    *n = (long)(a.nbytes / dtype_size(a.dtype));
    double *d = as_doubles(a.data, a.dtype, *n);
    npy_free(&a);
    return d;
}

/* The flat parameter vector from a safetensors file, in the model's layout. */
static double *load_flat(const Model *m, const char *path) {
    Safetensors s;
    char err[512];
    if (st_load(path, &s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    double *flat = calloc((size_t)m->n_weights, sizeof(double));
    for (int i = 0; i < m->n_params; i++) {
        const StTensor *t = st_find(&s, m->params[i].name);
        if (!t) {
            fprintf(stderr, "%s: no tensor %s\n", path, m->params[i].name);
            exit(1);
        }
        double *d = as_doubles(t->data, t->dtype, (long)m->params[i].size);
        memcpy(flat + m->params[i].offset, d, sizeof(double) * (size_t)m->params[i].size);
        free(d);
    }
    st_free(&s);
    return flat;
}

static void run_case(const char *shared, const Model *m, uint64_t hash, int f64, JacMode jac) {
    const char *ref = m->name;
    char dir[2048], path[4096], err[2048];
    snprintf(dir, sizeof dir, "%s/reference/%s", shared, ref);
    double tol = f64 ? 1e-9 : 1e-4;
    printf("%s, %s, %s Jacobian:\n", ref, f64 ? "f64" : "f32", jac == JAC_FORWARD ? "forward" : "reverse");

    Arena a = {0};
    size_t len;
    char *src = generate_c(&a, m, jac, f64, hash, &len, err, sizeof err);
    CpuModule mod;
    if (!src || cpu_module_load(src, len, &mod, err, sizeof err)) {
        printf("  FAIL cannot build: %s\n", err);
        failures++;
        free(src);
        arena_free(&a);
        return;
    }
    free(src);

    long nx, ny, nj, n_out, n_j, n_loss;
    char name[256];
    snprintf(name, sizeof name, "%s_data.npy", m->input);
    double *x = load_npy(dir, name, &nx);
    snprintf(name, sizeof name, "%s_data.npy", m->output);
    double *y = load_npy(dir, name, &ny);
    double *J = load_npy(dir, "J_data.npy", &nj);
    snprintf(name, sizeof name, "expected/%s.npy", m->output);
    double *want_y = load_npy(dir, name, &n_out);
    double *want_J = load_npy(dir, "expected/J.npy", &n_j);
    double *want_loss = load_npy(dir, "expected/loss.npy", &n_loss);
    int rows = (int)(nx / m->in_dim), train_rows = 8;

    snprintf(path, sizeof path, "%s/params.safetensors", dir);
    double *P0 = load_flat(m, path);
    void *P = to_precision(P0, m->n_weights, f64), *G = to_precision(P0, m->n_weights, f64);
    void *xs = to_precision(x, nx, f64), *ys = to_precision(y, ny, f64), *Js = to_precision(J, nj, f64);
    size_t es = f64 ? 8 : 4;

    /* prediction on all rows */
    void *work = malloc(es * (size_t)mod.predict_work(rows));
    void *py = malloc(es * (size_t)(rows * m->out_dim)), *pJ = malloc(es * (size_t)(rows * m->out_dim * m->in_dim));
    mod.predict(P, rows, rows, xs, py, pJ, work);
    compare("output", py, f64, want_y, n_out, tol);
    compare("Jacobian d out / d in", pJ, f64, want_J, n_j, tol);
    free(work);

    /* one training step on the training rows */
    double w[8], terms[8], loss = 0;
    for (int i = 0; i < m->n_loss; i++) w[i] = m->loss[i].weight;
    work = malloc(es * (size_t)mod.train_work(train_rows));
    mod.train_step(P, G, train_rows, train_rows, xs, ys, Js, NULL, w, terms, work);
    for (int i = 0; i < m->n_loss; i++) loss += w[i] * terms[i];
    compare("loss", f64 ? (void *)&loss : (void *)&(float){(float)loss}, f64, want_loss, 1, tol);
    snprintf(path, sizeof path, "%s/expected/grads.safetensors", dir);
    double *want_G = load_flat(m, path);
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        char what[128];
        snprintf(what, sizeof what, "gradient %s", p->name);
        compare(what, (char *)G + es * (size_t)p->offset, f64, want_G + p->offset, (long)p->size, tol);
    }

    /* the spec's training: one full-batch SGD step */
    Optim o;
    OptimConfig sgd = {.kind = m->train.optimizer,
                       .lr = m->train.lr,
                       .momentum = m->train.momentum,
                       .beta1 = m->train.beta1,
                       .beta2 = m->train.beta2,
                       .eps = m->train.eps,
                       .decay = m->train.decay};
    optim_init(&o, &sgd, m->n_weights, f64);
    optim_step(&o, P, G, m->train.lr);
    optim_free(&o);
    snprintf(path, sizeof path, "%s/expected/after_sgd.safetensors", dir);
    double *want = load_flat(m, path);
    compare("after_sgd (all parameters)", P, f64, want, m->n_weights, tol);
    free(want);

    /* three full-batch Adam steps from the reference parameters */
    free(P);
    P = to_precision(P0, m->n_weights, f64);
    OptimConfig adam = {.kind = OPT_ADAM, .lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    optim_init(&o, &adam, m->n_weights, f64);
    for (int s = 0; s < 3; s++) {
        mod.train_step(P, G, train_rows, train_rows, xs, ys, Js, NULL, w, terms, work);
        optim_step(&o, P, G, 0.01);
    }
    optim_free(&o);
    snprintf(path, sizeof path, "%s/expected/after_adam3.safetensors", dir);
    want = load_flat(m, path);
    compare("after_adam3 (all parameters)", P, f64, want, m->n_weights, f64 ? tol : 1e-3);
    free(want);

    free(work), free(py), free(pJ), free(P), free(G), free(xs), free(ys), free(Js), free(P0), free(want_G);
    free(x), free(y), free(J), free(want_y), free(want_J), free(want_loss);
    cpu_module_free(&mod);
    arena_free(&a);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_reference SHARED_DIR SPEC_NAME\n");
        return 2;
    }
    char spec[4096];
    snprintf(spec, sizeof spec, "%s/specs/%s.dino", argv[1], argv[2]);
    FILE *probe = fopen(spec, "r");
    if (!probe) {
        printf("SKIP: %s not found (the shared folder is not beside the checkout)\n", spec);
        return 77;
    }
    fclose(probe);
    Frontend fe;
    if (frontend_run(&fe, spec, stderr, 0, NULL)) return 1;
    uint64_t hash = fe.hash;
    for (int f64 = 1; f64 >= 0; f64--) {
        run_case(argv[1], fe.model, hash, f64, JAC_FORWARD);
        run_case(argv[1], fe.model, hash, f64, JAC_REVERSE);
    }
    frontend_free(&fe);
    printf("%s\n", failures ? "FAILED" : "all reference checks passed");
    return failures ? 1 : 0;
}
