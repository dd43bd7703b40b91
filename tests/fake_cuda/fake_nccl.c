/* fake_nccl.c - a stand-in for libnccl.so.2 over MPI, for tests only (built when MPI is found).
 *
 * With DINO_NCCL_LIB=libfake_nccl.so and the stand-in CUDA driver (fake_cuda.c, whose device
 * memory is host memory), dino-jit's data-parallel CUDA path (runtime/nccl.c, parallel.c) runs
 * under mpirun on a machine without GPUs or NCCL:
 *   - ncclCommInitRank checks what NCCL checks: MPI's size and rank match, every rank passed the
 *     same unique id; the communicator is its own MPI communicator (MPI_Comm_dup), so its
 *     collectives never mix with the caller's MPI calls, as NCCL's never do;
 *   - ncclAllReduce (float32 or float64; ncclSum or a ncclRedOpCreatePreMulSum op with a host
 *     scalar, whose value is taken when the call is made, as NCCL does) is enqueued on the
 *     stream with the driver's cuLaunchHostFunc: during stream capture it becomes a node of the
 *     graph and runs at each launch of the graph (a collective of all ranks then); otherwise it
 *     runs in stream order;
 *   - ncclGetVersion says FAKE_NCCL_VERSION (default 22304, i.e. 2.23.4; 20803 is 2.8.3, which
 *     cannot be captured);
 *   - FAKE_NCCL_STATS=FILE appends "rank R calls C runs N captured K" at ncclCommDestroy: C
 *     ncclAllReduce calls, N all-reduces run, K of the calls made during a stream capture.
 * What this checks is the host side: when and where dino enqueues the sum, with which scale. */
#include <dlfcn.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5,
};
enum { ncclSum = 0, ncclNumOps = 5, MAX_OPS = 64 };
enum { ncclFloat32 = 7, ncclFloat64 = 8 };
enum { ncclScalarDevice = 0, ncclScalarHostImmediate = 1 };

typedef struct {
    char internal[128];
} ncclUniqueId;

typedef struct Job {
    const void *send;
    void *recv;
    size_t count;
    int type;
    double scale;
    struct Comm *comm;
    struct Job *next;
} Job;

typedef struct Comm {
    int nranks, rank;
    MPI_Comm mpi;
    Job *jobs; /* kept while a graph may still run them: freed with the communicator */
    double op_scale[MAX_OPS];
    int op_live[MAX_OPS];
    long calls, runs, captured;
} Comm;

int ncclGetVersion(int *version) {
    const char *v = getenv("FAKE_NCCL_VERSION");
    *version = v && *v ? atoi(v) : 22304;
    return ncclSuccess;
}

const char *ncclGetErrorString(int r) {
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (fake_nccl)";
    case ncclSystemError: return "unhandled system error (fake_nccl)";
    case ncclInvalidArgument: return "invalid argument (fake_nccl)";
    case ncclInvalidUsage: return "invalid usage (fake_nccl)";
    default: return "internal error (fake_nccl)";
    }
}

int ncclGetUniqueId(ncclUniqueId *id) {
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "fake-nccl %ld", (long)getpid());
    return ncclSuccess;
}

int ncclCommInitRank(Comm **out, int nranks, ncclUniqueId id, int rank) {
    int ready = 0, size = 0, me = -1;
    MPI_Initialized(&ready);
    if (!ready) return ncclSystemError;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    if (nranks != size || rank != me || rank < 0) return ncclInvalidArgument;
    /* every rank must pass rank 0's id */
    ncclUniqueId root = id;
    MPI_Bcast(root.internal, sizeof root.internal, MPI_BYTE, 0, MPI_COMM_WORLD);
    int differs = memcmp(root.internal, id.internal, sizeof id.internal) != 0, any = 0;
    MPI_Allreduce(&differs, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any) return ncclInvalidUsage;
    Comm *c = calloc(1, sizeof *c);
    if (!c) return ncclSystemError;
    c->nranks = nranks, c->rank = rank;
    MPI_Comm_dup(MPI_COMM_WORLD, &c->mpi);
    *out = c;
    return ncclSuccess;
}

