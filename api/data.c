/* data.c - dino.h's data: the spec's data section from a folder, or arrays from memory, in the
 * model's precision (float64 files kept as float64 for a float32 model that may train in reduced
 * coordinates: converted by api_data_precision when the model itself reads them); one set filled
 * block by block (api_set_*: the reduced path's projection). */
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
    if (data_load_sets_source(m, dir, md->t.f64, keep_f64, need_jac, &d->train, &d->valid, &d->test, err, sizeof err)) {
        free(d);
        return api_fail(DINO_EUSER, 0, "%s", err);
    }
    *out = d;
    return DINO_OK;
}

/* Copies n doubles into dst of precision f64 (double) or float (rounded once). */
static void convert_into(void *dst, const double *src, int64_t n, int f64) {
    for (int64_t i = 0; i < n; i++) {
        if (f64) ((double *)dst)[i] = src[i];
        else ((float *)dst)[i] = (float)src[i];
    }
}

dino_status api_set_begin(ApiSetFill *f, const dino_model *md, long long n, int has_y, int has_J, const int *labels,
                          Dataset *d, const char *which) {
    const Model *m = md->t.m;
    int f64 = md->t.f64;
    memset(f, 0, sizeof *f);
    f->m = m, f->d = d, f->which = which;
    memset(d, 0, sizeof *d);
    d->in = m->in_dim, d->out = m->out_dim, d->f64 = f64, d->classifier = m->classifier;
    if (n <= 0) return DINO_OK;
    size_t es = f64 ? sizeof(double) : sizeof(float), rows = (size_t)n;
    d->n = n;
    d->x = malloc(es * rows * (size_t)m->in_dim);
    int ok = d->x != NULL;
    if (m->classifier) {
        d->label = malloc(sizeof(int32_t) * rows);
        ok = ok && d->label;
        for (int64_t i = 0; ok && i < n; i++) d->label[i] = labels[i];
    } else {
        if (has_y) ok = ok && (d->y = malloc(es * rows * (size_t)m->out_dim));
        if (has_J) ok = ok && (d->J = malloc(es * rows * (size_t)m->out_dim * (size_t)m->in_dim));
    }
    if (!ok) {
        data_free(d);
        return api_fail(DINO_EUSER, 0, "out of memory for the %s set (%lld rows)", which, (long long)n);
    }
    return DINO_OK;
}

dino_status api_set_rows(ApiSetFill *f, long long r0, long long b, const double *x, const double *y, const double *J) {
    const Model *m = f->m;
    Dataset *d = f->d;
    int64_t in = m->in_dim, out = m->out_dim;
    struct {
        const double *p;
        int64_t len;
        const char *name;
    } arrays[] = {{x, b * in, "x"}, {d->y ? y : NULL, b * out, "y"}, {d->J ? J : NULL, b * out * in, "J"}};
    int64_t row_len[3] = {in, out, out * in};
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; arrays[k].p && i < arrays[k].len; i++)
            if (!isfinite(arrays[k].p[i])) {
                data_free(d);
                return api_fail(DINO_EUSER, 0, "the %s set's %s contains NaN or Inf at element %lld", f->which,
                                arrays[k].name, (long long)(r0 * row_len[k] + i));
            }
    /* a relative term divides by each row's norm: all-zero training rows are 0/0 (as data.c) */
    for (int t = 0; strcmp(f->which, "training") == 0 && !m->classifier && t < m->n_loss; t++) {
        const LossTerm *lt = &m->loss[t];
        const double *v = lt->kind == LOSS_L2 ? (d->y ? y : NULL) : lt->kind == LOSS_H1 ? (d->J ? J : NULL) : NULL;
        int64_t len = lt->kind == LOSS_L2 ? out : out * in;
        for (int64_t r = 0; lt->relative && v && r < b; r++) {
            int zero = 1;
            for (int64_t k = 0; k < len && zero; k++) zero = v[r * len + k] == 0;
            if (zero && f->zeros[t]++ == 0) f->first[t] = r0 + r;
        }
    }
    size_t es = d->f64 ? sizeof(double) : sizeof(float);
    convert_into((char *)d->x + es * (size_t)(r0 * in), x, b * in, d->f64);
    if (d->y) convert_into((char *)d->y + es * (size_t)(r0 * out), y, b * out, d->f64);
    if (d->J) convert_into((char *)d->J + es * (size_t)(r0 * out * in), J, b * out * in, d->f64);
    return DINO_OK;
}

