/* test_fd.c - finite-difference checks of the generated derivatives, in f64.
 *
 * For each case below (its spec is tests/specs/<case>.dino, run through the front end with
 * frontend_run), and for both Jacobian modes (JAC_FORWARD and JAC_REVERSE):
 *   (a) the Jacobian J [n, out, in] from dino_predict against central differences of the
 *       output from dino_predict with respect to each input column;
 *   (b) every parameter's gradient G from dino_train_step against central differences of
 *       loss = sum_i w_i * terms_i (w_i: the spec's weights) with respect to that parameter:
 *       every entry of a tensor with at most 64 entries, else a random sample of 50;
 *   (c) the two Jacobian modes agree with each other (output, Jacobian, loss terms, gradient).
 *
 * Parameters: init_params (the default initialisation), weights then scaled by 1.5 so the
 * activations work in their nonlinear range (a basis's frozen encode/decode weights, zero after
 * init_params, are drawn from N(0, 1/fan_in); their gradient must be exactly 0), and biases
 * drawn from N(0, 0.5^2) (the default zero biases would leave odd activations' second derivatives unexercised at the origin).
 * Data: x, y and J drawn from N(0, 1), 4 rows.
 *
 * Tolerances, all in f64 with fourth-order central differences
 *   f'(u) ~ (f(u - 2h) - 8 f(u - h) + 8 f(u + h) - f(u + 2h)) / 12h,  h = 1e-4:
 *   err = |fd - analytic| / max(|analytic|, |fd|, 1e-2 * S, 1e-9), S = the largest |analytic|
 *   of that tensor (of the whole Jacobian for (a)); err must be <= 1e-6. The floor keeps
 *   entries that are zero or nearly so (ReLU's second derivative, tiny gradients) from
 *   turning round-off into a "relative" failure. Truncation error is O(h^4) ~ 1e-16 and
 *   round-off ~1e-16 |loss| / h ~ 1e-11 absolute (measured worst errors: ~1e-8), so 1e-6
 *   leaves a wide margin while any wrong rule (a missing term, a wrong sign, a factor of 2,
 *   a transposed Jacobian) is off by 1e-2 or more. (Plain central differences with h = 1e-6
 *   were tried first: their round-off, ~1e-9 absolute on losses of ~10, gives relative errors
 *   up to ~1e-6 on gradient entries of ~1e-3, too close to the tolerance.)
 *   (c) must agree to 1e-10 relative to the largest value.
 *
 * ReLU (and ELU, whose second derivative jumps at 0) would make the differences cross a
 * kink. Every spec lists the chains of dense layers that feed such an activation straight
 * from the input; the test computes those pre-activations itself and draws new data and
 * parameters (up to 200 times) until none of them is within 1e-2 of 0 for any row (the
 * widest stencil point, 2h = 2e-4 away, moves a pre-activation by a few 1e-4, at most about
 * 2e-3 in the second layer of a chain).
 *
 * Prints the worst error per case and per check; exits 1 on any failure.
 *
 * usage: test_fd --specs DIR [CASE]   (DIR: tests/specs; CASE: run only it) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cpu_jit.h"
#include "emit.h"
#include "frontend.h"
#include "harness.h"
#include "init.h"
#include "rng.h"

enum { ROWS = 4, SAMPLE = 50, ALL_UP_TO = 64, MAX_CHAINS = 4, MAX_LINKS = 4 };
static const double H = 1e-4, TOL = 1e-6, FLOOR = 1e-2, ABS_FLOOR = 1e-9, MODES_TOL = 1e-10, MARGIN = 1e-2;

typedef struct {
    const char *name; /* the spec: SPECS_DIR/<name>.dino */
    /* Chains of layers (checkpoint prefixes) whose pre-activations must stay away from 0:
     * chain[k] = {"r2.0", "r2.1", NULL} means pre0 = W0 x + b0, pre1 = W1 act(pre0) + b1, with
     * act = relu (ReLU chains) between links. */
    const char *chains[MAX_CHAINS][MAX_LINKS + 1];
} Case;

/* ---------------------------------------------------------------------------- the cases (specs in tests/specs) */

