/* test_reduced.c - exact training in reduced coordinates (api/reduced.c) against the frozen
 * encode/decode layers in the full-space graph (DINO_REDUCED=0), in f64, through the public API:
 * tests/specs/rb_exact.dino (active_subspace rank 4 of 12 -> mlp -> pod rank 3 of 5, relative
 * l2 and h1 terms) on random data whose Jacobians are not in the span of any rank-4 basis (so the
 * discarded part is large: the identity ||J - G E^T||^2 = ||J E - G||^2 + (||J||^2 - ||J E||^2) is
 * what keeps the two paths equal). Every epoch's training loss and the test rel_l2 and rel_h1
 * must agree to 1e-12 relative, and so must the trained model's predictions and Jacobians;
 * the reduced path must have been taken (its log line). With dino_data_allow_release the
 * results are the same bits, the released training set is refused by dino_evaluate,
 * dino_model_bases and dino_train (DINO_EUSER, with a message), the test set is not. Needs a C
 * compiler at run time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dino.h"
#include "harness.h"

enum { N = 96, IN = 12, OUT = 5, EPOCHS = 3 };

typedef struct {
    double loss[EPOCHS], l2[EPOCHS], h1[EPOCHS], acc[EPOCHS];
    int reduced, full;
} Run;

static int on_epoch(const dino_epoch *e, void *user) {
    Run *r = user;
    int i = (int)e->epoch - 1;
    if (i >= 0 && i < EPOCHS)
        r->loss[i] = e->train_loss, r->l2[i] = e->rel_l2, r->h1[i] = e->rel_h1, r->acc[i] = e->accuracy;
    return 0;
}

static void on_message(dino_message_level level, const char *text, void *user) {
    Run *r = user;
    (void)level;
    if (strstr(text, "exact training in reduced coordinates")) r->reduced = 1;
    if (strstr(text, "full-space graph")) r->full = 1;
}

/* Trains a fresh model on the arrays; its predictions on x into y, J. release: the data allow
 * dino_train to release the full-space rows (dino_data_allow_release) of the training set (1),
 * and of the test set (2): the results must not change, a released set must then be refused with
 * a message, a set not released not. */
static int train_once(T *t, const char *path, int reduced, int release, const dino_arrays *tr, const dino_arrays *te,
                      Run *r, double *y, double *J) {
    setenv("DINO_REDUCED", reduced ? "1" : "0", 1);
    dino_spec *spec = NULL;
    dino_model *model = NULL;
    dino_data *data = NULL;
    int ok = CHECK(t, dino_spec_load(path, &spec) == DINO_OK);
    dino_open_options oo = {.backend = DINO_BACKEND_CPU};
    ok = ok && CHECK(t, dino_model_open(spec, &oo, &model) == DINO_OK);
    ok = ok && CHECK(t, dino_data_from_arrays(model, tr, te, &data) == DINO_OK);
    if (ok && release) CHECK(t, dino_data_allow_release(data, DINO_SET_TRAIN) == DINO_OK);
    if (ok && release == 2) CHECK(t, dino_data_allow_release(data, DINO_SET_TEST) == DINO_OK);
    if (ok && release == 2) CHECK(t, dino_data_allow_release(data, (dino_set)7) == DINO_EUSER);
    dino_train_options o = {.on_epoch = on_epoch, .on_message = on_message, .user = r};
    ok = ok && CHECK(t, dino_train(model, data, &o) == DINO_OK);
    if (ok) {
        dino_metrics mt;
        long long ntr = 0, nte = 0;
        int jac = 0;
        CHECK(t, dino_data_rows(data, &ntr, &nte, &jac) == DINO_OK && ntr == tr->n && nte == te->n && jac);
        dino_status st = dino_evaluate(model, data, DINO_SET_TEST, &mt);
        if (release == 2 && reduced) { /* released: the test set is refused, with a message */
            CHECK(t, st == DINO_EUSER && strstr(dino_last_error(), "the test rows of these data were released"));
        } else { /* the full-space graph on the test rows: the reduced path's metrics */
            CHECK(t,
                  st == DINO_OK && mt.rows == te->n &&
                      fabs(mt.rel_h1 - r->h1[EPOCHS - 1]) <= 1e-12 * r->h1[EPOCHS - 1]);
        }
        st = dino_evaluate(model, data, DINO_SET_TRAIN, &mt);
        if (release && reduced) { /* released: the training set is refused, with a message */
            CHECK(t, st == DINO_EUSER && strstr(dino_last_error(), "the training rows of these data were released"));
            CHECK(t,
                  dino_model_bases(model, data, NULL) == DINO_EUSER && strstr(dino_last_error(), "dino_model_bases"));
            CHECK(t, dino_train(model, data, &o) == DINO_EUSER && strstr(dino_last_error(), "dino_train"));
        } else {
            CHECK(t, st == DINO_OK && mt.rows == tr->n);
        }
    }
    ok = ok && CHECK(t, dino_predict(model, te->n, te->x, y, J) == DINO_OK);
    if (!ok) printf("  %s\n", dino_last_error());
    dino_data_free(data);
    dino_model_free(model);
    dino_spec_free(spec);
    return ok;
}

