/* test_reduced.c - exact training in reduced coordinates (api/reduced.c) against the frozen
 * encode/decode layers in the full-space graph (DINO_REDUCED=0), in f64, through the public API,
 * and prediction in reduced coordinates (dino_predict_reduced).
 *
 * The network of tests/specs/rb_exact.dino (active_subspace rank 4 of 12 -> mlp -> pod rank 3 of
 * 5) and of its template rb_variant.dino.in, on random data whose Jacobians are not in the span of
 * any rank-4 basis and whose outputs are not in that of any rank-3 basis (so the discarded parts
 * are large: the identities are what keep the two paths equal). Cases:
 *   - both sides reduced (pod/active_subspace and orthonormal npy bases with shifts): relative l2
 *     and h1; absolute l2 with a weight ramp and h1; relative l2 alone; outputs offset along one
 *     direction so that for some samples ||q||^2 < ||D^T (q - shift)||^2 (where one extra row
 *     holding the discarded part could not give the full norm);
 *   - a validation set with keep best and early_stop: the validation losses and metrics, the best
 *     epoch, and the --save checkpoint equal the full-space run's;
 *   - an oblique output basis: the input side alone (the output stays full), still exact;
 *   - the output side alone (the input stays full): an oblique input basis, or the input also used
 *     outside encode;
 *   - oblique input and output bases: the full-space graph, saying why;
 *   - an output basis used three times: with Jacobian data (h1, or the rel_h1 metric alone) the
 *     full-space graph, saying why; without, the input side alone;
 * every epoch's training loss and the test rel_l2 and rel_h1 agree to 1e-12 relative, and so do
 * the trained model's predictions and Jacobians. dino_predict_reduced: D h + shift and D G E^T
 * equal dino_predict's outputs and Jacobians (orthonormal and oblique bases); a model without the
 * path is an error that says why. Needs a C compiler at run time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dino.h"
#include "harness.h"

enum { N = 96, IN = 12, OUT = 5, R1 = 4, R2 = 3, EPOCHS = 3, NTR = 64 };

typedef struct {
    double loss[EPOCHS], l2[EPOCHS], h1[EPOCHS], vloss[EPOCHS], vl2[EPOCHS], vh1[EPOCHS];
    int reduced, full, out_reduced, out_full, valid_reduced;
    char line[1200]; /* the reduced path's line */
    char why[700];
    long long best_epoch, epochs;
} Run;

typedef struct {
    const char *name;
    const char *path;    /* the spec file, or the name for text */
    const char *text;    /* NULL: read path */
    int files;           /* the data section's files (with a valid part), else the arrays */
    const double *y;     /* the outputs of the arrays */
    const char *saves;   /* a checkpoint path prefix ("<prefix>_1" reduced, "_0" full), or NULL */
    int nojac;           /* the arrays without Jacobians */
    const char *in_full; /* the output side alone: the reduced path's line says why the input stays full */
} Case;

static double X[N * IN], Y[N * OUT], YOFF[N * OUT], JAC[N * OUT * IN];

static int on_epoch(const dino_epoch *e, void *user) {
    Run *r = user;
    int i = (int)e->epoch - 1;
    if (i >= 0 && i < EPOCHS) {
        r->loss[i] = e->train_loss, r->l2[i] = e->rel_l2, r->h1[i] = e->rel_h1;
        if (e->validated) r->vloss[i] = e->valid_loss, r->vl2[i] = e->valid_rel_l2, r->vh1[i] = e->valid_rel_h1;
    }
    r->epochs = e->epoch;
    return 0;
}

static void on_message(dino_message_level level, const char *text, void *user) {
    Run *r = user;
    (void)level;
    if (strstr(text, "exact training in reduced coordinates")) {
        r->reduced = 1;
        r->out_reduced = strstr(text, "q [5] -> [3]") != NULL;
        r->out_full = strstr(text, "the output q stays full") != NULL;
        r->valid_reduced = strstr(text, "the validation rows too") != NULL;
        snprintf(r->line, sizeof r->line, "%s", text);
    }
    if (strstr(text, "full-space graph")) r->full = 1, snprintf(r->why, sizeof r->why, "%s", text);
}

