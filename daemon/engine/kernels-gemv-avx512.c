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

/* --- K-quants: activations as Q8_K blocks ------------------------------- */

/* Q4_K: the Q8_K values of every 128 elements reordered as the nibbles
 * of a Q4_K block come out of one 64-byte load, [sb0 sb2] [sb1 sb3]
 * [sb4 sb6] [sb5 sb7] (sb = 32 elements), the sums of each sub-block
 * (for the mins) and the scale. */
typedef struct gq4_k {
        int8_t qs[QK_K];
        int16_t bs32[8];
        float d;
        uint8_t pad[44];
} gq4_k;
_Static_assert(sizeof(gq4_k) == 320, "gq4_k");

static void prep_q4_k(const float *x, void *vact, int64_t n) {
        gq4_k *g = vact;
        static const int order[8] = { 0, 2, 1, 3, 4, 6, 5, 7 };

        for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
                block_q8_K b;
                kernels_avx512.from_float[TYPE_Q8_K](x, &b, QK_K);
                for (int j = 0; j < 8; j++) {
                        memcpy(g[i].qs + 32 * j, b.qs + 32 * order[j], 32);
                        g[i].bs32[j] = (int16_t)(b.bsums[2 * j] + b.bsums[2 * j + 1]);
                }
                g[i].d = b.d;
                memset(g[i].pad, 0, sizeof g[i].pad);
        }
}

/* The 6-bit scales and mins of a Q4_K block (spec 3.3) from its 12 bytes
 * (q: 16 bytes loaded from there, the last 4 unused): scales in bytes
 * 0..7, mins in 8..15, as k_scale_min() unpacks them. */
static inline __m128i k_scales_mins_vec(__m128i q) {
        /* low bits: sc0-3 = q0-3, sc4-7 = q8-11 (low nibble), m0-3 = q4-7,
         * m4-7 = q8-11 (high nibble); high bits of sc4-7 / m4-7: top two
         * bits of q0-3 / q4-7 */
        const __m128i ia = _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11);
        const __m128i ib = _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7);
        const __m128i ml = _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15);
        __m128i a = _mm_shuffle_epi8(q, ia), b = _mm_shuffle_epi8(q, ib);
        a = _mm_mask_blend_epi8(0xF000, a, _mm_srli_epi16(a, 4));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 2), _mm_set1_epi8(0x30));
        return _mm_or_si128(_mm_and_si128(a, ml), hi);
}

/* Q4_K: two 64-byte loads give the 256 nibbles as four vectors of two
 * sub-blocks each; u8 x s8 pairs (vpmaddubsw, exact: 15*127*2 fits) times
 * the sub-block scales as int16 (vpmaddwd), summed exactly in int32 per
 * super-block as the scalar kernel does. */
VBMI static void gemv_q4_k(int64_t n, const void *vw, size_t row_bytes, int64_t n_rows, const void *vact, float *y) {
        const gq4_k *a = vact;
        const int64_t nb = n / QK_K;
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        /* bytes 2i of word i: scale of the vector's first sub-block for
         * words 0..15, of its second for 16..31; odd bytes masked to 0 */
        const __m512i t = _mm512_inserti64x4(_mm512_set1_epi8(0), _mm256_set1_epi8(2), 1);
        const __m512i si0 = t, si1 = _mm512_add_epi8(t, _mm512_set1_epi8(1)), si2 = _mm512_add_epi8(t, _mm512_set1_epi8(4)),
                      si3 = _mm512_add_epi8(t, _mm512_set1_epi8(5));
        const __mmask64 even = 0x5555555555555555ull;

        for (int64_t r = 0; r < n_rows; r++) {
                const block_q4_K *x = (const block_q4_K *)((const uint8_t *)vw + (size_t)r * row_bytes);
                __m512 facc = _mm512_setzero_ps();
                __m128 macc = _mm_setzero_ps();
                for (int64_t i = 0; i < nb; i++) {
                        _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                        _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 64, _MM_HINT_T0);
                        _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 128, _MM_HINT_T0);
                        /* scales in bytes 0..7, mins in 8..15 */
                        __m128i sm = k_scales_mins_vec(_mm_loadu_si128((const __m128i *)x[i].scales));
                        __m512i scb = _mm512_castsi128_si512(sm);
                        __m512i v0 = _mm512_loadu_si512(x[i].qs), v1 = _mm512_loadu_si512(x[i].qs + 64);
                        const int8_t *q = a[i].qs;
                        __m512i p0 = _mm512_maddubs_epi16(_mm512_and_si512(v0, m4), _mm512_loadu_si512(q));
                        __m512i p1 = _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(v0, 4), m4), _mm512_loadu_si512(q + 64));
                        __m512i p2 = _mm512_maddubs_epi16(_mm512_and_si512(v1, m4), _mm512_loadu_si512(q + 128));
                        __m512i p3 = _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(v1, 4), m4), _mm512_loadu_si512(q + 192));
                        __m512i acc = _mm512_madd_epi16(p0, _mm512_maskz_permutexvar_epi8(even, si0, scb));
                        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p1, _mm512_maskz_permutexvar_epi8(even, si1, scb)));
                        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p2, _mm512_maskz_permutexvar_epi8(even, si2, scb)));
                        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p3, _mm512_maskz_permutexvar_epi8(even, si3, scb)));
                        float dd = _cvtsh_ss(x[i].d) * a[i].d;
                        facc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(dd), facc);
                        /* mins: sum_j m_j * bs32_j, four int32 partial sums */
                        __m128i m16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
                        __m128i pm = _mm_madd_epi16(m16, _mm_loadu_si128((const __m128i *)a[i].bs32));
                        macc = _mm_fmadd_ps(_mm_cvtepi32_ps(pm), _mm_set1_ps(_cvtsh_ss(x[i].dmin) * a[i].d), macc);
                }
                macc = _mm_add_ps(macc, _mm_movehl_ps(macc, macc));
                macc = _mm_add_ss(macc, _mm_movehdup_ps(macc));
                y[r] = _mm512_reduce_add_ps(facc) - _mm_cvtss_f32(macc);
        }
}

