/* fake_cuda.c - a stand-in for libcuda.so.1 that runs kernels on the CPU, for tests only.
 *
 * With DINO_CUDA_DRIVER=libfake_cuda.so and DINO_NVRTC=libfake_nvrtc.so, dino-jit's CUDA
 * backend (runtime/backend_cuda.c: device memory, copies, the cached module, every launch of
 * the plan, the optimiser and loss kernels) runs end to end on a machine without a GPU:
 *   - device memory is host memory, filled with 0xff bytes (NaN) when allocated, so a read of
 *     memory no kernel or copy wrote shows up; FAKE_CUDA_MEM (bytes, default 1 GiB) is the
 *     device's size, and an allocation beyond it fails with CUDA_ERROR_OUT_OF_MEMORY;
 *   - cuModuleLoadData takes fake_nvrtc.c's image (the source behind "DINOEMU"), adds a thunk
 *     per extern "C" kernel, compiles it with the host C++ compiler ($CXX, else c++) and
 *     tests/cuda_emu.hpp, and loads it; cuLaunchKernel runs the kernel there, a block at a
 *     time, each thread a fiber (see cuda_emu.hpp);
 *   - streams are synchronous; the device is "sm_90" (FAKE_CUDA_CC=89: sm_89) with FAKE_CUDA_SMS
 *     (default 4) multiprocessors; a module compiled for another architecture is refused
 *     (CUDA_ERROR_NO_BINARY_FOR_GPU), and so are synchronous calls (synchronisations,
 *     synchronous copies; allocations and frees unless the capture is relaxed) during stream
 *     capture, which invalidate the capture (its cuStreamEndCapture fails), as the real driver
 *     does; a real CUBIN (ELF) is checked for the architecture (refused for another GPU, else
 *     CUDA_ERROR_INVALID_IMAGE: only fake_nvrtc's images run);
 *   - cuFuncGetAttribute / cuFuncSetAttribute model shared memory: a launch asking more dynamic
 *     shared memory than the function's MAX_DYNAMIC_SHARED_SIZE_BYTES (48 KiB less the static
 *     part unless raised, up to the device's opt-in limit) is refused, as on a GPU;
 *   - stream capture records each launch with a copy of its arguments (and runs nothing);
 *     cuGraphLaunch runs the recorded launches again; FAKE_CUDA_NO_GRAPHS=1 makes
 *     cuStreamBeginCapture fail as a driver without graphs would; FAKE_CUDA_STATS=FILE
 *     appends "load" each time the library is loaded (a process that unloads and loads it
 *     again shows two) and "launches L graph_launches G contexts C" when it is unloaded or the
 *     process exits (C: primary contexts created, i.e. retained while none was held);
 *   - cuOccupancyMaxActiveBlocksPerMultiprocessor says FAKE_CUDA_OCCUPANCY (default 2) blocks;
 *   - FAKE_CUDA_FAIL_KERNEL=NAME: launches of kernel NAME fault, reported (as a GPU does) by the
 *     next synchronisation or device-to-host copy, and sticky.
 * What this checks is the host side and the generated code's results, not a GPU's memory
 * model or speed (tests/README.md). */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FAKE_CUDA_EMU_HEADER
#error "build with -DFAKE_CUDA_EMU_HEADER=\"path/to/tests/cuda_emu.hpp\""
#endif

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
enum {
    OK = 0,
    ERR_INVALID_VALUE = 1,
    ERR_OUT_OF_MEMORY = 2,
    ERR_NOT_INITIALIZED = 3,
    ERR_INVALID_IMAGE = 200,
    ERR_NO_BINARY_FOR_GPU = 209,
    ERR_INVALID_HANDLE = 400,
    ERR_NOT_FOUND = 500,
    ERR_LAUNCH_FAILED = 719,
    ERR_NOT_SUPPORTED = 801,
    ERR_CAPTURE_UNSUPPORTED = 900,
    ERR_CAPTURE_INVALIDATED = 901,
};

typedef struct Function Function;

