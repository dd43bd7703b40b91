/* fake_cuda.c - a stand-in for libcuda.so.1 that runs kernels on the CPU, for tests only.
 *
 * With DINO_CUDA_DRIVER=libfake_cuda.so and DINO_NVRTC=libfake_nvrtc.so, dino-jit's CUDA
 * backend (runtime/backend_cuda.c: device memory, copies, the cached module, every launch of
 * the plan, the optimiser and loss kernels) runs end to end on a machine without a GPU:
 *   - device memory is host memory, filled with 0xff bytes (NaN) when allocated, so a read of
 *     memory no kernel or copy wrote shows up; FAKE_CUDA_MEM (bytes, default 1 GiB) is the
 *     device's size, and an allocation beyond it fails with CUDA_ERROR_OUT_OF_MEMORY
 *     (FAKE_CUDA_MEM_REPORTED: the size cuMemGetInfo says, when it should be wrong);
 *   - cuModuleLoadData takes fake_nvrtc.c's image (the source behind "DINOEMU"), adds a thunk
 *     per extern "C" kernel, compiles it with the host C++ compiler ($CXX, else c++) and
 *     tests/cuda_emu.hpp, and loads it; cuLaunchKernel runs the kernel there, a block at a
 *     time, each thread a fiber (see cuda_emu.hpp);
 *   - streams, events and pinned host memory (see "streams" below): kernels, memsets and
 *     device-to-host copies run when launched, after their stream's earlier work; a host-to-
 *     device copy out of pinned memory (cuMemHostAlloc) is queued on its stream and runs as late
 *     as the program allows (when a synchronisation, an event or a later operation of its stream
 *     or of a stream that waits for it needs it), so a missing wait shows as stale data; the host
 *     writing a pinned buffer before its queued copy ran, and device memory used by two streams
 *     with no event wait between them (vector clocks over cuEventRecord / cuStreamWaitEvent), are
 *     reported on stderr and fault the context as a kernel fault does; FAKE_CUDA_DEFER=1 queues
 *     kernels and graph launches too, so that the host runs ahead of the device as on a GPU;
 *   - the device is "sm_90" (FAKE_CUDA_CC=89: sm_89) with FAKE_CUDA_SMS
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
 *   - cuLaunchHostFunc runs a host function in stream order, or records it as a graph node
 *     (fake_nccl.c enqueues its all-reduce with it, so NCCL can be captured in a graph);
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
    Function *f;                 /* NULL for a host function (cuLaunchHostFunc) */
    void (*host)(void *), *user; /* the host function and its argument */
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

/* Streams (defined below): the queued work of a stream, or of all, run; device memory used by
 * a stream, checked against the other streams' uses. */
typedef struct Stream Stream;
static Stream *stream_of(void *s);
static void barrier(void);
static void run_stream(Stream *st);
static void stream_uses(Stream *st, void **args, const char *what);
static int deferring(void);
static CUresult defer_launch(Stream *st, Function *f, void **params, unsigned gx, unsigned gy, unsigned gz,
                             unsigned bx);
static CUresult defer_graph(Stream *st, Graph *g);
static CUresult run_graph_launches(Graph *g);
static long n_races; /* stream-order errors found (reported on stderr) */

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
enum { MAX_STREAMS = 64 };
typedef struct Alloc {
    void *p;
    size_t bytes;
    struct Alloc *next;
    long *used; /* [MAX_STREAMS] the clock of each stream's last use (streams below), or NULL */
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
CUresult cuCtxSynchronize(void) {
    if (refused_in_capture()) return ERR_CAPTURE_UNSUPPORTED;
    barrier();
    return pending_fault;
}

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
    barrier(); /* as the driver: nothing still queued may touch it */
    for (Alloc **a = &allocs; *a; a = &(*a)->next)
        if ((*a)->p == (void *)(uintptr_t)dptr) {
            Alloc *dead = *a;
            *a = dead->next;
            in_use -= dead->bytes;
            free(dead->used);
            free(dead->p);
            free(dead);
            return OK;
        }
    return ERR_INVALID_VALUE;
}

/* FAKE_CUDA_MEM_REPORTED (bytes): the device size cuMemGetInfo says, when it is not what
 * cuMemAlloc can give (FAKE_CUDA_MEM): memory that another process or fragmentation takes
 * between the question and the allocation. */
CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total) {
    const char *v = getenv("FAKE_CUDA_MEM_REPORTED");
    *total = v && *v ? (size_t)strtoull(v, NULL, 10) : device_bytes();
    *free_bytes = *total > in_use ? *total - in_use : 0;
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
    barrier(); /* synchronous copies wait for all streams (created without CU_STREAM_NON_BLOCKING) */
    return copy_htod(dst, src, n);
}
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) {
    if (refused_in_capture()) return ERR_CAPTURE_UNSUPPORTED;
    barrier();
    if (pending_fault) return pending_fault;
    memcpy(dst, (const void *)(uintptr_t)src, n);
    return OK;
}
/* The async copies and memsets are defined with the streams below. */

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
    barrier(); /* queued launches of its kernels (FAKE_CUDA_DEFER) run first */
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
    Stream *st = stream_of(s);
    if (!st && s) return ERR_INVALID_HANDLE;
    if (st && deferring()) return defer_launch(st, f, params, gx, gy, gz, bx);
    if (st) run_stream(st); /* after the stream's earlier work */
    else barrier();         /* the legacy stream */
    char buf[ARG_BYTES] = {0};
    void *args[MAX_ARGS] = {0};
    if (st && f->pack(params, buf, sizeof buf, args, MAX_ARGS)) stream_uses(st, args, f->name);
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
    if (!stream_of(s) || mode < 0 || mode > 2 || capturing) return ERR_INVALID_VALUE;
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
    if (!stream_of(s) || !capturing) return ERR_INVALID_VALUE;
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
    if (!exec || !stream_of(s) || capturing) return ERR_INVALID_VALUE;
    n_graph_launches++;
    Stream *st = stream_of(s);
    for (int i = 0; i < exec->n; i++)
        if (exec->launches[i]->f) stream_uses(st, exec->launches[i]->args, exec->launches[i]->f->name);
    if (deferring()) return defer_graph(st, exec);
    run_stream(st); /* after the stream's earlier work */
    return run_graph_launches(exec);
}

static CUresult run_graph_launches(Graph *exec) {
    for (int i = 0; i < exec->n; i++) {
        Recorded *r = exec->launches[i];
        if (!r->f) { /* a host function node */
            r->host(r->user);
            continue;
        }
        if (run_launch(r->f, r->args, r->gx, r->gy, r->gz, r->block)) return ERR_LAUNCH_FAILED;
    }
    return OK;
}

CUresult cuGraphExecDestroy(Graph *exec) { return exec ? OK : ERR_INVALID_VALUE; }

CUresult cuGraphDestroy(Graph *graph) {
    if (!graph) return ERR_INVALID_VALUE;
    barrier(); /* a queued launch of it (FAKE_CUDA_DEFER) runs first */
    for (int i = 0; i < graph->n; i++) free(graph->launches[i]);
    free(graph->launches);
    free(graph);
    return OK;
}

/* ---------------------------------------------------------------------------- streams */

/* A stream runs kernels, memsets and device-to-host copies when they are launched (after its
 * earlier work); it queues host-to-device copies out of pinned memory, and the waits for events
 * (cuStreamWaitEvent) that come after one, and runs them as late as the program allows: when a
 * later operation of the stream, a synchronisation or another stream's wait needs them. So a
 * kernel that reads a copy's destination without waiting for the copy reads what was there
 * before, as on a GPU where the copy has not yet happened.
 *
 * Happens-before is tracked with vector clocks: each stream counts its operations; an event
 * takes its stream's clock when recorded, a wait merges it into the waiting stream's clock, and
 * the synchronous calls (synchronous copies, cuCtxSynchronize, cuMemFree, cuMemFreeHost, a
 * launch on the legacy stream) order every stream (the streams are all treated as blocking:
 * CU_STREAM_NON_BLOCKING is not emulated). A device allocation used (a copy into it, a kernel
 * with a pointer into it among its arguments, a memset, a copy out of it) by two streams with
 * neither use ordered before the other is a race; so is the host writing a pinned buffer
 * before the copy queued out of it ran. Both are reported on stderr and fault the context
 * (CUDA_ERROR_LAUNCH_FAILED at the next synchronisation), as the wrong data they would give
 * on a GPU might not show in a test's numbers. */

