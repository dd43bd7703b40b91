/* test_checkpoint.c - ctest "runtime_checkpoint": checkpoint.c. Round trips of parameters,
 * optimiser moments and training state in both precisions and across them; the file's
 * layout (tensor order, dtypes, metadata); what is and isn't restored (another optimiser,
 * no training state); every error (shape, missing and extra tensors, dtype, NaN, moment
 * length, __state) with P left untouched; and the PyTorch reference checkpoint of dino_small
 * loaded through the real front end when DINO_SHARED_DIR has it (else a SKIP: line). */
#include "harness.h"

#include "checkpoint.h"
#include "frontend.h"
#include "optim.h"
#include "rng.h"
#include "safetensors.h"

/* ------------------------------------------------------------------------ a small model */

/* h.weight [4, 3], h.bias [4], q.weight [2, 4], q.bias [2]: 26 parameters. */
static Model small_model(Param ps[4]) {
    ps[0] = (Param){.name = "h.weight", .ndim = 2, .shape = {4, 3}, .offset = 0, .size = 12, .fan_in = 3};
    ps[1] = (Param){.name = "h.bias", .ndim = 1, .shape = {4, 0}, .offset = 12, .size = 4};
    ps[2] = (Param){.name = "q.weight", .ndim = 2, .shape = {2, 4}, .offset = 16, .size = 8, .fan_in = 4};
    ps[3] = (Param){.name = "q.bias", .ndim = 1, .shape = {2, 0}, .offset = 24, .size = 2};
    return (Model){.name = "small", .params = ps, .n_params = 4, .n_weights = 26};
}

enum { NW = 26 };

static double pval(int k) { return 0.1 * k - 1.3 + 1.0 / (k + 3); }

static void fill(void *P, int f64) {
    for (int k = 0; k < NW; k++) {
        if (f64) ((double *)P)[k] = pval(k);
        else ((float *)P)[k] = (float)pval(k);
    }
}

