/* files.c - dino.h's files and cache: atomic writes, file identity, the files a spec's data
 * section reads, the compiled-code cache, and what --version reports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cache.h"
#include "cuda_driver.h"
#include "dino_commit.h"
#include "fileio.h"
#include "nvrtc.h"
#include "outputs.h"

dino_status dino_write_file(const char *path, const void *data, size_t len) {
    char err[4200];
    if (!path) return api_fail(DINO_EUSER, 0, "no output path");
    if (fio_write_atomic(path, data, len, err, sizeof err)) return api_fail(DINO_EUSER, 0, "%s", err);
    return DINO_OK;
}

int dino_same_file(const char *a, const char *b) { return outputs_same_file(a, b); }

dino_status dino_spec_data_files(dino_spec *spec, const char *dir, size_t *count) {
    *count = 0;
    if (!spec || !spec->ok) return api_fail(DINO_EUSER, 0, "the spec has errors");
    for (int i = 0; i < spec->n_data_files; i++) free(spec->data_files[i]);
    spec->n_data_files = 0;
    int n = data_source_paths(spec->fe.model, dir ? dir : spec->data_dir, spec->data_files,
                              (int)(sizeof spec->data_files / sizeof *spec->data_files));
    if (n < 0) return api_fail(DINO_EINTERNAL, 0, "out of memory");
    spec->n_data_files = n;
    *count = (size_t)n;
    return DINO_OK;
}

const char *dino_spec_data_file(const dino_spec *spec, size_t i) {
    return spec && i < (size_t)spec->n_data_files ? spec->data_files[i] : NULL;
}

static void copy_info(const CacheInfo *c, dino_cache_info *info) {
    if (!info) return;
    snprintf(info->path, sizeof info->path, "%s", c->path);
    info->entries = c->entries;
    info->bytes = c->bytes;
    info->max_bytes = c->max_bytes;
}

dino_status dino_cache_info_get(dino_cache_info *info) {
    CacheInfo c;
    char err[4200];
    if (cache_info(&c, err, sizeof err)) return api_fail(DINO_EUSER, 0, "%s", err);
    copy_info(&c, info);
    return DINO_OK;
}

dino_status dino_cache_clear(dino_cache_info *removed) {
    CacheInfo c;
    char err[4200];
    if (cache_clear(&c, err, sizeof err)) return api_fail(DINO_EUSER, 0, "%s", err);
    copy_info(&c, removed);
    return DINO_OK;
}

const char *dino_version_details(void) {
    static _Thread_local char text[4096];
    char lib[1024], why[1100], drv[1200], nvr[1400];
    int version = 0;
    if (cuda_driver_version(&version, lib, sizeof lib, why, sizeof why) == 0)
        snprintf(drv, sizeof drv, "CUDA driver: %d.%d (%s)", version / 1000, version % 1000 / 10, lib);
    else snprintf(drv, sizeof drv, "CUDA driver: none found (%s)", why);
    int major = 0, minor = 0;
    const char *path = nvrtc_path();
    if (path && nvrtc_version(&major, &minor) == NVRTC_OK)
        snprintf(nvr, sizeof nvr, "NVRTC: %d.%d (%s)", major, minor, path);
    else
        snprintf(nvr, sizeof nvr, "NVRTC: none found (libnvrtc.so%s)",
                 getenv("DINO_NVRTC") && *getenv("DINO_NVRTC") ? ", $DINO_NVRTC" : "; see DINO_NVRTC and CUDA_HOME");
    snprintf(text, sizeof text, "commit %s\n%s\n%s\n", DINO_COMMIT, drv, nvr);
    return text;
}