enum { OP_COPY, OP_WAIT, OP_KERNEL, OP_GRAPH };
typedef struct Op {
    int kind;         /* OP_* */
    Recorded *launch; /* OP_KERNEL (FAKE_CUDA_DEFER=1): the launch, its arguments copied */
    Graph *graph;     /* OP_GRAPH (FAKE_CUDA_DEFER=1) */
    CUdeviceptr dst;  /* copy: [n] bytes from src */
    const void *src;
    size_t n;
    unsigned long long sum; /* of src's bytes when the copy was queued */
    Stream *on;             /* wait: until `on` (generation gen) ran its queue up to pos */
    long gen, pos;
} Op;

struct Stream {
    int live;
    long gen; /* counts the streams that had this slot (a destroyed one's events are done) */
    Op *ops;  /* the queue: ops[i - base] is the i-th queued op */
    long base, done, end, cap;
    long vc[MAX_STREAMS]; /* vc[own index]: operations so far; vc[t]: those of stream t ordered before */
};

static Stream streams[MAX_STREAMS];

typedef struct Event {
    int magic, recorded;
    Stream *on;
    long gen, pos;
    long vc[MAX_STREAMS];
    struct Event *next;
} Event;
static Event *events;
enum { EVENT_MAGIC = 0x45564e54 };

/* Pinned host allocations (cuMemHostAlloc). */
typedef struct Pinned {
    void *p;
    size_t bytes;
    struct Pinned *next;
} Pinned;
static Pinned *pinned;

static Stream *stream_of(void *s) {
    Stream *st = s;
    return st >= streams && st < streams + MAX_STREAMS && st->live ? st : NULL;
}

static int index_of(const Stream *st) { return (int)(st - streams); }

static unsigned long long checksum(const void *p, size_t n) {
    unsigned long long h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}

static void race(const char *what) {
    fprintf(stderr, "fake_cuda: stream order error: %s\n", what);
    n_races++;
    if (!pending_fault) pending_fault = ERR_LAUNCH_FAILED;
}

static void run_until(Stream *st, long pos);

/* Runs a queued op. */
static void run_op(const Op *op) {
    CUresult r = OK;
    if (op->kind == OP_WAIT) {
        if (op->on->gen == op->gen) run_until(op->on, op->pos);
        return;
    }
    if (op->kind == OP_KERNEL) {
        Recorded *k = op->launch;
        if (k->f) r = run_launch(k->f, k->args, k->gx, k->gy, k->gz, k->block);
        else k->host(k->user); /* cuLaunchHostFunc */
        free(k);
    } else if (op->kind == OP_GRAPH) r = run_graph_launches(op->graph);
    if (op->kind != OP_COPY) {
        if (r && !pending_fault) pending_fault = r; /* a deferred launch that failed: seen at the next sync */
        return;
    }
    if (checksum(op->src, op->n) != op->sum)
        race("the host wrote a pinned buffer before the asynchronous copy out of it ran (wait for an event "
             "recorded after the copy first)");
    memcpy((void *)(uintptr_t)op->dst, op->src, op->n);
}

/* Runs st's queue up to position pos (exclusive). */
static void run_until(Stream *st, long pos) {
    while (st->done < pos && st->done < st->end) {
        Op op = st->ops[st->done - st->base]; /* a copy: run_op may grow the queue of another stream only */
        st->done++;
        run_op(&op);
    }
    if (st->done == st->end) st->base = st->end; /* the queue is empty: start it again */
}

static void run_stream(Stream *st) { run_until(st, st->end); }

/* Every stream's queue run, and every stream ordered after all work so far. */
static void barrier(void) {
    long all[MAX_STREAMS] = {0};
    for (int i = 0; i < MAX_STREAMS; i++)
        if (streams[i].live) run_stream(&streams[i]);
    for (int i = 0; i < MAX_STREAMS; i++)
        for (int t = 0; t < MAX_STREAMS; t++)
            if (streams[i].vc[t] > all[t]) all[t] = streams[i].vc[t];
    for (int i = 0; i < MAX_STREAMS; i++) memcpy(streams[i].vc, all, sizeof all);
}

static Alloc *alloc_at(CUdeviceptr p) {
    for (Alloc *a = allocs; a; a = a->next)
        if (p >= (CUdeviceptr)(uintptr_t)a->p && p < (CUdeviceptr)(uintptr_t)a->p + a->bytes) return a;
    return NULL;
}

