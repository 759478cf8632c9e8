/* SPDX-License-Identifier: MIT */
/* Run-time choice of the kernel set: the widest one the CPU (and the OS,
 * which must save the wide registers) supports, completed with the scalar
 * entries it lacks. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "macro.h"

static const kernel_set *const all_sets[] = { &kernels_avx512, &kernels_avx2, &kernels_scalar };

static kernel_set completed[(sizeof all_sets / sizeof all_sets[0])];
static pthread_once_t completed_once = PTHREAD_ONCE_INIT;

static void complete_all(void) {
        for (size_t s = 0; s < (sizeof all_sets / sizeof all_sets[0]); s++) {
                kernel_set *k = &completed[s];
                *k = *all_sets[s];
                if (k->gemv && k->gemv_supported && !k->gemv_supported())
                        k->gemv = NULL;
                if (!k->tanh_f32)
                        k->tanh_f32 = kernels_scalar.tanh_f32;
                if (!k->exp_f32)
                        k->exp_f32 = kernels_scalar.exp_f32;
                if (!k->attn_scores)
                        k->attn_scores = kernels_scalar.attn_scores;
                if (!k->attn_mix)
                        k->attn_mix = kernels_scalar.attn_mix;
                if (!k->sum_squares)
                        k->sum_squares = kernels_scalar.sum_squares;
                if (!k->f16_lookup)
                        k->f16_lookup = kernels_scalar.f16_lookup;
                for (int t = 0; t < TYPE_COUNT; t++) {
                        if (!k->vec_dot[t])
                                k->vec_dot[t] = kernels_scalar.vec_dot[t];
                        if (!k->from_float[t])
                                k->from_float[t] = kernels_scalar.from_float[t];
                        if (!k->to_float[t])
                                k->to_float[t] = kernels_scalar.to_float[t];
                }
        }
}

const kernel_set *kernels_get(const char *name) {
        if (!name)
                return NULL;
        pthread_once(&completed_once, complete_all);
        for (size_t s = 0; s < (sizeof all_sets / sizeof all_sets[0]); s++)
                if (strcmp(completed[s].name, name) == 0)
                        return completed[s].supported() ? &completed[s] : NULL;
        return NULL;
}

const kernel_set *kernels_best(void) {
        const char *e = getenv("SOTTO_KERNELS");
        const kernel_set *k;

        pthread_once(&completed_once, complete_all);
        if (e && *e && (k = kernels_get(e)))
                return k;
        for (size_t s = 0; s < (sizeof all_sets / sizeof all_sets[0]); s++)
                if (completed[s].supported())
                        return &completed[s];
        return &completed[(sizeof all_sets / sizeof all_sets[0]) - 1];
}
