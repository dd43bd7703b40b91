/* test_api.c - the public API (include/dino.h) through the shared library, as a user's
 * program sees it: diagnostics as data and as text, settings, generation, a CPU model trained
 * on arrays from memory with the epoch callback and dino_request_stop, predictions, J v and
 * J^T w against the Jacobian, a checkpoint round trip, and dino_evaluate's loss against the
 * training loss (regression with relative l2 and h1, and cross-entropy). Needs a C compiler at run time
 * (the CPU backend); DINO_CACHE_DIR is set by ctest. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dino.h"

static int failures, checks;

#define CHECK(cond, ...)                                \
    do {                                                \
        checks++;                                       \
        if (!(cond)) {                                  \
            failures++;                                 \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf(" [%s]\n", dino_last_error());       \
        }                                               \
    } while (0)

static const char *bad_spec = "model bad {\n"
                              "    input  m[3]\n"
                              "    output q[2]\n"
                              "    q = dense(m, 2) + zz\n"
                              "}\n";

/* q = A m (+ a small nonlinearity the network must learn), J = A: 8 -> 3, f64. */
static const char *good_spec = "model lin {\n"
                               "    input  m[8]\n"
                               "    output q[3]\n"
                               "    q = mlp(m, 3, width = 16, depth = 2, act = tanh)\n"
                               "}\n"
                               "data { split train 0.8, test 0.2 }\n"
                               "loss { l2 q weight 1.0 relative; h1 dq/dm weight 1.0 relative }\n"
                               "train { optimizer adam(lr = 1e-2); batch 16; epochs 6; seed 1; precision f64 }\n";

/* The validation and evaluation loss (dino_evaluate, computed on the host from predictions)
 * against the generated code's training loss: one epoch at a rate so small that the
 * parameters do not move, then dino_evaluate on the training rows gives the epoch's mean loss
 * and terms. text: a spec of `in` inputs, `out` outputs (classes for a classifier), f64. */
static double last_loss, last_terms[3];
static int last_n_terms;

static int keep_loss(const dino_epoch *e, void *user) {
    (void)user;
    last_loss = e->train_loss;
    last_n_terms = e->n_terms;
    for (int i = 0; i < e->n_terms && i < 3; i++) last_terms[i] = e->train_terms[i];
    return 0;
}

