/* fake_nvrtc.c - a stand-in for libnvrtc, for tests only: dino-jit's CUDA backend runs through
 * the CPU emulation of fake_cuda.c with it (DINO_NVRTC=libfake_nvrtc.so).
 *
 * A "compiled" program is its own source behind the lines "DINOEMU" and "// arch sm_XX" (the
 * --gpu-architecture it was compiled for), which fake_cuda.c's
 * cuModuleLoadData compiles for the CPU; nothing here checks that the source is valid CUDA
 * (tests/cuda_nvrtc_specs does, with the real NVRTC). For the runtime's error paths:
 *   FAKE_NVRTC_FAIL=1          every compile fails with a log naming a line of the source
 *   FAKE_NVRTC_REJECT_OFAST=1  an --Ofast-compile option is rejected as invalid (NVRTC < 12.8)
 *   FAKE_NVRTC_WRONG_ARCH=sm_80  every module is marked for that architecture (fake_cuda.c then
 *                              refuses it on its sm_90 device)
 *   FAKE_NVRTC_ARCHS=80,89     the architectures this NVRTC lists (default 80,89,90); like the
 *                              real one, it rejects any other --gpu-architecture as an invalid
 *                              option
 * and the options of the last compile are appended to $FAKE_NVRTC_OPTIONS_LOG when set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvrtcResult;
enum {
    OK = 0,
    ERR_OUT_OF_MEMORY = 1,
    ERR_INVALID_INPUT = 3,
    ERR_INVALID_PROGRAM = 4,
    ERR_INVALID_OPTION = 5,
    ERR_COMPILATION = 6
};

typedef struct Program {
    char *src;
    char *image; /* "DINOEMU\n" + source, after a compile */
    size_t image_len;
    char log[256];
    char arch[32]; /* the --gpu-architecture of the last compile, "sm_90" */
} Program;