static int open_model(T *t, const Case *c, dino_spec **spec, dino_model **model) {
    int ok = CHECK(t,
                   (c->text ? dino_spec_from_text(c->path, c->text, strlen(c->text), spec)
                            : dino_spec_load(c->path, spec)) == DINO_OK);
    dino_open_options oo = {.backend = DINO_BACKEND_CPU};
    ok = ok && CHECK(t, dino_model_open(*spec, &oo, model) == DINO_OK);
    if (!ok) printf("  %s\n%s", dino_last_error(), *spec ? dino_spec_diagnostics_text(*spec) : "");
    return ok;
}

/* Trains a fresh model of case c; its predictions on the test rows into y, J. */
static int train_once(T *t, const Case *c, int reduced, Run *r, double *y, double *J) {
    setenv("DINO_REDUCED", reduced ? "1" : "0", 1);
    dino_spec *spec = NULL;
    dino_model *model = NULL;
    dino_data *data = NULL;
    char save[600] = "";
    if (c->saves) snprintf(save, sizeof save, "%s_%d.safetensors", c->saves, reduced);
    int ok = open_model(t, c, &spec, &model);
    dino_arrays tr = {.n = NTR, .x = X, .y = c->y, .J = c->nojac ? NULL : JAC};
    dino_arrays te = {
        .n = N - NTR, .x = X + NTR * IN, .y = c->y + NTR * OUT, .J = c->nojac ? NULL : JAC + NTR * OUT * IN};
    if (c->files) ok = ok && CHECK(t, dino_data_load(model, NULL, &data) == DINO_OK);
    else ok = ok && CHECK(t, dino_data_from_arrays(model, &tr, &te, &data) == DINO_OK);
    dino_train_options o = {.on_epoch = on_epoch, .on_message = on_message, .user = r, .save = save[0] ? save : NULL};
    ok = ok && CHECK(t, dino_train(model, data, &o) == DINO_OK);
    dino_selection sel;
    if (ok && dino_model_selection(model, &sel) == DINO_OK) r->best_epoch = sel.best_epoch;
    ok = ok && CHECK(t, dino_predict(model, N - NTR, X + NTR * IN, y, J) == DINO_OK);
    if (!ok) printf("  %s\n", dino_last_error());
    dino_data_free(data);
    dino_model_free(model);
    dino_spec_free(spec);
    return ok;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-300); }

/* The reduced path against the full-space graph for case c; expect_out: the output side is
 * reduced (else the input side alone). */
