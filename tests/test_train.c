/* test_train.c - the training loop's interface (train.h) on the CPU backend, with node_small
 * (specs/node_small.dino and its reference data, 8 training rows, batch 3: 3 steps an epoch):
 *
 *   1. callbacks: on_epoch once per epoch with the epoch, step and metrics; the workspace note
 *      through on_message; on_progress after every step; DINO_OK
 *   2. on_epoch asking to stop after epoch 2: DINO_STOPPED, 2 epochs done, the parameters of a
 *      2-epoch run, and the checkpoint saved with them
 *   3. the stop flag set inside epoch 2 (as a signal handler would): DINO_STOPPED after the
 *      current step, the checkpoint holds the parameters of that step and the state at the
 *      start of the epoch (epoch 1 done, 5 steps)
 *   4. the reduction point between grad and update: a Reducer that doubles the gradient and the
 *      sums (two processes with the same data) trains as the run with twice the rate (SGD), and
 *      reports twice its loss; it is called once per step for the gradient and the step's loss
 *      and once per epoch for the epoch's sums
 *   5. model selection with the test rows as the validation set: keep best sets the trainer
 *      back to the best epoch (the parameters of a run stopped there, bit for bit) and the
 *      checkpoint holds it; early_stop patience 2 stops 2 evaluations after the best; a stop
 *      after the best leaves the best in the checkpoint; no validation rows: DINO_EUSER
 *   6. a NaN loss (rate 1e30): DINO_EUSER naming the epoch and the step; an empty training
 *      split: DINO_EUSER
 *
 * Usage: test_train SHARED_DIR. Exit 0 when every check passes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "checkpoint.h"
#include "cpu_jit.h"
#include "emit.h"
#include "frontend.h"
#include "train.h"

static int failures, passes;

static void check(int ok, const char *what) {
    failures += !ok;
    passes += ok;
    printf("  %-4s %s\n", ok ? "ok" : "FAIL", what);
}

static char spec_path[4096], data_dir[4096];

/* The model, its CPU module and a trainer on it, for one run. */
typedef struct {
    Frontend fe;
    CpuModule mod;
    Trainer t;
    Dataset tr, te;
} Setup;

static int setup(Setup *s, int epochs, double lr) {
    char err[8192];
    memset(s, 0, sizeof *s);
    if (frontend_run(&s->fe, spec_path, stderr, 0, NULL)) return -1;
    Model *m = s->fe.model;
    m->train.batch = 3, m->train.epochs = epochs, m->train.lr = lr, m->train.schedule = SCHED_CONSTANT;
    m->train.eval_every = 1;
    Arena a = {0};
    size_t len;
    char *src = generate_c(&a, m, JAC_AUTO, m->train.f64, s->fe.hash, &len, err, sizeof err);
    int bad = !src || cpu_module_load(src, len, &s->mod, err, sizeof err) ||
        trainer_init(&s->t, m, s->fe.hash, err, sizeof err) ||
        !(s->t.backend = backend_cpu_new(&s->mod, m, s->t.P, &s->t.opt, err, sizeof err)) ||
        data_load(m, data_dir, m->train.f64, 1, &s->tr, &s->te, err, sizeof err);
    free(src);
    arena_free(&a);
    if (bad) {
        printf("  FAIL setup: %s\n", err);
        failures++;
        return -1;
    }
    return 0;
}

static void teardown(Setup *s) {
    data_free(&s->tr), data_free(&s->te);
    trainer_free(&s->t);
    cpu_module_free(&s->mod);
    frontend_free(&s->fe);
}

static int same_params(const Trainer *a, const Trainer *b) {
    return memcmp(a->P, b->P, a->es * (size_t)a->m->n_weights) == 0;
}

/* ---------------------------------------------------------------------------- callbacks */

typedef struct {
    int epochs_seen, notes, warnings, progress, stop_after, progress_ok;
    int64_t steps[16];
    double loss[16];
    int evaluated[16];
    double rel_l2_last;
    volatile int *stop_flag;
    int64_t stop_at_epoch, stop_at_step;
} Seen;

