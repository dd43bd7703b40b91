/* dino_jit.c - the training command: spec -> generated code -> loaded module -> training.
 *
 *   dino-jit MODEL.dino [--data DIR] [--backend auto|cuda|cpu] [--epochs N] [--batch B] [--lr X]
 *            [--seed S] [--precision f32|f64] [--set key=value]... [--save CKPT] [--load CKPT]
 *            [--predict IN.npy --out DIR] [--log FILE.csv] [--jacobian auto|forward|reverse] [-q]
 *
 * Exit status: 0 success, 1 user error (bad spec, data, flag, NaN loss), 2 internal error. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cpu_jit.h"
#include "emit.h"
#include "fileio.h"
#include "frontend.h"
#include "npy.h"
#include "backend.h"
#include "train.h"

typedef struct {
    const char *spec, *data, *backend, *save, *load, *predict, *out, *log;
    long long until;
    const char *sets[64];
    char flag_sets[64][160];  /* --epochs N and friends, spelled as key=value */
    int n_sets;
    int quiet;
    JacMode jac;
} Args;

static void usage(FILE *f) {
    fputs("usage: dino-jit MODEL.dino [--data DIR] [--backend auto|cuda|cpu] [--epochs N] [--batch B]\n"
          "                [--lr X] [--seed S] [--precision f32|f64] [--set key=value]...\n"
          "                [--save CKPT] [--load CKPT] [--predict IN.npy --out DIR] [--log FILE.csv]\n"
          "                [--jacobian auto|forward|reverse] [--until EPOCH] [-q]\n"
          "  --set keys: epochs, batch, lr, seed, precision, eval_every, beta1, beta2, eps, decay, momentum\n",
          f);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------- overrides */

/* Applies key=value to the train settings with the checker's ranges; returns -1 after an error. */
static int apply_setting(TrainSpec *t, const char *key, const char *val) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    int numeric = end != val && *end == 0 && errno == 0 && isfinite(v);
    if (strcmp(key, "precision") == 0) {
        if (strcmp(val, "f32") && strcmp(val, "f64")) {
            fprintf(stderr, "dino-jit: error: precision must be f32 or f64, not '%s'\n", val);
            return -1;
        }
        t->f64 = val[1] == '6';
        return 0;
    }
    static const struct { const char *key; double lo, hi; int integer; } keys[] = {
        {"epochs", 0, 1e8, 1},  {"batch", 1, 1 << 20, 1}, {"seed", 0, 9007199254740992.0, 1}, {"eval_every", 0, 1e8, 1},
        {"lr", 1e-300, 1e300, 0}, {"beta1", 0, 0.999999, 0}, {"beta2", 0, 0.999999999, 0}, {"eps", 1e-300, 1, 0},
        {"decay", 0, 1e300, 0}, {"momentum", 0, 0.999999, 0},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (strcmp(keys[i].key, key) != 0) continue;
        if (!numeric || v < keys[i].lo || v > keys[i].hi || (keys[i].integer && v != floor(v))) {
            fprintf(stderr, "dino-jit: error: %s must be a %s between %g and %g, not '%s'\n", key,
                    keys[i].integer ? "whole number" : "number", keys[i].lo, keys[i].hi, val);
            return -1;
        }
        switch (i) {
        case 0: t->epochs = (int64_t)v; break;
        case 1: t->batch = (int)v; break;
        case 2: t->seed = (uint64_t)v; break;
        case 3: t->eval_every = (int64_t)v; break;
        case 4: t->lr = v; break;
        case 5: t->beta1 = v; break;
        case 6: t->beta2 = v; break;
        case 7: t->eps = v; break;
        case 8: t->decay = v; break;
        case 9: t->momentum = v; break;
        }
        return 0;
    }
    fprintf(stderr, "dino-jit: error: unknown setting '%s' for --set\n", key);
    usage(stderr);
    return -1;
}

