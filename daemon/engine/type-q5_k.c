/* SPDX-License-Identifier: MIT */
/* Q5_K: like Q4_K with a fifth bit per value in qh (spec §3.4).
 *   x = d * sc_j * (q + 16*h) - dmin * m_j,   chunk c uses bits 2c, 2c+1
 * The dot has the same shape as Q4_K's. */
#include "kernels-impl.h"

void q5_k_to_float(const void *x, float *y, int64_t n) {
        const block_q5_K *b = x;

        for (int64_t i = 0; i < n / QK_K; i++) {
                float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
                const uint8_t *ql = b[i].qs, *qh = b[i].qh;
                uint8_t sc[8], m[8], u1 = 1, u2 = 2;

                k_scales_mins(b[i].scales, sc, m);
                for (int c = 0; c < 4; c++, ql += 32, y += 64, u1 <<= 2, u2 <<= 2) {
                        float d1 = d * sc[2 * c], m1 = dmin * m[2 * c];
                        float d2 = d * sc[2 * c + 1], m2 = dmin * m[2 * c + 1];
                        for (int l = 0; l < 32; l++) {
                                y[l] = d1 * ((ql[l] & 0x0F) + (qh[l] & u1 ? 16 : 0)) - m1;
                                y[l + 32] = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
                        }
                }
        }
}

void q5_k_vec_dot(int64_t n, float *s, const void *w, const void *a) {
        const block_q5_K *x = w;
        const block_q8_K *y = a;
        float sum = 0;

        for (int64_t i = 0; i < n / QK_K; i++) {
                const uint8_t *ql = x[i].qs, *qh = x[i].qh;
                const int8_t *a8 = y[i].qs;
                uint8_t sc[8], m[8];
                int sumi = 0, summ = 0;

                k_scales_mins(x[i].scales, sc, m);
                for (int c = 0; c < 4; c++, ql += 32, a8 += 64) {
                        int lo = 0, hi = 0;
                        for (int l = 0; l < 32; l++) {
                                lo += ((ql[l] & 0x0F) | (((qh[l] >> (2 * c)) & 1) << 4)) * a8[l];
                                hi += ((ql[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4)) * a8[l + 32];
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
