/* SPDX-License-Identifier: MIT */
/* The scalar reference kernels: every other set is tested against these. */
#include <math.h>

#include "kernels.h"
#include "kernels-impl.h"

static bool scalar_supported(void) {
        return true;
}

void tanh_f32_scalar(float *y, const float *x, int64_t n) {
        for (int64_t i = 0; i < n; i++)
                y[i] = tanhf(x[i]);
}

void exp_f32_scalar(float *y, const float *x, int64_t n) {
        for (int64_t i = 0; i < n; i++)
                y[i] = expf(x[i]);
}

void attn_scores_scalar(const float *q, int32_t n_q, const float *k, int32_t nk, int32_t hd, float scale,
                        const float *v_next, float *s) {
        for (int32_t r = 0; r < n_q; r++)
                for (int32_t j = 0; j < nk; j++) {
                        float sum = 0.0f;
                        for (int32_t d = 0; d < hd; d++)
                                sum += q[(size_t)r * hd + d] * k[(size_t)j * hd + d];
                        s[(size_t)r * nk + j] = scale * sum;
                }
}

void attn_mix_scalar(const float *p, int32_t n_q, const float *v, int32_t nk, int32_t hd, float *o) {
        for (int32_t r = 0; r < n_q; r++) {
                float *out = o + (size_t)r * hd;
                for (int32_t d = 0; d < hd; d++)
                        out[d] = 0.0f;
                for (int32_t j = 0; j < nk; j++) {
                        float pj = p[(size_t)r * nk + j];
                        for (int32_t d = 0; d < hd; d++)
                                out[d] += pj * v[(size_t)j * hd + d];
                }
        }
}

double sum_squares_scalar(const float *x, int64_t n) {
        double s[32] = { 0 }, u[8];

        for (int64_t i = 0; i < n; i++)
                s[i % 32] += (double)(x[i] * x[i]);
        /* the order of the vector code: four sums of eight lanes, then
         * halves of the lanes folded onto each other */
        for (int l = 0; l < 8; l++)
                u[l] = (s[l] + s[8 + l]) + (s[16 + l] + s[24 + l]);
        for (int l = 0; l < 4; l++)
                u[l] += u[l + 4];
        return (u[0] + u[2]) + (u[1] + u[3]);
}

void f16_lookup_scalar(float *y, const float *x, const uint16_t *table, int64_t n) {
        for (int64_t i = 0; i < n; i++)
                y[i] = fp16_to_fp32(table[fp32_to_fp16(x[i])]);
}

const kernel_set kernels_scalar = {
        .name = "scalar",
        .supported = scalar_supported,
        .tanh_f32 = tanh_f32_scalar,
        .exp_f32 = exp_f32_scalar,
        .attn_scores = attn_scores_scalar,
        .attn_mix = attn_mix_scalar,
        .sum_squares = sum_squares_scalar,
        .f16_lookup = f16_lookup_scalar,
        .gelu_f16 = f16_lookup_scalar, /* the table itself */
        .vec_dot = {
                [TYPE_F32] = f32_vec_dot,
                [TYPE_F16] = f16_vec_dot,
                [TYPE_BF16] = bf16_vec_dot,
                [TYPE_Q8_0] = q8_0_vec_dot,
                [TYPE_Q4_0] = q4_0_vec_dot,
                [TYPE_Q5_0] = q5_0_vec_dot,
                [TYPE_Q4_K] = q4_k_vec_dot,
                [TYPE_Q5_K] = q5_k_vec_dot,
                [TYPE_Q6_K] = q6_k_vec_dot,
        },
        .from_float = {
                [TYPE_F32] = f32_from_float,
                [TYPE_F16] = f16_from_float,
                [TYPE_BF16] = bf16_from_float,
                [TYPE_Q8_0] = q8_0_quantize_act,
                [TYPE_Q8_K] = q8_k_from_float,
        },
        .to_float = {
                [TYPE_F32] = f32_to_float,
                [TYPE_F16] = f16_to_float,
                [TYPE_BF16] = bf16_to_float,
                [TYPE_Q8_0] = q8_0_to_float,
                [TYPE_Q4_0] = q4_0_to_float,
                [TYPE_Q5_0] = q5_0_to_float,
                [TYPE_Q4_K] = q4_k_to_float,
                [TYPE_Q5_K] = q5_k_to_float,
                [TYPE_Q6_K] = q6_k_to_float,
                [TYPE_Q8_K] = q8_k_to_float,
        },
};