static void loss_agrees(const char *name, const char *text, int in, int out, int classifier) {
    dino_spec *spec;
    dino_model *model;
    dino_data *data;
    dino_open_options oo = {.backend = DINO_BACKEND_CPU};
    if (dino_spec_from_text(name, text, strlen(text), &spec) != DINO_OK ||
        dino_model_open(spec, &oo, &model) != DINO_OK) {
        CHECK(0, "%s: %s", name, dino_spec_diagnostics_text(spec));
        dino_spec_free(spec);
        return;
    }
    enum { N = 50 };
    static double x[N * 16], y[N * 16], J[N * 16 * 16];
    static int labels[N];
    for (int r = 0; r < N; r++) {
        for (int k = 0; k < in; k++) x[r * in + k] = sin(0.3 * r + 0.7 * k);
        for (int o = 0; o < out; o++) y[r * out + o] = cos(0.2 * r - 0.5 * o) + 0.1 * o;
        for (int i = 0; i < out * in; i++) J[r * out * in + i] = sin(0.11 * r + 0.13 * i);
        labels[r] = r % out;
    }
    dino_arrays tr = {
        .n = N, .x = x, .y = classifier ? NULL : y, .J = classifier ? NULL : J, .labels = classifier ? labels : NULL};
    if (classifier) { /* a label out of range; a NaN in x is reported first */
        dino_data *bad = NULL;
        char want[64];
        snprintf(want, sizeof want, "label %d at row 3 is not a class in [0, %d)", out, out);
        labels[3] = out;
        CHECK(dino_data_from_arrays(model, &tr, NULL, &bad) == DINO_EUSER && !bad && strstr(dino_last_error(), want),
              "%s: bad label: %s", name, dino_last_error());
        x[in + 1] = NAN;
        CHECK(dino_data_from_arrays(model, &tr, NULL, &bad) == DINO_EUSER && !bad &&
                  strstr(dino_last_error(), "the training set's x contains NaN or Inf at element"),
              "%s: NaN before the bad label: %s", name, dino_last_error());
        labels[3] = 3 % out, x[in + 1] = sin(0.3 + 0.7);
    }
    CHECK(dino_data_from_arrays(model, &tr, NULL, &data) == DINO_OK, "%s: data", name);
    dino_train_options to = {.on_epoch = keep_loss};
    CHECK(dino_train(model, data, &to) == DINO_OK, "%s: one epoch", name);
    dino_metrics mt;
    CHECK(dino_evaluate(model, data, DINO_SET_TRAIN, &mt) == DINO_OK && mt.rows == N && mt.has_loss,
          "%s: dino_evaluate", name);
    int same = fabs(mt.loss - last_loss) <= 1e-9 * last_loss && mt.n_terms == last_n_terms;
    for (int i = 0; i < mt.n_terms; i++) same &= fabs(mt.terms[i] - last_terms[i]) <= 1e-9 * last_terms[i];
    CHECK(same, "%s: the evaluated loss %.12g (terms %g %g) is the training loss %.12g (terms %g %g)", name, mt.loss,
          mt.terms[0], mt.terms[1], last_loss, last_terms[0], last_terms[1]);
    if (!classifier)
        CHECK(fabs(mt.terms[0] - mt.rel_l2 * mt.rel_l2) <= 1e-12 * mt.terms[0], "%s: the relative l2 term is rel_l2^2",
              name);
    CHECK(dino_evaluate(model, data, DINO_SET_VALID, &mt) == DINO_OK && mt.rows == 0 && !mt.has_loss,
          "%s: arrays have no validation set", name);
    dino_data_free(data);
    dino_model_free(model);
    dino_spec_free(spec);
}

static int epochs_seen, stop_at;

static int on_epoch(const dino_epoch *e, void *user) {
    (void)user;
    epochs_seen++;
    CHECK(e->line && strncmp(e->line, "epoch ", 6) == 0, "epoch line '%s'", e->line ? e->line : "(null)");
    CHECK(isfinite(e->train_loss) && e->train_loss > 0, "epoch %lld loss %g", e->epoch, e->train_loss);
    return stop_at && e->epoch == stop_at;
}

