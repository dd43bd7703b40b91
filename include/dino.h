/* dino.h - the public C API of libdino: the dino compiler and training runtime as a library.
 *
 * A program that uses dino goes through these steps, each one call:
 *
 *     dino_spec *spec;                        parse and check a .dino file
 *     if (dino_spec_load("model.dino", &spec) != DINO_OK)
 *         fputs(dino_spec_diagnostics_text(spec), stderr);     every error, with a caret
 *     dino_model *model;                      generate, compile (cached) and load a backend
 *     dino_model_open(spec, NULL, &model);
 *     dino_model_load(model, "model.safetensors", NULL);       trained parameters
 *     dino_predict(model, n, x, y, J);        outputs [n, out] and Jacobians [n, out, in]
 *     dino_model_free(model); dino_spec_free(spec);
 *
 * Conventions:
 * - Every function that can fail returns a dino_status. On failure, dino_last_error() gives the
 *   message (the text dinoc and dino-jit print after "dinoc: error: "), kept per thread until
 *   the next failing call.
 * - The library never exits and never prints: messages come back as text, progress through
 *   callbacks.
 * - Handles are opaque. A dino_model and a dino_data refer to the dino_spec they were made from:
 *   free them before the spec. One handle is used by one thread at a time.
 * - Arrays are C order (row-major), double precision at the API, whatever precision the model
 *   computes in (values are converted on the way in and out).
 * - Text the library allocates for the caller (dino_generate) is freed with dino_free().
 *
 * The version below follows semantic versioning: a program built against MAJOR.MINOR runs with
 * any later MINOR of the same MAJOR. */
#ifndef DINO_H
#define DINO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the library's exported functions (libdino.so exports nothing else). */
#if defined(__GNUC__) || defined(__clang__)
#define DINO_API __attribute__((visibility("default")))
#else
#define DINO_API
#endif

#define DINO_VERSION_MAJOR 0
#define DINO_VERSION_MINOR 2
#define DINO_VERSION_PATCH 0

/* "MAJOR.MINOR.PATCH" of the library that is running (may be newer than the header). */
DINO_API const char *dino_version(void);

/* What `--version` prints after the version, one item a line: the git commit the library was
 * built from ("commit abc123def456", "-dirty" when the tree had changes, "unknown" outside
 * git), and the CUDA driver and NVRTC that this process finds (their versions and files, or
 * "none found" and why). Loads but does not initialise the driver; valid until the next call. */
DINO_API const char *dino_version_details(void);

/* ---------------------------------------------------------------------------- status */

/* What a function did. The same numbers are the exit codes of dinoc and dino-jit. Inside the
 * library, runtime/status.h defines the same names (DinoStatus); this header then reuses them. */
#ifdef DINO_STATUS_H
typedef DinoStatus dino_status;
#else
typedef enum dino_status {
    DINO_OK = 0,        /* success */
    DINO_EUSER = 1,     /* a user error: bad spec, data, file, setting; a NaN loss; out of memory */
    DINO_EINTERNAL = 2, /* an internal error (a bug in dino, or a driver failing under it) */
    DINO_STOPPED = 3,   /* training stopped on request (dino_request_stop, or the epoch callback) */
} dino_status;
#endif

/* The message of this thread's last failure ("" when none): one sentence, or for errors in a
 * spec the whole diagnostic ("model.dino:3:5: error: ..."). */
DINO_API const char *dino_last_error(void);

/* 1 when dino_last_error() is a complete diagnostic that names its own file, to be printed as
 * it is; 0 when it is a sentence that a command prints after "PROGRAM: error: ". */
DINO_API int dino_last_error_is_complete(void);

/* Frees text that the library allocated for the caller. */
DINO_API void dino_free(void *p);

/* ---------------------------------------------------------------------------- specs */

typedef struct dino_spec dino_spec;

typedef enum dino_severity {
    DINO_SEVERITY_ERROR,
    DINO_SEVERITY_NOTE,
} dino_severity;

/* One diagnostic of a spec, as data. line and col are 1-based, 0 when the message concerns the
 * whole file; [line:col, end_line:end_col) is the range the caret line underlines. */
typedef struct dino_diagnostic {
    const char *file;
    int line, col, end_line, end_col;
    dino_severity severity;
    const char *message; /* without the location, e.g. "unknown name 'h3'" */
} dino_diagnostic;

