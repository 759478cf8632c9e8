/* SPDX-License-Identifier: MIT */
/* Q8_K: the activation type of the K-quants: 256 int8 with a float scale
 * and the sums of each 16 (bsums), which the K-quant dots use to apply the
 * sub-block minimums without touching the quants again.
 * Quantized as ggml does: the value of largest magnitude maps to -127
 * (iscale = -127/max), halves to even, clamped to 127. */
#include <math.h>
#include <string.h>

#include "kernels-impl.h"

void q8_k_to_float(const void *x, float *y, int64_t n) {
        const block_q8_K *b = x;

        for (int64_t i = 0; i < n / QK_K; i++)
                for (int j = 0; j < QK_K; j++)
                        *y++ = b[i].d * b[i].qs[j];
}

void q8_k_from_float(const float *x, void *y, int64_t n) {
        block_q8_K *b = y;

        for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
                float amax = 0, max = 0;
                for (int j = 0; j < QK_K; j++)
                        if (fabsf(x[j]) > amax) {
                                amax = fabsf(x[j]);
                                max = x[j];
                        }
                if (amax == 0.f) {
                        memset(&b[i], 0, sizeof b[i]);
                        continue;
                }
                float iscale = -127.f / max;
                for (int j = 0; j < QK_K; j++) {
                        int v = round_even(iscale * x[j]);
                        b[i].qs[j] = (int8_t)(v > 127 ? 127 : v);
                }
                for (int j = 0; j < QK_K / 16; j++) {
                        int sum = 0;
                        for (int l = 0; l < 16; l++)
                                sum += b[i].qs[j * 16 + l];
                        b[i].bsums[j] = (int16_t)sum;
                }
                b[i].d = 1 / iscale;
        }
}
