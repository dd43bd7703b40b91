/* dino_jit.c - the training command: spec -> generated code -> loaded module -> training,
 * through dino.h.
 *
 *   dino-jit MODEL.dino [--data DIR] [--backend auto|cuda|cpu] [--epochs N] [--batch B] [--lr X]
 *            [--seed S] [--precision f32|f64] [--set key=value]... [--save CKPT] [--load CKPT]
 *            [--predict IN.npy --out DIR [--reduced]] [--log FILE.csv] [--jacobian auto|forward|reverse]
 *            [--until EPOCH] [--strict] [-q]
 *   dino-jit MODEL.dino --load CKPT --eval [--data DIR]
 *   dino-jit --cache info|clear;  dino-jit --version | --help
 *
 * Exit status (dino_status): DINO_OK 0 success, DINO_EUSER 1 user error (bad spec, data, flag,
 * NaN loss), DINO_EINTERNAL 2 internal error, DINO_STOPPED 3 stopped by SIGINT or SIGTERM during
 * training (the parameters saved when --save is given). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dino.h"

typedef struct {
    const char *spec, *data, *backend, *save, *load, *predict, *out, *log, *cache;
    long long until;
    const char *sets[64];
    char flag_sets[64][160]; /* --epochs N and friends, spelled as key=value */
    int n_sets;
    int quiet, strict;
    int eval;    /* --eval: the loaded checkpoint's metrics, no training */
    int reduced; /* --reduced: --predict writes reduced coordinates (h, dh/dz) */
    dino_jacobian jac;
} Args;

static void usage(FILE *f) {
    fputs("usage: dino-jit MODEL.dino [--data DIR] [--backend auto|cuda|cpu] [--epochs N] [--batch B]\n"
          "                [--lr X] [--seed S] [--precision f32|f64] [--set key=value]...\n"
          "                [--save CKPT] [--load CKPT] [--predict IN.npy --out DIR [--reduced]] [--log FILE.csv]\n"
          "                [--jacobian auto|forward|reverse] [--until EPOCH] [--strict] [-q]\n"
          "       dino-jit MODEL.dino --load CKPT --eval [--data DIR]\n"
          "       dino-jit --cache info|clear\n"
          "       dino-jit --version | --help\n",
          f);
}

/* --help: every flag and every environment variable (tests/cli/run_cli.sh, group help, checks
 * that each variable the sources read with getenv is named here). */
