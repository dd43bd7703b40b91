/* test_pint.c - Parareal against the serial fine solve, through the whole compiler.
 *
 * The node_small network with a 4-slice Parareal partition (coarse euler 1 step, fine rk4 2
 * steps per slice, eval parareal) is generated for K = 0 .. 4 iterations and compared, output
 * and Jacobian, with the serial fine solve (rk4, 8 steps) of the same parameters, in f64 on the
 * CPU backend. With K equal to the number of slices Parareal is exact: agreement to 1e-12
 * relative. For fewer iterations the error must shrink as K grows. A non-uniform partition is
 * exact with K = slices as well (against iteration 0 with the fine propagator as the coarse
 * one, which is the serial fine solve over the same slices), with either Jacobian mode. The
 * correction sizes a training step reports per iteration (the MONITOR terms) match the same
 * sums computed from predictions of the slice ends. With `tol` the iterations stop at the
 * first correction at or below it, and everything (prediction, Jacobian, loss, gradient)
 * equals the run with that many iterations. With saved times inside and on the boundaries of
 * slices (pint_save.dino.in), Parareal's trajectory approaches the serial one and equals it with
 * K = slices.
 *
 * The specs are filled in from the templates tests/specs/pint_k.dino.in, pint_state.dino.in and
 * pint_tol_sweep.dino.in (their @KEY@ placeholders) and written to OUT_DIR.
 *
 * usage: test_pint SPECS_DIR OUT_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_jit.h"
#include "emit.h"
#include "frontend.h"
#include "harness.h"
#include "init.h"

enum { ROWS = 16 };

static const char *specs_dir; /* the templates */

/* The text of SPECS_DIR/<tmpl>.dino.in with its placeholders filled (pairs: "KEY", "value", ...,
 * NULL), malloc'd; NULL after printing why. */
static char *spec_text(const char *tmpl, const char *const *pairs) {
    char path[4096], err[4200];
    snprintf(path, sizeof path, "%s/%s.dino.in", specs_dir, tmpl);
    char *text = t_spec_fill(path, pairs, err, sizeof err);
    if (!text) fprintf(stderr, "%s\n", err);
    return text;
}

/* Writes a spec (text: NULL fails), checks it and loads its generated C (f64). */
static int load(const char *dir, const char *name, const char *text, JacMode jac, Frontend *fe, CpuModule *mod) {
    char path[4096], err[2048];
    if (!text || t_spec_path(path, sizeof path, dir, name) || t_write_file(path, text, strlen(text))) return -1;
    if (frontend_run(fe, path, stderr, 0, NULL)) return -1;
    Arena a = {0};
    size_t len;
    char *src = generate_c(&a, fe->model, jac, 1, 0, &len, err, sizeof err);
    int rc = !src || cpu_module_load(src, len, mod, err, sizeof err) ? -1 : 0;
    if (rc) fprintf(stderr, "%s\n", err);
    free(src);
    arena_free(&a);
    return rc;
}

/* Parameters: the default initialisation of seed 5, a little stiffer; inputs: fixed. */
static double *params(const Model *m) {
    double *P = malloc(sizeof(double) * (size_t)m->n_weights);
    init_params(m->params, m->n_params, P, 1, 5);
    for (long i = 0; i < m->n_weights; i++) P[i] *= 1.5;
    return P;
}

static void inputs(double *x, int n) {
    for (int i = 0; i < n; i++) x[i] = sin(1.3 * i + 0.2);
}

/* Output [ROWS, 3] and Jacobian [ROWS, 3, 5] of the template tmpl (pint_k; pint_save: [ROWS, 4, 3]
 * and [ROWS, 4, 3, 5]) with `pint` as its pint line (may be ""). */
static int predict_tmpl(const char *tmpl, const char *dir, const char *name, const char *pint, JacMode jac, double *y,
                        double *J) {
    const char *pairs[] = {"PINT", pint, NULL};
    char *text = spec_text(tmpl, pairs);
    Frontend fe;
    CpuModule mod;
    int rc = load(dir, name, text, jac, &fe, &mod);
    free(text);
    if (rc) return -1;
    double *P = params(fe.model), x[ROWS * 5];
    inputs(x, ROWS * 5);
    double *work = malloc(sizeof(double) * (size_t)mod.predict_work(ROWS));
    mod.predict(P, ROWS, ROWS, x, y, J, work);
    free(work), free(P);
    cpu_module_free(&mod);
    frontend_free(&fe);
    return 0;
}

static int predict_mode(const char *dir, const char *name, const char *pint, JacMode jac, double *y, double *J) {
    return predict_tmpl("pint_k", dir, name, pint, jac, y, J);
}