/* Whether [p, p+n) lies in one device allocation. */
static int device_range(CUdeviceptr p, size_t n) {
    Alloc *a = alloc_at(p);
    return a && p + n <= (CUdeviceptr)(uintptr_t)a->p + a->bytes;
}

static int is_pinned(const void *p, size_t n) {
    for (Pinned *q = pinned; q; q = q->next)
        if ((const char *)p >= (char *)q->p && (const char *)p + n <= (char *)q->p + q->bytes) return 1;
    return 0;
}

/* One operation of st that uses device allocation a: counted, and checked against the other
 * streams' last uses of a. */
static void use(Stream *st, Alloc *a, const char *what) {
    int me = index_of(st);
    if (!a->used && !(a->used = calloc(MAX_STREAMS, sizeof(long)))) return;
    for (int t = 0; t < MAX_STREAMS; t++)
        if (t != me && a->used[t] > st->vc[t]) {
            char msg[400];
            snprintf(msg, sizeof msg,
                     "%s on stream %d uses device memory %p (%zu bytes) that stream %d used with no event wait between "
                     "them",
                     what, me, a->p, a->bytes, t);
            race(msg);
        }
    a->used[me] = st->vc[me];
}

/* A kernel launched on st with these (copied) arguments: every 8-byte argument that points
 * into a device allocation is a use of it. */
static void stream_uses(Stream *st, void **args, const char *what) {
    st->vc[index_of(st)]++;
    for (int i = 0; i < MAX_ARGS && args[i]; i++) {
        CUdeviceptr v;
        memcpy(&v, args[i], sizeof v);
        Alloc *a = alloc_at(v);
        if (a) use(st, a, what);
    }
}

static CUresult queue(Stream *st, Op op) {
    if (st->end - st->base == st->cap) {
        if (st->done > st->base) { /* drop the ops that ran */
            memmove(st->ops, st->ops + (st->done - st->base), sizeof(Op) * (size_t)(st->end - st->done));
            st->base = st->done;
        }
        if (st->end - st->base == st->cap) {
            long cap = st->cap ? 2 * st->cap : 16;
            Op *grown = realloc(st->ops, sizeof(Op) * (size_t)cap);
            if (!grown) return ERR_OUT_OF_MEMORY;
            st->ops = grown, st->cap = cap;
        }
    }
    st->ops[st->end++ - st->base] = op;
    return OK;
}

/* FAKE_CUDA_DEFER=1: kernels and graph launches are queued on their stream too, and run as late
 * as the program allows (a synchronisation, a copy out of the device, an event the host waits
 * for), so the host gets ahead of the device as it does on a GPU: a pinned buffer the host
 * writes again before the copy out of it ran shows. Off by default: the fault of a kernel then
 * surfaces later still, and the launch counts in FAKE_CUDA_STATS come at the synchronisations. */
static int deferring(void) {
    const char *v = getenv("FAKE_CUDA_DEFER");
    return v && strcmp(v, "1") == 0;
}

/* A launch on st in FAKE_CUDA_DEFER mode: queued with a copy of its arguments. */
static CUresult defer_launch(Stream *st, Function *f, void **params, unsigned gx, unsigned gy, unsigned gz,
                             unsigned bx) {
    Recorded *r = calloc(1, sizeof *r);
    if (!r) return ERR_OUT_OF_MEMORY;
    *r = (Recorded){.f = f, .gx = gx, .gy = gy, .gz = gz, .block = bx};
    if (!f->pack(params, r->buf, sizeof r->buf, r->args, MAX_ARGS)) return free(r), ERR_INVALID_VALUE;
    stream_uses(st, r->args, f->name);
    CUresult q = queue(st, (Op){.kind = OP_KERNEL, .launch = r});
    if (q) free(r);
    return q;
}

static CUresult defer_graph(Stream *st, Graph *g) { return queue(st, (Op){.kind = OP_GRAPH, .graph = g}); }

/* CU_STREAM_CAPTURE_STATUS_NONE 0, ACTIVE 1 (capture is per process here, not per stream). */
CUresult cuStreamIsCapturing(void *s, int *status) {
    if (!stream_of(s) && s) return ERR_INVALID_HANDLE;
    *status = capturing ? 1 : 0;
    return OK;
}

/* A host function run in stream order (a node of the graph when captured). As on the driver, it
 * must not call the CUDA API; here it runs on the thread that makes it due. */
