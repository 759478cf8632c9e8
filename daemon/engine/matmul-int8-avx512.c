/* SPDX-License-Identifier: MIT */
/* The int8 matrix kernel for many tokens (AVX-512 VNNI).
 *
 * Every supported quantized weight type is written as, per group of G
 * elements (G = 32, 16 for Q6_K), unsigned 8-bit values q with a scale s
 * and an offset m:   w = s*q - m
 *   Q8_0: q = v+128, s = d, m = 128d     Q4_0: q = nibble, s = d, m = 8d
 *   Q4_K/Q5_K: q, s = d*sc, m = dmin*mn  Q6_K: q (0..63), s = d*sc, m = 32s
 * and activations, quantized exactly as for the vec path (Q8_0 or Q8_K),
 * as signed int8 a with a scale t per group and the group sum of a:
 *   y = sum_groups t * (s * <q, a> - m * sum(a))
 * <q, a> is what vpdpbusd computes, four products per int32 lane.
 *
 * A thread takes its rows 32 at a time, repacks them (the "strip") so that
 * one 64-byte load holds 4 consecutive values of 16 rows, and runs a
 * register tile of 32 rows x 4 tokens over all groups: 2 weight loads and 4
 * broadcast activation loads feed 8 vpdpbusd.  The repacking costs one
 * pass over the weights per matmul and is shared by all tokens. */
#include <errno.h>
#include <immintrin.h>
#include <string.h>

#include "kernels-impl.h"
#include "macro.h"
#include "matmul-int8.h"

/* Tokens per register tile: 4 measured best (8 int32 and 8 float
 * accumulators stay in registers; 5 and 6 spill). */
#define TILE_T 4

/* --- weights: one row into q (n bytes), s and m (n/G floats) ----------- */

static void row_q8_0(const void *src, int64_t n, uint8_t *q, float *s, float *m) {
        const block_q8_0 *b = src;
        const __m256i bias = _mm256_set1_epi8((char)0x80);
        for (int64_t i = 0; i < n / 32; i++) {
                float d = _cvtsh_ss(b[i].d);
                _mm256_storeu_si256((__m256i *)(q + 32 * i),
                                    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)b[i].qs), bias));
                s[i] = d;
                m[i] = 128 * d;
        }
}

static void row_q4_0(const void *src, int64_t n, uint8_t *q, float *s, float *m) {
        const block_q4_0 *b = src;
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        for (int64_t i = 0; i < n / 32; i++) {
                float d = _cvtsh_ss(b[i].d);
                __m128i v = _mm_loadu_si128((const __m128i *)b[i].qs);
                _mm256_storeu_si256((__m256i *)(q + 32 * i), _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4));
                s[i] = d;
                m[i] = 8 * d;
        }
}

static void row_q4_k(const void *src, int64_t n, uint8_t *q, float *s, float *m) {
        const block_q4_K *b = src;
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        for (int64_t i = 0; i < n / QK_K; i++, q += QK_K) {
                float d = _cvtsh_ss(b[i].d), dmin = _cvtsh_ss(b[i].dmin);
                uint32_t u[4];
                k_scales_mins_u32(b[i].scales, u);
                const uint8_t *sc = (const uint8_t *)u, *mn = (const uint8_t *)(u + 2);
                for (int c = 0; c < 4; c++) {
                        __m256i v = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * c));
                        _mm256_storeu_si256((__m256i *)(q + 64 * c), _mm256_and_si256(v, m4));
                        _mm256_storeu_si256((__m256i *)(q + 64 * c + 32), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
                }
                for (int j = 0; j < 8; j++) {
                        s[8 * i + j] = d * sc[j];
                        m[8 * i + j] = dmin * mn[j];
                }
        }
}

static void row_q5_k(const void *src, int64_t n, uint8_t *q, float *s, float *m) {
        const block_q5_K *b = src;
        const __m256i m4 = _mm256_set1_epi8(0x0F), b1 = _mm256_set1_epi8(1);
        for (int64_t i = 0; i < n / QK_K; i++, q += QK_K) {
                float d = _cvtsh_ss(b[i].d), dmin = _cvtsh_ss(b[i].dmin);
                uint32_t u[4];
                k_scales_mins_u32(b[i].scales, u);
                const uint8_t *sc = (const uint8_t *)u, *mn = (const uint8_t *)(u + 2);
                __m256i qh = _mm256_loadu_si256((const __m256i *)b[i].qh);
                for (int c = 0; c < 4; c++) {
                        __m256i v = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * c));
                        __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), b1), 4);
                        __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), b1), 4);
                        _mm256_storeu_si256((__m256i *)(q + 64 * c), _mm256_or_si256(_mm256_and_si256(v, m4), h0));
                        _mm256_storeu_si256((__m256i *)(q + 64 * c + 32),
                                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), h1));
                }
                for (int j = 0; j < 8; j++) {
                        s[8 * i + j] = d * sc[j];
                        m[8 * i + j] = dmin * mn[j];
                }
        }
}

