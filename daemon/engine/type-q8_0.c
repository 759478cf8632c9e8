/* SPDX-License-Identifier: MIT */
/* Q8_0: blocks of 32 int8 with one half scale (spec §3.2).
 *   x[j] = d * q[j]
 * Dot with Q8_0 activations: per block an exact integer sum, scaled by
 * both d and accumulated in float block after block (ggml's order). */
#include <math.h>

#include "kernels-impl.h"

void q8_0_to_float(const void *x, float *y, int64_t n) {
        const block_q8_0 *b = x;

        for (int64_t i = 0; i < n / QK8_0; i++) {
                float d = fp16_to_fp32(b[i].d);
                for (int j = 0; j < QK8_0; j++)
                        y[i * QK8_0 + j] = d * b[i].qs[j];
        }
}

static float amax32(const float *x) {
        float amax = 0;

        for (int j = 0; j < QK8_0; j++)
                amax = fmaxf(amax, fabsf(x[j]));
        return amax;
}

/* ggml's reference, used for weights: d = amax/127, q = round(x/d) with
 * halves away from zero. */
void q8_0_from_float(const float *x, void *y, int64_t n) {
        block_q8_0 *b = y;

        for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
                float d = amax32(x) / 127.f, id = d != 0.f ? 1.f / d : 0.f;

                b[i].d = fp32_to_fp16(d);
                for (int j = 0; j < QK8_0; j++)
                        b[i].qs[j] = (int8_t)roundf(x[j] * id);
        }
}

/* What ggml's x86 build does to activations: multiplier 127/amax, halves
 * to even.  The SIMD twins reproduce this bit for bit. */
void q8_0_quantize_act(const float *x, void *y, int64_t n) {
        block_q8_0 *b = y;

        for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
                float amax = amax32(x);
                float id = amax != 0.f ? 127.f / amax : 0.f;

                b[i].d = fp32_to_fp16(amax / 127.f);
                for (int j = 0; j < QK8_0; j++)
                        b[i].qs[j] = (int8_t)round_even(x[j] * id);
        }
}

void q8_0_vec_dot(int64_t n, float *s, const void *w, const void *a) {
        const block_q8_0 *x = w, *y = a;
        float sum = 0;

        for (int64_t i = 0; i < n / QK8_0; i++) {
                int sumi = 0;
                for (int j = 0; j < QK8_0; j++)
                        sumi += x[i].qs[j] * y[i].qs[j];
                sum += sumi * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
        }
        *s = sum;
}
