/* data.c - dino.h's data: the spec's data section from a folder, or arrays from memory, in the
 * model's precision. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

dino_status dino_data_load(const dino_model *md, const char *dir, dino_data **out) {
    *out = NULL;
    const dino_spec *spec = md->spec;
    const Model *m = md->t.m;
    if (!dir) dir = spec->data_dir;
    if (!dir) return api_fail(DINO_EUSER, 0, "no data folder: the spec's data block names no dir \"...\"");
    dino_data *d = calloc(1, sizeof *d);
    if (!d) return api_fail(DINO_EINTERNAL, 0, "out of memory");
    d->model = md;
    int need_jac = 0;
    for (int i = 0; i < m->n_loss; i++) need_jac |= m->loss[i].kind == LOSS_H1;
    for (int i = 0; i < m->n_bases; i++) need_jac |= m->bases[i].source == BASIS_OF_JACOBIAN;
    char err[4096];
    /* float64 files stay float64 (mapped) for float32 training when the reduced path may project
     * them: the full-space rows are then never converted whole (api_data_precision converts them
     * if the full-space graph runs after all) */
    int keep_f64 = !md->t.f64 && reduced_may_run(md);
    if (data_load_sets_source(m, dir, md->t.f64, keep_f64, need_jac, &d->train, &d->valid, &d->test, err,
                              sizeof err)) {
        free(d);
        return api_fail(DINO_EUSER, 0, "%s", err);
    }
    *out = d;
    return DINO_OK;
}

/* Copies n doubles into a new buffer of the model's precision. */
static void *convert(const double *src, int64_t n, int f64) {
    void *p = malloc((f64 ? sizeof(double) : sizeof(float)) * (size_t)(n > 0 ? n : 1));
    if (!p) return NULL;
    for (int64_t i = 0; i < n; i++) {
        if (f64) ((double *)p)[i] = src[i];
        else ((float *)p)[i] = (float)src[i];
    }
    return p;
}

/* One Dataset from arrays; which: "training" or "test", for messages. */
static dino_status from_arrays(const Model *m, int f64, const dino_arrays *a, Dataset *d, const char *which) {
    memset(d, 0, sizeof *d);
    d->in = m->in_dim, d->out = m->out_dim, d->f64 = f64, d->classifier = m->classifier;
    if (!a || a->n == 0) return DINO_OK;
    int64_t n = a->n, in = m->in_dim, out = m->out_dim;
    if (n < 0 || !a->x) return api_fail(DINO_EUSER, 0, "the %s set needs n >= 0 and x [n, %lld]", which, (long long)in);
    if (m->classifier ? !a->labels : !a->y)
        return api_fail(DINO_EUSER, 0, "the %s set needs %s", which, m->classifier ? "labels [n]" : "y [n, out]");
    struct {
        const double *p;
        int64_t len;
        const char *name;
    } arrays[] = {{a->x, n * in, "x"},
                  {m->classifier ? NULL : a->y, n * out, "y"},
                  {m->classifier ? NULL : a->J, n * out * in, "J"}};
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; arrays[k].p && i < arrays[k].len; i++)
            if (!isfinite(arrays[k].p[i]))
                return api_fail(DINO_EUSER, 0, "the %s set's %s contains NaN or Inf at element %lld", which,
                                arrays[k].name, (long long)i);
    /* a relative term divides by each row's norm: all-zero training rows are 0/0 (as data.c) */
    for (int t = 0; strcmp(which, "training") == 0 && !m->classifier && t < m->n_loss; t++) {
        const LossTerm *lt = &m->loss[t];
        const double *v = lt->kind == LOSS_L2 ? a->y : lt->kind == LOSS_H1 ? a->J : NULL;
        int64_t len = lt->kind == LOSS_L2 ? out : out * in, count = 0, first = -1;
        for (int64_t r = 0; lt->relative && v && r < n; r++) {
            int zero = 1;
            for (int64_t k = 0; k < len && zero; k++) zero = v[r * len + k] == 0;
            if (zero && count++ == 0) first = r;
        }
        if (count)
            return api_fail(DINO_EUSER, 0,
                            "the training set's %s has %lld all-zero rows (the first is row %lld), but the %s "
                            "term is relative: the loss would be 0/0; remove those rows or drop `relative`",
                            lt->kind == LOSS_L2 ? "y" : "J", (long long)count, (long long)first,
                            lt->kind == LOSS_L2 ? "l2" : "h1");
    }
    for (int64_t i = 0; m->classifier && i < n; i++)
        if (a->labels[i] < 0 || a->labels[i] >= out)
            return api_fail(DINO_EUSER, 0, "the %s set's label %d at row %lld is not a class in [0, %d)", which,
                            a->labels[i], (long long)i, (int)out);
    d->n = n;
    d->x = convert(a->x, n * in, f64);
    int ok = d->x != NULL;
    if (m->classifier) {
        d->label = malloc(sizeof(int32_t) * (size_t)n);
        ok = ok && d->label;
        for (int64_t i = 0; ok && i < n; i++) d->label[i] = a->labels[i];
    } else {
        d->y = convert(a->y, n * out, f64);
        ok = ok && d->y;
        if (a->J) ok = ok && (d->J = convert(a->J, n * out * in, f64));
    }
    if (!ok) {
        data_free(d);
        return api_fail(DINO_EUSER, 0, "out of memory for the %s set (%lld rows)", which, (long long)n);
    }
    return DINO_OK;
}

