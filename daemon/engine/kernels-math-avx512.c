/* SPDX-License-Identifier: MIT */
/* Element-wise maths for AVX-512: tanh, which Gemma's final soft-cap
 * applies to all 262144 logits of every token, and exp, for SwiGLU's
 * sigmoid (libm's tanhf and expf, one value at a time, took 1-2 % of a
 * generated token's time on the thread that runs them).
 *
 * Both start from y = k ln2 + r, |r| <= ln2 / 2, and expm1(r) from its
 * Taylor series to r^7 (the first term left out, r^8 / 8!, is under a
 * quarter of an ulp of r there):
 *   exp(y)  = 2^k (1 + expm1(r)), the scaling by vscalefps, which gives
 *             inf and 0 (through subnormals) where expf does;
 *   tanh(a) = E / (E + 2) with E = expm1(2a) = 2^k expm1(r) + (2^k - 1),
 *             for a = |x|, the sign put back at the end.  For small a, E
 *             is about 2a with a relative error of an ulp, so no separate
 *             polynomial is needed near 0; a is clamped to 10, where the
 *             quotient already rounds to 1.
 * Checked against every float from 1e-6 to 12: tanh within 4 ulp of
 * tanhf (118 values at 4, 0.02 % at 3); every float of magnitude 1e-7
 * to 110: exp within 1 ulp of expf, subnormal results included
 * (test-kernels sweeps both).
 *
 * Also RMSNorm's sum of squares and the F16 table lookup of GELU, which
 * Gemma 3n runs a dozen and two times per layer and token on the thread
 * that leads (kernels.h gives the order of the sum), and GELU computed to
 * the table's values for one token, whose lookups the streamed weights
 * turned into cache misses. */
#include <immintrin.h>

#include "kernels-impl.h"
#include "kernels.h"

/* y = k ln2 + r: returns expm1(r), k in *k */
static inline __m512 expm1_reduced(__m512 y, __m512 *k) {
        *k = _mm512_roundscale_ps(_mm512_mul_ps(y, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        /* ln2 in two parts: k * hi is exact for |k| < 512 */
        __m512 r = _mm512_fnmadd_ps(*k, _mm512_set1_ps(0.693145751953125f), y);
        r = _mm512_fnmadd_ps(*k, _mm512_set1_ps(1.42860682030941723212e-6f), r);
        __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
        return _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
}

static inline __m512 tanh16(__m512 x) {
        const __m512 one = _mm512_set1_ps(1.0f);
        /* min returns its second operand when either is a NaN: keep x's */
        __m512 a = _mm512_min_ps(_mm512_set1_ps(10.0f), _mm512_abs_ps(x));
        __m512 k, em = expm1_reduced(_mm512_add_ps(a, a), &k);
        __m512 two_k = _mm512_scalef_ps(one, k);
        __m512 e = _mm512_fmadd_ps(two_k, em, _mm512_sub_ps(two_k, one));
        __m512 t = _mm512_div_ps(e, _mm512_add_ps(e, _mm512_set1_ps(2.0f)));
        /* the sign of x */
        return _mm512_or_ps(t, _mm512_and_ps(x, _mm512_set1_ps(-0.0f)));
}

static inline __m512 exp16(__m512 x) {
        /* beyond +-150 the result is inf or 0 anyway; the clamp keeps k
         * small enough for the exact k * ln2_hi (a NaN stays: see tanh16) */
        __m512 y = _mm512_max_ps(_mm512_set1_ps(-150.0f), _mm512_min_ps(_mm512_set1_ps(150.0f), x));
        __m512 k, em = expm1_reduced(y, &k);
        return _mm512_scalef_ps(_mm512_add_ps(em, _mm512_set1_ps(1.0f)), k);
}

#define MAP16(name, f)                                                                             \
        void name(float *y, const float *x, int64_t n) {                                          \
                int64_t i = 0;                                                                     \
                for (; i + 16 <= n; i += 16)                                                       \
                        _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));                        \
                if (i < n) {                                                                       \
                        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);                            \
                        _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));       \
                }                                                                                  \
        }

MAP16(tanh_f32_avx512, tanh16)
MAP16(exp_f32_avx512, exp16)

static inline __m256 high_half(__m512 v) {
        return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

static inline __mmask16 first_lanes(int64_t k) {
        return k >= 16 ? 0xFFFF : k <= 0 ? 0 : (__mmask16)((1u << k) - 1);
}

/* Four accumulators of eight partial sums: element i to sum i % 32, the
 * masked tail adding exact zeros. */
double sum_squares_avx512(const float *x, int64_t n) {
        __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;

        for (int64_t i = 0; i < n; i += 32) {
                __m512 a = _mm512_maskz_loadu_ps(first_lanes(n - i), x + i);
                __m512 b = _mm512_maskz_loadu_ps(first_lanes(n - i - 16), x + i + 16);
                a = _mm512_mul_ps(a, a);
                b = _mm512_mul_ps(b, b);
                s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
                s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(high_half(a)));
                s2 = _mm512_add_pd(s2, _mm512_cvtps_pd(_mm512_castps512_ps256(b)));
                s3 = _mm512_add_pd(s3, _mm512_cvtps_pd(high_half(b)));
        }
        __m512d t = _mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3));
        __m256d u = _mm256_add_pd(_mm512_castpd512_pd256(t), _mm512_extractf64x4_pd(t, 1));
        __m128d w = _mm_add_pd(_mm256_castpd256_pd128(u), _mm256_extractf128_pd(u, 1));
        return _mm_cvtsd_f64(_mm_add_sd(w, _mm_unpackhi_pd(w, w)));
}

