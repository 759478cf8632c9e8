/* SPDX-License-Identifier: MIT */
/* AVX-512 kernels (F BW VL DQ VNNI): vpdpbusd sums four u8*s8 products
 * into each int32 lane, so quantized dots are unsigned weights (biased
 * where signed) against signed int8 activations.
 *
 * Exactness: the quantizers and dequantizers do the same float operations
 * per element as the scalar ones and match them bit for bit.  K-quant dots
 * sum each super-block exactly in int32 and then do the scalar kernel's
 * float operations, so they match bit for bit too.  Q8_0/Q4_0 dots keep
 * per-block float products in vector lanes: another summation order. */
#include <immintrin.h>

#include "kernels-cpu.h"
#include "kernels-impl.h"
#include "kernels.h"

static bool avx512_supported(void) {
        const cpu_features *f = cpu_features_get();
        return f->avx2 && f->fma && f->f16c && f->bmi2 && f->avx512f && f->avx512bw && f->avx512vl &&
               f->avx512dq && f->avx512vnni;
}

static inline __m512i load2x256(const void *lo, const void *hi) {
        return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(lo)), _mm256_loadu_si256(hi), 1);
}

/* One half to float with F16C, inline (the scalar converter is a call). */
#define H2F(h) _cvtsh_ss(h)

#define PREFETCH_AHEAD 2048 /* bytes of weights ahead of the loads (measured: 512 5.7, 1024 7.2, 2048 8.2, 4096 6.5 GB/s for q4_0, 1 thread) */

/* [w0*a0 x8, w1*a1 x8] from four halves, converted together. */
static inline __m512 scale_pair(uint16_t w0, uint16_t w1, uint16_t a0, uint16_t a1) {
        __m128i h = _mm_cvtsi32_si128((int)(w0 | (uint32_t)w1 << 16));
        h = _mm_insert_epi32(h, (int)(a0 | (uint32_t)a1 << 16), 1);
        __m128 f = _mm_cvtph_ps(h); /* w0 w1 a0 a1 */
        __m128 p = _mm_mul_ps(f, _mm_movehl_ps(f, f));
        const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(p));
} /* bytes of weights ahead of the loads */

/* --- activation quantizers ---------------------------------------------- */

static void q8_0_quantize_avx512(const float *x, void *vy, int64_t n) {
        block_q8_0 *y = vy;
        const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));

        for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
                __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
                __m512 m = _mm512_max_ps(_mm512_and_ps(v0, absmask), _mm512_and_ps(v1, absmask));
                float amax = _mm512_reduce_max_ps(m);
                float id = amax != 0.f ? 127.f / amax : 0.f;
                y[i].d = fp32_to_fp16(amax / 127.f);
                __m512 mul = _mm512_set1_ps(id);
                /* cvtps rounds to nearest even (MXCSR default) */
                __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, mul));
                __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, mul));
                _mm_storeu_si128((__m128i *)y[i].qs, _mm512_cvtsepi32_epi8(q0));
                _mm_storeu_si128((__m128i *)(y[i].qs + 16), _mm512_cvtsepi32_epi8(q1));
        }
}

static void q8_k_quantize_avx512(const float *x, void *vy, int64_t n) {
        block_q8_K *y = vy;
        const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));

        for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
                __m512 m = _mm512_setzero_ps();
                for (int j = 0; j < QK_K; j += 16)
                        m = _mm512_max_ps(m, _mm512_and_ps(_mm512_loadu_ps(x + j), absmask));
                float amax = _mm512_reduce_max_ps(m);
                if (amax == 0.f) {
                        memset(&y[i], 0, sizeof y[i]);
                        continue;
                }
                /* The scalar quantizer takes the first element of largest
                 * magnitude, with its sign. */
                float max = 0;
                __m512 am = _mm512_set1_ps(amax);
                for (int j = 0; j < QK_K; j += 16) {
                        __m512 v = _mm512_loadu_ps(x + j);
                        __mmask16 k = _mm512_cmp_ps_mask(_mm512_and_ps(v, absmask), am, _CMP_EQ_OQ);
                        if (k) {
                                max = x[j + __builtin_ctz(k)];
                                break;
                        }
                }
                float iscale = -127.f / max;
                __m512 mul = _mm512_set1_ps(iscale);
                const __m512i lim = _mm512_set1_epi32(127);
                for (int j = 0; j < QK_K; j += 16) {
                        __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j), mul));
                        q = _mm512_min_epi32(q, lim);
                        _mm_storeu_si128((__m128i *)(y[i].qs + j), _mm512_cvtsepi32_epi8(q));
                        y[i].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(q);
                }
                y[i].d = 1 / iscale;
        }
}

