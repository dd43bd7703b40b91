/* cache.c - compiled code on disk, keyed by a hash (see cache.h). */
#include "cache.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_jit.h"
#include "source.h"

static void entry_path(const char *kind, const char *src, size_t len, const char *key, const char *ext, char *path,
                       size_t path_len) {
    uint64_t h = hash_bytes(key, strlen(key), hash_bytes(src, len, HASH_START));
    char dir[2048], err[256];
    if (cache_dir(dir, sizeof dir, err, sizeof err)) snprintf(dir, sizeof dir, "/tmp");
    snprintf(path, path_len, "%s/%s-%016llx%s", dir, kind, (unsigned long long)h, ext);
}

int cache_get(const char *kind, const char *src, size_t len, const char *key, const char *ext, char **out,
              size_t *out_len) {
    char path[4096];
    entry_path(kind, src, len, key, ext, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = size > 0 ? malloc((size_t)size) : NULL;
    int ok = buf && fread(buf, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    if (!ok) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = (size_t)size;
    return 0;
}

static int write_atomic(const char *path, const char *data, size_t len) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, len, f) == len;
    ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

void cache_put(const char *kind, const char *src, size_t len, const char *key, const char *ext, const char *data,
               size_t data_len) {
    char path[4096];
    entry_path(kind, src, len, key, ext, path, sizeof path);
    write_atomic(path, data, data_len);
}

void cache_save_source(const char *kind, const char *src, size_t len, const char *key, const char *ext, char *path,
                       size_t path_len) {
    entry_path(kind, src, len, key, ext, path, path_len);
    if (write_atomic(path, src, len)) snprintf(path, path_len, "(could not be saved)");
}
