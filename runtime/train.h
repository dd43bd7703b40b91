/* train.h - the training loop, evaluation and prediction, independent of the command line.
 *
 * A Trainer owns the host copy of the flat parameter buffer, the optimiser and the shuffle
 * RNG, and drives a backend (backend.h) through epochs of shuffled batches, with metrics,
 * logs, checkpoints and a stop on a NaN loss. Nothing here prints or exits: errors come back
 * as a status (status.h) with the message in err, notes and per-epoch reports go to the
 * caller's callbacks (TrainOptions). */
#ifndef DINO_TRAIN_H
#define DINO_TRAIN_H

#include <stdio.h>

#include "backend.h"
#include "basis.h"
#include "checkpoint.h"
#include "data.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "status.h"

enum { MAX_LOSS_TERMS = 3 }; /* one l2, one h1, one cross_entropy at most (check_sections.c) */

typedef struct {
    double rel_l2, rel_h1, accuracy;
    int has_l2, has_h1, has_acc;
    int64_t rows;
    /* The loss block's loss on the set: each term unweighted (terms[i] for m->loss[i], as the
     * training loss defines it: relative or not), and their sum with the weights of the last
     * epoch trained. has_loss is 0 when the set lacks what a term needs (Jacobians for h1). */
    int has_loss;
    double loss;
    double terms[MAX_LOSS_TERMS];
} Metrics;

/* What train() reports after each epoch (TrainOptions.on_epoch). Valid during the call only. */
typedef struct {
    int64_t epoch, epochs; /* the epoch just finished (1-based) and the planned total */
    int64_t step;          /* optimiser steps so far */
    double seconds;        /* since this train() call started */
    double lr, train_loss; /* the last scheduled rate; the epoch's mean training loss */
    int evaluated;         /* test metrics computed this epoch */
    Metrics test;
    const double *terms; /* [m->n_loss] the epoch's mean training loss terms, unweighted */
    /* Model selection (when TrainOptions.valid has rows): */
    int validated; /* the validation set was evaluated this epoch */
    Metrics valid;
    int improved;       /* ... and its loss is the best so far */
    int64_t best_epoch; /* the epoch of the best validation loss so far (0: none) */
    double best_loss;
    int early_stop; /* early_stop ends training after this epoch */
    const double *monitors;
    int n_monitors; /* Parareal corrections etc. (the CSV log's columns after the metrics) */
    size_t work_per_sample;
    double epoch_seconds; /* this epoch alone (its steps and its evaluation) */
} EpochReport;

/* The level of a message train() passes to TrainOptions.on_message. */
typedef enum {
    DINO_MSG_NOTE,    /* information ("training workspace 12.0 MiB ..."); a quiet caller drops it */
    DINO_MSG_WARNING, /* something the user should fix (a dopri5 block that did not reach t1) */
} MsgLevel;

typedef struct {
    const char *save;     /* checkpoint path, or NULL: written after every evaluation (or every
                               save_every epochs; with keep_best at each new best validation loss)
                               and at the end */
    const Dataset *valid; /* validation set for model selection (NULL or no rows: none); its
                               loss and metrics at every evaluation, early_stop and keep best read it */
    const char *log;      /* CSV log path, or NULL */
    int64_t until;        /* stop after this epoch (and save), the schedule still planned for all; 0 = run all */
    /* Called after every epoch (NULL: none). Nonzero: stop after this epoch (saved when save
     * is set); train() then returns DINO_STOPPED. */
    int (*on_epoch)(const EpochReport *r, void *user);
    /* Notes and warnings, one sentence each without a trailing newline (NULL: dropped). */
    void (*on_message)(int level, const char *text, void *user);
    /* After every step, for a live progress line (NULL: none). loss is the mean loss of the
     * epoch so far when the backend knows it on the host without waiting (CPU), else NaN. */
    void (*on_progress)(int64_t epoch, int64_t step_in_epoch, int64_t steps_in_epoch, double loss, void *user);
    void *user;
    /* Set from elsewhere (a signal handler): train() finishes the current step, saves (when
     * save is set) and returns DINO_STOPPED. A stop inside an epoch first rewinds the model
     * to the start of that epoch (parameters, optimiser, state, RNG), so the checkpoint and a
     * resume repeat the epoch exactly: the result equals that of a run never stopped. */
    volatile int *stop;
} TrainOptions;

/* The point between a step's gradient and its update where a data-parallel layer (MPI on
 * CPUs, NCCL between GPUs) sums across processes; NULL in Trainer.reduce: one process. Each
 * returns a status (status.h). */
