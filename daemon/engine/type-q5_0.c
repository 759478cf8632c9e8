/* SPDX-License-Identifier: MIT */
/* Q5_0: blocks of 32 5-bit values with one half scale (specs/whisper.md
 * §2.1, ggml's block_q5_0):
 *   x[j] = d * (q_j - 16),  q_j = low nibble | (bit j of qh) << 4
 * low nibbles of elements 0..15 in the low halves of qs[0..15], of 16..31
 * in the high halves.  Dot with Q8_0 activations: exact integer sum per
 * block, then float. */
#include <math.h>
#include <string.h>

#include "kernels-impl.h"
#include "type-q5_0.h"

static inline uint32_t qh_bits(const block_q5_0 *b) {
        uint32_t qh;
        memcpy(&qh, b->qh, 4);
        return qh;
}

void q5_0_to_float(const void *x, float *y, int64_t n) {
        const block_q5_0 *b = x;

        for (int64_t i = 0; i < n / QK5_0; i++, y += QK5_0) {
                float d = fp16_to_fp32(b[i].d);
                uint32_t qh = qh_bits(&b[i]);
                for (int j = 0; j < QK5_0 / 2; j++) {
                        int lo = (b[i].qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4);
                        int hi = (b[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
                        y[j] = (float)(lo - 16) * d;
                        y[j + 16] = (float)(hi - 16) * d;
                }
        }
}

/* ggml's reference quantizer: the value of largest magnitude maps to -16. */
void q5_0_from_float(const float *x, void *y, int64_t n) {
        block_q5_0 *b = y;

        for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
                float amax = 0, max = 0;
                for (int j = 0; j < QK5_0; j++)
                        if (fabsf(x[j]) > amax) {
                                amax = fabsf(x[j]);
                                max = x[j];
                        }
                float d = max / -16, id = d != 0.f ? 1.f / d : 0.f;
                uint32_t qh = 0;
                b[i].d = fp32_to_fp16(d);
                for (int j = 0; j < QK5_0 / 2; j++) {
                        int q0 = (int)(int8_t)(x[j] * id + 16.5f);
                        int q1 = (int)(int8_t)(x[j + 16] * id + 16.5f);
                        q0 = q0 > 31 ? 31 : q0;
                        q1 = q1 > 31 ? 31 : q1;
                        b[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
                        qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
                        qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + 16);
                }
                memcpy(b[i].qh, &qh, 4);
        }
}

void q5_0_vec_dot(int64_t n, float *s, const void *w, const void *a) {
        const block_q5_0 *x = w;
        const block_q8_0 *y = a;
        float sum = 0;

        for (int64_t i = 0; i < n / QK5_0; i++) {
                uint32_t qh = qh_bits(&x[i]);
                int sumi = 0;
                for (int j = 0; j < QK5_0 / 2; j++) {
                        int lo = ((x[i].qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4)) - 16;
                        int hi = ((x[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - 16;
                        sumi += lo * y[i].qs[j] + hi * y[i].qs[j + 16];
                }
                sum += (float)sumi * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
        }
        *s = sum;
}
