/* harness.h - the one harness of dino's test programs (the .c files of tests/ and tests/runtime/).
 * Header-only (static inline), so every test stays a plain .c file; nothing here is used by
 * the compiler or the runtime.
 *
 *   T, t_begin, t_end        a test context passed everywhere (no globals): check counts, -v,
 *                            a scratch folder removed at the end, the shared folder
 *   CHECK, CHECK_OK,         checks that count and report failures with file:line
 *   CHECK_NEAR, CHECK_ERR
 *   t_close, CHECK_CLOSE     n values against reference values, relative to the largest
 *                            reference; on failure the largest difference (index, both values)
 *                            and the first values side by side (as llm.c reports)
 *   t_spec_path, t_spec_fill test specs as files: tests/specs/NAME.dino, and templates
 *                            (NAME.dino.in) whose @KEY@ placeholders a test fills in
 *   t_path, t_read_file, ... scratch files
 *   t_now                    a monotonic clock in seconds
 *
 * Usage of a test built on t_begin: test_x [-v]   (-v prints every expected error message) */
#ifndef DINO_TEST_HARNESS_H
#define DINO_TEST_HARNESS_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef DINO_SHARED_DIR
#define DINO_SHARED_DIR "../shared"
#endif

/* ---------------------------------------------------------------------------- context and checks */

typedef struct {
    int passed, failed, skipped; /* check counts */
    int verbose;                 /* -v: print every expected error message */
    char dir[256];               /* scratch folder, removed by t_end */
    const char *shared;          /* $DINO_SHARED_DIR, else the compiled-in DINO_SHARED_DIR */
    char paths[8][512];          /* rotating buffers for t_path */
    int next_path;
} T;

/* Records one check; prints "FAIL file:line: what" when ok is 0. Returns ok. */
static inline int t_check(T *t, int ok, const char *file, int line, const char *what) {
    if (ok) {
        t->passed++;
    } else {
        t->failed++;
        printf("FAIL %s:%d: %s\n", file, line, what);
    }
    return ok;
}

/* Expects rc == 0; on failure prints the call, rc and err. */
static inline int t_check_ok(T *t, int rc, const char *err, const char *file, int line, const char *what) {
    if (rc == 0) {
        t->passed++;
        return 1;
    }
    t->failed++;
    printf("FAIL %s:%d: %s returned %d: %s\n", file, line, what, rc, err);
    return 0;
}

/* |got - want| <= tol * max(1, |want|) */
static inline int t_check_near(T *t, double got, double want, double tol, const char *file, int line,
                               const char *what) {
    int ok = fabs(got - want) <= tol * fmax(1.0, fabs(want));
    if (ok) {
        t->passed++;
    } else {
        t->failed++;
        printf("FAIL %s:%d: %s: got %.17g, want %.17g (diff %.3g, tol %.3g)\n", file, line, what, got, want, got - want,
               tol);
    }
    return ok;
}

/* rc == -1 and err starts with path (when path is not NULL) and contains every string of the
 * NULL-terminated list. */
static inline int t_check_err(T *t, int rc, const char *err, const char *path, const char *file, int line, ...) {
    int ok = rc == -1 && (!path || strncmp(err, path, strlen(path)) == 0);
    const char *missing = NULL;
    va_list ap;
    va_start(ap, line);
    for (const char *want; (want = va_arg(ap, const char *)) != NULL;)
        if (!missing && !strstr(err, want)) missing = want;
    va_end(ap);
    if (missing) ok = 0;
    if (!ok) {
        t->failed++;
        printf("FAIL %s:%d: expected an error starting with \"%s\"%s%s%s; got rc %d, \"%s\"\n", file, line,
               path ? path : "", missing ? " and containing \"" : "", missing ? missing : "", missing ? "\"" : "", rc,
               err);
    } else {
        t->passed++;
        if (t->verbose) printf("  ok: %s\n", err);
    }
    return ok;
}

#define CHECK(t, cond) t_check((t), (cond) != 0, __FILE__, __LINE__, #cond)
/* rc is evaluated once */
#define CHECK_OK(t, rc, err) t_check_ok((t), (rc), (err), __FILE__, __LINE__, #rc)
#define CHECK_NEAR(t, got, want, tol) t_check_near((t), (got), (want), (tol), __FILE__, __LINE__, #got)
/* CHECK_ERR(t, rc, err, path, "wanted", "strings", ...): rc == -1, err starts with path (or
 * path is NULL) and contains each wanted string */