static void f16_from_float_avx512(const float *x, void *vy, int64_t n) {
        uint16_t *y = vy;
        int64_t i = 0;

        for (; i + 16 <= n; i += 16)
                _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
        for (; i < n; i++)
                y[i] = fp32_to_fp16(x[i]);
}

/* Integer rounding like fp32_to_bf16 (vcvtneps2bf16 would flush
 * subnormals, which the scalar reference does not). */
static void bf16_from_float_avx512(const float *x, void *vy, int64_t n) {
        uint16_t *y = vy;
        int64_t i = 0;
        const __m512i abs = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
        const __m512i bias = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);

        for (; i + 16 <= n; i += 16) {
                __m512i u = _mm512_loadu_si512(x + i);
                __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs), inf);
                __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
                r = _mm512_srli_epi32(r, 16);
                r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), quiet);
                _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(r));
        }
        for (; i < n; i++)
                y[i] = fp32_to_bf16(x[i]);
}

/* --- dequantizers (the same float operations as the scalar ones) -------- */

static void f16_to_float_avx512(const void *vx, float *y, int64_t n) {
        const uint16_t *x = vx;
        int64_t i = 0;

        for (; i + 16 <= n; i += 16)
                _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
        for (; i < n; i++)
                y[i] = fp16_to_fp32(x[i]);
}

static void bf16_to_float_avx512(const void *vx, float *y, int64_t n) {
        const uint16_t *x = vx;
        int64_t i = 0;

        for (; i + 16 <= n; i += 16) {
                __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(x + i)));
                _mm512_storeu_si512(y + i, _mm512_slli_epi32(u, 16));
        }
        for (; i < n; i++)
                y[i] = bf16_to_fp32(x[i]);
}

static void q8_0_to_float_avx512(const void *vx, float *y, int64_t n) {
        const block_q8_0 *x = vx;

        for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
                __m512 d = _mm512_set1_ps(fp16_to_fp32(x[i].d));
                __m512i q0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)x[i].qs));
                __m512i q1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(x[i].qs + 16)));
                _mm512_storeu_ps(y, _mm512_mul_ps(d, _mm512_cvtepi32_ps(q0)));
                _mm512_storeu_ps(y + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(q1)));
        }
}

static void q4_0_to_float_avx512(const void *vx, float *y, int64_t n) {
        const block_q4_0 *x = vx;
        const __m512i eight = _mm512_set1_epi32(8), mask = _mm512_set1_epi32(0xF);

        for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
                __m512 d = _mm512_set1_ps(fp16_to_fp32(x[i].d));
                __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)x[i].qs));
                __m512i lo = _mm512_sub_epi32(_mm512_and_si512(q, mask), eight);
                __m512i hi = _mm512_sub_epi32(_mm512_srli_epi32(q, 4), eight);
                _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d));
                _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d));
        }
}

/* y = d*sc*q - dmin*m for 16 values q (int32), as the scalar code does:
 * (d*sc) and (dmin*m) first, then one multiply and one subtract. */
static inline __m512 kq_affine(__m512i q, float dsc, float dm) {
        return _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(dsc), _mm512_cvtepi32_ps(q)), _mm512_set1_ps(dm));
}

static void q4_k_to_float_avx512(const void *vx, float *y, int64_t n) {
        const block_q4_K *x = vx;
        const __m512i mask = _mm512_set1_epi32(0xF);

        for (int64_t i = 0; i < n / QK_K; i++) {
                float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
                uint8_t sc[8], m[8];
                k_scales_mins(x[i].scales, sc, m);
                for (int c = 0; c < 4; c++, y += 64) {
                        float d1 = d * sc[2 * c], m1 = dmin * m[2 * c], d2 = d * sc[2 * c + 1], m2 = dmin * m[2 * c + 1];
                        for (int h = 0; h < 2; h++) {
                                __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(x[i].qs + 32 * c + 16 * h)));
                                _mm512_storeu_ps(y + 16 * h, kq_affine(_mm512_and_si512(q, mask), d1, m1));
                                _mm512_storeu_ps(y + 32 + 16 * h, kq_affine(_mm512_srli_epi32(q, 4), d2, m2));
                        }
                }
        }
}