CUresult cuLaunchHostFunc(void *s, void (*fn)(void *), void *user) {
    Stream *st = stream_of(s);
    if (!st && s) return ERR_INVALID_HANDLE;
    if (!fn) return ERR_INVALID_VALUE;
    if (capturing || (st && deferring())) {
        Recorded *r = calloc(1, sizeof *r);
        if (!r) return ERR_OUT_OF_MEMORY;
        r->host = fn, r->user = user;
        if (!capturing) {
            st->vc[index_of(st)]++;
            CUresult q = queue(st, (Op){.kind = OP_KERNEL, .launch = r});
            if (q) free(r);
            return q;
        }
        Graph *g = capturing;
        if (g->n == g->cap) {
            int cap = g->cap ? 2 * g->cap : 16;
            Recorded **grown = realloc(g->launches, sizeof(Recorded *) * (size_t)cap);
            if (!grown) return free(r), ERR_OUT_OF_MEMORY;
            g->launches = grown, g->cap = cap;
        }
        g->launches[g->n++] = r;
        return OK;
    }
    if (st) run_stream(st);
    else barrier();
    fn(user);
    return OK;
}

CUresult cuStreamCreate(void **s, unsigned flags) {
    if (flags > 1) return ERR_INVALID_VALUE;
    for (int i = 0; i < MAX_STREAMS; i++)
        if (!streams[i].live) {
            Stream *st = &streams[i];
            st->live = 1;
            st->base = st->done = st->end = 0;
            /* its clock goes on from the last stream in this slot: what others know of it stays true */
            *s = st;
            return OK;
        }
    return ERR_OUT_OF_MEMORY;
}

CUresult cuStreamDestroy_v2(void *s) {
    Stream *st = stream_of(s);
    if (!st) return ERR_INVALID_HANDLE;
    run_stream(st); /* the driver lets its work finish */
    free(st->ops);
    st->ops = NULL, st->cap = 0, st->live = 0, st->gen++;
    return OK;
}

CUresult cuStreamSynchronize(void *s) {
    if (refused_in_capture()) return ERR_CAPTURE_UNSUPPORTED;
    Stream *st = stream_of(s);
    if (!st && s) return ERR_INVALID_HANDLE;
    if (st) run_stream(st);
    else barrier();
    return pending_fault;
}

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, void *s) {
    Stream *st = stream_of(s);
    if (!st && s) return ERR_INVALID_HANDLE;
    if (n == 0) return OK;
    if (!src || !device_range(dst, n)) return ERR_INVALID_VALUE;
    if (!st) {
        barrier();
        return copy_htod(dst, src, n);
    }
    st->vc[index_of(st)]++;
    use(st, alloc_at(dst), "a host-to-device copy");
    if (!capturing && is_pinned(src, n)) /* the copy runs later: the host must not write src until then */
        return queue(st, (Op){.kind = OP_COPY, .dst = dst, .src = src, .n = n, .sum = checksum(src, n)});
    run_stream(st); /* from pageable memory the driver copies the source before it returns */
    return copy_htod(dst, src, n);
}

CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, void *s) {
    Stream *st = stream_of(s);
    if (!st && s) return ERR_INVALID_HANDLE;
    if (n == 0) return OK;
    if (!dst || !device_range(src, n)) return ERR_INVALID_VALUE;
    if (st) {
        run_stream(st);
        st->vc[index_of(st)]++;
        use(st, alloc_at(src), "a device-to-host copy");
    } else barrier();
    return copy_dtoh(dst, src, n);
}

CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, void *s) {
    Stream *st = stream_of(s);
    if (!st && s) return ERR_INVALID_HANDLE;
    if (n == 0) return OK;
    if (!device_range(dst, n)) return ERR_INVALID_VALUE;
    if (st) {
        run_stream(st);
        st->vc[index_of(st)]++;
        use(st, alloc_at(dst), "a memset");
    } else barrier();
    memset((void *)(uintptr_t)dst, v, n);
    return OK;
}

/* ---------------------------------------------------------------------------- pinned memory */

/* Page-locked host memory: host memory here, filled with 0xff bytes like device memory.
 * Flags: CU_MEMHOSTALLOC_PORTABLE 1, DEVICEMAP 2, WRITECOMBINED 4. */