static void prep_q8_k(const float *x, void *vact, int64_t n) {
        kernels_avx512.from_float[TYPE_Q8_K](x, vact, n);
}

/* Q6_K: per half (128 weights) one 64-byte load of low nibbles and the 32
 * high-bit bytes broadcast to both 256-bit halves; the 2-bit pieces are
 * shifted into bits 4-5 (per 256-bit half by another count) and merged
 * with vpternlog.  Values 0..63 come out in element order, so the Q8_K
 * values need no reordering; the -32 returns through the bsums. */
VBMI static void gemv_q6_k(int64_t n, const void *vw, size_t row_bytes, int64_t n_rows, const void *vact, float *y) {
        const block_q8_K *a = vact;
        const int64_t nb = n / QK_K;
        const __m512i m30 = _mm512_set1_epi8(0x30), m4 = _mm512_set1_epi8(0x0F);
        const __m512i cnt_lo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        const __m512i cnt_hi = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
        /* word i of the vector for elements 64v..64v+63: scale 4v + i/8 */
        const __m512i t = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2,
                                           1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        const __m512i s0 = t, s1 = _mm512_add_epi16(t, _mm512_set1_epi16(4)), s2 = _mm512_add_epi16(t, _mm512_set1_epi16(8)),
                      s3 = _mm512_add_epi16(t, _mm512_set1_epi16(12));

        for (int64_t r = 0; r < n_rows; r++) {
                const block_q6_K *x = (const block_q6_K *)((const uint8_t *)vw + (size_t)r * row_bytes);
                __m512 facc = _mm512_setzero_ps();
                for (int64_t i = 0; i < nb; i++) {
                        const char *pf = (const char *)(x + i) + PREFETCH_AHEAD;
                        _mm_prefetch(pf, _MM_HINT_T0);
                        _mm_prefetch(pf + 64, _MM_HINT_T0);
                        _mm_prefetch(pf + 128, _MM_HINT_T0);
                        _mm_prefetch(pf + 192, _MM_HINT_T0);
                        __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
                        __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(sc8));
                        const int8_t *q = a[i].qs;
                        __m512i acc = _mm512_setzero_si512();
                        for (int h = 0; h < 2; h++) {
                                __m512i v = _mm512_loadu_si512(x[i].ql + 64 * h);
                                __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h)));
                                __m512i lo = _mm512_ternarylogic_epi32(v, _mm512_and_si512(_mm512_sllv_epi16(hb, cnt_lo), m30), m4, 0xE4);
                                __m512i hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4),
                                                                       _mm512_and_si512(_mm512_srlv_epi16(hb, cnt_hi), m30), m4, 0xE4);
                                __m512i plo = _mm512_maddubs_epi16(lo, _mm512_loadu_si512(q + 128 * h));
                                __m512i phi = _mm512_maddubs_epi16(hi, _mm512_loadu_si512(q + 128 * h + 64));
                                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(plo, _mm512_permutexvar_epi16(h ? s2 : s0, sc16)));
                                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(phi, _mm512_permutexvar_epi16(h ? s3 : s1, sc16)));
                        }
                        __m256i pm = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[i].bsums), _mm512_castsi512_si256(sc16));
                        acc = _mm512_sub_epi32(acc, _mm512_zextsi256_si512(_mm256_slli_epi32(pm, 5)));
                        facc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(_cvtsh_ss(x[i].d) * a[i].d), facc);
                }
                y[r] = _mm512_reduce_add_ps(facc);
        }
}

const gemv_kernel gemv_avx512[TYPE_COUNT] = {
        [TYPE_Q4_0] = { .prep = prep_q4_0, .rows = gemv_q4_0, .act_bytes = 2 * sizeof(gq4_0) },
        [TYPE_Q8_0] = { .prep = prep_q8_0, .rows = gemv_q8_0, .act_bytes = 4 * sizeof(gq8_0) },
        [TYPE_Q4_K] = { .prep = prep_q4_k, .rows = gemv_q4_k, .act_bytes = sizeof(gq4_k) },
        [TYPE_Q6_K] = { .prep = prep_q8_k, .rows = gemv_q6_k, .act_bytes = sizeof(block_q8_K) },
};
