/* checkpoint.h - a model's parameters, and the state needed to resume training, as a
 * safetensors file that PyTorch and JAX load directly.
 *
 * Layout of a file written here (tensors in this order):
 *   <Param name>   one per Param in definition order, F32 or F64 (the training precision),
 *                  the Param's shape ([out, in] weights, [out] biases)
 *   __optim.m      [n] first moment (adam, adamw) or momentum buffer (sgd), when present
 *   __optim.v      [n] second moment (adam, adamw)
 *   __basis.<name>.decoder, .encoder [dim, rank], .shift [dim], .eigenvalues [rank] (when
 *                  computed): F64, one set per basis with values (checkpoint_save_bases), with
 *                  metadata basis.<name> = the basis line, method, rank, samples, seed, data key.
 *                  A basis's frozen encode/decode layers are not saved: they follow from it.
 *   __state        I64 [7]: epoch, step, optimiser step, then the 4 RNG words as int64 bit
 *                  patterns (written when opt or st is given; absent parts are 0)
 * metadata: format "dino", spec_hash (16 hex digits), model, precision ("f32" | "f64") and,
 * with opt, optimizer ("adam" | "adamw" | "sgd"); with a validation set (st->best_epoch > 0)
 * best_epoch, best_valid_loss and evals_since_best (a `keep best` checkpoint is written at its
 * best epoch: best_epoch equals the epoch in __state).
 * A reference file from PyTorch holds just the parameters and no metadata; it loads the same
 * way, with no training state. */
#ifndef DINO_CHECKPOINT_H
#define DINO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "basis.h"
#include "model.h"
#include "optim.h"

typedef struct {
    int64_t epoch;   /* epochs completed */
    int64_t step;    /* parameter updates done */
    uint64_t rng[4]; /* the shuffle Rng (rng_save / rng_restore) */
    int has_optim;   /* load: 1 when opt's moments and step were restored from the file */
    int has_state;   /* load: 1 when the file held __state and epoch, step, rng were set */
    /* Model selection on a validation set (train.c), saved as metadata when best_epoch > 0:
   * best_epoch, best_valid_loss (%.17g) and evals_since_best. */
    int64_t best_epoch; /* the epoch with the lowest validation loss so far; 0 = none yet */
    double best_loss;   /* its validation loss */
    int64_t since_best; /* evaluations since then without a lower one (early_stop's count) */
} TrainState;

/* Writes P (the flat parameter buffer, float or double per f64) as m's parameters, then
 * opt's moments (opt may be NULL) and the training state (st may be NULL), atomically
 * (PATH.tmp.<pid>, fsync, rename). Returns 0, or -1 with err set and no file left behind. */
int checkpoint_save(const char *path, const Model *m, const void *P, int f64, const Optim *opt, const TrainState *st,
                    uint64_t spec_hash, char *err, size_t errlen);

/* Reads a checkpoint into P (float or double per f64; F32 and F64 files are both accepted
 * and converted). Every Param must be present with exactly its shape; a tensor that is not
 * a Param and whose name does not start with "__" is an error (both name the tensor), and so
 * is a NaN or Inf. Nothing is written (P, opt, st) unless the whole file checks out.
 *
 * Training state, all optional in the file:
 *   st (may be NULL): when __state is there, epoch, step and rng are set and has_state = 1;
 *     else has_state = 0 and the rest is untouched. has_optim tells what happened to opt.
 *   opt (may be NULL): restored (moments converted to opt's precision, step from __state,
 *     has_optim = 1) when the file records the same optimizer kind and holds every moment
 *     opt has, with [opt->n] elements (another length is an error). Otherwise opt is left
 *     as it is (a fresh optimiser) and has_optim = 0.
 * *hash_matches (may be NULL): 1 when the file's spec_hash equals spec_hash, 0 when it
 * differs, -1 when the file records none (e.g. written by PyTorch).
 * Returns 0, or -1 with err set. */
int checkpoint_load(const char *path, const Model *m, void *P, int f64, Optim *opt, TrainState *st, uint64_t spec_hash,
                    int *hash_matches, char *err, size_t errlen);

/* The same, with the bases: save writes those of bases that have values (bases may be NULL);
 * load gives each basis of m whose decoder the file holds the saved values (origin
 * BASIS_FROM_CHECKPOINT; encoder defaults to the decoder, shift to 0) and leaves the others as
 * they are. The frozen layers of P are not touched: basis_fill_params writes them. */
int checkpoint_save_bases(const char *path, const Model *m, const void *P, int f64, const Optim *opt,
                          const TrainState *st, uint64_t spec_hash, const BasisSet *bases, char *err, size_t errlen);
int checkpoint_load_bases(const char *path, const Model *m, void *P, int f64, Optim *opt, TrainState *st,
                          uint64_t spec_hash, int *hash_matches, BasisSet *bases, char *err, size_t errlen);

#endif