CUresult cuMemHostAlloc(void **p, size_t bytes, unsigned flags) {
    if (!p || !bytes || flags > 7) return ERR_INVALID_VALUE;
    if (!initialised) return ERR_NOT_INITIALIZED;
    Pinned *q = malloc(sizeof *q);
    void *m = malloc(bytes);
    if (!q || !m) return free(q), free(m), ERR_OUT_OF_MEMORY;
    memset(m, 0xff, bytes);
    *q = (Pinned){.p = m, .bytes = bytes, .next = pinned};
    pinned = q;
    *p = m;
    return OK;
}

CUresult cuMemAllocHost_v2(void **p, size_t bytes) { return cuMemHostAlloc(p, bytes, 0); }

CUresult cuMemFreeHost(void *p) {
    for (Pinned **q = &pinned; *q; q = &(*q)->next)
        if ((*q)->p == p) {
            barrier(); /* no queued copy may still read it */
            Pinned *dead = *q;
            *q = dead->next;
            free(dead->p);
            free(dead);
            return OK;
        }
    return ERR_INVALID_VALUE; /* not from cuMemHostAlloc (or freed twice) */
}

/* ---------------------------------------------------------------------------- events */

static Event *event_of(void *e) {
    for (Event *v = events; v; v = v->next)
        if (v == e && v->magic == EVENT_MAGIC) return v;
    return NULL;
}

/* Flags: CU_EVENT_BLOCKING_SYNC 1, DISABLE_TIMING 2, INTERPROCESS 4 (which needs 2). */
CUresult cuEventCreate(void **e, unsigned flags) {
    if (!e || flags > 7 || ((flags & 4) && !(flags & 2))) return ERR_INVALID_VALUE;
    Event *v = calloc(1, sizeof *v);
    if (!v) return ERR_OUT_OF_MEMORY;
    v->magic = EVENT_MAGIC;
    v->next = events;
    events = v;
    *e = v;
    return OK;
}

CUresult cuEventDestroy_v2(void *e) {
    for (Event **v = &events; *v; v = &(*v)->next)
        if (*v == e) {
            Event *dead = *v;
            *v = dead->next;
            dead->magic = 0;
            free(dead);
            return OK;
        }
    return ERR_INVALID_HANDLE;
}

/* Stream capture of events (a fork or join inside a graph) is not emulated: refused, so the
 * backend cannot depend on it untested. */
CUresult cuEventRecord(void *e, void *s) {
    Event *v = event_of(e);
    Stream *st = stream_of(s);
    if (!v || (!st && s)) return ERR_INVALID_HANDLE;
    if (capturing) return ERR_NOT_SUPPORTED;
    if (!st) { /* the legacy stream: after everything so far */
        barrier();
        v->recorded = 0;
        return OK;
    }
    v->recorded = 1;
    v->on = st, v->gen = st->gen, v->pos = st->end;
    memcpy(v->vc, st->vc, sizeof v->vc);
    return OK;
}

CUresult cuEventSynchronize(void *e) {
    Event *v = event_of(e);
    if (!v) return ERR_INVALID_HANDLE;
    if (refused_in_capture()) return ERR_CAPTURE_UNSUPPORTED;
    if (v->recorded && v->on->gen == v->gen) run_until(v->on, v->pos);
    return pending_fault;
}

CUresult cuEventQuery(void *e) {
    Event *v = event_of(e);
    if (!v) return ERR_INVALID_HANDLE;
    if (v->recorded && v->on->gen == v->gen) run_until(v->on, v->pos); /* done as soon as asked */
    return pending_fault;
}

/* Flags: 0 (CU_EVENT_WAIT_EXTERNAL is for graphs, not emulated). Waiting for an event never
 * recorded does nothing, as on the driver. */
CUresult cuStreamWaitEvent(void *s, void *e, unsigned flags) {
    Event *v = event_of(e);
    Stream *st = stream_of(s);
    if (!v || (!st && s)) return ERR_INVALID_HANDLE;
    if (flags) return ERR_INVALID_VALUE;
    if (capturing) return ERR_NOT_SUPPORTED;
    if (!v->recorded || v->on->gen != v->gen) return OK;
    if (!st) {
        run_until(v->on, v->pos);
        return OK;
    }
    for (int t = 0; t < MAX_STREAMS; t++)
        if (v->vc[t] > st->vc[t]) st->vc[t] = v->vc[t];
    return queue(st, (Op){.kind = OP_WAIT, .on = v->on, .gen = v->gen, .pos = v->pos});
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
