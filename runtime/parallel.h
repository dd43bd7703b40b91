/* parallel.h - data-parallel training across processes (MPI), see CONVENTIONS.md "Running on
 * many processes".
 *
 * parallel_start() looks for a launcher (OpenMPI OMPI_COMM_WORLD_*, MPICH/Hydra PMI_*, Slurm
 * SLURM_*); without one, or with one that started a single process, dino is one process as
 * before and nothing of MPI is touched. With K > 1 processes it initialises MPI (when dino was
 * built with it; else it refuses, so that K processes never train K copies of the same model
 * and write the same files) and fills a Reducer (train.h) whose sums are MPI_Allreduce calls.
 * Nothing here prints or exits. */
#ifndef DINO_PARALLEL_H
#define DINO_PARALLEL_H

#include <stddef.h>

#include "train.h"

typedef struct {
    int rank, size;       /* this process and how many (0 and 1 without a launcher) */
    int local_rank;       /* among the processes of this node (one GPU each) */
    const char *launcher; /* "OpenMPI", "MPICH", "Slurm", or "" */
    int active;           /* MPI was initialised here (size > 1) */
} Parallel;

/* 1 when this build has MPI (CMake found it), else 0. */
int parallel_have_mpi(void);

/* The launcher's view from the environment alone (no MPI call): rank, size, local rank. */
void parallel_detect(Parallel *p);

/* Detects the launcher and, with more than one process, initialises MPI. Returns 0, or -1 with
 * err set (several processes and no MPI in this build; MPI failing). */
int parallel_start(int *argc, char ***argv, Parallel *p, char *err, size_t errlen);

/* The Reducer of p (the backend's b->opt->n gradient reals, f64 or f32, are summed); NULL with one
 * process. n_weights and f64 are for checks only. */
const Reducer *parallel_reducer(Parallel *p, long long n_weights, int f64);

/* The largest of v over all processes (a collective stop flag); v itself with one process. */
int parallel_max_int(Parallel *p, int v);

/* Ends MPI when parallel_start began it. */
void parallel_end(Parallel *p);

#endif
