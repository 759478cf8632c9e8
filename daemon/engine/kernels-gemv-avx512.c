/* SPDX-License-Identifier: MIT */
/* Decoding kernels for AVX-512 VNNI + VBMI: one token through many rows.
 *
 * Generation streams every weight once per token; at two threads the dot
 * kernels of kernels-avx512.c ran at about the memory's speed in L2, so
 * they could not hide the memory's latency.  These do less work per weight
 * byte by moving everything that depends only on the activations out of
 * the row loop: gemv_prep converts the token once per product into a
 * layout made for the weight type's blocks (the int8 values in the order
 * the unpacked weights come out, the activation scales as float lanes, and
 * the offset terms as the int32 lanes vpdpbusd starts from), and the row
 * loop is left with loading, unpacking and one multiply-add per lane.
 *
 * The activations are quantized exactly as for the dot kernels (ggml's
 * Q8_0), so results differ from vec_dot only by float summation order. */
#include <immintrin.h>

#include "kernels-cpu.h"
#include "kernels-impl.h"
#include "kernels.h"

#define VBMI __attribute__((target("avx512vbmi")))
#define PREFETCH_AHEAD 2048

bool gemv_avx512_supported(void) {
        return cpu_features_get()->avx512vbmi;
}

/* --- Q4_0 ----------------------------------------------------------------
 * Groups of four blocks (128 weights, 72 bytes).  The 64 bytes of nibbles
 * give two vectors: low nibbles = elements 0..15 of blocks 0..3, high
 * nibbles = elements 16..31.  Per group the prepared activations hold:
 *   lo[64], hi[64]  int8, in that order;
 *   off[16]         int32: -8 * the sum of the 8 activations lane l meets
 *                   (lane l belongs to block l/4);
 *   da[16]          float: the activation scale of block l/4. */
typedef struct gq4_0 {
        int8_t lo[64], hi[64];
        int32_t off[16];
        float da[16];
} gq4_0;
_Static_assert(sizeof(gq4_0) == 256, "gq4_0");

static void prep_q4_0(const float *x, void *vact, int64_t n) {
        gq4_0 *g = vact;
        const __m512i ones = _mm512_set1_epi8(1);

        for (int64_t i = 0; i < n / 128; i++, x += 128) {
                block_q8_0 b[4];
                kernels_avx512.from_float[TYPE_Q8_0](x, b, 128);
                for (int k = 0; k < 4; k++) {
                        memcpy(g[i].lo + 16 * k, b[k].qs, 16);
                        memcpy(g[i].hi + 16 * k, b[k].qs + 16, 16);
                        float d = fp16_to_fp32(b[k].d);
                        for (int l = 0; l < 4; l++)
                                g[i].da[4 * k + l] = d;
                }
                __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_loadu_si512(g[i].lo));
                s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512(g[i].hi));
                _mm512_storeu_si512(g[i].off, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s, 3)));
        }
}

VBMI static void gemv_q4_0(int64_t n, const void *vw, size_t row_bytes, int64_t n_rows, const void *vact, float *y) {
        static const uint8_t qidx[64] __attribute__((aligned(64))) = {
                2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
                20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
                38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53,
                56, 57, 58, 59, 60, 61, 62, 63, 120, 121, 122, 123, 124, 125, 126, 127,
        };
        static const uint8_t sidx[64] __attribute__((aligned(64))) = {
                0, 1, 0, 1, 0, 1, 0, 1, 18, 19, 18, 19, 18, 19, 18, 19,
                36, 37, 36, 37, 36, 37, 36, 37, 54, 55, 54, 55, 54, 55, 54, 55,
        };
        const __m512i qi = _mm512_load_si512(qidx), si = _mm512_load_si512(sidx), m4 = _mm512_set1_epi8(0x0F);
        const gq4_0 *g = vact;
        const int64_t ng = n / 128;

        for (int64_t r = 0; r < n_rows; r++) {
                const uint8_t *w = (const uint8_t *)vw + (size_t)r * row_bytes;
                __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
                for (int64_t i = 0; i < ng; i++, w += 72) {
                        _mm_prefetch((const char *)w + PREFETCH_AHEAD, _MM_HINT_T0);
                        _mm_prefetch((const char *)w + PREFETCH_AHEAD + 64, _MM_HINT_T0);
                        __m512i r0 = _mm512_loadu_si512(w), r1 = _mm512_loadu_si512(w + 8);
                        __m512i q = _mm512_permutex2var_epi8(r0, qi, r1);
                        __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
                        __m512i p = _mm512_dpbusd_epi32(_mm512_load_si512(g[i].off), lo, _mm512_load_si512(g[i].lo));
                        p = _mm512_dpbusd_epi32(p, hi, _mm512_load_si512(g[i].hi));
                        __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi8(si, r0)));
                        __m512 d = _mm512_mul_ps(dw, _mm512_load_ps(g[i].da));
                        if (i & 1)
                                acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc1);
                        else
                                acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc0);
                }
                y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
        }
}

