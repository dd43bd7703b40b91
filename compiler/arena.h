/* arena.h - bump allocation for compiler data.
 *
 * Everything the front end and the compiler build (tokens' text, AST nodes, the checked model,
 * the IR) lives in one arena per compilation and is freed at once with arena_free. Nothing
 * allocated here is ever freed one by one. */
#ifndef DINO_ARENA_H
#define DINO_ARENA_H

#include <setjmp.h>
#include <stddef.h>

typedef struct ArenaBlock ArenaBlock;
typedef struct {
    ArenaBlock *head; /* newest block first */
} Arena;

void *arena_alloc(Arena *a, size_t size); /* zeroed, 16-byte aligned; out of memory: see ArenaGuard */
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);

/* Out of memory in arena_alloc jumps to the calling thread's innermost guard (the library's entry
 * points set one: api.h's API_GUARDED, which turns it into the status DINO_EINTERNAL), so the
 * library never exits or prints. Without a guard (the tests, which call the compiler directly)
 * it aborts. The guard's frame must stay alive while guarded: push after setjmp, pop before
 * returning; the jump itself pops it. */
typedef struct ArenaGuard {
    jmp_buf jump;
    struct ArenaGuard *prev;
} ArenaGuard;
void arena_guard_push(ArenaGuard *g);
void arena_guard_pop(ArenaGuard *g);
/* What the compiler does when any allocation fails (arena_alloc, and the mallocs outside arenas):
 * the jump to the guard, or abort without one. Does not return. */
_Noreturn void arena_out_of_memory(void);

/* A growable array of pointers, backed by the arena (old storage is simply abandoned). */
typedef struct {
    void **items;
    int n, cap;
} PtrVec;
void ptrvec_push(Arena *a, PtrVec *v, void *item);

#endif