static void compare(T *t, const Case *c, int expect_out) {
    static double yr[N * OUT], Jr[N * OUT * IN], yf[N * OUT], Jf[N * OUT * IN];
    Run red, full;
    memset(&red, 0, sizeof red), memset(&full, 0, sizeof full);
    printf("  case: %s\n", c->name);
    if (!train_once(t, c, 1, &red, yr, Jr) || !train_once(t, c, 0, &full, yf, Jf)) return;
    CHECK(t, red.reduced && !red.full);
    CHECK(t, full.full && !full.reduced);
    CHECK(t, red.out_reduced == expect_out && red.out_full == !expect_out);
    CHECK(t,
          c->in_full ? strstr(red.line, c->in_full) != NULL : strstr(red.line, "the input m [12] stays full") == NULL);
    if (t->verbose) printf("    %s\n", red.line);
    CHECK(t, red.epochs == full.epochs && red.epochs > 0);
    double worst = 0;
    for (int e = 0; e < full.epochs && e < EPOCHS; e++) {
        worst = fmax(worst, rel(red.loss[e], full.loss[e]));
        if (c->files)
            worst = fmax(worst,
                         fmax(rel(red.vloss[e], full.vloss[e]),
                              fmax(rel(red.vl2[e], full.vl2[e]), rel(red.vh1[e], full.vh1[e]))));
        if (t->verbose)
            printf("    epoch %d: loss %.17g %.17g, valid %.17g %.17g\n", e + 1, red.loss[e], full.loss[e],
                   red.vloss[e], full.vloss[e]);
    }
    int last = (int)full.epochs - 1;
    worst = fmax(worst, rel(red.l2[last], full.l2[last]));
    worst = fmax(worst, rel(red.h1[last], full.h1[last]));
    printf("    training losses and test metrics%s: worst relative difference %.2e (tolerance 1e-12)\n",
           c->files ? ", validation losses and metrics" : "", worst);
    CHECK(t, worst <= 1e-12);
    CHECK(t, c->nojac || full.h1[last] > 0.3); /* the discarded part is large: the identity is doing the work */
    CHECK_CLOSE(t, "predictions", yr, 1, yf, 1, (long)(N - NTR) * OUT, 1e-12);
    CHECK_CLOSE(t, "Jacobians", Jr, 1, Jf, 1, (long)(N - NTR) * OUT * IN, 1e-12);
    if (c->files) {
        CHECK(t, red.valid_reduced);
        CHECK(t, red.best_epoch == full.best_epoch && full.best_epoch > 0);
        CHECK(t, full.vloss[0] > 0);
    }
    if (c->saves) { /* the checkpoints of the two paths give the same model */
        static double y0[N * OUT], y1[N * OUT];
        double *ys[2] = {y0, y1};
        for (int k = 0; k < 2; k++) {
            char save[600];
            snprintf(save, sizeof save, "%s_%d.safetensors", c->saves, k);
            dino_spec *spec = NULL;
            dino_model *model = NULL;
            if (open_model(t, c, &spec, &model)) {
                CHECK(t, dino_model_load(model, save, NULL) == DINO_OK);
                CHECK(t, dino_predict(model, N - NTR, X + NTR * IN, ys[k], NULL) == DINO_OK);
            }
            dino_model_free(model);
            dino_spec_free(spec);
        }
        CHECK_CLOSE(t, "predictions of the saved checkpoints", y1, 1, y0, 1, (long)(N - NTR) * OUT, 1e-12);
    }
}

/* ---------------------------------------------------------------------------- data and bases */

static uint64_t S = 12345;
static double rnd(void) { /* a 64-bit LCG: values of no particular structure in [-0.5, 0.5) */
    S = S * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(S >> 11) / 9007199254740992.0 - 0.5;
}

/* D [dim, rank] with orthonormal columns (Gram-Schmidt of random columns, twice). */
static void orthonormal(double *D, int dim, int rank) {
    for (int k = 0; k < dim * rank; k++) D[k] = rnd();
    for (int pass = 0; pass < 2; pass++)
        for (int j = 0; j < rank; j++) {
            for (int i = 0; i < j; i++) {
                double d = 0;
                for (int k = 0; k < dim; k++) d += D[k * rank + i] * D[k * rank + j];
                for (int k = 0; k < dim; k++) D[k * rank + j] -= d * D[k * rank + i];
            }
            double s = 0;
            for (int k = 0; k < dim; k++) s += D[k * rank + j] * D[k * rank + j];
            for (int k = 0; k < dim; k++) D[k * rank + j] /= sqrt(s);
        }
}

static int write_npy(T *t, const char *name, int ndim, long long a, long long b, long long c, const double *v) {
    long long shape[3] = {a, b, c};
    return CHECK(t, dino_npy_write(t_path(t, name), 1, ndim, shape, v) == DINO_OK);
}