static void q5_k_to_float_avx512(const void *vx, float *y, int64_t n) {
        const block_q5_K *x = vx;
        const __m512i mask = _mm512_set1_epi32(0xF), one = _mm512_set1_epi32(1);

        for (int64_t i = 0; i < n / QK_K; i++) {
                float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
                uint8_t sc[8], m[8];
                k_scales_mins(x[i].scales, sc, m);
                for (int c = 0; c < 4; c++, y += 64) {
                        float d1 = d * sc[2 * c], m1 = dmin * m[2 * c], d2 = d * sc[2 * c + 1], m2 = dmin * m[2 * c + 1];
                        for (int h = 0; h < 2; h++) {
                                __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(x[i].qs + 32 * c + 16 * h)));
                                __m512i qh = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(x[i].qh + 16 * h)));
                                __m512i h1 = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(qh, 2 * c), one), 4);
                                __m512i h2 = _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(qh, 2 * c + 1), one), 4);
                                _mm512_storeu_ps(y + 16 * h, kq_affine(_mm512_or_si512(_mm512_and_si512(q, mask), h1), d1, m1));
                                _mm512_storeu_ps(y + 32 + 16 * h, kq_affine(_mm512_or_si512(_mm512_srli_epi32(q, 4), h2), d2, m2));
                        }
                }
        }
}

/* The 64 6-bit values (0..63) of quarter pair z of a Q6_K block:
 * z = 0: elements 0..63, 1: 64..127, 2: 128..191, 3: 192..255. */
static inline __m512i q6_k_values(const block_q6_K *b, int z) {
        const uint8_t *ql = b->ql + 64 * (z / 2), *qh = b->qh + 32 * (z / 2);
        const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3);
        __m512i l = _mm512_loadu_si512(ql);
        __m256i h = _mm256_loadu_si256((const __m256i *)qh);
        int s = 4 * (z & 1); /* bits 0-1/2-3 for the even pair, 4-5/6-7 for the odd */
        __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_srli_epi16(h, s)), _mm256_srli_epi16(h, s + 2), 1);
        l = z & 1 ? _mm512_srli_epi16(l, 4) : l;
        return _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_slli_epi16(_mm512_and_si512(hh, m2), 4));
}

static void q6_k_to_float_avx512(const void *vx, float *y, int64_t n) {
        const block_q6_K *x = vx;
        const __m512i off = _mm512_set1_epi32(32);

        for (int64_t i = 0; i < n / QK_K; i++) {
                float d = fp16_to_fp32(x[i].d);
                for (int z = 0; z < 4; z++, y += 64) {
                        _Alignas(64) uint8_t q[64];
                        _mm512_store_si512(q, q6_k_values(&x[i], z));
                        for (int g = 0; g < 4; g++) {
                                __m512i v = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(q + 16 * g))), off);
                                /* scalar: (d * sc) * q */
                                float ds = d * x[i].scales[4 * z + g];
                                _mm512_storeu_ps(y + 16 * g, _mm512_mul_ps(_mm512_set1_ps(ds), _mm512_cvtepi32_ps(v)));
                        }
                }
        }
}

/* --- dots ---------------------------------------------------------------- */

static void f32_dot_avx512(int64_t n, float *s, const void *vw, const void *va) {
        const float *x = vw, *y = va;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t i = 0;

        for (; i + 64 <= n; i += 64) {
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
                a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
                a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
        }
        for (; i + 16 <= n; i += 16)
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        for (; i < n; i++)
                sum += x[i] * y[i];
        *s = sum;
}

