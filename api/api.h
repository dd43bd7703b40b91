/* api.h - what the files of api/ share: the handles behind dino.h and the error state.
 *
 * api/ is the library's front door: each file implements one part of dino.h over the compiler
 * (compiler/) and the runtime (runtime/). Nothing here prints or exits; a failure sets this
 * thread's error (api_fail) and returns a status. */
#ifndef DINO_API_H
#define DINO_API_H

#include <stdarg.h>
#include <stdint.h>

#include "cpu_jit.h"
#include "ir.h"
#include "frontend.h"
#include "train.h"
#include "dino.h" /* after train.h: dino.h reuses runtime/status.h's names when it is there */

struct dino_spec {
    Frontend fe;            /* arena, source, AST, checked model (NULL after errors), hash */
    int ok;                 /* checked without errors */
    dino_diagnostic *diags; /* [n_diags] as reported */
    size_t n_diags, cap_diags;
    char *text; /* the diagnostics as dinoc prints them */
    size_t text_len;
    char *data_dir;       /* the data section's dir resolved against the spec's folder */
    char *data_files[12]; /* dino_spec_data_files (malloc'd) */
    int n_data_files;
};

typedef struct ReducedPredictor ReducedPredictor; /* reduced.c */

struct dino_model {
    dino_spec *spec;
    Trainer t;     /* parameters, optimiser, training state, backend */
    CpuModule mod; /* the CPU backend's module (handle NULL on CUDA) */
    dino_backend kind;
    char declined[8192]; /* why not the GPU, when AUTO fell back to the CPU */
    int gpu_failed, from_cache;
    dino_open_options opts; /* as opened (on_message, user) */
    volatile int stop;      /* dino_request_stop */
    long long unfinished;   /* dino_predict_unfinished: rows of the last prediction */
    char unfinished_msg[1024];
    volatile int *stop_also; /* another model's flag that stops this one too (reduced.c's inner model) */
    void *conv;              /* dino_predict's conversions to and from the model's precision, kept */
    size_t conv_bytes;
    ReducedPredictor *reduced; /* dino_predict_reduced's inner model, made on first use (reduced.c) */
    int is_inner;              /* reduced.c's inner model: it never takes the reduced path itself */
};

struct dino_data {
    const dino_model *model;
    Dataset train, valid, test; /* valid.n == 0: no validation set */
    /* by dino_set: released when allowed (dino_data_allow_release) by api_data_release */
    int allow_release[3], released[3], had_jac[3];
};

/* One set's full-space arrays (x, y, J) released when the owner allowed it (the reduced path,
 * after projecting them); n, the labels and the other sets stay. */
void api_data_release(const dino_data *data, dino_set set);
/* One set in a model's precision, filled block by block from rows in f64: dino_data_from_arrays's
 * checks (finite values; a relative term's all-zero training rows, reported at the end) and
 * conversion, without a whole f64 copy (the reduced path projects into it, api/reduced.c).
 * api_set_begin allocates n rows (labels copied for a classifier), api_set_rows converts rows
 * r0 .. r0 + b (y, J: NULL when the set has none), api_set_end reports the zero rows. which names
 * the set ("training": the zero-row check). On an error *d is freed. */
typedef struct {
    const Model *m;
    Dataset *d;
    const char *which;
    int64_t zeros[MAX_LOSS_TERMS], first[MAX_LOSS_TERMS];
} ApiSetFill;
dino_status api_set_begin(ApiSetFill *f, const dino_model *md, long long n, int has_y, int has_J, const int *labels,
                          Dataset *d, const char *which);
dino_status api_set_rows(ApiSetFill *f, long long r0, long long b, const double *x, const double *y, const double *J);
dino_status api_set_end(ApiSetFill *f);

/* The data's sets (set, or -1: every one) in the model's training precision: a set that
 * dino_data_load kept in float64 for float32 training (data_load_sets_source; the reduced path
 * projects it as it is) is converted, as the load would have converted it, before the model reads
 * it (the full-space graph, dino_evaluate). DINO_OK, or DINO_EUSER when memory runs out. */
dino_status api_data_precision(const dino_data *data, int set);
/* DINO_EUSER with a message starting with what when set (-1: any set) was released; else DINO_OK. */
dino_status api_data_check(const dino_data *data, int set, const char *what);
/* DINO_OK, or DINO_EUSER naming the row and column of the first NaN or Inf of x [n, in] (double
 * when f64, else float): the check of every prediction's input (predict.c). */
dino_status api_finite_input(const void *x, int f64, long long n, int64_t in);

/* Sets this thread's error (printf-style) and returns status. complete: the message is a whole
 * diagnostic naming its file, printed as it is. */
dino_status api_fail(dino_status status, int complete, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Returns CALL (a dino_status expression) run under an arena guard (arena.h): running out of
 * memory inside the compiler becomes DINO_EINTERNAL with a message, never an exit. */
#define API_GUARDED(call)                                                                                      \
    do {                                                                                                       \
        ArenaGuard guard_;                                                                                     \
        if (setjmp(guard_.jump)) return api_fail(DINO_EINTERNAL, 0, "out of memory while compiling the spec"); \
        arena_guard_push(&guard_);                                                                             \
        dino_status status_ = (call);                                                                          \
        arena_guard_pop(&guard_);                                                                              \
        return status_;                                                                                        \
    } while (0)

/* reduced.c: trains md in reduced coordinates when its input enters only through encode with an
 * orthonormal basis whose values are known (and its output too when it leaves through decode with
 * an orthonormal basis; then returns 1 with the outcome in *status), else says why not through
 * opts->on_message and returns 0 (train as usual). reduced_free: dino_model_free's part. */
int reduced_train(dino_model *md, const dino_data *data, const dino_train_options *opts, dino_status *status);
/* Whether md's training may take the reduced path (reduced_train), as far as the spec's structure
 * tells before the bases have values: then dino_data_load keeps float64 files as float64 for
 * float32 training (the projection reads them in f64; nothing is converted whole). */
int reduced_may_run(const dino_model *md);
void reduced_free(dino_model *md);

/* The runtime's (train.h) Jacobian mode and precision from the API's. */
JacMode api_jac_mode(dino_jacobian j);

#endif
