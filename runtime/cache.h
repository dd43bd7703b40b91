/* cache.h - compiled code cached on disk by a hash of what produced it.
 *
 * The key is the source text plus a string naming everything else that changes the result
 * (compiler and version, options, architecture). Entries live in cache_dir() (cpu_jit.h:
 * $DINO_CACHE_DIR, else ~/.cache/dino) as KIND-HASH.EXT, written atomically (temporary name,
 * then rename), so a crash never leaves a half-written entry; an entry that is empty or
 * unreadable is a miss. */
#ifndef DINO_CACHE_H
#define DINO_CACHE_H

#include <stddef.h>

/* 0 and a malloc'd copy on a hit; -1 on a miss. */
int cache_get(const char *kind, const char *src, size_t len, const char *key, const char *ext, char **out,
              size_t *out_len);
/* Stores an entry; failures are silent (the cache is an optimisation). */
void cache_put(const char *kind, const char *src, size_t len, const char *key, const char *ext, const char *data,
               size_t data_len);
/* Writes the source itself next to the entries (for error messages); its path into path. */
void cache_save_source(const char *kind, const char *src, size_t len, const char *key, const char *ext, char *path,
                       size_t path_len);

#endif
