/* SPDX-License-Identifier: MIT */
/* AVX2 + FMA + F16C kernels.  Without VNNI, u8 x s8 products are summed by
 * vpmaddubsw (pairs into int16; every pair here stays below 2^15: at most
 * 2*128*127) and vpmaddwd (pairs of int16 into int32, times an int16
 * scale or 1).  Signed weights use the sign trick: |w| times a*sign(w).
 *
 * Exactness as in kernels-avx512.c: quantizers bit-exact with the scalar
 * ones, integer sums exact, float accumulation in another order. */
#include <immintrin.h>

#include "kernels-cpu.h"
#include "kernels-impl.h"
#include "kernels.h"

static bool avx2_supported(void) {
        const cpu_features *f = cpu_features_get();
        return f->avx2 && f->fma && f->f16c && f->bmi2;
}

#define H2F(h) _cvtsh_ss(h)
#define PREFETCH_AHEAD 2048 /* bytes of weights ahead of the loads (measured: 512 5.7, 1024 7.2, 2048 8.2, 4096 6.5 GB/s for q4_0, 1 thread) */

static inline float hsum_ps(__m256 v) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
}

static inline int hsum_epi32(__m256i v) {
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
        return _mm_cvtsi128_si32(s);
}

static inline float hmax_ps(__m256 v) {
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        return _mm_cvtss_f32(m);
}

/* sum of u8 * s8 over 32 bytes, as 8 int32 */
static inline __m256i dot_u8s8(__m256i u, __m256i s) {
        return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* 8 int32 to 8 int8 in the low 8 bytes, saturating (values fit anyway) */
static inline void store_8x_i8(int8_t *dst, __m256i v) {
        __m128i p = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        p = _mm_packs_epi16(p, p);
        _mm_storel_epi64((__m128i *)dst, p);
}

/* --- activation quantizers ---------------------------------------------- */

static void q8_0_quantize_avx2(const float *x, void *vy, int64_t n) {
        block_q8_0 *y = vy;
        const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));

        for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
                __m256 v[4];
                __m256 m = _mm256_setzero_ps();
                for (int k = 0; k < 4; k++) {
                        v[k] = _mm256_loadu_ps(x + 8 * k);
                        m = _mm256_max_ps(m, _mm256_and_ps(v[k], absmask));
                }
                float amax = hmax_ps(m);
                float id = amax != 0.f ? 127.f / amax : 0.f;
                y[i].d = fp32_to_fp16(amax / 127.f);
                __m256 mul = _mm256_set1_ps(id);
                for (int k = 0; k < 4; k++) /* cvtps rounds half to even */
                        store_8x_i8(y[i].qs + 8 * k, _mm256_cvtps_epi32(_mm256_mul_ps(v[k], mul)));
        }
}

static void q8_k_quantize_avx2(const float *x, void *vy, int64_t n) {
        block_q8_K *y = vy;
        const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));

        for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
                __m256 m = _mm256_setzero_ps();
                for (int j = 0; j < QK_K; j += 8)
                        m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + j), absmask));
                float amax = hmax_ps(m);
                if (amax == 0.f) {
                        memset(&y[i], 0, sizeof y[i]);
                        continue;
                }
                /* the first element of largest magnitude, with its sign */
                float max = 0;
                __m256 am = _mm256_set1_ps(amax);
                for (int j = 0; j < QK_K; j += 8) {
                        int k = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + j), absmask), am, _CMP_EQ_OQ));
                        if (k) {
                                max = x[j + __builtin_ctz((unsigned)k)];
                                break;
                        }
                }
                float iscale = -127.f / max;
                __m256 mul = _mm256_set1_ps(iscale);
                const __m256i lim = _mm256_set1_epi32(127);
                for (int j = 0; j < QK_K; j += 16) {
                        __m256i q0 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), mul)), lim);
                        __m256i q1 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8), mul)), lim);
                        store_8x_i8(y[i].qs + j, q0);
                        store_8x_i8(y[i].qs + j + 8, q1);
                        y[i].bsums[j / 16] = (int16_t)hsum_epi32(_mm256_add_epi32(q0, q1));
                }
                y[i].d = 1 / iscale;
        }
}

static void f16_from_float_avx2(const float *x, void *vy, int64_t n) {
        uint16_t *y = vy;
        int64_t i = 0;

        for (; i + 8 <= n; i += 8)
                _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
        for (; i < n; i++)
                y[i] = fp32_to_fp16(x[i]);
}

static void bf16_from_float_avx2(const float *x, void *vy, int64_t n) {
        uint16_t *y = vy;
        int64_t i = 0;
        const __m256i abs = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
        const __m256i bias = _mm256_set1_epi32(0x7FFF), one = _mm256_set1_epi32(1), quiet = _mm256_set1_epi32(0x40);

        for (; i + 8 <= n; i += 8) {
                __m256i u = _mm256_loadu_si256((const __m256i *)(x + i));
                __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs), inf);
                __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(u, 16), one)));
                r = _mm256_srli_epi32(r, 16);
                r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(u, 16), quiet), nan);
                __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
                _mm_storeu_si128((__m128i *)(y + i), p);
        }
        for (; i < n; i++)
                y[i] = fp32_to_bf16(x[i]);
}