typedef struct Module {
    void *handle;
    int (*launch)(void (*)(void *), void *, unsigned, unsigned, unsigned, unsigned);
    void (*shutdown)(void);
    const char *(*error)(void); /* why the last launch failed (cuda_emu.hpp's hazard modes) */
    char dir[256];
    Function *functions; /* handed out by cuModuleGetFunction, freed with the module */
} Module;

struct Function {
    char name[64];
    Module *mod;
    int max_dynamic_shared; /* CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: what a launch may ask */
    void (*thunk)(void *);
    size_t (*pack)(void **, char *, size_t, void **, size_t); /* copies a launch's arguments */
    Function *next;
};

/* A launch recorded by stream capture: its arguments copied, as the driver copies them. */
enum { MAX_ARGS = 32, ARG_BYTES = 1024 };
typedef struct {
    Function *f;
    unsigned gx, gy, gz, block;
    char buf[ARG_BYTES];
    void *args[MAX_ARGS];
} Recorded;

typedef struct Graph {
    Recorded **launches; /* each on its own: its args point into its buf */
    int n, cap;
} Graph;

static Graph *capturing; /* the graph being recorded, or NULL */
static long n_launches, n_graph_launches;
static CUresult pending_fault;  /* a kernel's fault, sticky (FAKE_CUDA_FAIL_KERNEL) */
static int capture_invalidated; /* a synchronous call was made during the capture */
static int capture_mode;        /* CU_STREAM_CAPTURE_MODE_GLOBAL 0, THREAD_LOCAL 1, RELAXED 2 */

/* A synchronous call (a synchronisation, a synchronous copy) during stream capture: refused,
 * and the capture invalidated, as the real driver does. */
static int refused_in_capture(void);
/* An allocation or free during capture: refused (and the capture invalidated) unless the
 * capture is relaxed, as the real driver does with these "unsafe" calls. */
static int unsafe_in_capture(void);

static long n_contexts, ctx_refs; /* primary contexts created; references held now */

static void write_stats(void) {
    const char *file = getenv("FAKE_CUDA_STATS");
    FILE *f = file && *file ? fopen(file, "a") : NULL;
    if (!f) return;
    fprintf(f, "launches %ld graph_launches %ld contexts %ld\n", n_launches, n_graph_launches, n_contexts);
    fclose(f);
}

__attribute__((constructor)) static void loaded(void) {
    const char *file = getenv("FAKE_CUDA_STATS");
    FILE *f = file && *file ? fopen(file, "a") : NULL;
    if (!f) return;
    fprintf(f, "load\n");
    fclose(f);
}

/* Allocations, for cuMemGetInfo and to check frees. */
typedef struct Alloc {
    void *p;
    size_t bytes;
    struct Alloc *next;
} Alloc;

static Alloc *allocs;
static size_t in_use;
static int initialised;

static size_t device_bytes(void) {
    const char *v = getenv("FAKE_CUDA_MEM");
    return v && *v ? (size_t)strtoull(v, NULL, 10) : (size_t)1 << 30;
}

/* ---------------------------------------------------------------------------- device */

/* The compute capability as 10 major + minor: FAKE_CUDA_CC, default 90. */
static int device_cc(void) {
    const char *v = getenv("FAKE_CUDA_CC");
    int cc = v && *v ? atoi(v) : 90;
    return cc >= 10 && cc < 1000 ? cc : 90;
}

/* CUDA 12.4, for dino-jit --version */
CUresult cuDriverGetVersion(int *version) {
    *version = 12040;
    return OK;
}

CUresult cuInit(unsigned flags) {
    (void)flags;
    if (!initialised) atexit(write_stats);
    initialised = 1;
    return OK;
}

CUresult cuDeviceGetCount(int *n) {
    *n = 1;
    return initialised ? OK : ERR_NOT_INITIALIZED;
}

CUresult cuDeviceGet(int *dev, int ordinal) {
    *dev = 0;
    return ordinal == 0 ? OK : ERR_INVALID_VALUE;
}

CUresult cuDeviceGetName(char *name, int len, int dev) {
    (void)dev;
    snprintf(name, (size_t)len, "dino CPU emulation of a CUDA device");
    return OK;
}