dino_status api_set_end(ApiSetFill *f) {
    const Model *m = f->m;
    for (int t = 0; t < m->n_loss && t < MAX_LOSS_TERMS; t++)
        if (f->zeros[t]) {
            data_free(f->d);
            return api_fail(DINO_EUSER, 0,
                            "the training set's %s has %lld all-zero rows (the first is row %lld), but the %s "
                            "term is relative: the loss would be 0/0; remove those rows or drop `relative`",
                            m->loss[t].kind == LOSS_L2 ? "y" : "J", (long long)f->zeros[t], (long long)f->first[t],
                            m->loss[t].kind == LOSS_L2 ? "l2" : "h1");
        }
    return DINO_OK;
}

/* One Dataset from arrays; which: "training" or "test", for messages. */
static dino_status from_arrays(const dino_model *md, const dino_arrays *a, Dataset *d, const char *which) {
    const Model *m = md->t.m;
    ApiSetFill f;
    if (!a || a->n == 0) return api_set_begin(&f, md, 0, 0, 0, NULL, d, which);
    int64_t n = a->n, in = m->in_dim;
    memset(d, 0, sizeof *d);
    if (n < 0 || !a->x) return api_fail(DINO_EUSER, 0, "the %s set needs n >= 0 and x [n, %lld]", which, (long long)in);
    if (m->classifier ? !a->labels : !a->y)
        return api_fail(DINO_EUSER, 0, "the %s set needs %s", which, m->classifier ? "labels [n]" : "y [n, out]");
    dino_status st = api_set_begin(&f, md, n, !m->classifier, !m->classifier && a->J, a->labels, d, which);
    if (!st) st = api_set_rows(&f, 0, n, a->x, a->y, a->J);
    if (!st) st = api_set_end(&f);
    for (int64_t i = 0; !st && m->classifier && i < n; i++) /* after the finite checks (messages' order) */
        if (a->labels[i] < 0 || a->labels[i] >= m->out_dim) {
            data_free(d);
            st = api_fail(DINO_EUSER, 0, "the %s set's label %d at row %lld is not a class in [0, %d)", which,
                          a->labels[i], (long long)i, (int)m->out_dim);
        }
    return st;
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
    dino_status st = from_arrays(md, train, &d->train, "training");
    d->valid = (Dataset){.in = m->in_dim, .out = m->out_dim, .f64 = md->t.f64, .classifier = m->classifier};
    if (st == DINO_OK) st = from_arrays(md, test, &d->test, "test");
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

/* The sets' names in messages, by dino_set. */
static const char *const set_names[3] = {"training", "validation", "test"};

dino_status api_data_precision(const dino_data *data, int set) {
    dino_data *d = (dino_data *)data; /* the same rows, in the precision the model reads */
    char err[512];
    for (int i = 0; i < 3; i++)
        if ((set < 0 || set == i) && !d->released[i] &&
            data_convert(set_of(d, i), d->model->t.f64, set_names[i], err, sizeof err))
            return api_fail(DINO_EUSER, 0,
                            "%s; the full-space graph reads the data in the training precision (saved as %s, the "
                            "files would be read in place)",
                            err, d->model->t.f64 ? "float64" : "float32");
    return DINO_OK;
}

dino_status api_data_check(const dino_data *d, int set, const char *what) {
    for (int i = 0; i < 3; i++)
        if ((set < 0 || set == i) && d->released[i])
            return api_fail(DINO_EUSER, 0,
                            "%s: the %s rows of these data were released after the reduced path projected them "
                            "(dino_data_allow_release); load the data again",
                            what, set_names[i]);
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
