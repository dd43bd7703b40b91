/* allreduce.c - the time of one MPI_Allreduce (in place, sum) of N reals, the operation
 * data-parallel training does once per step on the gradient (runtime/parallel.c).
 * usage: mpirun -np K allreduce N [f32|f64] [REPS]; rank 0 prints "N bytes median_us min_us". */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int f64 = argc > 2 && strcmp(argv[2], "f64") == 0, reps = argc > 3 ? atoi(argv[3]) : 30, rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    size_t es = f64 ? 8 : 4;
    void *buf = calloc((size_t)n, es);
    double *t = calloc((size_t)reps, sizeof *t);
    if (!buf || !t) MPI_Abort(MPI_COMM_WORLD, 1);
    for (int r = -3; r < reps; r++) { /* 3 warm-up rounds */
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, f64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double dt = MPI_Wtime() - t0, worst;
        MPI_Allreduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (r >= 0) t[r] = worst;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    if (rank == 0) printf("%ld %zu %.1f %.1f\n", n, (size_t)n * es, 1e6 * t[reps / 2], 1e6 * t[0]);
    free(buf), free(t);
    MPI_Finalize();
    return 0;
}
