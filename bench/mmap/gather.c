/* gather.c - bench/mmap: the data side of one training epoch, from a memory-mapped data set or
 * from its copy in memory, with the page cache warm or cold.
 *
 * usage: bench_mmap_gather DIR BATCH EPOCHS [rows | blocks B W] [ahead | noahead] [cold | warm]
 *
 * Loads DIR/m_data.npy [N, 64] and DIR/q_data.npy [N, 8] (float32) as dino-jit does for an f32
 * spec (data_load_sets: mapped unless DINO_DATA_MAP=0; split train 0.9, test 0.1), then runs
 * EPOCHS epochs of what the CPU backend does around each training step: the epoch's order
 * (shuffle_rows), the read-ahead of the next batches' rows (data_read_ahead_step, about 4 MiB
 * ahead, as the backends; `noahead` skips it) and the gather of the batch (data_gather), with no model in
 * between. `cold`: before the first epoch the mapped pages are dropped from this process
 * (MADV_DONTNEED) and from the page cache (POSIX_FADV_DONTNEED on both files; clean pages of files
 * no process maps go), so the first epoch reads from the disk. Prints, per epoch, the seconds and
 * the fraction of the training rows' pages that were in the page cache when it started. */
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "data.h"
#include "shuffle.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The fraction of [p, p + len) in the page cache (mincore). */
static double resident(const void *p, size_t len) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p - (uintptr_t)p % (uintptr_t)page;
    size_t n = ((uintptr_t)p + len - a + (size_t)page - 1) / (size_t)page, in = 0;
    unsigned char *v = malloc(n);
    if (!v || mincore((void *)a, n * (size_t)page, v)) {
        free(v);
        return -1;
    }
    for (size_t i = 0; i < n; i++) in += v[i] & 1;
    free(v);
    return (double)in / (double)n;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s DIR BATCH EPOCHS [rows | blocks B W] [ahead | noahead] [cold | warm]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int batch = atoi(argv[2]), epochs = atoi(argv[3]), a = 4;
    int64_t block = 0, window = 0;
    if (strcmp(argv[a], "blocks") == 0 && argc >= a + 3)
        block = atoll(argv[a + 1]), window = atoll(argv[a + 2]), a += 3;
    else a++;
    int ahead = !(argc > a && strcmp(argv[a], "noahead") == 0);
    if (argc > a) a++;
    int cold = argc > a && strcmp(argv[a], "cold") == 0;

    Model m = {.name = "bench", .path = "bench.dino", .input = "m", .output = "q", .in_dim = 64, .out_dim = 8};
    m.data.input = (DataSource){.kind = SRC_NPY, .file = "m_data.npy", .scale = 1};
    m.data.output = (DataSource){.kind = SRC_NPY, .file = "q_data.npy", .scale = 1};
    m.data.split = SPLIT_FRACTION, m.data.train = 0.9, m.data.test = 0.1;
    Dataset tr, va, te;
    char err[1024];
    double t0 = now();
    if (data_load_sets(&m, dir, 0, 0, &tr, &va, &te, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double t_load = now() - t0;
    size_t mapped = data_mapped(&tr), bytes = (size_t)tr.n * (64 + 8) * sizeof(float);
    data_advise(&tr, block ? DATASET_NEAR : DATASET_RANDOM);
    if (cold && mapped) {
        for (int k = 0; k < 4; k++)
            if (tr.map[k].base) madvise(tr.map[k].base, tr.map[k].len, MADV_DONTNEED);
        for (int k = 0; k < 4; k++)
            if (te.map[k].base) madvise(te.map[k].base, te.map[k].len, MADV_DONTNEED);
        const char *files[2] = {"m_data.npy", "q_data.npy"};
        for (int f = 0; f < 2; f++) {
            char *p = data_join_path(dir, files[f]);
            int fd = open(p, O_RDONLY);
            if (fd >= 0) posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), close(fd);
            free(p);
        }
    }
    printf("%s: %lld training rows, %.0f MiB, %s, load %.2f s; batch %d, %s, read-ahead %s\n", dir, (long long)tr.n,
           (double)bytes / 1048576.0, mapped ? "mapped" : "copied into memory", t_load, batch,
           block ? "shuffle blocks" : "shuffle rows", ahead ? "on" : "off");
    int64_t N = tr.n, *idx = malloc(sizeof(int64_t) * (size_t)N);
    if (!ahead) setenv("DINO_READ_AHEAD", "0", 1); /* else: on when the pages are not cached, as in training */
    DataReadAhead ra = {0};
    data_read_ahead_open(&ra, &tr, batch); /* the backends' read-ahead (data.h) */
    float *x = malloc(sizeof(float) * 64 * (size_t)batch), *y = malloc(sizeof(float) * 8 * (size_t)batch);
    Rng r;
    rng_seed(&r, 1);
    double sum = 0;
    for (int e = 0; e < epochs; e++) {
        double res = mapped ? resident(tr.x, (size_t)N * 64 * sizeof(float)) : 1;
        double t = now();
        shuffle_rows(&r, idx, N, block, window);
        data_read_ahead_epoch(&ra, idx);
        for (int64_t first = 0; first < N; first += batch) {
            int n = N - first < batch ? (int)(N - first) : batch;
            data_read_ahead_step(&ra, first, n);
            data_gather(&tr, idx + first, n, x, y, NULL, NULL);
            sum += x[0] + y[n * 8 - 1];
        }
        t = now() - t;
        printf("  epoch %d: %.3f s (%.0f MiB/s), %.0f%% of the rows' pages cached at its start, read-ahead %s\n", e + 1,
               t, (double)bytes / 1048576.0 / t, 100 * res, ra.on ? "on" : "off");
    }
    printf("  (checksum %g)\n", sum);
    free(idx), free(x), free(y);
    data_read_ahead_free(&ra);
    data_free(&tr), data_free(&va), data_free(&te);
    return 0;
}
