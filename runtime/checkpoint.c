/* checkpoint.c - saves and loads a model's parameters and training state through the
 * safetensors layer (safetensors.c does the file format; this file decides what goes in and
 * checks what comes out against the model). The layout is described in checkpoint.h.
 * Loading is check-then-write: the whole file is validated before P, opt or st change. */
#include "checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "safetensors.h"

enum { STATE_LEN = 7 }; /* __state: epoch, step, optimiser step, rng[0..3] */

static const char *shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int k = 0; k < ndim && at < n; k++)
        at += (size_t)snprintf(buf + at, n - at, "%s%lld", k ? ", " : "", (long long)shape[k]);
    if (at < n) snprintf(buf + at, n - at, "]");
    return buf;
}

/* ---------------------------------------------------------------------------- save */

int checkpoint_save(const char *path, const Model *m, const void *P, int f64, const Optim *opt, const TrainState *st,
                    uint64_t spec_hash, char *err, size_t errlen) {
    return checkpoint_save_bases(path, m, P, f64, opt, st, spec_hash, NULL, err, errlen);
}

int checkpoint_save_bases(const char *path, const Model *m, const void *P, int f64, const Optim *opt,
                          const TrainState *st, uint64_t spec_hash, const BasisSet *bases, char *err, size_t errlen) {
    size_t es = f64 ? sizeof(double) : sizeof(float);
    DType pdt = f64 ? DT_F64 : DT_F32;
    if (opt && opt->n != model_trainable(m)) {
        fio_errf(err, errlen,
                 "%s: cannot save: the optimiser has %lld values per moment, the "
                 "model %lld parameters",
                 path, (long long)opt->n, (long long)model_trainable(m));
        return -1;
    }
    int cap = m->n_params + 3 + 4 * m->n_bases;
    StWriteTensor *t = calloc((size_t)cap, sizeof *t);         /* (cap,) */
    int64_t *shapes = calloc((size_t)cap * 2, sizeof *shapes); /* (cap, 2) */
    if (!t || !shapes) {
        free(t);
        free(shapes);
        fio_errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    int n = 0;
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        if (p->frozen) continue; /* a basis's layer: the basis itself is saved below */
        shapes[2 * n] = p->shape[0];
        shapes[2 * n + 1] = p->ndim == 2 ? p->shape[1] : 0;
        t[n] = (StWriteTensor){.name = p->name,
                               .dtype = pdt,
                               .ndim = p->ndim,
                               .shape = &shapes[2 * n],
                               .data = (const char *)P + (size_t)p->offset * es};
        n++;
    }
    /* __basis.<name>.decoder / encoder [dim, rank], shift [dim], eigenvalues [rank], all F64 */
    char **names = calloc((size_t)(4 * m->n_bases + 1), sizeof *names);
    char **meta = calloc((size_t)(2 * m->n_bases + 1), sizeof *meta);
    int n_names = 0, n_meta = 0;
    for (int i = 0; bases && names && meta && i < m->n_bases && i < bases->n; i++) {
        const BasisValues *v = &bases->v[i];
        if (v->origin == BASIS_FROM_NONE) continue;
        static const char *const parts[4] = {"decoder", "encoder", "shift", "eigenvalues"};
        const double *data[4] = {v->D, v->E, v->shift, v->eig};
        for (int k = 0; k < 4; k++) {
            if (!data[k]) continue;
            size_t len = strlen(m->bases[i].name) + 32;
            char *name = malloc(len);
            if (!name) break;
            snprintf(name, len, "__basis.%s.%s", m->bases[i].name, parts[k]);
            names[n_names++] = name;
            int nd = k < 2 ? 2 : 1;
            shapes[2 * n] = k == 3 ? v->rank : v->dim;
            shapes[2 * n + 1] = v->rank;
            t[n] = (StWriteTensor){.name = name, .dtype = DT_F64, .ndim = nd, .shape = &shapes[2 * n], .data = data[k]};
            n++;
        }
        size_t klen = strlen(m->bases[i].name) + 16, vlen = strlen(m->bases[i].text) + 160;
        char *key = malloc(klen), *val = malloc(vlen);
        if (!key || !val) {
            free(key), free(val);
            continue;
        }
        snprintf(key, klen, "basis.%s", m->bases[i].name);
        snprintf(val, vlen, "%s; method %s; rank %d; samples %lld; seed %llu; data %016llx", m->bases[i].text,
                 basis_method_names[m->bases[i].method], v->rank, (long long)v->samples,
                 (unsigned long long)m->train.seed, (unsigned long long)v->key);
        meta[n_meta++] = key;
        meta[n_meta++] = val;
    }
    if (opt) {
        DType odt = opt->f64 ? DT_F64 : DT_F32;
        const char *names[2] = {"__optim.m", "__optim.v"};
        const void *bufs[2] = {opt->m, opt->v};
        for (int k = 0; k < 2; k++) {
            if (!bufs[k]) continue;
            shapes[2 * n] = opt->n;
            t[n] = (StWriteTensor){.name = names[k], .dtype = odt, .ndim = 1, .shape = &shapes[2 * n], .data = bufs[k]};
            n++;
        }
    }
    int64_t state[STATE_LEN] = {0};
    if (opt || st) {
        if (st) {
            state[0] = st->epoch;
            state[1] = st->step;
            for (int k = 0; k < 4; k++) memcpy(&state[3 + k], &st->rng[k], sizeof(int64_t));
        }
        state[2] = opt ? opt->step : 0;
        shapes[2 * n] = STATE_LEN;
        t[n] = (StWriteTensor){.name = "__state", .dtype = DT_I64, .ndim = 1, .shape = &shapes[2 * n], .data = state};
        n++;
    }
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)spec_hash);
    int n_keys = opt ? 5 : 4;
    const char **keys = calloc((size_t)(8 + n_meta / 2), sizeof *keys);
    const char **vals = calloc((size_t)(8 + n_meta / 2), sizeof *vals);
    char best[3][32];
    int rc = -1;
    if (keys && vals && names && meta) {
        const char *k0[5] = {"format", "spec_hash", "model", "precision", "optimizer"};
        const char *v0[5] = {"dino", hash, m->name ? m->name : "", f64 ? "f64" : "f32",
                             opt && opt->cfg.kind < OPT_COUNT ? optimizer_names[opt->cfg.kind] : ""};
        for (int k = 0; k < n_keys; k++) keys[k] = k0[k], vals[k] = v0[k];
        if (st && st->best_epoch > 0) { /* model selection (train.c) */
            snprintf(best[0], sizeof best[0], "%lld", (long long)st->best_epoch);
            snprintf(best[1], sizeof best[1], "%.17g", st->best_loss);
            snprintf(best[2], sizeof best[2], "%lld", (long long)st->since_best);
            const char *bnames[3] = {"best_epoch", "best_valid_loss", "evals_since_best"};
            for (int k = 0; k < 3; k++) keys[n_keys] = bnames[k], vals[n_keys++] = best[k];
        }
        for (int k = 0; k < n_meta / 2; k++) keys[n_keys] = meta[2 * k], vals[n_keys++] = meta[2 * k + 1];
        rc = st_save(path, t, n, keys, vals, n_keys, err, errlen);
    } else {
        fio_errf(err, errlen, "%s: out of memory", path);
    }
    for (int k = 0; names && k < n_names; k++) free(names[k]);
    for (int k = 0; meta && k < n_meta; k++) free(meta[k]);
    free(names), free(meta), free(keys), free(vals);
    free(t);
    free(shapes);
    return rc;
}

