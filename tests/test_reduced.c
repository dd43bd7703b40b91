/* test_reduced.c - exact training in reduced coordinates (api/reduced.c) against the frozen
 * encode/decode layers in the full-space graph (DINO_REDUCED=0), in f64, through the public API:
 * tests/specs/rb_exact.dino (active_subspace rank 4 of 12 -> mlp -> pod rank 3 of 5, relative
 * l2 and h1 terms) on random data whose Jacobians are not in the span of any rank-4 basis (so the
 * discarded part is large: the identity ||J - G E^T||^2 = ||J E - G||^2 + (||J||^2 - ||J E||^2) is
 * what keeps the two paths equal). Every epoch's training loss and the test rel_l2 and rel_h1
 * must agree to 1e-12 relative, and so must the trained model's predictions and Jacobians;
 * the reduced path must have been taken (its log line). Needs a C compiler at run time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dino.h"
#include "harness.h"

enum { N = 96, IN = 12, OUT = 5, EPOCHS = 3 };

typedef struct {
    double loss[EPOCHS], l2[EPOCHS], h1[EPOCHS];
    int reduced, full;
} Run;

static int on_epoch(const dino_epoch *e, void *user) {
    Run *r = user;
    int i = (int)e->epoch - 1;
    if (i >= 0 && i < EPOCHS) r->loss[i] = e->train_loss, r->l2[i] = e->rel_l2, r->h1[i] = e->rel_h1;
    return 0;
}

static void on_message(dino_message_level level, const char *text, void *user) {
    Run *r = user;
    (void)level;
    if (strstr(text, "exact training in reduced coordinates")) r->reduced = 1;
    if (strstr(text, "full-space graph")) r->full = 1;
}

/* Trains a fresh model on the arrays; its predictions on x into y, J. */
static int train_once(T *t, const char *path, int reduced, const dino_arrays *tr, const dino_arrays *te, Run *r,
                      double *y, double *J) {
    setenv("DINO_REDUCED", reduced ? "1" : "0", 1);
    dino_spec *spec = NULL;
    dino_model *model = NULL;
    dino_data *data = NULL;
    int ok = CHECK(t, dino_spec_load(path, &spec) == DINO_OK);
    dino_open_options oo = {.backend = DINO_BACKEND_CPU};
    ok = ok && CHECK(t, dino_model_open(spec, &oo, &model) == DINO_OK);
    ok = ok && CHECK(t, dino_data_from_arrays(model, tr, te, &data) == DINO_OK);
    dino_train_options o = {.on_epoch = on_epoch, .on_message = on_message, .user = r};
    ok = ok && CHECK(t, dino_train(model, data, &o) == DINO_OK);
    ok = ok && CHECK(t, dino_predict(model, te->n, te->x, y, J) == DINO_OK);
    if (!ok) printf("  %s\n", dino_last_error());
    dino_data_free(data);
    dino_model_free(model);
    dino_spec_free(spec);
    return ok;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-300); }

int main(int argc, char **argv) {
    T t;
    if (argc < 2) {
        fprintf(stderr, "usage: test_reduced SPECS_DIR [-v]\n");
        return 2;
    }
    char path[1024];
    if (t_spec_path(path, sizeof path, argv[1], "rb_exact")) return 2;
    if (t_begin(&t, argc - 1, argv + 1, "reduced_exact")) return 1;
    static double x[N * IN], y[N * OUT], J[N * OUT * IN];
    { /* a 64-bit LCG: data of no particular structure */
        uint64_t s = 12345;
        for (int i = 0; i < N * IN; i++)
            s = s * 6364136223846793005ull + 1442695040888963407ull,
            x[i] = (double)(s >> 11) / 9007199254740992.0 - 0.5;
        for (int i = 0; i < N * OUT * IN; i++)
            s = s * 6364136223846793005ull + 1442695040888963407ull,
            J[i] = (double)(s >> 11) / 9007199254740992.0 - 0.5;
        for (int i = 0; i < N; i++)
            for (int o = 0; o < OUT; o++) {
                double v = 1 + o;
                for (int k = 0; k < IN; k++)
                    v += J[(i * OUT + o) * IN + k] * x[i * IN + k] + 0.1 * sin(x[i * IN + k] * (o + 1));
                y[i * OUT + o] = v;
            }
    }
    int ntr = 64;
    dino_arrays tr = {.n = ntr, .x = x, .y = y, .J = J};
    dino_arrays te = {.n = N - ntr, .x = x + ntr * IN, .y = y + ntr * OUT, .J = J + ntr * OUT * IN};
    Run red, full;
    memset(&red, 0, sizeof red), memset(&full, 0, sizeof full);
    static double yr[N * OUT], Jr[N * OUT * IN], yf[N * OUT], Jf[N * OUT * IN];
    int ok = train_once(&t, path, 1, &tr, &te, &red, yr, Jr) && train_once(&t, path, 0, &tr, &te, &full, yf, Jf);
    if (ok) {
        CHECK(&t, red.reduced && !red.full);
        CHECK(&t, full.full && !full.reduced);
        double worst = 0;
        for (int e = 0; e < EPOCHS; e++) {
            worst = fmax(worst, rel(red.loss[e], full.loss[e]));
            if (t.verbose) printf("  epoch %d: loss %.17g %.17g\n", e + 1, red.loss[e], full.loss[e]);
        }
        worst = fmax(worst, rel(red.l2[EPOCHS - 1], full.l2[EPOCHS - 1]));
        worst = fmax(worst, rel(red.h1[EPOCHS - 1], full.h1[EPOCHS - 1]));
        printf("  training losses and test metrics: worst relative difference %.2e (tolerance 1e-12)\n", worst);
        CHECK(&t, worst <= 1e-12);
        CHECK(&t, full.h1[EPOCHS - 1] > 0.3); /* the discarded part is large: the identity is doing the work */
        CHECK_CLOSE(&t, "predictions", yr, 1, yf, 1, (long)te.n * OUT, 1e-12);
        CHECK_CLOSE(&t, "Jacobians", Jr, 1, Jf, 1, (long)te.n * OUT * IN, 1e-12);
    }
    return t_end(&t, "reduced_exact");
}
