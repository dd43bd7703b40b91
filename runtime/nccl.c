/* nccl.c - NCCL through dlopen (nccl.h). UNTESTED ON HARDWARE (see nccl.h). */
#include "nccl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ABI of nccl.h: a 128-byte id passed by value, opaque communicators, int enums. */
typedef struct {
    char internal[NCCL_ID_BYTES];
} NcclUniqueId;
typedef void *NcclComm;
enum { NCCL_SUCCESS = 0, NCCL_FLOAT32 = 7, NCCL_FLOAT64 = 8, NCCL_SCALAR_HOST_IMMEDIATE = 1 };

struct Nccl {
    void *lib;
    NcclComm comm;
    int (*GetUniqueId)(NcclUniqueId *id);
    int (*CommInitRank)(NcclComm *comm, int nranks, NcclUniqueId id, int rank);
    int (*AllReduce)(const void *send, void *recv, size_t count, int type, int op, NcclComm comm, void *stream);
    int (*RedOpCreatePreMulSum)(int *op, void *scalar, int type, int residence, NcclComm comm);
    int (*RedOpDestroy)(int op, NcclComm comm);
    int (*CommDestroy)(NcclComm comm);
    const char *(*GetErrorString)(int result);
    int (*GetVersion)(int *version); /* may be NULL */
};

Nccl *nccl_load(char *err, size_t errlen) {
    const char *name = getenv("DINO_NCCL_LIB") ? getenv("DINO_NCCL_LIB") : "libnccl.so.2";
    void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(err, errlen, "NCCL (%s) could not be loaded: %s", name, dlerror());
        return NULL;
    }
    Nccl *n = calloc(1, sizeof *n);
    if (!n) {
        dlclose(lib);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->lib = lib;
    const char *names[] = {"ncclGetUniqueId",  "ncclCommInitRank", "ncclAllReduce",     "ncclRedOpCreatePreMulSum",
                           "ncclRedOpDestroy", "ncclCommDestroy",  "ncclGetErrorString"};
    void **fields[] = {(void **)&n->GetUniqueId,          (void **)&n->CommInitRank, (void **)&n->AllReduce,
                       (void **)&n->RedOpCreatePreMulSum, (void **)&n->RedOpDestroy, (void **)&n->CommDestroy,
                       (void **)&n->GetErrorString};
    for (int i = 0; i < 7; i++)
        if (!(*fields[i] = dlsym(lib, names[i]))) {
            snprintf(err, errlen, "%s lacks %s (dino needs NCCL 2.11 or later)", name, names[i]);
            nccl_close(n);
            return NULL;
        }
    *(void **)&n->GetVersion = dlsym(lib, "ncclGetVersion");
    return n;
}

int nccl_version(Nccl *n, char *text, size_t len) {
    int v = 0;
    if (!n->GetVersion || n->GetVersion(&v) != NCCL_SUCCESS || v <= 0) {
        snprintf(text, len, "of unknown version");
        return 0;
    }
    if (v >= 10000) snprintf(text, len, "%d.%d.%d", v / 10000, v / 100 % 100, v % 100); /* 2.9 and later */
    else snprintf(text, len, "%d.%d.%d", v / 1000, v / 100 % 10, v % 100);
    return v;
}

/* "Starting with NCCL 2.9, NCCL operations can be captured by CUDA Graphs" (NCCL user guide,
 * Using NCCL with CUDA Graphs); 2.9.0 is 20900, and every older code (2899 at most) is less. */
int nccl_capturable(Nccl *n) {
    char text[32];
    return nccl_version(n, text, sizeof text) >= 20900;
}

static int failed(Nccl *n, int r, const char *what, char *err, size_t errlen) {
    if (r == NCCL_SUCCESS) return 0;
    snprintf(err, errlen, "%s failed: %s", what, n->GetErrorString(r));
    return -1;
}

int nccl_unique_id(Nccl *n, unsigned char id[NCCL_ID_BYTES], char *err, size_t errlen) {
    NcclUniqueId u;
    if (failed(n, n->GetUniqueId(&u), "ncclGetUniqueId", err, errlen)) return -1;
    memcpy(id, u.internal, NCCL_ID_BYTES);
    return 0;
}

int nccl_init(Nccl *n, int size, int rank, const unsigned char id[NCCL_ID_BYTES], char *err, size_t errlen) {
    NcclUniqueId u;
    memcpy(u.internal, id, NCCL_ID_BYTES);
    return failed(n, n->CommInitRank(&n->comm, size, u, rank), "ncclCommInitRank", err, errlen);
}

int nccl_allreduce_scaled(Nccl *n, void *buf, size_t count, int f64, double scale, void *stream, char *err,
                          size_t errlen) {
    int type = f64 ? NCCL_FLOAT64 : NCCL_FLOAT32, op;
    float s32 = (float)scale;
    void *scalar = f64 ? (void *)&scale : (void *)&s32;
    if (failed(n, n->RedOpCreatePreMulSum(&op, scalar, type, NCCL_SCALAR_HOST_IMMEDIATE, n->comm),
               "ncclRedOpCreatePreMulSum", err, errlen))
        return -1;
    int r = n->AllReduce(buf, buf, count, type, op, n->comm, stream);
    n->RedOpDestroy(op, n->comm);
    return failed(n, r, "ncclAllReduce of the gradient", err, errlen);
}

void nccl_close(Nccl *n) {
    if (!n) return;
    if (n->comm && n->CommDestroy) n->CommDestroy(n->comm);
    if (n->lib) dlclose(n->lib);
    free(n);
}
