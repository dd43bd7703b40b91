/* arena.h - bump allocation for compiler data.
 *
 * Everything the front end and the compiler build (tokens' text, AST nodes, the checked model,
 * the IR) lives in one arena per compilation and is freed at once with arena_free. Nothing
 * allocated here is ever freed one by one. */
#ifndef DINO_ARENA_H
#define DINO_ARENA_H

#include <stddef.h>

typedef struct ArenaBlock ArenaBlock;
typedef struct {
    ArenaBlock *head; /* newest block first */
} Arena;

void *arena_alloc(Arena *a, size_t size); /* zeroed, 16-byte aligned; aborts on OOM */
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);

/* A growable array of pointers, backed by the arena (old storage is simply abandoned). */
typedef struct {
    void **items;
    int n, cap;
} PtrVec;
void ptrvec_push(Arena *a, PtrVec *v, void *item);

#endif
