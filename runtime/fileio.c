/* fileio.c - checked file helpers: error formatting, read-only maps, atomic writes.
 * See fileio.h. POSIX only (open, mmap, fsync, rename). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ messages */

void fio_errf(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void fio_printable(char *dst, size_t dstlen, const char *src, size_t len, size_t max) {
    if (dstlen == 0) return;
    size_t n = 0;
    for (size_t i = 0; i < len && i < max && n + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > max) {
        for (int k = 0; k < 3 && n + 1 < dstlen; k++) dst[n++] = '.';
    }
    dst[n] = '\0';
}

/* ------------------------------------------------------------------------ reading */

/* path opened for reading, or -1 with the reason in err. */
static int open_read(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fio_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return fd;
}

/* Bytes [off, off + len) of fd mapped read-only (off a multiple of the page size), fd closed (the
 * mapping keeps the file alive); NULL with the reason in err (naming `shown` bytes). */
static void *map_close(int fd, const char *path, size_t len, size_t off, size_t shown, char *err, size_t errlen) {
    void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, (off_t)off);
    int map_errno = errno;
    close(fd);
    if (p != MAP_FAILED) return p;
    fio_errf(err, errlen, "%s: cannot map %zu bytes: %s", path, shown, strerror(map_errno));
    return NULL;
}

int fio_map(const char *path, FileMap *m, char *err, size_t errlen) {
    m->data = NULL;
    m->len = 0;
    int fd = open_read(path, err, errlen);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fio_errf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        fio_errf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size == 0) { /* mmap refuses zero bytes; the caller reports "empty file" */
        close(fd);
        return 0;
    }
    if ((unsigned long long)st.st_size > (unsigned long long)SIZE_MAX) {
        fio_errf(err, errlen, "%s: file too large to map", path);
        close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    void *p = map_close(fd, path, len, 0, len, err, errlen);
    if (!p) return -1;
    m->data = p;
    m->len = len;
    return 0;
}

int fio_map_range(const char *path, size_t file_size, size_t off, size_t len, FileMap *m, const void **at, char *err,
                  size_t errlen) {
    m->data = NULL;
    m->len = 0;
    *at = NULL;
    int fd = open_read(path, err, errlen);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (unsigned long long)st.st_size != (unsigned long long)file_size || len == 0 || off > file_size ||
        len > file_size - off) {
        fio_errf(err, errlen, "%s: the file changed while it was being loaded (%lld bytes, %zu expected)", path,
                 (long long)st.st_size, file_size);
        close(fd);
        return -1;
    }
    long page = sysconf(_SC_PAGESIZE);
    size_t skip = off % (size_t)(page > 0 ? page : 4096);
    void *p = map_close(fd, path, len + skip, off - skip, len, err, errlen);
    if (!p) return -1;
    m->data = p;
    m->len = len + skip;
    *at = (const unsigned char *)p + skip;
    return 0;
}

void fio_unmap(FileMap *m) {
    if (m->data && m->len) munmap((void *)m->data, m->len);
    m->data = NULL;
    m->len = 0;
}

/* ------------------------------------------------------------------------ writing */

int fio_atomic_open(AtomicFile *f, const char *path, char *err, size_t errlen) {
    f->fd = -1;
    f->path = NULL;
    f->tmp_path = NULL;
    size_t n = strlen(path);
    size_t tmp_cap = n + 32; /* ".tmp." + up to 20 digits + NUL */
    f->path = malloc(n + 1);
    f->tmp_path = malloc(tmp_cap);
    if (!f->path || !f->tmp_path) {
        fio_errf(err, errlen, "%s: out of memory", path);
        fio_atomic_abort(f);
        return -1;
    }
    memcpy(f->path, path, n + 1);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fio_errf(err, errlen, "%s: is a folder, not a file", path);
        fio_atomic_abort(f);
        return -1;
    }
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) { /* a device or FIFO: written in place */
        free(f->tmp_path);
        f->tmp_path = NULL;
        f->fd = open(path, O_WRONLY | O_CLOEXEC);
        if (f->fd < 0) {
            fio_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
            fio_atomic_abort(f);
            return -1;
        }
        return 0;
    }
    snprintf(f->tmp_path, tmp_cap, "%s.tmp.%ld", path, (long)getpid());
    f->fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        fio_errf(err, errlen, "%s: cannot create %s: %s", path, f->tmp_path, strerror(errno));
        free(f->path);
        free(f->tmp_path);
        f->path = f->tmp_path = NULL;
        return -1;
    }
    return 0;
}

int fio_atomic_write(AtomicFile *f, const void *buf, size_t n, char *err, size_t errlen) {
    const unsigned char *p = buf;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        ssize_t w = write(f->fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            fio_errf(err, errlen, "%s: write failed: %s", f->path, strerror(errno));
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Best effort: make the rename itself durable. Failure here is not reported. */
static void fsync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = NULL;
    if (!slash) {
        dir = malloc(2);
        if (dir) memcpy(dir, ".", 2);
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int fio_atomic_commit(AtomicFile *f, char *err, size_t errlen) {
    if (!f->tmp_path) { /* written in place (a device or FIFO): nothing to rename or sync */
        int rc = close(f->fd);
        f->fd = -1;
        if (rc != 0) fio_errf(err, errlen, "%s: close failed: %s", f->path, strerror(errno));
        free(f->path);
        f->path = NULL;
        return rc != 0 ? -1 : 0;
    }
    if (fsync(f->fd) != 0) {
        fio_errf(err, errlen, "%s: fsync failed: %s", f->path, strerror(errno));
        fio_atomic_abort(f);
        return -1;
    }
    int rc = close(f->fd);
    f->fd = -1;
    if (rc != 0) {
        fio_errf(err, errlen, "%s: close failed: %s", f->path, strerror(errno));
        fio_atomic_abort(f);
        return -1;
    }
    if (rename(f->tmp_path, f->path) != 0) {
        fio_errf(err, errlen, "%s: cannot rename %s into place: %s", f->path, f->tmp_path, strerror(errno));
        fio_atomic_abort(f);
        return -1;
    }
    fsync_parent_dir(f->path);
    free(f->path);
    free(f->tmp_path);
    f->path = f->tmp_path = NULL;
    return 0;
}

void fio_atomic_abort(AtomicFile *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp_path) unlink(f->tmp_path);
    free(f->path);
    free(f->tmp_path);
    f->path = f->tmp_path = NULL;
}

int fio_write_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen) {
    AtomicFile f;
    if (fio_atomic_open(&f, path, err, errlen)) return -1;
    if (fio_atomic_write(&f, data, n, err, errlen)) {
        fio_atomic_abort(&f);
        return -1;
    }
    return fio_atomic_commit(&f, err, errlen);
}

int fio_mkdirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}
