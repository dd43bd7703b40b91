/* nvrtc.h - NVRTC (CUDA's run-time compiler) loaded at run time: CUDA source -> PTX or CUBIN.
 *
 * Nothing here links against CUDA or needs its headers: the library is found with dlopen on
 * first use ($DINO_NVRTC if set, then libnvrtc.so, libnvrtc.so.13, .12, .11.2 on the loader's
 * path, then $CUDA_HOME/lib64, $CUDA_PATH/lib64 and /usr/local/cuda/lib64), so dino builds and
 * runs on machines without CUDA, and says what it tried when NVRTC is wanted but missing. */
#ifndef DINO_NVRTC_H
#define DINO_NVRTC_H

#include <stddef.h>

enum {
    NVRTC_OK = 0,
    NVRTC_MISSING = -1,        /* the library could not be loaded (err says what was tried) */
    NVRTC_COMPILE_FAILED = -2, /* the source did not compile (the log says why) */
    NVRTC_NO_CUBIN = -3,       /* this NVRTC is older than 11.1 and can only make PTX */
    NVRTC_FAILED = -4,         /* any other NVRTC error (err says which) */
};

/* Loads NVRTC if needed. Returns NVRTC_OK or NVRTC_MISSING with a message in err. */
int nvrtc_load(char *err, size_t errlen);

/* NVRTC's version (e.g. 13, 0). Returns NVRTC_OK, or NVRTC_MISSING. */
int nvrtc_version(int *major, int *minor);

/* The file NVRTC was loaded from, or NULL when it is missing (nvrtc_load's err says why). */
const char *nvrtc_path(void);

/* Whether this NVRTC can compile for sm_<sm> (e.g. 80, 90): 1 yes, 0 no, -1 unknown (an NVRTC
 * older than 11.2 has no list) or not loaded. */
int nvrtc_arch_supported(int sm);

/* The architectures this NVRTC compiles for (75, 80, ...), at most max of them; returns how
 * many, or -1 when unknown. */
int nvrtc_supported_archs(int *archs, int max);

/* The optimisation option every compile passes: --Ofast-compile=min unless $DINO_NVRTC_OPT
 * says mid, max or full (NVRTC's full optimisation: 3x slower compiles); "" once an NVRTC has
 * rejected the option (older than CUDA 12.8), which is then compiled without it. Part of the
 * CUBIN cache key. */
const char *nvrtc_speed_option(void);

/* Compiles src (program name `name`, used in messages) for arch: "compute_90" gives PTX,
 * "sm_90" a CUBIN; a bare "90" means either. want_cubin chooses the output and the arch is
 * adjusted to match (sm_90 asked for as PTX compiles for compute_90). On success *out is the
 * malloc'd PTX text (NUL-terminated; *out_len excludes the NUL) or CUBIN (*out_len bytes).
 * *log (when log is not NULL) receives the malloc'd compiler log, possibly empty, on success
 * and on failure. Returns an NVRTC_* code; on failure err says what happened (for a compile
 * failure: the first lines of the log). */
int nvrtc_compile(const char *src, const char *name, const char *arch, int want_cubin, char **out, size_t *out_len,
                  char **log, char *err, size_t errlen);

/* The same with one more NVRTC option (NULL or "" for none), e.g. "--ptxas-options=-v", whose
 * report (registers, shared memory, spills per kernel) then comes in *log. An architecture this
 * NVRTC does not list is refused first, by name. */
int nvrtc_compile_with(const char *src, const char *name, const char *arch, int want_cubin, const char *extra,
                       char **out, size_t *out_len, char **log, char *err, size_t errlen);

#endif