/* ---------------------------------------------------------------------------- load */

static double tensor_elem(const StTensor *t, int64_t k) {
    return t->dtype == DT_F64 ? ((const double *)t->data)[k] : ((const float *)t->data)[k];
}

/* A float tensor of the expected shape with finite values that fit the target precision. */
static int check_tensor(const char *path, const StTensor *t, int ndim, const int64_t *shape, int f64, const char *why,
                        char *err, size_t errlen) {
    char want[64], found[160];
    shape_str(want, sizeof want, ndim, shape);
    if (t->dtype != DT_F32 && t->dtype != DT_F64) {
        fio_errf(err, errlen, "%s: tensor '%s' has dtype %s, expected float32 or float64", path, t->name,
                 dtype_name(t->dtype));
        return -1;
    }
    int same = t->ndim == ndim;
    for (int k = 0; same && k < ndim; k++) same = t->shape[k] == shape[k];
    if (!same) {
        fio_errf(err, errlen, "%s: tensor '%s' has shape %s, expected %s%s", path, t->name,
                 shape_str(found, sizeof found, t->ndim, t->shape), want, why);
        return -1;
    }
    int64_t count = 1;
    for (int k = 0; k < ndim; k++) count *= shape[k];
    for (int64_t k = 0; k < count; k++) {
        double v = tensor_elem(t, k);
        if (!isfinite(v)) {
            fio_errf(err, errlen, "%s: tensor '%s' contains %s at element %lld", path, t->name,
                     isnan(v)    ? "NaN"
                         : v > 0 ? "Inf"
                                 : "-Inf",
                     (long long)k);
            return -1;
        }
        if (!f64 && fabs(v) > 3.4028234663852886e38) {
            fio_errf(err, errlen, "%s: tensor '%s' element %lld (%g) does not fit in float32", path, t->name,
                     (long long)k, v);
            return -1;
        }
    }
    return 0;
}

