/* nccl.h - NCCL loaded at run time with dlopen (as cuda_driver.c loads the CUDA driver), for
 * summing the CUDA backend's gradient across processes, one GPU each (parallel.c).
 *
 * UNTESTED ON HARDWARE: written on a machine without a GPU or NCCL; the tests run it under
 * mpirun with stand-ins for the driver and for libnccl (tests/fake_cuda/fake_nccl.c, over MPI;
 * tests/mpi group nccl), and check that a missing libnccl is reported. The types below restate
 * the ABI of nccl.h (NCCL 2.11 or later, for ncclRedOpCreatePreMulSum). */
#ifndef DINO_NCCL_H
#define DINO_NCCL_H

#include <stddef.h>

enum { NCCL_ID_BYTES = 128 };

typedef struct Nccl Nccl;

/* Loads libnccl.so.2 (or $DINO_NCCL_LIB). NULL with err set when it is missing or too old. */
Nccl *nccl_load(char *err, size_t errlen);

/* The unique id rank 0 makes and every rank receives (through MPI) before nccl_init. */
int nccl_unique_id(Nccl *n, unsigned char id[NCCL_ID_BYTES], char *err, size_t errlen);

/* Joins the communicator of size ranks as rank (on the current CUDA context's device). */
int nccl_init(Nccl *n, int size, int rank, const unsigned char id[NCCL_ID_BYTES], char *err, size_t errlen);

/* In place on the device buffer buf of count reals (f64 or f32): multiplies this rank's values
 * by scale and sums over the ranks, enqueued on stream (a CUstream). */
int nccl_allreduce_scaled(Nccl *n, void *buf, size_t count, int f64, double scale, void *stream, char *err,
                          size_t errlen);

/* The loaded library's version code (ncclGetVersion: 22304 for 2.23.4, 2804 for 2.8.4 in the
 * old scheme) and its "2.23.4" into text; 0 when it does not say. */
int nccl_version(Nccl *n, char *text, size_t len);

/* Whether its collectives may be captured in a CUDA graph (NCCL 2.9 or later). */
int nccl_capturable(Nccl *n);

void nccl_close(Nccl *n);

#endif