/* Reads, parses and checks a spec file. On DINO_OK *spec is a checked spec. On DINO_EUSER (the
 * spec has errors, or the file can't be read) *spec is still set, so that its diagnostics can
 * be read, and must be freed; it can't be used for anything else. DINO_EINTERNAL: out of
 * memory, *spec is NULL. */
DINO_API dino_status dino_spec_load(const char *path, dino_spec **spec);

/* The same for a spec in memory (len bytes, NULs allowed). name stands for the file in
 * messages, and relative paths in the spec (data files, project matrices) are relative to
 * name's folder. */
DINO_API dino_status dino_spec_from_text(const char *name, const char *text, size_t len, dino_spec **spec);

DINO_API void dino_spec_free(dino_spec *spec);

/* The diagnostics: errors and notes in the order they were found. dino_spec_diagnostic returns
 * NULL for i out of range; the pointers stay valid until dino_spec_free. At most 50 errors are
 * recorded (and printed); dino_spec_error_count counts them all. */
DINO_API size_t dino_spec_diagnostic_count(const dino_spec *spec);
DINO_API const dino_diagnostic *dino_spec_diagnostic(const dino_spec *spec, size_t i);
DINO_API int dino_spec_error_count(const dino_spec *spec);

/* The diagnostics as dinoc prints them: "file:line:col: error: message", the source line and a
 * caret line under the range, for each; then "N errors" when there is more than one. "" for a
 * spec without diagnostics. */
DINO_API const char *dino_spec_diagnostics_text(const dino_spec *spec);

/* What a checked spec describes. Strings are valid until dino_spec_free. */
typedef struct dino_spec_info {
    const char *name;           /* the model's name */
    const char *input, *output; /* the input and output names */
    int in_dim, out_dim;        /* dim(input); dim(output) (all saved times of a trajectory), or
                                   the number of classes */
    long long n_params;         /* elements of the flat parameter vector */
    int classifier;             /* 1: cross-entropy on labels, no Jacobian */
    int f64;                    /* the training precision (after dino_spec_set "precision") */
    long long epochs;           /* the train section's settings (after dino_spec_set) */
    int batch;
    unsigned long long hash; /* of the spec's text; checkpoints record it */
    const char *data_dir;    /* the data section's dir, relative to the spec's folder
                                   resolved; NULL when the spec names none */
    int out_times;           /* a trajectory output (an ode block with a save line): its T saved
                                   times, and out_dim = T x out_step (every array of outputs is
                                   [n, T, out_step], of Jacobians [n, T, out_step, in_dim], in that
                                   order in memory); 0 for an ordinary output */
    int out_step;            /* dim(output) at one saved time (the declared size); out_dim when
                                   out_times is 0 */
} dino_spec_info;

DINO_API dino_status dino_spec_info_get(const dino_spec *spec, dino_spec_info *info);

/* The files the spec's data section reads from the folder dir (NULL: the data section's dir),
 * resolved as dino_data_load resolves them, whether or not they exist: the input, output and
 * Jacobian files (J_data.npy when the spec names none for a regression model) and the test
 * files. *count gets how many; dino_spec_data_file(spec, i) gives each (NULL out of range),
 * valid until the next call or dino_spec_free. For refusing outputs that would overwrite them. */
DINO_API dino_status dino_spec_data_files(dino_spec *spec, const char *dir, size_t *count);
DINO_API const char *dino_spec_data_file(const dino_spec *spec, size_t i);

/* Overrides one setting of the train section, as `dino-jit --set key=value` does, by the train
 * section's own rules, ranges and messages. Keys: epochs, batch, lr, seed, precision (f32 |
 * f64), math (precise | fast: f32 activations in float with fast intrinsics), eval_every, patience, save_every, keep_best (0 | 1), shuffle ("rows", "blocks B" or "blocks B window W"), and the optimizer's own settings (beta1, beta2, eps: adam and adamw; decay:
 * adamw; momentum: sgd). DINO_EUSER for an unknown key, a value out of range or a setting the
 * spec's optimizer does not have (the message says which optimizer has it). Apply settings
 * before dino_model_open. */
DINO_API dino_status dino_spec_set(dino_spec *spec, const char *key, const char *value);