static int parse_args(int argc, char **argv, Args *a) {
    memset(a, 0, sizeof *a);
    a->backend = "auto";
    static const char *const with_value[] = {"--data", "--backend", "--epochs", "--batch", "--lr", "--seed",
                                             "--precision", "--set", "--save", "--load", "--predict", "--out",
                                             "--log", "--jacobian", "--until"};
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(s, "-q") == 0) {
            a->quiet = 1;
            continue;
        }
        if (s[0] != '-' || !s[1]) {
            if (a->spec) {
                fprintf(stderr, "dino-jit: error: more than one spec file ('%s' and '%s')\n", a->spec, s);
                return -1;
            }
            a->spec = s;
            continue;
        }
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= strcmp(s, with_value[k]) == 0;
        if (!known) {
            fprintf(stderr, "dino-jit: error: unknown option '%s'\n", s);
            usage(stderr);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "dino-jit: error: %s needs a value\n", s);
            return -1;
        }
        const char *v = argv[++i];
        if (strcmp(s, "--data") == 0) a->data = v;
        else if (strcmp(s, "--backend") == 0) a->backend = v;
        else if (strcmp(s, "--save") == 0) a->save = v;
        else if (strcmp(s, "--load") == 0) a->load = v;
        else if (strcmp(s, "--predict") == 0) a->predict = v;
        else if (strcmp(s, "--out") == 0) a->out = v;
        else if (strcmp(s, "--log") == 0) a->log = v;
        else if (strcmp(s, "--until") == 0) {
            char *end;
            a->until = strtoll(v, &end, 10);
            if (*end || end == v || a->until < 1) {
                fprintf(stderr, "dino-jit: error: --until needs an epoch number of at least 1, not '%s'\n", v);
                return -1;
            }
        }
        else if (strcmp(s, "--jacobian") == 0) {
            if (strcmp(v, "auto") == 0) a->jac = JAC_AUTO;
            else if (strcmp(v, "forward") == 0) a->jac = JAC_FORWARD;
            else if (strcmp(v, "reverse") == 0) a->jac = JAC_REVERSE;
            else {
                fprintf(stderr, "dino-jit: error: --jacobian must be auto, forward or reverse, not '%s'\n", v);
                return -1;
            }
        } else {
            if (a->n_sets == 64) {
                fprintf(stderr, "dino-jit: error: too many settings\n");
                return -1;
            }
            /* --epochs N is --set epochs=N, and so on */
            if (strcmp(s, "--set") == 0) {
                a->sets[a->n_sets] = v;
            } else {
                snprintf(a->flag_sets[a->n_sets], sizeof a->flag_sets[0], "%s=%s", s + 2, v);
                a->sets[a->n_sets] = a->flag_sets[a->n_sets];
            }
            a->n_sets++;
        }
    }
    if (!a->spec) {
        fputs("dino-jit: error: no spec file given\n", stderr);
        usage(stderr);
        return -1;
    }
    if (strcmp(a->backend, "auto") && strcmp(a->backend, "cpu") && strcmp(a->backend, "cuda")) {
        fprintf(stderr, "dino-jit: error: --backend must be auto, cuda or cpu, not '%s'\n", a->backend);
        return -1;
    }
    if (!a->predict != !a->out) {
        fputs("dino-jit: error: --predict IN.npy and --out DIR go together\n", stderr);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------- prediction */

static int run_predict(Trainer *t, const char *in_path, const char *out_dir) {
    const Model *m = t->m;
    char err[1024];
    NpyArray a;
    if (npy_load(in_path, &a, err, sizeof err)) {
        fprintf(stderr, "dino-jit: error: %s\n", err);
        return 1;
    }
    int ok_shape = (a.ndim == 2 && a.shape[1] == m->in_dim) || (a.ndim == 1 && a.shape[0] == m->in_dim);
    if (!ok_shape || !dtype_is_float(a.dtype)) {
        char got[128] = "";
        for (int i = 0, n = 0; i < a.ndim; i++) n += snprintf(got + n, sizeof got - (size_t)n, "%s%lld", i ? ", " : "", (long long)a.shape[i]);
        fprintf(stderr, "dino-jit: error: %s: expected a float array of shape [N, %d] (the input %s), found %s [%s]\n",
                in_path, m->in_dim, m->input, dtype_name(a.dtype), got);
        npy_free(&a);
        return 1;
    }
    int64_t n = a.ndim == 2 ? a.shape[0] : 1, bad;
    if (!npy_check_finite(&a, &bad)) {
        fprintf(stderr, "dino-jit: error: %s: contains NaN or Inf at row %lld, column %lld\n", in_path,
                (long long)(bad / m->in_dim), (long long)(bad % m->in_dim));
        npy_free(&a);
        return 1;
    }
    size_t es = t->es;
    void *x = malloc(es * (size_t)(n * m->in_dim + 1));
    for (int64_t i = 0; i < n * m->in_dim; i++) {
        double v = a.dtype == DT_F64 ? ((const double *)a.data)[i] : ((const float *)a.data)[i];
        if (t->f64) ((double *)x)[i] = v;
        else ((float *)x)[i] = (float)v;
    }
    npy_free(&a);
    int jac = !m->classifier;
    void *y = malloc(es * (size_t)(n * m->out_dim + 1)), *J = jac ? malloc(es * (size_t)(n * m->out_dim * m->in_dim + 1)) : NULL;
    int rc = predict_rows(t, x, n, y, J, err, sizeof err);
    if (rc) {
        fprintf(stderr, "dino-jit: error: %s\n", err);
        free(x), free(y), free(J);
        return rc;
    }
    char path[4096];
    DType dt = t->f64 ? DT_F64 : DT_F32;
    if (fio_mkdirs(out_dir)) {
        fprintf(stderr, "dino-jit: error: cannot create '%s': %s\n", out_dir, strerror(errno));
        rc = 1;
    } else {
        int64_t ys[2] = {n, m->out_dim}, js[3] = {n, m->out_dim, m->in_dim};
        snprintf(path, sizeof path, "%s/%s.npy", out_dir, m->output);
        if (npy_save(path, dt, 2, ys, y, err, sizeof err)) rc = 1;
        snprintf(path, sizeof path, "%s/J.npy", out_dir);
        if (!rc && jac && npy_save(path, dt, 3, js, J, err, sizeof err)) rc = 1;
        if (rc) fprintf(stderr, "dino-jit: error: %s\n", err);
        else fprintf(stderr, "predicted %lld rows: %s/%s.npy%s\n", (long long)n, out_dir, m->output, jac ? ", J.npy" : "");
    }
    free(x), free(y), free(J);
    return rc;
}

/* ---------------------------------------------------------------------------- training output */

/* What train()'s callbacks print on the terminal. */
typedef struct {
    const Model *m;
    int quiet;              /* -q: no notes, and only the last epoch's line */
    int live;               /* a live progress line (stderr is a terminal) */
    long long until;
    double last_live;
} Terminal;

static void print_message(int level, const char *text, void *user) {
    const Terminal *term = user;
    if (level == DINO_MSG_WARNING) fprintf(stderr, "dino-jit: warning: %s\n", text);
    else if (!term->quiet) fprintf(stderr, "dino-jit: %s\n", text);
}

static void print_progress(int64_t epoch, int64_t step, int64_t steps, double loss, void *user) {
    Terminal *term = user;
    (void)loss;
    if (now() - term->last_live <= 0.2) return;
    term->last_live = now();
    fprintf(stderr, "\r  epoch %lld/%lld  batch %lld/%lld   ", (long long)epoch, (long long)term->m->train.epochs,
            (long long)step, (long long)steps);
}

static int print_epoch(const EpochReport *r, void *user) {
    const Terminal *term = user;
    if (term->live) fputs("\r\033[K", stderr);
    if (!term->quiet || r->epoch == r->epochs || r->epoch == term->until) {
        char line[1024];
        format_epoch(term->m, r, line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
    return 0;
}

/* ---------------------------------------------------------------------------- main */

/* The backend --backend asks for: the GPU when one is usable (auto, cuda), else the CPU
 * module. Says which, and why not the GPU. Returns 0, or 1 after reporting an error. */
static int start_backend(const Args *a, Frontend *fe, Trainer *t, CpuModule *mod, uint64_t hash, double t0) {
    Model *m = fe->model;
    char err[8192];
    double secs = 0;
    if (strcmp(a->backend, "cpu") != 0) {
        char why[8192];
        int gpu = cuda_available(why, sizeof why), started = 0;
        if (gpu) {
            t->backend = backend_cuda_new(m, a->jac, hash, t->P, &t->opt, &secs, err, sizeof err);
            if (t->backend) {
                if (!a->quiet)
                    fprintf(stderr, "dino-jit: %s backend; model %s: %d -> %d, %lld parameters, %s; ready in %.2f s\n",
                            t->backend->name, m->name, m->in_dim, m->out_dim, (long long)m->n_weights,
                            m->train.f64 ? "f64" : "f32", now() - t0);
                return 0;
            }
            snprintf(why, sizeof why, "%s", err);
            started = 1;   /* a GPU is there; the backend failed on it */
        }
        if (strcmp(a->backend, "cuda") == 0) {
            if (started) fprintf(stderr, "dino-jit: error: --backend cuda: the CUDA backend could not start: %s\n", why);
            else fprintf(stderr, "dino-jit: error: --backend cuda: no usable GPU: %s; use --backend cpu (or auto)\n", why);
            return 1;
        }
        if (!a->quiet)
            fprintf(stderr, "dino-jit: %s (%s); using the CPU\n", started ? "the CUDA backend could not start" : "no GPU backend",
                    why);
    }
    size_t len;
    char *src = generate_c(&fe->arena, m, a->jac, m->train.f64, hash, &len, err, sizeof err);
    if (!src) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int bad = cpu_module_load(src, len, mod, err, sizeof err);
    free(src);
    if (bad) {
        fprintf(stderr, "dino-jit: error: %s\n", err);
        return 1;
    }
    t->backend = backend_cpu_new(mod, m, t->P, &t->opt, err, sizeof err);
    if (!t->backend) {
        fprintf(stderr, "dino-jit: error: %s\n", err);
        return 1;
    }
    if (!a->quiet)
        fprintf(stderr, "dino-jit: %s backend; model %s: %d -> %d, %lld parameters, %s; code %s in %.2f s\n",
                t->backend->name, m->name, m->in_dim, m->out_dim, (long long)m->n_weights, m->train.f64 ? "f64" : "f32",
                mod->compile_seconds > 0 ? "compiled" : "from the cache", now() - t0);
    return 0;
}

/* The data folder: --data, else the spec's dir relative to the spec file. */
static const char *data_dir(const Args *a, const Frontend *fe, char *buf, size_t len) {
    if (a->data) return a->data;
    const char *dir = fe->model->data.dir;
    if (!dir) return NULL;
    if (dir[0] == '/') return dir;
    snprintf(buf, len, "%s/%s", fe->spec_dir, dir);
    return buf;
}

int main(int argc, char **argv) {
    Args a;
    if (parse_args(argc, argv, &a)) return 1;
    /* OpenMP threads of the generated code sleep at barriers instead of spinning: on a shared
     * machine spinning threads fight other processes for the cores (measured: 5x slower under
     * load). Set OMP_WAIT_POLICY=active to override. Read when the module is loaded. */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    double t0 = now();
    Frontend fe;
    if (frontend_run(&fe, a.spec, stderr, 0, npy_shape)) {
        frontend_free(&fe);
        return 1;
    }
    Model *m = fe.model;
    for (int i = 0; i < a.n_sets; i++) {
        char key[64];
        const char *eq = strchr(a.sets[i], '=');
        if (!eq || eq == a.sets[i] || (size_t)(eq - a.sets[i]) >= sizeof key) {
            fprintf(stderr, "dino-jit: error: --set needs key=value, not '%s'\n", a.sets[i]);
            return 1;
        }
        snprintf(key, sizeof key, "%.*s", (int)(eq - a.sets[i]), a.sets[i]);
        if (apply_setting(&m->train, key, eq + 1)) return 1;
    }
    char err[4096];
    uint64_t hash = fe.hash;
    Trainer t;
    if (trainer_init(&t, m, hash, err, sizeof err)) {
        fprintf(stderr, "dino-jit: error: %s\n", err);
        return 2;
    }
    CpuModule mod = {0};
    if (start_backend(&a, &fe, &t, &mod, hash, t0)) {
        trainer_free(&t);
        frontend_free(&fe);
        return 1;
    }
    int rc = 0;
    if (a.load) {
        int matches = -1;
        if (checkpoint_load(a.load, m, t.P, t.f64, &t.opt, &t.state, hash, &matches, err, sizeof err)) {
            fprintf(stderr, "dino-jit: error: %s\n", err);
            rc = 1;
        } else {
            if (t.state.has_state) rng_restore(&t.rng, t.state.rng);
            if ((rc = t.backend->push(t.backend))) fprintf(stderr, "dino-jit: error: %s\n", t.backend->err);
            else if (!a.quiet)
                fprintf(stderr, "dino-jit: loaded %s%s%s\n", a.load,
                        t.state.has_state ? arena_printf(&fe.arena, " (after epoch %lld)", (long long)t.state.epoch) : "",
                        matches == 0 ? "; note: it was trained from a different spec" : "");
        }
    }

    if (rc == 0 && m->train.epochs > t.state.epoch) {
        char buf[4096];
        const char *dir = data_dir(&a, &fe, buf, sizeof buf);
        if (!dir) {
            fprintf(stderr, "dino-jit: error: no data folder: pass --data DIR or set dir \"...\" in the data block\n");
            rc = 1;
        } else {
            Dataset tr, te;
            int need_jac = 0;
            for (int i = 0; i < m->n_loss; i++) need_jac |= m->loss[i].kind == LOSS_H1;
            if (data_load(m, dir, t.f64, need_jac, &tr, &te, err, sizeof err)) {
                fprintf(stderr, "dino-jit: error: %s\n", err);
                rc = 1;
            } else {
                if (!a.quiet)
                    fprintf(stderr, "dino-jit: data %s: %lld training rows, %lld test rows%s; batch %d, %lld epochs\n", dir,
                            (long long)tr.n, (long long)te.n, tr.J ? ", with Jacobians" : "", m->train.batch,
                            (long long)m->train.epochs);
                Terminal term = {.m = m, .quiet = a.quiet, .live = isatty(2) && !a.quiet, .until = a.until};
                TrainOptions o = {.save = a.save, .log = a.log, .until = a.until, .on_epoch = print_epoch,
                                  .on_message = print_message, .on_progress = term.live ? print_progress : NULL,
                                  .user = &term};
                double ts = now();
                rc = train(&t, &tr, &te, &o, err, sizeof err);
                if (rc) fprintf(stderr, "dino-jit: error: %s\n", err);
                if (rc == 0 && !a.quiet) fprintf(stderr, "dino-jit: trained in %.1f s\n", now() - ts);
                data_free(&tr);
                data_free(&te);
            }
        }
    } else if (rc == 0 && a.save) {
        if (checkpoint_save(a.save, m, t.P, t.f64, &t.opt, &t.state, hash, err, sizeof err)) {
            fprintf(stderr, "dino-jit: error: %s\n", err);
            rc = 1;
        }
    }
    if (rc == 0 && a.predict) rc = run_predict(&t, a.predict, a.out);
    trainer_free(&t);
    if (mod.handle) cpu_module_free(&mod);
    frontend_free(&fe);
    return rc;
}
