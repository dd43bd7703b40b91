/* nvrtc.c - NVRTC loaded with dlopen: CUDA source -> PTX / CUBIN (see nvrtc.h).
 *
 * The few NVRTC types and entry points used are declared here (they are a stable C API), so
 * building dino needs no CUDA headers. Must not link against CUDA. */
#include "nvrtc.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------- the API */

typedef int nvrtcResult; /* an enum in nvrtc.h; 0 = NVRTC_SUCCESS */
typedef struct _nvrtcProgram *nvrtcProgram;

static struct {
    void *handle;
    char path[512];
    nvrtcResult (*Version)(int *major, int *minor);
    nvrtcResult (*CreateProgram)(nvrtcProgram *prog, const char *src, const char *name, int num_headers,
                                 const char *const *headers, const char *const *include_names);
    nvrtcResult (*CompileProgram)(nvrtcProgram prog, int num_options, const char *const *options);
    nvrtcResult (*GetProgramLogSize)(nvrtcProgram prog, size_t *size);
    nvrtcResult (*GetProgramLog)(nvrtcProgram prog, char *log);
    nvrtcResult (*GetPTXSize)(nvrtcProgram prog, size_t *size);
    nvrtcResult (*GetPTX)(nvrtcProgram prog, char *ptx);
    nvrtcResult (*GetCUBINSize)(nvrtcProgram prog, size_t *size); /* 11.1+; NULL before */
    nvrtcResult (*GetCUBIN)(nvrtcProgram prog, char *cubin);
    nvrtcResult (*GetNumSupportedArchs)(int *n); /* 11.2+; NULL before */
    nvrtcResult (*GetSupportedArchs)(int *archs);
    nvrtcResult (*DestroyProgram)(nvrtcProgram *prog);
    const char *(*GetErrorString)(nvrtcResult r);
    char error[4096]; /* why loading failed */
} nv;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

/* ---------------------------------------------------------------------------- loading */

static void add_tried(char *tried, size_t len, const char *name) {
    size_t used = strlen(tried);
    if (used + 3 < len) snprintf(tried + used, len - used, "%s%s", used ? ", " : "", name);
}

/* Opens the first library that resolves the required entry points. */
static int try_open(const char *name, char *tried, size_t tried_len, char *last, size_t last_len) {
    add_tried(tried, tried_len, name);
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(last, last_len, "%s", e ? e : "unknown error");
        return 0;
    }
#define SYM(field, symbol) *(void **)&nv.field = dlsym(h, symbol)
    SYM(Version, "nvrtcVersion");
    SYM(CreateProgram, "nvrtcCreateProgram");
    SYM(CompileProgram, "nvrtcCompileProgram");
    SYM(GetProgramLogSize, "nvrtcGetProgramLogSize");
    SYM(GetProgramLog, "nvrtcGetProgramLog");
    SYM(GetPTXSize, "nvrtcGetPTXSize");
    SYM(GetPTX, "nvrtcGetPTX");
    SYM(GetCUBINSize, "nvrtcGetCUBINSize");
    SYM(GetCUBIN, "nvrtcGetCUBIN");
    SYM(GetNumSupportedArchs, "nvrtcGetNumSupportedArchs");
    SYM(GetSupportedArchs, "nvrtcGetSupportedArchs");
    SYM(DestroyProgram, "nvrtcDestroyProgram");
    SYM(GetErrorString, "nvrtcGetErrorString");
#undef SYM
    if (!nv.Version || !nv.CreateProgram || !nv.CompileProgram || !nv.GetProgramLogSize || !nv.GetProgramLog ||
        !nv.GetPTXSize || !nv.GetPTX || !nv.DestroyProgram || !nv.GetErrorString) {
        snprintf(last, last_len, "%s lacks the NVRTC entry points", name);
        dlclose(h);
        return 0;
    }
    if (!nv.GetCUBINSize || !nv.GetCUBIN) nv.GetCUBINSize = NULL, nv.GetCUBIN = NULL;
    if (!nv.GetNumSupportedArchs || !nv.GetSupportedArchs) nv.GetNumSupportedArchs = NULL, nv.GetSupportedArchs = NULL;
    nv.handle = h;
    snprintf(nv.path, sizeof nv.path, "%s", name);
    return 1;
}