int main(void) {
    /* ------------------------------------------------ many processes: none without a launcher */
    {
        unsetenv("OMPI_COMM_WORLD_SIZE"), unsetenv("PMI_SIZE"), unsetenv("SLURM_NTASKS");
        dino_parallel p;
        dino_status ps = dino_parallel_start(NULL, NULL, &p);
        CHECK(ps == DINO_OK && p.rank == 0 && p.size == 1 && p.local_rank == 0 && strcmp(p.launcher, "") == 0,
              "dino_parallel_start without a launcher: one process (status %d, rank %d of %d, '%s')", ps, p.rank,
              p.size, p.launcher);
        dino_parallel_end();
    }
    /* ------------------------------------------------ diagnostics */
    dino_spec *spec;
    dino_status st = dino_spec_from_text("dir/bad.dino", bad_spec, strlen(bad_spec), &spec);
    CHECK(st == DINO_EUSER && spec, "a spec with an unknown name: status %d", st);
    CHECK(dino_last_error_is_complete(), "the failure's message is a complete diagnostic");
    CHECK(dino_spec_error_count(spec) == 1 && dino_spec_diagnostic_count(spec) >= 1, "one error (%d)",
          dino_spec_error_count(spec));
    const dino_diagnostic *d = dino_spec_diagnostic(spec, 0);
    CHECK(d && strcmp(d->file, "dir/bad.dino") == 0 && d->line == 4 && d->col == 23 &&
              d->severity == DINO_SEVERITY_ERROR && strstr(d->message, "zz"),
          "diagnostic 0: %s:%d:%d: %s", d ? d->file : "", d ? d->line : 0, d ? d->col : 0, d ? d->message : "");
    CHECK(dino_spec_diagnostic(spec, 99) == NULL, "out of range");
    const char *text = dino_spec_diagnostics_text(spec);
    CHECK(strstr(text, "dir/bad.dino:4:23: error: ") && strstr(text, "    q = dense(m, 2) + zz\n") &&
              strstr(text, "\n                          ^~\n"),
          "the text as dinoc prints it:\n%s", text);
    dino_spec_info info;
    CHECK(dino_spec_info_get(spec, &info) == DINO_EUSER, "no info from a spec with errors");
    dino_spec_free(spec);
    CHECK(dino_spec_load("/nonexistent/x.dino", &spec) == DINO_EUSER && spec &&
              strstr(dino_spec_diagnostics_text(spec), "/nonexistent/x.dino: error: cannot open"),
          "a missing file: '%s'", spec ? dino_spec_diagnostics_text(spec) : "");
    dino_spec_free(spec);

    /* ------------------------------------------------ a good spec: settings, generation */
    st = dino_spec_from_text("lin.dino", good_spec, strlen(good_spec), &spec);
    CHECK(st == DINO_OK && dino_spec_diagnostic_count(spec) == 0 && dino_spec_diagnostics_text(spec)[0] == 0,
          "the good spec checks: %s", dino_spec_diagnostics_text(spec));
    if (st) return 1;
    CHECK(dino_spec_set(spec, "nosuch", "1") == DINO_EUSER && strstr(dino_last_error(), "unknown setting 'nosuch'"),
          "an unknown setting");
    CHECK(dino_spec_set(spec, "batch", "0") == DINO_EUSER && strstr(dino_last_error(), "batch must be"), "batch 0");
    CHECK(dino_spec_set(spec, "epochs", "5") == DINO_OK, "epochs=5");
    CHECK(dino_spec_info_get(spec, &info) == DINO_OK && info.in_dim == 8 && info.out_dim == 3 && info.f64 == 1 &&
              info.epochs == 5 && strcmp(info.output, "q") == 0 &&
              info.n_params == 16 * 8 + 16 + 16 * 16 + 16 + 3 * 16 + 3,
          "info: %d -> %d, %lld parameters, epochs %lld", info.in_dim, info.out_dim, info.n_params, info.epochs);
    static const dino_target targets[] = {DINO_TARGET_C, DINO_TARGET_CUDA, DINO_TARGET_IR, DINO_TARGET_PARAMS,
                                          DINO_TARGET_AST};
    static const char *const marks[] = {"dino_train_step", "dino_train_k0", "predict", "q.0.weight [16, 8]", "mlp"};
    for (int i = 0; i < 5; i++) {
        char *src;
        size_t len;
        st = dino_generate(spec, targets[i], NULL, &src, &len);
        CHECK(st == DINO_OK && len > 0 && strlen(src) == len && strstr(src, marks[i]), "target %d has '%s'", i,
              marks[i]);
        if (st == DINO_OK) dino_free(src);
    }

    /* ------------------------------------------------ a model on the CPU, data from arrays */
    dino_model *model;
    dino_open_options oo = {.backend = DINO_BACKEND_CPU};
    st = dino_model_open(spec, &oo, &model);
    CHECK(st == DINO_OK, "dino_model_open on the CPU");
    if (st) return 1;
    dino_backend_info b;
    CHECK(dino_model_backend(model, &b) == DINO_OK && b.backend == DINO_BACKEND_CPU && b.f64 && strstr(b.name, "CPU"),
          "backend '%s'", b.name);
    enum { N = 120, IN = 8, OUT = 3 };
    static double x[N * IN], y[N * OUT], J[N * OUT * IN], A[OUT * IN];
    for (int i = 0; i < OUT * IN; i++) A[i] = sin(1.0 + i);
    for (int r = 0; r < N; r++) {
        for (int k = 0; k < IN; k++) x[r * IN + k] = cos(0.37 * r + 1.3 * k);
        for (int o = 0; o < OUT; o++) {
            double s = 0;
            for (int k = 0; k < IN; k++) s += A[o * IN + k] * x[r * IN + k];
            y[r * OUT + o] = s;
            for (int k = 0; k < IN; k++) J[(r * OUT + o) * IN + k] = A[o * IN + k];
        }
    }
    dino_data *data;
    dino_arrays tr = {.n = 100, .x = x, .y = y, .J = J},
                te = {.n = 20, .x = x + 100 * IN, .y = y + 100 * OUT, .J = J + 100 * OUT * IN};
    dino_arrays no_jac = tr;
    no_jac.J = NULL;
    CHECK(dino_data_from_arrays(model, &no_jac, &te, &data) == DINO_EUSER && strstr(dino_last_error(), "h1"),
          "an h1 loss without Jacobian data");
    x[5] = NAN;
    CHECK(dino_data_from_arrays(model, &tr, &te, &data) == DINO_EUSER && strstr(dino_last_error(), "NaN"),
          "a NaN input");
    x[5] = cos(0.37 * 0 + 1.3 * 5);
    double keep[OUT];
    memcpy(keep, y + 7 * OUT, sizeof keep);
    memset(y + 7 * OUT, 0, sizeof keep); /* an all-zero target row under a relative l2 */
    CHECK(dino_data_from_arrays(model, &tr, &te, &data) == DINO_EUSER &&
              strstr(dino_last_error(), "1 all-zero rows (the first is row 7)") &&
              strstr(dino_last_error(), "relative"),
          "an all-zero target row with a relative loss: %s", dino_last_error());
    memcpy(y + 7 * OUT, keep, sizeof keep);
    st = dino_data_from_arrays(model, &tr, &te, &data);
    long long ntr, nte;
    int has_j;
    CHECK(st == DINO_OK && dino_data_rows(data, &ntr, &nte, &has_j) == DINO_OK && ntr == 100 && nte == 20 && has_j,
          "data from arrays: %lld + %lld rows", ntr, nte);
    if (st) return 1;

    /* The epoch callback stops after epoch 2 (saved); a stop request before training stops at
     * once; a second model resumes from the checkpoint and runs to epoch 4, then a second
     * dino_train on it to the end (the backend's set_data releases the first call's buffers:
     * LeakSanitizer finds none in a DINO_SANITIZE build). */
    char path[] = "/tmp/dino_test_api_XXXXXX";
    int fd_ = mkstemp(path);
    if (fd_ >= 0) fclose(fdopen(fd_, "w"));
    dino_train_options to = {.on_epoch = on_epoch, .save = path};
    stop_at = 2;
    st = dino_train(model, data, &to);
    long long done, steps;
    dino_model_progress(model, &done, &steps);
    CHECK(st == DINO_STOPPED && epochs_seen == 2 && done == 2 && steps == 2 * 7,
          "stopped by on_epoch: status %d, %d epochs seen, %lld done, %lld steps", st, epochs_seen, done, steps);
    dino_request_stop(model);
    st = dino_train(model, data, &to);
    dino_model_progress(model, &done, NULL);
    CHECK(st == DINO_STOPPED && done == 2 && epochs_seen == 2,
          "a stop requested before dino_train: status %d, %lld epochs done", st, done);
    dino_model *resumed;
    CHECK(dino_model_open(spec, &oo, &resumed) == DINO_OK, "a second model");
    dino_checkpoint_info ci;
    CHECK(dino_model_load(resumed, path, &ci) == DINO_OK && ci.has_state && ci.epoch == 2 && ci.spec_matches == 1,
          "the stopped run's checkpoint: state %d, epoch %lld, matches %d", ci.has_state, ci.epoch, ci.spec_matches);
    dino_data_free(data);
    dino_model_free(model);
    model = resumed;
    CHECK(dino_data_from_arrays(model, &tr, &te, &data) == DINO_OK, "data for the second model");
    stop_at = 0;
    to.save = NULL;
    to.until = 4;
    st = dino_train(model, data, &to);
    dino_model_progress(model, &done, NULL);
    CHECK(st == DINO_OK && done == 4 && epochs_seen == 4, "resumed to epoch 4: status %d, %lld epochs done, %d seen",
          st, done, epochs_seen);
    to.until = 0;
    st = dino_train(model, data, &to);
    dino_model_progress(model, &done, NULL);
    CHECK(st == DINO_OK && done == 5 && epochs_seen == 5,
          "a second dino_train to the end: status %d, %lld epochs done, %d seen", st, done, epochs_seen);

    /* ------------------------------------------------ predictions, J v, J^T w */
    enum { M = 7 };
    static double yp[M * OUT], Jp[M * OUT * IN], v[M * IN], w[M * OUT], Jv[M * OUT], JTw[M * IN], y2[M * OUT];
    for (int i = 0; i < M * IN; i++) v[i] = sin(0.3 * i);
    for (int i = 0; i < M * OUT; i++) w[i] = cos(0.7 * i);
    CHECK(dino_predict(model, M, x, yp, Jp) == DINO_OK, "dino_predict");
    CHECK(dino_jvp(model, M, x, v, y2, Jv) == DINO_OK && dino_vjp(model, M, x, w, NULL, JTw) == DINO_OK, "jvp, vjp");
    double worst = 0;
    for (int r = 0; r < M; r++)
        for (int o = 0; o < OUT; o++) {
            double jv = 0;
            for (int k = 0; k < IN; k++) jv += Jp[(r * OUT + o) * IN + k] * v[r * IN + k];
            worst = fmax(worst, fabs(jv - Jv[r * OUT + o]));
            worst = fmax(worst, fabs(y2[r * OUT + o] - yp[r * OUT + o]));
        }
    for (int r = 0; r < M; r++)
        for (int k = 0; k < IN; k++) {
            double jtw = 0;
            for (int o = 0; o < OUT; o++) jtw += Jp[(r * OUT + o) * IN + k] * w[r * OUT + o];
            worst = fmax(worst, fabs(jtw - JTw[r * IN + k]));
        }
    CHECK(worst < 1e-12, "J v and J^T w equal the products with the Jacobian (worst %g)", worst);
    /* J against central differences of the outputs (f64) */
    double h = 1e-6, xp[IN], xm[IN], qp[OUT], qm[OUT], fd = 0, scale = 0;
    for (int k = 0; k < IN; k++) {
        memcpy(xp, x, sizeof xp), memcpy(xm, x, sizeof xm);
        xp[k] += h, xm[k] -= h;
        dino_predict(model, 1, xp, qp, NULL);
        dino_predict(model, 1, xm, qm, NULL);
        for (int o = 0; o < OUT; o++) {
            fd = fmax(fd, fabs((qp[o] - qm[o]) / (2 * h) - Jp[o * IN + k]));
            scale = fmax(scale, fabs(Jp[o * IN + k]));
        }
    }
    CHECK(fd < 1e-6 * (1 + scale), "J matches central differences (worst %g)", fd);
    x[3] = INFINITY;
    CHECK(dino_predict(model, 1, x, yp, NULL) == DINO_EUSER && strstr(dino_last_error(), "row 0, column 3"),
          "an Inf input");
    x[3] = cos(1.3 * 3);

    /* ------------------------------------------------ checkpoints */
    CHECK(dino_model_save(model, path) == DINO_OK, "dino_model_save");
    dino_model *again;
    CHECK(dino_model_open(spec, &oo, &again) == DINO_OK, "a third model");
    CHECK(dino_model_load(again, path, &ci) == DINO_OK && ci.has_state && ci.epoch == 5 && ci.spec_matches == 1,
          "dino_model_load: state %d, epoch %lld, matches %d", ci.has_state, ci.epoch, ci.spec_matches);
    CHECK(dino_predict(again, M, x, y2, NULL) == DINO_OK && memcmp(y2, yp, sizeof y2) == 0,
          "the loaded model predicts the same");
    CHECK(dino_model_load(again, "/nonexistent.safetensors", NULL) == DINO_EUSER && !dino_last_error_is_complete(),
          "a missing checkpoint");

    /* ------------------------------------------------ float arrays (dino_predict_f32) */
    /* on the f64 model (x widened, results rounded once) and on the same parameters in f32 (no
     * conversion: equal to dino_predict's widened results); y alone equals y with J */
    {
        dino_open_options o32 = {.backend = DINO_BACKEND_CPU, .precision = DINO_PRECISION_F32};
        dino_model *m32;
        CHECK(dino_model_open(spec, &o32, &m32) == DINO_OK && dino_model_load(m32, path, NULL) == DINO_OK,
              "the model in f32");
        static float xf[M * IN], yf[M * OUT], Jf[M * OUT * IN], yo[M * OUT];
        static double xd[M * IN], yd[M * OUT], Jd[M * OUT * IN];
        for (int i = 0; i < M * IN; i++) xf[i] = (float)x[i], xd[i] = xf[i];
        for (int f64 = 0; f64 < 2; f64++) {
            dino_model *mm = f64 ? again : m32;
            CHECK(dino_predict_f32(mm, M, xf, yf, Jf) == DINO_OK && dino_predict(mm, M, xd, yd, Jd) == DINO_OK &&
                      dino_predict_f32(mm, M, xf, yo, NULL) == DINO_OK,
                  "dino_predict_f32 (%s model)", f64 ? "f64" : "f32");
            int same = memcmp(yo, yf, sizeof yf) == 0;
            for (int i = 0; i < M * OUT; i++) same &= yf[i] == (float)yd[i];
            for (int i = 0; i < M * OUT * IN; i++) same &= Jf[i] == (float)Jd[i];
            CHECK(same, "dino_predict_f32 equals dino_predict rounded to float (%s model)", f64 ? "f64" : "f32");
        }
        xf[IN + 2] = NAN;
        CHECK(dino_predict_f32(m32, 2, xf, yf, NULL) == DINO_EUSER && strstr(dino_last_error(), "row 1, column 2"),
              "a NaN in a float input");
        CHECK(dino_predict_f32(m32, 0, NULL, NULL, NULL) == DINO_OK &&
                  dino_predict_f32(m32, 1, NULL, yf, NULL) == DINO_EUSER,
              "dino_predict_f32: no rows; no input");
        dino_model_free(m32);
    }
    remove(path);
    dino_model_free(again);
    dino_data_free(data);
    dino_model_free(model);
    dino_spec_free(spec);

    /* ------------------------------------------------ the evaluated loss is the training loss */
    loss_agrees("regression.dino",
                "model r { input m[5]; output q[4]; q = mlp(m, 4, width = 12, depth = 2, act = tanh) }\n"
                "loss { l2 q weight 0.5 relative; h1 dq/dm weight 2.0 }\n"
                "train { optimizer sgd(lr = 1e-300); batch 7; epochs 1; precision f64 }\n",
                5, 4, 0);
    loss_agrees("classifier.dino",
                "model c { input m[6]; output y[3]; y = dense(gelu(dense(m, 10)), 3) }\n"
                "loss { cross_entropy y weight 1.5 }\n"
                "train { optimizer sgd(lr = 1e-300); batch 8; epochs 1; precision f64 }\n",
                6, 3, 1);
    printf("%d checks, %d failed (libdino %s)\n", checks, failures, dino_version());
    return failures ? 1 : 0;
}