/* An Adam optimiser after two steps, so m, v and step are all non-trivial. */
static int trained_adam(Optim *o, int f64, void *P) {
    OptimConfig c = {.kind = OPT_ADAM, .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    if (optim_init(o, &c, NW, f64)) return -1;
    double Gd[NW];
    float Gf[NW];
    for (int s = 0; s < 2; s++) {
        for (int k = 0; k < NW; k++) {
            Gd[k] = 0.01 * (k - 13) * (s + 1);
            Gf[k] = (float)Gd[k];
        }
        optim_step(o, P, f64 ? (const void *)Gd : (const void *)Gf, 1e-2);
    }
    return 0;
}

/* ------------------------------------------------------------------------ round trips */

static void test_roundtrip(T *t) {
    Param ps[4];
    Model m = small_model(ps);
    char err[1024];
    const uint64_t hash = 0x0123456789abcdefULL;
    for (int f64 = 0; f64 <= 1; f64++) {
        double Pd[NW];
        void *P = Pd; /* big enough for either precision */
        fill(P, f64);
        Optim o;
        if (!CHECK(t, trained_adam(&o, f64, P) == 0)) continue;
        Rng rng;
        rng_seed(&rng, 99);
        rng_next_u64(&rng);
        TrainState st = {.epoch = 3, .step = 17};
        rng_save(&rng, st.rng);
        const char *path = t_path(t, "ckpt.safetensors");
        if (!CHECK_OK(t, checkpoint_save(path, &m, P, f64, &o, &st, hash, err, sizeof err), err)) {
            optim_free(&o);
            continue;
        }
        double Sd[NW]; /* P as saved (the continuation below moves P on) */
        memcpy(Sd, Pd, sizeof Sd);

        /* The layout: parameters in definition order, then the moments, then __state. */
        Safetensors s;
        if (CHECK_OK(t, st_load(path, &s, err, sizeof err), err)) {
            static const char *const names[7] = {"h.weight",  "h.bias",    "q.weight", "q.bias",
                                                 "__optim.m", "__optim.v", "__state"};
            int order = s.n == 7;
            for (int i = 0; order && i < 7; i++) order = strcmp(s.tensors[i].name, names[i]) == 0;
            CHECK(t, order);
            if (order) {
                DType want = f64 ? DT_F64 : DT_F32;
                CHECK(t,
                      s.tensors[0].dtype == want && s.tensors[0].ndim == 2 && s.tensors[0].shape[0] == 4 &&
                          s.tensors[0].shape[1] == 3);
                CHECK(t, s.tensors[1].ndim == 1 && s.tensors[1].shape[0] == 4);
                CHECK(t, s.tensors[4].dtype == want && s.tensors[4].ndim == 1 && s.tensors[4].shape[0] == NW);
                const int64_t *sv = s.tensors[6].data;
                CHECK(t, s.tensors[6].dtype == DT_I64 && s.tensors[6].shape[0] == 7);
                CHECK(t,
                      sv[0] == 3 && sv[1] == 17 && sv[2] == 2 && (uint64_t)sv[3] == st.rng[0] &&
                          (uint64_t)sv[6] == st.rng[3]);
            }
            const char *fmt = st_meta(&s, "format"), *h = st_meta(&s, "spec_hash");
            const char *opt = st_meta(&s, "optimizer"), *prec = st_meta(&s, "precision");
            CHECK(t, fmt && strcmp(fmt, "dino") == 0 && h && strcmp(h, "0123456789abcdef") == 0);
            CHECK(t, opt && strcmp(opt, "adam") == 0 && prec && strcmp(prec, f64 ? "f64" : "f32") == 0);
            st_free(&s);
        }

        /* Load everything back into fresh buffers. */
        double Qd[NW];
        void *Q = Qd;
        memset(Q, 0, sizeof Qd);
        Optim o2;
        OptimConfig c = o.cfg;
        CHECK(t, optim_init(&o2, &c, NW, f64) == 0);
        TrainState st2 = {0};
        int match = -7;
        if (CHECK_OK(t, checkpoint_load(path, &m, Q, f64, &o2, &st2, hash, &match, err, sizeof err), err)) {
            size_t es = f64 ? 8 : 4;
            CHECK(t, memcmp(P, Q, NW * es) == 0);
            CHECK(t, memcmp(o.m, o2.m, NW * es) == 0 && memcmp(o.v, o2.v, NW * es) == 0);
            CHECK(t, o2.step == 2 && st2.has_optim == 1 && st2.has_state == 1 && match == 1);
            CHECK(t, st2.epoch == 3 && st2.step == 17 && memcmp(st2.rng, st.rng, sizeof st.rng) == 0);
            /* The restored optimiser continues exactly like the original. */
            double Gd[NW];
            float Gf[NW];
            for (int k = 0; k < NW; k++) Gf[k] = (float)(Gd[k] = 0.02 * k);
            const void *G = f64 ? (const void *)Gd : (const void *)Gf;
            optim_step(&o, P, G, 5e-3);
            optim_step(&o2, Q, G, 5e-3);
            CHECK(t, memcmp(P, Q, NW * es) == 0);
        }
        /* Another spec hash: loads, and says so. */
        CHECK_OK(t, checkpoint_load(path, &m, Q, f64, NULL, NULL, hash + 1, &match, err, sizeof err), err);
        CHECK(t, match == 0);

        /* Across precisions: f64 file -> float, f32 file -> double. */
        double Rd[NW];
        if (CHECK_OK(t, checkpoint_load(path, &m, Rd, !f64, NULL, NULL, hash, NULL, err, sizeof err), err)) {
            int same = 1;
            for (int k = 0; k < NW; k++) same &= f64 ? ((float *)Rd)[k] == (float)Sd[k] : Rd[k] == ((float *)Sd)[k];
            CHECK(t, same);
        }
        optim_free(&o);
        optim_free(&o2);
    }
}

static void test_partial_state(T *t) {
    Param ps[4];
    Model m = small_model(ps);
    char err[1024];
    double P[NW], Q[NW];
    fill(P, 1);
    Optim adam;
    CHECK(t, trained_adam(&adam, 1, P) == 0);
    const char *path = t_path(t, "adam.safetensors");
    TrainState st = {.epoch = 1, .step = 2, .rng = {1, 2, 3, 4}};
    CHECK_OK(t, checkpoint_save(path, &m, P, 1, &adam, &st, 7, err, sizeof err), err);

    /* Model selection's state as metadata: written when best_epoch > 0, read back; a file
   * without it loads as "none yet". */
    const char *bp = t_path(t, "best.safetensors");
    TrainState sb = {.epoch = 7, .step = 70, .best_epoch = 5, .best_loss = 0.1 + 1e-17, .since_best = 2};
    CHECK_OK(t, checkpoint_save(bp, &m, P, 1, &adam, &sb, 7, err, sizeof err), err);
    Safetensors sm;
    if (CHECK_OK(t, st_load(bp, &sm, err, sizeof err), err)) {
        CHECK(t,
              st_meta(&sm, "best_epoch") && strcmp(st_meta(&sm, "best_epoch"), "5") == 0 &&
                  st_meta(&sm, "evals_since_best") && strcmp(st_meta(&sm, "evals_since_best"), "2") == 0);
        st_free(&sm);
    }
    TrainState sb2 = {.best_epoch = 99};
    if (CHECK_OK(t, checkpoint_load(bp, &m, Q, 1, NULL, &sb2, 7, NULL, err, sizeof err), err))
        CHECK(t, sb2.epoch == 7 && sb2.best_epoch == 5 && sb2.best_loss == sb.best_loss && sb2.since_best == 2);
    if (CHECK_OK(t, checkpoint_load(path, &m, Q, 1, NULL, &sb2, 7, NULL, err, sizeof err), err))
        CHECK(t, sb2.epoch == 1 && sb2.best_epoch == 0 && sb2.since_best == 0);
    if (CHECK_OK(t, st_load(path, &sm, err, sizeof err), err)) {
        CHECK(t, !st_meta(&sm, "best_epoch")); /* no validation: the metadata is as before */
        st_free(&sm);
    }

    /* Another optimiser kind: parameters and state load, the optimiser starts fresh. */
    Optim sgd;
    OptimConfig c = {.kind = OPT_SGD, .lr = 0.1, .momentum = 0.9};
    CHECK(t, optim_init(&sgd, &c, NW, 1) == 0);
    TrainState st2 = {.has_optim = 5};
    if (CHECK_OK(t, checkpoint_load(path, &m, Q, 1, &sgd, &st2, 7, NULL, err, sizeof err), err)) {
        CHECK(t, memcmp(P, Q, sizeof P) == 0 && st2.has_state == 1 && st2.has_optim == 0);
        CHECK(t, sgd.step == 0 && ((double *)sgd.m)[0] == 0 && st2.epoch == 1);
    }
    optim_free(&sgd);

    /* A file without training state (opt and st NULL at save): st untouched but for the flags. */
    const char *bare = t_path(t, "bare.safetensors");
    CHECK_OK(t, checkpoint_save(bare, &m, P, 1, NULL, NULL, 7, err, sizeof err), err);
    Safetensors s;
    if (CHECK_OK(t, st_load(bare, &s, err, sizeof err), err)) {
        CHECK(t, s.n == 4 && !st_find(&s, "__state") && !st_meta(&s, "optimizer"));
        st_free(&s);
    }
    TrainState st3 = {.epoch = 42, .has_optim = 1, .has_state = 1};
    Optim a2;
    CHECK(t, optim_init(&a2, &adam.cfg, NW, 1) == 0);
    int match = -7;
    if (CHECK_OK(t, checkpoint_load(bare, &m, Q, 1, &a2, &st3, 7, &match, err, sizeof err), err)) {
        CHECK(t, st3.epoch == 42 && st3.has_optim == 0 && st3.has_state == 0 && a2.step == 0 && match == 1);
    }
    optim_free(&a2);

    /* SGD without momentum keeps no moments: its step still comes back. */
    OptimConfig plain = {.kind = OPT_SGD, .lr = 0.1};
    Optim p1, p2;
    CHECK(t, optim_init(&p1, &plain, NW, 1) == 0 && optim_init(&p2, &plain, NW, 1) == 0);
    p1.step = 9;
    const char *sp = t_path(t, "sgd.safetensors");
    CHECK_OK(t, checkpoint_save(sp, &m, P, 1, &p1, NULL, 7, err, sizeof err), err);
    TrainState st4 = {0};
    if (CHECK_OK(t, checkpoint_load(sp, &m, Q, 1, &p2, &st4, 7, NULL, err, sizeof err), err))
        CHECK(t, p2.step == 9 && st4.has_optim == 1 && st4.has_state == 1);
    optim_free(&p1);
    optim_free(&p2);
    optim_free(&adam);
}

/* ------------------------------------------------------------------------ errors */

/* Writes a safetensors file of the small model's tensors with one change: tensor `which`
 * (by index, -1 none) renamed to `rename` (NULL: dropped), given shape1 as its first
 * dimension (when > 0) or dtype I32 (i32), plus optional extra tensors. */
typedef struct {
    int which;
    const char *rename;
    int drop;
    int64_t shape1;
    int i32;
    int nan_at; /* -1 none */
    const StWriteTensor *extra;
    int n_extra;
} Mutation;

static const char *write_mutated(T *t, const Mutation *mu) {
    Param ps[4];
    small_model(ps);
    double P[NW + 8]; /* padded: a mutated shape may read past the last parameter */
    int32_t I[NW + 8];
    memset(P, 0, sizeof P);
    memset(I, 0, sizeof I);
    fill(P, 1);
    for (int k = 0; k < NW; k++) I[k] = k;
    if (mu->nan_at >= 0) P[mu->nan_at] = NAN;
    StWriteTensor tw[8];
    int64_t shapes[8][2];
    int n = 0;
    for (int i = 0; i < 4; i++) {
        if (i == mu->which && mu->drop) continue;
        shapes[n][0] = ps[i].shape[0];
        shapes[n][1] = ps[i].shape[1];
        if (i == mu->which && mu->shape1 > 0) shapes[n][ps[i].ndim - 1] = mu->shape1;
        int i32 = i == mu->which && mu->i32;
        tw[n] = (StWriteTensor){.name = i == mu->which && mu->rename ? mu->rename : ps[i].name,
                                .dtype = i32 ? DT_I32 : DT_F64,
                                .ndim = ps[i].ndim,
                                .shape = shapes[n],
                                .data = i32 ? (const void *)(I + ps[i].offset) : (const void *)(P + ps[i].offset)};
        n++;
    }
    for (int k = 0; k < mu->n_extra; k++) tw[n++] = mu->extra[k];
    const char *path = t_path(t, "bad.safetensors");
    char err[1024];
    const char *keys[2] = {"format", "optimizer"}, *vals[2] = {"dino", "adam"};
    CHECK_OK(t, st_save(path, tw, n, keys, vals, 2, err, sizeof err), err);
    return path;
}

static void expect_load_err(T *t, const char *path, Optim *opt, TrainState *st, int line, const char *want1,
                            const char *want2) {
    Param ps[4];
    Model m = small_model(ps);
    double Q[NW];
    for (int k = 0; k < NW; k++) Q[k] = 77;
    char err[1024] = "";
    int rc = checkpoint_load(path, &m, Q, 1, opt, st, 0, NULL, err, sizeof err);
    t_check_err(t, rc, err, path, __FILE__, line, want1, want2, (const char *)NULL);
    int untouched = 1;
    for (int k = 0; k < NW; k++) untouched &= Q[k] == 77;
    t_check(t, untouched, __FILE__, line, "P untouched after a failed load");
}

static void test_errors(T *t) {
    const char *p;
    p = write_mutated(t, &(Mutation){.which = 0, .shape1 = 2, .nan_at = -1});
    expect_load_err(t, p, NULL, NULL, __LINE__, "tensor 'h.weight' has shape [4, 2], expected [4, 3]", "");
    p = write_mutated(t, &(Mutation){.which = 3, .shape1 = 3, .nan_at = -1});
    expect_load_err(t, p, NULL, NULL, __LINE__, "tensor 'q.bias' has shape [3], expected [2]", "");
    p = write_mutated(t, &(Mutation){.which = 3, .drop = 1, .nan_at = -1});
    expect_load_err(t, p, NULL, NULL, __LINE__, "tensor 'q.bias' is missing (expected shape [2])", "");
    p = write_mutated(t, &(Mutation){.which = 1, .rename = "h.bais", .nan_at = -1});
    expect_load_err(t, p, NULL, NULL, __LINE__, "tensor 'h.bias' is missing",
                    "the file has 'h.bais', which is not a parameter of the model");
    p = write_mutated(t, &(Mutation){.which = 2, .i32 = 1, .nan_at = -1});
    expect_load_err(t, p, NULL, NULL, __LINE__, "tensor 'q.weight' has dtype int32, expected float32 or float64", "");
    p = write_mutated(t, &(Mutation){.which = -1, .nan_at = 14});
    expect_load_err(t, p, NULL, NULL, __LINE__, "tensor 'h.bias' contains NaN at element 2", "");

    static const double extra_data[4] = {1, 2, 3, 4};
    static const int64_t four[1] = {4}, three[1] = {3}, seven[1] = {7};
    StWriteTensor extra = {.name = "z.weight", .dtype = DT_F64, .ndim = 1, .shape = four, .data = extra_data};
    p = write_mutated(t, &(Mutation){.which = -1, .nan_at = -1, .extra = &extra, .n_extra = 1});
    expect_load_err(t, p, NULL, NULL, __LINE__, "tensor 'z.weight' is not a parameter of model small", "");

    /* Unknown "__" tensors are somebody's extension: ignored. */
    StWriteTensor dunder = {.name = "__notes", .dtype = DT_F64, .ndim = 1, .shape = four, .data = extra_data};
    p = write_mutated(t, &(Mutation){.which = -1, .nan_at = -1, .extra = &dunder, .n_extra = 1});
    Param ps[4];
    Model m = small_model(ps);
    double Q[NW];
    char err[1024];
    CHECK_OK(t, checkpoint_load(p, &m, Q, 1, NULL, NULL, 0, NULL, err, sizeof err), err);

    /* Moments of the wrong length for this model, when they would be restored. */
    static const int64_t state[7] = {1, 2, 3, 4, 5, 6, 7};
    StWriteTensor moments[3] = {{.name = "__optim.m", .dtype = DT_F64, .ndim = 1, .shape = three, .data = extra_data},
                                {.name = "__optim.v", .dtype = DT_F64, .ndim = 1, .shape = three, .data = extra_data},
                                {.name = "__state", .dtype = DT_I64, .ndim = 1, .shape = seven, .data = state}};
    p = write_mutated(t, &(Mutation){.which = -1, .nan_at = -1, .extra = moments, .n_extra = 3});
    Optim o;
    OptimConfig c = {.kind = OPT_ADAM, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    CHECK(t, optim_init(&o, &c, NW, 1) == 0);
    expect_load_err(t, p, &o, NULL, __LINE__, "tensor '__optim.m' has shape [3], expected [26]",
                    "one value per parameter");
    CHECK(t, o.step == 0);
    optim_free(&o);

    /* A malformed __state. */
    StWriteTensor bad_state = {.name = "__state", .dtype = DT_I64, .ndim = 1, .shape = three, .data = state};
    p = write_mutated(t, &(Mutation){.which = -1, .nan_at = -1, .extra = &bad_state, .n_extra = 1});
    TrainState st = {0};
    expect_load_err(t, p, NULL, &st, __LINE__, "tensor '__state' has dtype int64 and shape [3], expected int64 [7]",
                    "");

    /* A file that is not there; a file that is not safetensors. */
    expect_load_err(t, t_path(t, "none.safetensors"), NULL, NULL, __LINE__, "cannot open", "");
    const char *junk = t_path(t, "junk.safetensors");
    FILE *fp = fopen(junk, "wb");
    if (fp) {
        fputs("not a checkpoint at all", fp);
        fclose(fp);
    }
    Q[0] = 77;
    err[0] = 0;
    CHECK(t,
          checkpoint_load(junk, &m, Q, 1, NULL, NULL, 0, NULL, err, sizeof err) == -1 &&
              strncmp(err, junk, strlen(junk)) == 0);

    /* Saving: an optimiser of another size; a folder that does not exist. */
    CHECK(t, optim_init(&o, &c, NW - 1, 1) == 0);
    double P[NW];
    fill(P, 1);
    const char *sp = t_path(t, "x.safetensors");
    CHECK_ERR(t, checkpoint_save(sp, &m, P, 1, &o, NULL, 0, err, sizeof err), err, sp,
              "the optimiser has 25 values per moment, the model 26 parameters");
    CHECK(t, !t_file_exists(sp));
    optim_free(&o);
    const char *nodir = t_path(t, "no/such/dir/x.safetensors");
    CHECK_ERR(t, checkpoint_save(nodir, &m, P, 1, NULL, NULL, 0, err, sizeof err), err, nodir, "");
}

/* ------------------------------------------------------------------------ the reference */

static void test_reference(T *t) {
    char spec[600], ref[600], err[1024];
    snprintf(spec, sizeof spec, "%s/specs/dino_small.dino", DINO_SHARED_DIR);
    snprintf(ref, sizeof ref, "%s/reference/dino_small/params.safetensors", DINO_SHARED_DIR);
    if (access(spec, R_OK) != 0 || access(ref, R_OK) != 0) {
        t_skip(t, "no reference dino_small checkpoint in DINO_SHARED_DIR (" DINO_SHARED_DIR ")");
        return;
    }
    Frontend fe;
    if (!CHECK(t, frontend_run(&fe, spec, stderr, 0, NULL) == 0 && fe.model)) {
        frontend_free(&fe);
        return;
    }
    const Model *m = fe.model;
    size_t n = (size_t)m->n_weights;
    double *P = calloc(n, sizeof(double)), *Q = calloc(n, sizeof(double)); /* (n_weights,) */
    float *F = calloc(n, sizeof(float));
    Safetensors s;
    if (!CHECK(t, P && Q && F) || !CHECK_OK(t, st_load(ref, &s, err, sizeof err), err)) {
        free(P), free(Q), free(F);
        frontend_free(&fe);
        return;
    }
    /* PyTorch's file: the parameters and nothing else. */
    CHECK(t, s.n == m->n_params);
    TrainState st = {.epoch = 5};
    Optim o;
    OptimConfig c = optim_config(&m->train);
    CHECK(t, optim_init(&o, &c, m->n_weights, 1) == 0);
    int match = 7;
    if (CHECK_OK(t, checkpoint_load(ref, m, P, 1, &o, &st, 1, &match, err, sizeof err), err)) {
        CHECK(t, match == -1 && st.has_state == 0 && st.has_optim == 0 && st.epoch == 5 && o.step == 0);
        int same = 1;
        for (int i = 0; i < m->n_params; i++) {
            const Param *p = &m->params[i];
            const StTensor *tt = st_find(&s, p->name);
            same &= tt && tt->dtype == DT_F64 && memcmp(tt->data, P + p->offset, (size_t)p->size * 8) == 0;
        }
        CHECK(t, same);
        /* Save it as a dino checkpoint and read it back: identical parameters. */
        const char *path = t_path(t, "dino_small.safetensors");
        CHECK_OK(t, checkpoint_save(path, m, P, 1, &o, &st, 0xfeed, err, sizeof err), err);
        if (CHECK_OK(t, checkpoint_load(path, m, Q, 1, NULL, NULL, 0xfeed, &match, err, sizeof err), err))
            CHECK(t, memcmp(P, Q, n * sizeof(double)) == 0 && match == 1);
        /* And in float32. */
        if (CHECK_OK(t, checkpoint_load(ref, m, F, 0, NULL, NULL, 0, NULL, err, sizeof err), err)) {
            int close = 1;
            for (size_t k = 0; k < n; k++) close &= F[k] == (float)P[k];
            CHECK(t, close);
        }
    }
    optim_free(&o);
    st_free(&s);
    free(P);
    free(Q);
    free(F);
    frontend_free(&fe);
}

int main(int argc, char **argv) {
    T t;
    if (t_begin(&t, argc, argv, "checkpoint")) return 1;
    test_roundtrip(&t);
    test_partial_state(&t);
    test_errors(&t);
    test_reference(&t);
    return t_end(&t, "runtime_checkpoint");
}