/* Saved times (pint_save: inside slices and on their boundaries): Parareal's trajectory
 * approaches the serial fine solve's as K grows and equals it with K = slices, both Jacobian
 * modes. Returns the failures, or -1. */
static int check_saves(const char *dir, int *passes) {
    enum { OUT = 4 * 3 };
    static double ys[ROWS * OUT], Js[ROWS * OUT * 5], y[ROWS * OUT], J[ROWS * OUT * 5];
    int failures = 0;
    for (int mode = 0; mode < 2; mode++) {
        JacMode jac = mode ? JAC_FORWARD : JAC_REVERSE;
        if (predict_tmpl("pint_save", dir, "pint_save_serial", "", jac, ys, Js)) return -1;
        double prev = INFINITY;
        for (int k = 0; k <= 4; k++) {
            char pint[512], name[32];
            snprintf(pint, sizeof pint,
                     "pint parareal { slices 4; iterations %d; coarse euler steps 1; fine rk4 steps 2; eval parareal }",
                     k);
            snprintf(name, sizeof name, "pint_save_k%d", k);
            if (predict_tmpl("pint_save", dir, name, pint, jac, y, J)) return -1;
            double e = t_rel_diff(y, 1, ys, 1, ROWS * OUT, NULL, NULL),
                   ej = t_rel_diff(J, 1, Js, 1, ROWS * OUT * 5, NULL, NULL);
            double worst = e > ej ? e : ej;
            int ok = k == 4 ? worst <= 1e-12 : worst < prev;
            printf("%-4s saved times 0.125, 0.25, 0.625, 1, K = %d, %s Jacobian: trajectory error %.3e, Jacobian %.3e\n"
                   "     relative to the serial fine solve%s\n",
                   ok ? "ok" : "FAIL", k, mode ? "forward" : "reverse", e, ej,
                   k == 4 ? " (must be <= 1e-12)" : " (must shrink with K)");
            *passes += ok;
            failures += !ok;
            prev = worst;
        }
    }
    return failures;
}

/* ---------------------------------------------------------------------------- corrections */

static const double ends[] = {0, 0.3, 0.55, 1};
enum { SLICES = 3, ITER = 2 };

/* pint_state (the state itself is the output, so a prediction shows the slice ends) over the
 * first `slices` slices, malloc'd. */
static char *state_spec(int slices, int iterations) {
    char part[128] = "", end[32], steps[16], iter[16];
    for (int i = 0, n = 0; i <= slices; i++)
        n += snprintf(part + n, sizeof part - (size_t)n, "%s%g", i ? ", " : "", ends[i]);
    snprintf(end, sizeof end, "%g", ends[slices]);
    snprintf(steps, sizeof steps, "%d", 2 * slices);
    snprintf(iter, sizeof iter, "%d", iterations);
    const char *pairs[] = {"END", end, "STEPS", steps, "PARTITION", part, "ITERATIONS", iter, NULL};
    return spec_text("pint_state", pairs);
}

/* The diagnostic terms of a training step (sum over slice ends of |U_k - U_k-1|^2 and of |U_k|^2,
 * batch means) against the same sums computed from predictions: the first n slice ends after k
 * iterations are the prediction of the same Parareal cut after slice n (with at most n
 * iterations: more leave the converged slices unchanged, up to rounding). */
static int check_corrections(const char *dir) {
    char *text, name[64];
    Frontend fe;
    CpuModule mod;
    text = state_spec(SLICES, ITER);
    int rc = load(dir, "pint_state_train", text, JAC_AUTO, &fe, &mod);
    free(text);
    if (rc) return -1;
    const Model *m = fe.model;
    double *P = params(m), *G = malloc(sizeof(double) * (size_t)m->n_weights), x[ROWS * 4], y[ROWS * 4] = {0};
    inputs(x, ROWS * 4);
    double w[1] = {1}, terms[1 + 2 * ITER];
    double *work = malloc(sizeof(double) * (size_t)mod.train_work(ROWS));
    mod.train_step(P, G, ROWS, ROWS, x, y, NULL, NULL, w, terms, work);
    free(work), free(G);
    cpu_module_free(&mod);
    frontend_free(&fe);

    /* U[k][n-1]: slice end n after k iterations, [ROWS, 4] */
    static double U[ITER + 1][SLICES][ROWS * 4];
    for (int n = 1; n <= SLICES; n++)
        for (int k = 0; k <= ITER; k++) {
            text = state_spec(n, k < n ? k : n);
            snprintf(name, sizeof name, "pint_state_%d_%d", n, k);
            rc = load(dir, name, text, JAC_AUTO, &fe, &mod);
            free(text);
            if (rc) return -1;
            work = malloc(sizeof(double) * (size_t)mod.predict_work(ROWS));
            mod.predict(P, ROWS, ROWS, x, U[k][n - 1], NULL, work);
            free(work);
            cpu_module_free(&mod);
            frontend_free(&fe);
        }
    free(P);
    int failures = 0;
    for (int k = 1; k <= ITER; k++) {
        double d2 = 0, u2 = 0;
        for (int n = 0; n < SLICES; n++)
            for (int i = 0; i < ROWS * 4; i++) {
                double d = U[k][n][i] - U[k - 1][n][i];
                d2 += d * d, u2 += U[k][n][i] * U[k][n][i];
            }
        d2 /= ROWS, u2 /= ROWS;
        double e_d = fabs(terms[2 * k - 1] - d2) / d2, e_u = fabs(terms[2 * k] - u2) / u2;
        int ok = e_d <= 1e-9 && e_u <= 1e-9;
        printf("%-4s iteration %d: correction |dU|^2 %.6e (from predictions %.6e), |U|^2 %.6e (%.6e), relative\n"
               "     size %.2e (must agree to 1e-9)\n",
               ok ? "ok" : "FAIL", k, terms[2 * k - 1], d2, terms[2 * k], u2, sqrt(terms[2 * k - 1] / terms[2 * k]));
        failures += !ok;
    }
    return failures;
}

