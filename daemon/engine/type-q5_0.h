/* SPDX-License-Identifier: MIT */
/* Q5_0 (the quantization of many whisper.cpp model files): block layout and
 * scalar reference kernels. */
#pragma once

#include "tensor-type.h"

#define QK5_0 32

typedef struct {
        uint16_t d;
        uint8_t qh[4];
        uint8_t qs[QK5_0 / 2];
} block_q5_0;
_Static_assert(sizeof(block_q5_0) == 22, "q5_0");

/* Until the shared fp16 conversions are linked in, use whisper's. */
float whisper_fp16_to_fp32(uint16_t h);
uint16_t whisper_fp32_to_fp16(float f);
#define Q5_0_FP16_TO_FP32 whisper_fp16_to_fp32
#define Q5_0_FP32_TO_FP16 whisper_fp32_to_fp16

void q5_0_to_float(const void *x, float *y, int64_t n);
void q5_0_from_float(const float *x, void *y, int64_t n);
void q5_0_vec_dot(int64_t n, float *s, const void *w, const void *a);
