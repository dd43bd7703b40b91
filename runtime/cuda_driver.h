/* cuda_driver.h - the CUDA driver API, loaded at run time with dlopen("libcuda.so.1").
 *
 * dino links no CUDA library: this file declares the few driver types and entry points it
 * uses and resolves them when a GPU is wanted, so one binary runs with or without a GPU.
 * cu_check() turns a driver error into a message with the call, the error's name and a hint. */
#ifndef DINO_CUDA_DRIVER_H
#define DINO_CUDA_DRIVER_H

#include <stddef.h>

typedef int CUresult; /* 0 = CUDA_SUCCESS */
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef unsigned long long CUdeviceptr;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;
typedef struct CUevent_st *CUevent;

enum {
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NO_DEVICE = 100,
    CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1,
    CU_EVENT_DISABLE_TIMING = 2,
};

typedef struct {
    void *lib;
    CUresult (*cuInit)(unsigned);
    CUresult (*cuDeviceGetCount)(int *);
    CUresult (*cuDeviceGet)(CUdevice *, int);
    CUresult (*cuDeviceGetName)(char *, int, CUdevice);
    CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
    CUresult (*cuDevicePrimaryCtxRelease)(CUdevice);
    CUresult (*cuCtxSetCurrent)(CUcontext);
    CUresult (*cuCtxSynchronize)(void);
    CUresult (*cuModuleLoadData)(CUmodule *, const void *);
    CUresult (*cuModuleUnload)(CUmodule);
    CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
    CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
    CUresult (*cuMemFree)(CUdeviceptr);
    CUresult (*cuMemGetInfo)(size_t *, size_t *);
    CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
    CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
    CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
    CUresult (*cuMemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
    CUresult (*cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream);
    CUresult (*cuStreamCreate)(CUstream *, unsigned);
    CUresult (*cuStreamDestroy)(CUstream);
    CUresult (*cuStreamSynchronize)(CUstream);
    CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                               CUstream, void **, void **);
    CUresult (*cuGetErrorName)(CUresult, const char **);
    CUresult (*cuGetErrorString)(CUresult, const char **);
    /* CUDA graphs (stream capture), optional: all NULL when the driver lacks one of them */
    CUresult (*cuStreamBeginCapture)(CUstream, int);
    CUresult (*cuStreamEndCapture)(CUstream, CUgraph *);
    CUresult (*cuGraphInstantiate)(CUgraphExec *, CUgraph, unsigned long long);
    CUresult (*cuGraphLaunch)(CUgraphExec, CUstream);
    CUresult (*cuOccupancyMaxActiveBlocksPerMultiprocessor)(int *, CUfunction, int, size_t); /* may be NULL */
    CUresult (*cuGraphExecDestroy)(CUgraphExec);
    CUresult (*cuGraphDestroy)(CUgraph);
    /* Pinned host memory and events, for streaming the training data (backend_cuda.c), optional
     * like the graphs: all NULL when the driver lacks one of them */
    CUresult (*cuMemHostAlloc)(void **, size_t, unsigned);
    CUresult (*cuMemFreeHost)(void *);
    CUresult (*cuEventCreate)(CUevent *, unsigned);
    CUresult (*cuEventDestroy)(CUevent);
    CUresult (*cuEventRecord)(CUevent, CUstream);
    CUresult (*cuEventSynchronize)(CUevent);
    CUresult (*cuStreamWaitEvent)(CUstream, CUevent, unsigned);
    /* the device in use */
    CUdevice dev;
    CUcontext ctx;
    int own_ctx; /* ctx retained for this open alone (released by cuda_close), not the process's */
    char name[128];
    int cc_major, cc_minor, sms;
} CudaDriver;

/* Loads the driver (libcuda.so.1, or the file $DINO_CUDA_DRIVER names) and opens device 0. Returns 0, or -1 with the reason in err (no driver
 * library, no device, ...). */
int cuda_open(CudaDriver *d, char *err, size_t errlen);
void cuda_close(CudaDriver *d);

/* The driver's CUDA version (cuDriverGetVersion: 12040 for 12.4) and the library it came from
 * (libcuda.so.1 or $DINO_CUDA_DRIVER), without initialising it. 0, or -1 with why in err. */
int cuda_driver_version(int *version, char *lib, size_t liblen, char *err, size_t errlen);

/* 0 when r is success; else -1 with "what: NAME (description)" in err. */
int cu_check(const CudaDriver *d, CUresult r, const char *what, char *err, size_t errlen);

#endif