CUresult cuDeviceGetAttribute(int *value, int attribute, int dev) {
    (void)dev;
    const char *sms = getenv("FAKE_CUDA_SMS");
    switch (attribute) {
    case 16: *value = sms && *sms ? atoi(sms) : 4; return OK; /* multiprocessors */
    case 75: *value = device_cc() / 10; return OK;            /* compute capability */
    case 76: *value = device_cc() % 10; return OK;
    default: *value = 0; return ERR_INVALID_VALUE;
    }
}

static int context;
CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev) {
    (void)dev;
    if (ctx_refs++ == 0) n_contexts++; /* the real driver creates it on the first reference */
    *ctx = &context;
    return OK;
}
CUresult cuDevicePrimaryCtxRelease_v2(int dev) {
    if (dev != 0 || ctx_refs == 0) return ERR_INVALID_VALUE;
    ctx_refs--; /* at 0 the real driver destroys the context */
    return OK;
}
CUresult cuCtxSetCurrent(void *ctx) { return ctx == &context ? OK : ERR_INVALID_HANDLE; }
CUresult cuCtxSynchronize(void) { return refused_in_capture() ? ERR_CAPTURE_UNSUPPORTED : pending_fault; }

/* ---------------------------------------------------------------------------- memory */

CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytes) {
    if (unsafe_in_capture()) return ERR_CAPTURE_UNSUPPORTED;
    if (!bytes) return ERR_INVALID_VALUE;
    if (in_use + bytes > device_bytes()) return ERR_OUT_OF_MEMORY;
    Alloc *a = malloc(sizeof *a);
    void *p = malloc(bytes);
    if (!a || !p) return free(a), free(p), ERR_OUT_OF_MEMORY;
    memset(p, 0xff, bytes);
    *a = (Alloc){.p = p, .bytes = bytes, .next = allocs};
    allocs = a;
    in_use += bytes;
    *dptr = (CUdeviceptr)(uintptr_t)p;
    return OK;
}

CUresult cuMemFree_v2(CUdeviceptr dptr) {
    if (unsafe_in_capture()) return ERR_CAPTURE_UNSUPPORTED;
    for (Alloc **a = &allocs; *a; a = &(*a)->next)
        if ((*a)->p == (void *)(uintptr_t)dptr) {
            Alloc *dead = *a;
            *a = dead->next;
            in_use -= dead->bytes;
            free(dead->p);
            free(dead);
            return OK;
        }
    return ERR_INVALID_VALUE;
}

CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total) {
    *total = device_bytes();
    *free_bytes = *total - in_use;
    return OK;
}

static CUresult copy_htod(CUdeviceptr dst, const void *src, size_t n) {
    memcpy((void *)(uintptr_t)dst, src, n);
    return OK;
}
static CUresult copy_dtoh(void *dst, CUdeviceptr src, size_t n) {
    if (pending_fault) return pending_fault;
    memcpy(dst, (const void *)(uintptr_t)src, n);
    return OK;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) {
    if (refused_in_capture()) return ERR_CAPTURE_UNSUPPORTED;
    return copy_htod(dst, src, n);
}
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) {
    if (refused_in_capture()) return ERR_CAPTURE_UNSUPPORTED;
    if (pending_fault) return pending_fault;
    memcpy(dst, (const void *)(uintptr_t)src, n);
    return OK;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, void *stream) {
    (void)stream;
    return copy_htod(dst, src, n);
}
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, void *stream) {
    (void)stream;
    return copy_dtoh(dst, src, n);
}
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, void *stream) {
    (void)stream;
    memset((void *)(uintptr_t)dst, v, n);
    return OK;
}

/* ---------------------------------------------------------------------------- streams */

static int stream;
CUresult cuStreamCreate(void **s, unsigned flags) {
    (void)flags;
    *s = &stream;
    return OK;
}
CUresult cuStreamDestroy_v2(void *s) { return s == &stream ? OK : ERR_INVALID_HANDLE; }
CUresult cuStreamSynchronize(void *s) {
    if (refused_in_capture()) return ERR_CAPTURE_UNSUPPORTED;
    return s == &stream || !s ? pending_fault : ERR_INVALID_HANDLE;
}

