/* SPDX-License-Identifier: MIT */
/* Q4_K: super-blocks of 256 = 8 sub-blocks of 32 with 6-bit scales and
 * mins (spec §3.3).
 *   x = d * sc_j * q - dmin * m_j,   q in 0..15
 * Dot with Q8_K (scale D, quants a, sums of 16 bsums):
 *   sum = d*D * sum_j sc_j * <q, a>_j  -  dmin*D * sum_j m_j * (sum of a in j)
 * both integer sums exact; the float part is done once per super-block. */
#include "kernels-impl.h"

void q4_k_to_float(const void *x, float *y, int64_t n) {
        const block_q4_K *b = x;

        for (int64_t i = 0; i < n / QK_K; i++) {
                float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
                const uint8_t *q = b[i].qs;
                uint8_t sc[8], m[8];

                k_scales_mins(b[i].scales, sc, m);
                for (int c = 0; c < 4; c++, q += 32, y += 64) {
                        float d1 = d * sc[2 * c], m1 = dmin * m[2 * c];
                        float d2 = d * sc[2 * c + 1], m2 = dmin * m[2 * c + 1];
                        for (int l = 0; l < 32; l++) {
                                y[l] = d1 * (q[l] & 0x0F) - m1;
                                y[l + 32] = d2 * (q[l] >> 4) - m2;
                        }
                }
        }
}

void q4_k_vec_dot(int64_t n, float *s, const void *w, const void *a) {
        const block_q4_K *x = w;
        const block_q8_K *y = a;
        float sum = 0;

        for (int64_t i = 0; i < n / QK_K; i++) {
                const uint8_t *q = x[i].qs;
                const int8_t *a8 = y[i].qs;
                uint8_t sc[8], m[8];
                int sumi = 0, summ = 0;

                k_scales_mins(x[i].scales, sc, m);
                for (int c = 0; c < 4; c++, q += 32, a8 += 64) {
                        int lo = 0, hi = 0;
                        for (int l = 0; l < 32; l++) {
                                lo += (q[l] & 0x0F) * a8[l];
                                hi += (q[l] >> 4) * a8[l + 32];
                        }
                        sumi += sc[2 * c] * lo + sc[2 * c + 1] * hi;
                }
                for (int j = 0; j < 8; j++)
                        summ += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
                sum += fp16_to_fp32(x[i].d) * y[i].d * (float)sumi;
                sum -= fp16_to_fp32(x[i].dmin) * y[i].d * (float)summ;
        }
        *s = sum;
}
