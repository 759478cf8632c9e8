/* SPDX-License-Identifier: MIT */
/* CPU kernel variants: const tables of function pointers, one file each
 * (kernels-scalar.c, kernels-avx2.c, kernels-avx512.c), chosen at run time
 * from cpuid.  A NULL entry falls back to the scalar reference. */
#pragma once

#include "tensor-type.h"

/* Decoding kernels (one token through many rows): prep converts the n
 * activations once per product into the kernel's own layout (act_bytes per
 * n_unit elements), rows dots n_rows consecutive weight rows (row_bytes
 * apart) with them into y[0..n_rows).  n must be a multiple of n_unit (the
 * kernel's group of blocks: 64 for Q8_0, 128 for Q4_0, 256 for K-quants,
 * so that Gemma 3n's 64-wide LAuReL rows take the kernel too).  Same
 * quantization of the activations as vec_dot's, so the results differ
 * from vec_dot's only in float summation order. */
typedef void (*gemv_prep_fn)(const float *x, void *act, int64_t n);
typedef void (*gemv_rows_fn)(int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act, float *y);
typedef struct gemv_kernel {
        gemv_prep_fn prep;
        gemv_rows_fn rows;
        uint32_t act_bytes;
        uint32_t n_unit;
} gemv_kernel;

/* Whether g (NULL: none) takes rows of n elements; the bytes of one
 * prepared row of activations. */
static inline bool gemv_takes(const gemv_kernel *g, int64_t n) {
        return g && g->rows && g->n_unit && n > 0 && n % g->n_unit == 0;
}
static inline size_t gemv_act_row(const gemv_kernel *g, int64_t n) {
        return (size_t)(n / g->n_unit) * g->act_bytes;
}

/* The four-row kernels read a call's rows as four streams, one from each
 * quarter (j, q + j, 2q + j, 3q + j); this is q.  Four streams a multiple
 * of 4 KiB apart go through the same L1 sets in step: 3/8 of a 2048-row
 * Q4_K matrix, quarters of 192 rows, 216 KiB apart, cost the whole E2B
 * decode step ~3 %, so such a quarter is a row shorter. */
static inline int64_t gemv_quarter(int64_t n_rows, size_t row_bytes) {
        int64_t q = n_rows / 4;
        if (q > 1 && ((size_t)q * row_bytes) % 4096 == 0)
                q--;
        return q;
}

typedef struct kernel_set {
        const char *name;          /* "scalar", "avx2", "avx512" */
        bool (*supported)(void);   /* cpuid check */
        /* Indexed by weight type: dot of one weight row with one row of
         * activations already converted to the weight's vec_dot_type. */
        vec_dot_fn vec_dot[TYPE_COUNT];
        /* Indexed by activation type (Q8_0, Q8_K, F16, BF16): quantize. */
        from_float_fn from_float[TYPE_COUNT];
        /* Indexed by weight type: dequantize rows. */
        to_float_fn to_float[TYPE_COUNT];
        /* Indexed by weight type, NULL (or a NULL entry) where there is
         * none: vec_dot is used then.  gemv_supported: what these need
         * beyond supported(); without it the completed set has no gemv. */
        const gemv_kernel *gemv;
        bool (*gemv_supported)(void);
        /* y[i] = tanh(x[i]) for n values (y may be x); within 4 ulp of
         * tanhf. */
        void (*tanh_f32)(float *y, const float *x, int64_t n);
        /* y[i] = exp(x[i]) likewise; within 1 ulp of expf. */
        void (*exp_f32)(float *y, const float *x, int64_t n);
        /* One token's attention over a KV head shared by n_q query rows
         * of hd floats (q, o: n_q rows; k, v: nk rows; s, p: n_q rows of
         * nk): scores s[r][j] = scale * (q_r . k_j), and the mix
         * o[r] = sum_j p[r][j] v_j.  Straight from the cache's rows: a
         * general sgemm copied both operands into its panels first, three
         * times the work of the products at these sizes.  v_next: NULL, or
         * the nk value rows the mix reads next, which the scores bring
         * into L2 as they read the keys (two streams from memory at once:
         * E2B 1.003-1.005 per token); the caller passes them only when
         * they fit there. */
        void (*attn_scores)(const float *q, int32_t n_q, const float *k, int32_t nk, int32_t hd, float scale,
                            const float *v_next, float *s);
        void (*attn_mix)(const float *p, int32_t n_q, const float *v, int32_t nk, int32_t hd, float *o);
        /* The sum of the squares of n floats (RMSNorm's), each square
         * rounded to float and added in double to one of 32 partial sums
         * (element i to sum i % 32), which are then combined as
         * sum_squares_scalar does: the same result, bit for bit, in every
         * set. */
        double (*sum_squares)(const float *x, int64_t n);
        /* y[i] = table[f16(x[i])] as a float, for a table of the 65536
         * F16 results of a function of one F16 variable (GELU); y may be
         * x.  One value at a time the lookup took most of GELU's time. */
        void (*f16_lookup)(float *y, const float *x, const uint16_t *table, int64_t n);
        /* f16_lookup for the table of GELU's results (the tanh form
         * below; every F16 input but NaNs and infinities): GELU computed
         * in float from the input rounded to F16, the table read only for
         * the results that could round to either of two F16 values (its
         * tanh is not libm's; about 1 % of a feed-forward's gate values,
         * mostly below -3).
         * For a token's values the table is cold and each lookup a miss.
         * Equal to the lookup only as far as tanh_f32 is to tanhf: the
         * caller checks all 65536 inputs once. */
        void (*gelu_f16)(float *y, const float *x, const uint16_t *table, int64_t n);
} kernel_set;

/* GELU, tanh form, with ggml's constants and its order of operations:
 * 0.5 x (1 + tanh(SQRT_2_OVER_PI x (1 + COEF_A x x))), every step rounded
 * to float (no fused multiply-adds). */
#define GELU_COEF_A 0.044715f
#define GELU_SQRT_2_OVER_PI 0.79788456080286535587989211986876f

extern const kernel_set kernels_scalar;
extern const kernel_set kernels_avx2;
extern const kernel_set kernels_avx512;

/* The best supported set with NULL entries filled from the scalar set.
 * SOTTO_KERNELS=scalar|avx2|avx512 in the environment forces one (when the
 * CPU supports it). */
const kernel_set *kernels_best(void);
/* A named set, completed the same way; NULL if unknown or unsupported. */
const kernel_set *kernels_get(const char *name);
