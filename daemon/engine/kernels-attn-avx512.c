/* SPDX-License-Identifier: MIT */
/* One token's attention products for AVX-512 (kernels.h: attn_scores,
 * attn_mix), read straight from the KV cache's rows.
 *
 * The query rows that share a KV head (4 in Gemma 3n, Gemma 3 1B and
 * Llama 3.2 1B) go together, so every key or value row loaded from memory
 * serves all of them: the scores take two keys against four queries (8
 * accumulators, 6 loads to 8 multiply-adds), the mix four queries by 64
 * output lanes (16 accumulators; one value row slice and four broadcast
 * weights to 16 multiply-adds).  Rows of other widths than multiples of
 * 16 go to the scalar kernels. */
#include <immintrin.h>

#include "kernels-impl.h"
#include "macro.h"

/* How far ahead the products prefetch the cache rows, in rows.  The rows
 * come from memory: a token streams far more weights between two reads of
 * a layer's cache than the caches hold.  Tokens alternating with and
 * without, 2 threads: E2B 1.009 at 0-128 positions, 1.019-1.058 at
 * 600-728 (the machine busier or quieter), llama-1b Q4_0 1.007 and
 * 1.015; 4 and 8 rows ahead instead: within 0.5 %.  (The values are
 * brought in during the scores when they fit in L2: kernels.h.) */
#define KEY_AHEAD 8
#define VALUE_AHEAD 16

/* The four lane sums of a0..a3, in that order. */
static inline __m128 sum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
        __m256 b0 = _mm256_add_ps(_mm512_castps512_ps256(a0), _mm512_extractf32x8_ps(a0, 1));
        __m256 b1 = _mm256_add_ps(_mm512_castps512_ps256(a1), _mm512_extractf32x8_ps(a1, 1));
        __m256 b2 = _mm256_add_ps(_mm512_castps512_ps256(a2), _mm512_extractf32x8_ps(a2, 1));
        __m256 b3 = _mm256_add_ps(_mm512_castps512_ps256(a3), _mm512_extractf32x8_ps(a3, 1));
        __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(b0, b1), _mm256_hadd_ps(b2, b3));
        return _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
}

/* s[r][j] for four query rows, keys two at a time; value rows v (or
 * NULL) into L2 alongside */
static void scores_rows4(const float *q, const float *k, int32_t nk, int32_t hd, float scale, const float *v,
                         float *s) {
        const float *q0 = q, *q1 = q + hd, *q2 = q + 2 * hd, *q3 = q + 3 * hd;
        const __m128 vs = _mm_set1_ps(scale);
        int32_t j = 0;

        for (; j + 2 <= nk; j += 2) {
                const float *k0 = k + (size_t)j * hd, *k1 = k0 + hd;
                __m512 a00 = _mm512_setzero_ps(), a01 = a00, a10 = a00, a11 = a00;
                __m512 a20 = a00, a21 = a00, a30 = a00, a31 = a00;
                for (int32_t d = 0; d < hd; d += 16) {
                        if (j + 2 + KEY_AHEAD <= nk) {
                                _mm_prefetch((const char *)(k0 + KEY_AHEAD * hd + d), _MM_HINT_T0);
                                _mm_prefetch((const char *)(k1 + KEY_AHEAD * hd + d), _MM_HINT_T0);
                        }
                        if (v) {
                                _mm_prefetch((const char *)(v + (size_t)j * hd + d), _MM_HINT_T1);
                                _mm_prefetch((const char *)(v + (size_t)(j + 1) * hd + d), _MM_HINT_T1);
                        }
                        __m512 x0 = _mm512_loadu_ps(k0 + d), x1 = _mm512_loadu_ps(k1 + d);
                        __m512 y = _mm512_loadu_ps(q0 + d);
                        a00 = _mm512_fmadd_ps(y, x0, a00);
                        a01 = _mm512_fmadd_ps(y, x1, a01);
                        y = _mm512_loadu_ps(q1 + d);
                        a10 = _mm512_fmadd_ps(y, x0, a10);
                        a11 = _mm512_fmadd_ps(y, x1, a11);
                        y = _mm512_loadu_ps(q2 + d);
                        a20 = _mm512_fmadd_ps(y, x0, a20);
                        a21 = _mm512_fmadd_ps(y, x1, a21);
                        y = _mm512_loadu_ps(q3 + d);
                        a30 = _mm512_fmadd_ps(y, x0, a30);
                        a31 = _mm512_fmadd_ps(y, x1, a31);
                }
                float t0[4], t1[4];
                _mm_storeu_ps(t0, _mm_mul_ps(sum4(a00, a10, a20, a30), vs));
                _mm_storeu_ps(t1, _mm_mul_ps(sum4(a01, a11, a21, a31), vs));
                for (int r = 0; r < 4; r++) {
                        s[(size_t)r * nk + j] = t0[r];
                        s[(size_t)r * nk + j + 1] = t1[r];
                }
        }
        for (; j < nk; j++) {
                const float *k0 = k + (size_t)j * hd;
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (int32_t d = 0; d < hd; d += 16) {
                        __m512 x0 = _mm512_loadu_ps(k0 + d);
                        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q0 + d), x0, a0);
                        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q1 + d), x0, a1);
                        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(q2 + d), x0, a2);
                        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(q3 + d), x0, a3);
                }
                float t[4];
                _mm_storeu_ps(t, _mm_mul_ps(sum4(a0, a1, a2, a3), vs));
                for (int r = 0; r < 4; r++)
                        s[(size_t)r * nk + j] = t[r];
        }
}

