/* outputs.c - output paths prepared and checked before a run (see outputs.h). */
#include "outputs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data.h"
#include "fileio.h"

int output_prepare(const char *path, const char *what, char *err, size_t errlen) {
    char dir[4096];
    if (!path || !*path) {
        fio_errf(err, errlen, "the %s path is empty", what);
        return -1;
    }
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        fio_errf(err, errlen, "the %s path '%s' is too long", what, path);
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = 0; /* "/ck": the root folder */
    else if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    struct stat st;
    if (stat(dir, &st) != 0 && fio_mkdirs(dir) != 0) {
        fio_errf(err, errlen, "cannot write the %s '%s': cannot create the folder '%s': %s", what, path, dir,
                 strerror(errno));
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fio_errf(err, errlen, "cannot write the %s '%s': '%s' is not a folder", what, path, dir);
        return -1;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fio_errf(err, errlen, "cannot write the %s '%s': it is a folder", what, path);
        return -1;
    }
    /* the file is written as PATH.tmp.<pid> and renamed: prove that a file can be made here */
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.dino-probe.%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST) {
        unlink(probe);
        fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    }
    if (fd < 0) {
        fio_errf(err, errlen, "cannot write the %s '%s': cannot create a file in '%s': %s", what, path, dir,
                 strerror(errno));
        return -1;
    }
    close(fd);
    unlink(probe);
    return 0;
}

int outputs_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (!a || !b || stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int data_source_paths(const Model *m, const char *dir, char **paths, int max) {
    const DataSpec *ds = &m->data;
    const DataSource *src[] = {&ds->input,    &ds->output,      &ds->jac,          &ds->test_input, &ds->test_output,
                               &ds->test_jac, &ds->valid_input, &ds->valid_output, &ds->valid_jac};
    int n = 0;
    for (size_t i = 0; i < sizeof src / sizeof *src; i++) {
        const char *file = src[i]->kind != SRC_NONE ? src[i]->file : NULL;
        if (!file && src[i] == &ds->jac && !m->classifier) file = "J_data.npy"; /* data.c's default */
        if (!file || n == max) continue;
        if (!(paths[n] = data_join_path(dir, file))) {
            while (n > 0) free(paths[--n]);
            return -1;
        }
        n++;
    }
    return n;
}