static const Case cases[] = {
    {"activations", {{"r", NULL}, {"r2.0", "r2.1", NULL}, {"a7", NULL}}},
    {"mlp_and_arithmetic", {{NULL}}},
    {"l2_only", {{"q.0", NULL}}},
    {"ode_solvers", {{NULL}}},
    {"ode_checkpoint", {{NULL}}},
    {"ode_parareal", {{NULL}}},
    {"ode_save", {{NULL}}},
    {"ode_save_checkpoint", {{NULL}}},
    {"ode_save_parareal", {{NULL}}},
    {"basis_layers", {{NULL}}}, /* encode/decode: frozen layers (random here) with no gradient */
};

/* ---------------------------------------------------------------------------- helpers */

/* Fourth-order central difference: f'(u) ~ sum coef * f(u + at * h) / h. */
static const struct { double at, coef; } STENCIL[4] = {{-2, 1.0 / 12}, {-1, -8.0 / 12}, {1, 8.0 / 12}, {2, -1.0 / 12}};

static int failures;

static const Param *find_param(const Model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

/* The smallest |pre-activation| along a chain of dense layers fed from the input, over all rows;
 * -1 when the chain names a missing parameter. */
static double chain_margin(const Model *m, const double *P, const double *x, const char *const *chain) {
    double margin = INFINITY, h[256], pre[256];
    for (int r = 0; r < ROWS; r++) {
        int dim = m->in_dim;
        for (int i = 0; i < dim; i++) h[i] = x[r * m->in_dim + i];
        for (int k = 0; chain[k]; k++) {
            char wn[128], bn[128];
            snprintf(wn, sizeof wn, "%s.weight", chain[k]);
            snprintf(bn, sizeof bn, "%s.bias", chain[k]);
            const Param *w = find_param(m, wn), *b = find_param(m, bn);
            if (!w || w->shape[1] != dim || w->shape[0] > 256) return -1;
            int out = w->shape[0];
            for (int o = 0; o < out; o++) {
                double s = b ? P[b->offset + o] : 0;
                for (int i = 0; i < dim; i++) s += P[w->offset + (int64_t)o * dim + i] * h[i];
                pre[o] = s;
                if (fabs(s) < margin) margin = fabs(s);
            }
            for (int o = 0; o < out; o++) h[o] = pre[o] > 0 ? pre[o] : 0; /* relu between links */
            dim = out;
        }
    }
    return margin;
}

/* Random parameters and data; returns the smallest kink margin over the case's chains. */
static double draw(const Case *c, const Model *m, uint64_t seed, double *P, double *x, double *y, double *J) {
    init_params(m->params, m->n_params, P, 1, seed);
    Rng r;
    rng_seed(&r, seed * 7919 + 17);
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        for (int64_t k = 0; k < p->size; k++) {
            double *v = &P[p->offset + k];
            /* a basis's frozen layer is zero until a basis fills it: any matrix will do here */
            *v = p->ndim == 2 ? (p->frozen ? rng_normal(&r) / sqrt(p->fan_in) : 1.5 * *v) : 0.5 * rng_normal(&r);
        }
    }
    for (int i = 0; i < ROWS * m->in_dim; i++) x[i] = rng_normal(&r);
    for (int i = 0; i < ROWS * m->out_dim; i++) y[i] = rng_normal(&r);
    for (int i = 0; i < ROWS * m->out_dim * m->in_dim; i++) J[i] = rng_normal(&r);
    double margin = INFINITY;
    for (int k = 0; k < MAX_CHAINS && c->chains[k][0]; k++) {
        double mk = chain_margin(m, P, x, c->chains[k]);
        if (mk < 0) {
            printf("  FAIL test setup: chain %s is not a dense chain of the model\n", c->chains[k][0]);
            failures++;
            return INFINITY;
        }
        if (mk < margin) margin = mk;
    }
    return margin;
}

/* Worst-error bookkeeping for one check. */
typedef struct {
    double worst;
    char where[160];
    double fd, an;
} Worst;

/* Records err of one finite difference fd against the analytic value an; scale = the largest
 * |analytic| of the tensor, for the floor. */
static void account(Worst *w, double fd, double an, double scale, const char *what, long idx) {
    double den = fmax(fmax(fmax(fabs(an), fabs(fd)), FLOOR * scale), ABS_FLOOR);
    double err = fabs(fd - an) / den;
    if (!(err <= w->worst)) {
        w->worst = err;
        w->fd = fd, w->an = an;
        snprintf(w->where, sizeof w->where, "%s[%ld]", what, idx);
    }
}

