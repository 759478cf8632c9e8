/* SPDX-License-Identifier: MIT */
/* BF16: the upper half of a float32; activations are rounded to bf16 too
 * (as ggml does) and the products summed in double for the reference. */
#include "kernels-impl.h"

void bf16_to_float(const void *x, float *y, int64_t n) {
        const uint16_t *h = x;

        for (int64_t i = 0; i < n; i++)
                y[i] = bf16_to_fp32(h[i]);
}

void bf16_from_float(const float *x, void *y, int64_t n) {
        uint16_t *h = y;

        for (int64_t i = 0; i < n; i++)
                h[i] = fp32_to_bf16(x[i]);
}

void bf16_vec_dot(int64_t n, float *s, const void *w, const void *a) {
        const uint16_t *x = w, *y = a;
        double sum = 0;

        for (int64_t i = 0; i < n; i++)
                sum += (double)bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]);
        *s = (float)sum;
}
