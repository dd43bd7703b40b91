/* fast_math.c - the preludes with fast f32 activations (`train { math fast }`).
 *
 * Writes a prelude (prelude_c.h or prelude_cuda.h, as embedded) to the generated file. In the
 * default mode, and always in f64, it is written as it is, so the default generated code is
 * byte for byte what it was. In fast mode the one line of the prelude that defines the
 * activations from activations.def is replaced by those of activations_fast.def (float math,
 * inlined) on the backend's primitives. Nothing here prints or exits. */
#include <string.h>

#include "emit.h"

#include "activations.def"
#include "activations_fast.def"
#include "activations_fast.inc"

/* The two tables have the same rows, in the same order (checked when a file is generated). */
#define ROW_NAME(X, name, ...) #name " "
static const char default_names[] = DINO_ACTIVATION_ROWS(ROW_NAME, _);
static const char fast_names[] = DINO_FAST_ACTIVATION_ROWS(ROW_NAME, _);

/* The line of both preludes that defines act_F, dact_F and d2act_F. */
static const char anchor[] = "\nDINO_ACTIVATION_ROWS(DINO_ACT_FUNCTIONS, _)\n";

static const char cuda_primitives[] =
    "/* fast f32 math (train { math fast }): the activations of activations_fast.def, in float, inlined,\n"
    " * on CUDA's intrinsics (__expf, __fdividef, __sinf, __cosf) instead of the double formulas above. */\n"
    "DINO_DEV float fast_exp(float x) { return __expf(x); }\n"
    "DINO_DEV float fast_div(float a, float b) { return __fdividef(a, b); }\n"
    "DINO_DEV float fast_sin(float x) { return __sinf(x); }\n"
    "DINO_DEV float fast_cos(float x) { return __cosf(x); }\n"
    "DINO_DEV float fast_erf(float x) { return erff(x); }\n";
static const char cuda_rows[] = "DINO_FAST_HELPERS(DINO_DEV)\n"
                                "#undef DINO_ACT_CALL\n"
                                "#define DINO_ACT_CALL DINO_DEV\n"
                                "DINO_FAST_ACTIVATION_ROWS(DINO_ACT_FUNCTIONS, _)\n";
static const char c_primitives[] =
    "/* fast f32 math (train { math fast }): the activations of activations_fast.def, in float\n"
    " * (expf, sinf, cosf, erff) instead of the double formulas above. */\n"
    "static inline float fast_exp(float x) { return expf(x); }\n"
    "static inline float fast_div(float a, float b) { return a / b; }\n"
    "static inline float fast_sin(float x) { return sinf(x); }\n"
    "static inline float fast_cos(float x) { return cosf(x); }\n"
    "static inline float fast_erf(float x) { return erff(x); }\n";
static const char c_rows[] =
    "DINO_FAST_HELPERS(static inline)\n"
    "DINO_FAST_ACTIVATION_ROWS(DINO_ACT_FUNCTIONS, _)\n"
    "/* the default helpers above, unused here (no -Wunused-function) */\n"
    "static real (*const dino_default_helpers[])(real) __attribute__((unused)) = {tanh_r, sigm, "
    "phi, Phi};\n";

int emit_prelude(FILE *out, const char *prelude, int fast, int cuda) {
    const char *at = fast ? strstr(prelude, anchor) : NULL;
    if (!fast) return fputs(prelude, out) < 0 ? -1 : 0;
    if (!at || strcmp(default_names, fast_names)) return -1; /* the prelude or a table changed */
    fwrite(prelude, 1, (size_t)(at - prelude) + 1, out);
    fputs(cuda ? cuda_primitives : c_primitives, out);
    fputs(activations_fast, out);
    fputs(cuda ? cuda_rows : c_rows, out);
    fputs(at + strlen(anchor), out);
    return 0;
}
