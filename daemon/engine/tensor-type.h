/* SPDX-License-Identifier: MIT */
/* Tensor element types (ggml ids, as stored in GGUF) and their traits.
 *
 * Every type ggml knows has its block size and byte size here, so that any
 * file can be validated; only the types we compute with have kernels.  The
 * kernels of a type live in one file each (type-q4_0.c, ...); SIMD variants
 * are chosen at run time (kernels.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
        TYPE_F32 = 0,
        TYPE_F16 = 1,
        TYPE_Q4_0 = 2,
        TYPE_Q4_1 = 3,
        TYPE_Q5_0 = 6,
        TYPE_Q5_1 = 7,
        TYPE_Q8_0 = 8,
        TYPE_Q8_1 = 9,
        TYPE_Q2_K = 10,
        TYPE_Q3_K = 11,
        TYPE_Q4_K = 12,
        TYPE_Q5_K = 13,
        TYPE_Q6_K = 14,
        TYPE_Q8_K = 15,
        TYPE_BF16 = 30,
        TYPE_COUNT = 40,
};

#define QK4_0 32
#define QK8_0 32
#define QK_K 256
#define K_SCALE_SIZE 12

/* Block layouts, byte-exact with the file (spec §3). */
typedef struct {
        uint16_t d;
        uint8_t qs[QK4_0 / 2];
} block_q4_0;
typedef struct {
        uint16_t d;
        int8_t qs[QK8_0];
} block_q8_0;
typedef struct {
        uint16_t d, dmin;
        uint8_t scales[K_SCALE_SIZE];
        uint8_t qs[QK_K / 2];
} block_q4_K;
typedef struct {
        uint16_t d, dmin;
        uint8_t scales[K_SCALE_SIZE];
        uint8_t qh[QK_K / 8];
        uint8_t qs[QK_K / 2];
} block_q5_K;
typedef struct {
        uint8_t ql[QK_K / 2];
        uint8_t qh[QK_K / 4];
        int8_t scales[QK_K / 16];
        uint16_t d;
} block_q6_K;
/* Activation type of the K-quants: float scale, int8 quants, sums of 16. */
typedef struct {
        float d;
        int8_t qs[QK_K];
        int16_t bsums[QK_K / 16];
} block_q8_K;

_Static_assert(sizeof(block_q4_0) == 18, "q4_0");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K");

/* Convert a row of n floats into blocks of this type (n a multiple of the
 * block size).  Used for activations (Q8_0, Q8_K, F16, BF16) and by the
 * model generator for weights. */
typedef void (*from_float_fn)(const float *x, void *y, int64_t n);
typedef void (*to_float_fn)(const void *x, float *y, int64_t n);
/* s = dot(row of n weights of this type, row of n activations of vec_dot_type) */
typedef void (*vec_dot_fn)(int64_t n, float *s, const void *w, const void *a);

typedef struct type_traits {
        const char *name;
        uint32_t block_size; /* elements per block */
        uint32_t type_size;  /* bytes per block */
        bool is_quantized;
        /* The following are NULL for types we only know the size of. */
        to_float_fn to_float;     /* scalar reference dequantization */
        from_float_fn from_float; /* scalar reference quantization */
        uint32_t vec_dot_type;    /* type activations are converted to */
} type_traits;

/* Traits of a type id, or NULL for an id no ggml version defines. */
const type_traits *type_traits_get(uint32_t type);
/* True when we have kernels for it (F32 F16 BF16 Q8_0 Q4_0 Q5_0 Q4_K Q5_K Q6_K). */
bool type_is_supported(uint32_t type);
const char *type_name(uint32_t type); /* "?" when unknown */
/* Bytes of one row of n elements; -EINVAL if n is not a multiple of the
 * block size or the type is unknown. */
int type_row_size(uint32_t type, int64_t n, size_t *ret);

/* IEEE half and bfloat16 conversions (exact, handle subnormals/inf/NaN). */
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f); /* round to nearest even, like F16C */
static inline float bf16_to_fp32(uint16_t h) {
        union { uint32_t u; float f; } v = { .u = (uint32_t)h << 16 };
        return v.f;
}
uint16_t fp32_to_bf16(float f); /* round to nearest even, NaN kept quiet */