#define CHECK_ERR(t, rc, err, path, ...) \
    t_check_err((t), (rc), (err), (path), __FILE__, __LINE__, __VA_ARGS__, (const char *)NULL)

static inline void t_skip(T *t, const char *what) {
    t->skipped++;
    printf("SKIP: %s\n", what);
}

/* ---------------------------------------------------------------------------- comparing arrays */

/* Element i of an array of doubles (f64) or floats. */
static inline double t_at(const void *a, int f64, long i) {
    return f64 ? ((const double *)a)[i] : (double)((const float *)a)[i];
}

/* max_i |got_i - want_i| / max_i |want_i| (divided by 1 when want is all zero); a NaN in either
 * array counts as the largest difference (the result is NaN). *at: the index of the largest
 * difference, *max_diff: its size (both may be NULL). */
static inline double t_rel_diff(const void *got, int got_f64, const void *want, int want_f64, long n, long *at,
                                double *max_diff) {
    double diff = 0, scale = 0;
    long where = 0;
    for (long i = 0; i < n; i++) {
        double w = t_at(want, want_f64, i), d = fabs(t_at(got, got_f64, i) - w);
        if (!(d <= diff) && diff == diff) diff = d, where = i; /* the first NaN stays */
        if (fabs(w) > scale) scale = fabs(w);
    }
    if (at) *at = where;
    if (max_diff) *max_diff = diff;
    return diff / (scale > 0 ? scale : 1);
}

/* Compares n values got (f64 or f32) with want (f64 or f32): passes when max |diff| / max |want|
 * <= tol. Prints one line (indent, ok or FAIL, what, the count and the relative difference) and,
 * on failure, where the largest difference is, both values there, and the first values as
 * got/want. Returns 1 when it passes. */
static inline int t_close(const char *indent, const char *what, const void *got, int got_f64, const void *want,
                          int want_f64, long n, double tol) {
    long at;
    double diff, rel = t_rel_diff(got, got_f64, want, want_f64, n, &at, &diff);
    int ok = rel <= tol;
    printf("%s%-4s %-40s %8ld values, max |diff| %.3e, relative %.3e (tolerance %.0e)\n", indent, ok ? "ok" : "FAIL",
           what, n, diff, rel, tol);
    if (!ok && n > 0) {
        printf("%s     largest difference at %ld: got %.17g, want %.17g\n", indent, at, t_at(got, got_f64, at),
               t_at(want, want_f64, at));
        printf("%s     first values (got/want):", indent);
        for (long i = 0; i < n && i < 5; i++) printf(" %.6g/%.6g", t_at(got, got_f64, i), t_at(want, want_f64, i));
        printf("\n");
    }
    return ok;
}

#define CHECK_CLOSE(t, what, got, got_f64, want, want_f64, n, tol) \
    (t_close("  ", (what), (got), (got_f64), (want), (want_f64), (n), (tol)) ? ((t)->passed++, 1) : ((t)->failed++, 0))

/* ---------------------------------------------------------------------------- files */

static inline double t_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int t_file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Writes n bytes; 0 or -1. */
static inline int t_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* The whole file, malloc'd and NUL-terminated (*n, when not NULL: its length without the NUL);
 * NULL when it cannot be read. */
static inline unsigned char *t_read_file(const char *path, size_t *n) {
    if (n) *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len - 1, f);
        if (len < cap - 1) break;
        unsigned char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    if (buf) buf[len] = 0;
    if (n) *n = len;
    return buf;
}

/* 1 when the writers' temporary file path.tmp.<pid> does not exist. */
static inline int t_no_tmp_left(const char *path) {
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    return !t_file_exists(tmp);
}

/* A path in the scratch folder; valid until 8 more calls. */
static inline const char *t_path(T *t, const char *name) {
    char *p = t->paths[t->next_path++ % 8];
    snprintf(p, sizeof t->paths[0], "%s/%s", t->dir, name);
    return p;
}

static inline void t_remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            size_t n = strlen(dir) + strlen(e->d_name) + 2;
            char *p = malloc(n);
            if (!p) continue;
            snprintf(p, n, "%s/%s", dir, e->d_name);
            struct stat sb;
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) t_remove_tree(p);
            else unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Sets up the context: -v, the shared folder, a scratch folder named after the test. 0 or -1. */