/* y = D h + s and JJ = D G E^T for n rows. */
static void lift(int n, const double *D, const double *E, int r1, const double *s, const double *h, const double *G,
                 double *y, double *JJ) {
    for (int i = 0; i < n; i++) {
        for (int o = 0; o < OUT; o++) {
            double v = s[o];
            for (int k = 0; k < R2; k++) v += D[o * R2 + k] * h[i * R2 + k];
            y[i * OUT + o] = v;
            for (int c = 0; c < IN; c++) {
                double w = 0;
                for (int k = 0; k < R2; k++)
                    for (int j = 0; j < r1; j++)
                        w += D[o * R2 + k] * G[(i * R2 + k) * r1 + j] * (E ? E[c * r1 + j] : c == j);
                JJ[(i * OUT + o) * IN + c] = w;
            }
        }
    }
}

/* dino_predict_reduced of a model trained on case c against its dino_predict; Em NULL: the input
 * stays full (z = x, G [r2, IN]). */
static void predict_reduced(T *t, const Case *c, const double *Dq, const double *sq, const double *Em) {
    enum { NT = N - NTR };
    static double h[NT * R2], G[NT * R2 * IN], y[NT * OUT], J[NT * OUT * IN], yy[NT * OUT], JJ[NT * OUT * IN];
    int want_r1 = Em ? R1 : IN;
    dino_spec *spec = NULL;
    dino_model *model = NULL;
    dino_data *data = NULL;
    Run r;
    memset(&r, 0, sizeof r);
    setenv("DINO_REDUCED", "1", 1);
    if (!open_model(t, c, &spec, &model)) return;
    dino_arrays tr = {.n = NTR, .x = X, .y = c->y, .J = JAC};
    dino_train_options o = {.on_message = on_message, .user = &r};
    int ok = CHECK(t, dino_data_from_arrays(model, &tr, NULL, &data) == DINO_OK) &&
        CHECK(t, dino_train(model, data, &o) == DINO_OK);
    int r1 = 0, r2 = 0;
    ok = ok && CHECK(t, dino_model_reduced_dims(model, &r1, &r2) == DINO_OK) && CHECK(t, r1 == want_r1 && r2 == R2);
    ok = ok && CHECK(t, dino_predict_reduced(model, NT, X + NTR * IN, h, G) == DINO_OK);
    ok = ok && CHECK(t, dino_predict(model, NT, X + NTR * IN, y, J) == DINO_OK);
    if (!ok) printf("  %s\n", dino_last_error());
    if (ok) {
        lift(NT, Dq, Em, want_r1, sq, h, G, yy, JJ);
        CHECK_CLOSE(t, "D h + shift against the full-space prediction", yy, 1, y, 1, (long)NT * OUT, 1e-12);
        CHECK_CLOSE(t, "D G E^T against the full-space Jacobian", JJ, 1, J, 1, (long)NT * OUT * IN, 1e-12);
        static double h2[NT * R2]; /* values only, and a second call (the inner model kept) */
        CHECK(t, dino_predict_reduced(model, NT, X + NTR * IN, h2, NULL) == DINO_OK);
        CHECK_CLOSE(t, "h without G", h2, 1, h, 1, (long)NT * R2, 0);
    }
    dino_data_free(data);
    dino_model_free(model);
    dino_spec_free(spec);
}

/* A checkpoint that can't be written after training began (its folder replaced by a file after
 * epoch 1): the reduced path's training stops with the writer's message, not "stopped". */
static const char *break_dir;
static int break_after_first(const dino_epoch *e, void *user) {
    (void)user;
    if (e->epoch == 1) {
        char gone[700];
        snprintf(gone, sizeof gone, "%s.gone", break_dir);
        if (rename(break_dir, gone) == 0) {
            FILE *f = fopen(break_dir, "w");
            if (f) fclose(f);
        }
    }
    return 0;
}

