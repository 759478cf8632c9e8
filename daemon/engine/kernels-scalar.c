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

const kernel_set kernels_scalar = {
        .name = "scalar",
        .supported = scalar_supported,
        .tanh_f32 = tanh_f32_scalar,
        .exp_f32 = exp_f32_scalar,
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