/* ---------------------------------------------------------------------------- generated code */

typedef enum dino_target {
    DINO_TARGET_CUDA,   /* the GPU backend's CUDA source (stand-alone, for NVRTC) */
    DINO_TARGET_C,      /* the CPU backend's C source */
    DINO_TARGET_PTX,    /* the CUDA source compiled by NVRTC to PTX (for opts->arch) */
    DINO_TARGET_IR,     /* the IR of the predict and train programs, as text */
    DINO_TARGET_AST,    /* the checked syntax tree, as text */
    DINO_TARGET_PARAMS, /* one line per parameter: "name [shape]", in definition order */
} dino_target;

typedef enum dino_precision {
    DINO_PRECISION_SPEC, /* the spec's train precision */
    DINO_PRECISION_F32,
    DINO_PRECISION_F64,
} dino_precision;

typedef enum dino_jacobian {
    DINO_JACOBIAN_AUTO, /* forward mode when dim(in) <= dim(out), else reverse */
    DINO_JACOBIAN_FORWARD,
    DINO_JACOBIAN_REVERSE,
} dino_jacobian;

typedef enum dino_fuse {
    DINO_FUSE_AUTO,  /* tile kernels when every layer is small (docs/commands.md) */
    DINO_FUSE_NONE,  /* one kernel per fused stage */
    DINO_FUSE_TILES, /* tile kernels whatever the layer sizes */
} dino_fuse;

/* Options of dino_generate; a zeroed struct (or NULL) means the defaults. */
typedef struct dino_emit_options {
    dino_precision precision;
    dino_jacobian jacobian;
    dino_fuse fuse;   /* CUDA and PTX */
    int no_share;     /* CUDA: write every tile-kernel stage out (DINO_CUDA_SHARE=0) */
    const char *arch; /* PTX: "sm_80" (the default), "sm_90", ... */
} dino_emit_options;

/* Generates a target's text for a checked spec into memory: *text (NUL-terminated, freed with
 * dino_free) of *len bytes. DINO_EUSER when the spec can't be generated (the message is a
 * complete diagnostic), NVRTC is missing or can't compile for arch; DINO_EINTERNAL when the
 * generated CUDA does not compile (the message ends with NVRTC's log). */
DINO_API dino_status dino_generate(dino_spec *spec, dino_target target, const dino_emit_options *opts, char **text,
                                   size_t *len);

/* ---------------------------------------------------------------------------- models */

/* A spec's generated code loaded on a backend, with its parameters (initialised from the
 * spec's seed), the optimiser state and the training state. */
typedef struct dino_model dino_model;

typedef enum dino_backend {
    DINO_BACKEND_AUTO, /* the GPU when one is usable, else the CPU */
    DINO_BACKEND_CPU,  /* the generated C, compiled by the host compiler (cached), dlopen'ed */
    DINO_BACKEND_CUDA, /* the generated CUDA through NVRTC (cached) and the driver API */
} dino_backend;

typedef enum dino_message_level {
    DINO_MESSAGE_NOTE,    /* information ("training workspace 1.2 MiB ...") */
    DINO_MESSAGE_WARNING, /* something to fix (a dopri5 solve that did not reach t1) */
} dino_message_level;

typedef struct dino_open_options {
    dino_backend backend;
    dino_precision precision; /* not SPEC: as dino_spec_set(spec, "precision", ...) */
    dino_jacobian jacobian;
    /* Notes while opening, one sentence each without a newline (NULL: dropped): a damaged
     * entry of the compiled-code cache that was removed and rebuilt, and why. */
    void (*on_message)(dino_message_level level, const char *text, void *user);
    void *user;
} dino_open_options;

/* Generates the spec's code for the backend, compiles or finds it in the cache, and loads it.
 * With DINO_BACKEND_CUDA and no usable GPU: DINO_EUSER, "no usable GPU: <why>"; with a GPU on
 * which the backend fails: "the CUDA backend could not start: <why>". opts may be NULL. The
 * model uses the spec until dino_model_free: free the spec after the model, not before. */
DINO_API dino_status dino_model_open(dino_spec *spec, const dino_open_options *opts, dino_model **model);
DINO_API void dino_model_free(dino_model *model);

