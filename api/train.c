/* train.c - dino.h's dino_train: the runtime's training loop (runtime/train.c) with the
 * caller's callbacks, and dino_request_stop's flag; dino_model_selection. A second dino_train on
 * one model continues from the epochs done; the backends' set_data releases the buffers of the
 * first (test api). */
#include <string.h>

#include "api.h"
#include "outputs.h"
#include "parallel.h"

Parallel *api_parallel(void); /* parallel.c: NULL with one process */

/* The caller's options, carried through train()'s callbacks. */
typedef struct {
    const dino_model *md;
    const dino_train_options *o;
} Bridge;

static int on_epoch(const EpochReport *r, void *user) {
    const Bridge *b = user;
    char line[1024];
    format_epoch(b->md->t.m, r, line, sizeof line);
    dino_epoch e = {.epoch = r->epoch,
                    .epochs = r->epochs,
                    .step = r->step,
                    .seconds = r->seconds,
                    .epoch_seconds = r->epoch_seconds,
                    .lr = r->lr,
                    .train_loss = r->train_loss,
                    .evaluated = r->evaluated,
                    .has_rel_l2 = r->test.has_l2,
                    .has_rel_h1 = r->test.has_h1,
                    .has_accuracy = r->test.has_acc,
                    .rel_l2 = r->test.rel_l2,
                    .rel_h1 = r->test.rel_h1,
                    .accuracy = r->test.accuracy,
                    .line = line,
                    .validated = r->validated,
                    .valid_loss = r->valid.loss,
                    .has_valid_rel_l2 = r->valid.has_l2,
                    .has_valid_rel_h1 = r->valid.has_h1,
                    .has_valid_accuracy = r->valid.has_acc,
                    .valid_rel_l2 = r->valid.rel_l2,
                    .valid_rel_h1 = r->valid.rel_h1,
                    .valid_accuracy = r->valid.accuracy,
                    .improved = r->improved,
                    .best_epoch = r->best_epoch,
                    .best_valid_loss = r->best_loss,
                    .early_stop = r->early_stop};
    const char *names[MAX_LOSS_TERMS];
    const Model *m = b->md->t.m;
    for (int i = 0; i < m->n_loss && i < MAX_LOSS_TERMS; i++) names[i] = loss_names[m->loss[i].kind];
    e.n_terms = m->n_loss;
    e.term_names = names;
    e.train_terms = r->terms;
    return b->o->on_epoch(&e, b->o->user);
}

static void on_message(int level, const char *text, void *user) {
    const Bridge *b = user;
    b->o->on_message(level == DINO_MSG_WARNING ? DINO_MESSAGE_WARNING : DINO_MESSAGE_NOTE, text, b->o->user);
}

static void on_progress(int64_t epoch, int64_t step, int64_t steps, double loss, void *user) {
    const Bridge *b = user;
    (void)loss;
    b->o->on_progress(epoch, step, steps, b->o->user);
}

static dino_status dino_train_unguarded(dino_model *md, const dino_data *data, const dino_train_options *opts);

dino_status dino_train(dino_model *md, const dino_data *data, const dino_train_options *opts) {
    API_GUARDED(dino_train_unguarded(md, data, opts));
}