static void row_q6_k(const void *src, int64_t n, uint8_t *q, float *s, float *m) {
        const block_q6_K *b = src;
        const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
        for (int64_t i = 0; i < n / QK_K; i++, q += QK_K) {
                float d = _cvtsh_ss(b[i].d);
                for (int h = 0; h < 2; h++) {
                        const uint8_t *ql = b[i].ql + 64 * h;
                        __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
                        __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
                        __m256i qh = _mm256_loadu_si256((const __m256i *)(b[i].qh + 32 * h));
                        uint8_t *o = q + 128 * h;
                        _mm256_storeu_si256((__m256i *)o, _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4)));
                        _mm256_storeu_si256((__m256i *)(o + 32), _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4)));
                        _mm256_storeu_si256((__m256i *)(o + 64), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4)));
                        _mm256_storeu_si256((__m256i *)(o + 96), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4)));
                }
                for (int k = 0; k < 16; k++) {
                        s[16 * i + k] = d * b[i].scales[k];
                        m[16 * i + k] = 32 * s[16 * i + k];
                }
        }
}

typedef void (*row_fn)(const void *src, int64_t n, uint8_t *q, float *s, float *m);

static row_fn row_unpacker(uint32_t type) {
        switch (type) {
        case TYPE_Q8_0: return row_q8_0;
        case TYPE_Q4_0: return row_q4_0;
        case TYPE_Q4_K: return row_q4_k;
        case TYPE_Q5_K: return row_q5_k;
        case TYPE_Q6_K: return row_q6_k;
        default: return NULL;
        }
}

/* Repack rows [r0, r0+rows) (rows <= STRIP; missing rows are zero) into
 *   q[k4][r][4]  (n_in/4 x 32 x 4 bytes), s[g][r], m[g][r]. */
static void repack_strip(const weight *w, row_fn unpack, int group, int64_t r0, int64_t rows, uint8_t *buf) {
        int64_t n = w->n_in, ng = n / group;
        uint8_t *q = buf;
        float *s = (float *)(q + (size_t)n * STRIP), *m = s + ng * STRIP;
        /* All rows unpacked first (sequential writes), then interleaved
         * 256 values at a time so the 8 KiB being written stays in L1
         * (writing row by row touched the whole strip per row). */
        uint8_t *tmp = (uint8_t *)(m + ng * STRIP);
        float *ts = (float *)(tmp + (size_t)n * STRIP), *tm = ts + ng * STRIP;

        for (int64_t r = 0; r < STRIP; r++) {
                if (r < rows)
                        unpack((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes, n, tmp + (size_t)r * n,
                               ts + r * ng, tm + r * ng);
                else {
                        memset(tmp + (size_t)r * n, 0, n);
                        memset(ts + r * ng, 0, ng * sizeof(float));
                        memset(tm + r * ng, 0, ng * sizeof(float));
                }
        }
        uint32_t *q32 = (uint32_t *)q;
        for (int64_t k0 = 0; k0 < n / 4; k0 += 64) {
                int64_t k1 = MIN(n / 4, k0 + 64);
                for (int64_t r = 0; r < STRIP; r++) {
                        const uint8_t *src = tmp + (size_t)r * n;
                        for (int64_t k = k0; k < k1; k++)
                                memcpy(&q32[k * STRIP + r], src + 4 * k, 4);
                }
        }
        for (int64_t g = 0; g < ng; g++)
                for (int64_t r = 0; r < STRIP; r++) {
                        s[g * STRIP + r] = ts[r * ng + g];
                        m[g * STRIP + r] = tm[r * ng + g];
                }
}

/* --- the register tile --------------------------------------------------- */

/* y[t][0..32) for T tokens (T <= TILE_T) against one strip. */
static inline __attribute__((always_inline)) void tile(int T, int group, int64_t g0, int64_t g1, bool accumulate, const uint8_t *q, const float *s,
                                                      const float *m, const int8_t *a, size_t a_stride,
                                                      const float *t, const float *tsum, size_t t_stride, float *y,
                                                      size_t y_stride, __mmask16 mask0, __mmask16 mask1) {
        __m512 f0[TILE_T], f1[TILE_T];

#pragma GCC unroll 4
        for (int j = 0; j < T; j++) {
                if (accumulate) {
                        f0[j] = _mm512_maskz_loadu_ps(mask0, y + j * y_stride);
                        f1[j] = _mm512_maskz_loadu_ps(mask1, y + j * y_stride + 16);
                } else
                        f0[j] = f1[j] = _mm512_setzero_ps();
        }
        for (int64_t g = g0; g < g1; g++) {
                __m512i i0[TILE_T], i1[TILE_T];
        #pragma GCC unroll 4
        for (int j = 0; j < T; j++)
                        i0[j] = i1[j] = _mm512_setzero_si512();
                const uint8_t *qg = q + (size_t)g * group * STRIP;
                const int8_t *ag = a + (size_t)g * group;
#pragma GCC unroll 8
                for (int k = 0; k < group / 4; k++) {
                        __m512i w0 = _mm512_load_si512(qg + 128 * k), w1 = _mm512_load_si512(qg + 128 * k + 64);
                #pragma GCC unroll 4
        for (int j = 0; j < T; j++) {
                                int32_t v;
                                memcpy(&v, ag + j * a_stride + 4 * k, 4);
                                __m512i av = _mm512_set1_epi32(v);
                                i0[j] = _mm512_dpbusd_epi32(i0[j], w0, av);
                                i1[j] = _mm512_dpbusd_epi32(i1[j], w1, av);
                        }
                }
                __m512 s0 = _mm512_load_ps(s + g * STRIP), s1 = _mm512_load_ps(s + g * STRIP + 16);
                __m512 m0 = _mm512_load_ps(m + g * STRIP), m1 = _mm512_load_ps(m + g * STRIP + 16);
        #pragma GCC unroll 4
        for (int j = 0; j < T; j++) {
                        __m512 tj = _mm512_set1_ps(t[j * t_stride + g]), sj = _mm512_set1_ps(tsum[j * t_stride + g]);
                        f0[j] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i0[j]), tj), s0, f0[j]);
                        f1[j] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i1[j]), tj), s1, f1[j]);
                        f0[j] = _mm512_fnmadd_ps(m0, sj, f0[j]);
                        f1[j] = _mm512_fnmadd_ps(m1, sj, f1[j]);
                }
        }
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) {
                _mm512_mask_storeu_ps(y + j * y_stride, mask0, f0[j]);
                _mm512_mask_storeu_ps(y + j * y_stride + 16, mask1, f1[j]);
        }
}