/* --- dequantizers used by the sgemm path ---------------------------------- */

static void f16_to_float_avx2(const void *vx, float *y, int64_t n) {
        const uint16_t *x = vx;
        int64_t i = 0;

        for (; i + 8 <= n; i += 8)
                _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
        for (; i < n; i++)
                y[i] = fp16_to_fp32(x[i]);
}

static void bf16_to_float_avx2(const void *vx, float *y, int64_t n) {
        const uint16_t *x = vx;
        int64_t i = 0;

        for (; i + 8 <= n; i += 8) {
                __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i)));
                _mm256_storeu_si256((__m256i *)(y + i), _mm256_slli_epi32(u, 16));
        }
        for (; i < n; i++)
                y[i] = bf16_to_fp32(x[i]);
}

/* --- dots ---------------------------------------------------------------- */

static void f32_dot_avx2(int64_t n, float *s, const void *vw, const void *va) {
        const float *x = vw, *y = va;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t i = 0;

        for (; i + 32 <= n; i += 32) {
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
        }
        for (; i + 8 <= n; i += 8)
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; i < n; i++)
                sum += x[i] * y[i];
        *s = sum;
}

static void f16_dot_avx2(int64_t n, float *s, const void *vw, const void *va) {
        const uint16_t *x = vw, *y = va;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int64_t i = 0;

#define LD(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
        for (; i + 16 <= n; i += 16) {
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                a0 = _mm256_fmadd_ps(LD(x + i), LD(y + i), a0);
                a1 = _mm256_fmadd_ps(LD(x + i + 8), LD(y + i + 8), a1);
        }
#undef LD
        float sum = hsum_ps(_mm256_add_ps(a0, a1));
        for (; i < n; i++)
                sum += fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]);
        *s = sum;
}

static void bf16_dot_avx2(int64_t n, float *s, const void *vw, const void *va) {
        const uint16_t *x = vw, *y = va;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int64_t i = 0;

#define LD(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
        for (; i + 16 <= n; i += 16) {
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                a0 = _mm256_fmadd_ps(LD(x + i), LD(y + i), a0);
                a1 = _mm256_fmadd_ps(LD(x + i + 8), LD(y + i + 8), a1);
        }
#undef LD
        float sum = hsum_ps(_mm256_add_ps(a0, a1));
        for (; i < n; i++)
                sum += bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]);
        *s = sum;
}

static void q8_0_dot_avx2(int64_t n, float *s, const void *vw, const void *va) {
        const block_q8_0 *x = vw, *y = va;
        __m256 acc = _mm256_setzero_ps();

        for (int64_t i = 0; i < n / QK8_0; i++) {
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                __m256i w = _mm256_loadu_si256((const __m256i *)x[i].qs);
                __m256i a = _mm256_loadu_si256((const __m256i *)y[i].qs);
                __m256i p = dot_u8s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(H2F(x[i].d) * H2F(y[i].d)), acc);
        }
        *s = hsum_ps(acc);
}

static void q4_0_dot_avx2(int64_t n, float *s, const void *vw, const void *va) {
        const block_q4_0 *x = vw;
        const block_q8_0 *y = va;
        __m256 acc = _mm256_setzero_ps();
        const __m256i m4 = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);

        for (int64_t i = 0; i < n / QK4_0; i++) {
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                __m128i q = _mm_loadu_si128((const __m128i *)x[i].qs);
                __m256i w = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
                w = _mm256_sub_epi8(w, eight); /* -8..7 */
                __m256i a = _mm256_loadu_si256((const __m256i *)y[i].qs);
                __m256i p = dot_u8s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(H2F(x[i].d) * H2F(y[i].d)), acc);
        }
        *s = hsum_ps(acc);
}

/* int16 sc[j] in every lane, from the 8 scale bytes in every 64 bits */
static inline __m256i k_scale16(__m256i scb, int j) {
        return _mm256_shuffle_epi8(scb, _mm256_set1_epi16((short)(0x8000 | j)));
}

static inline int k_min_sum(uint64_t m, const int16_t *bsums) {
        __m256i b = _mm256_loadu_si256((const __m256i *)bsums);
        __m128i m8 = _mm_cvtsi64_si128((long long)m);
        __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
        return hsum_epi32(_mm256_madd_epi16(b, m16));
}

static void q4_k_dot_avx2(int64_t n, float *s, const void *vw, const void *va) {
        const block_q4_K *x = vw;
        const block_q8_K *y = va;
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        __m256 facc = _mm256_setzero_ps();
        float fmin = 0;

        for (int64_t i = 0; i < n / QK_K; i++) {
                uint32_t u[4];
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 64, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 128, _MM_HINT_T0);
                k_scales_mins_u32(x[i].scales, u);
                __m256i scb = _mm256_set1_epi64x((long long)(u[0] | (uint64_t)u[1] << 32));
                __m256i acc = _mm256_setzero_si256();
                for (int c = 0; c < 4; c++) {
                        __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
                        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                        __m256i a0 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c));
                        __m256i a1 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c + 32));
                        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0), k_scale16(scb, 2 * c)));
                        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1), k_scale16(scb, 2 * c + 1)));
                }
                facc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(H2F(x[i].d) * y[i].d), facc);
                fmin += H2F(x[i].dmin) * y[i].d * (float)k_min_sum(u[2] | (uint64_t)u[3] << 32, y[i].bsums);
        }
        *s = hsum_ps(facc) - fmin;
}