/* What dino_model_open chose, for the user. Strings are valid until dino_model_free. */
typedef struct dino_backend_info {
    dino_backend backend;     /* CPU or CUDA: the one in use */
    const char *name;         /* "CPU (2 threads)", "CUDA: NVIDIA H100 80GB HBM3" */
    const char *gpu_declined; /* AUTO on the CPU: why not the GPU ("" otherwise) */
    int gpu_failed;           /* ... because the CUDA backend failed on a GPU that is there */
    int from_cache;           /* CPU: the compiled module came from the cache */
    int f64;                  /* the precision it computes in */
} dino_backend_info;

DINO_API dino_status dino_model_backend(const dino_model *model, dino_backend_info *info);

/* The training state: epochs done (counting those of a loaded checkpoint) and steps. */
DINO_API dino_status dino_model_progress(const dino_model *model, long long *epochs_done, long long *steps_done);

/* ---------------------------------------------------------------------------- checkpoints */

typedef struct dino_checkpoint_info {
    int has_state;    /* the file held the training state (epoch, step, shuffle RNG) */
    long long epoch;  /* epochs done when it was written (when has_state) */
    int spec_matches; /* 1: written from this spec's text; 0: another spec; -1: unknown */
} dino_checkpoint_info;

/* Writes the parameters, the optimiser moments and the training state as safetensors,
 * atomically (missing folders above path are made). */
DINO_API dino_status dino_model_save(dino_model *model, const char *path);

/* Reads a checkpoint (a dino one, or parameters alone from PyTorch) into the model: every
 * parameter with its exact shape; the optimiser and training state when present. Nothing
 * changes unless the whole file checks out. info may be NULL. */
DINO_API dino_status dino_model_load(dino_model *model, const char *path, dino_checkpoint_info *info);

/* ---------------------------------------------------------------------------- data */

/* A training and a test set in the model's precision (or, for a float32 model whose training
 * may run in reduced coordinates, float64 files kept as they are until the model reads them:
 * dino_data_load). */
typedef struct dino_data dino_data;

/* The data the spec's data section describes, from the folder dir (NULL: the data section's
 * dir, relative to the spec's folder; DINO_EUSER when it names none), split into training and
 * test rows as the spec says. Every message names the file and the expected and found shape or
 * type. An .npy file that already has the model's precision (and, for a Jacobian, the out_in
 * layout) is read in place through a read-only memory mapping, not copied (docs/commands.md, "Data
 * larger than memory"): it must not change until dino_data_free. For a float32 model with a basis
 * section whose training may run in reduced coordinates, float64 .npy files are mapped as they
 * are too: dino_train projects them into the bases in f64 (nothing converted whole); the
 * full-space graph and dino_evaluate convert a set to float32 when they first read it, as the load
 * would have. */
DINO_API dino_status dino_data_load(const dino_model *model, const char *dir, dino_data **data);

/* One set in memory, C order. x [n, in]; a regression model's y [n, out] and optionally
 * J [n, out, in]; a classifier's labels [n] in [0, out). Copied. */
typedef struct dino_arrays {
    long long n;
    const double *x;
    const double *y;   /* NULL for a classifier */
    const double *J;   /* NULL: no Jacobian data (then an h1 loss can't train) */
    const int *labels; /* classifiers only */
} dino_arrays;

/* A training set and a test set (test may be NULL or have n = 0: no test metrics) from arrays.
 * Checks that values are finite and labels in range. */
DINO_API dino_status dino_data_from_arrays(const dino_model *model, const dino_arrays *train, const dino_arrays *test,
                                           dino_data **data);

/* Rows in the training and the test set, and whether the training set has Jacobians. */
DINO_API dino_status dino_data_rows(const dino_data *data, long long *train_rows, long long *test_rows,
                                    int *has_jacobian);

/* Rows in the validation set: the split's valid part or the `valid x = ...` files (0: none;
 * dino_data_from_arrays makes none). */
DINO_API dino_status dino_data_valid_rows(const dino_data *data, long long *valid_rows);

DINO_API void dino_data_free(dino_data *data);

/* ---------------------------------------------------------------------------- training */

