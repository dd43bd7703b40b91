/* test_pint.c - Parareal against the serial fine solve, through the whole compiler.
 *
 * The node_small network with a 4-slice Parareal partition (coarse euler 1 step, fine rk4 2
 * steps per slice, eval parareal) is generated for K = 0 .. 4 iterations and compared, output
 * and Jacobian, with the serial fine solve (rk4, 8 steps) of the same parameters, in f64 on the
 * CPU backend. With K equal to the number of slices Parareal is exact: agreement to 1e-12
 * relative. For fewer iterations the error must shrink as K grows. A non-uniform partition is
 * exact with K = slices as well (against iteration 0 with the fine propagator as the coarse
 * one, which is the serial fine solve over the same slices), with either Jacobian mode. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cpu_jit.h"
#include "emit.h"
#include "frontend.h"
#include "init.h"

enum { ROWS = 16 };

static const char *body =
    "model pint_k { input x[5]; output y[3]\n"
    "  z0 = tanh(dense(x, 8))\n"
    "  ode z = z0, t in [0, 1] {\n"
    "    a = tanh(dense(concat(z, t), 12))\n"
    "    dz/dt = dense(a, 8)\n"
    "    solver rk4 steps 8\n"
    "%s"
    "  }\n"
    "  y = dense(z, 3) }\n"
    "train { precision f64; seed 5 }\n";

/* Output [ROWS, 3] and Jacobian [ROWS, 3, 5] of the spec with `pint` inserted (may be ""). */
static int predict_mode(const char *dir, const char *name, const char *pint, JacMode jac, double *y, double *J) {
    char path[4096], err[2048], text[2048];
    snprintf(path, sizeof path, "%s/%s.dino", dir, name);
    snprintf(text, sizeof text, body, pint);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    fclose(f);
    Frontend fe;
    if (frontend_run(&fe, path, stderr, 0, NULL)) return -1;
    const Model *m = fe.model;
    Arena a = {0};
    size_t len;
    char *src = generate_c(&a, m, jac, 1, 0, &len, err, sizeof err);
    CpuModule mod;
    if (!src || cpu_module_load(src, len, &mod, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    double *P = malloc(sizeof(double) * (size_t)m->n_weights), x[ROWS * 5];
    init_params(m->params, m->n_params, P, 1, 5);
    for (long i = 0; i < m->n_weights; i++) P[i] *= 1.5;   /* a little stiffer than the default */
    for (int i = 0; i < ROWS * 5; i++) x[i] = sin(1.3 * i + 0.2);
    double *work = malloc(sizeof(double) * (size_t)mod.predict_work(ROWS));
    mod.predict(P, ROWS, ROWS, x, y, J, work);
    free(work), free(P), free(src);
    cpu_module_free(&mod);
    arena_free(&a);
    frontend_free(&fe);
    return 0;
}

static int predict(const char *dir, const char *name, const char *pint, double *y, double *J) {
    return predict_mode(dir, name, pint, JAC_AUTO, y, J);
}

static double rel_error(const double *a, const double *b, int n) {
    double d = 0, s = 0;
    for (int i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > d) d = fabs(a[i] - b[i]);
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return d / s;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    double y0[ROWS * 3], J0[ROWS * 15], y[ROWS * 3], J[ROWS * 15];
    int passes = 0, failures = 0;
    if (predict(dir, "pint_serial", "", y0, J0)) return 1;
    double prev = INFINITY;
    for (int k = 0; k <= 4; k++) {
        char pint[512], name[32];
        snprintf(pint, sizeof pint,
                 "    pint parareal { slices 4; iterations %d; coarse euler steps 1; fine rk4 steps 2; eval parareal }\n", k);
        snprintf(name, sizeof name, "pint_k%d", k);
        if (predict(dir, name, pint, y, J)) return 1;
        double e = rel_error(y, y0, ROWS * 3), ej = rel_error(J, J0, ROWS * 15), worst = e > ej ? e : ej;
        int ok = k == 4 ? worst <= 1e-12 : worst < prev;
        printf("%-4s K = %d: output error %.3e, Jacobian error %.3e relative to the serial fine solve%s\n",
               ok ? "ok" : "FAIL", k, e, ej, k == 4 ? " (must be <= 1e-12)" : " (must shrink with K)");
        passes += ok;
        failures += !ok;
        prev = worst;
    }
    /* Non-uniform slices (each slice row its own step) and the forward-mode Jacobian through the
     * stacked fine solve: exact with K = slices too. */
    const char *partition =
        "    pint parareal { partition [0, 0.1, 0.35, 0.5, 1]; iterations 4; coarse euler steps 1; fine rk4 steps 2; eval parareal }\n";
    const char *serial_p = "    pint parareal { partition [0, 0.1, 0.35, 0.5, 1]; iterations 0; coarse rk4 steps 2; fine rk4 steps 2; eval parareal }\n";
    for (int mode = 0; mode < 2; mode++) {
        JacMode jac = mode ? JAC_FORWARD : JAC_REVERSE;
        double ys[ROWS * 3], Js[ROWS * 15];
        if (predict_mode(dir, "pint_part_serial", serial_p, jac, ys, Js)) return 1;
        if (predict_mode(dir, "pint_part_k4", partition, jac, y, J)) return 1;
        double e = rel_error(y, ys, ROWS * 3), ej = rel_error(J, Js, ROWS * 15);
        int ok = e <= 1e-12 && ej <= 1e-12;
        printf("%-4s partition, K = 4, %s Jacobian: output error %.3e, Jacobian error %.3e relative to the serial\n"
               "     solve over the same partition (must be <= 1e-12)\n", ok ? "ok" : "FAIL",
               mode ? "forward" : "reverse", e, ej);
        passes += ok;
        failures += !ok;
    }
    printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