typedef struct {
    /* Multiplies the backend's gradient buffer (b->grad_buf, n_weights reals, on the device
     * when b->grad_on_device) by scale, then sums it across processes, in place. A backend's
     * gradient is the mean over the rows it was given; scale is this process's share of the
     * batch's rows (n_rank / n), so that the sum is the mean over the whole batch. */
    int (*gradient)(Backend *b, double scale, void *user);
    /* Sums n doubles across processes, in place: a step's loss (backends with host_loss), and
     * an epoch's [1 + n_monitors] loss and monitor sums (Backend.take_sums). */
    int (*sums)(double *v, int n, void *user);
    void *user;
    /* This process and how many. size > 1: each batch is split by rows, rank r taking rows
     * [n r / size, n (r + 1) / size) of it (uneven shares, none dropped), and the stop flag is
     * summed with each step's loss so that every process stops at the same step. size <= 1:
     * every row on this process, scale 1 (a Reducer for tests). */
    int rank, size;
    int on_device; /* gradient() sums a gradient on the GPU (NCCL); else such a backend is refused */
    /* With on_device: starts the device sum before the first step, on every process (NCCL's
     * communicator), so that the sum can be captured in a CUDA graph, and says in *in_graph
     * whether it may be (NCCL 2.9 or later), with the library's version in version[64].
     * NULL: started at the first gradient, never captured. */
    int (*start_device)(Backend *b, int *in_graph, char *version, size_t len, void *user);
} Reducer;

typedef struct {
    const Model *m;
    Backend *backend; /* set by the caller after trainer_init, on t->P and &t->opt */
    int f64;
    size_t es; /* bytes per element */
    void *P;   /* [n_weights] parameters */
    Optim opt;
    Rng rng;
    TrainState state; /* epochs and steps done, for resuming */
    uint64_t spec_hash;
    const Reducer *reduce; /* NULL: one process */
    /* What the last train() call did about model selection: */
    int64_t stopped_early; /* early_stop ended it after this epoch; 0 = it did not */
    int best_restored;     /* keep best: P, the optimiser and state were set back to the end of
                               the best epoch (state.best_epoch) */
    BasisSet bases;        /* the values of m's bases (basis.h); the frozen layers of P hold them
                               once basis_set_ready */
    int bases_done;        /* trainer_bases ran: reported, frozen layers written */
} Trainer;

/* Gives every basis of the model values (computed from train's rows unless they were loaded from
 * a checkpoint), reports each through o->on_message with its floors on train and test, writes the
 * frozen encode/decode layers into t->P and pushes them to the backend. Nothing to do for a model
 * without bases. Returns DINO_OK, or a status with err set. train() calls it first. */
int trainer_bases(Trainer *t, const Dataset *train_set, const Dataset *test_set, const TrainOptions *o, char *err,
                  size_t errlen);

/* Returns DINO_OK, or DINO_EUSER with the message in err (out of memory). */
int trainer_init(Trainer *t, const Model *m, uint64_t spec_hash, char *err, size_t errlen);
void trainer_free(Trainer *t);

/* Trains until m->train.epochs epochs are done (counting epochs already in t->state), or
 * o->until, or early stopping (m->train.patience evaluations without a lower validation loss;
 * DINO_OK, t->stopped_early set). With m->train.keep_best, a run that ends (all epochs, or an
 * early stop) leaves the trainer as it was at the end of the best epoch: parameters, optimiser
 * moments and training state, so a save or a further train() continues from there; a stop
 * (DINO_STOPPED) or a failure leaves the last state (the --save file holds the best). Returns DINO_OK; DINO_EUSER with the message in err (a NaN or Inf loss: the last
 * good parameters are saved when o->save is set; unwritable files; out of memory);
 * DINO_EINTERNAL (a device failing); DINO_STOPPED after *o->stop or on_epoch asked to stop. */
int train(Trainer *t, const Dataset *train_set, const Dataset *test_set, const TrainOptions *o, char *err,
          size_t errlen);

/* The terminal's line for an epoch: "epoch 3/30  loss 1.2345e-02  lr 0.001  0.52 s  rel_l2 ..."
 * (no newline), from the report of on_epoch. */
void format_epoch(const Model *m, const EpochReport *r, char *buf, size_t len);

/* Metrics and loss of the current parameters on a dataset (the loss weights of epoch
 * t->state.epoch, the last one trained). Returns DINO_OK, or a status with err set. */
int evaluate(Trainer *t, const Dataset *d, Metrics *out, char *err, size_t errlen);

/* Predictions for rows of x [n, in] into y [n, out] and J [n, out, in] (J may be NULL).
 * Returns DINO_OK, or a status with err set (the backend's message). */
int predict_rows(Trainer *t, const void *x, int64_t n, void *y, void *J, char *err, size_t errlen);

#endif
