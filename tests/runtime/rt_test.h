/* rt_test.h - the small harness of the training-runtime tests (test_optim.c, test_init.c,
 * test_data.c, test_checkpoint.c; one executable each): a context passed everywhere (no
 * globals), checks that count and report failures with file:line, and a scratch folder that
 * is removed at the end. Header-only, so each test is a single .c file.
 * Usage of every test: test_x [-v]   (-v prints every expected error message) */
#ifndef DINO_RT_TEST_H
#define DINO_RT_TEST_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef DINO_SHARED_DIR
#define DINO_SHARED_DIR "../shared"
#endif

typedef struct {
  int passed, failed, skipped;
  int verbose;        /* -v */
  char dir[256];      /* scratch folder */
  char paths[8][512]; /* rotating buffers for rt_path */
  int next_path;
} RT;

static inline int rt_check(RT *t, int ok, const char *file, int line, const char *what) {
  if (ok) {
    t->passed++;
  } else {
    t->failed++;
    printf("FAIL %s:%d: %s\n", file, line, what);
  }
  return ok;
}

static inline int rt_check_ok(RT *t, int rc, const char *err, const char *file, int line,
                              const char *what) {
  if (rc == 0) {
    t->passed++;
    return 1;
  }
  t->failed++;
  printf("FAIL %s:%d: %s returned %d: %s\n", file, line, what, rc, err);
  return 0;
}

/* |got - want| <= tol * max(1, |want|) */
static inline int rt_check_near(RT *t, double got, double want, double tol, const char *file,
                                int line, const char *what) {
  int ok = fabs(got - want) <= tol * fmax(1.0, fabs(want));
  if (ok) {
    t->passed++;
  } else {
    t->failed++;
    printf("FAIL %s:%d: %s: got %.17g, want %.17g (diff %.3g, tol %.3g)\n", file, line, what,
           got, want, got - want, tol);
  }
  return ok;
}

/* rc == -1 and err starts with path (when path is not NULL) and contains every string of the
 * NULL-terminated list. */
static inline int rt_check_err(RT *t, int rc, const char *err, const char *path,
                               const char *file, int line, ...) {
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
    printf("FAIL %s:%d: expected an error starting with \"%s\"%s%s%s; got rc %d, \"%s\"\n", file,
           line, path ? path : "", missing ? " and containing \"" : "", missing ? missing : "",
           missing ? "\"" : "", rc, err);
  } else {
    t->passed++;
    if (t->verbose) printf("  ok: %s\n", err);
  }
  return ok;
}

#define CHECK(t, cond) rt_check((t), (cond) != 0, __FILE__, __LINE__, #cond)
#define CHECK_OK(t, rc, err) rt_check_ok((t), (rc), (err), __FILE__, __LINE__, #rc)
#define CHECK_NEAR(t, got, want, tol) \
  rt_check_near((t), (got), (want), (tol), __FILE__, __LINE__, #got)
#define CHECK_ERR(t, rc, err, path, ...) \
  rt_check_err((t), (rc), (err), (path), __FILE__, __LINE__, __VA_ARGS__, (const char *)NULL)

static inline void rt_skip(RT *t, const char *what) {
  t->skipped++;
  printf("SKIP: %s\n", what);
}

/* A path in the scratch folder; valid until 8 more calls. */
static inline const char *rt_path(RT *t, const char *name) {
  char *p = t->paths[t->next_path++ % 8];
  snprintf(p, sizeof t->paths[0], "%s/%s", t->dir, name);
  return p;
}

static inline int rt_file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static inline int rt_begin(RT *t, int argc, char **argv, const char *name) {
  memset(t, 0, sizeof *t);
  t->verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
  const char *tmp = getenv("TMPDIR");
  snprintf(t->dir, sizeof t->dir, "%s/dino_%s_XXXXXX", tmp && tmp[0] ? tmp : "/tmp", name);
  if (!mkdtemp(t->dir)) {
    printf("FAIL: cannot create a scratch folder %s\n", t->dir);
    return -1;
  }
  return 0;
}

static inline void rt_remove_tree(const char *dir) {
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
      if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rt_remove_tree(p);
      else unlink(p);
      free(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

/* Prints the summary, removes the scratch folder; the exit status for main. */
static inline int rt_end(RT *t, const char *name) {
  rt_remove_tree(t->dir);
  printf("%s: %d passed, %d failed, %d skipped\n", name, t->passed, t->failed, t->skipped);
  return t->failed ? 1 : 0;
}

#endif
