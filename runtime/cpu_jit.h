/* cpu_jit.h - the CPU backend's loader: generated C -> shared object -> function pointers.
 *
 * The source is compiled by the host C compiler ($CC, else cc) with -O3 -march=native and
 * OpenMP when available, cached on disk by a hash of the source and the compile command
 * ($DINO_CACHE_DIR, else ~/.cache/dino), and loaded with dlopen. A cache entry is written
 * atomically (temporary name, then rename), so a crash never leaves a half-written library. */
#ifndef DINO_CPU_JIT_H
#define DINO_CPU_JIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct CpuModule {
    void *handle;
    int in, out, f64;
    long n_params;
    unsigned long long spec_hash;
    long (*predict_work)(int nmax);
    void (*predict)(const void *P, int n, int nmax, const void *x, void *y, void *J, void *work);
    long (*train_work)(int nmax);
    void (*train_step)(const void *P, void *G, int n, int nmax, const void *x, const void *y, const void *J,
                       const int32_t *label, const double *w, double *terms, void *work);
    double compile_seconds;   /* 0 when it came from the cache */
    char path[4096];          /* the shared object */
} CpuModule;

/* Compiles (or finds in the cache) and loads a generated C source. Returns 0, or -1 with a
 * message in err saying what is missing and how to get it. */
int cpu_module_load(const char *source, size_t len, CpuModule *m, char *err, size_t errlen);
void cpu_module_free(CpuModule *m);

/* The cache folder, created if needed: $DINO_CACHE_DIR, else $HOME/.cache/dino, else /tmp. */
int cache_dir(char *out, size_t len, char *err, size_t errlen);

#endif