static void load(void) {
    static const char *const sonames[] = {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"};
    char tried[1400] = "", last[512] = "not found", path[512];
    const char *env = getenv("DINO_NVRTC");
    if (env && *env && try_open(env, tried, sizeof tried, last, sizeof last)) return;
    for (size_t i = 0; i < sizeof sonames / sizeof *sonames; i++)
        if (try_open(sonames[i], tried, sizeof tried, last, sizeof last)) return;
    const char *dirs[] = {getenv("CUDA_HOME"), getenv("CUDA_PATH"), "/usr/local/cuda"};
    for (size_t d = 0; d < sizeof dirs / sizeof *dirs; d++) {
        if (!dirs[d] || !*dirs[d]) continue;
        for (size_t i = 0; i < sizeof sonames / sizeof *sonames; i++) {
            snprintf(path, sizeof path, "%s/lib64/%s", dirs[d], sonames[i]);
            if (try_open(path, tried, sizeof tried, last, sizeof last)) return;
        }
    }
    snprintf(nv.error, sizeof nv.error,
             "NVRTC (the CUDA run-time compiler) was not found; tried %s (last error: %s). Install the CUDA "
             "toolkit or its NVRTC package (e.g. cuda-nvrtc, or pip install nvidia-cuda-nvrtc-cu12 and add its lib "
             "folder to LD_LIBRARY_PATH), set CUDA_HOME to the toolkit, or set DINO_NVRTC to the library's path",
             tried, last);
}

int nvrtc_load(char *err, size_t errlen) {
    pthread_once(&load_once, load);
    if (nv.handle) return NVRTC_OK;
    if (err && errlen) snprintf(err, errlen, "%s", nv.error);
    return NVRTC_MISSING;
}

int nvrtc_version(int *major, int *minor) {
    if (nvrtc_load(NULL, 0)) return NVRTC_MISSING;
    return nv.Version(major, minor) == 0 ? NVRTC_OK : NVRTC_FAILED;
}

const char *nvrtc_path(void) { return nvrtc_load(NULL, 0) == NVRTC_OK ? nv.path : NULL; }

int nvrtc_supported_archs(int *archs, int max) {
    if (nvrtc_load(NULL, 0) || !nv.GetNumSupportedArchs) return -1;
    int count = 0, all[256];
    if (nv.GetNumSupportedArchs(&count) != 0 || count <= 0 || count > 256) return -1;
    if (nv.GetSupportedArchs(all) != 0) return -1;
    for (int i = 0; i < count && i < max; i++) archs[i] = all[i];
    return count < max ? count : max;
}

int nvrtc_arch_supported(int sm) {
    int archs[256], count = nvrtc_supported_archs(archs, 256);
    if (count < 0) return -1;
    for (int i = 0; i < count; i++)
        if (archs[i] == sm) return 1;
    return 0;
}

/* ---------------------------------------------------------------------------- compiling */

static int speed_unsupported; /* this NVRTC rejected the option: compile without it */

/* NVRTC's optimiser takes most of a compile (node_mnist, sm_90: 29 s at full optimisation,
 * 9 s with --Ofast-compile=min, 3.3 s with max). min keeps nearly all of the code's speed. */
const char *nvrtc_speed_option(void) {
    if (speed_unsupported) return "";
    const char *env = getenv("DINO_NVRTC_OPT");
    if (!env || !*env || strcmp(env, "min") == 0) return "--Ofast-compile=min";
    if (strcmp(env, "mid") == 0) return "--Ofast-compile=mid";
    if (strcmp(env, "max") == 0) return "--Ofast-compile=max";
    return ""; /* "full" (or anything else): NVRTC's default, full optimisation */
}

/* The number in "sm_90", "compute_90", "sm90" or "90"; -1 if there is none. */
static int arch_number(const char *arch) {
    const char *p = arch;
    if (strncmp(p, "compute_", 8) == 0) p += 8;
    else if (strncmp(p, "sm_", 3) == 0) p += 3;
    else if (strncmp(p, "sm", 2) == 0) p += 2;
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v <= 0 || v > 10000) return -1;
    /* keep a suffix such as the "a" of sm_90a */
    return *end == 0 || (end[0] >= 'a' && end[0] <= 'z' && end[1] == 0) ? (int)v : -1;
}

static char *fetch_log(nvrtcProgram prog) {
    size_t size = 0;
    if (nv.GetProgramLogSize(prog, &size) != 0) size = 0;
    char *log = malloc(size + 1);
    if (!log) return NULL;
    log[0] = 0;
    if (size && nv.GetProgramLog(prog, log) != 0) log[0] = 0;
    log[size] = 0;
    return log;
}

/* The first few lines of a log, for err. */
static void log_head(const char *log, char *out, size_t len) {
    size_t n = 0;
    int lines = 0;
    while (log[n] && lines < 8 && n + 1 < len) {
        if (log[n] == '\n') lines++;
        n++;
    }
    snprintf(out, len, "%.*s", (int)n, log);
    while (n && (out[n - 1] == '\n' || n >= len)) out[--n] = 0;
}

