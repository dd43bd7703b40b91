/* parallel.c - launcher detection and the MPI Reducer (parallel.h). The MPI calls are compiled
 * only with DINO_HAVE_MPI (CMake found MPI); without it a launch of several processes is
 * refused and one process runs as before. */
#include "parallel.h"

#include "nccl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DINO_HAVE_MPI
#include <mpi.h>
#endif

int parallel_have_mpi(void) {
#ifdef DINO_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

static int env_int(const char *name, int *out) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > 1 << 24) return 0;
    *out = (int)v;
    return 1;
}

void parallel_detect(Parallel *p) {
    memset(p, 0, sizeof *p);
    p->size = 1;
    p->launcher = "";
    int size;
    if (env_int("OMPI_COMM_WORLD_SIZE", &size)) {
        p->launcher = "OpenMPI";
        p->size = size;
        env_int("OMPI_COMM_WORLD_RANK", &p->rank);
        env_int("OMPI_COMM_WORLD_LOCAL_RANK", &p->local_rank);
    } else if (env_int("PMI_SIZE", &size)) {
        p->launcher = "MPICH";
        p->size = size;
        env_int("PMI_RANK", &p->rank);
        if (!env_int("MPI_LOCALRANKID", &p->local_rank)) env_int("PMI_LOCAL_RANK", &p->local_rank);
    } else if (env_int("SLURM_NTASKS", &size) && getenv("SLURM_PROCID")) {
        p->launcher = "Slurm";
        p->size = size;
        env_int("SLURM_PROCID", &p->rank);
        env_int("SLURM_LOCALID", &p->local_rank);
    }
    if (p->size < 1) p->size = 1;
}

int parallel_start(int *argc, char ***argv, Parallel *p, char *err, size_t errlen) {
    parallel_detect(p);
    if (p->size <= 1) {
        p->rank = 0;
        return 0;
    }
#ifdef DINO_HAVE_MPI
    int done = 0;
    MPI_Initialized(&done);
    if (!done && MPI_Init(argc, argv) != MPI_SUCCESS) {
        snprintf(err, errlen, "%s started %d processes and MPI_Init failed", p->launcher, p->size);
        return -1;
    }
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != p->size) { /* e.g. MPICH's mpiexec starting a dino built with OpenMPI: each a singleton */
        snprintf(err, errlen,
                 "%s started %d processes but MPI sees %d: this dino-jit was built with another MPI "
                 "than the launcher's (use that MPI's mpirun)",
                 p->launcher, p->size, size);
        if (!done) MPI_Finalize();
        return -1;
    }
    p->rank = rank, p->size = size, p->active = !done;
    char dev[16]; /* one GPU per rank: the local rank's (cuda_driver.c, modulo the GPUs there are) */
    snprintf(dev, sizeof dev, "%d", p->local_rank);
    setenv("DINO_CUDA_DEVICE", dev, 0);
    return 0;
#else
    (void)argc, (void)argv;
    snprintf(err, errlen,
             "%s started %d processes, and this dino-jit was built without MPI: install OpenMPI "
             "(libopenmpi-dev, scripts/deps.sh) and rebuild, or run one process",
             p->launcher, p->size);
    return -1;
#endif
}

#ifdef DINO_HAVE_MPI
static Nccl *nccl; /* the GPU gradient's communicator, made at the first GPU step */

/* NCCL for every rank or for none: loaded on each, the outcome agreed through MPI, rank 0's
 * unique id broadcast, the communicator joined. UNTESTED ON HARDWARE (nccl.h). */
static int nccl_start(Parallel *p, char *err, size_t errlen) {
    char why[400] = "";
    Nccl *n = nccl_load(why, sizeof why);
    unsigned char id[NCCL_ID_BYTES] = {0};
    int bad = !n || (p->rank == 0 && nccl_unique_id(n, id, why, sizeof why)), any = bad;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (!any) MPI_Bcast(id, NCCL_ID_BYTES, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (!any && nccl_init(n, p->size, p->rank, id, why, sizeof why)) any = 1;
    if (any) {
        snprintf(err, errlen, "training on the GPU across %d processes needs NCCL: %s", p->size,
                 why[0] ? why : "another rank could not start it");
        nccl_close(n);
        return DINO_EUSER;
    }
    nccl = n;
    return DINO_OK;
}

static int mpi_gradient(Backend *b, double scale, void *user) {
    Parallel *p = user;
    if (b->grad_on_device) { /* NCCL, on the backend's stream: the update that follows waits for it */
        int rc = nccl ? DINO_OK : nccl_start(p, b->err, sizeof b->err);
        if (rc == DINO_OK &&
            nccl_allreduce_scaled(nccl, b->grad_buf, (size_t)b->opt->n, b->f64, scale, b->stream, b->err,
                                  sizeof b->err))
            rc = DINO_EINTERNAL;
        return rc;
    }
    (void)p;
    long long n = b->opt->n;
    int f64 = b->f64;
    if (f64) {
        double *g = b->grad_buf;
        for (long long i = 0; i < n; i++) g[i] *= scale;
    } else {
        float *g = b->grad_buf;
        for (long long i = 0; i < n; i++) g[i] = (float)(g[i] * scale);
    }
    /* in chunks: MPI counts are ints */
    for (long long at = 0; at < n; at += 1 << 30) {
        int k = n - at < (1 << 30) ? (int)(n - at) : 1 << 30;
        void *buf = (char *)b->grad_buf + (size_t)at * (f64 ? 8 : 4);
        if (MPI_Allreduce(MPI_IN_PLACE, buf, k, f64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS) {
            snprintf(b->err, sizeof b->err, "MPI_Allreduce of the gradient failed");
            return DINO_EINTERNAL;
        }
    }
    return DINO_OK;
}

/* NCCL started on every rank before the first step; whether its sum may be captured. */
static int mpi_start_device(Backend *b, int *in_graph, char *version, size_t len, void *user) {
    int rc = nccl ? DINO_OK : nccl_start(user, b->err, sizeof b->err);
    if (rc) return rc;
    nccl_version(nccl, version, len);
    /* capture is a collective property (every rank captures the sum or none): agree on it */
    *in_graph = parallel_max_int(user, !nccl_capturable(nccl)) == 0;
    return DINO_OK;
}

static int mpi_sums(double *v, int n, void *user) {
    (void)user;
    return MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) == MPI_SUCCESS ? DINO_OK
                                                                                                 : DINO_EINTERNAL;
}
#endif

const Reducer *parallel_reducer(Parallel *p, long long n_weights, int f64) {
    if (p->size <= 1) return NULL;
#ifdef DINO_HAVE_MPI
    static Reducer red;
    (void)n_weights, (void)f64;
    red = (Reducer){.gradient = mpi_gradient,
                    .sums = mpi_sums,
                    .user = p,
                    .rank = p->rank,
                    .size = p->size,
                    .on_device = 1,
                    .start_device = mpi_start_device};
    return &red;
#else
    (void)n_weights, (void)f64;
    return NULL;
#endif
}

int parallel_max_int(Parallel *p, int v) {
#ifdef DINO_HAVE_MPI
    if (p->size > 1) {
        int out = v;
        MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        return out;
    }
#endif
    (void)p;
    return v;
}

void parallel_end(Parallel *p) {
#ifdef DINO_HAVE_MPI
    nccl_close(nccl);
    nccl = NULL;
    if (p->active) {
        MPI_Finalize();
        p->active = 0;
    }
#else
    (void)p;
#endif
}