static void report(const char *check, const Worst *w, double tol) {
    int ok = w->worst <= tol;
    printf("  %-4s %-44s worst error %.2e (tolerance %.0e) at %s: fd %.12g, analytic %.12g\n", ok ? "ok" : "FAIL",
           check, w->worst, tol, w->where, w->fd, w->an);
    if (!ok) failures++;
}

static double loss_of(const CpuModule *mod, const Model *m, const double *P, double *G, const double *x,
                      const double *y, const double *J, const double *w, double *work) {
    double terms[16] = {0}, loss = 0;
    mod->train_step(P, G, ROWS, ROWS, x, y, J, NULL, w, terms, work);
    for (int i = 0; i < m->n_loss; i++) loss += w[i] * terms[i];
    return loss;
}

/* Results of one Jacobian mode, kept to compare the modes. */
typedef struct {
    double *yhat, *Jhat, *G, terms[16];
} ModeResult;

/* max |b - a| / max |a| (NaN counts as the worst) within MODES_TOL */
static int max_rel_diff(const double *a, const double *b, long n, double *out) {
    *out = t_rel_diff(b, 1, a, 1, n, NULL, NULL);
    return *out <= MODES_TOL;
}

static int run_mode(const Case *c, const Model *m, uint64_t hash, JacMode jac, const double *P0, const double *x,
                    const double *y, const double *J, ModeResult *res) {
    const char *mode = jac == JAC_FORWARD ? "forward" : "reverse";
    char err[2048];
    Arena a = {0};
    size_t len;
    double t0 = t_now();
    char *src = generate_c(&a, m, jac, 1, hash, &len, err, sizeof err);
    CpuModule mod;
    if (!src || cpu_module_load(src, len, &mod, err, sizeof err)) {
        printf("  FAIL %s, %s Jacobian: cannot build: %s\n", c->name, mode, err);
        failures++;
        free(src);
        arena_free(&a);
        return -1;
    }
    free(src);
    printf(" %s Jacobian mode (code %s in %.2f s):\n", mode, mod.compile_seconds > 0 ? "compiled" : "cached",
           t_now() - t0);
    int in = m->in_dim, out = m->out_dim;
    long nP = (long)m->n_weights;

    /* (a) the Jacobian against central differences of the prediction */
    double *pw = malloc(sizeof(double) * (size_t)mod.predict_work(ROWS));
    double *yhat = malloc(sizeof(double) * ROWS * out), *Jhat = malloc(sizeof(double) * ROWS * out * in);
    double *xp = malloc(sizeof(double) * ROWS * in), *yp = malloc(sizeof(double) * ROWS * out);
    mod.predict(P0, ROWS, ROWS, x, yhat, Jhat, pw);
    double Jscale = 0;
    for (long i = 0; i < (long)ROWS * out * in; i++) Jscale = fmax(Jscale, fabs(Jhat[i]));
    Worst wj = {0};
    double *fdj = calloc((size_t)ROWS * out, sizeof(double));
    for (int k = 0; k < in; k++) { /* rows are independent: perturb column k of every row at once */
        memset(fdj, 0, sizeof(double) * ROWS * out);
        for (int s = 0; s < 4; s++) {
            memcpy(xp, x, sizeof(double) * ROWS * in);
            for (int r = 0; r < ROWS; r++) xp[r * in + k] = x[r * in + k] + STENCIL[s].at * H;
            mod.predict(P0, ROWS, ROWS, xp, yp, NULL, pw);
            for (int i = 0; i < ROWS * out; i++) fdj[i] += STENCIL[s].coef * yp[i] / H;
        }
        for (int r = 0; r < ROWS; r++)
            for (int o = 0; o < out; o++) {
                long at = ((long)r * out + o) * in + k;
                account(&wj, fdj[r * out + o], Jhat[at], Jscale, "J", at);
            }
    }
    free(fdj);
    report("Jacobian d out/d in vs central differences", &wj, TOL);

    /* (b) every parameter's gradient against central differences of the weighted loss */
    double w[16];
    for (int i = 0; i < m->n_loss; i++) w[i] = m->loss[i].weight;
    double *tw = malloc(sizeof(double) * (size_t)mod.train_work(ROWS));
    double *P = malloc(sizeof(double) * (size_t)nP), *G = malloc(sizeof(double) * (size_t)nP),
           *Gs = malloc(sizeof(double) * (size_t)nP);
    memcpy(P, P0, sizeof(double) * (size_t)nP);
    mod.train_step(P, G, ROWS, ROWS, x, y, J, NULL, w, res->terms, tw);
    double loss = 0;
    for (int i = 0; i < m->n_loss; i++) loss += w[i] * res->terms[i];
    Rng pick;
    rng_seed(&pick, 12345);
    Worst all = {0};
    long checked = 0;
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        if (p->frozen) { /* a basis's layer: never trained, so its gradient must stay exactly 0 */
            int64_t nz = 0;
            for (int64_t k = 0; k < p->size; k++) nz += G[p->offset + k] != 0;
            if (nz) {
                printf("  FAIL %s: frozen, but %lld gradient entries are not 0\n", p->name, (long long)nz);
                failures++;
            }
            continue;
        }
        double scale = 0;
        for (int64_t k = 0; k < p->size; k++) scale = fmax(scale, fabs(G[p->offset + k]));
        int64_t n = p->size <= ALL_UP_TO ? p->size : SAMPLE;
        Worst wp = {0};
        for (int64_t s = 0; s < n; s++) {
            int64_t k = p->size <= ALL_UP_TO ? s : (int64_t)rng_below(&pick, (uint64_t)p->size);
            int64_t j = p->offset + k;
            double fd = 0;
            for (int st = 0; st < 4; st++) {
                P[j] = P0[j] + STENCIL[st].at * H;
                fd += STENCIL[st].coef * loss_of(&mod, m, P, Gs, x, y, J, w, tw) / H;
            }
            P[j] = P0[j];
            account(&wp, fd, G[j], scale, p->name, (long)k);
            checked++;
        }
        if (wp.worst > TOL) report(p->name, &wp, TOL); /* a failing tensor is named on its own line */
        if (!(wp.worst <= all.worst)) all = wp;
    }
    char what[128];
    snprintf(what, sizeof what, "gradients, %ld entries of %d tensors", checked, m->n_params);
    if (all.worst <= TOL) report(what, &all, TOL);
    else printf("       (%s: worst above)\n", what);
    printf("       loss %.6g, %d terms:", loss, m->n_loss);
    for (int i = 0; i < m->n_loss; i++)
        printf(" %s%s w=%g -> %.6g", loss_names[m->loss[i].kind], m->loss[i].relative ? " relative" : "", w[i],
               res->terms[i]);
    printf("\n");

    res->yhat = yhat, res->Jhat = Jhat, res->G = G;
    free(pw), free(xp), free(yp), free(tw), free(P), free(Gs);
    cpu_module_free(&mod);
    arena_free(&a);
    return 0;
}

