/* SPDX-License-Identifier: MIT */
/* Private to the tensor-type and kernel files: the scalar reference kernels
 * of every type (one type-*.c file each), shared by the traits table
 * (tensor-type.c) and the scalar kernel set (kernels-scalar.c), and the
 * helpers the SIMD files share. */
#pragma once

#include <string.h>

#include "kernels.h"
#include "tensor-type.h"

/* Unpack the 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K
 * block (spec §3.3). */
static inline void k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
        if (j < 4) {
                *sc = q[j] & 63;
                *m = q[j + 4] & 63;
        } else {
                *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
                *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
}

/* All eight scales then all eight mins of a Q4_K/Q5_K block. */
static inline void k_scales_mins(const uint8_t *q, uint8_t sc[8], uint8_t m[8]) {
        for (int j = 0; j < 8; j++)
                k_scale_min(j, q, &sc[j], &m[j]);
}

/* The same unpacking without branches, as words: scales in bytes 0..7
 * of u[0..1], mins in bytes 0..7 of u[2..3]. */
static inline void k_scales_mins_u32(const uint8_t *q, uint32_t u[4]) {
        const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
        uint32_t a, b, c;
        memcpy(&a, q, 4);
        memcpy(&b, q + 4, 4);
        memcpy(&c, q + 8, 4);
        u[0] = a & m6;                                       /* sc 0..3 */
        u[1] = (c & m4) | (((a >> 6) & m2) << 4);            /* sc 4..7 */
        u[2] = b & m6;                                       /* m 0..3 */
        u[3] = ((c >> 4) & m4) | (((b >> 6) & m2) << 4);     /* m 4..7 */
}

/* Round half to even, as ggml's activation quantizers do (the SIMD ones
 * with _mm256_round_ps, the Q8_K one with its magic-number trick); valid
 * for |x| < 2^22. */
static inline int round_even(float x) {
        float v = x + 12582912.f;
        int32_t i;
        memcpy(&i, &v, sizeof i);
        return (i & 0x007fffff) - 0x00400000;
}

/* type-f32.c */
void f32_to_float(const void *x, float *y, int64_t n);
void f32_from_float(const float *x, void *y, int64_t n);
void f32_vec_dot(int64_t n, float *s, const void *w, const void *a);
/* type-f16.c */
void f16_to_float(const void *x, float *y, int64_t n);
void f16_from_float(const float *x, void *y, int64_t n);
void f16_vec_dot(int64_t n, float *s, const void *w, const void *a);
/* type-bf16.c */
void bf16_to_float(const void *x, float *y, int64_t n);
void bf16_from_float(const float *x, void *y, int64_t n);
void bf16_vec_dot(int64_t n, float *s, const void *w, const void *a);
/* type-q8_0.c: from_float is ggml's reference quantizer (weights, what
 * llama-quantize writes); quantize_act is what ggml's x86 build does to
 * activations (127/amax multiplier, round half to even). */
void q8_0_to_float(const void *x, float *y, int64_t n);
void q8_0_from_float(const float *x, void *y, int64_t n);
void q8_0_quantize_act(const float *x, void *y, int64_t n);
void q8_0_vec_dot(int64_t n, float *s, const void *w, const void *a);
/* type-q5_0.c (whisper.cpp files) */
void q5_0_to_float(const void *x, float *y, int64_t n);
void q5_0_from_float(const float *x, void *y, int64_t n);
void q5_0_vec_dot(int64_t n, float *s, const void *w, const void *a);
/* type-q4_0.c */
void q4_0_to_float(const void *x, float *y, int64_t n);
void q4_0_from_float(const float *x, void *y, int64_t n);
void q4_0_vec_dot(int64_t n, float *s, const void *w, const void *a);
/* type-q8_k.c */
void q8_k_to_float(const void *x, float *y, int64_t n);
void q8_k_from_float(const float *x, void *y, int64_t n);
/* type-q4_k.c, type-q5_k.c, type-q6_k.c */
void q4_k_to_float(const void *x, float *y, int64_t n);
void q4_k_vec_dot(int64_t n, float *s, const void *w, const void *a);
void q5_k_to_float(const void *x, float *y, int64_t n);
void q5_k_vec_dot(int64_t n, float *s, const void *w, const void *a);
void q6_k_to_float(const void *x, float *y, int64_t n);
void q6_k_vec_dot(int64_t n, float *s, const void *w, const void *a);

/* y = tanh(x), y = exp(x): libm (kernels-scalar.c), AVX-512
 * (kernels-math-avx512.c) */
void tanh_f32_scalar(float *y, const float *x, int64_t n);
void tanh_f32_avx512(float *y, const float *x, int64_t n);
void exp_f32_scalar(float *y, const float *x, int64_t n);
void exp_f32_avx512(float *y, const float *x, int64_t n);
void attn_scores_scalar(const float *q, int32_t n_q, const float *k, int32_t nk, int32_t hd, float scale,
                        const float *v_next, float *s);
void attn_scores_avx512(const float *q, int32_t n_q, const float *k, int32_t nk, int32_t hd, float scale,
                        const float *v_next, float *s);
void attn_mix_scalar(const float *p, int32_t n_q, const float *v, int32_t nk, int32_t hd, float *o);
void attn_mix_avx512(const float *p, int32_t n_q, const float *v, int32_t nk, int32_t hd, float *o);
/* kernel_set.sum_squares and .f16_lookup: kernels-scalar.c,
 * kernels-math-avx512.c */
double sum_squares_scalar(const float *x, int64_t n);
double sum_squares_avx512(const float *x, int64_t n);
void f16_lookup_scalar(float *y, const float *x, const uint16_t *table, int64_t n);
void f16_lookup_avx512(float *y, const float *x, const uint16_t *table, int64_t n);
void gelu_f16_avx512(float *y, const float *x, const uint16_t *table, int64_t n);

/* kernels-gemv-avx512.c (needs VBMI besides the avx512 set's features) */
bool gemv_avx512_supported(void);
extern const gemv_kernel gemv_avx512[TYPE_COUNT];
