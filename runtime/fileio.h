/* fileio.h - checked file helpers shared by the format layers (npy.c, safetensors.c, and
 * later the checkpoint code): error-message formatting, read-only memory maps, and atomic
 * whole-file writes (write PATH.tmp.<pid>, fsync, rename over PATH, fsync the directory).
 *
 * Every function that can fail returns 0 on success and -1 with a one-line message in
 * err (which may be NULL or errlen 0 when the caller does not want one). Messages start
 * with the file's path. Nothing here prints or exits. */
#ifndef DINO_FILEIO_H
#define DINO_FILEIO_H

#include <stddef.h>

/* printf into err[errlen], truncating safely; a no-op when err is NULL or errlen is 0. */
void fio_errf(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Copy at most max bytes of src[len] into dst[dstlen] for an error message, replacing
 * bytes that are not printable ASCII by '?' and marking a cut with "...". */
void fio_printable(char *dst, size_t dstlen, const char *src, size_t len, size_t max);

/* A read-only private mapping of a whole regular file. An empty file maps to data NULL,
 * len 0 (mmap cannot map zero bytes); callers turn that into their own error. */
typedef struct {
    const unsigned char *data; /* (len,) bytes of the file */
    size_t len;
} FileMap;

int fio_map(const char *path, FileMap *m, char *err, size_t errlen);

/* A read-only private mapping of bytes [off, off + len) of path, which must be a regular file of
 * exactly file_size bytes (the size the caller read its header from; another size means the file
 * changed since). The mapping starts at the page boundary at or below off: m covers it all and
 * *at points to byte off. len > 0. Read-only file pages are not private writable memory: they do
 * not count against RLIMIT_DATA, and the kernel drops them under memory pressure. */
int fio_map_range(const char *path, size_t file_size, size_t off, size_t len, FileMap *m, const void **at, char *err,
                  size_t errlen);
void fio_unmap(FileMap *m); /* safe on a zeroed or already unmapped FileMap */

/* An output file being written atomically: readers of PATH see either the old file or
 * the complete new one, never a partial write. The temporary name holds the pid, so one
 * process must not write the same PATH from two threads at once. A PATH that exists and is
 * not a regular file (/dev/null, a FIFO, a terminal) is written in place instead: renaming
 * over it would replace the device with a file. A folder is an error. */
typedef struct {
    int fd;         /* descriptor of the temporary file (or of PATH itself), -1 when closed */
    char *path;     /* the final path (owned copy) */
    char *tmp_path; /* PATH.tmp.<pid> (owned); NULL when PATH is written in place */
} AtomicFile;

int fio_atomic_open(AtomicFile *f, const char *path, char *err, size_t errlen);
int fio_atomic_write(AtomicFile *f, const void *buf, size_t n, char *err, size_t errlen);
/* fsync, close, rename over the final path; on failure the temporary file is removed. */
int fio_atomic_commit(AtomicFile *f, char *err, size_t errlen);
/* Close and remove the temporary file; safe to call after a failed open or commit. */
void fio_atomic_abort(AtomicFile *f);
/* The whole file in one call: open, write data (n,) bytes, commit. The one way dino writes a
 * file that others read whole (checkpoints, .npy, cache entries). */
int fio_write_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen);

/* mkdir -p: creates path and its missing parents (mode 0755). 0, or -1 with errno set. */
int fio_mkdirs(const char *path);

#endif