int nvrtc_compile(const char *src, const char *name, const char *arch, int want_cubin, char **out, size_t *out_len,
                  char **log, char *err, size_t errlen) {
    return nvrtc_compile_with(src, name, arch, want_cubin, NULL, out, out_len, log, err, errlen);
}

int nvrtc_compile_with(const char *src, const char *name, const char *arch, int want_cubin, const char *extra,
                       char **out, size_t *out_len, char **log, char *err, size_t errlen) {
    *out = NULL;
    *out_len = 0;
    if (log) *log = NULL;
    int rc = nvrtc_load(err, errlen);
    if (rc) return rc;
    int sm = arch_number(arch);
    if (sm < 0) {
        snprintf(err, errlen, "bad GPU architecture '%s' (expected e.g. sm_80 or compute_80)", arch);
        return NVRTC_FAILED;
    }
    if (want_cubin && !nv.GetCUBIN) {
        snprintf(err, errlen, "%s is older than 11.1 and cannot produce CUBIN; ask for PTX", nv.path);
        return NVRTC_NO_CUBIN;
    }
    const char *digits = arch + strcspn(arch, "0123456789");
    char target[32], option[64];
    snprintf(target, sizeof target, "%s_%s", want_cubin ? "sm" : "compute", digits);
    snprintf(option, sizeof option, "--gpu-architecture=%s", target);
    /* the architecture first: NVRTC rejects an unknown one as an invalid option, which would
     * otherwise read as "this NVRTC lacks --Ofast-compile" (issue 19, finding 4) */
    int archs[256], n_archs = nvrtc_supported_archs(archs, 256);
    if (n_archs > 0) {
        int known = 0;
        for (int i = 0; i < n_archs; i++) known |= archs[i] == sm;
        if (!known) {
            snprintf(err, errlen, "%s cannot compile for %s: it supports sm_%d to sm_%d", nv.path, target, archs[0],
                     archs[n_archs - 1]);
            return NVRTC_FAILED;
        }
    }
    const char *speed = nvrtc_speed_option();
    const char *options[3] = {option};
    int n_options = 1;
    if (extra && *extra) options[n_options++] = extra;
    if (*speed) options[n_options++] = speed;

    nvrtcProgram prog = NULL;
    nvrtcResult r = nv.CreateProgram(&prog, src, name, 0, NULL, NULL);
    if (r != 0) {
        snprintf(err, errlen, "NVRTC could not create program %s: %s", name, nv.GetErrorString(r));
        return NVRTC_FAILED;
    }
    r = nv.CompileProgram(prog, n_options, options);
    if (r == 5 && *speed) { /* NVRTC_ERROR_INVALID_OPTION: an NVRTC older than the option */
        nv.DestroyProgram(&prog);
        speed_unsupported = 1;
        if ((r = nv.CreateProgram(&prog, src, name, 0, NULL, NULL)) != 0) {
            snprintf(err, errlen, "NVRTC could not create program %s: %s", name, nv.GetErrorString(r));
            return NVRTC_FAILED;
        }
        r = nv.CompileProgram(prog, n_options - 1, options);
    }
    char *text = fetch_log(prog);
    if (r != 0) {
        char head[1024];
        log_head(text ? text : "", head, sizeof head);
        snprintf(err, errlen, "NVRTC failed to compile %s for %s (%s):\n%s", name, target, nv.GetErrorString(r), head);
        if (log) *log = text;
        else free(text);
        nv.DestroyProgram(&prog);
        return r == 6 ? NVRTC_COMPILE_FAILED : NVRTC_FAILED; /* 6: NVRTC_ERROR_COMPILATION */
    }
    size_t size = 0;
    r = want_cubin ? nv.GetCUBINSize(prog, &size) : nv.GetPTXSize(prog, &size);
    char *buf = r == 0 ? malloc(size + 1) : NULL;
    if (buf) {
        r = want_cubin ? nv.GetCUBIN(prog, buf) : nv.GetPTX(prog, buf);
        buf[size] = 0;
    }
    nv.DestroyProgram(&prog);
    if (r != 0 || !buf) {
        snprintf(err, errlen, "NVRTC could not return the %s of %s: %s", want_cubin ? "CUBIN" : "PTX", name,
                 r ? nv.GetErrorString(r) : "out of memory");
        free(buf);
        free(text);
        return NVRTC_FAILED;
    }
    if (log) *log = text;
    else free(text);
    *out = buf;
    *out_len = want_cubin ? size : strlen(buf);
    return NVRTC_OK;
}
