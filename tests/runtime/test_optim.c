/* test_optim.c - ctest "runtime_optim": optim.c and rng.c.
 * Adam, AdamW and SGD with and without momentum for three steps on a 3-parameter buffer, in
 * float and double, against values worked out by hand (closed forms for SGD and for Adam's
 * first step) and against an independent evaluation of PyTorch's formulas (Python, double,
 * the literals below); every learning-rate schedule at several points; loss-weight ramps;
 * the RNG's reference outputs, determinism, state round trip and permutations. */
#include "harness.h"

#include "model.h"
#include "optim.h"
#include "rng.h"

/* The test problem: P0 and the gradients of steps 1..3 (fixed, whatever P is). */
static const double P0[3] = {0.5, -1.0, 2.0};
static const double G[3][3] = {{0.1, -0.2, 0.3}, {-0.05, 0.4, 0.0}, {0.2, 0.1, -0.3}};

/* Runs three steps of cfg with learning rates lrs in precision f64; returns P after each
 * step in out[step][i] as doubles. */
static int run3(const OptimConfig *cfg, const double lrs[3], int f64, double out[3][3]) {
    Optim o;
    if (optim_init(&o, cfg, 3, f64)) return -1;
    double Pd[3], Gd[3];
    float Pf[3], Gf[3];
    for (int i = 0; i < 3; i++) {
        Pd[i] = P0[i];
        Pf[i] = (float)P0[i];
    }
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < 3; i++) {
            Gd[i] = G[s][i];
            Gf[i] = (float)G[s][i];
        }
        optim_step(&o, f64 ? (void *)Pd : (void *)Pf, f64 ? (const void *)Gd : (const void *)Gf, lrs[s]);
        for (int i = 0; i < 3; i++) out[s][i] = f64 ? Pd[i] : Pf[i];
    }
    int steps = (int)o.step;
    optim_free(&o);
    optim_free(&o); /* a second free is harmless */
    return steps == 3 ? 0 : -1;
}

