/* test_fake_driver.c - the stand-in driver (tests/fake_cuda/fake_cuda.c) refuses what a real
 * driver refuses (issue 19), so that the CUDA backend's tests on it would see those mistakes:
 *   - allocations, frees, synchronous copies and synchronisations during a (thread-local) stream
 *     capture: CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED (900), and the capture invalidated (its end
 *     901, no graph); an allocation in a relaxed capture is allowed;
 *   - a launch asking more dynamic shared memory than the function's
 *     MAX_DYNAMIC_SHARED_SIZE_BYTES: CUDA_ERROR_INVALID_VALUE (1); cuFuncSetAttribute raises it
 *     up to the device's opt-in limit (227 KiB on sm_90) less the static shared memory, and
 *     cuFuncGetAttribute reads it back;
 *   - a CUBIN (ELF, EM_CUDA) built for another architecture: CUDA_ERROR_NO_BINARY_FOR_GPU (209),
 *     by the ELF flags of both layouts (CUDA 12.8+ and before); sm_80 code on an sm_86 device is
 *     compatible (same major version) and sm_90 code is not; and real CUBINs that this machine's
 *     NVRTC makes, when it has one;
 *   - and a launch that the emulation's hazard modes find wrong (DINO_EMU_HAZARDS=divergence, a
 *     barrier half the block skips) fails: CUDA_ERROR_LAUNCH_FAILED (719).
 *
 *   test_fake_driver LIBFAKE_CUDA.so */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvrtc.h"

typedef int (*Fn)();
static void *lib;
static int failures;

static Fn sym(const char *name) {
    Fn f = (Fn)dlsym(lib, name);
    if (!f) printf("FAIL: the stand-in driver has no %s\n", name), exit(1);
    return f;
}

static void expect(const char *what, int got, int want) {
    printf("%s %-72s %d (%d expected)\n", got == want ? "ok  " : "FAIL", what, got, want);
    failures += got != want;
}

