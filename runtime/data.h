/* data.h - the training and test data a model's DataSpec describes, loaded, checked,
 * converted to the training precision and split.
 *
 * Files: NumPy .npy (float32/float64 data, integer labels) and MNIST IDX (gzip or plain).
 * Every message names the file, what was expected and what was found, e.g.
 *   data/q_data.npy: expected shape [N, 25] (the output q has dimension 25), found [100, 24]
 * The data arrays stay where they are during training; batches are gathered through an
 * index array (data_gather), which is what an epoch's shuffle permutes.
 *
 * Memory-mapped data: an .npy file whose dtype is already the training precision (float32 for
 * f32, float64 for f64; int32 for labels), in C order, not scaled and (a Jacobian) stored
 * out_in, is not copied: the Dataset's array points into a read-only mapping of the file's rows
 * of that set, so a data set larger than memory trains from the page cache (training pages come
 * and go as the kernel needs). Every other file is converted into heap memory as before. Either
 * way x, y, J and label are arrays of the Dataset's precision, so no reader can tell the two
 * apart. DINO_DATA_MAP=0 in the environment turns mapping off (everything copied). */
#ifndef DINO_DATA_H
#define DINO_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct {
    int64_t n;      /* rows */
    int in, out;    /* dim(input), dim(output) (the number of classes for a classifier) */
    int f64;        /* x, y, J are double (1) or float (0) */
    int f32_train;  /* 1: double arrays kept for float32 training (data_load_sets_source): the model
                       reads them converted (data_convert), the bases read each value rounded to
                       float32 (as from a float32 load), the reduced path projects them as they are */
    int classifier; /* labels instead of regression targets */
    void *x;        /* [n, in] inputs, scaled (idx scale = ...) */
    void *y;        /* [n, out] regression targets; NULL for classifiers */
    int32_t *label; /* [n] class labels in [0, out) for classifiers; NULL otherwise */
    void *J;        /* [n, out, in] d output / d input, always out_in (an in_out file is
                      transposed on load); NULL when there is no Jacobian data */
    /* What owns each array (data_free), by DataArray: map[k].base NULL = array k is heap memory
     * (or not owned: a Dataset built by hand); else it points into the read-only file mapping
     * map[k] (base, len), which data_free unmaps. Zero in Datasets built by hand. */
    struct {
        void *base;
        size_t len;
    } map[4];
} Dataset; /* buffers are owned (data_free) and NULL when n == 0 */

typedef enum { DATASET_X, DATASET_Y, DATASET_J, DATASET_LABEL } DataArray; /* Dataset.map's index */

/* Loads m->data from the folder dir (already resolved by the caller: --data, or the spec's
 * dir relative to the spec file; NULL or "" = the current folder; DataSource.file is relative
 * to it unless absolute) in precision f64, split into *train, *valid and *test.
 *
 * Jacobian data: for a regression model, the spec's dq/dm source must exist and be valid
 * when the spec names it (or an h1 term made it default to J_data.npy), and so must
 * J_data.npy when need_jac is 1. Otherwise J_data.npy is used when it exists (so rel_h1 can
 * be reported) and silently skipped when it does not; a J_data.npy that exists but is
 * malformed is an error. With separate test files the test set has a Jacobian only when
 * the spec names `test dq/dm = ...`. Classifiers never load one.
 *
 * Splits (contiguous: train rows first, then the valid rows, then the test rows):
 *   SPLIT_FRACTION  train = round(train N), valid = round(valid N), test = round(test N)
 *                   (the test part, then the valid part, trimmed by the rounding excess when
 *                   they round past N); an error when a part with a positive fraction gets 0
 *                   rows
 *   SPLIT_COUNT     the counts; test = -1 means the rest, which must not be empty
 *   SPLIT_TEST_FILES  train = all rows of the data files, test = all rows of the test_* files
 * test->n == 0 only when the spec asks for it (test 0). The validation set is the split's
 * valid part, or all rows of the valid_* files (`valid x = ...`), or empty (valid->n == 0).
 * Like the test set, it has a Jacobian only when its rows come from a file that has one.
 *
 * Returns 0, or -1 with a message in err and *train, *valid, *test zeroed. */
int data_load_sets(const Model *m, const char *dir, int f64, int need_jac, Dataset *train, Dataset *valid,
                   Dataset *test, char *err, size_t errlen);

/* data_load_sets, except that with keep_f64 and float32 training (f64 0) a part (the rows of
 * one set of files: the data files, the test_* or the valid_* files) whose float files can all be
 * read in place as float64 (.npy float64, C order, unscaled, a Jacobian out_in; mapping on)
 * stays float64: its Dataset's f64 is 1, the files mapped, nothing copied. Its values are still
 * checked against float32 (finite, at most FLT_MAX in magnitude, and a relative term's all-zero
 * rows as float32 zeros) with data_load_sets's messages, so that data_convert to float32 cannot
 * fail on them. Any other part is loaded in the training precision as data_load_sets does. For
 * the reduced path (api/reduced.c), which projects float64 data into the bases, so the full-space
 * rows are never converted whole; a Dataset of another precision than the model's must be
 * converted (data_convert) before the model reads it. */