static int env_on(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

nvrtcResult nvrtcVersion(int *major, int *minor) {
    *major = 12, *minor = 9;
    return OK;
}

/* The listed architectures (FAKE_NVRTC_ARCHS, default 80,89,90); returns how many. */
static int listed_archs(int *archs) {
    const char *v = getenv("FAKE_NVRTC_ARCHS");
    if (!v || !*v) v = "80,89,90";
    int n = 0;
    for (char *end; *v && n < 32; v = *end ? end + 1 : end) {
        long a = strtol(v, &end, 10);
        if (end == v) break;
        archs[n++] = (int)a;
    }
    return n;
}

nvrtcResult nvrtcGetNumSupportedArchs(int *n) {
    int archs[32];
    *n = listed_archs(archs);
    return OK;
}

nvrtcResult nvrtcGetSupportedArchs(int *archs) {
    listed_archs(archs);
    return OK;
}

nvrtcResult nvrtcCreateProgram(Program **prog, const char *src, const char *name, int num_headers,
                               const char *const *headers, const char *const *include_names) {
    (void)name, (void)headers, (void)include_names;
    if (!prog || !src || num_headers != 0) return ERR_INVALID_INPUT;
    Program *p = calloc(1, sizeof *p);
    if (!p || !(p->src = strdup(src))) return free(p), ERR_OUT_OF_MEMORY;
    *prog = p;
    return OK;
}

nvrtcResult nvrtcCompileProgram(Program *p, int num_options, const char *const *options) {
    if (!p) return ERR_INVALID_PROGRAM;
    const char *log_path = getenv("FAKE_NVRTC_OPTIONS_LOG");
    FILE *lf = log_path && *log_path ? fopen(log_path, "a") : NULL;
    for (int i = 0; i < num_options; i++) {
        if (lf) fprintf(lf, "%s%s", i ? " " : "", options[i]);
        if (env_on("FAKE_NVRTC_REJECT_OFAST") && strncmp(options[i], "--Ofast-compile", 15) == 0) {
            if (lf) fprintf(lf, " (rejected)\n"), fclose(lf);
            return ERR_INVALID_OPTION;
        }
        if (strncmp(options[i], "--gpu-architecture=", 19) == 0)
            snprintf(p->arch, sizeof p->arch, "%s", options[i] + 19);
        if (strncmp(options[i], "--gpu-architecture=", 19) == 0) {
            const char *d = options[i] + 19 + strcspn(options[i] + 19, "0123456789");
            int archs[32], n = listed_archs(archs), a = atoi(d), known = 0;
            for (int k = 0; k < n; k++) known |= archs[k] == a;
            if (!known) {
                if (lf) fprintf(lf, " (rejected)\n"), fclose(lf);
                return ERR_INVALID_OPTION;
            }
        }
    }
    if (lf) fprintf(lf, "\n"), fclose(lf);
    if (env_on("FAKE_NVRTC_FAIL")) {
        snprintf(p->log, sizeof p->log, "dino.cu(3): error: identifier \"fake\" is undefined (FAKE_NVRTC_FAIL)\n");
        return ERR_COMPILATION;
    }
    /* "DINOEMU\n// arch sm_90\n" + source: fake_cuda.c refuses a module for another GPU */
    char head[64];
    const char *wrong = getenv("FAKE_NVRTC_WRONG_ARCH"); /* a module for another GPU, for the driver to refuse */
    int hl = snprintf(head, sizeof head, "DINOEMU\n// arch %s\n",
                      wrong && *wrong  ? wrong
                          : p->arch[0] ? p->arch
                                       : "none");
    size_t n = strlen(p->src);
    free(p->image);
    if (!(p->image = malloc(n + (size_t)hl + 1))) return ERR_OUT_OF_MEMORY;
    memcpy(p->image, head, (size_t)hl);
    memcpy(p->image + hl, p->src, n + 1);
    p->image_len = n + (size_t)hl + 1;
    return OK;
}

nvrtcResult nvrtcGetProgramLogSize(Program *p, size_t *size) {
    *size = strlen(p->log) + 1;
    return OK;
}

nvrtcResult nvrtcGetProgramLog(Program *p, char *log) {
    strcpy(log, p->log);
    return OK;
}

static nvrtcResult image_size(Program *p, size_t *size) {
    if (!p || !p->image) return ERR_INVALID_PROGRAM;
    *size = p->image_len;
    return OK;
}

static nvrtcResult image(Program *p, char *out) {
    if (!p || !p->image) return ERR_INVALID_PROGRAM;
    memcpy(out, p->image, p->image_len);
    return OK;
}

nvrtcResult nvrtcGetPTXSize(Program *p, size_t *size) { return image_size(p, size); }
nvrtcResult nvrtcGetPTX(Program *p, char *ptx) { return image(p, ptx); }
nvrtcResult nvrtcGetCUBINSize(Program *p, size_t *size) { return image_size(p, size); }
nvrtcResult nvrtcGetCUBIN(Program *p, char *cubin) { return image(p, cubin); }

nvrtcResult nvrtcDestroyProgram(Program **prog) {
    if (!prog || !*prog) return ERR_INVALID_PROGRAM;
    free((*prog)->src);
    free((*prog)->image);
    free(*prog);
    *prog = NULL;
    return OK;
}

const char *nvrtcGetErrorString(nvrtcResult r) {
    switch (r) {
    case OK: return "NVRTC_SUCCESS";
    case ERR_OUT_OF_MEMORY: return "NVRTC_ERROR_OUT_OF_MEMORY";
    case ERR_INVALID_INPUT: return "NVRTC_ERROR_INVALID_INPUT";
    case ERR_INVALID_PROGRAM: return "NVRTC_ERROR_INVALID_PROGRAM";
    case ERR_INVALID_OPTION: return "NVRTC_ERROR_INVALID_OPTION";
    case ERR_COMPILATION: return "NVRTC_ERROR_COMPILATION";
    default: return "NVRTC_ERROR_INTERNAL_ERROR";
    }
}
