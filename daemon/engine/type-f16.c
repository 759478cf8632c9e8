/* SPDX-License-Identifier: MIT */
/* F16: IEEE half per element; activations are converted to half too (as
 * ggml does) and the products summed in double for the reference. */
#include "kernels-impl.h"

void f16_to_float(const void *x, float *y, int64_t n) {
        const uint16_t *h = x;

        for (int64_t i = 0; i < n; i++)
                y[i] = fp16_to_fp32(h[i]);
}

void f16_from_float(const float *x, void *y, int64_t n) {
        uint16_t *h = y;

        for (int64_t i = 0; i < n; i++)
                h[i] = fp32_to_fp16(x[i]);
}

void f16_vec_dot(int64_t n, float *s, const void *w, const void *a) {
        const uint16_t *x = w, *y = a;
        double sum = 0;

        for (int64_t i = 0; i < n; i++)
                sum += (double)fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]);
        *s = (float)sum;
}