dino_status dino_data_from_arrays(const dino_model *md, const dino_arrays *train, const dino_arrays *test,
                                  dino_data **out) {
    *out = NULL;
    const Model *m = md->t.m;
    dino_data *d = calloc(1, sizeof *d);
    if (!d) return api_fail(DINO_EINTERNAL, 0, "out of memory");
    d->model = md;
    int need_jac = 0;
    for (int i = 0; i < m->n_loss; i++) need_jac |= m->loss[i].kind == LOSS_H1;
    if (need_jac && train && train->n > 0 && !train->J) {
        free(d);
        if (m->trajectory)
            return api_fail(DINO_EUSER, 0, "the h1 loss needs Jacobian data: the training set's J [n, %d, %d, %d]",
                            m->out_rows, m->out_cols, m->in_dim);
        return api_fail(DINO_EUSER, 0, "the h1 loss needs Jacobian data: the training set's J [n, %d, %d]", m->out_dim,
                        m->in_dim);
    }
    dino_status st = from_arrays(m, md->t.f64, train, &d->train, "training");
    d->valid = (Dataset){.in = m->in_dim, .out = m->out_dim, .f64 = md->t.f64, .classifier = m->classifier};
    if (st == DINO_OK) st = from_arrays(m, md->t.f64, test, &d->test, "test");
    if (st) {
        dino_data_free(d);
        return st;
    }
    *out = d;
    return DINO_OK;
}

dino_status dino_data_rows(const dino_data *d, long long *train_rows, long long *test_rows, int *has_jacobian) {
    if (train_rows) *train_rows = d->train.n;
    if (test_rows) *test_rows = d->test.n;
    if (has_jacobian) *has_jacobian = d->released[DINO_SET_TRAIN] ? d->had_jac[DINO_SET_TRAIN] : d->train.J != NULL;
    return DINO_OK;
}

dino_status dino_data_allow_release(dino_data *d, dino_set set) {
    if (!d) return api_fail(DINO_EUSER, 0, "dino_data_allow_release needs data");
    if ((unsigned)set > DINO_SET_TEST) return api_fail(DINO_EUSER, 0, "no such set of data");
    d->allow_release[set] = 1;
    return DINO_OK;
}

static Dataset *set_of(dino_data *d, int set) {
    return set == DINO_SET_TRAIN ? &d->train : set == DINO_SET_VALID ? &d->valid : &d->test;
}

void api_data_release(const dino_data *data, dino_set set) {
    dino_data *d = (dino_data *)data; /* its owner allowed it: dino_data_allow_release */
    if (!d->allow_release[set] || d->released[set]) return;
    Dataset *s = set_of(d, set);
    /* the labels ([n] int32) stay, as a heap copy: data_free releases the set's arrays however
     * they are held (heap or a file mapping) */
    int32_t *label = s->label && s->n > 0 ? malloc(sizeof(int32_t) * (size_t)s->n) : NULL;
    if (s->label && s->n > 0 && !label) return; /* no memory for the copy: nothing released */
    if (label) memcpy(label, s->label, sizeof(int32_t) * (size_t)s->n);
    Dataset keep = {.n = s->n,
                    .in = s->in,
                    .out = s->out,
                    .f64 = s->f64,
                    .f32_train = s->f32_train,
                    .classifier = s->classifier,
                    .label = label};
    d->had_jac[set] = s->J != NULL;
    data_free(s);
    *s = keep;
    d->released[set] = 1;
}

dino_status api_data_precision(const dino_data *data, int set) {
    static const char *const names[3] = {"training", "validation", "test"};
    dino_data *d = (dino_data *)data; /* the same rows, in the precision the model reads */
    char err[512];
    for (int i = 0; i < 3; i++)
        if ((set < 0 || set == i) && !d->released[i] &&
            data_convert(set_of(d, i), d->model->t.f64, names[i], err, sizeof err))
            return api_fail(DINO_EUSER, 0,
                            "%s; the full-space graph reads the data in the training precision (saved as %s, the "
                            "files would be read in place)",
                            err, d->model->t.f64 ? "float64" : "float32");
    return DINO_OK;
}

dino_status api_data_check(const dino_data *d, int set, const char *what) {
    static const char *const names[3] = {"training", "validation", "test"};
    for (int i = 0; i < 3; i++)
        if ((set < 0 || set == i) && d->released[i])
            return api_fail(DINO_EUSER, 0,
                            "%s: the %s rows of these data were released after the reduced path projected them "
                            "(dino_data_allow_release); load the data again",
                            what, names[i]);
    return DINO_OK;
}

dino_status dino_data_valid_rows(const dino_data *d, long long *valid_rows) {
    if (valid_rows) *valid_rows = d->valid.n;
    return DINO_OK;
}

void dino_data_free(dino_data *d) {
    if (!d) return;
    data_free(&d->train);
    data_free(&d->valid);
    data_free(&d->test);
    free(d);
}