static void help(void) {
    usage(stdout);
    fputs("\nChecks the spec, generates and compiles its code (cached), trains it on the data and\n"
          "optionally predicts. docs/commands.md and `man dino-jit` say more.\n"
          "\nflags:\n"
          "  --data DIR        the data folder (overrides the spec's data dir, which is relative to the spec)\n"
          "  --backend B       auto (default): the GPU when one is usable, else the CPU, saying which and why;\n"
          "                    cuda: the GPU or an error; cpu: the CPU backend\n"
          "  --epochs N        train until N epochs are done in total (0: train nothing; with --load and\n"
          "                    --predict that is pure inference)\n"
          "  --batch B, --lr X, --seed S, --precision f32|f64\n"
          "                    override the spec's train block\n"
          "  --set key=value   override a train setting: epochs, batch, lr, seed, precision, math (precise |\n"
          "                    fast: f32 activations in float with fast intrinsics), eval_every,\n"
          "                    beta1, beta2, eps (adam, adamw), decay (adamw), momentum (sgd), patience,\n"
          "                    save_every, keep_best, shuffle (rows | 'blocks B [window W]')\n"
          "  --save CKPT       write a safetensors checkpoint at every evaluation, at the end, on a NaN loss\n"
          "                    (the last good parameters) and on Ctrl-C / SIGTERM; missing folders are made and\n"
          "                    an unwritable path is refused before training. It may equal --load (the run then\n"
          "                    updates its own checkpoint, atomically); it may not be the spec, a data file,\n"
          "                    the --predict input or the --log file\n"
          "  --load CKPT       start from a checkpoint: parameters and, when present, the optimiser state,\n"
          "                    the epoch and the shuffle RNG (training resumes up to --epochs in total)\n"
          "  --predict IN.npy --out DIR\n"
          "                    after training (or instead, with --epochs 0) write DIR/<output>.npy [N, out] and,\n"
          "                    for regression models, DIR/J.npy [N, out, in] (DIR/d<output>_d<input>.npy when\n"
          "                    the output is named J); files that are inputs of the run are never overwritten\n"
          "  --reduced         with --predict, for a basis model whose output is decode(h, B2): write\n"
          "                    DIR/<output>_reduced.npy [N, rank(B2)] (h) and DIR/J_reduced.npy\n"
          "                    [N, rank(B2), rank(B)] (dh/dz: z = encode(x, B), or x when the input is used\n"
          "                    elsewhere too) instead; inputs are full-space (D h + shift: the full prediction)\n"
          "  --log FILE.csv    one CSV row per epoch: epoch,step,seconds,lr,train_loss,<metrics>; missing\n"
          "                    folders are made; appended to when resuming\n"
          "  --jacobian M      auto, forward or reverse mode for the generated Jacobian (default auto)\n"
          "  --until EPOCH     stop after that epoch (saving --save), the schedule still planned for --epochs\n"
          "  --eval            with --load CKPT: print the checkpoint's loss and metrics on the validation and\n"
          "                    test rows of the data (the spec's, or --data DIR) and exit, training nothing\n"
          "  --strict          warnings about wrong results are errors (exit 1, nothing written): a dopri5\n"
          "                    solve that did not reach t1 within max_steps during --predict\n"
          "  -q                quiet: no notes, only the last epoch's line\n"
          "  --cache info      print the compiled-code cache's folder, entries and size, and exit\n"
          "  --cache clear     remove every entry of that cache, and exit\n"
          "  --version         the version, the git commit, the CUDA driver and NVRTC found\n"
          "  -h, --help        this text\n"
          "\nmpirun -np K dino-jit ... (or srun) trains one model on K processes: each takes its share of every\n"
          "batch and the gradients are summed (MPI) before one identical step; docs/commands.md says more.\n"
          "\nCtrl-C (SIGINT) or SIGTERM during training finishes the current step, writes --save and exits 3;\n"
          "a second one ends the process at once. Resume with the same command and --load CKPT.\n"
          "\nexit status: 0 success, 1 user error (spec, data, flag, file, NaN loss), 2 internal error,\n"
          "3 training stopped by SIGINT or SIGTERM\n"
          "\nenvironment:\n"
          "  DINO_CACHE_DIR     the compiled-code cache folder (default $HOME/.cache/dino, else /tmp/dino-cache-UID)\n"
          "  DINO_CACHE_MAX_MB  the cache's size cap in MiB, least recently used entries removed (default 1024;\n"
          "                     0: no limit)\n"
          "  HOME               where the default cache folder is\n"
          "  CC                 the host C compiler of the CPU backend (default cc)\n"
          "  DINO_CFLAGS        its flags (default -O3 -march=native -fopenmp); part of the cache key\n"
          "  OMP_NUM_THREADS    threads of the CPU backend (default: all cores)\n"
          "  OMP_WAIT_POLICY    set to passive unless given: idle OpenMP threads sleep instead of spinning\n"
          "  DINO_CUDA_DRIVER   the CUDA driver library to load instead of libcuda.so.1\n"
          "  DINO_NVRTC         the NVRTC library to load (else libnvrtc.so[.13|.12|.11.2] on the loader's path,\n"
          "                     then under $CUDA_HOME/lib64, $CUDA_PATH/lib64, /usr/local/cuda/lib64)\n"
          "  CUDA_HOME, CUDA_PATH  CUDA toolkit folders searched for NVRTC\n"
          "  DINO_NVRTC_OPT     NVRTC optimisation: min (default, --Ofast-compile=min), mid, max, full\n"
          "  DINO_CUDA_FUSE     CUDA kernel grouping: auto (default), none, tiles (as dinoc --fuse)\n"
          "  DINO_CUDA_SHARE    0: write every tile-kernel stage out instead of sharing equal code\n"
          "  DINO_CUDA_GRAPH    0: launch every kernel instead of replaying a captured CUDA graph\n"
          "  DINO_CUDA_STREAM   1: stream the training batches from pinned host memory even when the data fit\n"
          "                     in GPU memory; 0: never (out of memory instead); unset: when they do not fit\n"
          "  DINO_CUDA_DEBUG    1: synchronise after every launch (no graphs), so a GPU fault names its\n"
          "                     kernel, stage and launch geometry\n"
          "  DINO_REDUCED       0: run a basis model's frozen encode/decode layers in the full-space graph\n"
          "                     instead of training in reduced coordinates\n"
          "  DINO_DATA_MAP      0: copy every data file into memory instead of reading the ones that already\n"
          "                     have the training dtype in place from a memory mapping\n"
          "  DINO_READ_AHEAD    1: the CPU backend asks for the pages of mapped data ahead in every epoch, 0: never\n"
          "                     (default: in epochs that start with a tenth of them out of the page cache)\n"
          "  OMPI_COMM_WORLD_SIZE, PMI_SIZE, SLURM_NTASKS with SLURM_PROCID  set by mpirun (OpenMPI, MPICH) or\n"
          "                     srun: several processes train one model data-parallel (MPI; rank 0 prints and\n"
          "                     writes); their RANK / LOCAL_RANK variables say which process this is\n"
          "  DINO_CUDA_DEVICE   the GPU to use (default 0; under mpirun the local rank's)\n"
          "  DINO_NCCL_LIB      the NCCL library for GPUs under mpirun (default libnccl.so.2)\n",
          stdout);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Prints the library's message for a failed call; returns its status, the exit code. */
/* Under mpirun with several processes: this process's rank, and (ranks other than 0) the
 * terminal its errors go to; everything else they would print is dropped (rank 0 prints). */
static int rank, ranks = 1;
static const char *launcher = "";
static FILE *rank_err;

static int report(dino_status st) {
    FILE *f = rank_err ? rank_err : stderr;
    char who[32] = "";
    if (rank_err) snprintf(who, sizeof who, "rank %d: ", rank);
    if (dino_last_error_is_complete()) fprintf(f, "%s%s\n", who, dino_last_error());
    else fprintf(f, "dino-jit: %s%s: %s\n", who, st == DINO_EINTERNAL ? "internal error" : "error", dino_last_error());
    return st;
}

/* mpirun, srun: several processes train one model (dino.h, dino_parallel_start). Ranks other
 * than 0 print only their errors. Returns DINO_OK or a status after reporting. */
static int start_parallel(int *argc, char ***argv) {
    dino_parallel p;
    if (dino_parallel_start(argc, argv, &p)) return report(DINO_EUSER);
    rank = p.rank, ranks = p.size, launcher = p.launcher;
    if (p.size > 1 && rank != 0) {
        int fd = dup(2);
        rank_err = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!freopen("/dev/null", "w", stderr) || !freopen("/dev/null", "w", stdout)) return DINO_EINTERNAL;
    }
    return DINO_OK;
}

