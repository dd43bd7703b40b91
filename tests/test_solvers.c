/* test_solvers.c - order of accuracy of the fixed-step ODE solvers, through the whole compiler.
 *
 * The spec integrates dz/dt = t * z from z(0) = x over [0, 1] (exact: z(1) = x exp(1/2), and
 * dz(1)/dx = exp(1/2)), generated and run on the CPU backend in f64 with 10, 20, 40 and 80
 * steps. Halving the step must divide the error of the output and of the Jacobian by 2^p
 * (euler p = 1, midpoint p = 2, rk4 p = 4): each observed ratio within 15 % of 2^p. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cpu_jit.h"
#include "emit.h"
#include "frontend.h"

static int passes, failures;

/* z(1) and dz(1)/dx for x = 0.7 with `solver` and `steps`. */
static int solve(const char *dir, const char *solver, int steps, double *z, double *dzdx) {
    char path[4096], err[2048];
    snprintf(path, sizeof path, "%s/ode_%s_%d.dino", dir, solver, steps);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "model ode_order { input x[1]; output y[1]\n"
               "  ode y = x, t in [0, 1] { dy/dt = t * y; solver %s steps %d } }\n"
               "train { precision f64 }\n", solver, steps);
    fclose(f);
    Frontend fe;
    if (frontend_run(&fe, path, stderr, 0, NULL)) return -1;
    Arena a = {0};
    size_t len;
    char *src = generate_c(&a, fe.model, JAC_AUTO, 1, 0, &len, err, sizeof err);
    CpuModule mod;
    if (!src || cpu_module_load(src, len, &mod, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    double x = 0.7, P = 0, *work = malloc(sizeof(double) * (size_t)mod.predict_work(1));
    mod.predict(&P, 1, 1, &x, z, dzdx, work);
    free(work), free(src);
    cpu_module_free(&mod);
    arena_free(&a);
    frontend_free(&fe);
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    const char *solvers[] = {"euler", "midpoint", "rk4"};
    const int order[] = {1, 2, 4};
    double exact = 0.7 * exp(0.5), exact_j = exp(0.5);
    for (int s = 0; s < 3; s++) {
        double prev_e = 0, prev_j = 0;
        for (int steps = 10; steps <= 80; steps *= 2) {
            double z, j;
            if (solve(dir, solvers[s], steps, &z, &j)) {
                printf("FAIL %s: could not build\n", solvers[s]);
                failures++;
                break;
            }
            double e = fabs(z - exact), ej = fabs(j - exact_j);
            if (steps > 10) {
                double want = pow(2, order[s]), r = prev_e / e, rj = prev_j / ej;
                int ok = fabs(r / want - 1) < 0.15 && fabs(rj / want - 1) < 0.15;
                printf("%-4s %-8s steps %2d -> %2d: error %.3e -> %.3e, ratio %.3f (Jacobian %.3f), expected %.0f\n",
                       ok ? "ok" : "FAIL", solvers[s], steps / 2, steps, prev_e, e, r, rj, want);
                passes += ok;
                failures += !ok;
            }
            prev_e = e;
            prev_j = ej;
        }
    }
    printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
