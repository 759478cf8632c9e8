/* SPDX-License-Identifier: MIT */
/* Q4_0: blocks of 32 4-bit values with one half scale (spec §3.1).
 *   x[j] = d * (nibble_j - 8); low nibbles are elements 0..15, high 16..31
 * Dot with Q8_0 activations: exact integer sum per block, then float. */
#include <math.h>

#include "kernels-impl.h"

void q4_0_to_float(const void *x, float *y, int64_t n) {
        const block_q4_0 *b = x;

        for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
                float d = fp16_to_fp32(b[i].d);
                for (int j = 0; j < QK4_0 / 2; j++) {
                        y[j] = ((b[i].qs[j] & 0x0F) - 8) * d;
                        y[j + 16] = ((b[i].qs[j] >> 4) - 8) * d;
                }
        }
}

/* ggml's reference quantizer: the value of largest magnitude maps to -8. */
void q4_0_from_float(const float *x, void *y, int64_t n) {
        block_q4_0 *b = y;

        for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
                float amax = 0, max = 0;
                for (int j = 0; j < QK4_0; j++)
                        if (fabsf(x[j]) > amax) {
                                amax = fabsf(x[j]);
                                max = x[j];
                        }
                float d = max / -8, id = d != 0.f ? 1.f / d : 0.f;
                b[i].d = fp32_to_fp16(d);
                for (int j = 0; j < QK4_0 / 2; j++) {
                        int q0 = (int)(int8_t)(x[j] * id + 8.5f);
                        int q1 = (int)(int8_t)(x[j + 16] * id + 8.5f);
                        q0 = q0 > 15 ? 15 : q0;
                        q1 = q1 > 15 ? 15 : q1;
                        b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
                }
        }
}

void q4_0_vec_dot(int64_t n, float *s, const void *w, const void *a) {
        const block_q4_0 *x = w;
        const block_q8_0 *y = a;
        float sum = 0;

        for (int64_t i = 0; i < n / QK4_0; i++) {
                int sumi = 0;
                for (int j = 0; j < QK4_0 / 2; j++)
                        sumi += ((x[i].qs[j] & 0x0F) - 8) * y[i].qs[j] +
                                ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
                sum += sumi * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
        }
        *s = sum;
}
