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
 * (test-kernels sweeps both). */
#include <immintrin.h>

#include "kernels-impl.h"

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
