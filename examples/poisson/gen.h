/* gen.h: options and driver of dino-gen-poisson, shared by gen_poisson.c and selftest.c. */
#ifndef DINO_EXAMPLE_GEN_H
#define DINO_EXAMPLE_GEN_H

#include <stdint.h>
#include <stdio.h>

#define GEN_NAME "dino-gen-poisson"

/* Limits enforced by gen_parse. */
#define GEN_MAX_ROWS 100000000L
#define GEN_MIN_GRID 3
#define GEN_MAX_GRID 255
#define GEN_MAX_KL 4096
#define GEN_MAX_SENSORS 64
#define GEN_MAX_REACTION 1e6

typedef struct {
    const char *out; /* output directory, created if missing */
    long rows;       /* N */
    int kl;          /* K = dim m */
    int sensors;     /* S; dim q = S*S */
    int grid;        /* n interior points per side */
    uint64_t seed;
    double reaction; /* c */
    int quiet;
    int selftest;
} gen_opts;

void gen_defaults(gen_opts *o);

/* Parses argv into o. Returns 0 (run), 2 (help printed to out) or 1 (error printed to err). */
int gen_parse(int argc, char **argv, gen_opts *o, FILE *out, FILE *err);

/* Generates the data set. Returns 0, or 1 after printing a message to err. */
int gen_run(const gen_opts *o, FILE *err);

/* The tests behind --selftest. Returns the process exit status (0 = all passed). */
int gen_selftest(int quiet);

#endif
