/* parallel.c - dino_parallel_start/end (dino.h) over runtime/parallel.c: one Parallel per
 * process, which dino_train uses when it has several processes. */
#include "api.h"
#include "parallel.h"

static Parallel par = {.size = 1, .launcher = ""};

Parallel *api_parallel(void) { return par.size > 1 ? &par : NULL; }

dino_status dino_parallel_start(int *argc, char ***argv, dino_parallel *info) {
    char err[512];
    int rc = parallel_start(argc, argv, &par, err, sizeof err);
    if (info)
        *info = (dino_parallel){.rank = par.rank,
                                .size = par.size,
                                .local_rank = par.local_rank,
                                .launcher = par.launcher,
                                .have_mpi = parallel_have_mpi()};
    if (rc) {
        par.size = 1; /* what follows, if anything, is one process */
        return api_fail(DINO_EUSER, 0, "%s", err);
    }
    return DINO_OK;
}

void dino_parallel_end(void) { parallel_end(&par); }