static void save_fails(T *t, const Case *c) {
    dino_spec *spec = NULL;
    dino_model *model = NULL;
    dino_data *data = NULL;
    char dir[600], save[700];
    snprintf(dir, sizeof dir, "%s", t_path(t, "ckdir"));
    snprintf(save, sizeof save, "%s/x.safetensors", dir);
    break_dir = dir;
    setenv("DINO_REDUCED", "1", 1);
    if (!open_model(t, c, &spec, &model)) return;
    dino_arrays tr = {.n = NTR, .x = X, .y = c->y, .J = JAC};
    Run r;
    memset(&r, 0, sizeof r);
    dino_train_options o = {.on_epoch = break_after_first, .on_message = on_message, .user = &r, .save = save};
    if (CHECK(t, dino_data_from_arrays(model, &tr, NULL, &data) == DINO_OK)) {
        int rc = dino_train(model, data, &o);
        CHECK(t, r.reduced);
        CHECK(t, rc != DINO_OK && rc != DINO_STOPPED);
        CHECK_ERR(t, rc != DINO_OK ? -1 : 0, dino_last_error(), NULL, "x.safetensors");
    }
    dino_data_free(data);
    dino_model_free(model);
    dino_spec_free(spec);
}

/* A model without the reduced path: dino_predict_reduced says why. */
static void no_path(T *t, const char *text, const char *want) {
    Case c = {.path = t_path(t, "nopath.dino"), .text = text};
    dino_spec *spec = NULL;
    dino_model *model = NULL;
    if (open_model(t, &c, &spec, &model)) {
        double x[IN] = {0}, h[OUT], G[OUT * IN];
        int rc = dino_predict_reduced(model, 1, x, h, G) == DINO_EUSER ? -1 : 0; /* a user error */
        CHECK_ERR(t, rc, dino_last_error(), NULL, "has no reduced path", want);
    }
    dino_model_free(model);
    dino_spec_free(spec);
}

