/* ops.h - the table of element-wise activations.
 *
 * One X-macro row per activation: its name in .dino source and a one-line meaning. The checker
 * expands it into the name table; the IR and the emitters (later stages) add columns for the
 * value, the derivative and the second derivative, so adding an activation is one line here
 * plus its formulas. */
#ifndef DINO_OPS_H
#define DINO_OPS_H

#define DINO_ACTIVATIONS(X)                                              \
    X(relu,      "max(x, 0)")                                            \
    X(tanh,      "tanh(x)")                                              \
    X(sigmoid,   "1 / (1 + exp(-x))")                                    \
    X(gelu,      "x * Phi(x), the exact erf form")                       \
    X(gelu_tanh, "tanh approximation of gelu")                           \
    X(silu,      "x * sigmoid(x)")                                       \
    X(softplus,  "log(1 + exp(x))")                                      \
    X(elu,       "x if x > 0 else exp(x) - 1")                           \
    X(sin,       "sin(x)")

typedef enum {
#define X(name, doc) ACT_##name,
    DINO_ACTIVATIONS(X)
#undef X
    ACT_COUNT
} Activation;

extern const char *const activation_names[ACT_COUNT];
/* The activation called `name`, or -1. */
int activation_lookup(const char *name);

#endif
