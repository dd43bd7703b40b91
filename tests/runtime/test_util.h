/* test_util.h - the small harness shared by the runtime format tests (test_formats.c and
 * the test_*.c files it calls): a test context passed everywhere (no globals), CHECK macros
 * that count and report failures with file:line, and scratch-file helpers. */
#ifndef DINO_TEST_UTIL_H
#define DINO_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int passed, failed, skipped; /* check counts */
  int verbose;                 /* -v: print every expected error message */
  char dir[256];               /* scratch directory, removed at the end */
  const char *shared;          /* DINO_SHARED_DIR: reference files and data */
  char paths[8][512];          /* rotating buffers for tpath() */
  int next_path;
} T;

/* Record one check; prints "FAIL file:line: what" when ok is 0. Returns ok. */
int check_at(T *t, int ok, const char *file, int line, const char *what);
/* Expect rc == -1 and an err that starts with path and contains want. */
int check_err_at(T *t, int rc, const char *err, const char *path, const char *want,
                 const char *file, int line);
void skip(T *t, const char *what);

#define CHECK(t, cond) check_at((t), (cond) != 0, __FILE__, __LINE__, #cond)
/* Expect rc == 0; on failure prints the call and err. rc is evaluated once. */
int check_ok_at(T *t, int rc, const char *err, const char *file, int line, const char *what);

#define CHECK_OK(t, rc, err) check_ok_at((t), (rc), (err), __FILE__, __LINE__, #rc)
#define CHECK_ERR(t, rc, err, path, want) \
  check_err_at((t), (rc), (err), (path), (want), __FILE__, __LINE__)

/* A path in the scratch directory; valid until 8 more calls. */
const char *tpath(T *t, const char *name);
int write_file(const char *path, const void *data, size_t n);
/* The whole file, malloc'd; *n its length. NULL when it cannot be read. */
unsigned char *read_file(const char *path, size_t *n);
int file_exists(const char *path);
/* 1 when the writers' temporary file path.tmp.<pid> does not exist. */
int no_tmp_left(const char *path);

void test_npy(T *t);
void test_safetensors(T *t);
void test_idx(T *t);
void test_json(T *t);

#endif