#define TILE_CASE(T)                                                                                      \
        case T:                                                                                           \
                if (group == 32)                                                                          \
                        tile(T, 32, g0, g1, acc, q, s, m, a, a_stride, t, tsum, t_stride, y, y_stride, mask0, mask1); \
                else                                                                                      \
                        tile(T, 16, g0, g1, acc, q, s, m, a, a_stride, t, tsum, t_stride, y, y_stride, mask0, mask1); \
                break

static void tile_any(int T, int group, int64_t g0, int64_t g1, bool acc, const uint8_t *q, const float *s, const float *m, const int8_t *a,
                     size_t a_stride, const float *t, const float *tsum, size_t t_stride, float *y, size_t y_stride,
                     __mmask16 mask0, __mmask16 mask1) {
        switch (T) {
                TILE_CASE(1);
                TILE_CASE(2);
                TILE_CASE(3);
                TILE_CASE(4);
        }
}

/* Rows [r0, r1) of the output for all tokens; buf is this thread's strip
 * buffer (int8_strip_bytes). */
void int8_avx512_rows(const weight *w, int group, const int8_act *act, int64_t n_tokens, float *y, int64_t r0,
                      int64_t r1, void *buf) {
        row_fn unpack = row_unpacker(w->type);
        int64_t n = w->n_in, ng = n / group;
        uint8_t *q = buf;
        float *s = (float *)(q + (size_t)n * STRIP), *m = s + ng * STRIP;

        /* Groups in blocks of about 1024 values, so that the strip's part
         * (32 KiB) stays in L1 while all the token tiles pass over it. */
        int64_t gb = MAX(1, 1024 / group);
        for (int64_t o = r0; o < r1; o += STRIP) {
                int64_t rows = MIN(STRIP, r1 - o);
                __mmask16 mask0 = rows >= 16 ? 0xFFFF : (__mmask16)((1u << rows) - 1);
                __mmask16 mask1 = rows >= 32 ? 0xFFFF : rows <= 16 ? 0 : (__mmask16)((1u << (rows - 16)) - 1);
                repack_strip(w, unpack, group, o, rows, buf);
                for (int64_t g0 = 0; g0 < ng; g0 += gb) {
                        int64_t g1 = MIN(ng, g0 + gb);
                        for (int64_t t0 = 0; t0 < n_tokens; t0 += TILE_T) {
                                int T = (int)MIN(TILE_T, n_tokens - t0);
                                tile_any(T, group, g0, g1, g0 > 0, q, s, m, act->a + (size_t)t0 * n, (size_t)n,
                                         act->t + t0 * ng, act->tsum + t0 * ng, (size_t)ng, y + t0 * w->n_out + o,
                                         (size_t)w->n_out, mask0, mask1);
                        }
                }
        }
}