/* Compiles every case's two modules in child processes, as many at once as there are CPUs,
 * so the C compiler (~1-5 s a module) runs in parallel; the cases then load them from the
 * cache. A child that fails says nothing: the case itself reports the error. */
static void warm_cache(const char *dir, const char *only) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int running = 0, max = cpus < 2 ? 1 : cpus > 8 ? 8 : (int)cpus;
    if (max < 2) return;
    fflush(stdout);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (only && strcmp(only, cases[i].name) != 0) continue;
        for (int mode = 0; mode < 2; mode++) {
            if (running == max && wait(NULL) > 0) running--;
            pid_t pid = fork();
            if (pid < 0) break;
            if (pid > 0) {
                running++;
                continue;
            }
            char path[4096], err[2048];
            FILE *devnull = fopen("/dev/null", "w");
            Frontend fe;
            if (!devnull || t_spec_path(path, sizeof path, dir, cases[i].name) ||
                frontend_run(&fe, path, devnull, 0, NULL))
                _exit(1);
            Arena a = {0};
            size_t len;
            uint64_t hash = fe.hash;
            char *src = generate_c(&a, fe.model, mode ? JAC_REVERSE : JAC_FORWARD, 1, hash, &len, err, sizeof err);
            CpuModule mod;
            _exit(src && cpu_module_load(src, len, &mod, err, sizeof err) == 0 ? 0 : 1);
        }
    }
    while (running > 0 && wait(NULL) > 0) running--;
}

