/* SPDX-License-Identifier: MIT */
/* Q5_0 (the quantization of many whisper.cpp model files): block layout.
 * The kernels are declared in kernels-impl.h and reached through the
 * traits and kernel tables. */
#pragma once

#include "tensor-type.h"

#define QK5_0 32

typedef struct {
        uint16_t d;
        uint8_t qh[4];
        uint8_t qs[QK5_0 / 2];
} block_q5_0;
_Static_assert(sizeof(block_q5_0) == 22, "q5_0");