/* ---------------------------------------------------------------------------- arguments */

static int parse_args(int argc, char **argv, Args *a) {
    memset(a, 0, sizeof *a);
    a->backend = "auto";
    static const char *const with_value[] = {"--data",      "--backend",  "--epochs", "--batch", "--lr",      "--seed",
                                             "--precision", "--set",      "--save",   "--load",  "--predict", "--out",
                                             "--log",       "--jacobian", "--until",  "--cache"};
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            help();
            exit(DINO_OK);
        }
        if (strcmp(s, "--version") == 0) {
            printf("dino-jit %s\n%s", dino_version(), dino_version_details());
            exit(DINO_OK);
        }
        if (strcmp(s, "-q") == 0 || strcmp(s, "--strict") == 0) {
            *(s[1] == 'q' ? &a->quiet : &a->strict) = 1;
            continue;
        }
        if (strcmp(s, "--eval") == 0 || strcmp(s, "--reduced") == 0) {
            *(s[2] == 'e' ? &a->eval : &a->reduced) = 1;
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
        else if (strcmp(s, "--cache") == 0) {
            if (strcmp(v, "info") && strcmp(v, "clear")) {
                fprintf(stderr, "dino-jit: error: --cache must be info or clear, not '%s'\n", v);
                return -1;
            }
            a->cache = v;
        } else if (strcmp(s, "--until") == 0) {
            char *end;
            a->until = strtoll(v, &end, 10);
            if (*end || end == v || a->until < 1) {
                fprintf(stderr, "dino-jit: error: --until needs an epoch number of at least 1, not '%s'\n", v);
                return -1;
            }
        } else if (strcmp(s, "--jacobian") == 0) {
            if (strcmp(v, "auto") == 0) a->jac = DINO_JACOBIAN_AUTO;
            else if (strcmp(v, "forward") == 0) a->jac = DINO_JACOBIAN_FORWARD;
            else if (strcmp(v, "reverse") == 0) a->jac = DINO_JACOBIAN_REVERSE;
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
    if (a->cache && a->spec) {
        fprintf(stderr, "dino-jit: error: --cache %s takes no spec file ('%s')\n", a->cache, a->spec);
        return -1;
    }
    if (a->cache) return 0;
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
    if (a->reduced && !a->predict) {
        fputs("dino-jit: error: --reduced goes with --predict IN.npy --out DIR (it predicts in reduced coordinates)\n",
              stderr);
        return -1;
    }
    if (a->eval && !a->load) {
        fputs("dino-jit: error: --eval reports the metrics of a checkpoint: name it with --load CKPT\n", stderr);
        return -1;
    }
    if (a->eval && a->save) {
        fputs("dino-jit: error: --eval trains nothing, so --save has nothing new to write\n", stderr);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------- prediction */

/* mkdir -p. Returns 0, or -1 with errno set. */
static int make_dirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return errno = ENAMETOOLONG, -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    struct stat st;
    if (stat(buf, &st) != 0) return -1;
    return S_ISDIR(st.st_mode) ? 0 : (errno = ENOTDIR, -1);
}

/* The file names --predict writes in DIR: "<output>.npy" and the Jacobian's, "J.npy", or
 * "d<output>_d<input>.npy" when the output itself is named J; with --reduced, "_reduced" before
 * ".npy". */
static void predict_names(const dino_spec_info *m, int reduced, char *y, size_t ylen, char *J, size_t Jlen) {
    const char *r = reduced ? "_reduced" : "";
    snprintf(y, ylen, "%s%s.npy", m->output, r);
    if (strcmp(m->output, "J") == 0) snprintf(J, Jlen, "d%s_d%s%s.npy", m->output, m->input, r);
    else snprintf(J, Jlen, "J%s.npy", r);
}

static int run_predict(dino_model *model, const dino_spec_info *m, const char *in_path, const char *out_dir, int strict,
                       int reduced) {
    dino_npy a;
    if (dino_npy_read(in_path, &a)) return report(DINO_EUSER);
    int ok_shape = (a.ndim == 2 && a.shape[1] == m->in_dim) || (a.ndim == 1 && a.shape[0] == m->in_dim);
    if (!ok_shape || !a.is_float) {
        char got[128] = "";
        for (int i = 0, n = 0; i < a.ndim; i++)
            n += snprintf(got + n, sizeof got - (size_t)n, "%s%lld", i ? ", " : "", a.shape[i]);
        fprintf(stderr, "dino-jit: error: %s: expected a float array of shape [N, %d] (the input %s), found %s [%s]\n",
                in_path, m->in_dim, m->input, a.dtype, got);
        dino_npy_free(&a);
        return DINO_EUSER;
    }
    long long n = a.ndim == 2 ? a.shape[0] : 1, in = m->in_dim, out = m->out_dim;
    int rank_in = 0, rank_out = 0; /* --reduced: h [n, rank_out], dh/dz [n, rank_out, rank_in] */
    if (reduced && dino_model_reduced_dims(model, &rank_in, &rank_out)) {
        dino_npy_free(&a);
        return report(DINO_EUSER);
    }
    for (long long i = 0; i < n * in; i++) {
        if (isfinite(a.data[i])) continue;
        fprintf(stderr, "dino-jit: error: %s: contains NaN or Inf at row %lld, column %lld\n", in_path, i / in, i % in);
        dino_npy_free(&a);
        return DINO_EUSER;
    }
    int jac = !m->classifier;
    long long in_w = reduced ? rank_in : in, out_w = reduced ? rank_out : out; /* what is written */
    double *y = malloc(sizeof(double) * (size_t)(n * out_w + 1));
    double *J = jac ? malloc(sizeof(double) * (size_t)(n * out_w * in_w + 1)) : NULL;
    if (!y || (jac && !J)) {
        fprintf(stderr, "dino-jit: error: out of memory for the predictions of %lld rows\n", n);
        free(y), free(J), dino_npy_free(&a);
        return DINO_EUSER;
    }
    int rc = reduced ? dino_predict_reduced(model, n, a.data, y, J) : dino_predict(model, n, a.data, y, J);
    dino_npy_free(&a);
    dino_backend_info b;
    dino_model_backend(model, &b);
    char path[4096], yname[256], Jname[256];
    predict_names(m, reduced, yname, sizeof yname, Jname, sizeof Jname);
    const char *unfinished;
    if (rc) {
        report(rc);
    } else if (dino_predict_unfinished(model, &unfinished) > 0 && strict) {
        fprintf(stderr, "dino-jit: error: %s; nothing written (--strict)\n", unfinished);
        rc = DINO_EUSER;
    } else if (make_dirs(out_dir)) {
        fprintf(stderr, "dino-jit: error: cannot create '%s': %s\n", out_dir, strerror(errno));
        rc = DINO_EUSER;
    } else {
        long long ys[3] = {n, out_w}, js[4] = {n, out_w, in_w};
        int T = m->out_times; /* a trajectory: [n, T, dim] and [n, T, dim, in] */
        if (T) ys[1] = js[1] = T, ys[2] = js[2] = m->out_step, js[3] = in;
        if (unfinished[0]) fprintf(stderr, "dino-jit: warning: %s\n", unfinished);
        snprintf(path, sizeof path, "%s/%s", out_dir, yname);
        rc = dino_npy_write(path, b.f64, T ? 3 : 2, ys, y);
        snprintf(path, sizeof path, "%s/%s", out_dir, Jname);
        if (!rc && jac) rc = dino_npy_write(path, b.f64, T ? 4 : 3, js, J);
        if (rc) report(rc);
        else fprintf(stderr, "predicted %lld rows: %s/%s%s%s\n", n, out_dir, yname, jac ? ", " : "", jac ? Jname : "");
    }
    free(y), free(J);
    return rc;
}

/* ---------------------------------------------------------------------------- training output */

/* What the training callbacks print on the terminal. */
typedef struct {
    int quiet; /* -q: no notes, and only the last epoch's line */
    int live;  /* a live progress line (stderr is a terminal) */
    long long until, epochs;
    double last_live;
} Terminal;

static void print_message(dino_message_level level, const char *text, void *user) {
    const Terminal *term = user;
    if (term->live) fputs("\r\033[K", stderr);
    if (level == DINO_MESSAGE_WARNING) fprintf(stderr, "dino-jit: warning: %s\n", text);
    else if (!term->quiet) fprintf(stderr, "dino-jit: %s\n", text);
}

static void print_progress(long long epoch, long long step, long long steps, void *user) {
    Terminal *term = user;
    if (now() - term->last_live <= 0.2) return;
    term->last_live = now();
    fprintf(stderr, "\r  epoch %lld/%lld  batch %lld/%lld   ", epoch, term->epochs, step, steps);
}

static int print_epoch(const dino_epoch *e, void *user) {
    const Terminal *term = user;
    if (term->live) fputs("\r\033[K", stderr);
    if (!term->quiet || e->epoch == e->epochs || e->epoch == term->until || e->early_stop)
        fprintf(stderr, "%s\n", e->line);
    if (e->early_stop)
        fprintf(stderr, "dino-jit: early stop after epoch %lld: no lower validation loss since epoch %lld (%.4e)\n",
                e->epoch, e->best_epoch, e->best_valid_loss);
    return 0;
}

/* Notes while the model opens (a damaged cache entry rebuilt): "dino-jit: note: ...". */
static void print_open_note(dino_message_level level, const char *text, void *user) {
    const Terminal *term = user;
    if (level == DINO_MESSAGE_WARNING) fprintf(stderr, "dino-jit: warning: %s\n", text);
    else if (!term->quiet) fprintf(stderr, "dino-jit: note: %s\n", text);
}

/* "loss 1.2345e-02 (l2 1.0e-02, h1 2.3e-03)  rel_l2 1.2345e-02  rel_h1 2.3456e-02" */
static void format_set_metrics(const dino_spec *spec, const dino_metrics *mt, char *buf, size_t len) {
    int n = 0;
    buf[0] = 0;
    if (mt->has_loss) {
        n += snprintf(buf + n, len - (size_t)n, "loss %.4e", mt->loss);
        for (int i = 0; mt->n_terms > 1 && i < mt->n_terms && (size_t)n < len; i++)
            n += snprintf(buf + n, len - (size_t)n, "%s%s %.4e%s", i ? ", " : " (", dino_spec_loss_term(spec, i),
                          mt->terms[i], i + 1 == mt->n_terms ? ")" : "");
    }
    if (mt->has_rel_l2 && (size_t)n < len) n += snprintf(buf + n, len - (size_t)n, "  rel_l2 %.4e", mt->rel_l2);
    if (mt->has_rel_h1 && (size_t)n < len) n += snprintf(buf + n, len - (size_t)n, "  rel_h1 %.4e", mt->rel_h1);
    if (mt->has_accuracy && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "  accuracy %.2f %%", 100 * mt->accuracy);
}

/* The rows of the data folder dir (--data, else the spec's dir), for --eval and training. */
static int load_data(const char *dir, dino_model *model, dino_data **data) {
    if (!dir) {
        fprintf(stderr, "dino-jit: error: no data folder: pass --data DIR or set dir \"...\" in the data block\n");
        return DINO_EUSER;
    }
    int rc = dino_data_load(model, dir, data);
    return rc ? report(rc) : DINO_OK;
}

/* --eval: the metrics of the model's parameters on the validation and test sets of the data
 * folder, on stdout. */
static int run_eval(const Args *a, dino_spec *spec, dino_model *model, const dino_spec_info *m) {
    const char *dir = a->data ? a->data : m->data_dir;
    dino_data *data;
    int rc = load_data(dir, model, &data);
    if (rc) return rc;
    long long epoch = 0;
    dino_selection sel;
    dino_model_progress(model, &epoch, NULL);
    dino_model_selection(model, &sel);
    if (sel.at_best)
        printf("%s: epoch %lld, the best on validation (loss %.4e)\n", a->load, epoch, sel.best_valid_loss);
    else if (sel.best_epoch > 0)
        printf("%s: epoch %lld (the best on validation was epoch %lld)\n", a->load, epoch, sel.best_epoch);
    else printf("%s: epoch %lld\n", a->load, epoch);
    static const struct {
        dino_set set;
        const char *name;
    } sets[] = {{DINO_SET_VALID, "valid"}, {DINO_SET_TEST, "test"}};
    int shown = 0;
    for (int i = 0; rc == DINO_OK && i < 2; i++) {
        dino_metrics mt;
        if ((rc = dino_evaluate(model, data, sets[i].set, &mt))) {
            report(rc);
            break;
        }
        if (mt.rows == 0) continue;
        char line[512];
        format_set_metrics(spec, &mt, line, sizeof line);
        printf("%-5s  %lld rows  %s\n", sets[i].name, mt.rows, line);
        shown++;
    }
    if (rc == DINO_OK && !shown) {
        fprintf(stderr, "dino-jit: error: %s: the data has no test (or validation) rows to evaluate on\n", dir);
        rc = DINO_EUSER;
    }
    dino_data_free(data);
    return rc;
}

/* SIGINT or SIGTERM during training: stop after the current step (saved with --save), exit
 * DINO_STOPPED. A second one ends the process as usual. */
static dino_model *training;

static void on_signal(int sig) {
    signal(sig, SIG_DFL);
    if (training) dino_request_stop(training);
}

/* ---------------------------------------------------------------------------- inputs and outputs */

/* path with its folder resolved (realpath), for comparing outputs that may not exist yet. */
static void resolved(const char *path, char *out, size_t len) {
    char dir[4096], real[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash == dir) snprintf(dir, sizeof dir, "/");
    else if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    if (realpath(dir, real)) snprintf(out, len, "%s/%s", strcmp(real, "/") ? real : "", base);
    else snprintf(out, len, "%s", path);
}

static int same_output(const char *a, const char *b) {
    char ra[8300], rb[8300];
    if (dino_same_file(a, b)) return 1;
    resolved(a, ra, sizeof ra);
    resolved(b, rb, sizeof rb);
    return strcmp(ra, rb) == 0;
}

/* Refuses, before anything runs, an output of the run that would replace one of its inputs
 * (the spec, a data file, the --load checkpoint, the --predict input: compared by file
 * identity, so links and other spellings count) or another output. --save equal to --load is
 * allowed: the run then updates its own checkpoint, atomically, after the load. */
static int check_outputs(const Args *a, dino_spec *spec, const dino_spec_info *m) {
    typedef struct {
        const char *path, *what;
    } Named;
    Named in[16], out[4];
    int n_in = 0, n_out = 0;
    in[n_in++] = (Named){a->spec, "the spec"};
    if (a->load) in[n_in++] = (Named){a->load, "the --load checkpoint"};
    if (a->predict) in[n_in++] = (Named){a->predict, "the --predict input"};
    size_t nd = 0;
    if ((a->data || m->data_dir) && dino_spec_data_files(spec, a->data, &nd) == DINO_OK)
        for (size_t i = 0; i < nd && n_in < 16; i++)
            in[n_in++] = (Named){dino_spec_data_file(spec, i), "a data file of the spec"};
    static char ypath[4096], Jpath[4096];
    if (a->save) out[n_out++] = (Named){a->save, "--save"};
    if (a->log) out[n_out++] = (Named){a->log, "--log"};
    if (a->predict) {
        char yname[256], Jname[256];
        predict_names(m, a->reduced, yname, sizeof yname, Jname, sizeof Jname);
        snprintf(ypath, sizeof ypath, "%s/%s", a->out, yname);
        snprintf(Jpath, sizeof Jpath, "%s/%s", a->out, Jname);
        out[n_out++] = (Named){ypath, "--out"};
        if (!m->classifier) out[n_out++] = (Named){Jpath, "--out"};
    }
    for (int o = 0; o < n_out; o++) {
        for (int i = 0; i < n_in; i++) {
            if (!dino_same_file(out[o].path, in[i].path)) continue;
            if (in[i].path == a->load && out[o].path == a->save) continue; /* resuming into the same file */
            fprintf(stderr, "dino-jit: error: %s '%s' would overwrite %s '%s' (the same file); choose another path\n",
                    out[o].what, out[o].path, in[i].what, in[i].path);
            return DINO_EUSER;
        }
        for (int p = 0; p < o; p++)
            if (same_output(out[o].path, out[p].path)) {
                fprintf(stderr, "dino-jit: error: %s and %s name the same file '%s'; choose another path\n",
                        out[p].what, out[o].what, out[o].path);
                return DINO_EUSER;
            }
    }
    return DINO_OK;
}

/* --cache info|clear */
static int run_cache(const char *what) {
    dino_cache_info c;
    int clear = strcmp(what, "clear") == 0;
    if (clear ? dino_cache_clear(&c) : dino_cache_info_get(&c)) return report(DINO_EUSER);
    char cap[64] = "no limit";
    if (c.max_bytes) snprintf(cap, sizeof cap, "limit %.1f MiB, $DINO_CACHE_MAX_MB", (double)c.max_bytes / 1048576.0);
    if (clear) printf("removed %ld entries (%.1f MiB) from %s\n", c.entries, (double)c.bytes / 1048576.0, c.path);
    else printf("%s: %ld entries, %.1f MiB (%s)\n", c.path, c.entries, (double)c.bytes / 1048576.0, cap);
    return DINO_OK;
}

/* ---------------------------------------------------------------------------- main */

/* The backend --backend asks for: the GPU when one is usable (auto, cuda), else the CPU
 * module. Says which, and why not the GPU. Returns DINO_OK, or a status after reporting. */
static int start_backend(const Args *a, dino_spec *spec, const dino_spec_info *m, dino_model **model, double t0) {
    Terminal term = {.quiet = a->quiet};
    dino_open_options opt = {.jacobian = a->jac,
                             .on_message = print_open_note,
                             .user = &term,
                             .backend = strcmp(a->backend, "cpu") == 0 ? DINO_BACKEND_CPU
                                 : strcmp(a->backend, "cuda") == 0     ? DINO_BACKEND_CUDA
                                                                       : DINO_BACKEND_AUTO};
    dino_status st = dino_model_open(spec, &opt, model);
    if (st) {
        const char *msg = dino_last_error();
        int no_gpu = strncmp(msg, "no usable GPU: ", 15) == 0;
        if (opt.backend == DINO_BACKEND_CUDA &&
            (no_gpu || strncmp(msg, "the CUDA backend could not start: ", 34) == 0)) {
            fprintf(stderr, "dino-jit: error: --backend cuda: %s%s\n", msg,
                    no_gpu ? "; use --backend cpu (or auto)" : "");
            return st;
        }
        return report(st);
    }
    dino_backend_info b;
    dino_model_backend(*model, &b);
    if (a->quiet) return DINO_OK;
    char shape[48]; /* the output: dim, or [T, dim] for a trajectory */
    if (m->out_times) snprintf(shape, sizeof shape, "[%d, %d]", m->out_times, m->out_step);
    else snprintf(shape, sizeof shape, "%d", m->out_dim);
    if (b.backend == DINO_BACKEND_CUDA) {
        fprintf(stderr, "dino-jit: %s backend; model %s: %d -> %s, %lld parameters, %s; ready in %.2f s\n", b.name,
                m->name, m->in_dim, shape, m->n_params, b.f64 ? "f64" : "f32", now() - t0);
        return DINO_OK;
    }
    if (opt.backend == DINO_BACKEND_AUTO)
        fprintf(stderr, "dino-jit: %s (%s); using the CPU\n",
                b.gpu_failed ? "the CUDA backend could not start" : "no GPU backend", b.gpu_declined);
    fprintf(stderr, "dino-jit: %s backend; model %s: %d -> %s, %lld parameters, %s; code %s in %.2f s\n", b.name,
            m->name, m->in_dim, shape, m->n_params, b.f64 ? "f64" : "f32", b.from_cache ? "from the cache" : "compiled",
            now() - t0);
    return DINO_OK;
}

/* Trains on the data folder (--data, else the spec's). */
static int run_training(const Args *a, dino_spec *spec, dino_model *model, const dino_spec_info *m) {
    const char *dir = a->data ? a->data : m->data_dir;
    dino_data *data;
    int rc = load_data(dir, model, &data);
    if (rc) return rc;
    long long n_train, n_test;
    int has_jac;
    dino_data_rows(data, &n_train, &n_test, &has_jac);
    long long n_valid = 0;
    dino_data_valid_rows(data, &n_valid);
    /* the reduced path frees the full-space rows once projected; the test rows stay when keep best
     * may evaluate them after training (it needs a validation set) */
    dino_data_allow_release(data, DINO_SET_TRAIN);
    dino_data_allow_release(data, DINO_SET_VALID);
    if (n_valid == 0) dino_data_allow_release(data, DINO_SET_TEST);
    char valid_rows[64] = "";
    if (n_valid > 0) snprintf(valid_rows, sizeof valid_rows, "%lld validation rows, ", n_valid);
    if (!a->quiet)
        fprintf(stderr, "dino-jit: data %s: %lld training rows, %s%lld test rows%s; batch %d, %lld epochs\n", dir,
                n_train, valid_rows, n_test, has_jac ? ", with Jacobians" : "", m->batch, m->epochs);
    if (!a->quiet && ranks > 1)
        fprintf(stderr, "dino-jit: %d processes (%s): each batch's rows split across them, gradients summed with MPI\n",
                ranks, launcher);
    Terminal term = {.quiet = a->quiet, .live = isatty(2) && !a->quiet, .until = a->until, .epochs = m->epochs};
    dino_train_options o = {.save = a->save,
                            .log = a->log,
                            .until = a->until,
                            .on_epoch = print_epoch,
                            .on_message = print_message,
                            .on_progress = term.live ? print_progress : NULL,
                            .user = &term};
    double ts = now();
    training = model;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    rc = dino_train(model, data, &o);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    training = NULL;
    if (rc == DINO_STOPPED) {
        if (term.live) fputs("\r\033[K", stderr);
        if (a->save)
            fprintf(stderr, "dino-jit: %s; saved to %s: resume with the same command and --load %s\n",
                    dino_last_error(), a->save, a->save);
        else
            fprintf(stderr,
                    "dino-jit: %s; nothing saved: pass --save CKPT to keep a checkpoint on a stop (and at every "
                    "evaluation), then --load CKPT to resume\n",
                    dino_last_error());
    } else if (rc) {
        report(rc);
    } else if (!a->quiet) {
        fprintf(stderr, "dino-jit: trained in %.1f s\n", now() - ts);
    }
    dino_selection sel;
    dino_model_selection(model, &sel);
    if (rc == DINO_OK && sel.best_restored) { /* keep best: say which epoch the model is, and its test metrics */
        dino_metrics mt;
        char line[512] = "";
        if (dino_evaluate(model, data, DINO_SET_TEST, &mt) == DINO_OK && mt.rows > 0) {
            char ms[480];
            format_set_metrics(spec, &mt, ms, sizeof ms);
            snprintf(line, sizeof line, "; test: %s", ms);
        }
        fprintf(stderr, "dino-jit: kept the best epoch, %lld (validation loss %.4e)%s%s%s\n", sel.best_epoch,
                sel.best_valid_loss, a->save ? ", in " : "", a->save ? a->save : "", line);
    }
    dino_data_free(data);
    return rc;
}

/* Computes the bases from the training rows without training (the model's epochs are done). */
static int run_bases(const Args *a, dino_model *model, const dino_spec_info *m) {
    const char *dir = a->data ? a->data : m->data_dir;
    if (!dir) {
        fprintf(stderr,
                "dino-jit: error: the model's bases need the training data: pass --data DIR or set dir \"...\" "
                "in the data block\n");
        return DINO_EUSER;
    }
    dino_data *data;
    int rc = dino_data_load(model, dir, &data);
    if (rc) return report(rc);
    Terminal term = {.quiet = a->quiet};
    dino_train_options o = {.on_message = print_message, .user = &term};
    rc = dino_model_bases(model, data, &o);
    if (rc) report(rc);
    dino_data_free(data);
    return rc;
}

int main(int argc, char **argv) {
    Args a;
    if (parse_args(argc, argv, &a)) return DINO_EUSER;
    if (a.cache) return run_cache(a.cache);
    if (start_parallel(&argc, &argv)) return DINO_EUSER;
    /* OpenMP threads of the generated code sleep at barriers instead of spinning: on a shared
     * machine spinning threads fight other processes for the cores (measured: 5x slower under
     * load). Set OMP_WAIT_POLICY=active to override. Read when the module is loaded. */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    double t0 = now();
    dino_spec *spec;
    int rc = dino_spec_load(a.spec, &spec);
    if (!spec) return report(rc);
    fputs(dino_spec_diagnostics_text(spec), stderr);
    for (int i = 0; rc == DINO_OK && i < a.n_sets; i++) {
        char key[64];
        const char *eq = strchr(a.sets[i], '=');
        if (!eq || eq == a.sets[i] || (size_t)(eq - a.sets[i]) >= sizeof key) {
            fprintf(stderr, "dino-jit: error: --set needs key=value, not '%s'\n", a.sets[i]);
            rc = DINO_EUSER;
            break;
        }
        snprintf(key, sizeof key, "%.*s", (int)(eq - a.sets[i]), a.sets[i]);
        if ((rc = dino_spec_set(spec, key, eq + 1))) report(rc);
    }
    dino_spec_info m;
    dino_model *model = NULL;
    if (rc == DINO_OK) dino_spec_info_get(spec, &m);
    if (rc == DINO_OK) rc = check_outputs(&a, spec, &m);
    if (rc == DINO_OK) rc = start_backend(&a, spec, &m, &model, t0);
    /* --reduced: a model without the path is refused before any training */
    if (rc == DINO_OK && a.reduced && (rc = dino_model_reduced_dims(model, NULL, NULL))) report(rc);
    if (rc == DINO_OK && a.load) {
        dino_checkpoint_info ci;
        if ((rc = dino_model_load(model, a.load, &ci))) report(rc);
        else if (!a.quiet) {
            char after[160] = "";
            dino_selection sel;
            dino_model_selection(model, &sel);
            if (ci.has_state && sel.at_best)
                snprintf(after, sizeof after, " (after epoch %lld, the best on validation: loss %.4e)", ci.epoch,
                         sel.best_valid_loss);
            else if (ci.has_state && sel.best_epoch > 0)
                snprintf(after, sizeof after, " (after epoch %lld; the best on validation was epoch %lld)", ci.epoch,
                         sel.best_epoch);
            else if (ci.has_state) snprintf(after, sizeof after, " (after epoch %lld)", ci.epoch);
            fprintf(stderr, "dino-jit: loaded %s%s%s\n", a.load, after,
                    ci.spec_matches == 0 ? "; note: it was trained from a different spec" : "");
        }
    }
    long long done = 0;
    if (model) dino_model_progress(model, &done, NULL);
    if (rc == DINO_OK && (m.epochs <= done || a.eval) && !dino_model_bases_ready(model) &&
        (a.save || a.predict || a.eval))
        rc = run_bases(&a, model, &m); /* a checkpoint without its bases (PyTorch's, or --epochs 0) */
    if (rc == DINO_OK && a.eval) rc = run_eval(&a, spec, model, &m);
    else if (rc == DINO_OK && m.epochs > done) rc = run_training(&a, spec, model, &m);
    else if (rc == DINO_OK && a.save && rank == 0 && (rc = dino_model_save(model, a.save))) report(rc);
    if (rc == DINO_OK && a.predict && rank == 0) rc = run_predict(model, &m, a.predict, a.out, a.strict, a.reduced);
    dino_model_free(model);
    dino_spec_free(spec);
    dino_parallel_end();
    return rc;
}