/* s[j] for one query row, four keys at a time */
static void scores_row1(const float *q, const float *k, int32_t nk, int32_t hd, float scale, float *s) {
        int32_t j = 0;

        for (; j + 4 <= nk; j += 4) {
                const float *k0 = k + (size_t)j * hd;
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (int32_t d = 0; d < hd; d += 16) {
                        __m512 y = _mm512_loadu_ps(q + d);
                        a0 = _mm512_fmadd_ps(y, _mm512_loadu_ps(k0 + d), a0);
                        a1 = _mm512_fmadd_ps(y, _mm512_loadu_ps(k0 + hd + d), a1);
                        a2 = _mm512_fmadd_ps(y, _mm512_loadu_ps(k0 + 2 * hd + d), a2);
                        a3 = _mm512_fmadd_ps(y, _mm512_loadu_ps(k0 + 3 * hd + d), a3);
                }
                _mm_storeu_ps(s + j, _mm_mul_ps(sum4(a0, a1, a2, a3), _mm_set1_ps(scale)));
        }
        for (; j < nk; j++) {
                const float *k0 = k + (size_t)j * hd;
                __m512 a = _mm512_setzero_ps();
                for (int32_t d = 0; d < hd; d += 16)
                        a = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), _mm512_loadu_ps(k0 + d), a);
                s[j] = scale * _mm512_reduce_add_ps(a);
        }
}

void attn_scores_avx512(const float *q, int32_t n_q, const float *k, int32_t nk, int32_t hd, float scale,
                        const float *v_next, float *s) {
        int32_t r = 0;

        if (hd % 16) {
                attn_scores_scalar(q, n_q, k, nk, hd, scale, v_next, s);
                return;
        }
        for (; r + 4 <= n_q; r += 4)
                scores_rows4(q + (size_t)r * hd, k, nk, hd, scale, r == 0 ? v_next : NULL, s + (size_t)r * nk);
        for (; r < n_q; r++)
                scores_row1(q + (size_t)r * hd, k, nk, hd, scale, s + (size_t)r * nk);
}

/* o[r][d0, d0 + 64) for four rows of weights p (each nk long) */
static void mix_rows4_64(const float *p, int32_t nk, const float *v, int32_t hd, int32_t d0, float *o) {
        __m512 acc[4][4];
        for (int r = 0; r < 4; r++)
                for (int c = 0; c < 4; c++)
                        acc[r][c] = _mm512_setzero_ps();
        for (int32_t j = 0; j < nk; j++) {
                const float *vj = v + (size_t)j * hd + d0;
                if (j + VALUE_AHEAD < nk) {
                        const float *ahead = vj + VALUE_AHEAD * hd;
                        _mm_prefetch((const char *)ahead, _MM_HINT_T0);
                        _mm_prefetch((const char *)(ahead + 16), _MM_HINT_T0);
                        _mm_prefetch((const char *)(ahead + 32), _MM_HINT_T0);
                        _mm_prefetch((const char *)(ahead + 48), _MM_HINT_T0);
                }
                __m512 x0 = _mm512_loadu_ps(vj), x1 = _mm512_loadu_ps(vj + 16);
                __m512 x2 = _mm512_loadu_ps(vj + 32), x3 = _mm512_loadu_ps(vj + 48);
                for (int r = 0; r < 4; r++) {
                        __m512 w = _mm512_set1_ps(p[(size_t)r * nk + j]);
                        acc[r][0] = _mm512_fmadd_ps(w, x0, acc[r][0]);
                        acc[r][1] = _mm512_fmadd_ps(w, x1, acc[r][1]);
                        acc[r][2] = _mm512_fmadd_ps(w, x2, acc[r][2]);
                        acc[r][3] = _mm512_fmadd_ps(w, x3, acc[r][3]);
                }
        }
        for (int r = 0; r < 4; r++)
                for (int c = 0; c < 4; c++)
                        _mm512_storeu_ps(o + (size_t)r * hd + d0 + 16 * c, acc[r][c]);
}

/* o[d0, d0 + 16 n16) for one row, n16 <= 4 */
static void mix_row1(const float *p, int32_t nk, const float *v, int32_t hd, int32_t d0, int n16, float *o) {
        __m512 acc[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
        for (int32_t j = 0; j < nk; j++) {
                __m512 w = _mm512_set1_ps(p[j]);
                for (int c = 0; c < n16; c++)
                        acc[c] = _mm512_fmadd_ps(w, _mm512_loadu_ps(v + (size_t)j * hd + d0 + 16 * c), acc[c]);
        }
        for (int c = 0; c < n16; c++)
                _mm512_storeu_ps(o + d0 + 16 * c, acc[c]);
}

void attn_mix_avx512(const float *p, int32_t n_q, const float *v, int32_t nk, int32_t hd, float *o) {
        int32_t r = 0;

        if (hd % 16) {
                attn_mix_scalar(p, n_q, v, nk, hd, o);
                return;
        }
        for (; r + 4 <= n_q; r += 4) {
                const float *pr = p + (size_t)r * nk;
                float *orow = o + (size_t)r * hd;
                int32_t d = 0;
                for (; d + 64 <= hd; d += 64)
                        mix_rows4_64(pr, nk, v, hd, d, orow);
                for (int i = 0; d < hd && i < 4; i++)
                        mix_row1(pr + (size_t)i * nk, nk, v, hd, d, (hd - d) / 16, orow + (size_t)i * hd);
        }
        for (; r < n_q; r++)
                for (int32_t d = 0; d < hd; d += 64)
                        mix_row1(p + (size_t)r * nk, nk, v, hd, d, MIN(4, (hd - d) / 16), o + (size_t)r * hd);
}