static void test_adam(T *t) {
    /* PyTorch's Adam(lr = 0.01) (betas 0.9, 0.999, eps 1e-8), evaluated in Python doubles. */
    static const double want[3][3] = {{0.49000000099999991, -0.99000000050000003, 1.9900000003333334},
                                      {0.48733663094033908, -0.99366103565460373, 1.9832994181079155},
                                      {0.48075551543513811, -0.99781754749638352, 1.984158095217337}};
    /* AdamW(lr, weight_decay = 0.1) with the learning rate halved each step. */
    static const double want_w[3][3] = {{0.48950000099999991, -0.98900000049999992, 1.9880000003333334},
                                        {0.48792356596966957, -0.99033601807705185, 1.9836557092204579},
                                        {0.48615630620187694, -0.99112756203297758, 1.983374464570508}};
    OptimConfig adam = {.kind = OPT_ADAM, .lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    OptimConfig adamw = adam;
    adamw.kind = OPT_ADAMW;
    adamw.decay = 0.1;
    const double lrs[3] = {0.01, 0.01, 0.01}, lrs_w[3] = {0.01, 0.005, 0.0025};
    for (int f64 = 0; f64 <= 1; f64++) {
        double tol = f64 ? 1e-15 : 2e-7, got[3][3];
        if (!CHECK(t, run3(&adam, lrs, f64, got) == 0)) continue;
        for (int s = 0; s < 3; s++)
            for (int i = 0; i < 3; i++) CHECK_NEAR(t, got[s][i], want[s][i], tol);
        /* By hand: the first step moves each p by lr g / (|g| + eps), i.e. lr sign(g) (1 - eps/|g|). */
        for (int i = 0; i < 3; i++) {
            double g = G[0][i];
            CHECK_NEAR(t, got[0][i], P0[i] - 0.01 * g / (fabs(g) + 1e-8), tol);
        }
        if (!CHECK(t, run3(&adamw, lrs_w, f64, got) == 0)) continue;
        for (int s = 0; s < 3; s++)
            for (int i = 0; i < 3; i++) CHECK_NEAR(t, got[s][i], want_w[s][i], tol);
        /* By hand: AdamW's first step = decay, then Adam's first step. */
        for (int i = 0; i < 3; i++) {
            double g = G[0][i];
            CHECK_NEAR(t, got[0][i], P0[i] * (1 - 0.01 * 0.1) - 0.01 * g / (fabs(g) + 1e-8), tol);
        }
    }
    /* A constant gradient: every step moves p by lr g / (|g| + eps) (the bias corrections
   * undo the moments' warm-up exactly). */
    Optim o;
    double p[1] = {1.0}, g[1] = {-0.25};
    if (CHECK(t, optim_init(&o, &adam, 1, 1) == 0)) {
        for (int s = 1; s <= 50; s++) {
            optim_step(&o, p, g, 0.01);
            CHECK_NEAR(t, p[0], 1.0 + s * 0.01 * 0.25 / (0.25 + 1e-8), 1e-12);
        }
        optim_free(&o);
    }
}

static void test_sgd(T *t) {
    const double lrs[3] = {0.1, 0.1, 0.05};
    for (int f64 = 0; f64 <= 1; f64++) {
        double tol = f64 ? 1e-15 : 2e-7, got[3][3];
        OptimConfig plain = {.kind = OPT_SGD, .lr = 0.1};
        if (CHECK(t, run3(&plain, lrs, f64, got) == 0)) {
            for (int i = 0; i < 3; i++) {
                double p = P0[i];
                for (int s = 0; s < 3; s++) {
                    p -= lrs[s] * G[s][i]; /* p -= lr g */
                    CHECK_NEAR(t, got[s][i], p, tol);
                }
            }
        }
        OptimConfig mom = {.kind = OPT_SGD, .lr = 0.1, .momentum = 0.9};
        if (CHECK(t, run3(&mom, lrs, f64, got) == 0)) {
            for (int i = 0; i < 3; i++) {
                double b1 = G[0][i], b2 = 0.9 * b1 + G[1][i], b3 = 0.9 * b2 + G[2][i];
                CHECK_NEAR(t, got[0][i], P0[i] - 0.1 * b1, tol);
                CHECK_NEAR(t, got[1][i], P0[i] - 0.1 * b1 - 0.1 * b2, tol);
                CHECK_NEAR(t, got[2][i], P0[i] - 0.1 * b1 - 0.1 * b2 - 0.05 * b3, tol);
            }
        }
    }
    /* Buffers: what each kind keeps. */
    Optim o;
    OptimConfig c = {.kind = OPT_SGD, .lr = 0.1};
    CHECK(t, optim_init(&o, &c, 10, 0) == 0 && !o.m && !o.v && o.n == 10 && o.step == 0);
    optim_free(&o);
    c.momentum = 0.5;
    CHECK(t, optim_init(&o, &c, 10, 0) == 0 && o.m && !o.v);
    optim_free(&o);
    c.kind = OPT_ADAM;
    CHECK(t, optim_init(&o, &c, 10, 1) == 0 && o.m && o.v && ((double *)o.v)[9] == 0);
    optim_free(&o);
    CHECK(t, optim_init(&o, &c, 0, 1) == 0); /* an empty model is allowed */
    optim_free(&o);
    CHECK(t, optim_init(&o, &c, -1, 1) == -1 && !o.m);
    c.kind = OPT_COUNT;
    CHECK(t, optim_init(&o, &c, 10, 1) == -1);
    /* optim_config copies the spec's settings. */
    TrainSpec ts = {
        .optimizer = OPT_ADAMW, .lr = 2e-3, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-7, .decay = 0.01, .momentum = 0};
    OptimConfig oc = optim_config(&ts);
    CHECK(t,
          oc.kind == OPT_ADAMW && oc.lr == 2e-3 && oc.beta1 == 0.8 && oc.beta2 == 0.99 && oc.eps == 1e-7 &&
              oc.decay == 0.01);
}

static void test_schedules(T *t) {
    TrainSpec ts = {.schedule = SCHED_CONSTANT};
    double base = 1e-3;
    for (int64_t s = 0; s <= 100; s += 25) CHECK_NEAR(t, schedule_lr(&ts, base, s, 100), base, 1e-15);

    ts.schedule = SCHED_LINEAR;
    ts.end = 0.3; /* base (1 + (end - 1) s) */
    CHECK_NEAR(t, schedule_lr(&ts, base, 0, 100), 1e-3, 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, base, 50, 100), 0.65e-3, 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, base, 75, 100), 0.475e-3, 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, base, 100, 100), 0.3e-3, 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, base, 250, 100), 0.3e-3, 1e-15); /* s clamped to 1 */

    ts.schedule = SCHED_COSINE;
    ts.end = 0; /* base (end + (1 - end) (1 + cos(pi s)) / 2) */
    CHECK_NEAR(t, schedule_lr(&ts, 1.0, 0, 8), 1.0, 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, 1.0, 2, 8), (1 + sqrt(0.5)) / 2, 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, 1.0, 4, 8), 0.5, 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, 1.0, 6, 8), (1 - sqrt(0.5)) / 2, 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, 1.0, 8, 8), 0.0, 1e-15);
    ts.end = 0.1;
    CHECK_NEAR(t, schedule_lr(&ts, 2.0, 2, 8), 2.0 * (0.1 + 0.9 * (1 + sqrt(0.5)) / 2), 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, 2.0, 8, 8), 0.2, 1e-15);

    ts.schedule = SCHED_STEP; /* base factor^(milestones passed) */
    ts.n_at = 2;
    ts.at[0] = 0.5;
    ts.at[1] = 0.75;
    ts.factor = 0.25;
    CHECK_NEAR(t, schedule_lr(&ts, 1.0, 0, 100), 1.0, 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, 1.0, 49, 100), 1.0, 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, 1.0, 50, 100), 0.25, 1e-15); /* s >= a counts */
    CHECK_NEAR(t, schedule_lr(&ts, 1.0, 74, 100), 0.25, 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, 1.0, 75, 100), 0.0625, 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, 1.0, 99, 100), 0.0625, 1e-15);
    CHECK_NEAR(t, schedule_lr(&ts, 1.0, 100, 100), 0.0625, 1e-15);

    /* total_steps 0 (e.g. --epochs 0): the base rate, whatever the schedule. */
    CHECK_NEAR(t, schedule_lr(&ts, 3.0, 0, 0), 3.0, 1e-15);
    ts.schedule = SCHED_COSINE;
    CHECK_NEAR(t, schedule_lr(&ts, 3.0, 5, 0), 3.0, 1e-15);
}