static void copy_tensor(const StTensor *t, void *dst, int f64, int64_t count) {
    for (int64_t k = 0; k < count; k++) {
        double v = tensor_elem(t, k);
        if (f64) ((double *)dst)[k] = v;
        else ((float *)dst)[k] = (float)v;
    }
}

static int is_param(const Model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (!m->params[i].frozen && strcmp(m->params[i].name, name) == 0) return 1;
    return 0;
}

int checkpoint_load(const char *path, const Model *m, void *P, int f64, Optim *opt, TrainState *st, uint64_t spec_hash,
                    int *hash_matches, char *err, size_t errlen) {
    return checkpoint_load_bases(path, m, P, f64, opt, st, spec_hash, hash_matches, NULL, err, errlen);
}

/* The tensor __basis.<name>.<part>, or NULL. */
static const StTensor *basis_tensor(const Safetensors *s, const char *name, const char *part) {
    char key[512];
    snprintf(key, sizeof key, "__basis.%s.%s", name, part);
    return st_find(s, key);
}

int checkpoint_load_bases(const char *path, const Model *m, void *P, int f64, Optim *opt, TrainState *st,
                          uint64_t spec_hash, int *hash_matches, BasisSet *bases, char *err, size_t errlen) {
    Safetensors s;
    if (st_load(path, &s, err, errlen)) return -1;
    int rc = -1;
    size_t es = f64 ? sizeof(double) : sizeof(float);

    /* Parameters: every one present, with its shape. */
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        if (p->frozen) continue;
        int64_t shape[2] = {p->shape[0], p->ndim == 2 ? p->shape[1] : 0};
        const StTensor *t = st_find(&s, p->name);
        if (!t) {
            char want[64];
            const char *stray = NULL; /* a renamed layer or a typo shows up as an extra tensor */
            for (int k = 0; k < s.n && !stray; k++)
                if (strncmp(s.tensors[k].name, "__", 2) != 0 && !is_param(m, s.tensors[k].name))
                    stray = s.tensors[k].name;
            fio_errf(err, errlen, "%s: tensor '%s' is missing (expected shape %s)%s%s%s", path, p->name,
                     shape_str(want, sizeof want, p->ndim, shape), stray ? "; the file has '" : "", stray ? stray : "",
                     stray ? "', which is not a parameter of the model" : "");
            goto done;
        }
        if (check_tensor(path, t, p->ndim, shape, f64, "", err, errlen)) goto done;
    }
    for (int i = 0; i < s.n; i++) {
        const char *name = s.tensors[i].name;
        if (strncmp(name, "__", 2) != 0 && !is_param(m, name)) {
            fio_errf(err, errlen,
                     "%s: tensor '%s' is not a parameter of model %s (a checkpoint of "
                     "another spec?)",
                     path, name, m->name ? m->name : "");
            goto done;
        }
    }

    /* Training state. */
    const StTensor *state = st_find(&s, "__state");
    if (state && (state->dtype != DT_I64 || state->ndim != 1 || state->shape[0] != STATE_LEN)) {
        char found[160];
        fio_errf(err, errlen, "%s: tensor '__state' has dtype %s and shape %s, expected int64 [%d]", path,
                 dtype_name(state->dtype), shape_str(found, sizeof found, state->ndim, state->shape), STATE_LEN);
        goto done;
    }
    int64_t sv[STATE_LEN] = {0};
    if (state) memcpy(sv, state->data, sizeof sv);

    /* Optimiser: only when the file has the same kind and every moment opt keeps. */
    const StTensor *om = st_find(&s, "__optim.m"), *ov = st_find(&s, "__optim.v");
    const char *kind = st_meta(&s, "optimizer");
    int restore = opt && state && kind && opt->cfg.kind < OPT_COUNT &&
        strcmp(kind, optimizer_names[opt->cfg.kind]) == 0 && (!opt->m || om) && (!opt->v || ov);
    if (restore) {
        int64_t n = opt->n;
        const char *why = " (one value per parameter of the model)";
        if ((opt->m && check_tensor(path, om, 1, &n, opt->f64, why, err, errlen)) ||
            (opt->v && check_tensor(path, ov, 1, &n, opt->f64, why, err, errlen)))
            goto done;
    }

    /* Bases: a basis whose decoder the file holds is taken as saved (its other parts checked). */
    for (int i = 0; bases && i < m->n_bases && i < bases->n; i++) {
        const Basis *b = &m->bases[i];
        const StTensor *dec = basis_tensor(&s, b->name, "decoder");
        if (!dec) continue;
        int64_t mat[2] = {b->dim, b->rank}, vec[1] = {b->dim}, eig[1] = {b->rank};
        const char *why = " (the basis's [dim, rank])";
        const StTensor *enc = basis_tensor(&s, b->name, "encoder"), *sh = basis_tensor(&s, b->name, "shift"),
                       *ev = basis_tensor(&s, b->name, "eigenvalues");
        if (check_tensor(path, dec, 2, mat, 1, why, err, errlen) ||
            (enc && check_tensor(path, enc, 2, mat, 1, why, err, errlen)) ||
            (sh && check_tensor(path, sh, 1, vec, 1, " (the basis's dimension)", err, errlen)) ||
            (ev && check_tensor(path, ev, 1, eig, 1, " (the basis's rank)", err, errlen)))
            goto done;
    }

    /* Everything checks out: write. */
    for (int i = 0; bases && i < m->n_bases && i < bases->n; i++) {
        const Basis *b = &m->bases[i];
        const StTensor *dec = basis_tensor(&s, b->name, "decoder");
        if (!dec) continue;
        BasisValues *v = &bases->v[i];
        size_t dr = (size_t)b->dim * (size_t)b->rank;
        const StTensor *enc = basis_tensor(&s, b->name, "encoder"), *sh = basis_tensor(&s, b->name, "shift"),
                       *ev = basis_tensor(&s, b->name, "eigenvalues");
        double *D = malloc(sizeof(double) * dr), *E = malloc(sizeof(double) * dr);
        double *shift = calloc((size_t)b->dim, sizeof(double));
        double *eg = ev ? malloc(sizeof(double) * (size_t)b->rank) : NULL;
        if (!D || !E || !shift || (ev && !eg)) {
            free(D), free(E), free(shift), free(eg);
            fio_errf(err, errlen, "%s: out of memory for basis %s", path, b->name);
            goto done;
        }
        copy_tensor(dec, D, 1, (int64_t)dr);
        copy_tensor(enc ? enc : dec, E, 1, (int64_t)dr);
        if (sh) copy_tensor(sh, shift, 1, b->dim);
        if (ev) copy_tensor(ev, eg, 1, b->rank);
        free(v->D), free(v->E), free(v->shift), free(v->eig);
        v->D = D, v->E = E, v->shift = shift, v->eig = eg;
        v->origin = BASIS_FROM_CHECKPOINT;
        v->seconds = 0;
    }
    for (int i = 0; i < m->n_params; i++) {
        const Param *p = &m->params[i];
        if (p->frozen) continue;
        copy_tensor(st_find(&s, p->name), (char *)P + (size_t)p->offset * es, f64, p->size);
    }
    if (restore) {
        if (opt->m) copy_tensor(om, opt->m, opt->f64, opt->n);
        if (opt->v) copy_tensor(ov, opt->v, opt->f64, opt->n);
        opt->step = sv[2];
    }
    if (st) {
        st->has_state = state != NULL;
        st->has_optim = restore;
        if (state) {
            st->epoch = sv[0];
            st->step = sv[1];
            for (int k = 0; k < 4; k++) memcpy(&st->rng[k], &sv[3 + k], sizeof(uint64_t));
            /* model selection (absent: none yet); nonsense values count as absent */
            const char *be = st_meta(&s, "best_epoch"), *bl = st_meta(&s, "best_valid_loss"),
                       *sb = st_meta(&s, "evals_since_best");
            st->best_epoch = be && bl ? strtoll(be, NULL, 10) : 0;
            st->best_loss = bl ? strtod(bl, NULL) : 0;
            st->since_best = sb ? strtoll(sb, NULL, 10) : 0;
            if (st->best_epoch <= 0 || !(st->best_loss >= 0) || !isfinite(st->best_loss) || st->since_best < 0)
                st->best_epoch = 0, st->best_loss = 0, st->since_best = 0;
        }
    }
    if (hash_matches) {
        const char *h = st_meta(&s, "spec_hash");
        char *end = NULL;
        unsigned long long v = h ? strtoull(h, &end, 16) : 0;
        *hash_matches = !h ? -1 : (end != h && *end == 0 && v == spec_hash);
    }
    rc = 0;
done:
    st_free(&s);
    return rc;
}
