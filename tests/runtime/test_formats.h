/* test_formats.h - the parts of the runtime_formats test (test_formats.c calls them). */
#ifndef DINO_TEST_FORMATS_H
#define DINO_TEST_FORMATS_H

#include "harness.h"

void test_npy(T *t);
void test_safetensors(T *t);
void test_idx(T *t);
void test_json(T *t);

#endif