static void test_loss_weight(T *t) {
    LossTerm l = {.kind = LOSS_H1, .weight = 0.5};
    CHECK(t, loss_weight(&l, 0) == 0.5 && loss_weight(&l, 1000) == 0.5);
    /* weight ramp(0, 1, epochs = 50) */
    l = (LossTerm){.kind = LOSS_H1, .weight = 0, .ramp = 1, .weight_end = 1, .ramp_epochs = 50};
    CHECK_NEAR(t, loss_weight(&l, 0), 0.0, 1e-15);
    CHECK_NEAR(t, loss_weight(&l, 1), 0.02, 1e-15);
    CHECK_NEAR(t, loss_weight(&l, 25), 0.5, 1e-15);
    CHECK_NEAR(t, loss_weight(&l, 49), 0.98, 1e-15);
    CHECK_NEAR(t, loss_weight(&l, 50), 1.0, 1e-15);
    CHECK_NEAR(t, loss_weight(&l, 500), 1.0, 1e-15);
    /* A decreasing ramp. */
    l = (LossTerm){.kind = LOSS_L2, .weight = 2, .ramp = 1, .weight_end = 0.5, .ramp_epochs = 3};
    CHECK_NEAR(t, loss_weight(&l, 0), 2.0, 1e-15);
    CHECK_NEAR(t, loss_weight(&l, 1), 1.5, 1e-15);
    CHECK_NEAR(t, loss_weight(&l, 2), 1.0, 1e-15);
    CHECK_NEAR(t, loss_weight(&l, 3), 0.5, 1e-15);
    /* ramp_epochs 0: the end weight from the start. */
    l.ramp_epochs = 0;
    CHECK_NEAR(t, loss_weight(&l, 0), 0.5, 1e-15);
}

