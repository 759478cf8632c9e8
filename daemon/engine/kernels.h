/* SPDX-License-Identifier: MIT */
/* CPU kernel variants: const tables of function pointers, one file each
 * (kernels-scalar.c, kernels-avx2.c, kernels-avx512.c), chosen at run time
 * from cpuid.  A NULL entry falls back to the scalar reference. */
#pragma once

#include "tensor-type.h"

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
} kernel_set;

extern const kernel_set kernels_scalar;
extern const kernel_set kernels_avx2;
extern const kernel_set kernels_avx512;

/* The best supported set with NULL entries filled from the scalar set.
 * SOTTO_KERNELS=scalar|avx2|avx512 in the environment forces one (when the
 * CPU supports it). */
const kernel_set *kernels_best(void);
/* A named set, completed the same way; NULL if unknown or unsupported. */
const kernel_set *kernels_get(const char *name);
