/* npy.h: a self-contained writer (streaming, atomic) and reader for NumPy .npy version 1.0 files
 * holding little-endian float64 arrays in C order ('<f8', fortran_order False). */
#ifndef DINO_EXAMPLE_NPY_H
#define DINO_EXAMPLE_NPY_H

#include <stdint.h>
#include <stdio.h>

#define NPY_MAX_DIMS 8

typedef struct {
    FILE *fp;
    char *tmp_path;   /* DIR/.NAME.tmp.PID, renamed to final_path by npy_commit */
    char *final_path; /* DIR/NAME */
    uint64_t expect;  /* number of doubles the shape promises */
    uint64_t written; /* doubles written so far */
} npy_writer;

/* Builds the complete header (magic, version, length, dict, padding): writes at most cap bytes
 * into buf and returns the header size (a multiple of 64), or 0 if the shape is invalid. */
size_t npy_header(char *buf, size_t cap, int ndim, const uint64_t *shape);

/* Creates DIR/.NAME.tmp.PID and writes the header. Returns 0, or -1 with a message in err. */
int npy_open(npy_writer *w, const char *dir, const char *name, int ndim, const uint64_t *shape, char *err,
             size_t errlen);
/* Appends count doubles (converted to little-endian). Returns 0 or -1. */
int npy_write(npy_writer *w, const double *x, size_t count);
/* Checks the count, flushes, syncs, closes and renames onto DIR/NAME. Returns 0, or -1 with a
 * message (the temporary file is then removed). */
int npy_commit(npy_writer *w, char *err, size_t errlen);
/* Closes and removes the temporary file (safe on a writer that was never opened or committed). */
void npy_abort(npy_writer *w);

/* Reads a '<f8' C-order .npy file (version 1.0 or 2.0), checking the header strictly: magic,
 * version, total header size a multiple of 64, dict keys in NumPy's order, trailing newline, and
 * the file size. Returns the data (malloc'd, caller frees; a valid pointer even for 0 elements),
 * or NULL with a message in err. *hdr_size receives the byte offset of the data. */
double *npy_load(const char *path, int *ndim, uint64_t shape[NPY_MAX_DIMS], size_t *hdr_size, char *err, size_t errlen);

#endif
