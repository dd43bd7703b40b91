/* cpu_jit.c - compiles generated C with the host compiler and loads it (see cpu_jit.h).
 *
 * cpu_module_load: key -> entry path; a sound entry (cache_entry_check) is loaded and its
 * dino_cache_key compared with the key; anything else (no entry, a damaged one, one that does
 * not load or is not the module for this key) compiles the source into a per-process file,
 * stores it as the entry (cache_entry_write: atomically, with its integrity record) and loads
 * that, at most once per call. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "abi.h"
#include "cpu_jit.h"
#include "fileio.h"
#include "source.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Runs cmd through the shell with its output in log; returns the exit status. */
static int run(const char *cmd) {
    int rc = system(cmd);
    if (rc == -1) return -1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static int compiler_exists(const char *cc) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "command -v '%s' >/dev/null 2>&1", cc);
    return run(cmd) == 0;
}

static void tail_file(const char *path, char *out, size_t len) {
    FILE *f = fopen(path, "r");
    out[0] = 0;
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)len - 1 ? size - (long)len + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t n = fread(out, 1, len - 1, f);
    out[n] = 0;
    fclose(f);
}

static int build(const char *cc, const char *flags, const char *src, const char *so, const char *log) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' %s -fPIC -shared -o '%s' '%s' -lm >'%s' 2>&1", cc, flags, so, src, log);
    return run(cmd);
}

/* Appended to the source it compiles: the module names the key it was built for. */
static const char key_symbol[] = "dino_cache_key";

/* Compiles source into the per-process shared object so (dir/cpu-KEY.PID.so). 0, or -1 with
 * err set (the source and the compiler's log are then kept for the user). */
static int compile(const char *cc, const char *flags, const char *source, size_t len, uint64_t key, const char *dir,
                   char *so, size_t so_len, double *secs, char *err, size_t errlen) {
    if (!compiler_exists(cc)) {
        snprintf(err, errlen,
                 "the CPU backend compiles generated C, but no C compiler '%s' was found: "
                 "install one (apt-get install gcc) or set CC",
                 cc);
        return -1;
    }
    /* every file of this build has a per-process name, so concurrent first runs of the same
     * spec never see each other's half-written files; only the entry's rename is shared */
    char src[4200], log[4200];
    unsigned long long k = (unsigned long long)key;
    snprintf(src, sizeof src, "%s/cpu-%016llx.%d.c", dir, k, (int)getpid());
    snprintf(so, so_len, "%s/cpu-%016llx.%d.so", dir, k, (int)getpid());
    snprintf(log, sizeof log, "%s/cpu-%016llx.%d.log", dir, k, (int)getpid());
    FILE *f = fopen(src, "w");
    int ok = f && fwrite(source, 1, len, f) == len &&
        fprintf(f, "\nconst unsigned long long %s = 0x%016llxull;\n", key_symbol, k) > 0;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) {
        snprintf(err, errlen, "cannot write '%s': %s", src, strerror(errno));
        return -1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = build(cc, flags, src, so, log);
    if (rc != 0 && strstr(flags, "-fopenmp")) { /* no OpenMP runtime: one thread */
        char noomp[512];
        snprintf(noomp, sizeof noomp, "%s", flags);
        char *o = strstr(noomp, "-fopenmp");
        if (o) memset(o, ' ', strlen("-fopenmp"));
        rc = build(cc, noomp, src, so, log);
    }
    if (rc != 0 && strstr(flags, "-march=native")) rc = build(cc, "-O3", src, so, log);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (rc != 0) {
        char tail[1024];
        tail_file(log, tail, sizeof tail);
        snprintf(err, errlen, "the C compiler '%s' failed on the generated source %s (exit %d); its output ends:\n%s",
                 cc, src, rc, tail);
        remove(so);
        return -1;
    }
    remove(src);
    remove(log);
    return 0;
}