/* What the epoch callback sees after each epoch. Valid during the call. */
typedef struct dino_epoch {
    long long epoch, epochs; /* the epoch just finished (1-based) and the planned total */
    long long step;          /* optimiser steps so far */
    double seconds;          /* since dino_train started */
    double epoch_seconds;    /* this epoch */
    double lr, train_loss;   /* the last scheduled learning rate; the epoch's mean loss */
    int evaluated;           /* test metrics were computed after this epoch */
    int has_rel_l2, has_rel_h1, has_accuracy;
    double rel_l2, rel_h1, accuracy;
    const char *line; /* the line dino-jit prints for it, without the newline */
    /* Since 0.2 (model selection; the validation set: the spec's valid split or files): */
    int validated;     /* the validation set was evaluated after this epoch */
    double valid_loss; /* its loss (the loss block's, weighted) */
    int has_valid_rel_l2, has_valid_rel_h1, has_valid_accuracy;
    double valid_rel_l2, valid_rel_h1, valid_accuracy;
    int improved;         /* valid_loss is the best so far */
    long long best_epoch; /* the epoch of the best validation loss so far (0: none) */
    double best_valid_loss;
    int early_stop;                /* early_stop ends training after this epoch */
    int n_terms;                   /* the loss block's terms, in its order: */
    const char *const *term_names; /* "l2", "h1", "cross_entropy" */
    const double *train_terms;     /* the epoch's mean of each, unweighted */
} dino_epoch;

/* Options of dino_train; a zeroed struct (or NULL) means: no checkpoint, no log, all epochs,
 * no callbacks. */
typedef struct dino_train_options {
    const char *save; /* checkpoint written after each evaluation, on a NaN loss
                                   (the last good parameters) and on a stop */
    const char *log;  /* CSV log: epoch,step,seconds,lr,train_loss,<metrics> */
    long long until;  /* stop after this epoch (0: the spec's epochs) */
    /* After every epoch; nonzero stops training (dino_train then returns DINO_STOPPED). */
    int (*on_epoch)(const dino_epoch *epoch, void *user);
    /* Notes and warnings, one sentence each without a newline. */
    void (*on_message)(dino_message_level level, const char *text, void *user);
    /* After every step, for a live progress line: the epoch (1-based), the step within it and
     * the steps per epoch. */
    void (*on_progress)(long long epoch, long long step, long long steps, void *user);
    void *user;
} dino_train_options;

/* Trains until the spec's epochs are done (counting epochs already done: a loaded checkpoint
 * resumes). Before the first epoch the save and log paths are prepared: missing folders are
 * made and a folder where no file can be created is an error, so that no training is lost to
 * an unwritable path. DINO_OK; DINO_EUSER (a NaN or Inf loss, naming the epoch and step; an
 * unwritable file); DINO_EINTERNAL (a device failing); DINO_STOPPED after dino_request_stop or
 * a nonzero on_epoch. */
DINO_API dino_status dino_train(dino_model *model, const dino_data *data, const dino_train_options *opts);

/* What the last dino_train did about model selection, or what a loaded checkpoint recorded
 * (dino_model_load). */
typedef struct dino_selection {
    long long best_epoch; /* the epoch of the lowest validation loss (0: none evaluated) */
    double best_valid_loss;
    long long stopped_early; /* early_stop ended training after this epoch (0: it did not) */
    int best_restored;       /* keep best: the model was set back to the end of best_epoch
                                   (parameters, optimiser, training state) when training ended */
    int at_best;             /* the model's parameters are those of best_epoch */
} dino_selection;

DINO_API dino_status dino_model_selection(const dino_model *model, dino_selection *info);

/* ---------------------------------------------------------------------------- evaluation */

typedef enum dino_set {
    DINO_SET_TRAIN,
    DINO_SET_VALID,
    DINO_SET_TEST,
} dino_set;

/* Lets dino_train release one set's full-space arrays (x, y and J: freed, or unmapped when they
 * map the data files) as soon as it no longer needs them: when it trains in reduced coordinates
 * (the basis section), right after projecting them into the bases, so that the training holds
 * only the reduced arrays and its memory scales with the ranks. Call it once per set allowed.
 * The row counts, the labels and the sets not allowed stay as they are. Once a set is released,
 * dino_evaluate on it, and dino_model_bases and dino_train with these data, return DINO_EUSER.
 * The full-space path releases nothing. dino-jit allows the training and validation sets, and
 * the test set when there is no validation set (with one, keep best evaluates the test set
 * after training). */
