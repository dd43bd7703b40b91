/* cpu_jit.h - the CPU backend's loader: generated C -> shared object -> function pointers.
 *
 * The source is compiled by the host C compiler ($CC, else cc) with $DINO_CFLAGS, else -O3
 * -march=native and OpenMP when available, cached on disk (cache.h: $DINO_CACHE_DIR, else
 * ~/.cache/dino) under a key made of the code (without the lines that only name the spec), the
 * compiler, the flags and what the compiler resolves them to on this host (-march=native's
 * CPU), and loaded with dlopen. The entry is checked before it is loaded (its integrity record:
 * length, content hash, key) and the module after (its dino_cache_key, which the loader appends
 * to the source it compiles); a damaged or foreign entry is rebuilt once and the caller gets a
 * note saying so. */
#ifndef DINO_CPU_JIT_H
#define DINO_CPU_JIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct CpuModule {
    void *handle;
    int in, out, f64;
    long n_params;
    unsigned long long spec_hash; /* the dino_spec_hash of the source given to cpu_module_load (the
                                     module may have been compiled from an edit of the same spec) */
    long (*predict_work)(int nmax);
    void (*predict)(const void *P, int n, int nmax, const void *x, void *y, void *J, void *work);
    /* dino_predict that also copies the program's terms[] (abi.h, TermLayout: the Parareal
     * corrections and gates, dopri5's step control) into terms (n_terms doubles); NULL in a
     * module without it */
    void (*predict_terms)(const void *P, int n, int nmax, const void *x, void *y, void *J, void *work, double *terms);
    long (*train_work)(int nmax);
    void (*train_step)(const void *P, void *G, int n, int nmax, const void *x, const void *y, const void *J,
                       const int32_t *label, const double *w, double *terms, void *work);
    double compile_seconds; /* 0 when it came from the cache */
    char path[4096];        /* the shared object (the cache entry) */
    char note[1024];        /* "" or one line for the caller to show: a damaged cache entry was
                                 rebuilt, and why (the library prints nothing itself) */
} CpuModule;

/* Compiles (or finds in the cache) and loads a generated C source. Returns 0 (m->note may say
 * that a damaged cache entry was rebuilt), or -1 with a message in err saying what is missing
 * and how to get it. */
int cpu_module_load(const char *source, size_t len, CpuModule *m, char *err, size_t errlen);
void cpu_module_free(CpuModule *m);

#include "cache.h" /* cache_dir, cache_info, cache_clear */

#endif