/* The first 64 bytes of a CUBIN: ELF64, EM_CUDA, ELF ABI version abi, e_flags flags. */
static void cubin_header(unsigned char *h, int abi, uint32_t flags) {
    memset(h, 0, 64);
    memcpy(h,
           "\x7f"
           "ELF",
           4);
    h[4] = 2, h[5] = 1, h[6] = 1, h[7] = 0x41, h[8] = (unsigned char)abi; /* 64-bit, LE, CUDA OS ABI */
    h[16] = 2;                                                            /* ET_EXEC */
    h[18] = 190;                                                          /* EM_CUDA */
    memcpy(h + 48, &flags, 4);
}

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: test_fake_driver LIBFAKE_CUDA.so\n"), 2;
    setenv("FAKE_CUDA_CC", "90", 1);
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) return printf("FAIL: %s\n", dlerror()), 1;
    void *ctx, *stream, *graph, *mod, *fn;
    unsigned long long dptr, more;
    sym("cuInit")(0);
    sym("cuDevicePrimaryCtxRetain")(&ctx, 0);
    sym("cuCtxSetCurrent")(ctx);
    sym("cuStreamCreate")(&stream, 0);
    sym("cuMemAlloc_v2")(&dptr, (size_t)4096);

    /* during capture */
    static const char *const calls[] = {"cuMemAlloc_v2", "cuMemFree_v2", "cuMemcpyHtoD_v2", "cuCtxSynchronize"};
    char host[64] = {0}, what[160];
    for (int i = 0; i < 4; i++) {
        sym("cuStreamBeginCapture_v2")(stream, 1);
        int r = i == 0 ? sym(calls[i])(&more, (size_t)64)
            : i == 1   ? sym(calls[i])(dptr)
            : i == 2   ? sym(calls[i])(dptr, host, sizeof host)
                       : sym(calls[i])();
        graph = (void *)1;
        int end = sym("cuStreamEndCapture")(stream, &graph);
        snprintf(what, sizeof what, "%s during a thread-local capture", calls[i]);
        expect(what, r, 900);
        snprintf(what, sizeof what, "... invalidates it: cuStreamEndCapture%s", graph ? " (and a graph!)" : "");
        expect(what, end + (graph != NULL), 901);
    }
    sym("cuStreamBeginCapture_v2")(stream, 2);
    int r = sym("cuMemAlloc_v2")(&more, (size_t)64);
    graph = NULL;
    int end = sym("cuStreamEndCapture")(stream, &graph);
    expect("cuMemAlloc_v2 during a relaxed capture", r, 0);
    expect("... and the capture ends with its graph", end + (graph == NULL), 0);
    if (graph) sym("cuGraphDestroy")(graph);
    if (!r) sym("cuMemFree_v2")(more);

    /* dynamic shared memory against the function's attribute */
    static const char image[] = "DINOEMU\n// arch sm_90\n"
                                "extern \"C\" __global__ void k(float *x) {\n"
                                "    __shared__ float s[256];\n"
                                "    s[threadIdx.x] = (float)threadIdx.x;\n"
                                "    __syncthreads();\n"
                                "    x[threadIdx.x] = s[255 - threadIdx.x];\n"
                                "}\n";
    r = sym("cuModuleLoadData")(&mod, image);
    expect("cuModuleLoadData of a module for sm_90 on sm_90", r, 0);
    if (r) return printf("FAIL\n"), 1;
    sym("cuModuleGetFunction")(&fn, mod, "k");
    int stat = -1, dyn = -1;
    sym("cuFuncGetAttribute")(&stat, 1, fn);
    sym("cuFuncGetAttribute")(&dyn, 8, fn);
    expect("static shared memory (SHARED_SIZE_BYTES) >= 1024", stat >= 1024, 1);
    expect("MAX_DYNAMIC_SHARED_SIZE_BYTES: 48 KiB less the static part", dyn, 49152 - stat);
    void *args[] = {&dptr};
    expect("a launch with that much dynamic shared memory",
           sym("cuLaunchKernel")(fn, 1, 1, 1, 256, 1, 1, (unsigned)dyn, stream, args, NULL), 0);
    expect("a launch with a byte more",
           sym("cuLaunchKernel")(fn, 1, 1, 1, 256, 1, 1, (unsigned)dyn + 1, stream, args, NULL), 1);
    expect("cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES, 100000) on sm_90",
           sym("cuFuncSetAttribute")(fn, 8, 100000), 0);
    sym("cuFuncGetAttribute")(&dyn, 8, fn);
    expect("... read back", dyn, 100000);
    expect("... then a launch with 100000 bytes",
           sym("cuLaunchKernel")(fn, 1, 1, 1, 256, 1, 1, 100000u, stream, args, NULL), 0);
    expect("... and with 100001", sym("cuLaunchKernel")(fn, 1, 1, 1, 256, 1, 1, 100001u, stream, args, NULL), 1);
    expect("cuFuncSetAttribute beyond 227 KiB with the static part",
           sym("cuFuncSetAttribute")(fn, 8, 232448 - stat + 1), 1);
    float out[256];
    sym("cuMemcpyDtoH_v2")(out, dptr, sizeof out);
    expect("the kernel ran (x[0] = 255)", (int)out[0], 255);
    sym("cuModuleUnload")(mod);

    /* the emulation's hazard modes reach the stand-in's launches: a barrier half the block skips
     * runs in the normal mode and fails the launch under DINO_EMU_HAZARDS=divergence */
    static const char divergent[] = "DINOEMU\n// arch sm_90\n"
                                    "extern \"C\" __global__ void d(float *x) {\n"
                                    "    if (threadIdx.x < 32) __syncthreads();\n"
                                    "    x[threadIdx.x] = 1;\n"
                                    "}\n";
    if (sym("cuModuleLoadData")(&mod, divergent) == 0 && sym("cuModuleGetFunction")(&fn, mod, "d") == 0) {
        expect("a divergent barrier in the normal mode",
               sym("cuLaunchKernel")(fn, 1, 1, 1, 64, 1, 1, 0u, stream, args, NULL), 0);
        setenv("DINO_EMU_HAZARDS", "divergence", 1);
        expect("... under DINO_EMU_HAZARDS=divergence: CUDA_ERROR_LAUNCH_FAILED",
               sym("cuLaunchKernel")(fn, 1, 1, 1, 64, 1, 1, 0u, stream, args, NULL), 719);
        unsetenv("DINO_EMU_HAZARDS");
        sym("cuModuleUnload")(mod);
    } else {
        expect("cuModuleLoadData of the divergent kernel", 1, 0);
    }

    /* CUBINs for other architectures, by their ELF flags */
    static const struct {
        int abi;
        uint32_t flags;
        const char *cc, *what;
        int want;
    } bins[] = {
        {8, 0x6005004, "90", "sm_80 CUBIN (CUDA 13 layout) on sm_90", 209},
        {7, 0x500550, "90", "sm_80 CUBIN (CUDA 12 layout) on sm_90", 209},
        {8, 0x6005a04, "90", "sm_90 CUBIN on sm_90 (compatible; the emulation runs none: 200)", 200},
        {8, 0x6005004, "86", "sm_80 CUBIN on sm_86 (compatible; 200)", 200},
        {8, 0x6005a04, "86", "sm_90 CUBIN on sm_86", 209},
        {8, 0x6005904, "80", "sm_89 CUBIN on sm_80", 209},
    };
    for (size_t i = 0; i < sizeof bins / sizeof *bins; i++) {
        unsigned char h[64];
        cubin_header(h, bins[i].abi, bins[i].flags);
        setenv("FAKE_CUDA_CC", bins[i].cc, 1);
        expect(bins[i].what, sym("cuModuleLoadData")(&mod, h), bins[i].want);
    }
    setenv("FAKE_CUDA_CC", "90", 1);
    /* and real CUBINs from this machine's NVRTC, when it has one */
    char err[4096];
#ifdef FAKE_DRIVER_NO_NVRTC
    snprintf(err, sizeof err, "the sanitizer build does not call it");
    if (0) {
#else
    if (nvrtc_load(err, sizeof err) == NVRTC_OK) {
#endif
        static const char src[] = "extern \"C\" __global__ void k(float *x) { x[threadIdx.x] = 1; }\n";
        static const struct {
            const char *arch, *what;
            int want;
        } real[] = {{"sm_80", "NVRTC's sm_80 CUBIN on sm_90", 209},
                    {"sm_90", "NVRTC's sm_90 CUBIN on sm_90 (200)", 200}};
        for (size_t i = 0; i < sizeof real / sizeof *real; i++) {
            char *bin = NULL, *log = NULL;
            size_t len = 0;
            if (nvrtc_arch_supported(atoi(real[i].arch + 3)) != 1 ||
                nvrtc_compile(src, "k.cu", real[i].arch, 1, &bin, &len, &log, err, sizeof err) != NVRTC_OK) {
                printf("note: NVRTC makes no CUBIN for %s here: not tried\n", real[i].arch);
            } else {
                expect(real[i].what, sym("cuModuleLoadData")(&mod, bin), real[i].want);
            }
            free(bin), free(log);
        }
    } else {
        printf("note: no NVRTC (%s): real CUBINs not tried\n", err);
    }
    sym("cuMemFree_v2")(dptr);
    printf("%s\n", failures ? "FAIL" : "ok");
    return failures ? 1 : 0;
}