DINO_API dino_status dino_data_allow_release(dino_data *data, dino_set set);

/* A model's metrics and loss on one set of data. */
typedef struct dino_metrics {
    long long rows; /* 0: the set is empty (nothing else is set) */
    int has_loss;   /* 0 when the set lacks what a term needs (Jacobians for h1) */
    double loss;    /* the loss block's loss, with the weights of the last epoch trained */
    int n_terms;
    double terms[3]; /* each loss term, unweighted, in the loss block's order */
    int has_rel_l2, has_rel_h1, has_accuracy;
    double rel_l2, rel_h1, accuracy;
} dino_metrics;

/* Evaluates the model's current parameters on a set of data (training nothing). */
DINO_API dino_status dino_evaluate(dino_model *model, const dino_data *data, dino_set set, dino_metrics *metrics);

/* The name of loss term i of the spec ("l2", "h1", "cross_entropy"), NULL past the last. */
DINO_API const char *dino_spec_loss_term(const dino_spec *spec, int i);

/* Reduced bases (the spec's basis section): whether every basis the model uses has values (from
 * a checkpoint, or computed by dino_train or dino_model_bases); 1 for a model without bases. */
DINO_API int dino_model_bases_ready(const dino_model *model);
/* Gives every basis without values its values (computed from data's training rows, read from
 * .npy files, or from the cache), reports each through opts->on_message, and writes them into
 * the model: what dino_train does first, for a checkpoint without bases (one written by PyTorch)
 * that is to be used without training. DINO_OK, or DINO_EUSER with the message. */
DINO_API dino_status dino_model_bases(dino_model *model, const dino_data *data, const dino_train_options *opts);

/* Asks a running dino_train on model to stop after the current step (saving when opts->save is
 * set). A stop inside an epoch first sets the model back to the end of the previous epoch
 * (parameters, optimiser, epoch and step counts, shuffle RNG), so that the checkpoint, or a
 * later dino_train, repeats that epoch and ends exactly as a run never stopped. Safe to call
 * from a signal handler or another thread; a request made while no training runs stops the
 * next dino_train at once. dino_train clears it when it returns. */
DINO_API void dino_request_stop(dino_model *model);

/* ---------------------------------------------------------------------------- many processes */

/* Data-parallel training (CONVENTIONS.md "Running on many processes"). */
typedef struct dino_parallel {
    int rank, size;       /* this process and how many (0 and 1: one process) */
    int local_rank;       /* among the processes of this node (one GPU each) */
    const char *launcher; /* "OpenMPI", "MPICH", "Slurm", or "" without a launcher */
    int have_mpi;         /* this build has MPI */
} dino_parallel;

/* Call first in main under mpirun or srun: finds the launcher (OpenMPI OMPI_COMM_WORLD_*, MPICH
 * PMI_*, Slurm SLURM_*) and, with several processes, initialises MPI. From then on dino_train
 * trains data-parallel: every process draws the same shuffle, takes its share of the rows of
 * each batch, and the gradient and loss sums are added across processes before one identical
 * optimiser step; only rank 0 writes the checkpoint and the log. Without a launcher: one
 * process, nothing changes. DINO_OK; DINO_EUSER when several processes were started and this
 * build has no MPI (info is filled in any case). */
DINO_API dino_status dino_parallel_start(int *argc, char ***argv, dino_parallel *info);

/* Ends MPI when dino_parallel_start began it (call before exit). */
DINO_API void dino_parallel_end(void);

/* ---------------------------------------------------------------------------- prediction */

/* Outputs y [n, out] and, when J is not NULL, Jacobians J [n, out, in] = d output / d input
 * for the n inputs x [n, in]. A classifier's outputs are its logits, and it has no Jacobian
 * (J must be NULL). With J NULL the Jacobian is not computed (the outputs are the same). On
 * the CPU backend a row's results do not depend on the other rows of the call (but for dopri5
 * and Parareal tolerance gates, which the rows of a chunk share). */
DINO_API dino_status dino_predict(dino_model *model, long long n, const double *x, double *y, double *J);

/* dino_predict on float arrays: for a model that computes in f32 (the spec's default), without
 * the conversions to and from double (results equal dino_predict's rounded to float: the same
 * values for an f32 model; an f64 model's rounded once). */
