/* SPDX-License-Identifier: MIT */
/* Private to matmul-int8*.c: the int8 path's pieces (see
 * matmul-int8-avx512.c for the maths). */
#pragma once

#include "matmul-impl.h"

#define STRIP 32 /* weight rows repacked together: two zmm of lanes */

/* Activations of n_tokens tokens: int8 values (n_in per token), and per
 * group the scale t and t * (sum of the group's values). */
typedef struct int8_act {
        int8_t *a;
        float *t, *tsum;
} int8_act;

/* Elements per scale group for a weight type, 0 if the path lacks it. */
int int8_group_size(uint32_t type);
/* Bytes of one thread's strip buffer. */
size_t int8_strip_bytes(int64_t n_in, int group);
void int8_prepare_act(uint32_t act_type, int group, const void *src, int64_t n, int8_t *a, float *t, float *tsum);
/* Output rows [r0, r1) for every token (AVX-512 VNNI). */
void int8_avx512_rows(const weight *w, int group, const int8_act *act, int64_t n_tokens, float *y, int64_t r0,
                      int64_t r1, void *buf);
