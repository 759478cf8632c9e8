/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "mkmodel-model.h"

/* Write the planned model to path (through a temporary file renamed at the
 * end), drawing the weights from seed with n_threads threads. */
int mk_model_write(const mk_model *m, const char *path, uint64_t seed, int n_threads, char *err, size_t errlen);
/* A preset in one type (names as sotto-mkmodel takes them), planned and
 * written on one thread. */
int mk_model_write_preset(const char *preset, const char *ftype, const char *path, uint64_t seed, char *err,
                          size_t errlen);
