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

/* An entry a set leaves NULL: the scalar set's (k: the set completed). */
#define FROM_SCALAR(entry)                                 \
        do {                                               \
                if (!k->entry)                             \
                        k->entry = kernels_scalar.entry;   \
        } while (0)

static void complete_all(void) {
        for (size_t s = 0; s < (sizeof all_sets / sizeof all_sets[0]); s++) {
                kernel_set *k = &completed[s];
                *k = *all_sets[s];
                if (k->gemv && k->gemv_supported && !k->gemv_supported())
                        k->gemv = NULL;
                FROM_SCALAR(tanh_f32);
                FROM_SCALAR(exp_f32);
                FROM_SCALAR(attn_scores);
                FROM_SCALAR(attn_mix);
                FROM_SCALAR(sum_squares);
                FROM_SCALAR(f16_lookup);
                FROM_SCALAR(gelu_f16);
                for (int t = 0; t < TYPE_COUNT; t++) {
                        FROM_SCALAR(vec_dot[t]);
                        FROM_SCALAR(from_float[t]);
                        FROM_SCALAR(to_float[t]);
                }
        }
}
#undef FROM_SCALAR

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
