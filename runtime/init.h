/* init.h - default initialisation of a model's parameters in the one flat parameter buffer.
 *
 * Weights (ndim 2, [out, in]): truncated normal with std = sqrt(1 / fan_in), cut at 2 std
 * (a draw with |z| > 2 is thrown away and drawn again, so |w| <= 2 std). Biases (ndim 1): 0.
 * This is CONVENTIONS.md's "Default initialisation". */
#ifndef DINO_INIT_H
#define DINO_INIT_H

#include <stdint.h>

#include "model.h"

/* Fills P[params[i].offset .. + params[i].size) for every i; P is float (f64 == 0) or double
 * (f64 == 1). Elements of P outside every parameter are not touched.
 *
 * Draw order (reproducible from seed alone, independent of precision): one Rng seeded with
 * rng_seed(seed); the parameters in definition order (i = 0, 1, ...); within a weight its
 * elements in row-major order (w[0][0], w[0][1], ..., the flat buffer order); for each
 * element rng_normal until |z| <= 2, then w = z * std (computed in double, rounded once to
 * float in f32). Biases use no draws. fan_in is Param.fan_in (shape[1] when that is not
 * positive). */
void init_params(const Param *params, int n_params, void *P, int f64, uint64_t seed);

#endif