static void run_case(const Case *c, const char *dir) {
    double t0 = t_now();
    printf("== %s\n", c->name);
    char path[4096];
    if (t_spec_path(path, sizeof path, dir, c->name) || !t_file_exists(path)) {
        printf("  FAIL no spec %s\n", path);
        failures++;
        return;
    }
    Frontend fe;
    if (frontend_run(&fe, path, stdout, 0, NULL)) {
        printf("  FAIL the front end rejected the spec\n");
        failures++;
        frontend_free(&fe);
        return;
    }
    const Model *m = fe.model;
    uint64_t hash = fe.hash;
    int in = m->in_dim, out = m->out_dim;
    long nP = (long)m->n_weights;
    double *P = malloc(sizeof(double) * (size_t)nP), *x = malloc(sizeof(double) * ROWS * in),
           *y = malloc(sizeof(double) * ROWS * out), *J = malloc(sizeof(double) * ROWS * out * in);
    uint64_t seed = 1;
    double margin = draw(c, m, seed, P, x, y, J);
    while (margin < MARGIN && seed < 200) margin = draw(c, m, ++seed, P, x, y, J);
    if (margin < MARGIN) {
        printf("  FAIL no draw keeps the kinked pre-activations %g away from 0\n", MARGIN);
        failures++;
    }
    printf("  %ld parameters in %d tensors, %d rows, seed %llu", nP, m->n_params, ROWS, (unsigned long long)seed);
    if (isfinite(margin)) printf(", smallest ReLU/ELU pre-activation |%.3g|", margin);
    printf("\n");

    ModeResult r[2] = {{0}};
    int ok_f = run_mode(c, m, hash, JAC_FORWARD, P, x, y, J, &r[0]) == 0;
    int ok_r = run_mode(c, m, hash, JAC_REVERSE, P, x, y, J, &r[1]) == 0;
    if (ok_f && ok_r) { /* (c) the two modes compute the same function */
        double dy, dj, dg, dt;
        int ok = max_rel_diff(r[0].yhat, r[1].yhat, (long)ROWS * out, &dy);
        ok &= max_rel_diff(r[0].Jhat, r[1].Jhat, (long)ROWS * out * in, &dj);
        ok &= max_rel_diff(r[0].G, r[1].G, nP, &dg);
        ok &= max_rel_diff(r[0].terms, r[1].terms, m->n_loss, &dt);
        printf("  %-4s forward vs reverse mode: output %.1e, Jacobian %.1e, loss terms %.1e, gradient %.1e"
               " (relative, tolerance %.0e)\n",
               ok ? "ok" : "FAIL", dy, dj, dt, dg, MODES_TOL);
        if (!ok) failures++;
    }
    for (int i = 0; i < 2; i++) free(r[i].yhat), free(r[i].Jhat), free(r[i].G);
    free(P), free(x), free(y), free(J);
    frontend_free(&fe);
    printf("  (%s: %.2f s)\n", c->name, t_now() - t0);
}

int main(int argc, char **argv) {
    const char *only = NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--specs") == 0 && i + 1 < argc) dir = argv[++i];
        else if (argv[i][0] != '-' && !only) only = argv[i];
        else dir = NULL, i = argc;
    }
    if (!dir) {
        fprintf(stderr, "usage: test_fd --specs DIR [CASE]\n");
        return 2;
    }
    printf("finite differences: f64, fourth-order central, h = %g; pass when err <= %g, err = |fd - analytic| /"
           " max(|analytic|, |fd|, %g * largest |analytic| of the tensor, %g)\n",
           H, TOL, FLOOR, ABS_FLOOR);
    double t0 = t_now();
    warm_cache(dir, only);
    printf("(modules compiled or found in the cache in %.1f s)\n", t_now() - t0);
    int ran = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (only && strcmp(only, cases[i].name) != 0) continue;
        run_case(&cases[i], dir);
        ran++;
    }
    if (!ran) {
        printf("no case named '%s'\n", only);
        return 2;
    }
    printf("%s (%d cases, %.1f s)\n", failures ? "FAILED" : "all finite-difference checks passed", ran, t_now() - t0);
    return failures ? 1 : 0;
}
