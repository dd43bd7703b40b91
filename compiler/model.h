/* model.h - the checked model: what check_*.c make of the syntax tree.
 *
 * Everything later stages need is resolved here: every tensor's dimension, every parameter's
 * name, shape and place in the one flat parameter buffer, the ODE solvers and PinT partitions,
 * the data files, the loss terms and the training settings, all with defaults applied.
 * Model expressions stay in the AST (annotated with dims and parameter indices); the IR
 * lowering (ir.c) walks them. */
#ifndef DINO_MODEL_H
#define DINO_MODEL_H

#include <stdint.h>

#include "ast.h"
#include "diag.h"

enum { DINO_MAX_DIM = 1 << 24 }; /* largest vector dimension accepted */
/* Limits of code generation that the checker enforces, so that every spec it accepts generates
 * code for both targets (tests/check_gate.sh):
 *   DINO_MAX_LAYER_DIM: the widest side (out or in) of a layer's weight: the CUDA backend's grid
 *     has at most 65535 blocks in y and z, of 64-wide tiles (fuse.h's MAX_GRID_YZ is
 *     DINO_MAX_LAYER_DIM / 64);
 *   DINO_DOPRI5_MAX_ATTEMPTS: dopri5's largest max_steps, the attempts the generated code holds
 *     (lower.c unrolls them; programs.c refuses more). */
enum { DINO_MAX_LAYER_DIM = 65535 * 64, DINO_DOPRI5_MAX_ATTEMPTS = 256 };

typedef struct {
    const char *name; /* checkpoint name: "h1.weight", "q.0.bias", "z.f.weight" */
    int ndim;         /* 1 (bias) or 2 (weight) */
    int shape[2];     /* [out, in] for weights, [out] for biases */
    int64_t offset;   /* first element in the flat parameter buffer */
    int64_t size;
    int fan_in; /* for initialisation */
    Loc loc;    /* the layer call that owns it */
    int frozen; /* a basis's fixed matrix or shift (encode/decode): not trained, not
                               initialised, not in checkpoints; the runtime fills it from the basis.
                               Frozen parameters sit after all trained ones in the buffer. */
    int basis;  /* frozen: the basis (Model.bases) it comes from */
} Param;

/* What a call in a model expression resolved to; attached to its Expr by the checker. */
typedef enum {
    FN_DENSE,   /* dense(x, n, bias = true)                     */
    FN_MLP,     /* mlp(x, n, width, depth | widths, act, residual) */
    FN_CONCAT,  /* concat(a, b, ...)                             */
    FN_PROJECT, /* project(x, "P.npy")                           */
    FN_ENCODE,  /* encode(x, B): E^T (x - shift)                 */
    FN_DECODE,  /* decode(h, B): D h + shift                     */
    FN_ACT,     /* an element-wise activation                    */
} CallKind;

typedef struct Call {
    CallKind kind;
    int out;          /* output dimension */
    int bias;         /* dense, mlp: layers have biases */
    int act;          /* FN_ACT: the activation; FN_MLP: the hidden activation */
    int depth;        /* mlp: hidden layers */
    int *widths;      /* mlp: [depth] hidden widths */
    int residual;     /* mlp: h + act(dense(h)) between equal widths */
    int first_param;  /* dense, mlp: index of its first Param */
    const char *file; /* project: the matrix file, resolved against the spec folder */
    int basis;        /* encode, decode: index in Model.bases */
} Call;

/* ---------------------------------------------------------------------------- bases */

typedef enum {
    BASIS_POD,    /* pod(x, rank = r, centre = true, samples = K)         */
    BASIS_ACTIVE, /* active_subspace(dq/dm, rank = r, samples = K)        */
    BASIS_NPY,    /* npy(decoder = "D.npy", encoder = "E.npy", shift = "mu.npy") */
} BasisMethod;
extern const char *const basis_method_names[]; /* "pod", "active_subspace", "npy" */

/* What a basis is computed from: the model's input or output data, or its Jacobian data. */
typedef enum { BASIS_OF_INPUT, BASIS_OF_OUTPUT, BASIS_OF_JACOBIAN, BASIS_OF_FILES } BasisSource;