static void f16_dot_avx512(int64_t n, float *s, const void *vw, const void *va) {
        const uint16_t *x = vw, *y = va;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        int64_t i = 0;

#define LD(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
        for (; i + 32 <= n; i += 32) {
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                a0 = _mm512_fmadd_ps(LD(x + i), LD(y + i), a0);
                a1 = _mm512_fmadd_ps(LD(x + i + 16), LD(y + i + 16), a1);
        }
#undef LD
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        for (; i < n; i++)
                sum += fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]);
        *s = sum;
}

static void bf16_dot_avx512(int64_t n, float *s, const void *vw, const void *va) {
        const uint16_t *x = vw, *y = va;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        int64_t i = 0;

#define LD(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
        for (; i + 32 <= n; i += 32) {
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                a0 = _mm512_fmadd_ps(LD(x + i), LD(y + i), a0);
                a1 = _mm512_fmadd_ps(LD(x + i + 16), LD(y + i + 16), a1);
        }
#undef LD
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        for (; i < n; i++)
                sum += bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]);
        *s = sum;
}

/* Two Q8_0 blocks against two: |w| (u8) times a with w's sign (s8). */
static void q8_0_dot_avx512(int64_t n, float *s, const void *vw, const void *va) {
        const block_q8_0 *x = vw, *y = va;
        int64_t nb = n / QK8_0, i = 0;
        __m512 acc = _mm512_setzero_ps();
        const __m512i zero = _mm512_setzero_si512();

        for (; i + 2 <= nb; i += 2) {
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                __m512i w = load2x256(x[i].qs, x[i + 1].qs);
                __m512i a = load2x256(y[i].qs, y[i + 1].qs);
                __mmask64 neg = _mm512_movepi8_mask(w);
                __m512i as = _mm512_mask_sub_epi8(a, neg, zero, a);
                __m512i p = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(w), as);
                __m512 d = scale_pair(x[i].d, x[i + 1].d, y[i].d, y[i + 1].d);
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
        }
        float sum = _mm512_reduce_add_ps(acc);
        if (i < nb) {
                float t;
                q8_0_vec_dot(QK8_0, &t, x + i, y + i);
                sum += t;
        }
        *s = sum;
}

/* Two Q4_0 blocks: nibbles 0..15 (u8) times a, minus 8 * sum(a). */
static void q4_0_dot_avx512(int64_t n, float *s, const void *vw, const void *va) {
        const block_q4_0 *x = vw;
        const block_q8_0 *y = va;
        int64_t nb = n / QK4_0, i = 0;
        __m512 acc = _mm512_setzero_ps();
        const __m512i zero = _mm512_setzero_si512(), m4 = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);

        for (; i + 2 <= nb; i += 2) {
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                /* [b0 qs | b0 qs | b1 qs | b1 qs], high nibbles shifted
                 * down in the odd lanes: elements 0..15, 16..31 of each. */
                __m512i q = _mm512_castsi256_si512(_mm256_set_m128i(_mm_loadu_si128((const __m128i *)x[i + 1].qs),
                                                                    _mm_loadu_si128((const __m128i *)x[i].qs)));
                q = _mm512_shuffle_i64x2(q, q, _MM_SHUFFLE(1, 1, 0, 0));
                q = _mm512_mask_blend_epi64(0xCC, q, _mm512_srli_epi16(q, 4));
                q = _mm512_and_si512(q, m4);
                __m512i a = load2x256(y[i].qs, y[i + 1].qs);
                __m512i p = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, q, a), _mm512_dpbusd_epi32(zero, eight, a));
                __m512 d = scale_pair(x[i].d, x[i + 1].d, y[i].d, y[i + 1].d);
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
        }
        float sum = _mm512_reduce_add_ps(acc);
        if (i < nb) {
                float t;
                q4_0_vec_dot(QK4_0, &t, x + i, y + i);
                sum += t;
        }
        *s = sum;
}

/* sum_j m_j * (bsums[2j] + bsums[2j+1]), m as 8 bytes */
static inline int k_min_sum(uint64_t m, const int16_t *bsums) {
        __m256i b = _mm256_loadu_si256((const __m256i *)bsums);
        __m128i m8 = _mm_cvtsi64_si128((long long)m);
        __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8)); /* m0 m0 m1 m1 ... */
        __m256i p = _mm256_madd_epi16(b, m16);
        __m128i r = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
        r = _mm_add_epi32(r, _mm_shuffle_epi32(r, _MM_SHUFFLE(1, 0, 3, 2)));
        r = _mm_add_epi32(r, _mm_shuffle_epi32(r, _MM_SHUFFLE(2, 3, 0, 1)));
        return _mm_cvtsi128_si32(r);
}

