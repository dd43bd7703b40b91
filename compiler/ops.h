/* ops.h - the activations: their names and meanings from activations.def (one row per
 * activation, with its formulas), expanded into the enum and the name table the checker uses. */
#ifndef DINO_OPS_H
#define DINO_OPS_H

#include "activations.def"

/* X(name, doc) for each activation, in the order of activations.def */
#define DINO_ACT_NAME_DOC(X, name, doc, ...) X(name, doc)
#define DINO_ACTIVATIONS(X) DINO_ACTIVATION_ROWS(DINO_ACT_NAME_DOC, X)

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