typedef struct {
    const char *name; /* Vm */
    Loc loc;          /* the name in the basis section */
    Loc call_loc;     /* the method call */
    BasisMethod method;
    BasisSource source;
    int dim, rank;                         /* D and E are [dim, rank]; 0 until known */
    int centre;                            /* pod: subtract the mean (the shift) first */
    int64_t samples;                       /* the first K training rows; 0 = all of them */
    const char *decoder, *encoder, *shift; /* npy: files resolved against the spec folder
                                                (encoder, shift may be NULL) */
    const char *text;                      /* the basis line as written (cache key, checkpoint metadata) */
    const char *source_name;               /* pod: "m"; active_subspace: "dq/dm"; NULL for npy or after an error */
    Loc source_loc, rank_loc;
    int used_encode, used_decode;
    int enc_param, dec_param; /* the frozen weight of encode / decode (its bias follows), or -1 */
} Basis;

/* ---------------------------------------------------------------------------- ODE blocks */

typedef enum { SOLVER_EULER, SOLVER_MIDPOINT, SOLVER_RK4, SOLVER_DOPRI5, SOLVER_COUNT } SolverKind;
extern const char *const solver_names[SOLVER_COUNT];

typedef struct {
    SolverKind kind;
    int steps;         /* fixed-step solvers; dopri5: initial number of steps */
    double rtol, atol; /* dopri5 */
    int max_steps;     /* dopri5 */
    Loc loc;
} Solver;

typedef struct {
    int present;
    int slices;          /* number of time slices */
    double *bounds;      /* [slices + 1] slice boundaries, bounds[0] = t0, bounds[slices] = t1 */
    int iterations;      /* Parareal corrections K */
    Solver coarse, fine; /* per slice */
    int eval_parareal;   /* prediction and evaluation also use Parareal */
    double tol;          /* stop early when the correction is below tol; 0 = never */
    Loc loc;
} Pint;

typedef struct {
    const Stmt *stmt;  /* the S_ODE statement; body statements are checked in place */
    const char *state; /* z */
    const char *time;  /* t */
    int dim;           /* dim(z) */
    double t0, t1;
    const Stmt *deriv; /* the dz/dt statement */
    Solver solver;
    Pint pint;
    int checkpoint; /* training keeps the state every `checkpoint` steps and recomputes
                               the steps between in the backward pass; 0 = store every step */
    Loc checkpoint_loc;
    /* `save every h` / `save at [...]`: the state at n_saves increasing times; after the block the
     * state stands for the n_saves saved states (rows of one value), and the model's output is a
     * trajectory [n_saves, dim] per sample. 0 = no save line: the state at t1 only. */
    int n_saves;
    double *save_times; /* [n_saves], in [t0, t1] */
    int *save_steps;    /* [n_saves] fixed-step solvers: the state after save_steps[k] steps */
    Loc save_loc;
} OdeBlock;

/* ---------------------------------------------------------------------------- data */

typedef enum { SRC_NONE, SRC_NPY, SRC_IDX } SourceKind;

typedef struct {
    SourceKind kind;
    const char *file; /* relative to the data folder */
    double scale;     /* idx(..., scale = ...); 1 otherwise */
    int in_out;       /* Jacobian stored [N, dim(in), dim(out)] */
    int defaulted;    /* not written in the spec */
    Loc loc;
} DataSource;

typedef enum { SPLIT_FRACTION, SPLIT_COUNT, SPLIT_TEST_FILES } SplitKind;

typedef struct {
    const char *dir; /* as written, relative to the spec file; NULL = --data folder */
    Loc dir_loc;
    DataSource input, output, jac; /* training (or whole) set */
    DataSource test_input, test_output, test_jac;
    DataSource valid_input, valid_output, valid_jac; /* `valid x = ...` files (kind SRC_NONE: none) */
    SplitKind split;
    double train, test; /* fractions or row counts */
    double valid;       /* the split's valid part, between the train and the test rows:
                               a fraction or a row count; 0 = none */
    Loc split_loc;
} DataSpec;

/* Does the data section give a validation set (a valid part of the split, or valid files)? */
static inline int data_has_valid(const DataSpec *ds) { return ds->valid > 0 || ds->valid_input.kind != SRC_NONE; }

/* ---------------------------------------------------------------------------- loss */

typedef enum { LOSS_L2, LOSS_H1, LOSS_CROSS_ENTROPY } LossKind;
extern const char *const loss_names[];

typedef struct {
    LossKind kind;
    double weight; /* constant weight, or the ramp's start */
    int ramp;      /* weight goes linearly from weight to weight_end over ramp_epochs */
    double weight_end;
    int ramp_epochs;
    int relative;
    Loc loc;
} LossTerm;

/* ---------------------------------------------------------------------------- train */