static int on_epoch(const EpochReport *r, void *user) {
    Seen *s = user;
    if (s->epochs_seen < 16) {
        s->steps[s->epochs_seen] = r->step;
        s->loss[s->epochs_seen] = r->train_loss;
        s->evaluated[s->epochs_seen] = r->evaluated;
    }
    s->epochs_seen++;
    if (r->evaluated && r->test.has_l2) s->rel_l2_last = r->test.rel_l2;
    return s->stop_after && r->epoch == s->stop_after;
}

static void on_message(int level, const char *text, void *user) {
    Seen *s = user;
    if (level == DINO_MSG_NOTE && strstr(text, "training workspace")) s->notes++;
    if (level == DINO_MSG_WARNING) s->warnings++;
}

static void on_progress(int64_t epoch, int64_t step, int64_t steps, double loss, void *user) {
    Seen *s = user;
    s->progress++;
    s->progress_ok += steps == 3 && step >= 1 && step <= 3 && isfinite(loss) && loss > 0;
    if (s->stop_flag && epoch == s->stop_at_epoch && step == s->stop_at_step) *s->stop_flag = 1;
}

/* ---------------------------------------------------------------------------- reducer */

typedef struct {
    int gradients, sums;
} Counts;

static int double_gradient(Backend *b, double scale, void *user) {
    ((Counts *)user)->gradients++;
    if (scale != 1) return DINO_EINTERNAL; /* size 0: every row here */
    int64_t n = b->opt->n;
    if (b->grad_on_device) return DINO_EINTERNAL;
    if (b->f64)
        for (int64_t i = 0; i < n; i++) ((double *)b->grad_buf)[i] *= 2;
    else
        for (int64_t i = 0; i < n; i++) ((float *)b->grad_buf)[i] *= 2;
    return DINO_OK;
}

static int double_sums(double *v, int n, void *user) {
    ((Counts *)user)->sums++;
    for (int i = 0; i < n; i++) v[i] *= 2;
    return DINO_OK;
}

/* ---------------------------------------------------------------------------- the checks */

static void callbacks(void) {
    printf("callbacks:\n");
    Setup s;
    if (setup(&s, 4, 0.01)) return;
    Seen seen = {0};
    TrainOptions o = {.on_epoch = on_epoch, .on_message = on_message, .on_progress = on_progress, .user = &seen};
    char err[1024] = "";
    int rc = train(&s.t, &s.tr, &s.te, &o, err, sizeof err);
    check(rc == DINO_OK, "train returns DINO_OK");
    check(seen.epochs_seen == 4, "on_epoch once per epoch (4)");
    check(seen.steps[0] == 3 && seen.steps[3] == 12, "the reports count 3 steps an epoch");
    check(seen.evaluated[0] && seen.evaluated[3] && seen.rel_l2_last > 0 && seen.rel_l2_last < 10,
          "the test metrics in every report (eval every 1)");
    check(seen.loss[3] < seen.loss[0], "the training loss falls from epoch 1 to 4");
    check(seen.notes == 1 && seen.warnings == 0, "one note: the training workspace");
    check(seen.progress == 12 && seen.progress_ok == 12,
          "on_progress after each of the 12 steps, with the epoch's loss so far");
    check(s.t.state.epoch == 4 && s.t.state.step == 12, "the trainer's state: 4 epochs, 12 steps");
    teardown(&s);
}