/* --- Q8_0 ----------------------------------------------------------------
 * Groups of two blocks (64 weights, 68 bytes).  Weights are biased by 128
 * to unsigned bytes (x ^ 0x80); the bias comes back through the start
 * value -128 * sum(activations of the lane). */
typedef struct gq8_0 {
        int8_t a[64];
        int32_t off[16];
        float da[16];
} gq8_0;
_Static_assert(sizeof(gq8_0) == 192, "gq8_0");

static void prep_q8_0(const float *x, void *vact, int64_t n) {
        gq8_0 *g = vact;
        const __m512i ones = _mm512_set1_epi8(1);

        for (int64_t i = 0; i < n / 64; i++, x += 64) {
                block_q8_0 b[2];
                kernels_avx512.from_float[TYPE_Q8_0](x, b, 64);
                for (int k = 0; k < 2; k++) {
                        memcpy(g[i].a + 32 * k, b[k].qs, 32);
                        float d = fp16_to_fp32(b[k].d);
                        for (int l = 0; l < 8; l++)
                                g[i].da[8 * k + l] = d;
                }
                __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_loadu_si512(g[i].a));
                _mm512_storeu_si512(g[i].off, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s, 7)));
        }
}

VBMI static void gemv_q8_0(int64_t n, const void *vw, size_t row_bytes, int64_t n_rows, const void *vact, float *y) {
        static const uint8_t qidx[64] __attribute__((aligned(64))) = {
                2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
                18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33,
                36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,
                52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 124, 125, 126, 127,
        };
        static const uint8_t sidx[64] __attribute__((aligned(64))) = {
                0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                34, 35, 34, 35, 34, 35, 34, 35, 34, 35, 34, 35, 34, 35, 34, 35,
        };
        const __m512i qi = _mm512_load_si512(qidx), si = _mm512_load_si512(sidx), bias = _mm512_set1_epi8((char)0x80);
        const gq8_0 *g = vact;
        const int64_t ng = n / 64;

        for (int64_t r = 0; r < n_rows; r++) {
                const uint8_t *w = (const uint8_t *)vw + (size_t)r * row_bytes;
                __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
                for (int64_t i = 0; i < ng; i++, w += 68) {
                        _mm_prefetch((const char *)w + PREFETCH_AHEAD, _MM_HINT_T0);
                        _mm_prefetch((const char *)w + PREFETCH_AHEAD + 64, _MM_HINT_T0);
                        __m512i r0 = _mm512_loadu_si512(w), r1 = _mm512_loadu_si512(w + 4);
                        __m512i q = _mm512_xor_si512(_mm512_permutex2var_epi8(r0, qi, r1), bias);
                        __m512i p = _mm512_dpbusd_epi32(_mm512_load_si512(g[i].off), q, _mm512_load_si512(g[i].a));
                        __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi8(si, r0)));
                        __m512 d = _mm512_mul_ps(dw, _mm512_load_ps(g[i].da));
                        if (i & 1)
                                acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc1);
                        else
                                acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc0);
                }
                y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
        }
}

const gemv_kernel gemv_avx512[TYPE_COUNT] = {
        [TYPE_Q4_0] = { .prep = prep_q4_0, .rows = gemv_q4_0, .act_bytes = 2 * sizeof(gq4_0) },
        [TYPE_Q8_0] = { .prep = prep_q8_0, .rows = gemv_q8_0, .act_bytes = 4 * sizeof(gq8_0) },
};
