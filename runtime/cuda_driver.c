/* cuda_driver.c - resolves the CUDA driver API at run time (see cuda_driver.h). */
#include "cuda_driver.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cu_check(const CudaDriver *d, CUresult r, const char *what, char *err, size_t errlen) {
    if (r == 0) return 0;
    const char *name = "unknown error", *desc = "";
    if (d->cuGetErrorName) d->cuGetErrorName(r, &name);
    if (d->cuGetErrorString) d->cuGetErrorString(r, &desc);
    snprintf(err, errlen, "%s: %s (%s)", what, name ? name : "?", desc ? desc : "");
    return -1;
}

#define RESOLVE(field, sym)                                                                   \
    do {                                                                                      \
        *(void **)&d->field = dlsym(d->lib, sym);                                             \
        if (!d->field) {                                                                      \
            snprintf(err, errlen, "the CUDA driver library lacks %s (driver too old?)", sym); \
            d->lib = NULL;                                                                    \
            return -1;                                                                        \
        }                                                                                     \
    } while (0)

/* The graph entry points (CUDA 11.4 and later), all or none. */
static void resolve_graphs(CudaDriver *d) {
    static const char *const names[] = {"cuStreamBeginCapture_v2", "cuStreamEndCapture", "cuGraphInstantiateWithFlags",
                                        "cuGraphLaunch",           "cuGraphExecDestroy", "cuGraphDestroy"};
    void **fields[] = {(void **)&d->cuStreamBeginCapture, (void **)&d->cuStreamEndCapture,
                       (void **)&d->cuGraphInstantiate,   (void **)&d->cuGraphLaunch,
                       (void **)&d->cuGraphExecDestroy,   (void **)&d->cuGraphDestroy};
    int all = 1;
    for (int i = 0; i < 6; i++) all &= (*fields[i] = dlsym(d->lib, names[i])) != NULL;
    if (!all)
        for (int i = 0; i < 6; i++) *fields[i] = NULL;
}

/* Pinned host memory and events (every driver since CUDA 4 has them), all or none. */
static void resolve_async(CudaDriver *d) {
    static const char *const names[] = {"cuMemHostAlloc", "cuMemFreeHost",      "cuEventCreate",    "cuEventDestroy_v2",
                                        "cuEventRecord",  "cuEventSynchronize", "cuStreamWaitEvent"};
    void **fields[] = {(void **)&d->cuMemHostAlloc,   (void **)&d->cuMemFreeHost, (void **)&d->cuEventCreate,
                       (void **)&d->cuEventDestroy,   (void **)&d->cuEventRecord, (void **)&d->cuEventSynchronize,
                       (void **)&d->cuStreamWaitEvent};
    int all = 1;
    for (int i = 0; i < 7; i++) all &= (*fields[i] = dlsym(d->lib, names[i])) != NULL;
    if (!all)
        for (int i = 0; i < 7; i++) *fields[i] = NULL;
}

/* The driver libraries this process opened, each once (issue 19, finding 2): never closed
 * (RTLD_NODELETE, no dlclose: unloading libcuda and loading it again, as every backend used to,
 * is slow and can crash), and with them the device's primary context, retained once and kept
 * until the process ends rather than destroyed and created again per backend. Keyed by the
 * library's name ($DINO_CUDA_DRIVER may name another between calls in the tests). */
enum { MAX_DRIVERS = 4 };
static struct {
    char name[512];
    void *lib;
    int have_ctx;
    CUcontext ctx;
} drivers[MAX_DRIVERS];
static int n_drivers;
static pthread_mutex_t drivers_lock = PTHREAD_MUTEX_INITIALIZER;

/* The library `name`, opened on first use; NULL (why in *why) when it does not load. */
static void *driver_library(const char *name, int *slot, const char **why) {
    pthread_mutex_lock(&drivers_lock);
    void *lib = NULL;
    *slot = -1;
    for (int i = 0; i < n_drivers && !lib; i++)
        if (strcmp(drivers[i].name, name) == 0) lib = drivers[i].lib, *slot = i;
    if (!lib) {
        lib = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!lib) *why = dlerror();
        else if (n_drivers < MAX_DRIVERS && strlen(name) < sizeof drivers[0].name) {
            *slot = n_drivers++;
            snprintf(drivers[*slot].name, sizeof drivers[*slot].name, "%s", name);
            drivers[*slot].lib = lib;
        }
    }
    pthread_mutex_unlock(&drivers_lock);
    return lib;
}

/* The device's primary context, retained once per process and kept. */
static CUresult primary_context(CudaDriver *d, int slot) {
    if (slot < 0) return d->cuDevicePrimaryCtxRetain(&d->ctx, d->dev); /* beyond the table: this open's own */
    pthread_mutex_lock(&drivers_lock);
    CUresult r = 0;
    if (!drivers[slot].have_ctx && (r = d->cuDevicePrimaryCtxRetain(&drivers[slot].ctx, d->dev)) == 0)
        drivers[slot].have_ctx = 1;
    d->ctx = drivers[slot].ctx;
    pthread_mutex_unlock(&drivers_lock);
    return r;
}