/* int16 [sc[2c] x16, sc[2c+1] x16] from the eight scale bytes broadcast
 * to every 64-bit lane of scb (pshufb picks within each 128-bit lane; an
 * index with the top bit set gives 0, the high byte of each int16). */
static inline __m512i k_scale16(__m512i scb, int c) {
        const __m512i base = _mm512_set_epi64(0x8001800180018001ll, 0x8001800180018001ll, 0x8001800180018001ll,
                                              0x8001800180018001ll, 0x8000800080008000ll, 0x8000800080008000ll,
                                              0x8000800080008000ll, 0x8000800080008000ll);
        return _mm512_shuffle_epi8(scb, _mm512_add_epi8(base, _mm512_set1_epi16((short)(2 * c))));
}

/* 64 u8 weights times 64 s8 activations, times an int16 scale per pair of
 * products: exact (pair sums fit int16 for 6-bit weights). */
static inline __m512i dot_u8s8_scaled(__m512i w, __m512i a, __m512i scale16) {
        return _mm512_madd_epi16(_mm512_maddubs_epi16(w, a), scale16);
}

static void q4_k_dot_avx512(int64_t n, float *s, const void *vw, const void *va) {
        const block_q4_K *x = vw;
        const block_q8_K *y = va;
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        __m512 facc = _mm512_setzero_ps();
        float fmin = 0;

        for (int64_t i = 0; i < n / QK_K; i++) {
                uint32_t u[4];
                uint64_t sc, mn;
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 64, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 128, _MM_HINT_T0);
                k_scales_mins_u32(x[i].scales, u);
                sc = u[0] | (uint64_t)u[1] << 32;
                mn = u[2] | (uint64_t)u[3] << 32;
                __m512i scb = _mm512_set1_epi64((long long)sc);
                __m512i acc = _mm512_setzero_si512();
                for (int c = 0; c < 4; c++) {
                        __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
                        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
                        w = _mm512_and_si512(w, m4);
                        acc = _mm512_add_epi32(acc, dot_u8s8_scaled(w, _mm512_loadu_si512(y[i].qs + 64 * c), k_scale16(scb, c)));
                }
                float dd = H2F(x[i].d) * y[i].d;
                facc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(dd), facc);
                fmin += H2F(x[i].dmin) * y[i].d * (float)k_min_sum(mn, y[i].bsums);
        }
        *s = _mm512_reduce_add_ps(facc) - fmin;
}

static void q5_k_dot_avx512(int64_t n, float *s, const void *vw, const void *va) {
        const block_q5_K *x = vw;
        const block_q8_K *y = va;
        const __m512i m4 = _mm512_set1_epi8(0x0F), b1 = _mm512_set1_epi8(1);
        __m512 facc = _mm512_setzero_ps();
        float fmin = 0;

        for (int64_t i = 0; i < n / QK_K; i++) {
                uint32_t u[4];
                uint64_t sc, mn;
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 64, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 128, _MM_HINT_T0);
                k_scales_mins_u32(x[i].scales, u);
                sc = u[0] | (uint64_t)u[1] << 32;
                mn = u[2] | (uint64_t)u[3] << 32;
                __m512i scb = _mm512_set1_epi64((long long)sc);
                __m256i qh = _mm256_loadu_si256((const __m256i *)x[i].qh);
                __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 1), 1);
                __m512i acc = _mm512_setzero_si512();
                for (int c = 0; c < 4; c++) {
                        __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
                        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
                        /* bit 2c (low half) and 2c+1 (high half, pre-shifted by 1) */
                        __m512i h = _mm512_and_si512(_mm512_srli_epi16(hh, 2 * c), b1);
                        w = _mm512_or_si512(_mm512_and_si512(w, m4), _mm512_slli_epi16(h, 4));
                        acc = _mm512_add_epi32(acc, dot_u8s8_scaled(w, _mm512_loadu_si512(y[i].qs + 64 * c), k_scale16(scb, c)));
                }
                float dd = H2F(x[i].d) * y[i].d;
                facc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(dd), facc);
                fmin += H2F(x[i].dmin) * y[i].d * (float)k_min_sum(mn, y[i].bsums);
        }
        *s = _mm512_reduce_add_ps(facc) - fmin;
}

