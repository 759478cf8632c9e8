/* SPDX-License-Identifier: MIT */
/* Q6_K: 256 values of 6 bits (4 low in ql, 2 high in qh), 16 int8 scales
 * of 16 values each, one half super-scale (spec §3.5).
 *   x = d * sc_k * (q - 32),   q in 0..63
 * Dot with Q8_K: d*D * sum_k sc_k * <q - 32, a>_k, the integer sum exact. */
#include "kernels-impl.h"

/* The 256 signed 6-bit values of a block in element order. */
static void q6_k_unpack(const block_q6_K *b, int8_t q[QK_K]) {
        const uint8_t *ql = b->ql, *qh = b->qh;

        for (int half = 0; half < 2; half++, ql += 64, qh += 32, q += 128)
                for (int l = 0; l < 32; l++) {
                        q[l] = (int8_t)(((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32);
                        q[l + 32] = (int8_t)(((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32);
                        q[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                        q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                }
}

void q6_k_to_float(const void *x, float *y, int64_t n) {
        const block_q6_K *b = x;
        int8_t q[QK_K];

        for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
                float d = fp16_to_fp32(b[i].d);
                q6_k_unpack(&b[i], q);
                for (int j = 0; j < QK_K; j++)
                        y[j] = d * b[i].scales[j / 16] * q[j];
        }
}

void q6_k_vec_dot(int64_t n, float *s, const void *w, const void *a) {
        const block_q6_K *x = w;
        const block_q8_K *y = a;
        int8_t q[QK_K];
        float sum = 0;

        for (int64_t i = 0; i < n / QK_K; i++) {
                int sumi = 0;
                q6_k_unpack(&x[i], q);
                for (int k = 0; k < QK_K / 16; k++) {
                        int dot = 0;
                        for (int l = 0; l < 16; l++)
                                dot += q[k * 16 + l] * y[i].qs[k * 16 + l];
                        sumi += x[i].scales[k] * dot;
                }
                sum += fp16_to_fp32(x[i].d) * y[i].d * (float)sumi;
        }
        *s = sum;
}
