/* test_oom.c - ctest "api_oom": running out of memory inside the compiler is an error status
 * from the library, never an exit. The address space is limited (setrlimit RLIMIT_AS) to a
 * little above what the process uses, then a spec too big to fit is checked through dino.h: the
 * call must return DINO_EINTERNAL with an out-of-memory message, and the process goes on (the
 * limit lifted, a small spec then checks fine). Skipped (77) where the limit can't be set or a
 * sanitizer reserves the address space. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "dino.h"

#if defined(__SANITIZE_ADDRESS__)
#define DINO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DINO_ASAN 1
#endif
#endif

#ifndef DINO_ASAN
static long vm_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld", &pages) != 1) pages = -1;
    fclose(f);
    return pages < 0 ? -1 : pages * 4096L;
}
#endif

int main(void) {
#ifdef DINO_ASAN
    puts("SKIP: the address sanitizer reserves the address space");
    return 77;
#else
    const char *small = "model m {\n    input x[2]\n    output y[1]\n    y = dense(x, 1)\n}\n";
    /* a spec of 400,000 statements, each a few arena allocations: far more than 8 MiB of arena */
    size_t n = 400000, cap = n * 40 + 200, len = 0;
    char *big = malloc(cap);
    if (!big) return 2;
    len += (size_t)sprintf(big + len, "model m {\n    input x[2]\n    output y[2]\n    h0 = x\n");
    for (size_t i = 1; i < n; i++) len += (size_t)sprintf(big + len, "    h%zu = h%zu + x\n", i, i - 1);
    len += (size_t)sprintf(big + len, "    y = h%zu\n}\n", n - 1);
    dino_spec *s = NULL;
    if (dino_spec_from_text("warm.dino", small, strlen(small), &s) != DINO_OK) {
        printf("FAIL a small spec: %s\n", dino_last_error());
        return 1;
    }
    dino_spec_free(s);
    struct rlimit old, lim;
    long used = vm_bytes();
    if (used < 0 || getrlimit(RLIMIT_AS, &old)) {
        puts("SKIP: cannot read the address space");
        return 77;
    }
    lim = old;
    lim.rlim_cur = (rlim_t)used + 8L * 1024 * 1024;
    if (setrlimit(RLIMIT_AS, &lim)) {
        puts("SKIP: cannot limit the address space");
        return 77;
    }
    dino_status st = dino_spec_from_text("big.dino", big, len, &s);
    setrlimit(RLIMIT_AS, &old);
    int fails = 0;
    if (st != DINO_EINTERNAL || !strstr(dino_last_error(), "out of memory")) {
        printf("FAIL a spec too big for memory: status %d, '%s' (expected %d, out of memory)\n", (int)st,
               dino_last_error(), (int)DINO_EINTERNAL);
        fails++;
    } else {
        printf("ok   a spec too big for memory: status %d, '%s'\n", (int)st, dino_last_error());
    }
    if (st == DINO_OK) dino_spec_free(s);
    if (dino_spec_from_text("after.dino", small, strlen(small), &s) != DINO_OK) {
        printf("FAIL a small spec after the out-of-memory error: %s\n", dino_last_error());
        fails++;
    } else {
        puts("ok   the process goes on: a small spec checks after it");
        dino_spec_free(s);
    }
    free(big);
    printf("%d passed, %d failed\n", 2 - fails, fails);
    return fails ? 1 : 0;
#endif
}
