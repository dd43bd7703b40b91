/* emit.h - the emitters: IR programs -> source text (emit_c.c for the CPU backend; the
 * CUDA emitter comes with the GPU backend). */
#ifndef DINO_EMIT_H
#define DINO_EMIT_H

#include <stdint.h>
#include <stdio.h>

#include "ir.h"

/* The interface of a generated CPU module (what dino-jit looks up with dlsym):
 *
 *   const int  dino_abi;                 DINO_C_ABI
 *   const int  dino_in, dino_out;        input and output dimension
 *   const long dino_n_params;            elements in the flat parameter buffer
 *   const int  dino_f64;                 real is double
 *   const unsigned long long dino_spec_hash;
 *   long dino_predict_work(int nmax);    workspace (reals) for batches up to nmax
 *   void dino_predict(const real *P, int n, int nmax, const real *x, real *y, real *J, real *work);
 *        x [n, in] -> y [n, out], J [n, out, in] (J may be NULL; classifiers give no J)
 *   long dino_train_work(int nmax);
 *   void dino_train_step(const real *P, real *G, int n, int nmax, const real *x, const real *y,
 *                        const real *J, const int32_t *label, const double *w, double *terms,
 *                        real *work);
 *        one batch: G = d loss / d P (overwritten), terms[i] = mean of loss term i over the
 *        batch (unweighted), with the term weights w[i] applied to the gradient. */
enum { DINO_C_ABI = 1 };

typedef struct {
    int f64;                    /* real is double */
    uint64_t spec_hash;
} EmitOptions;

/* Returns 0, or -1 with a message in err (e.g. a project() matrix that can't be read). */
int emit_c(FILE *out, const Model *m, const Programs *pr, const EmitOptions *opt, char *err, size_t errlen);

uint64_t hash_bytes(const void *data, size_t len, uint64_t h);

/* checked model -> IR programs -> C source in memory (malloc'd, *len bytes), for dino-jit and
 * the tests. Returns NULL with a message in err when the model can't be generated. */
char *generate_c(Arena *a, const Model *m, JacMode jac, int f64, uint64_t spec_hash, size_t *len, char *err,
                 size_t errlen);

#endif