static void test_rng(T *t) {
    /* splitmix64 from seed 0 gives these four words (the published reference sequence). */
    Rng r;
    rng_seed(&r, 0);
    CHECK(t,
          r.s[0] == 0xe220a8397b1dcdafULL && r.s[1] == 0x6e789e6aa1b965f4ULL && r.s[2] == 0x06c45d188009454fULL &&
              r.s[3] == 0xf88bb8a8724c81ecULL);
    /* xoshiro256** from state {1, 2, 3, 4}: the reference implementation's first outputs. */
    Rng x = {{1, 2, 3, 4}};
    CHECK(t, rng_next_u64(&x) == 11520);
    CHECK(t, rng_next_u64(&x) == 0);
    CHECK(t, rng_next_u64(&x) == 1509978240);
    CHECK(t, rng_next_u64(&x) == 1215971899390074240ULL);

    /* Same seed, same stream; another seed, another stream. */
    Rng a, b, c;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    rng_seed(&c, 43);
    int same = 1, differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t va = rng_next_u64(&a);
        same &= va == rng_next_u64(&b);
        differ |= va != rng_next_u64(&c);
    }
    CHECK(t, same && differ);

    /* Save mid-stream, restore elsewhere: the continuation is identical. */
    uint64_t saved[4];
    rng_save(&a, saved);
    double u = rng_uniform(&a), nrm = rng_normal(&a);
    Rng d;
    rng_seed(&d, 7);
    CHECK(t, rng_restore(&d, saved) == 0);
    CHECK(t, rng_uniform(&d) == u && rng_normal(&d) == nrm);
    const uint64_t zero[4] = {0, 0, 0, 0};
    CHECK(t, rng_restore(&d, zero) == -1 && (d.s[0] | d.s[1] | d.s[2] | d.s[3]) != 0);

    /* Uniforms in [0, 1), normals with mean ~0 and variance ~1. */
    rng_seed(&a, 1);
    int in_range = 1;
    double sum = 0, sum2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double v = rng_uniform(&a);
        in_range &= v >= 0 && v < 1;
        double z = rng_normal(&a);
        sum += z;
        sum2 += z * z;
    }
    CHECK(t, in_range);
    CHECK(t, fabs(sum / n) < 0.01 && fabs(sum2 / n - 1) < 0.02);

    /* rng_below stays below n; permutations are permutations, deterministic, not identity. */
    int below = 1;
    for (int i = 0; i < 1000; i++) below &= rng_below(&a, 7) < 7;
    CHECK(t, below && rng_below(&a, 1) == 0 && rng_below(&a, 0) == 0);
    int64_t p1[1000], p2[1000];
    for (int i = 0; i < 1000; i++) p1[i] = p2[i] = i;
    rng_seed(&a, 5);
    rng_seed(&b, 5);
    rng_permute(&a, p1, 1000);
    rng_permute(&b, p2, 1000);
    int seen[1000] = {0}, perm = 1, moved = 0;
    for (int i = 0; i < 1000; i++) {
        perm &= p1[i] >= 0 && p1[i] < 1000 && !seen[p1[i]]++;
        moved += p1[i] != i;
    }
    CHECK(t, perm && moved > 900 && memcmp(p1, p2, sizeof p1) == 0);
    rng_permute(&a, p1, 0); /* n 0 and 1: nothing to do */
    int64_t one = 3;
    rng_permute(&a, &one, 1);
    CHECK(t, one == 3);
}

int main(int argc, char **argv) {
    T t;
    if (t_begin(&t, argc, argv, "optim")) return 1;
    test_adam(&t);
    test_sgd(&t);
    test_schedules(&t);
    test_loss_weight(&t);
    test_rng(&t);
    return t_end(&t, "runtime_optim");
}