static int predict(const char *dir, const char *name, const char *pint, double *y, double *J) {
    return predict_mode(dir, name, pint, JAC_AUTO, y, J);
}

/* max |a - b| / max |b| (a NaN counts as the largest error) */
static double rel_error(const double *a, const double *b, int n) { return t_rel_diff(a, 1, b, 1, n, NULL, NULL); }

/* ---------------------------------------------------------------------------- tol */

typedef struct {
    double y[ROWS * 3], J[ROWS * 15], terms[1 + 2 + 2 * 4 + 3], *G;
    long n_params;
} TolRun;

/* Prediction (output, Jacobian) and one training step (gradient, terms) of the spec with K
 * iterations and `tol` (0: none). */
static int tol_run(const char *dir, int K, double tol, JacMode jac, TolRun *r) {
    char extra[64] = "", iter[16], name[64];
    if (tol > 0) snprintf(extra, sizeof extra, "; tol %.17g", tol);
    snprintf(iter, sizeof iter, "%d", K);
    const char *pairs[] = {"ITERATIONS", iter, "TOL", extra, NULL};
    char *text = spec_text("pint_tol_sweep", pairs);
    snprintf(name, sizeof name, "pint_tol_%d_%s_%d", K, tol > 0 ? "tol" : "none", (int)jac);
    Frontend fe;
    CpuModule mod;
    int rc = load(dir, name, text, jac, &fe, &mod);
    free(text);
    if (rc) return -1;
    const Model *m = fe.model;
    double *P = params(m), x[ROWS * 5], yd[ROWS * 3], Jd[ROWS * 15], w[2] = {1, 0.5};
    inputs(x, ROWS * 5);
    for (int i = 0; i < ROWS * 3; i++) yd[i] = cos(0.7 * i);
    for (int i = 0; i < ROWS * 15; i++) Jd[i] = sin(0.3 * i);
    double *work = malloc(sizeof(double) * (size_t)mod.predict_work(ROWS));
    mod.predict(P, ROWS, ROWS, x, r->y, r->J, work);
    free(work);
    r->n_params = m->n_weights;
    r->G = malloc(sizeof(double) * (size_t)m->n_weights);
    memset(r->terms, 0, sizeof r->terms);
    work = malloc(sizeof(double) * (size_t)mod.train_work(ROWS));
    mod.train_step(P, r->G, ROWS, ROWS, x, yd, Jd, NULL, w, r->terms, work);
    free(work), free(P);
    cpu_module_free(&mod);
    frontend_free(&fe);
    return 0;
}

/* With tol the iterations stop after the first whose correction is at most tol, per batch:
 * prediction, Jacobian, loss and gradient equal those of that many iterations without tol
 * (the gradient of the iterations that ran), and the gate flags say which ran. */