/* ---------------------------------------------------------------------------- modules */

/* Appends `extern "C" void emu_thunk_NAME(void *args)` for every extern "C" __global__ kernel
 * NAME of the source: it calls NAME with the launch's kernelParams (cuda_emu.hpp's emu_invoke
 * reads each argument with the type of the kernel's parameter). */
static int write_thunks(FILE *f, const char *src) {
    int n = 0;
    for (const char *p = src; (p = strstr(p, "extern \"C\" __global__ void ")); n++) {
        p += strlen("extern \"C\" __global__ void ");
        if (strncmp(p, "__launch_bounds__(", 18) == 0) p = strchr(p, ')') + 2;
        size_t len = strcspn(p, "(");
        fprintf(f, "extern \"C\" void emu_thunk_%.*s(void *args) { emu_invoke(%.*s, (void **)args); }\n", (int)len, p,
                (int)len, p);
        fprintf(f,
                "extern \"C\" size_t emu_pack_%.*s(void **args, char *buf, size_t room, void **out, size_t max_args) "
                "{ return emu_pack(%.*s, args, buf, room, out, max_args); }\n",
                (int)len, p, (int)len, p);
    }
    return n;
}

/* The most shared memory a block may have on this device (static and dynamic, opted in):
 * 227 KiB on sm_90, 163 KiB on sm_80 and sm_87, 99 KiB on sm_86 and sm_89, else 48 KiB. */
static int device_max_shared(void) {
    int cc = device_cc();
    return cc == 90 ? 232448 : cc == 80 || cc == 87 ? 166912 : cc == 86 || cc == 89 ? 101376 : 49152;
}

/* A real CUBIN (an ELF file for EM_CUDA, 190): refused with CUDA_ERROR_NO_BINARY_FOR_GPU when
 * built for an architecture the device can't run (SASS runs on the same major version with the
 * same or a higher minor), else CUDA_ERROR_INVALID_IMAGE, since the emulation runs only
 * fake_nvrtc's images. The architecture is in e_flags: bits 8-15 from ELF ABI version 8 on
 * (CUDA 12.8 and later: 0x5a for sm_90), bits 0-7 before. 0 when image is no ELF file. */
static CUresult load_cubin(const unsigned char *image) {
    if (memcmp(image,
               "\x7f"
               "ELF",
               4) != 0)
        return OK;
    unsigned machine = image[18] | image[19] << 8, abi = image[8];
    uint32_t flags;
    memcpy(&flags, image + (image[4] == 2 ? 48 : 36), 4); /* e_flags of ELF64, ELF32 */
    if (machine != 190) return ERR_INVALID_IMAGE;
    int sm = (int)(abi >= 8 ? flags >> 8 & 0xff : flags & 0xff), cc = device_cc();
    if (sm / 10 != cc / 10 || sm % 10 > cc % 10) return ERR_NO_BINARY_FOR_GPU;
    return ERR_INVALID_IMAGE;
}

