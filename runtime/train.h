/* train.h - the training loop, evaluation and prediction, independent of the command line.
 *
 * A Trainer owns the host copy of the flat parameter buffer, the optimiser and the shuffle
 * RNG, and drives a backend (backend.h) through epochs of shuffled batches, with metrics,
 * logs, checkpoints and a stop on a NaN loss. */
#ifndef DINO_TRAIN_H
#define DINO_TRAIN_H

#include <stdio.h>

#include "backend.h"
#include "checkpoint.h"
#include "data.h"
#include "model.h"
#include "optim.h"
#include "rng.h"

typedef struct {
    const char *save;       /* checkpoint path, or NULL */
    const char *log;        /* CSV log path, or NULL */
    int quiet;              /* no per-epoch lines */
    int live;               /* a live progress line (stderr is a terminal) */
    int64_t until;          /* stop after this epoch (and save), the schedule still planned for all; 0 = run all */
} TrainOptions;

typedef struct {
    double rel_l2, rel_h1, accuracy;
    int has_l2, has_h1, has_acc;
    int64_t rows;
} Metrics;

typedef struct {
    const Model *m;
    Backend *backend;       /* set by the caller after trainer_init, on t->P and &t->opt */
    int f64;
    size_t es;              /* bytes per element */
    void *P;                /* [n_weights] parameters */
    Optim opt;
    Rng rng;
    TrainState state;       /* epochs and steps done, for resuming */
    uint64_t spec_hash;
} Trainer;

int  trainer_init(Trainer *t, const Model *m, uint64_t spec_hash, char *err, size_t errlen);
void trainer_free(Trainer *t);

/* Trains until m->train.epochs epochs are done (counting epochs already in t->state).
 * Returns 0, 1 after a user-facing failure (NaN loss, unwritable files; reported), 2 internal. */
int train(Trainer *t, const Dataset *train_set, const Dataset *test_set, const TrainOptions *o);

/* Metrics of the current parameters on a dataset. */
void evaluate(Trainer *t, const Dataset *d, Metrics *out);

/* Predictions for rows of x [n, in] into y [n, out] and J [n, out, in] (J may be NULL). */
void predict_rows(Trainer *t, const void *x, int64_t n, void *y, void *J);

#endif