static void stops(const char *tmp) {
    printf("stopping:\n");
    char path[4200], err[1024] = "";
    Setup two, s;
    if (setup(&two, 2, 0.01)) return;
    TrainOptions plain = {0};
    if (train(&two.t, &two.tr, &two.te, &plain, err, sizeof err)) check(0, err);

    /* on_epoch asks to stop after epoch 2 of 4 */
    if (setup(&s, 4, 0.01)) return;
    snprintf(path, sizeof path, "%s/stop_epoch.safetensors", tmp);
    Seen seen = {.stop_after = 2};
    TrainOptions o = {.save = path, .on_epoch = on_epoch, .user = &seen};
    int rc = train(&s.t, &s.tr, &s.te, &o, err, sizeof err);
    check(rc == DINO_STOPPED, "on_epoch returning 1 after epoch 2: DINO_STOPPED");
    check(seen.epochs_seen == 2 && s.t.state.epoch == 2, "2 epochs done");
    check(same_params(&s.t, &two.t), "the parameters of a 2-epoch run");
    TrainState st = {0};
    void *P = calloc((size_t)s.t.m->n_weights, s.t.es);
    int loaded = checkpoint_load(path, s.t.m, P, s.t.f64, NULL, &st, s.t.spec_hash, NULL, err, sizeof err) == 0;
    check(loaded && st.epoch == 2 && memcmp(P, two.t.P, s.t.es * (size_t)s.t.m->n_weights) == 0,
          "the checkpoint holds them, after epoch 2");
    teardown(&s);

    /* the stop flag, set after step 2 of epoch 2 */
    if (setup(&s, 4, 0.01)) return;
    snprintf(path, sizeof path, "%s/stop_flag.safetensors", tmp);
    volatile int flag = 0;
    Seen seen2 = {.stop_flag = &flag, .stop_at_epoch = 2, .stop_at_step = 2};
    TrainOptions o2 = {.save = path, .on_epoch = on_epoch, .on_progress = on_progress, .user = &seen2, .stop = &flag};
    rc = train(&s.t, &s.tr, &s.te, &o2, err, sizeof err);
    check(rc == DINO_STOPPED, "the stop flag inside epoch 2: DINO_STOPPED");
    /* a stop inside an epoch rewinds to its start (issue 15): a resume repeats it exactly */
    check(seen2.epochs_seen == 1 && s.t.state.epoch == 1 && s.t.state.step == 3,
          "after the current step, rewound to the end of epoch 1: epoch 1 done, 3 steps");
    check(strstr(err, "in epoch 2 (after 2 of its 3 steps)") != NULL, err);
    memset(&st, 0, sizeof st);
    loaded = checkpoint_load(path, s.t.m, P, s.t.f64, NULL, &st, s.t.spec_hash, NULL, err, sizeof err) == 0;
    check(loaded && st.epoch == 1 && st.step == 3 && memcmp(P, s.t.P, s.t.es * (size_t)s.t.m->n_weights) == 0,
          "the checkpoint holds the parameters of the end of epoch 1");
    Setup one, four;
    if (setup(&one, 1, 0.01) == 0) {
        if (train(&one.t, &one.tr, &one.te, &plain, err, sizeof err)) check(0, err);
        check(same_params(&s.t, &one.t), "(those of a 1-epoch run)");
        teardown(&one);
    }
    flag = 0;
    rc = train(&s.t, &s.tr, &s.te, &plain, err, sizeof err);
    if (setup(&four, 4, 0.01) == 0) {
        if (train(&four.t, &four.tr, &four.te, &plain, err, sizeof err)) check(0, err);
        check(rc == DINO_OK && s.t.state.epoch == 4 && same_params(&s.t, &four.t),
              "training on after the stop gives the parameters of an uninterrupted 4-epoch run");
        teardown(&four);
    }
    free(P);
    teardown(&s);
    teardown(&two);
}

static void reduction(void) {
    printf("the reduction point between grad and update:\n");
    char err[1024] = "";
    Setup twice, s;
    if (setup(&twice, 3, 0.02)) return;
    Seen seen_twice = {0};
    TrainOptions o = {.on_epoch = on_epoch, .user = &seen_twice};
    if (train(&twice.t, &twice.tr, &twice.te, &o, err, sizeof err)) check(0, err);

    if (setup(&s, 3, 0.01)) return;
    Counts counts = {0};
    Reducer red = {.gradient = double_gradient, .sums = double_sums, .user = &counts};
    s.t.reduce = &red;
    Seen seen = {0};
    TrainOptions o2 = {.on_epoch = on_epoch, .user = &seen};
    int rc = train(&s.t, &s.tr, &s.te, &o2, err, sizeof err);
    check(rc == DINO_OK, "train with a Reducer: DINO_OK");
    check(counts.gradients == 9 && counts.sums == 9 + 3,
          "called for the gradient and the loss of each of 9 steps, and for each epoch's sums");
    check(same_params(&s.t, &twice.t), "a doubled gradient at rate 0.01 trains as rate 0.02 (SGD), bit for bit");
    int loss_ok = 1;
    for (int e = 0; e < 3; e++) loss_ok &= fabs(seen.loss[e] - 2 * seen_twice.loss[e]) <= 1e-12 * fabs(seen.loss[e]);
    check(loss_ok, "and reports the summed loss: twice that run's, every epoch");
    teardown(&s);
    teardown(&twice);
}