CUresult cuModuleLoadData(Module **out, const void *image) {
    const char *text = image;
    CUresult cubin = load_cubin(image);
    if (cubin) return cubin;
    if (strncmp(text, "DINOEMU\n", 8) != 0) return ERR_INVALID_IMAGE; /* not fake_nvrtc's (a stale cache entry) */
    /* compiled for this device's architecture (FAKE_CUDA_CC, default 90), or refused */
    char want[32];
    snprintf(want, sizeof want, "// arch sm_%d\n", device_cc());
    if (strncmp(text + 8, want, strlen(want)) != 0) return ERR_NO_BINARY_FOR_GPU;
    Module *m = calloc(1, sizeof *m);
    if (!m) return ERR_OUT_OF_MEMORY;
    snprintf(m->dir, sizeof m->dir, "%s/fake_cuda.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(m->dir)) return free(m), ERR_INVALID_IMAGE;
    char cu[400], so[400], cmd[2048];
    snprintf(cu, sizeof cu, "%s/module.cu", m->dir);
    snprintf(so, sizeof so, "%s/module.so", m->dir);
    FILE *f = fopen(cu, "w");
    if (!f) return free(m), ERR_INVALID_IMAGE;
    fputs(text + 8, f);
    fputs("\n/* fake_cuda.c: the kernels' launch thunks */\n", f);
    write_thunks(f, text + 8);
    fclose(f);
    const char *cxx = getenv("CXX");
    cxx = cxx && *cxx ? cxx : "c++";
    /* -fno-weak where the compiler knows it (g++): cuda_emu.hpp's shared-memory section */
    char probe[512];
    snprintf(probe, sizeof probe, "'%s' -fno-weak -fsyntax-only -x c++ /dev/null 2>/dev/null && echo -fno-weak", cxx);
    snprintf(cmd, sizeof cmd, "'%s' -std=c++17 -O0 -w -shared -fPIC $(%s) -include '%s' -x c++ '%s' -o '%s' 2>'%s.log'",
             cxx, probe, FAKE_CUDA_EMU_HEADER, cu, so, cu);
    if (system(cmd) != 0) {
        fprintf(stderr, "fake_cuda: the emulated module did not compile: see %s.log\n", cu);
        return free(m), ERR_INVALID_IMAGE;
    }
    m->handle = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!m->handle) return fprintf(stderr, "fake_cuda: %s\n", dlerror()), free(m), ERR_INVALID_IMAGE;
    *(void **)&m->launch = dlsym(m->handle, "emu_launch");
    *(void **)&m->shutdown = dlsym(m->handle, "emu_shutdown");
    *(void **)&m->error = dlsym(m->handle, "emu_error");
    if (!m->launch || !m->shutdown) return dlclose(m->handle), free(m), ERR_INVALID_IMAGE;
    *out = m;
    return OK;
}

CUresult cuModuleUnload(Module *m) {
    if (!m) return ERR_INVALID_HANDLE;
    m->shutdown();
    dlclose(m->handle);
    while (m->functions) {
        Function *f = m->functions;
        m->functions = f->next;
        free(f);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", m->dir);
    if (system(cmd)) {}
    free(m);
    return OK;
}

/* The module's static shared memory: what every kernel of it may use (the emulation knows the
 * module's, not each kernel's, so this is an upper bound for each). */
static size_t static_shared(Module *m) {
    size_t (*bytes)(void) = (size_t(*)(void))dlsym(m->handle, "emu_shared_bytes");
    return bytes ? bytes() : 0;
}

CUresult cuModuleGetFunction(Function **out, Module *m, const char *name) {
    char sym[256], pack_sym[256];
    snprintf(sym, sizeof sym, "emu_thunk_%s", name);
    snprintf(pack_sym, sizeof pack_sym, "emu_pack_%s", name);
    void *thunk = dlsym(m->handle, sym), *pack = dlsym(m->handle, pack_sym);
    if (!thunk || !pack) return ERR_NOT_FOUND;
    Function *f = malloc(sizeof *f); /* valid until the module is unloaded, as the driver's */
    if (!f) return ERR_OUT_OF_MEMORY;
    snprintf(f->name, sizeof f->name, "%s", name);
    f->mod = m;
    f->max_dynamic_shared = 48 * 1024 - (int)static_shared(m);
    *(void **)&f->thunk = thunk;
    *(void **)&f->pack = pack;
    f->next = m->functions;
    m->functions = f;
    *out = f;
    return OK;
}

/* FAKE_CUDA_FAIL_KERNEL=NAME: a launch of NAME faults as a GPU kernel does: asynchronously,
 * the launch itself succeeds and the error (sticky, as a real fault's) comes from the next
 * synchronisation or copy. */

static int faults(const Function *f) {
    const char *v = getenv("FAKE_CUDA_FAIL_KERNEL");
    return v && *v && strcmp(v, f->name) == 0;
}

static CUresult run_launch(Function *f, void **args, unsigned gx, unsigned gy, unsigned gz, unsigned bx) {
    n_launches++;
    if (pending_fault) return OK; /* the context is lost: nothing runs */
    if (faults(f)) {
        pending_fault = ERR_LAUNCH_FAILED;
        return OK;
    }
    if (f->mod->launch(f->thunk, args, gx, gy, gz, bx) == 0) return OK;
    if (f->mod->error && *f->mod->error()) fprintf(stderr, "fake_cuda: %s: %s\n", f->name, f->mod->error());
    return ERR_LAUNCH_FAILED;
}

CUresult cuLaunchKernel(Function *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void *s, void **params, void **extra) {
    (void)s;
    if (!f || extra || by != 1 || bz != 1 || shared > (unsigned)f->max_dynamic_shared) return ERR_INVALID_VALUE;
    if (gy > 65535 || gz > 65535 || gx == 0 || gy == 0 || gz == 0) return ERR_INVALID_VALUE;
    if (capturing) {
        Graph *g = capturing;
        if (g->n == g->cap) {
            g->cap = g->cap ? 2 * g->cap : 16;
            Recorded **grown = realloc(g->launches, sizeof(Recorded *) * (size_t)g->cap);
            if (!grown) return ERR_OUT_OF_MEMORY;
            g->launches = grown;
        }
        Recorded *r = malloc(sizeof *r);
        if (!r) return ERR_OUT_OF_MEMORY;
        *r = (Recorded){.f = f, .gx = gx, .gy = gy, .gz = gz, .block = bx};
        if (!f->pack(params, r->buf, sizeof r->buf, r->args, MAX_ARGS)) return free(r), ERR_INVALID_VALUE;
        g->launches[g->n++] = r;
        return OK;
    }
    return run_launch(f, params, gx, gy, gz, bx);
}

/* FAKE_CUDA_OCCUPANCY (default 2): blocks of any kernel resident per multiprocessor. */
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *blocks, Function *f, int block, size_t shared) {
    if (!f || block < 1 || block > 1024 || shared > (size_t)f->max_dynamic_shared) return ERR_INVALID_VALUE;
    const char *v = getenv("FAKE_CUDA_OCCUPANCY");
    *blocks = v && *v ? atoi(v) : 2;
    return OK;
}

