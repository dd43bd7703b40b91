/* cpu_jit.c - compiles generated C with the host compiler and loads it (see cpu_jit.h). */
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

int cache_dir(char *out, size_t len, char *err, size_t errlen) {
    const char *env = getenv("DINO_CACHE_DIR"), *home = getenv("HOME");
    if (env && *env) snprintf(out, len, "%s", env);
    else if (home && *home) snprintf(out, len, "%s/.cache/dino", home);
    else snprintf(out, len, "/tmp/dino-cache-%d", (int)getuid());
    if (fio_mkdirs(out)) {
        snprintf(err, errlen, "cannot create the cache folder '%s': %s (set DINO_CACHE_DIR to a writable folder)", out,
                 strerror(errno));
        return -1;
    }
    return 0;
}

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

#define LOOKUP(field, sym)                                                                              \
    do {                                                                                                \
        *(void **)&m->field = dlsym(m->handle, sym);                                                   \
        if (!m->field) {                                                                                \
            snprintf(err, errlen, "%s: not a dino module (no %s)", m->path, sym);                      \
            dlclose(m->handle);                                                                          \
            return -1;                                                                                  \
        }                                                                                               \
    } while (0)

int cpu_module_load(const char *source, size_t len, CpuModule *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    const char *cc = getenv("CC");
    if (!cc || !*cc) cc = "cc";
    const char *flags = getenv("DINO_CFLAGS");
    if (!flags || !*flags) flags = "-O3 -march=native -fopenmp";
    char dir[2048];
    if (cache_dir(dir, sizeof dir, err, errlen)) return -1;
    uint64_t h = hash_bytes(flags, strlen(flags), hash_bytes(cc, strlen(cc), hash_bytes(source, len, HASH_START)));
    snprintf(m->path, sizeof m->path, "%s/cpu-%016llx.so", dir, (unsigned long long)h);

    struct stat st;
    if (stat(m->path, &st) != 0) {
        if (!compiler_exists(cc)) {
            snprintf(err, errlen, "the CPU backend compiles generated C, but no C compiler '%s' was found: "
                     "install one (apt-get install gcc) or set CC", cc);
            return -1;
        }
        /* every file of this build has a per-process name, so concurrent first runs of the
         * same spec never see each other's half-written files; only the final rename is shared */
        char src[4200], tmp[4200], log[4200];
        snprintf(src, sizeof src, "%s/cpu-%016llx.%d.c", dir, (unsigned long long)h, (int)getpid());
        snprintf(tmp, sizeof tmp, "%s/cpu-%016llx.so.tmp.%d", dir, (unsigned long long)h, (int)getpid());
        snprintf(log, sizeof log, "%s/cpu-%016llx.%d.log", dir, (unsigned long long)h, (int)getpid());
        FILE *f = fopen(src, "w");
        if (!f || fwrite(source, 1, len, f) != len || fclose(f) != 0) {
            snprintf(err, errlen, "cannot write '%s': %s", src, strerror(errno));
            return -1;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = build(cc, flags, src, tmp, log);
        if (rc != 0 && strstr(flags, "-fopenmp")) {   /* no OpenMP runtime: one thread */
            char noomp[512];
            snprintf(noomp, sizeof noomp, "%s", flags);
            char *o = strstr(noomp, "-fopenmp");
            memset(o, ' ', strlen("-fopenmp"));
            rc = build(cc, noomp, src, tmp, log);
        }
        if (rc != 0 && strstr(flags, "-march=native")) rc = build(cc, "-O3", src, tmp, log);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        m->compile_seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (rc != 0) {
            char tail[1024];
            tail_file(log, tail, sizeof tail);
            snprintf(err, errlen, "the C compiler '%s' failed on the generated source %s (exit %d); its output ends:\n%s",
                     cc, src, rc, tail);
            remove(tmp);
            return -1;
        }
        remove(src);
        remove(log);
        if (rename(tmp, m->path) != 0) {
            snprintf(err, errlen, "cannot move the compiled module into the cache: %s", strerror(errno));
            remove(tmp);
            return -1;
        }
    }
    /* RTLD_NODELETE: the module pulls in the OpenMP runtime, whose worker threads outlive any
     * dlclose; unloading it under them would crash the process at exit. */
    m->handle = dlopen(m->path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!m->handle) {
        /* a corrupt cache entry: rebuild once */
        snprintf(err, errlen, "cannot load '%s': %s (remove it to rebuild)", m->path, dlerror());
        return -1;
    }
    const int *abi = dlsym(m->handle, "dino_abi");
    if (!abi || *abi != DINO_C_ABI) {
        snprintf(err, errlen, "%s: not a dino module of this version", m->path);
        dlclose(m->handle);
        return -1;
    }
    m->in = *(const int *)dlsym(m->handle, "dino_in");
    m->out = *(const int *)dlsym(m->handle, "dino_out");
    m->f64 = *(const int *)dlsym(m->handle, "dino_f64");
    m->n_params = *(const long *)dlsym(m->handle, "dino_n_params");
    m->spec_hash = *(const unsigned long long *)dlsym(m->handle, "dino_spec_hash");
    LOOKUP(predict_work, "dino_predict_work");
    LOOKUP(predict, "dino_predict");
    LOOKUP(train_work, "dino_train_work");
    LOOKUP(train_step, "dino_train_step");
    return 0;
}

void cpu_module_free(CpuModule *m) {
    if (m->handle) dlclose(m->handle);
    m->handle = NULL;
}
