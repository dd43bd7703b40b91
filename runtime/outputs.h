/* outputs.h - files a run writes, checked before the work that produces them.
 *
 * A long training run must not end with "cannot create nodir/ck.safetensors.tmp": the
 * checkpoint and log paths are prepared before the first epoch (missing folders made, the
 * folder proven writable by creating and removing a file in it). And no output may replace an
 * input of the run: outputs_same_file compares by file identity (device and inode, so links
 * and different spellings of one path are caught), and data_source_paths lists the files a
 * spec's data section reads, resolved as data.c resolves them.
 *
 * Nothing here prints or exits: 0, or -1 with a one-line message in err. */
#ifndef DINO_OUTPUTS_H
#define DINO_OUTPUTS_H

#include <stddef.h>

#include "model.h"

/* Makes the missing folders above path and checks that a file can be created there, and that
 * path is not a folder. what names the file in the message ("checkpoint", "log"). */
int output_prepare(const char *path, const char *what, char *err, size_t errlen);

/* 1 when a and b both exist and are the same file (same device and inode), else 0. */
int outputs_same_file(const char *a, const char *b);

/* The paths of the files m's data section reads from dir (NULL or "": the current folder;
 * absolute names stay as they are), whether or not they exist: the input, output and
 * Jacobian files (J_data.npy when a regression model names none), the test and the
 * validation files. Writes at most max malloc'd paths into paths; returns how many, or -1 out of memory. */
int data_source_paths(const Model *m, const char *dir, char **paths, int max);

#endif