DINO_API dino_status dino_predict_f32(dino_model *model, long long n, const float *x, float *y, float *J);

/* Prediction in reduced coordinates, for a model whose output is `out = decode(h, B2)` (any
 * bases, oblique too): h [n, rank(B2)], the network's output before the decode, and, when G is
 * not NULL, G [n, rank(B2), rank(B)] = dh/dz, for the full-space inputs x [n, in], encoded with
 * the model's bases (z = E^T (x - shift)) when the input enters only through `z = encode(x, B)`,
 * else as they are (z = x, rank(B) read as in). The full-space prediction is D h + shift, its
 * Jacobian D G E^T. dino_model_reduced_dims gives the two ranks (from the spec alone: it says
 * before any training whether the path exists). DINO_EUSER naming what is missing when the model
 * has no such path, or its bases no values yet. The first call generates and compiles the inner
 * network (cached). Since 0.2. */
DINO_API dino_status dino_model_reduced_dims(dino_model *model, int *rank_in, int *rank_out);
DINO_API dino_status dino_predict_reduced(dino_model *model, long long n, const double *x, double *h, double *G);

/* How many rows of the last dino_predict (dino_jvp, dino_vjp) on model came out of an
 * adaptive ODE solve (dopri5) that did not reach its t1 within max_steps: their values are
 * wrong. 0 when every solve finished, and for models without dopri5. message (may be NULL)
 * gets "" or one sentence naming the block and the fix; valid until the next call on model.
 * (dopri5's step control is shared by the rows of a chunk, so rows fail together.) */
DINO_API long long dino_predict_unfinished(const dino_model *model, const char **message);

/* Jacobian-vector products for a batch: Jv [n, out] = J(x_i) v_i with v [n, in], and
 * JTw [n, in] = J(x_i)^T w_i with w [n, out]; y [n, out] (may be NULL) receives the outputs.
 * For now both are computed from the full Jacobian (dino_predict, in chunks of rows), so they
 * cost what the Jacobian costs. */
DINO_API dino_status dino_jvp(dino_model *model, long long n, const double *x, const double *v, double *y, double *Jv);
DINO_API dino_status dino_vjp(dino_model *model, long long n, const double *x, const double *w, double *y, double *JTw);

/* ---------------------------------------------------------------------------- .npy files */

/* A NumPy array read by dino_npy_read, converted to double. */
typedef struct dino_npy {
    double *data; /* shape[0] * ... * shape[ndim-1] values, C order; dino_npy_free */
    int ndim;     /* 0 to 8 */
    long long shape[8];
    const char *dtype; /* the file's: "float32", "float64", "int32", "int64", "uint8" */
    int is_float;
} dino_npy;

/* Reads a .npy file (versions 1-3, little-endian float32/float64, int32/int64/uint8, C order).
 * Messages start with the path. */
DINO_API dino_status dino_npy_read(const char *path, dino_npy *array);
DINO_API void dino_npy_free(dino_npy *array);

/* Writes a version 1.0 .npy file atomically, as float64 (f64 = 1) or float32. */
DINO_API dino_status dino_npy_write(const char *path, int f64, int ndim, const long long *shape, const double *data);

/* ---------------------------------------------------------------------------- files, cache */

/* Writes len bytes to path atomically (a temporary file in the same folder, flushed to disk,
 * renamed over path): readers see the old file or the whole new one. */
DINO_API dino_status dino_write_file(const char *path, const void *data, size_t len);

/* 1 when both paths exist and are the same file (same device and inode: links and other
 * spellings of one path count), else 0. */
DINO_API int dino_same_file(const char *a, const char *b);

/* The compiled-code cache ($DINO_CACHE_DIR, else ~/.cache/dino): its folder, the number of
 * entries (compiled modules, CUBINs, saved sources) and their bytes, and the size cap
 * ($DINO_CACHE_MAX_MB, 0: none). dino_cache_clear removes every entry and gives what was there.
 * Only files named like entries are touched. */
typedef struct dino_cache_info {
    char path[4096];
    long entries;
    unsigned long long bytes, max_bytes;
} dino_cache_info;

DINO_API dino_status dino_cache_info_get(dino_cache_info *info);
DINO_API dino_status dino_cache_clear(dino_cache_info *removed);

#ifdef __cplusplus
}
#endif

#endif