static void q5_k_dot_avx2(int64_t n, float *s, const void *vw, const void *va) {
        const block_q5_K *x = vw;
        const block_q8_K *y = va;
        const __m256i m4 = _mm256_set1_epi8(0x0F), b1 = _mm256_set1_epi8(1);
        __m256 facc = _mm256_setzero_ps();
        float fmin = 0;

        for (int64_t i = 0; i < n / QK_K; i++) {
                uint32_t u[4];
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 64, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 128, _MM_HINT_T0);
                k_scales_mins_u32(x[i].scales, u);
                __m256i scb = _mm256_set1_epi64x((long long)(u[0] | (uint64_t)u[1] << 32));
                __m256i qh = _mm256_loadu_si256((const __m256i *)x[i].qh);
                __m256i acc = _mm256_setzero_si256();
                for (int c = 0; c < 4; c++) {
                        __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
                        __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), b1), 4);
                        __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), b1), 4);
                        __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
                        __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
                        __m256i a0 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c));
                        __m256i a1 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c + 32));
                        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0), k_scale16(scb, 2 * c)));
                        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1), k_scale16(scb, 2 * c + 1)));
                }
                facc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(H2F(x[i].d) * y[i].d), facc);
                fmin += H2F(x[i].dmin) * y[i].d * (float)k_min_sum(u[2] | (uint64_t)u[3] << 32, y[i].bsums);
        }
        *s = hsum_ps(facc) - fmin;
}

/* Q6_K: 0..63 (u8) times a; scales of 16 sign-extended from bytes; the -32
 * offset through the bsums as in the AVX-512 kernel. */
static void q6_k_dot_avx2(int64_t n, float *s, const void *vw, const void *va) {
        const block_q6_K *x = vw;
        const block_q8_K *y = va;
        const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
        __m256 facc = _mm256_setzero_ps();

        for (int64_t i = 0; i < n / QK_K; i++) {
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 64, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 128, _MM_HINT_T0);
                _mm_prefetch((const char *)(x + i) + PREFETCH_AHEAD + 192, _MM_HINT_T0);
                __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
                __m256i sc2 = _mm256_broadcastsi128_si256(sc8);
                __m256i acc = _mm256_setzero_si256();
                for (int h = 0; h < 2; h++) {
                        const uint8_t *ql = x[i].ql + 64 * h;
                        __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
                        __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
                        __m256i qh = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
                        __m256i q[4] = {
                                _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4)),
                                _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4)),
                                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4)),
                                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4)),
                        };
                        for (int k = 0; k < 4; k++) {
                                int g = 8 * h + 2 * k; /* groups g (low lane) and g+1 (high lane) */
                                __m256i idx = _mm256_set_m128i(_mm_set1_epi8((char)(g + 1)), _mm_set1_epi8((char)g));
                                __m256i sc16 = _mm256_srai_epi16(_mm256_shuffle_epi8(sc2, idx), 8);
                                __m256i a = _mm256_loadu_si256((const __m256i *)(y[i].qs + 128 * h + 32 * k));
                                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], a), sc16));
                        }
                }
                __m256i bs = _mm256_loadu_si256((const __m256i *)y[i].bsums);
                __m256i pm = _mm256_madd_epi16(bs, _mm256_cvtepi8_epi16(sc8));
                acc = _mm256_sub_epi32(acc, _mm256_slli_epi32(pm, 5));
                facc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(H2F(x[i].d) * y[i].d), facc);
        }
        *s = hsum_ps(facc);
}

const kernel_set kernels_avx2 = {
        .name = "avx2",
        .supported = avx2_supported,
        .vec_dot = {
                [TYPE_F32] = f32_dot_avx2,
                [TYPE_F16] = f16_dot_avx2,
                [TYPE_BF16] = bf16_dot_avx2,
                [TYPE_Q8_0] = q8_0_dot_avx2,
                [TYPE_Q4_0] = q4_0_dot_avx2,
                [TYPE_Q4_K] = q4_k_dot_avx2,
                [TYPE_Q5_K] = q5_k_dot_avx2,
                [TYPE_Q6_K] = q6_k_dot_avx2,
        },
        .from_float = {
                [TYPE_F16] = f16_from_float_avx2,
                [TYPE_BF16] = bf16_from_float_avx2,
                [TYPE_Q8_0] = q8_0_quantize_avx2,
                [TYPE_Q8_K] = q8_k_quantize_avx2,
        },
        .to_float = {
                [TYPE_F16] = f16_to_float_avx2,
                [TYPE_BF16] = bf16_to_float_avx2,
        },
};
