/* SPDX-License-Identifier: MIT */
/* The traits table of every ggml tensor type and the half/bfloat16
 * conversions.  Sizes come from specs/gguf.md §2; kernels from type-*.c. */
#include <errno.h>
#include <string.h>

#include "kernels-impl.h"
#include "macro.h"
#include "tensor-type.h"

#define SIZE_ONLY(n, bs, ts, q) { .name = (n), .block_size = (bs), .type_size = (ts), .is_quantized = (q) }

static const type_traits traits[TYPE_COUNT] = {
        [TYPE_F32] = { .name = "f32", .block_size = 1, .type_size = 4,
                       .to_float = f32_to_float, .from_float = f32_from_float, .vec_dot_type = TYPE_F32 },
        [TYPE_F16] = { .name = "f16", .block_size = 1, .type_size = 2,
                       .to_float = f16_to_float, .from_float = f16_from_float, .vec_dot_type = TYPE_F16 },
        [TYPE_Q4_0] = { .name = "q4_0", .block_size = QK4_0, .type_size = sizeof(block_q4_0), .is_quantized = true,
                        .to_float = q4_0_to_float, .from_float = q4_0_from_float, .vec_dot_type = TYPE_Q8_0 },
        [TYPE_Q4_1] = SIZE_ONLY("q4_1", 32, 20, true),
        [TYPE_Q5_0] = { .name = "q5_0", .block_size = 32, .type_size = 22, .is_quantized = true,
                        .to_float = q5_0_to_float, .from_float = q5_0_from_float, .vec_dot_type = TYPE_Q8_0 },
        [TYPE_Q5_1] = SIZE_ONLY("q5_1", 32, 24, true),
        [TYPE_Q8_0] = { .name = "q8_0", .block_size = QK8_0, .type_size = sizeof(block_q8_0), .is_quantized = true,
                        .to_float = q8_0_to_float, .from_float = q8_0_from_float, .vec_dot_type = TYPE_Q8_0 },
        [TYPE_Q8_1] = SIZE_ONLY("q8_1", 32, 36, true),
        [TYPE_Q2_K] = SIZE_ONLY("q2_K", QK_K, 84, true),
        [TYPE_Q3_K] = SIZE_ONLY("q3_K", QK_K, 110, true),
        [TYPE_Q4_K] = { .name = "q4_K", .block_size = QK_K, .type_size = sizeof(block_q4_K), .is_quantized = true,
                        .to_float = q4_k_to_float, .vec_dot_type = TYPE_Q8_K },
        [TYPE_Q5_K] = { .name = "q5_K", .block_size = QK_K, .type_size = sizeof(block_q5_K), .is_quantized = true,
                        .to_float = q5_k_to_float, .vec_dot_type = TYPE_Q8_K },
        [TYPE_Q6_K] = { .name = "q6_K", .block_size = QK_K, .type_size = sizeof(block_q6_K), .is_quantized = true,
                        .to_float = q6_k_to_float, .vec_dot_type = TYPE_Q8_K },
        [TYPE_Q8_K] = { .name = "q8_K", .block_size = QK_K, .type_size = sizeof(block_q8_K), .is_quantized = true,
                        .to_float = q8_k_to_float, .from_float = q8_k_from_float, .vec_dot_type = TYPE_Q8_K },
        [16] = SIZE_ONLY("iq2_xxs", QK_K, 66, true),
        [17] = SIZE_ONLY("iq2_xs", QK_K, 74, true),
        [18] = SIZE_ONLY("iq3_xxs", QK_K, 98, true),
        [19] = SIZE_ONLY("iq1_s", QK_K, 50, true),
        [20] = SIZE_ONLY("iq4_nl", 32, 18, true),
        [21] = SIZE_ONLY("iq3_s", QK_K, 110, true),
        [22] = SIZE_ONLY("iq2_s", QK_K, 82, true),
        [23] = SIZE_ONLY("iq4_xs", QK_K, 136, true),
        [24] = SIZE_ONLY("i8", 1, 1, false),
        [25] = SIZE_ONLY("i16", 1, 2, false),
        [26] = SIZE_ONLY("i32", 1, 4, false),
        [27] = SIZE_ONLY("i64", 1, 8, false),
        [28] = SIZE_ONLY("f64", 1, 8, false),
        [29] = SIZE_ONLY("iq1_m", QK_K, 56, true),
        [TYPE_BF16] = { .name = "bf16", .block_size = 1, .type_size = 2,
                        .to_float = bf16_to_float, .from_float = bf16_from_float, .vec_dot_type = TYPE_BF16 },
        /* 31-33 and 36-38 were repacked Q4_0 variants, since removed. */
        [34] = SIZE_ONLY("tq1_0", QK_K, 54, true),
        [35] = SIZE_ONLY("tq2_0", QK_K, 66, true),
        [39] = SIZE_ONLY("mxfp4", 32, 17, true),
};

