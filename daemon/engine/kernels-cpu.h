/* SPDX-License-Identifier: MIT */
/* What the CPU and the OS support, from cpuid and xgetbv, for choosing
 * kernels at run time. */
#pragma once

#include <stdbool.h>

typedef struct cpu_features {
        bool avx2, fma, f16c, bmi2;
        bool avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, avx512bf16, avx512vbmi;
        bool gfni;
        bool avx_vnni, amx_int8;
} cpu_features;

const cpu_features *cpu_features_get(void);