static int check_tol(const char *dir) {
    TolRun full, two, cut, tiny;
    int failures = 0;
    if (tol_run(dir, 4, 0, JAC_AUTO, &full)) return -1;
    /* the terms: 2 loss terms, then |dU|^2, |U|^2 per iteration */
    double delta[4];
    for (int k = 0; k < 4; k++) delta[k] = sqrt(full.terms[2 + 2 * k] / full.terms[3 + 2 * k]);
    printf("     corrections without tol: %.3e %.3e %.3e %.3e\n", delta[0], delta[1], delta[2], delta[3]);
    double tol = sqrt(delta[0] * delta[1]); /* iteration 1 is above, iteration 2 at or below */
    for (int mode = 0; mode < 2; mode++) {
        JacMode jac = mode ? JAC_REVERSE : JAC_FORWARD;
        if (tol_run(dir, 2, 0, jac, &two) || tol_run(dir, 4, tol, jac, &cut) || tol_run(dir, 4, 1e-300, jac, &tiny))
            return -1;
        if (mode == 0) free(full.G);
        if (mode == 0 && tol_run(dir, 4, 0, jac, &full)) return -1;
        double e_y = rel_error(cut.y, two.y, ROWS * 3), e_j = rel_error(cut.J, two.J, ROWS * 15);
        double e_g = rel_error(cut.G, two.G, (int)two.n_params), e_l = rel_error(cut.terms, two.terms, 2);
        /* gate flags after the 2 + 8 correction terms: iterations 2, 3, 4 ran? */
        int flags_ok = cut.terms[10] == 1 && cut.terms[11] == 0 && cut.terms[12] == 0;
        int ok = e_y <= 1e-14 && e_j <= 1e-14 && e_g <= 1e-13 && e_l <= 1e-14 && flags_ok;
        printf("%-4s tol %.3e (%s Jacobian) stops after iteration 2: against K = 2 without tol, output %.1e, Jacobian\n"
               "     %.1e, loss %.1e, gradient %.1e (must be <= 1e-14, 1e-14, 1e-14, 1e-13); iterations 2-4 ran: %g %g "
               "%g\n",
               ok ? "ok" : "FAIL", tol, mode ? "reverse" : "forward", e_y, e_j, e_l, e_g, cut.terms[10], cut.terms[11],
               cut.terms[12]);
        failures += !ok;
        e_y = rel_error(tiny.y, full.y, ROWS * 3), e_j = rel_error(tiny.J, full.J, ROWS * 15);
        e_g = rel_error(tiny.G, full.G, (int)full.n_params);
        ok = e_y <= 1e-14 && e_j <= 1e-14 && e_g <= 1e-13 && tiny.terms[10] == 1 && tiny.terms[11] == 1 &&
            tiny.terms[12] == 1;
        printf("%-4s tol 1e-300 (%s Jacobian) runs all 4 iterations: against K = 4 without tol, output %.1e, Jacobian "
               "%.1e,\n"
               "     gradient %.1e\n",
               ok ? "ok" : "FAIL", mode ? "reverse" : "forward", e_y, e_j, e_g);
        failures += !ok;
        free(two.G), free(cut.G), free(tiny.G);
    }
    free(full.G);
    return failures;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_pint SPECS_DIR OUT_DIR\n");
        return 2;
    }
    specs_dir = argv[1];
    const char *dir = argv[2];
    double y0[ROWS * 3], J0[ROWS * 15], y[ROWS * 3], J[ROWS * 15];
    int passes = 0, failures = 0;
    if (predict(dir, "pint_serial", "", y0, J0)) return 1;
    double prev = INFINITY;
    for (int k = 0; k <= 4; k++) {
        char pint[512], name[32];
        snprintf(pint, sizeof pint,
                 "pint parareal { slices 4; iterations %d; coarse euler steps 1; fine rk4 steps 2; eval parareal }", k);
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
    const char *partition = "pint parareal { partition [0, 0.1, 0.35, 0.5, 1]; iterations 4; coarse euler steps 1; "
                            "fine rk4 steps 2; eval parareal }";
    const char *serial_p = "pint parareal { partition [0, 0.1, 0.35, 0.5, 1]; iterations 0; coarse rk4 steps 2; fine "
                           "rk4 steps 2; eval parareal }";
    for (int mode = 0; mode < 2; mode++) {
        JacMode jac = mode ? JAC_FORWARD : JAC_REVERSE;
        double ys[ROWS * 3], Js[ROWS * 15];
        if (predict_mode(dir, "pint_part_serial", serial_p, jac, ys, Js)) return 1;
        if (predict_mode(dir, "pint_part_k4", partition, jac, y, J)) return 1;
        double e = rel_error(y, ys, ROWS * 3), ej = rel_error(J, Js, ROWS * 15);
        int ok = e <= 1e-12 && ej <= 1e-12;
        printf("%-4s partition, K = 4, %s Jacobian: output error %.3e, Jacobian error %.3e relative to the serial\n"
               "     solve over the same partition (must be <= 1e-12)\n",
               ok ? "ok" : "FAIL", mode ? "forward" : "reverse", e, ej);
        passes += ok;
        failures += !ok;
    }
    int bad = check_corrections(dir);
    if (bad < 0) return 1;
    passes += ITER - bad;
    failures += bad;
    bad = check_tol(dir);
    if (bad < 0) return 1;
    passes += 4 - bad;
    failures += bad;
    bad = check_saves(dir, &passes);
    if (bad < 0) return 1;
    failures += bad;
    printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