/* A classifier (labels, no Jacobians) through the reduced path with both sets' full-space rows
 * released: the labels must stay (the projected sets take them after the release). */
static int train_classifier(T *t, const char *path, int reduced, const dino_arrays *tr, const dino_arrays *te, Run *r) {
    setenv("DINO_REDUCED", reduced ? "1" : "0", 1);
    dino_spec *spec = NULL;
    dino_model *model = NULL;
    dino_data *data = NULL;
    int ok = CHECK(t, dino_spec_load(path, &spec) == DINO_OK);
    dino_open_options oo = {.backend = DINO_BACKEND_CPU};
    ok = ok && CHECK(t, dino_model_open(spec, &oo, &model) == DINO_OK);
    ok = ok && CHECK(t, dino_data_from_arrays(model, tr, te, &data) == DINO_OK);
    ok = ok &&
        CHECK(t,
              dino_data_allow_release(data, DINO_SET_TRAIN) == DINO_OK &&
                  dino_data_allow_release(data, DINO_SET_TEST) == DINO_OK);
    dino_train_options o = {.on_epoch = on_epoch, .on_message = on_message, .user = r};
    ok = ok && CHECK(t, dino_train(model, data, &o) == DINO_OK);
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
    Run red, full, rel_red, rel_full;
    memset(&red, 0, sizeof red), memset(&full, 0, sizeof full);
    memset(&rel_red, 0, sizeof rel_red), memset(&rel_full, 0, sizeof rel_full);
    static double yr[N * OUT], Jr[N * OUT * IN], yf[N * OUT], Jf[N * OUT * IN], y2[N * OUT], J2[N * OUT * IN];
    int ok = train_once(&t, path, 1, 0, &tr, &te, &red, yr, Jr) && train_once(&t, path, 0, 0, &tr, &te, &full, yf, Jf);
    /* released training rows change nothing: the same bits, reduced or full-space path */
    for (int release = 1; ok && release <= 2; release++) {
        memset(&rel_red, 0, sizeof rel_red);
        if (train_once(&t, path, 1, release, &tr, &te, &rel_red, y2, J2))
            CHECK(&t,
                  rel_red.reduced && memcmp(rel_red.loss, red.loss, sizeof red.loss) == 0 &&
                      memcmp(rel_red.h1, red.h1, sizeof red.h1) == 0 && memcmp(y2, yr, sizeof y2) == 0 &&
                      memcmp(J2, Jr, sizeof J2) == 0);
    }
    if (ok && train_once(&t, path, 0, 2, &tr, &te, &rel_full, y2, J2))
        CHECK(&t, rel_full.full && memcmp(rel_full.loss, full.loss, sizeof full.loss) == 0);
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
    { /* a classifier */
        static const char text[] = "basis {\n    Vx = pod(x, rank = 4)\n}\n\nmodel rb_class {\n    input  x[12]\n"
                                   "    output y[3]\n    z = encode(x, Vx)\n    y = dense(tanh(dense(z, 8)), 3)\n}\n\n"
                                   "loss {\n    cross_entropy y\n}\n\ntrain {\n    optimizer adam(lr = 1e-2)\n"
                                   "    batch 16\n    epochs 3\n    precision f64\n}\n";
        const char *cpath = t_path(&t, "rb_class.dino");
        static int labels[N];
        for (int i = 0; i < N; i++) labels[i] = (x[i * IN] + x[i * IN + 1] > 0) + (x[i * IN + 2] > 0.25);
        dino_arrays ctr = {.n = ntr, .x = x, .labels = labels};
        dino_arrays cte = {.n = N - ntr, .x = x + ntr * IN, .labels = labels + ntr};
        Run cr, cf;
        memset(&cr, 0, sizeof cr), memset(&cf, 0, sizeof cf);
        if (CHECK(&t, t_write_file(cpath, text, strlen(text)) == 0) &&
            train_classifier(&t, cpath, 1, &ctr, &cte, &cr) && train_classifier(&t, cpath, 0, &ctr, &cte, &cf)) {
            CHECK(&t, cr.reduced && cf.full);
            double worst = 0;
            for (int e = 0; e < EPOCHS; e++) worst = fmax(worst, rel(cr.loss[e], cf.loss[e]));
            printf("  classifier, sets released: losses' worst relative difference %.2e, accuracy %.4f %.4f\n", worst,
                   cr.acc[EPOCHS - 1], cf.acc[EPOCHS - 1]);
            CHECK(&t, worst <= 1e-12 && cr.acc[EPOCHS - 1] == cf.acc[EPOCHS - 1] && cr.acc[EPOCHS - 1] > 0.4);
        }
    }
    return t_end(&t, "reduced_exact");
}
