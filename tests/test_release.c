/* test_release.c - dino_data_allow_release: the reduced-coordinate path frees the full-space rows
 * of the sets it may, once projected, and nothing else changes. Through the public API, in f64,
 * with tests/specs/rb_exact.dino (input and output bases, relative l2 and h1 terms) on random
 * data, and a classifier (labels, no Jacobians) written here:
 *   - the training set released (1), and the test set too (2): every epoch's loss, the test
 *     metrics and the trained model's predictions and Jacobians are the same bits as without;
 *   - afterwards dino_data_rows still reports the rows and the Jacobian; dino_evaluate on a
 *     released set, dino_model_bases and dino_train with the data are DINO_EUSER with a message
 *     naming the set; a set not released still evaluates (the test set through the full-space
 *     graph gives the reduced path's metric to 1e-12); the full-space path releases nothing;
 *   - a bad set is refused;
 *   - a classifier with both sets released keeps its labels: the same losses and accuracy as the
 *     full-space graph.
 * Needs a C compiler at run time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dino.h"
#include "harness.h"

enum { N = 96, IN = 12, OUT = 5, EPOCHS = 3, NTR = 64 };

typedef struct {
    double loss[EPOCHS], h1[EPOCHS], acc[EPOCHS];
    int reduced, full;
} Run;

static int on_epoch(const dino_epoch *e, void *user) {
    Run *r = user;
    int i = (int)e->epoch - 1;
    if (i >= 0 && i < EPOCHS) r->loss[i] = e->train_loss, r->h1[i] = e->rel_h1, r->acc[i] = e->accuracy;
    return 0;
}

static void on_message(dino_message_level level, const char *text, void *user) {
    Run *r = user;
    (void)level;
    if (strstr(text, "exact training in reduced coordinates")) r->reduced = 1;
    if (strstr(text, "full-space graph")) r->full = 1;
}

/* Trains a fresh model; release: 0 nothing allowed, 1 the training set, 2 and the test set.
 * Regression models predict on the test inputs into y, J (NULL: a classifier). */