/* Records the validation losses the reports carry. */
typedef struct {
    int n, improved_epochs, early_stop_epoch;
    double valid[32];
    volatile int *stop_flag;
    int64_t stop_at_epoch;
} Valid;

static int on_epoch_valid(const EpochReport *r, void *user) {
    Valid *v = user;
    if (r->validated && r->valid.has_loss && v->n < 32) v->valid[v->n] = r->valid.loss;
    v->n++;
    v->improved_epochs += r->improved;
    if (r->early_stop) v->early_stop_epoch = (int)r->epoch;
    return 0;
}

static void on_progress_valid(int64_t epoch, int64_t step, int64_t steps, double loss, void *user) {
    Valid *v = user;
    (void)steps, (void)loss;
    if (v->stop_flag && epoch == v->stop_at_epoch && step == 2) *v->stop_flag = 1;
}

/* The first epoch (1-based) with the lowest of v's validation losses. */
static int argmin_valid(const Valid *v) {
    int best = 0;
    for (int i = 1; i < v->n && i < 32; i++)
        if (v->valid[i] < v->valid[best]) best = i;
    return best + 1;
}

static void selection(const char *tmp) {
    printf("model selection (the test rows as the validation set):\n");
    char path[4200], err[1024] = "";
    enum { EPOCHS = 12 };
    const double lr = 0.1; /* a rate at which the validation loss goes up and down */
    Setup s, ref;
    if (setup(&s, EPOCHS, lr)) return;
    s.fe.model->train.keep_best = 1;
    snprintf(path, sizeof path, "%s/best.safetensors", tmp);
    Valid v = {0};
    TrainOptions o = {.save = path, .valid = &s.te, .on_epoch = on_epoch_valid, .user = &v};
    int rc = train(&s.t, &s.tr, &s.te, &o, err, sizeof err);
    int best = argmin_valid(&v);
    printf("       (validation losses: best %.4g at epoch %d, last %.4g at epoch %d)\n", v.valid[best - 1], best,
           v.valid[v.n - 1], v.n);
    check(rc == DINO_OK && v.n == EPOCHS && v.improved_epochs >= 1,
          "keep best: 12 epochs, each evaluated on validation");
    check(best < EPOCHS, "(the best epoch is not the last, so keep best has something to restore)");
    check(s.t.best_restored && s.t.state.best_epoch == best && s.t.state.epoch == best && s.t.stopped_early == 0,
          "the trainer is set back to the end of the best epoch (epoch, state)");
    TrainState st = {0};
    void *P = calloc((size_t)s.t.m->n_weights, s.t.es);
    int loaded = checkpoint_load(path, s.t.m, P, s.t.f64, NULL, &st, s.t.spec_hash, NULL, err, sizeof err) == 0;
    check(loaded && st.epoch == best && st.best_epoch == best && st.since_best == 0 &&
              memcmp(P, s.t.P, s.t.es * (size_t)s.t.m->n_weights) == 0,
          "the checkpoint holds the best epoch: its parameters, epoch and best_epoch");
    if (setup(&ref, EPOCHS, lr) == 0) {
        TrainOptions until = {.until = best};
        if (train(&ref.t, &ref.tr, &ref.te, &until, err, sizeof err)) check(0, err);
        check(same_params(&s.t, &ref.t) && ref.t.opt.step == s.t.opt.step,
              "the parameters and optimiser step are those of a run stopped after the best epoch, bit for bit");
        teardown(&ref);
    }
    teardown(&s);

    /* early stop: patience 2, an evaluation every epoch */
    if (setup(&s, EPOCHS, lr)) return;
    s.fe.model->train.patience = 2;
    Valid v2 = {0};
    TrainOptions o2 = {.valid = &s.te, .on_epoch = on_epoch_valid, .user = &v2};
    rc = train(&s.t, &s.tr, &s.te, &o2, err, sizeof err);
    int best2 = argmin_valid(&v2);
    check(rc == DINO_OK && s.t.stopped_early == v2.n && v2.early_stop_epoch == v2.n && v2.n - best2 == 2 &&
              s.t.state.epoch == v2.n && !s.t.best_restored,
          "early_stop patience 2: DINO_OK, stopped 2 evaluations after the best epoch, the last state kept");
    printf("       (stopped after epoch %d, best %d)\n", v2.n, best2);
    teardown(&s);

    /* keep best and the stop flag after the best epoch: the file keeps the best */
    if (best < EPOCHS && setup(&s, EPOCHS, lr) == 0) {
        s.fe.model->train.keep_best = 1;
        snprintf(path, sizeof path, "%s/best_stop.safetensors", tmp);
        volatile int flag = 0;
        Valid v3 = {.stop_flag = &flag, .stop_at_epoch = best + 1};
        TrainOptions o3 = {.save = path,
                           .valid = &s.te,
                           .on_epoch = on_epoch_valid,
                           .on_progress = on_progress_valid,
                           .user = &v3,
                           .stop = &flag};
        rc = train(&s.t, &s.tr, &s.te, &o3, err, sizeof err);
        memset(&st, 0, sizeof st);
        loaded = checkpoint_load(path, s.t.m, P, s.t.f64, NULL, &st, s.t.spec_hash, NULL, err, sizeof err) == 0;
        check(rc == DINO_STOPPED && loaded && st.epoch == best && st.best_epoch == best && !s.t.best_restored,
              "keep best, stopped inside the epoch after the best: the checkpoint is still the best epoch's");
        teardown(&s);
    }
    /* no validation rows: keep best and early_stop are refused */
    if (setup(&s, EPOCHS, lr) == 0) {
        s.fe.model->train.patience = 3;
        TrainOptions none = {0};
        rc = train(&s.t, &s.tr, &s.te, &none, err, sizeof err);
        check(rc == DINO_EUSER && strstr(err, "early_stop needs a validation set"),
              "early_stop without validation rows: DINO_EUSER");
        teardown(&s);
    }
    free(P);
}