/* Function attributes, as the driver's: MAX_THREADS_PER_BLOCK (0) 1024, SHARED_SIZE_BYTES (1)
 * the module's static shared memory, MAX_DYNAMIC_SHARED_SIZE_BYTES (8) 48 KiB less that unless
 * set, up to the device's opt-in limit less the static part; PREFERRED_SHARED_MEMORY_CARVEOUT
 * (9) -1 .. 100. Others (registers, local memory, versions) are not emulated: 801. */
enum { FUNC_MAX_THREADS = 0, FUNC_SHARED_BYTES = 1, FUNC_MAX_DYNAMIC_SHARED = 8, FUNC_CARVEOUT = 9 };
CUresult cuFuncGetAttribute(int *value, int attrib, Function *f) {
    if (!f || !value) return ERR_INVALID_VALUE;
    switch (attrib) {
    case FUNC_MAX_THREADS: *value = 1024; return OK;
    case FUNC_SHARED_BYTES: *value = (int)static_shared(f->mod); return OK;
    case FUNC_MAX_DYNAMIC_SHARED: *value = f->max_dynamic_shared; return OK;
    case FUNC_CARVEOUT: *value = -1; return OK;
    default: return attrib >= 0 && attrib <= 10 ? ERR_NOT_SUPPORTED : ERR_INVALID_VALUE;
    }
}
CUresult cuFuncSetAttribute(Function *f, int attrib, int value) {
    if (!f) return ERR_INVALID_HANDLE;
    if (attrib == FUNC_MAX_DYNAMIC_SHARED) {
        if (value < 0 || value + (long)static_shared(f->mod) > device_max_shared()) return ERR_INVALID_VALUE;
        f->max_dynamic_shared = value;
        return OK;
    }
    if (attrib == FUNC_CARVEOUT) return value >= -1 && value <= 100 ? OK : ERR_INVALID_VALUE;
    return ERR_INVALID_VALUE; /* the others are read-only */
}

/* ---------------------------------------------------------------------------- graphs */