int data_load_sets_source(const Model *m, const char *dir, int f64, int keep_f64, int need_jac, Dataset *train,
                          Dataset *valid, Dataset *test, char *err, size_t errlen);

/* Converts d's arrays (x, y, J; the labels stay) into precision f64 in heap memory, as the load
 * would have (each float64 value rounded once to float32), and frees or unmaps the old ones.
 * No-op when d already has that precision. which names the set in the message ("training").
 * Returns 0, or -1 when memory runs out (err set, d unchanged). */
int data_convert(Dataset *d, int f64, const char *which, char *err, size_t errlen);

/* dir/file (file as it is when absolute, or dir empty or NULL), malloc'd; NULL when memory runs
 * out. How a data section's file names are found in the data folder. */
char *data_join_path(const char *dir, const char *file);

/* data_load_sets without the validation set (its rows, if any, are left out). */
int data_load(const Model *m, const char *dir, int f64, int need_jac, Dataset *train, Dataset *test, char *err,
              size_t errlen);

/* Copies rows idx[0..n) of d into contiguous batch buffers: x [n, in], y [n, out],
 * J [n, out, in], label [n]. Any output may be NULL (and is skipped); so is one whose
 * source d lacks (y, J or label NULL in d). */
void data_gather(const Dataset *d, const int64_t *idx, int n, void *x, void *y, void *J, int32_t *label);

/* Frees the buffers (unmaps the mapped ones) and zeroes *d; safe on a zeroed or already freed
 * Dataset. */
void data_free(Dataset *d);

/* The bytes of d's arrays that are file mappings (0: none, all in heap memory). */
size_t data_mapped(const Dataset *d);

/* How training reads d's mapped arrays (no-op on heap arrays), as madvise advice: DATASET_RANDOM
 * (rows in a full shuffle: no read-around of neighbouring pages that a larger-than-memory file
 * would evict unused), DATASET_NEAR (block shuffles: the kernel's read-around helps). */
typedef enum { DATASET_RANDOM, DATASET_NEAR } DataAccess;
void data_advise(const Dataset *d, DataAccess how);

/* Read-ahead of one reader (a backend): a scratch copy of the rows asked for, and the last byte
 * range asked for in each array, which is not asked for again (block shuffles ask for the same
 * window batch after batch). */
typedef struct {
    int64_t *rows; /* [cap] */
    int cap;
    uintptr_t lo[4], hi[4]; /* by DataArray: the last range asked for, [lo, hi) */
} DataAhead;

/* 0, or -1 when memory runs out. cap: the most rows one data_prefetch call asks for. */
int data_ahead_init(DataAhead *a, int cap);
void data_ahead_free(DataAhead *a); /* safe on a zeroed one */

/* Asks the kernel to start reading the pages of rows idx[0..n) (n <= a->cap) of d's mapped arrays
 * (madvise MADV_WILLNEED on their byte ranges, rows closer than 16 pages merged into one range,
 * a range inside the last one asked for skipped), and returns at once. A no-op on heap arrays. */
void data_prefetch(const Dataset *d, const int64_t *idx, int n, DataAhead *a);

/* One reader's read-ahead over an epoch (backend_cpu.c's grad, backend_cuda.c's streamed
 * batches): before taking rows order[first .. first+n) it asks for the pages of the same
 * share of the next batches, about 4 MiB ahead (at least 2 batches), each batch once; only in
 * epochs that begin with a tenth or more of the mapped pages out of the page cache
 * (data_resident), or always / never with DINO_READ_AHEAD=1 / 0. Nothing when d is not mapped. */
typedef struct {
    DataAhead a; /* rows NULL: no read-ahead (d not mapped) */
    const Dataset *d;
    const int64_t *order; /* this epoch's row order */
    int batch, batches;   /* the global batch; how many batches ahead */
    int on;               /* this epoch reads ahead */
    int64_t ahead;        /* places of the order before this one were asked for */
} DataReadAhead;

int data_read_ahead_open(DataReadAhead *r, const Dataset *d, int batch); /* 0, or -1: out of memory */
void data_read_ahead_epoch(DataReadAhead *r, const int64_t *order);
void data_read_ahead_step(DataReadAhead *r, int64_t first, int n);
void data_read_ahead_free(DataReadAhead *r); /* safe on a zeroed one */

/* The fraction of the pages of d's mapped arrays that are in the page cache, from a sample of
 * up to 64 places of 16 pages in each (mincore); 1 when nothing is mapped. For deciding per
 * epoch whether read-ahead is worth its system calls: a data set that fits in memory is all
 * cached after the first pass (the load's check is one), and asking for cached pages costs a
 * call per row. */
double data_resident(const Dataset *d);

#endif