int ncclRedOpCreatePreMulSum(int *op, void *scalar, int type, int residence, Comm *c) {
    if (!c || !op || !scalar || (type != ncclFloat32 && type != ncclFloat64)) return ncclInvalidArgument;
    if (residence != ncclScalarHostImmediate) return ncclInvalidArgument; /* device scalars: not emulated */
    for (int i = ncclNumOps; i < MAX_OPS; i++)
        if (!c->op_live[i]) {
            c->op_live[i] = 1;
            c->op_scale[i] = type == ncclFloat64 ? *(double *)scalar : *(float *)scalar;
            *op = i;
            return ncclSuccess;
        }
    return ncclSystemError;
}

int ncclRedOpDestroy(int op, Comm *c) {
    if (!c || op < ncclNumOps || op >= MAX_OPS || !c->op_live[op]) return ncclInvalidArgument;
    c->op_live[op] = 0;
    return ncclSuccess;
}

static void run_job(void *arg) {
    Job *j = arg;
    size_t es = j->type == ncclFloat64 ? 8 : 4;
    if (j->recv != j->send) memcpy(j->recv, j->send, es * j->count);
    if (j->type == ncclFloat64)
        for (size_t i = 0; i < j->count; i++) ((double *)j->recv)[i] *= j->scale;
    else
        for (size_t i = 0; i < j->count; i++) ((float *)j->recv)[i] = (float)(((float *)j->recv)[i] * j->scale);
    for (size_t at = 0; at < j->count; at += 1 << 30) {
        int k = j->count - at < (1u << 30) ? (int)(j->count - at) : 1 << 30;
        MPI_Allreduce(MPI_IN_PLACE, (char *)j->recv + es * at, k, j->type == ncclFloat64 ? MPI_DOUBLE : MPI_FLOAT,
                      MPI_SUM, j->comm->mpi);
    }
    j->comm->runs++;
}

int ncclAllReduce(const void *send, void *recv, size_t count, int type, int op, Comm *c, void *stream) {
    if (!c || !send || !recv || (type != ncclFloat32 && type != ncclFloat64)) return ncclInvalidArgument;
    if (op != ncclSum && (op < ncclNumOps || op >= MAX_OPS || !c->op_live[op])) return ncclInvalidArgument;
    const char *driver = getenv("DINO_CUDA_DRIVER");
    void *lib = driver && *driver ? dlopen(driver, RTLD_NOW | RTLD_NOLOAD) : NULL;
    int (*launch_host)(void *, void (*)(void *), void *) = NULL;
    int (*is_capturing)(void *, int *) = NULL;
    if (lib) {
        *(void **)&launch_host = dlsym(lib, "cuLaunchHostFunc");
        *(void **)&is_capturing = dlsym(lib, "cuStreamIsCapturing");
        dlclose(lib); /* RTLD_NOLOAD: only the reference just taken */
    }
    if (!launch_host) return ncclUnhandledCudaError; /* only with the stand-in driver */
    Job *j = calloc(1, sizeof *j);
    if (!j) return ncclSystemError;
    *j = (Job){.send = send, .recv = recv, .count = count, .type = type, .comm = c, .next = c->jobs};
    j->scale = op == ncclSum ? 1.0 : c->op_scale[op];
    c->jobs = j;
    c->calls++;
    int capturing = 0;
    if (is_capturing && is_capturing(stream, &capturing) == 0 && capturing) c->captured++;
    return launch_host(stream, run_job, j) == 0 ? ncclSuccess : ncclUnhandledCudaError;
}

int ncclCommDestroy(Comm *c) {
    if (!c) return ncclInvalidArgument;
    const char *file = getenv("FAKE_NCCL_STATS");
    FILE *f = file && *file ? fopen(file, "a") : NULL;
    if (f) {
        fprintf(f, "rank %d calls %ld runs %ld captured %ld\n", c->rank, c->calls, c->runs, c->captured);
        fclose(f);
    }
    while (c->jobs) {
        Job *j = c->jobs;
        c->jobs = j->next;
        free(j);
    }
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&c->mpi);
    free(c);
    return ncclSuccess;
}
