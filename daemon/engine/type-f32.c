/* SPDX-License-Identifier: MIT */
/* F32: plain floats.  The scalar dot sums in double: it is the reference
 * the SIMD kernels are checked against. */
#include <string.h>

#include "kernels-impl.h"

void f32_to_float(const void *x, float *y, int64_t n) {
        memcpy(y, x, (size_t)n * sizeof(float));
}

void f32_from_float(const float *x, void *y, int64_t n) {
        memcpy(y, x, (size_t)n * sizeof(float));
}

void f32_vec_dot(int64_t n, float *s, const void *w, const void *a) {
        const float *x = w, *y = a;
        double sum = 0;

        for (int64_t i = 0; i < n; i++)
                sum += (double)x[i] * y[i];
        *s = (float)sum;
}