/* A 32-bit gather of the entry itself would read two bytes past the last
 * one: gather the aligned word holding the entry and its neighbour, and
 * shift the wanted half down. */
static inline __m512 lookup16(__m512 x, const uint16_t *table) {
        __m512i h = _mm512_cvtepu16_epi32(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m512i w = _mm512_i32gather_epi32(_mm512_srli_epi32(h, 1), (const void *)table, 4);
        w = _mm512_srlv_epi32(w, _mm512_slli_epi32(_mm512_and_si512(h, _mm512_set1_epi32(1)), 4));
        return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(w));
}

/* GELU (kernels.h: the tanh form, ggml's order) at x rounded to F16, as
 * F16 (int16 lanes).  tanh16 is within
 * 4 ulp of tanhf: the result is certain when the values for tanh 2^-20 |t|
 * (8 ulp or more) below and above t round to the same F16 (rounding is
 * monotonic); the other lanes, and |x| >= 10 and NaN (the table's), read
 * the table.  That happens mostly for x below -3, where 1 + t is small
 * and so carries the error of t many times over.  Multiplications and
 * additions by the _round forms, which the compiler does not fuse. */
#define RN (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
static inline __m256i gelu16(__m512 x, const uint16_t *table) {
        const __m512 one = _mm512_set1_ps(1.0f);
        __m256i hx = _mm512_cvtps_ph(x, RN);
        __m512 xh = _mm512_cvtph_ps(hx);
        __m512 inner = _mm512_add_round_ps(
                one, _mm512_mul_round_ps(_mm512_mul_round_ps(_mm512_set1_ps(GELU_COEF_A), xh, RN), xh, RN), RN);
        __m512 u = _mm512_mul_round_ps(_mm512_mul_round_ps(_mm512_set1_ps(GELU_SQRT_2_OVER_PI), xh, RN), inner, RN);
        __m512 t = tanh16(u);
        __m512 d = _mm512_mul_round_ps(_mm512_abs_ps(t), _mm512_set1_ps(0x1p-20f), RN);
        __m512 hxh = _mm512_mul_round_ps(_mm512_set1_ps(0.5f), xh, RN);
        __m512 lo = _mm512_mul_round_ps(hxh, _mm512_add_round_ps(one, _mm512_sub_round_ps(t, d, RN), RN), RN);
        __m512 hi = _mm512_mul_round_ps(hxh, _mm512_add_round_ps(one, _mm512_add_round_ps(t, d, RN), RN), RN);
        __m256i h = _mm512_cvtps_ph(lo, RN);
        __mmask16 sure = _mm256_cmpeq_epi16_mask(h, _mm512_cvtps_ph(hi, RN)) &
                         _mm512_cmp_ps_mask(_mm512_abs_ps(xh), _mm512_set1_ps(10.0f), _CMP_LT_OQ);
        if (sure != 0xFFFF) {
                /* one lane or two, mostly: one load each (a gather
                 * instruction costs about the same for one lane as for 16) */
                uint16_t in[16], out[16];
                _mm256_storeu_si256((__m256i *)in, hx);
                _mm256_storeu_si256((__m256i *)out, h);
                for (unsigned m = (uint16_t)~sure; m; m &= m - 1)
                        out[__builtin_ctz(m)] = table[in[__builtin_ctz(m)]];
                h = _mm256_loadu_si256((const __m256i *)out);
        }
        return h;
}
#undef RN

void gelu_f16_avx512(float *y, const float *x, const uint16_t *table, int64_t n) {
        int64_t i = 0;

        for (; i + 16 <= n; i += 16)
                _mm512_storeu_ps(y + i, _mm512_cvtph_ps(gelu16(_mm512_loadu_ps(x + i), table)));
        if (i < n) {
                __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
                _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(gelu16(_mm512_maskz_loadu_ps(m, x + i), table)));
        }
}

void f16_lookup_avx512(float *y, const float *x, const uint16_t *table, int64_t n) {
        int64_t i = 0;

        for (; i + 16 <= n; i += 16)
                _mm512_storeu_ps(y + i, lookup16(_mm512_loadu_ps(x + i), table));
        if (i < n) {
                __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
                _mm512_mask_storeu_ps(y + i, m, lookup16(_mm512_maskz_loadu_ps(m, x + i), table));
        }
}