static inline int t_begin(T *t, int argc, char **argv, const char *name) {
    memset(t, 0, sizeof *t);
    for (int i = 1; i < argc; i++) t->verbose |= strcmp(argv[i], "-v") == 0;
    const char *shared = getenv("DINO_SHARED_DIR");
    t->shared = shared && shared[0] ? shared : DINO_SHARED_DIR;
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/dino_%s_XXXXXX", tmp && tmp[0] ? tmp : "/tmp", name);
    if (!mkdtemp(t->dir)) {
        printf("FAIL: cannot create a scratch folder %s\n", t->dir);
        return -1;
    }
    return 0;
}

/* Prints the summary and removes the scratch folder; the exit status for main. */
static inline int t_end(T *t, const char *name) {
    t_remove_tree(t->dir);
    printf("%s: %d passed, %d failed, %d skipped\n", name, t->passed, t->failed, t->skipped);
    return t->failed ? 1 : 0;
}

/* ---------------------------------------------------------------------------- test specs */

/* DIR/NAME.dino (NAME may already end in .dino); 0, or -1 when it does not fit. */
static inline int t_spec_path(char *out, size_t len, const char *dir, const char *name) {
    size_t n = strlen(name);
    const char *ext = n > 5 && strcmp(name + n - 5, ".dino") == 0 ? "" : ".dino";
    return (size_t)snprintf(out, len, "%s/%s%s", dir, name, ext) < len ? 0 : -1;
}

/* The text of a spec template with every @KEY@ replaced by its value: pairs is a
 * NULL-terminated list "KEY", "value", ... Malloc'd; NULL, with the reason in err, when the
 * template cannot be read, names a placeholder that pairs lacks, or a key is not used. */
static inline char *t_spec_fill(const char *template_path, const char *const *pairs, char *err, size_t errlen) {
    char *text = (char *)t_read_file(template_path, NULL);
    if (!text) {
        snprintf(err, errlen, "%s: cannot read", template_path);
        return NULL;
    }
    size_t cap = strlen(text) + 1, len = 0;
    for (int k = 0; pairs[k] && pairs[k + 1]; k += 2) cap += 8 * strlen(pairs[k + 1]); /* up to 8 uses each */
    char *out = malloc(cap);
    int used[64] = {0};
    const char *p = text;
    while (out && *p) {
        const char *end = p[0] == '@' ? strchr(p + 1, '@') : NULL;
        if (end && end > p + 1 && strspn(p + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789") == (size_t)(end - p - 1)) {
            int k = 0;
            while (pairs[k] &&
                   !(strlen(pairs[k]) == (size_t)(end - p - 1) && strncmp(pairs[k], p + 1, (size_t)(end - p - 1)) == 0))
                k += 2;
            size_t vlen = pairs[k] ? strlen(pairs[k + 1]) : 0;
            if (!pairs[k] || len + vlen >= cap) {
                snprintf(err, errlen, "%s: %s placeholder @%.*s@", template_path,
                         pairs[k] ? "too many uses of" : "no value for the", (int)(end - p - 1), p + 1);
                free(out);
                out = NULL;
                break;
            }
            if (k / 2 < 64) used[k / 2] = 1;
            memcpy(out + len, pairs[k + 1], vlen);
            len += vlen;
            p = end + 1;
        } else {
            out[len++] = *p++;
        }
    }
    for (int k = 0; out && pairs[k]; k += 2)
        if (k / 2 < 64 && !used[k / 2]) {
            snprintf(err, errlen, "%s: no placeholder @%s@", template_path, pairs[k]);
            free(out);
            out = NULL;
        }
    if (out) out[len] = 0;
    free(text);
    return out;
}

/* t_spec_fill, written to OUT_DIR/NAME.dino (its path in path). 0, or -1 with err. */
static inline int t_spec_generate(const char *template_path, const char *const *pairs, const char *out_dir,
                                  const char *name, char *path, size_t len, char *err, size_t errlen) {
    char *text = t_spec_fill(template_path, pairs, err, errlen);
    if (!text) return -1;
    int rc = t_spec_path(path, len, out_dir, name) || t_write_file(path, text, strlen(text)) ? -1 : 0;
    if (rc) snprintf(err, errlen, "%s: cannot write", path);
    free(text);
    return rc;
}

#endif
