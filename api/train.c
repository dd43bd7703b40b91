/* train.c - dino.h's dino_train: the runtime's training loop (runtime/train.c) with the
 * caller's callbacks, and dino_request_stop's flag; dino_model_selection.
 *
 * TODO: a second dino_train on one model continues from the epochs done (tried on the CPU) but leaks
 * the batch buffers of the first: the backends' set_data (backend_cpu.c, backend_cuda.c) does
 * not release those of an earlier call yet. */
#include "api.h"

/* The caller's options, carried through train()'s callbacks. */
typedef struct {
    const dino_model *md;
    const dino_train_options *o;
} Bridge;

static int on_epoch(const EpochReport *r, void *user) {
    const Bridge *b = user;
    char line[1024];
    format_epoch(b->md->t.m, r, line, sizeof line);
    dino_epoch e = {.epoch = r->epoch, .epochs = r->epochs, .step = r->step, .seconds = r->seconds,
                    .epoch_seconds = r->epoch_seconds, .lr = r->lr, .train_loss = r->train_loss,
                    .evaluated = r->evaluated, .has_rel_l2 = r->test.has_l2, .has_rel_h1 = r->test.has_h1,
                    .has_accuracy = r->test.has_acc, .rel_l2 = r->test.rel_l2, .rel_h1 = r->test.rel_h1,
                    .accuracy = r->test.accuracy, .line = line,
                    .validated = r->validated, .valid_loss = r->valid.loss, .has_valid_rel_l2 = r->valid.has_l2,
                    .has_valid_rel_h1 = r->valid.has_h1, .has_valid_accuracy = r->valid.has_acc,
                    .valid_rel_l2 = r->valid.rel_l2, .valid_rel_h1 = r->valid.rel_h1,
                    .valid_accuracy = r->valid.accuracy, .improved = r->improved, .best_epoch = r->best_epoch,
                    .best_valid_loss = r->best_loss, .early_stop = r->early_stop};
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

dino_status dino_train(dino_model *md, const dino_data *data, const dino_train_options *opts) {
    static const dino_train_options defaults = {0};
    if (!opts) opts = &defaults;
    if (!data || data->model != md) return api_fail(DINO_EUSER, 0, "dino_train needs data loaded for this model");
    Bridge bridge = {.md = md, .o = opts};
    TrainOptions o = {.save = opts->save, .log = opts->log, .until = opts->until, .valid = &data->valid,
                      .on_epoch = opts->on_epoch ? on_epoch : NULL,
                      .on_message = opts->on_message ? on_message : NULL,
                      .on_progress = opts->on_progress ? on_progress : NULL,
                      .user = &bridge, .stop = &md->stop};
    char err[4096];
    int rc = md->stop ? DINO_STOPPED : train(&md->t, &data->train, &data->test, &o, err, sizeof err);
    if (rc == DINO_STOPPED && md->t.m->train.keep_best && md->t.state.best_epoch > 0)
        snprintf(err, sizeof err, "training stopped on request after epoch %lld (keep best: the best epoch so far is %lld)",
                 (long long)md->t.state.epoch, (long long)md->t.state.best_epoch);
    else if (rc == DINO_STOPPED)
        snprintf(err, sizeof err, "training stopped on request after epoch %lld", (long long)md->t.state.epoch);
    md->stop = 0;
    return rc ? api_fail(rc, 0, "%s", err) : DINO_OK;
}

dino_status dino_model_selection(const dino_model *md, dino_selection *info) {
    const Trainer *t = &md->t;
    *info = (dino_selection){.best_epoch = t->state.best_epoch, .best_valid_loss = t->state.best_loss,
                             .stopped_early = t->stopped_early, .best_restored = t->best_restored,
                             .at_best = t->state.best_epoch > 0 && t->state.best_epoch == t->state.epoch};
    return DINO_OK;
}
