/* test_shuffle.c - ctest "runtime_shuffle": an epoch's row order (runtime/shuffle.c).
 * shuffle rows is the full shuffle of every earlier release, bit for bit; shuffle blocks B
 * window W gives a permutation (every row exactly once) for many n, B, W; it is a function of
 * the RNG state (the same again from a saved state: every process, a resumed run), differs
 * from epoch to epoch; with W = B each window is one whole block, with W < B inside one block,
 * with W = kB k whole blocks; the blocks come in a random order and their rows shuffled. */
#include "harness.h"

#include "shuffle.h"

/* idx[0..n) holds every row 0..n-1 exactly once. */
static int is_permutation(const int64_t *idx, int64_t n) {
    char *seen = calloc((size_t)(n ? n : 1), 1);
    int ok = seen != NULL;
    for (int64_t i = 0; ok && i < n; i++) {
        ok = idx[i] >= 0 && idx[i] < n && !seen[idx[i]];
        if (ok) seen[idx[i]] = 1;
    }
    free(seen);
    return ok;
}

/* Every window [p, p + w) of the order holds the rows of `span` consecutive whole blocks of B
 * rows starting at a multiple of B (n a multiple of w, w a multiple of B), or, span 0 (w
 * dividing B), rows of one block only. */
static int windows_are_blocks(const int64_t *idx, int64_t n, int64_t B, int64_t w, int span) {
    for (int64_t p = 0; p < n; p += w) {
        int64_t lo = idx[p], hi = idx[p];
        for (int64_t i = p; i < p + w; i++) lo = idx[i] < lo ? idx[i] : lo, hi = idx[i] > hi ? idx[i] : hi;
        if (span == 0) {
            if (lo / B != hi / B) return 0; /* w <= B: one block */
        } else {
            /* w rows, distinct (a permutation), all inside span blocks: whole blocks only when
             * they are `span` blocks apart at most; a window of consecutive blocks in the visiting
             * order need not be consecutive in the file, so count the blocks instead */
            int64_t blocks[64];
            int nb = 0;
            for (int64_t i = p; i < p + w; i++) {
                int64_t b = idx[i] / B;
                int found = 0;
                for (int k = 0; k < nb; k++) found |= blocks[k] == b;
                if (!found) {
                    if (nb == 64) return 0;
                    blocks[nb++] = b;
                }
            }
            if (nb != span) return 0; /* w = span B rows from exactly span blocks: each whole */
        }
    }
    return 1;
}

static void test_rows(T *t) {
    /* shuffle rows: exactly rng_permute of 0..n-1, as train.c did before shuffle blocks */
    Rng a, b;
    rng_seed(&a, 7), rng_seed(&b, 7);
    enum { N = 1000 };
    int64_t x[N], y[N];
    for (int e = 0; e < 3; e++) {
        shuffle_rows(&a, x, N, 0, 0);
        for (int64_t i = 0; i < N; i++) y[i] = i;
        rng_permute(&b, y, N);
        CHECK(t, memcmp(x, y, sizeof x) == 0 && memcmp(a.s, b.s, sizeof a.s) == 0);
    }
}

static void test_permutation(T *t) {
    static const int64_t ns[] = {0, 1, 2, 7, 100, 1000, 1001, 4099};
    static const int64_t bs[] = {1, 2, 3, 10, 64, 1000, 5000};
    int64_t *idx = malloc(sizeof(int64_t) * 4099);
    int ok = 1, cases = 0;
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        for (size_t j = 0; j < sizeof bs / sizeof bs[0]; j++) {
            int64_t B = bs[j], ws[] = {0, 1, 5, B, 3 * B + 1};
            for (size_t k = 0; k < sizeof ws / sizeof ws[0]; k++) {
                Rng r;
                rng_seed(&r, 100 + i * 10 + j);
                for (int e = 0; e < 2; e++) { /* two epochs: the second starts from the first's order */
                    shuffle_rows(&r, idx, ns[i], B, ws[k]);
                    if (!is_permutation(idx, ns[i])) {
                        ok = 0;
                        printf("  not a permutation: n %lld, block %lld, window %lld\n", (long long)ns[i], (long long)B,
                               (long long)ws[k]);
                    }
                    cases++;
                }
            }
        }
    CHECK(t, ok && cases == 8 * 7 * 5 * 2);
    free(idx);
}

static void test_blocks(T *t) {
    enum { N = 6400, B = 64 };
    int64_t *a = malloc(sizeof(int64_t) * N), *b = malloc(sizeof(int64_t) * N), *c = malloc(sizeof(int64_t) * N);
    Rng r, s;
    rng_seed(&r, 3);
    uint64_t saved[4];
    rng_save(&r, saved);
    shuffle_rows(&r, a, N, B, 0);
    /* the same from the saved state (another process, a resumed run) */
    rng_restore(&s, saved);
    shuffle_rows(&s, b, N, B, 0);
    CHECK(t, memcmp(a, b, sizeof(int64_t) * N) == 0 && memcmp(r.s, s.s, sizeof r.s) == 0);
    /* the next epoch differs, and so does another seed */
    shuffle_rows(&r, c, N, B, 0);
    CHECK(t, is_permutation(c, N) && memcmp(a, c, sizeof(int64_t) * N) != 0);
    Rng o;
    rng_seed(&o, 4);
    shuffle_rows(&o, b, N, B, 0);
    CHECK(t, memcmp(a, b, sizeof(int64_t) * N) != 0);
    /* window = block: each window of B places is one whole block */
    CHECK(t, windows_are_blocks(a, N, B, B, 1) && windows_are_blocks(c, N, B, B, 1));
    /* the blocks come in a random order: not the file's, and not the same in both epochs */
    int in_order = 1, same_first = a[0] / B == c[0] / B && a[B] / B == c[B] / B && a[2 * B] / B == c[2 * B] / B;
    for (int64_t k = 1; k < N / B; k++) in_order &= a[k * B] / B == a[(k - 1) * B] / B + 1;
    CHECK(t, !in_order && !same_first);
    /* the rows of a block are shuffled: not in file order within the first window */
    int sorted = 1;
    for (int64_t i = 1; i < B; i++) sorted &= a[i] == a[i - 1] + 1;
    CHECK(t, !sorted);
    /* window < block: each window inside one block; window = 4 blocks: four whole blocks */
    shuffle_rows(&r, a, N, B, 16);
    CHECK(t, is_permutation(a, N) && windows_are_blocks(a, N, B, 16, 0));
    shuffle_rows(&r, a, N, B, 4 * B);
    CHECK(t, is_permutation(a, N) && windows_are_blocks(a, N, B, 4 * B, 4));
    /* block 1: rows visited in a random order, and window 1 leaves that order as it is */
    shuffle_rows(&r, a, N, 1, 1);
    CHECK(t, is_permutation(a, N) && a[0] != 0);
    free(a), free(b), free(c);
}

int main(int argc, char **argv) {
    T t;
    if (t_begin(&t, argc, argv, "shuffle")) return 1;
    test_rows(&t);
    test_permutation(&t);
    test_blocks(&t);
    return t_end(&t, "runtime_shuffle");
}