static int train_once(T *t, const char *path, int reduced, int release, const dino_arrays *tr, const dino_arrays *te,
                      Run *r, double *y, double *J) {
    setenv("DINO_REDUCED", reduced ? "1" : "0", 1);
    dino_spec *spec = NULL;
    dino_model *model = NULL;
    dino_data *data = NULL;
    memset(r, 0, sizeof *r);
    int ok = CHECK(t, dino_spec_load(path, &spec) == DINO_OK);
    dino_open_options oo = {.backend = DINO_BACKEND_CPU};
    ok = ok && CHECK(t, dino_model_open(spec, &oo, &model) == DINO_OK);
    ok = ok && CHECK(t, dino_data_from_arrays(model, tr, te, &data) == DINO_OK);
    if (ok && release) CHECK(t, dino_data_allow_release(data, DINO_SET_TRAIN) == DINO_OK);
    if (ok && release == 2) CHECK(t, dino_data_allow_release(data, DINO_SET_TEST) == DINO_OK);
    if (ok && release == 2)
        CHECK(t, dino_data_allow_release(data, (dino_set)7) == DINO_EUSER && strstr(dino_last_error(), "no such set"));
    dino_train_options o = {.on_epoch = on_epoch, .on_message = on_message, .user = r};
    ok = ok && CHECK(t, dino_train(model, data, &o) == DINO_OK);
    int released = reduced && r->reduced; /* the full-space path releases nothing */
    if (ok && y) {
        dino_metrics mt;
        long long ntr = 0, nte = 0;
        int jac = 0;
        CHECK(t, dino_data_rows(data, &ntr, &nte, &jac) == DINO_OK && ntr == tr->n && nte == te->n && jac);
        dino_status st = dino_evaluate(model, data, DINO_SET_TEST, &mt);
        if (release == 2 && released) {
            CHECK(t, st == DINO_EUSER && strstr(dino_last_error(), "the test rows of these data were released"));
        } else { /* the full-space graph on the test rows: the training's test metric */
            CHECK(t,
                  st == DINO_OK && mt.rows == te->n &&
                      fabs(mt.rel_h1 - r->h1[EPOCHS - 1]) <= 1e-12 * r->h1[EPOCHS - 1]);
        }
        st = dino_evaluate(model, data, DINO_SET_TRAIN, &mt);
        if (release && released) {
            CHECK(t, st == DINO_EUSER && strstr(dino_last_error(), "the training rows of these data were released"));
            CHECK(t,
                  dino_model_bases(model, data, NULL) == DINO_EUSER && strstr(dino_last_error(), "dino_model_bases"));
            CHECK(t, dino_train(model, data, &o) == DINO_EUSER && strstr(dino_last_error(), "dino_train: the"));
        } else {
            CHECK(t, st == DINO_OK && mt.rows == tr->n);
        }
        ok = ok && CHECK(t, dino_predict(model, te->n, te->x, y, J) == DINO_OK);
    }
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
        fprintf(stderr, "usage: test_release SPECS_DIR [-v]\n");
        return 2;
    }
    char path[1024];
    if (t_spec_path(path, sizeof path, argv[1], "rb_exact")) return 2;
    if (t_begin(&t, argc - 1, argv + 1, "data_release")) return 1;
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
    dino_arrays tr = {.n = NTR, .x = x, .y = y, .J = J};
    dino_arrays te = {.n = N - NTR, .x = x + NTR * IN, .y = y + NTR * OUT, .J = J + NTR * OUT * IN};
    static Run base, run;
    static double y0[N * OUT], J0[N * OUT * IN], y1[N * OUT], J1[N * OUT * IN];
    for (int reduced = 1; reduced >= 0; reduced--) {
        if (!train_once(&t, path, reduced, 0, &tr, &te, &base, y0, J0)) continue;
        CHECK(&t, reduced ? base.reduced && !base.full : base.full && !base.reduced);
        for (int release = 1; release <= 2; release++)
            if (train_once(&t, path, reduced, release, &tr, &te, &run, y1, J1)) {
                int same = memcmp(run.loss, base.loss, sizeof run.loss) == 0 &&
                    memcmp(run.h1, base.h1, sizeof run.h1) == 0 && memcmp(y0, y1, sizeof y0) == 0 &&
                    memcmp(J0, J1, sizeof J0) == 0;
                printf("  %s path, release %s: %s\n", reduced ? "reduced" : "full-space",
                       release == 1 ? "training set" : "training and test sets",
                       same ? "the same bits" : "DIFFERENT results");
                CHECK(&t, same && run.reduced == base.reduced);
            }
    }

    /* a classifier: the released sets keep their labels */
    static const char text[] = "basis {\n    Vx = pod(x, rank = 4)\n}\n\nmodel rb_class {\n    input  x[12]\n"
                               "    output y[3]\n    z = encode(x, Vx)\n    y = dense(tanh(dense(z, 8)), 3)\n}\n\n"
                               "loss {\n    cross_entropy y\n}\n\ntrain {\n    optimizer adam(lr = 1e-2)\n"
                               "    batch 16\n    epochs 3\n    precision f64\n}\n";
    const char *cpath = t_path(&t, "rb_class.dino");
    static int labels[N];
    for (int i = 0; i < N; i++) labels[i] = (x[i * IN] + x[i * IN + 1] > 0) + (x[i * IN + 2] > 0.25);
    dino_arrays ctr = {.n = NTR, .x = x, .labels = labels};
    dino_arrays cte = {.n = N - NTR, .x = x + NTR * IN, .labels = labels + NTR};
    static Run cr, cf;
    if (CHECK(&t, t_write_file(cpath, text, strlen(text)) == 0) &&
        train_once(&t, cpath, 1, 2, &ctr, &cte, &cr, NULL, NULL) &&
        train_once(&t, cpath, 0, 0, &ctr, &cte, &cf, NULL, NULL)) {
        CHECK(&t, cr.reduced && cf.full);
        double worst = 0;
        for (int e = 0; e < EPOCHS; e++) worst = fmax(worst, rel(cr.loss[e], cf.loss[e]));
        printf("  classifier, both sets released: losses' worst relative difference %.2e (tolerance 1e-12), "
               "accuracy %.4f and %.4f\n",
               worst, cr.acc[EPOCHS - 1], cf.acc[EPOCHS - 1]);
        CHECK(&t, worst <= 1e-12 && cr.acc[EPOCHS - 1] == cf.acc[EPOCHS - 1] && cr.acc[EPOCHS - 1] > 0.4);
    }
    return t_end(&t, "data_release");
}