CUresult cuStreamBeginCapture_v2(void *s, int mode) {
    if (s != &stream || mode < 0 || mode > 2 || capturing) return ERR_INVALID_VALUE;
    const char *off = getenv("FAKE_CUDA_NO_GRAPHS");
    if (off && strcmp(off, "1") == 0) return ERR_NOT_SUPPORTED;
    capturing = calloc(1, sizeof(Graph));
    capture_mode = mode;
    return capturing ? OK : ERR_OUT_OF_MEMORY;
}

static int unsafe_in_capture(void) {
    if (!capturing || capture_mode == 2) return 0;
    capture_invalidated = 1;
    return 1;
}

static int refused_in_capture(void) {
    if (!capturing) return 0;
    capture_invalidated = 1;
    return 1;
}

CUresult cuStreamEndCapture(void *s, Graph **graph) {
    if (s != &stream || !capturing) return ERR_INVALID_VALUE;
    *graph = capturing;
    capturing = NULL;
    if (capture_invalidated) { /* the real driver returns no graph then */
        capture_invalidated = 0;
        for (int i = 0; i < (*graph)->n; i++) free((*graph)->launches[i]);
        free((*graph)->launches);
        free(*graph);
        *graph = NULL;
        return ERR_CAPTURE_INVALIDATED;
    }
    return OK;
}

/* The executable graph is the recorded graph itself (nothing here depends on instantiation). */
CUresult cuGraphInstantiateWithFlags(Graph **exec, Graph *graph, unsigned long long flags) {
    if (!graph || flags) return ERR_INVALID_VALUE;
    *exec = graph;
    return OK;
}

CUresult cuGraphLaunch(Graph *exec, void *s) {
    if (!exec || s != &stream || capturing) return ERR_INVALID_VALUE;
    n_graph_launches++;
    for (int i = 0; i < exec->n; i++) {
        Recorded *r = exec->launches[i];
        if (run_launch(r->f, r->args, r->gx, r->gy, r->gz, r->block)) return ERR_LAUNCH_FAILED;
    }
    return OK;
}

CUresult cuGraphExecDestroy(Graph *exec) { return exec ? OK : ERR_INVALID_VALUE; }

CUresult cuGraphDestroy(Graph *graph) {
    if (!graph) return ERR_INVALID_VALUE;
    for (int i = 0; i < graph->n; i++) free(graph->launches[i]);
    free(graph->launches);
    free(graph);
    return OK;
}

/* ---------------------------------------------------------------------------- errors */

CUresult cuGetErrorName(CUresult r, const char **name) {
    switch (r) {
    case OK: *name = "CUDA_SUCCESS"; break;
    case ERR_INVALID_VALUE: *name = "CUDA_ERROR_INVALID_VALUE"; break;
    case ERR_OUT_OF_MEMORY: *name = "CUDA_ERROR_OUT_OF_MEMORY"; break;
    case ERR_NOT_INITIALIZED: *name = "CUDA_ERROR_NOT_INITIALIZED"; break;
    case ERR_INVALID_IMAGE: *name = "CUDA_ERROR_INVALID_IMAGE"; break;
    case ERR_INVALID_HANDLE: *name = "CUDA_ERROR_INVALID_HANDLE"; break;
    case ERR_NOT_FOUND: *name = "CUDA_ERROR_NOT_FOUND"; break;
    case ERR_LAUNCH_FAILED: *name = "CUDA_ERROR_LAUNCH_FAILED"; break;
    case ERR_NOT_SUPPORTED: *name = "CUDA_ERROR_NOT_SUPPORTED"; break;
    case ERR_NO_BINARY_FOR_GPU: *name = "CUDA_ERROR_NO_BINARY_FOR_GPU"; break;
    case ERR_CAPTURE_UNSUPPORTED: *name = "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"; break;
    case ERR_CAPTURE_INVALIDATED: *name = "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED"; break;
    default: *name = "CUDA_ERROR_UNKNOWN"; return ERR_INVALID_VALUE;
    }
    return OK;
}

CUresult cuGetErrorString(CUresult r, const char **text) {
    *text = r == OK ? "no error" : "an error of dino's CPU emulation of the driver (tests/fake_cuda)";
    return OK;
}