typedef enum { OPT_ADAM, OPT_ADAMW, OPT_SGD, OPT_COUNT } OptimizerKind;
extern const char *const optimizer_names[OPT_COUNT];
typedef enum { SCHED_CONSTANT, SCHED_LINEAR, SCHED_COSINE, SCHED_STEP, SCHED_COUNT } ScheduleKind;
extern const char *const schedule_names[SCHED_COUNT];

enum { MAX_STEP_MILESTONES = 16 };

typedef struct {
    OptimizerKind optimizer;
    double lr, beta1, beta2, eps, decay, momentum;
    ScheduleKind schedule;
    double end;                     /* linear, cosine: final lr as a fraction of lr */
    double at[MAX_STEP_MILESTONES]; /* step: fractions of the run where lr is multiplied */
    int n_at;
    double factor; /* step */
    int batch;
    int64_t epochs;
    uint64_t seed;
    int f64;            /* precision f64 */
    int fast_math;      /* math fast: f32 activations in float with fast intrinsics (no effect in f64) */
    int64_t eval_every; /* 0 = only at the end */
    /* model selection on the validation set (check_sections.c; all need data_has_valid) */
    int64_t patience;   /* early_stop patience K: stop after K evaluations without a new best
                               validation loss; 0 = never stop early */
    int keep_best;      /* keep best: the --save checkpoint, and the parameters after training,
                               are those of the epoch with the best validation loss */
    int64_t save_every; /* save every K: the --save checkpoint every K epochs (instead of at
                               each evaluation); 0 = at evaluations */
    Loc patience_loc, keep_best_loc, save_every_loc;
    /* an epoch's row order (runtime/shuffle.h): shuffle_block 0 = `shuffle rows` (all rows, the
     * default); B = `shuffle blocks B [window W]`, shuffle_window W (0 when not written: W = B) */
    int64_t shuffle_block, shuffle_window;
} TrainSpec;

/* ---------------------------------------------------------------------------- the model */

typedef struct {
    const char *name;
    const char *path; /* the spec file */
    const char *input, *output;
    int in_dim, out_dim; /* out_dim: the whole output per sample, out_rows x out_cols */
    int out_rows;        /* saved times T of a trajectory output (`save`), else 1 */
    int out_cols;        /* the declared output dimension: one saved state's */
    int trajectory;      /* the output is a trajectory (an ode block with a save line): output data
                               [N, out_rows, out_cols], Jacobians [N, out_rows, out_cols, in_dim] */
    Loc input_loc, output_loc;
    Stmt **body; /* model statements, checked and annotated */
    int n_body;
    Param *params;
    int n_params;
    int64_t n_weights;   /* total parameter count, frozen ones included */
    int64_t n_trainable; /* the trained ones: elements [0, n_trainable) of the buffer */
    Basis *bases;        /* the basis section, in order */
    int n_bases;
    OdeBlock *odes;
    int n_odes;
    int classifier; /* trained with cross_entropy on integer labels */
    DataSpec data;
    LossTerm *loss;
    int n_loss;
    TrainSpec train;
} Model;

/* The trained parameters' elements (the optimiser's length): n_trainable when the model has frozen
 * parameters (a basis's encode/decode layers, placed last), else n_weights (so a Model built by
 * hand without n_trainable still works). */
static inline int64_t model_trainable(const Model *m) {
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].frozen) return m->n_trainable;
    return m->n_weights;
}

/* Looks up a .npy file's shape for project(x, "P.npy"); returns 0 or -1 with err filled. */
typedef int (*NpyShapeFn)(const char *path, int64_t *shape, int *ndim, char *err, size_t errlen);

typedef struct {
    const char *spec_dir; /* folder of the spec file, for project(...) paths */
    NpyShapeFn npy_shape; /* NULL: project() can't be checked */
} CheckOptions;

/* Checks the whole file. Returns the model, or NULL after reporting errors. */
Model *check_file(Arena *a, Diag *d, const AstFile *f, const CheckOptions *opt);

/* `--set key=value` (dino-jit) on a checked model's train settings, by the train section's rules
 * and ranges and with its messages (check_sections.c): epochs, batch, lr, seed, precision,
 * eval_every, patience (0: no early stop), save_every (0: at evaluations), keep_best (0 | 1),
 * and the optimizer's own settings (beta1, beta2, eps: adam and adamw; decay: adamw; momentum:
 * sgd), shuffle (`rows`, `blocks B` or `blocks B window W`, the words of the train section). patience
 * and keep_best need a validation set, which train() checks. Returns 0, or -1 with the message in msg
 * and t unchanged. */
int check_setting(TrainSpec *t, const char *key, const char *val, char *msg, size_t len);

#endif