static void failures_reported(void) {
    printf("failures:\n");
    char err[1024] = "";
    Setup s;
    if (setup(&s, 3, 1e30)) return;
    TrainOptions o = {0};
    int rc = train(&s.t, &s.tr, &s.te, &o, err, sizeof err);
    check(rc == DINO_EUSER && strstr(err, "not finite") && strstr(err, "epoch 1, step"),
          "a NaN loss: DINO_EUSER naming the epoch and the step");
    printf("       (%s)\n", err);
    teardown(&s);
    if (setup(&s, 3, 0.01)) return;
    Dataset empty = s.tr;
    empty.n = 0;
    rc = train(&s.t, &empty, &s.te, &o, err, sizeof err);
    check(rc == DINO_EUSER && strstr(err, "empty"), "an empty training split: DINO_EUSER");
    /* data of another precision than the model's (the API converts first: api_data_precision) */
    Dataset other = s.tr;
    other.f64 = !s.t.f64;
    rc = train(&s.t, &other, &s.te, &o, err, sizeof err);
    check(rc == DINO_EINTERNAL && strstr(err, "the data are") && strstr(err, "the model trains in"),
          "training data of another precision: DINO_EINTERNAL");
    Metrics mt;
    rc = evaluate(&s.t, &other, &mt, err, sizeof err);
    check(rc == DINO_EINTERNAL && strstr(err, "the model computes in"),
          "evaluating data of another precision: DINO_EINTERNAL");
    teardown(&s);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_train SHARED_DIR\n");
        return 2;
    }
    snprintf(spec_path, sizeof spec_path, "%s/specs/node_small.dino", argv[1]);
    snprintf(data_dir, sizeof data_dir, "%s/reference/node_small", argv[1]);
    if (access(spec_path, R_OK) || access(data_dir, R_OK)) {
        printf("skipped: no %s or %s\n", spec_path, data_dir);
        return 77;
    }
    char tmp[] = "/tmp/dino-train-test-XXXXXX";
    if (!mkdtemp(tmp)) return 2;
    callbacks();
    stops(tmp);
    reduction();
    selection(tmp);
    failures_reported();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
    printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