/* dlopen path and read the module's symbols. 0, or -1 with why set (and nothing held). */
static int open_module(const char *path, uint64_t key, CpuModule *m, char *why, size_t whylen) {
    /* RTLD_NODELETE: the module pulls in the OpenMP runtime, whose worker threads outlive any
     * dlclose; unloading it under them would crash the process at exit. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, whylen, "it does not load: %s", e ? e : "unknown error");
        return -1;
    }
    const int *abi = dlsym(h, "dino_abi");
    const unsigned long long *built_for = dlsym(h, key_symbol);
    const int *in = dlsym(h, "dino_in"), *out = dlsym(h, "dino_out"), *f64 = dlsym(h, "dino_f64");
    const long *n_params = dlsym(h, "dino_n_params");
    struct {
        void **field;
        const char *sym;
    } fn[] = {{(void **)&m->predict_work, "dino_predict_work"},
              {(void **)&m->predict, "dino_predict"},
              {(void **)&m->train_work, "dino_train_work"},
              {(void **)&m->train_step, "dino_train_step"}};
    const char *missing = !abi ? "dino_abi"
        : !built_for           ? key_symbol
        : !in                  ? "dino_in"
        : !out                 ? "dino_out"
        : !f64                 ? "dino_f64"
        : !n_params            ? "dino_n_params"
                               : NULL;
    for (size_t i = 0; i < sizeof fn / sizeof fn[0]; i++)
        if (!(*fn[i].field = dlsym(h, fn[i].sym)) && !missing) missing = fn[i].sym;
    if (missing) snprintf(why, whylen, "not a dino module (no %s)", missing);
    else if (*abi != DINO_C_ABI) snprintf(why, whylen, "a dino module of another version (ABI %d)", *abi);
    else if (*built_for != key) snprintf(why, whylen, "the module of another source (key %016llx)", *built_for);
    if (missing || *abi != DINO_C_ABI || *built_for != key) {
        dlclose(h);
        return -1;
    }
    *(void **)&m->predict_terms = dlsym(h, "dino_predict_terms"); /* optional: NULL, no terms */
    m->handle = h;
    m->in = *in;
    m->out = *out;
    m->f64 = *f64;
    m->n_params = *n_params;
    return 0;
}

/* The value of `dino_spec_hash = 0x...` in the source, 0 if none. */
static unsigned long long spec_hash_of(const char *source, size_t len) {
    static const char what[] = "dino_spec_hash = 0x";
    size_t n = sizeof what - 1;
    for (size_t i = 0; i + n < len; i++)
        if (memcmp(source + i, what, n) == 0) return strtoull(source + i + n, NULL, 16);
    return 0;
}

int cpu_module_load(const char *source, size_t len, CpuModule *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    const char *cc = getenv("CC");
    if (!cc || !*cc) cc = "cc";
    const char *flags = getenv("DINO_CFLAGS");
    if (!flags || !*flags) flags = "-O3 -march=native -fopenmp";
    char dir[2048];
    if (cache_dir(dir, sizeof dir, err, errlen)) return -1;
    uint64_t tool = cache_toolchain_id(cc, flags);
    uint64_t key =
        hash_bytes(&tool, sizeof tool,
                   hash_bytes(flags, strlen(flags) + 1, hash_bytes(cc, strlen(cc) + 1, cache_code_hash(source, len))));
    snprintf(m->path, sizeof m->path, "%s/cpu-%016llx.so", dir, (unsigned long long)key);
    m->spec_hash = spec_hash_of(source, len);

    char why[1024] = "";
    size_t n;
    int state = cache_entry_check(m->path, key, &n, why, sizeof why);
    int opened_bad = 0;
    if (state == 0) {
        if (open_module(m->path, key, m, why, sizeof why) == 0) return 0;
        opened_bad = 1;
    }
    if (state != 1)
        fio_errf(m->note, sizeof m->note, "the cached module %s was damaged (%s); rebuilt it", m->path, why);

    char so[4200];
    if (compile(cc, flags, source, len, key, dir, so, sizeof so, &m->compile_seconds, err, errlen)) return -1;
    FileMap built;
    char werr[512] = "";
    int stored = fio_map(so, &built, werr, sizeof werr) == 0 && built.len > 0 &&
        cache_entry_write(m->path, built.data, built.len, key, werr, sizeof werr) == 0;
    fio_unmap(&built);
    /* Load what was just compiled: from the entry, or from the build itself when the entry could
     * not be stored or a module of the entry's name is already loaded (a bad one, which
     * RTLD_NODELETE keeps, and which dlopen would return again for the same name). */
    const char *load = stored && !opened_bad ? m->path : so;
    int rc = open_module(load, key, m, why, sizeof why);
    remove(so);
    if (rc) {
        snprintf(err, errlen, "cannot load the freshly compiled module %s: %s", load, why);
        return -1;
    }
    return 0;
}

void cpu_module_free(CpuModule *m) {
    if (m->handle) dlclose(m->handle);
    m->handle = NULL;
}