int cuda_open(CudaDriver *d, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    const char *env = getenv("DINO_CUDA_DRIVER"); /* another driver library (the tests' emulation) */
    const char *name = env && *env ? env : "libcuda.so.1";
    const char *why = NULL;
    int slot;
    d->lib = driver_library(name, &slot, &why);
    d->own_ctx = slot < 0;
    if (!d->lib) {
        if (env && *env)
            snprintf(err, errlen, "no CUDA driver: cannot load DINO_CUDA_DRIVER=%s (%s)", name, why ? why : "?");
        else snprintf(err, errlen, "no CUDA driver (libcuda.so.1 not found)");
        return -1;
    }
    RESOLVE(cuInit, "cuInit");
    RESOLVE(cuDeviceGetCount, "cuDeviceGetCount");
    RESOLVE(cuDeviceGet, "cuDeviceGet");
    RESOLVE(cuDeviceGetName, "cuDeviceGetName");
    RESOLVE(cuDeviceGetAttribute, "cuDeviceGetAttribute");
    RESOLVE(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    RESOLVE(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    RESOLVE(cuCtxSetCurrent, "cuCtxSetCurrent");
    RESOLVE(cuCtxSynchronize, "cuCtxSynchronize");
    RESOLVE(cuModuleLoadData, "cuModuleLoadData");
    RESOLVE(cuModuleUnload, "cuModuleUnload");
    RESOLVE(cuModuleGetFunction, "cuModuleGetFunction");
    RESOLVE(cuMemAlloc, "cuMemAlloc_v2");
    RESOLVE(cuMemFree, "cuMemFree_v2");
    RESOLVE(cuMemGetInfo, "cuMemGetInfo_v2");
    RESOLVE(cuMemcpyHtoD, "cuMemcpyHtoD_v2");
    RESOLVE(cuMemcpyDtoH, "cuMemcpyDtoH_v2");
    RESOLVE(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
    RESOLVE(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
    RESOLVE(cuMemsetD8Async, "cuMemsetD8Async");
    RESOLVE(cuStreamCreate, "cuStreamCreate");
    RESOLVE(cuStreamDestroy, "cuStreamDestroy_v2");
    RESOLVE(cuStreamSynchronize, "cuStreamSynchronize");
    RESOLVE(cuLaunchKernel, "cuLaunchKernel");
    RESOLVE(cuGetErrorName, "cuGetErrorName");
    RESOLVE(cuGetErrorString, "cuGetErrorString");
    resolve_graphs(d);
    resolve_async(d);
    *(void **)&d->cuOccupancyMaxActiveBlocksPerMultiprocessor =
        dlsym(d->lib, "cuOccupancyMaxActiveBlocksPerMultiprocessor");

    int count = 0;
    if (cu_check(d, d->cuInit(0), "cuInit", err, errlen) ||
        cu_check(d, d->cuDeviceGetCount(&count), "cuDeviceGetCount", err, errlen)) {
        cuda_close(d);
        return -1;
    }
    if (count < 1) {
        snprintf(err, errlen, "the CUDA driver sees no GPU");
        cuda_close(d);
        return -1;
    }
    /* DINO_CUDA_DEVICE: which GPU (modulo the count); under mpirun each rank takes its local
     * rank's (parallel.c sets it, once per process: the retained context is that device's) */
    const char *pick = getenv("DINO_CUDA_DEVICE");
    int ordinal = pick && *pick >= '0' && *pick <= '9' ? atoi(pick) % count : 0;
    if (cu_check(d, d->cuDeviceGet(&d->dev, ordinal), "cuDeviceGet", err, errlen) ||
        cu_check(d, primary_context(d, slot), "cuDevicePrimaryCtxRetain", err, errlen) ||
        cu_check(d, d->cuCtxSetCurrent(d->ctx), "cuCtxSetCurrent", err, errlen)) {
        cuda_close(d);
        return -1;
    }
    d->cuDeviceGetName(d->name, sizeof d->name, d->dev);
    d->cuDeviceGetAttribute(&d->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d->dev);
    d->cuDeviceGetAttribute(&d->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d->dev);
    d->cuDeviceGetAttribute(&d->sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, d->dev);
    return 0;
}

/* The library and the primary context stay (see drivers above). */
void cuda_close(CudaDriver *d) {
    if (d->lib && d->ctx && d->own_ctx && d->cuDevicePrimaryCtxRelease) d->cuDevicePrimaryCtxRelease(d->dev);
    memset(d, 0, sizeof *d);
}

int cuda_driver_version(int *version, char *lib, size_t liblen, char *err, size_t errlen) {
    const char *env = getenv("DINO_CUDA_DRIVER");
    const char *name = env && *env ? env : "libcuda.so.1";
    snprintf(lib, liblen, "%s", name);
    const char *why = NULL;
    int slot;
    void *h = driver_library(name, &slot, &why);
    if (!h) {
        snprintf(err, errlen, "%s not found", name);
        return -1;
    }
    CUresult (*get)(int *);
    *(void **)&get = dlsym(h, "cuDriverGetVersion");
    int rc = get && get(version) == 0 ? 0 : -1;
    if (rc) snprintf(err, errlen, "%s does not say its version (cuDriverGetVersion)", name);
    return rc;
}