const type_traits *type_traits_get(uint32_t type) {
        if (type >= TYPE_COUNT || !traits[type].name)
                return NULL;
        return &traits[type];
}

bool type_is_supported(uint32_t type) {
        switch (type) {
        case TYPE_F32: case TYPE_F16: case TYPE_BF16: case TYPE_Q8_0:
        case TYPE_Q4_0: case TYPE_Q4_K: case TYPE_Q5_K: case TYPE_Q6_K:
        case TYPE_Q5_0:
                return true;
        default:
                return false;
        }
}

const char *type_name(uint32_t type) {
        const type_traits *t = type_traits_get(type);
        return t ? t->name : "?";
}

int type_row_size(uint32_t type, int64_t n, size_t *ret) {
        const type_traits *t = type_traits_get(type);
        size_t r;

        if (!t || n < 0 || n % t->block_size != 0)
                return -EINVAL;
        if (MUL_OVERFLOW((size_t)(n / t->block_size), (size_t)t->type_size, &r))
                return -EOVERFLOW;
        *ret = r;
        return 0;
}

/* --- IEEE binary16 <-> binary32 --------------------------------------- */

static inline float f32_from_bits(uint32_t u) {
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
}

static inline uint32_t f32_bits(float f) {
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        return u;
}

float fp16_to_fp32(uint16_t h) {
        uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1F, m = h & 0x3FF;

        if (e == 0) /* zero or subnormal: m * 2^-24, exact in float */
                return s ? -(float)m * 0x1p-24f : (float)m * 0x1p-24f;
        if (e == 31)
                return f32_from_bits(s | 0x7F800000u | (m << 13));
        return f32_from_bits(s | ((e + 112) << 23) | (m << 13));
}

/* Round to nearest even, as F16C's vcvtps2ph with imm 0 does: values too
 * large become inf, NaNs stay NaN (quiet, payload truncated). */
uint16_t fp32_to_fp16(float f) {
        uint32_t x = f32_bits(f);
        uint16_t sign = (x >> 16) & 0x8000;
        uint32_t ax = x & 0x7FFFFFFF;

        if (ax >= 0x7F800000) /* inf or NaN */
                return sign | 0x7C00 | (ax > 0x7F800000 ? 0x200 | ((ax >> 13) & 0x3FF) : 0);
        if (ax >= 0x477FF000) /* rounds to >= 65520: overflow */
                return sign | 0x7C00;
        if (ax < 0x38800000) { /* below the smallest normal half, 2^-14 */
                /* Scale so that the half subnormal unit 2^-24 becomes 1 and
                 * let the FPU round to nearest even. */
                float v = f32_from_bits(ax) * 0x1p24f;
                return sign | (uint16_t)round_even(v);
        }
        /* Normal: rebias the exponent and round the 13 dropped bits. */
        uint32_t r = ax - (112u << 23);
        uint32_t lsb = (r >> 13) & 1;
        r += 0xFFF + lsb;
        return sign | (uint16_t)(r >> 13);
}

uint16_t fp32_to_bf16(float f) {
        uint32_t x = f32_bits(f);

        if ((x & 0x7FFFFFFF) > 0x7F800000) /* NaN: keep it, force quiet */
                return (x >> 16) | 0x40;
        return (x + 0x7FFF + ((x >> 16) & 1)) >> 16;
}