int main(int argc, char **argv) {
    T t;
    if (argc < 2) {
        fprintf(stderr, "usage: test_reduced SPECS_DIR [-v]\n");
        return 2;
    }
    char path[1024], tmpl[1024];
    if (t_spec_path(path, sizeof path, argv[1], "rb_exact") ||
        (size_t)snprintf(tmpl, sizeof tmpl, "%s/rb_variant.dino.in", argv[1]) >= sizeof tmpl)
        return 2;
    if (t_begin(&t, argc - 1, argv + 1, "reduced_exact")) return 1;
    for (int i = 0; i < N * IN; i++) X[i] = rnd();
    for (int i = 0; i < N * OUT * IN; i++) JAC[i] = rnd();
    for (int i = 0; i < N; i++) {
        double a = -1 + 4 * fmod(0.6180339887 * i, 1.0); /* along u: from -1 to 3 times, mean about 1 */
        for (int o = 0; o < OUT; o++) {
            double v = 1 + o;
            for (int k = 0; k < IN; k++)
                v += JAC[(i * OUT + o) * IN + k] * X[i * IN + k] + 0.1 * sin(X[i * IN + k] * (o + 1));
            Y[i * OUT + o] = v;
            YOFF[i * OUT + o] = 0.05 * v + 10 * a * (o % 2 ? 0.5 : -0.5);
        }
    }
    /* npy bases: orthonormal with shifts, and oblique ones */
    static double Dm[IN * R1], Em_obl[IN * R1], sm[IN], Dq[OUT * R2], Eq_obl[OUT * R2], sq[OUT];
    orthonormal(Dm, IN, R1), orthonormal(Dq, OUT, R2);
    for (int k = 0; k < IN; k++) sm[k] = 0.3 * rnd();
    for (int k = 0; k < OUT; k++) sq[k] = 2 + rnd();
    for (int k = 0; k < IN * R1; k++) Em_obl[k] = Dm[k] + 0.2 * rnd();
    for (int k = 0; k < OUT * R2; k++) Eq_obl[k] = Dq[k] + 0.2 * rnd();
    write_npy(&t, "Dm.npy", 2, IN, R1, 0, Dm), write_npy(&t, "Em.npy", 2, IN, R1, 0, Em_obl);
    write_npy(&t, "sm.npy", 1, IN, 0, 0, sm), write_npy(&t, "Dq.npy", 2, OUT, R2, 0, Dq);
    write_npy(&t, "Eq.npy", 2, OUT, R2, 0, Eq_obl), write_npy(&t, "sq.npy", 1, OUT, 0, 0, sq);
    /* the data files of the validation case: 64 training, 16 validation, 16 test rows */
    write_npy(&t, "m_data.npy", 2, N, IN, 0, X), write_npy(&t, "q_data.npy", 2, N, OUT, 0, YOFF);
    write_npy(&t, "J_data.npy", 3, N, OUT, IN, JAC);

    const char *computed = "    Vm = active_subspace(dq/dm, rank = 4)\n    Vq = pod(q, rank = 3)";
    const char *npy = "    Vm = npy(decoder = \"Dm.npy\", shift = \"sm.npy\")\n"
                      "    Vq = npy(decoder = \"Dq.npy\", shift = \"sq.npy\")";
    const char *obl_out = "    Vm = npy(decoder = \"Dm.npy\", shift = \"sm.npy\")\n"
                          "    Vq = npy(decoder = \"Dq.npy\", encoder = \"Eq.npy\", shift = \"sq.npy\")";
    const char *obl_in = "    Vm = npy(decoder = \"Dm.npy\", encoder = \"Em.npy\", shift = \"sm.npy\")\n"
                         "    Vq = npy(decoder = \"Dq.npy\", shift = \"sq.npy\")";
    const char *rel_both = "    l2 q     weight 1.0 relative\n    h1 dq/dm weight 0.5 relative";
    const char *ramp = "    l2 q     weight ramp(0, 1, epochs = 2)\n    h1 dq/dm weight 0.3";
    const char *l2_only = "    l2 q weight 1.0 relative";
    char data_section[1200];
    snprintf(data_section, sizeof data_section, "data {\n    dir \"%s\"\n    split train 64, valid 16, test 16\n}",
             t.dir);
    struct {
        const char *basis, *loss, *train, *data;
    } v[] = {
        {computed, rel_both, "", ""},                                                   /* 0 offset outputs */
        {computed, ramp, "", ""},                                                       /* 1 */
        {npy, l2_only, "", ""},                                                         /* 2 */
        {npy, rel_both, "", ""},                                                        /* 3 */
        {computed, rel_both, "    keep best\n    early_stop patience 1", data_section}, /* 4 validation */
        {obl_out, rel_both, "", ""},                                                    /* 5 */
        {obl_in, rel_both, "", ""},                                                     /* 6 */
    };
    char *text[7];
    for (int i = 0; i < 7; i++) {
        const char *pairs[] = {"BASIS", v[i].basis, "LOSS", v[i].loss, "TRAIN", v[i].train, "DATA", v[i].data, NULL};
        char err[512];
        text[i] = t_spec_fill(tmpl, pairs, err, sizeof err);
        if (!CHECK(&t, text[i] != NULL)) {
            printf("  %s\n", err);
            return t_end(&t, "reduced_exact");
        }
    }
    const char *spec_path = t_path(&t, "rb_variant.dino"); /* npy files relative to the scratch folder */
    char sp[600], saves[600];
    snprintf(sp, sizeof sp, "%s", spec_path);
    snprintf(saves, sizeof saves, "%s", t_path(&t, "best"));

    Case c0 = {.name = "rb_exact.dino: pod and active_subspace, relative l2 and h1", .path = path, .y = Y};
    compare(&t, &c0, 1);
    Case c1 = {.name = "offset outputs (on both sides of the mean along one direction), relative l2 and h1",
               .path = sp,
               .text = text[0],
               .y = YOFF};
    compare(&t, &c1, 1);
    Case c2 = {"offset outputs, absolute l2 with a weight ramp, h1 weight 0.3", sp, text[1], 0, YOFF, NULL, 0, NULL};
    compare(&t, &c2, 1);
    Case c3 = {"orthonormal npy bases with shifts, relative l2 alone", sp, text[2], 0, Y, NULL, 0, NULL};
    compare(&t, &c3, 1);
    Case c4 = {
        "orthonormal npy bases with shifts, relative l2 and h1, offset outputs", sp, text[3], 0, YOFF, NULL, 0, NULL};
    { /* rows where ||q||^2 < ||D^T (q - shift)||^2: one extra row could not restore ||q||^2 */
        int below = 0;
        for (int i = 0; i < N; i++) {
            double q2 = 0, r2 = 0;
            for (int o = 0; o < OUT; o++) q2 += YOFF[i * OUT + o] * YOFF[i * OUT + o];
            for (int k = 0; k < R2; k++) {
                double c = 0;
                for (int o = 0; o < OUT; o++) c += Dq[o * R2 + k] * (YOFF[i * OUT + o] - sq[o]);
                r2 += c * c;
            }
            below += q2 < r2;
        }
        printf("  %d of %d rows have ||q||^2 < ||D^T (q - shift)||^2 in the next case\n", below, N);
        CHECK(&t, below > 0);
    }
    compare(&t, &c4, 1);
    Case c5 = {"a validation set with keep best and early_stop, --save", sp, text[4], 1, YOFF, saves, 0, NULL};
    compare(&t, &c5, 1);
    Case c6 = {"an oblique output basis: the input side alone", sp, text[5], 0, Y, NULL, 0, NULL};
    compare(&t, &c6, 0);

    /* the output side alone: the input stays full */
    Case c7 = {.name = "an oblique input basis: the output side alone",
               .path = sp,
               .text = text[6],
               .y = Y,
               .in_full = "the input m [12] stays full (basis Vm is not orthonormal"};
    compare(&t, &c7, 1);
    const char *outside = "basis {\n    Vm = active_subspace(dq/dm, rank = 4)\n    Vq = pod(q, rank = 3)\n}\n"
                          "model outside {\n    input m[12]\n    output q[5]\n"
                          "    q = decode(mlp(concat(encode(m, Vm), 0.1 * m), 3, width = 8, depth = 2), Vq)\n}\n"
                          "loss {\n    l2 q relative\n    h1 dq/dm weight 0.5\n}\ntrain {\n    epochs 2\n"
                          "    precision f64\n}\n";
    Case c8 = {.name = "the input also used outside encode: the output side alone",
               .path = sp,
               .text = outside,
               .y = YOFF,
               .in_full = "the input m [12] stays full (the input m is used outside encode(m, B))"};
    compare(&t, &c8, 1);
    /* oblique input and output bases: the full-space graph, saying why */
    const char *obl_both = "    Vm = npy(decoder = \"Dm.npy\", encoder = \"Em.npy\", shift = \"sm.npy\")\n"
                           "    Vq = npy(decoder = \"Dq.npy\", encoder = \"Eq.npy\", shift = \"sq.npy\")";
    const char *pairs[] = {"BASIS", obl_both, "LOSS", rel_both, "TRAIN", "", "DATA", "", NULL};
    char err[512];
    char *tob = t_spec_fill(tmpl, pairs, err, sizeof err);
    Case cob = {"oblique input and output bases", sp, tob, 0, Y, NULL, 0, NULL};
    if (CHECK(&t, tob != NULL)) {
        static double y[N * OUT], J[N * OUT * IN];
        Run r;
        memset(&r, 0, sizeof r);
        printf("  case: %s\n", cob.name);
        if (train_once(&t, &cob, 1, &r, y, J)) {
            CHECK(&t, r.full && !r.reduced);
            CHECK(&t, strstr(r.why, "basis Vm is not orthonormal") != NULL);
            CHECK(&t, strstr(r.why, "and the output q can't be reduced: basis Vq is not orthonormal") != NULL);
            if (t.verbose) printf("    %s\n", r.why);
        }
    }
    printf("  case: a checkpoint that can no longer be written during training\n");
    save_fails(&t, &c4);
    /* prediction in reduced coordinates */
    printf("  dino_predict_reduced: orthonormal bases\n");
    predict_reduced(&t, &c4, Dq, sq, Dm);
    printf("  dino_predict_reduced: oblique input and output bases\n");
    if (tob) predict_reduced(&t, &cob, Dq, sq, Em_obl);
    printf("  dino_predict_reduced: the input also used outside encode (z = x)\n");
    const char *outside_npy =
        "basis {\n    Vm = npy(decoder = \"Dm.npy\", shift = \"sm.npy\")\n"
        "    Vq = npy(decoder = \"Dq.npy\", shift = \"sq.npy\")\n}\n"
        "model outside {\n    input m[12]\n    output q[5]\n"
        "    q = decode(mlp(concat(encode(m, Vm), 0.1 * m), 3, width = 8, depth = 2), Vq)\n}\n"
        "loss {\n    l2 q relative\n    h1 dq/dm\n}\ntrain {\n    epochs 1\n    precision f64\n}\n";
    Case cout = {.name = "outside", .path = sp, .text = outside_npy, .y = Y};
    predict_reduced(&t, &cout, Dq, sq, NULL);
    free(tob);
    /* an output basis used three times (two decodes, one encode of a value): with Jacobian data
     * (an h1 term, or only the rel_h1 metric) the full-space graph, saying why; without, the input
     * side alone, exact */
    for (int k = 0; k < 3; k++) {
        char text2[1200];
        snprintf(text2, sizeof text2,
                 "basis {\n    Vm = npy(decoder = \"Dm.npy\", shift = \"sm.npy\")\n"
                 "    Vq = npy(decoder = \"Dq.npy\", shift = \"sq.npy\")\n}\n"
                 "model twice {\n    input m[12]\n    output q[5]\n    z = encode(m, Vm)\n"
                 "    h = decode(dense(z, 3), Vq)\n"
                 "    q = decode(mlp(concat(z, encode(h, Vq)), 3, width = 8, depth = 1), Vq)\n}\n"
                 "loss {\n    l2 q relative\n%s}\ntrain {\n    epochs 1\n    precision f64\n}\n",
                 k == 0 ? "    h1 dq/dm relative\n" : "");
        static const char *const names[3] = {"an output basis used three times, h1",
                                             "an output basis used three times, l2 and Jacobian data (rel_h1)",
                                             "an output basis used three times, l2 and no Jacobian data"};
        Case c = {names[k], sp, text2, 0, Y, NULL, k == 2, NULL};
        if (k == 2) {
            compare(&t, &c, 0);
            continue;
        }
        static double y[N * OUT], J[N * OUT * IN];
        Run r;
        memset(&r, 0, sizeof r);
        printf("  case: %s\n", c.name);
        if (train_once(&t, &c, 1, &r, y, J)) {
            CHECK(&t, r.full && !r.reduced);
            CHECK(&t, strstr(r.why, "basis Vq is used 3 times") != NULL);
            CHECK(&t, strstr(r.why, k == 0 ? "an h1 term needs" : "the Jacobian data (rel_h1) need") != NULL);
            if (t.verbose) printf("    %s\n", r.why);
        }
    }
    no_path(&t, "model plain {\n    input m[12]\n    output q[5]\n    q = dense(m, 5)\n}\n", "no basis section");
    no_path(&t,
            "basis {\n    Vm = npy(decoder = \"Dm.npy\")\n}\nmodel enc_only {\n    input m[12]\n    output q[5]\n"
            "    q = dense(encode(m, Vm), 5)\n}\n",
            "is not `q = decode(..., B)`");
    no_path(&t,
            "basis {\n    Vm = npy(decoder = \"Dm.npy\")\n}\nmodel in_outside {\n"
            "    input m[12]\n    output q[5]\n    q = dense(concat(encode(m, Vm), m), 5)\n}\n",
            "is not `q = decode(..., B)`");
    for (int i = 0; i < 7; i++) free(text[i]);
    return t_end(&t, "reduced_exact");
}