/* Q6_K: values 0..63 (u8) times a; the -32 offset comes back through the
 * bsums: sum_k sc_k * (<q, a>_k - 32 * bsum_k). */
static void q6_k_dot_avx512(int64_t n, float *s, const void *vw, const void *va) {
        const block_q6_K *x = vw;
        const block_q8_K *y = va;
        __m512 facc = _mm512_setzero_ps();
        /* bytes [4z x8, 4z+1 x8 | 4z+2 x8, 4z+3 x8] for z = 0 */
        const __m256i sidx = _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll, 0x0101010101010101ll, 0);

        for (int64_t i = 0; i < n / QK_K; i++) {
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 64, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 128, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 192, _MM_HINT_T0);
                __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
                __m256i sc2 = _mm256_broadcastsi128_si256(sc8);
                __m512i acc = _mm512_setzero_si512();
                for (int z = 0; z < 4; z++) {
                        __m256i b = _mm256_shuffle_epi8(sc2, _mm256_add_epi8(sidx, _mm256_set1_epi8((char)(4 * z))));
                        __m512i scale16 = _mm512_cvtepi8_epi16(b);
                        acc = _mm512_add_epi32(acc, dot_u8s8_scaled(q6_k_values(&x[i], z), _mm512_loadu_si512(y[i].qs + 64 * z), scale16));
                }
                __m256i bs = _mm256_loadu_si256((const __m256i *)y[i].bsums);
                __m256i pm = _mm256_madd_epi16(bs, _mm256_cvtepi8_epi16(sc8));
                /* -32 * sum_k sc_k bsum_k, spread over the 8 low lanes */
                acc = _mm512_sub_epi32(acc, _mm512_zextsi256_si512(_mm256_slli_epi32(pm, 5)));
                facc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(H2F(x[i].d) * y[i].d), facc);
        }
        *s = _mm512_reduce_add_ps(facc);
}

const kernel_set kernels_avx512 = {
        .name = "avx512",
        .supported = avx512_supported,
        .gemv = gemv_avx512,
        .gemv_supported = gemv_avx512_supported,
        .tanh_f32 = tanh_f32_avx512,
        .exp_f32 = exp_f32_avx512,
        .attn_scores = attn_scores_avx512,
        .attn_mix = attn_mix_avx512,
        .sum_squares = sum_squares_avx512,
        .f16_lookup = f16_lookup_avx512,
        .gelu_f16 = gelu_f16_avx512,
        .vec_dot = {
                [TYPE_F32] = f32_dot_avx512,
                [TYPE_F16] = f16_dot_avx512,
                [TYPE_BF16] = bf16_dot_avx512,
                [TYPE_Q8_0] = q8_0_dot_avx512,
                [TYPE_Q4_0] = q4_0_dot_avx512,
                [TYPE_Q4_K] = q4_k_dot_avx512,
                [TYPE_Q5_K] = q5_k_dot_avx512,
                [TYPE_Q6_K] = q6_k_dot_avx512,
        },
        .from_float = {
                [TYPE_F16] = f16_from_float_avx512,
                [TYPE_BF16] = bf16_from_float_avx512,
                [TYPE_Q8_0] = q8_0_quantize_avx512,
                [TYPE_Q8_K] = q8_k_quantize_avx512,
        },
        .to_float = {
                [TYPE_F16] = f16_to_float_avx512,
                [TYPE_BF16] = bf16_to_float_avx512,
                [TYPE_Q8_0] = q8_0_to_float_avx512,
                [TYPE_Q4_0] = q4_0_to_float_avx512,
                [TYPE_Q4_K] = q4_k_to_float_avx512,
                [TYPE_Q5_K] = q5_k_to_float_avx512,
                [TYPE_Q6_K] = q6_k_to_float_avx512,
        },
};
