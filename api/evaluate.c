/* evaluate.c - dino.h's dino_evaluate: a model's loss and metrics on one set of its data,
 * through the runtime's evaluate() (runtime/train.c), training nothing. */
#include "api.h"

dino_status dino_evaluate(dino_model *md, const dino_data *data, dino_set set, dino_metrics *out) {
    *out = (dino_metrics){0};
    if (!data || data->model != md) return api_fail(DINO_EUSER, 0, "dino_evaluate needs data loaded for this model");
    if ((unsigned)set > DINO_SET_TEST) return api_fail(DINO_EUSER, 0, "no such set of data");
    if (api_data_check(data, (int)set, "dino_evaluate") || api_data_precision(data, (int)set)) return DINO_EUSER;
    const Dataset *d = set == DINO_SET_TRAIN ? &data->train : set == DINO_SET_VALID ? &data->valid : &data->test;
    Metrics mt;
    char err[4096];
    int rc = evaluate(&md->t, d, &mt, err, sizeof err);
    if (rc) return api_fail(rc, 0, "%s", err);
    const Model *m = md->t.m;
    *out = (dino_metrics){.rows = mt.rows,
                          .has_loss = mt.has_loss && mt.rows > 0,
                          .loss = mt.loss,
                          .n_terms = mt.rows > 0 ? m->n_loss : 0,
                          .has_rel_l2 = mt.has_l2,
                          .has_rel_h1 = mt.has_h1,
                          .has_accuracy = mt.has_acc,
                          .rel_l2 = mt.rel_l2,
                          .rel_h1 = mt.rel_h1,
                          .accuracy = mt.accuracy};
    for (int i = 0; i < out->n_terms && i < MAX_LOSS_TERMS; i++) out->terms[i] = mt.terms[i];
    return DINO_OK;
}

const char *dino_spec_loss_term(const dino_spec *spec, int i) {
    const Model *m = spec && spec->ok ? spec->fe.model : NULL;
    return m && i >= 0 && i < m->n_loss ? loss_names[m->loss[i].kind] : NULL;
}
