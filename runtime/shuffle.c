/* shuffle.c - an epoch's row order (see shuffle.h). */
#include "shuffle.h"

void shuffle_rows(Rng *r, int64_t *idx, int64_t n, int64_t block, int64_t window) {
    if (block <= 0) {
        for (int64_t i = 0; i < n; i++) idx[i] = i;
        rng_permute(r, idx, n);
        return;
    }
    if (n <= 0) return;
    int64_t nb = (n - 1) / block + 1; /* blocks; the last has n - (nb - 1) block rows */
    /* The block numbers, shuffled, in the last nb places of idx; then each block's rows are
     * written from the front. When block k (in visiting order) is expanded, the rows written so
     * far plus its own are n minus the rows of the nb - 1 - k blocks after it, at least one each,
     * so they end before place n - nb + k + 1, where the next block number waits: nothing unread
     * is overwritten. */
    int64_t *order = idx + (n - nb);
    for (int64_t k = 0; k < nb; k++) order[k] = k;
    rng_permute(r, order, nb);
    int64_t at = 0;
    for (int64_t k = 0; k < nb; k++) {
        int64_t b = order[k], lo = b * block, hi = lo + block < n ? lo + block : n;
        for (int64_t row = lo; row < hi; row++) idx[at++] = row;
    }
    int64_t w = window > 0 ? window : block;
    for (int64_t p = 0; p < n; p += w) rng_permute(r, idx + p, n - p < w ? n - p : w);
}