static dino_status dino_train_unguarded(dino_model *md, const dino_data *data, const dino_train_options *opts) {
    static const dino_train_options defaults = {0};
    if (!opts) opts = &defaults;
    if (!data || data->model != md) return api_fail(DINO_EUSER, 0, "dino_train needs data loaded for this model");
    if (api_data_check(data, -1, "dino_train")) return DINO_EUSER;
    /* several processes (dino_parallel_start): the gradient summed across them; rank 0 alone
     * writes the checkpoint and the log */
    Parallel *par = api_parallel();
    dino_train_options ranked;
    if (par) {
        md->t.reduce = parallel_reducer(par, (long long)md->t.m->n_weights, md->t.f64);
        if (par->rank != 0) {
            ranked = *opts;
            ranked.save = ranked.log = NULL;
            opts = &ranked;
        }
    }
    Bridge bridge = {.md = md, .o = opts};
    TrainOptions o = {.save = opts->save,
                      .log = opts->log,
                      .until = opts->until,
                      .valid = &data->valid,
                      .on_epoch = opts->on_epoch ? on_epoch : NULL,
                      .on_message = opts->on_message ? on_message : NULL,
                      .on_progress = opts->on_progress ? on_progress : NULL,
                      .user = &bridge,
                      .stop = md->stop_also ? md->stop_also : &md->stop};
    char err[4096];
    /* before any epoch: a checkpoint or log that can't be written must not cost the training */
    const char *paths[2] = {opts->save, opts->log}, *what[2] = {"checkpoint", "log"};
    for (int i = 0; i < 2; i++)
        if (paths[i] && output_prepare(paths[i], what[i], err, sizeof err))
            return api_fail(DINO_EUSER, 0, "%s; nothing was trained", err);
    err[0] = 0;
    if (!md->stop && md->t.m->n_bases && md->t.state.epoch < md->t.m->train.epochs) {
        /* the bases first (reported once), then the exact reduced path when the model allows it */
        int brc = trainer_bases(&md->t, &data->train, &data->test, &o, err, sizeof err);
        if (brc) return api_fail(brc, 0, "%s", err);
        dino_status st;
        if (reduced_train(md, data, opts, &st)) {
            md->stop = 0;
            return st;
        }
    }
    /* the full-space graph reads the data in the model's precision (a set kept in float64 for
     * the reduced path is converted now, as the load would have) */
    if (!md->stop && api_data_precision(data, -1)) return DINO_EUSER;
    int rc = md->stop ? DINO_STOPPED : train(&md->t, &data->train, &data->test, &o, err, sizeof err);
    size_t n = strlen(err); /* train() may have said where inside an epoch it stopped */
    if (rc == DINO_STOPPED && !n)
        n = (size_t)snprintf(err, sizeof err, "training stopped on request after epoch %lld",
                             (long long)md->t.state.epoch);
    if (rc == DINO_STOPPED && md->t.m->train.keep_best && md->t.state.best_epoch > 0 && n < sizeof err)
        snprintf(err + n, sizeof err - n, " (keep best: the best epoch so far is %lld)",
                 (long long)md->t.state.best_epoch);
    md->stop = 0;
    return rc ? api_fail(rc, 0, "%s", err) : DINO_OK;
}

dino_status dino_model_selection(const dino_model *md, dino_selection *info) {
    const Trainer *t = &md->t;
    *info = (dino_selection){.best_epoch = t->state.best_epoch,
                             .best_valid_loss = t->state.best_loss,
                             .stopped_early = t->stopped_early,
                             .best_restored = t->best_restored,
                             .at_best = t->state.best_epoch > 0 && t->state.best_epoch == t->state.epoch};
    return DINO_OK;
}

int dino_model_bases_ready(const dino_model *md) { return basis_set_ready(&md->t.bases, md->t.m); }

static dino_status dino_model_bases_unguarded(dino_model *md, const dino_data *data, const dino_train_options *opts);

dino_status dino_model_bases(dino_model *md, const dino_data *data, const dino_train_options *opts) {
    API_GUARDED(dino_model_bases_unguarded(md, data, opts));
}

static dino_status dino_model_bases_unguarded(dino_model *md, const dino_data *data, const dino_train_options *opts) {
    static const dino_train_options defaults = {0};
    if (!opts) opts = &defaults;
    if (!data || data->model != md) return api_fail(DINO_EUSER, 0, "dino_model_bases needs data loaded for this model");
    if (api_data_check(data, -1, "dino_model_bases")) return DINO_EUSER;
    Bridge bridge = {.md = md, .o = opts};
    TrainOptions o = {.on_message = opts->on_message ? on_message : NULL, .user = &bridge, .log = opts->log};
    char err[4096];
    int rc = trainer_bases(&md->t, &data->train, &data->test, &o, err, sizeof err);
    return rc ? api_fail(rc, 0, "%s", err) : DINO_OK;
}
