/* test_params.c - the parameter table (dinoc --emit params) against the independent reference.
 *
 * For every folder in SHARED_DIR/reference, the spec of the same name is checked and its
 * parameters (names, shapes, definition order) are compared one by one with the tensors of
 * params.safetensors, which PyTorch wrote in definition order. Exit 77 (skipped) without the
 * shared folder. usage: test_params SHARED_DIR */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "frontend.h"
#include "harness.h"
#include "safetensors.h"

int main(int argc, char **argv) {
    const char *shared = argc > 1 ? argv[1] : "../shared";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/reference", shared);
    DIR *d = opendir(dir);
    if (!d) {
        printf("SKIP: no folder %s\n", dir);
        return 77;
    }
    int passes = 0, failures = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char specs[4200], spec[8192], params[8192], err[512];
        snprintf(specs, sizeof specs, "%s/specs", shared);
        t_spec_path(spec, sizeof spec, specs, e->d_name);
        snprintf(params, sizeof params, "%s/%s/params.safetensors", dir, e->d_name);
        FILE *probe = fopen(params, "rb");
        if (!probe) continue; /* not a reference folder (README.md) */
        fclose(probe);
        Frontend fe;
        Safetensors st;
        if (frontend_run(&fe, spec, stderr, 0, NULL) || st_load(params, &st, err, sizeof err)) {
            printf("FAIL %s: cannot read the spec or %s\n", e->d_name, params);
            failures++;
            continue;
        }
        const Model *m = fe.model;
        int ok = st.n == m->n_params;
        for (int i = 0; ok && i < m->n_params; i++) {
            const Param *p = &m->params[i];
            const StTensor *t = &st.tensors[i];
            ok = strcmp(p->name, t->name) == 0 && t->ndim == p->ndim && t->shape[0] == p->shape[0] &&
                (p->ndim == 1 || t->shape[1] == p->shape[1]);
            if (!ok)
                printf("     %s: parameter %d is %s, the reference's tensor %d is %s\n", e->d_name, i, p->name, i,
                       t->name);
        }
        printf("%-4s %s: %d parameters, names, shapes and order as in params.safetensors (%d tensors)\n",
               ok ? "ok" : "FAIL", e->d_name, m->n_params, st.n);
        passes += ok;
        failures += !ok;
        st_free(&st);
        frontend_free(&fe);
    }
    closedir(d);
    printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
