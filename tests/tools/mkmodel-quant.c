/* SPDX-License-Identifier: MIT */
/* Round-to-nearest quantizers for the generator (specs/gguf.md §3).
 *
 * Each block type stores scales in f16 (or int8/6-bit under an f16 super
 * scale); the quants are computed against the scale as it will be read
 * back (after rounding to f16 and to 6/8 bits), so that the only error left
 * is the rounding of each weight to its grid. */
#include <math.h>
#include <string.h>

#include "mkmodel-quant.h"
#include "tensor-type.h"

/* ---- scalar conversions ---- */

uint16_t mk_fp32_to_fp16(float f) {
        uint32_t x;
        memcpy(&x, &f, sizeof x);
        uint16_t sign = (x >> 16) & 0x8000;
        uint32_t ax = x & 0x7fffffffu;

        if (ax >= 0x7f800000u) /* inf, NaN (kept quiet) */
                return sign | (ax > 0x7f800000u ? 0x7e00 : 0x7c00);
        if (ax >= 0x477ff000u) /* >= 65520 rounds to inf */
                return sign | 0x7c00;
        if (ax < 0x38800000u) { /* below 2^-14: a multiple of 2^-24 */
                float a;
                memcpy(&a, &ax, sizeof a);
                return sign | (uint16_t)nearbyintf(a * 16777216.0f); /* exact scaling, RNE */
        }
        uint32_t e = (ax >> 23) - 127 + 15, mant = ax & 0x7fffff;
        uint32_t h = (e << 10) | (mant >> 13), rest = mant & 0x1fff;
        if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
                h++; /* a carry into the exponent is still right */
        return sign | (uint16_t)h;
}

static float fp16_value(uint16_t h) {
        uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
        float v = e == 0 ? ldexpf((float)m, -24) : ldexpf((float)(1024 + m), (int)e - 25);
        return (h & 0x8000) ? -v : v; /* never inf/NaN here: scales are finite */
}

uint16_t mk_fp32_to_bf16(float f) {
        uint32_t x;
        memcpy(&x, &f, sizeof x);
        if ((x & 0x7fffffffu) > 0x7f800000u)
                return (uint16_t)((x >> 16) | 0x40);
        return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static int rnd(float v) { return (int)lrintf(v); }

/* ---- Q8_0: d = max|x| / 127, q = round(x / d) ---- */

static void quantize_q8_0(const float *x, block_q8_0 *y, int64_t nb) {
        for (int64_t b = 0; b < nb; b++, x += QK8_0) {
                float amax = 0;
                for (int i = 0; i < QK8_0; i++)
                        amax = fmaxf(amax, fabsf(x[i]));
                y[b].d = mk_fp32_to_fp16(amax / 127);
                float d = fp16_value(y[b].d), id = d > 0 ? 1 / d : 0;
                for (int i = 0; i < QK8_0; i++)
                        y[b].qs[i] = (int8_t)clampi(rnd(x[i] * id), -127, 127);
        }
}

/* ---- Q4_0: the value of largest magnitude maps to -8: d = that / -8 ---- */

static void quantize_q4_0(const float *x, block_q4_0 *y, int64_t nb) {
        for (int64_t b = 0; b < nb; b++, x += QK4_0) {
                float mx = 0;
                for (int i = 0; i < QK4_0; i++)
                        if (fabsf(x[i]) > fabsf(mx))
                                mx = x[i];
                y[b].d = mk_fp32_to_fp16(mx / -8);
                float d = fp16_value(y[b].d), id = d != 0 ? 1 / d : 0;
                uint8_t q[QK4_0];
                for (int i = 0; i < QK4_0; i++)
                        q[i] = (uint8_t)clampi(rnd(x[i] * id) + 8, 0, 15);
                for (int j = 0; j < QK4_0 / 2; j++) /* low nibbles 0..15, high 16..31 */
                        y[b].qs[j] = q[j] | (q[j + 16] << 4);
        }
}

/* ---- Q4_K / Q5_K: 8 sub-blocks of 32, value = d*sc*q - dmin*m ----
 *
 * Per sub-block: m = -min(0, min x), scale = (max x + m) / (levels - 1).
 * The scales and mins go to 6 bits under the f16 super-scales d and dmin
 * (d = max scale / 63, dmin = max m / 63); the quants are then rounded
 * against the scales as stored. */

static void pack_scales_k4(uint8_t s[K_SCALE_SIZE], const uint8_t sc[8], const uint8_t m[8]) {
        memset(s, 0, K_SCALE_SIZE);
        for (int j = 0; j < 4; j++) {
                s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
                s[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
                s[j + 8] = (sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4);
        }
}

/* Fills d, dmin, the packed scales and q[256] in 0..levels-1. */
static void quantize_k_asym(const float *x, int levels, uint16_t *d_out, uint16_t *dmin_out,
                            uint8_t scales[K_SCALE_SIZE], uint8_t q[QK_K]) {
        float scale[8], mins[8], max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
                const float *v = x + 32 * j;
                float lo = v[0], hi = v[0];
                for (int i = 1; i < 32; i++) {
                        lo = fminf(lo, v[i]);
                        hi = fmaxf(hi, v[i]);
                }
                lo = fminf(lo, 0);
                mins[j] = -lo;
                scale[j] = (hi - lo) / (levels - 1);
                max_scale = fmaxf(max_scale, scale[j]);
                max_min = fmaxf(max_min, mins[j]);
        }
        *d_out = mk_fp32_to_fp16(max_scale / 63);
        *dmin_out = mk_fp32_to_fp16(max_min / 63);
        float d = fp16_value(*d_out), dmin = fp16_value(*dmin_out);

        uint8_t sc[8], m[8];
        for (int j = 0; j < 8; j++) {
                sc[j] = (uint8_t)(d > 0 ? clampi(rnd(scale[j] / d), 0, 63) : 0);
                m[j] = (uint8_t)(dmin > 0 ? clampi(rnd(mins[j] / dmin), 0, 63) : 0);
                float ds = d * sc[j], dm = dmin * m[j], ids = ds > 0 ? 1 / ds : 0;
                for (int i = 0; i < 32; i++)
                        q[32 * j + i] = (uint8_t)clampi(rnd((x[32 * j + i] + dm) * ids), 0, levels - 1);
        }
        pack_scales_k4(scales, sc, m);
}

static void quantize_q4_K(const float *x, block_q4_K *y, int64_t nb) {
        uint8_t q[QK_K];
        for (int64_t b = 0; b < nb; b++, x += QK_K) {
                quantize_k_asym(x, 16, &y[b].d, &y[b].dmin, y[b].scales, q);
                /* chunk c of 64: qs[32c + l] = q[64c + l] | q[64c + 32 + l] << 4 */
                for (int c = 0; c < 4; c++)
                        for (int l = 0; l < 32; l++)
                                y[b].qs[32 * c + l] = q[64 * c + l] | (q[64 * c + 32 + l] << 4);
        }
}

static void quantize_q5_K(const float *x, block_q5_K *y, int64_t nb) {
        uint8_t q[QK_K];
        for (int64_t b = 0; b < nb; b++, x += QK_K) {
                quantize_k_asym(x, 32, &y[b].d, &y[b].dmin, y[b].scales, q);
                /* low 4 bits as in Q4_K; the 5th bit of element 64c + l is
                 * bit 2c of qh[l], of 64c + 32 + l bit 2c + 1 */
                memset(y[b].qh, 0, sizeof y[b].qh);
                for (int c = 0; c < 4; c++)
                        for (int l = 0; l < 32; l++) {
                                uint8_t a = q[64 * c + l], h = q[64 * c + 32 + l];
                                y[b].qs[32 * c + l] = (a & 0x0f) | ((h & 0x0f) << 4);
                                y[b].qh[l] |= ((a >> 4) << (2 * c)) | ((h >> 4) << (2 * c + 1));
                        }
        }
}

/* ---- Q6_K: 16 sub-blocks of 16, value = d * sc * (q - 32), sc int8 ----
 *
 * Per sub-block the value of largest magnitude maps to -32 (s = it / -32);
 * the s go to int8 under d = max|s| / 127. */

static void quantize_q6_K(const float *x, block_q6_K *y, int64_t nb) {
        for (int64_t b = 0; b < nb; b++, x += QK_K) {
                float s[16], smax = 0;
                for (int j = 0; j < 16; j++) {
                        float mx = 0;
                        for (int i = 0; i < 16; i++)
                                if (fabsf(x[16 * j + i]) > fabsf(mx))
                                        mx = x[16 * j + i];
                        s[j] = mx / -32;
                        smax = fmaxf(smax, fabsf(s[j]));
                }
                y[b].d = mk_fp32_to_fp16(smax / 127);
                float d = fp16_value(y[b].d);

                memset(y[b].ql, 0, sizeof y[b].ql);
                memset(y[b].qh, 0, sizeof y[b].qh);
                for (int j = 0; j < 16; j++) {
                        y[b].scales[j] = (int8_t)(d > 0 ? clampi(rnd(s[j] / d), -127, 127) : 0);
                        float ds = d * y[b].scales[j], ids = ds != 0 ? 1 / ds : 0;
                        for (int i = 0; i < 16; i++) {
                                int e = 16 * j + i;
                                int q = clampi(rnd(x[e] * ids), -32, 31) + 32;
                                /* element e = 128h + 32k + l: low nibble in
                                 * ql[64h + l + 32(k&1)] (high nibble for k >= 2),
                                 * top two bits at 2k of qh[32h + l] */
                                int h = e / 128, k = (e % 128) / 32, l = e % 32;
                                uint8_t *pl = &y[b].ql[64 * h + l + 32 * (k & 1)];
                                *pl |= (uint8_t)((q & 0x0f) << (k >= 2 ? 4 : 0));
                                y[b].qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * k));
                        }
                }
        }
}

/* ---- dispatch ---- */

bool mk_type_writable(uint32_t type) { return mk_type_size(type) > 0; }

const char *mk_type_name(uint32_t type) {
        switch (type) {
        case TYPE_F32: return "F32";
        case TYPE_F16: return "F16";
        case TYPE_BF16: return "BF16";
        case TYPE_Q8_0: return "Q8_0";
        case TYPE_Q4_0: return "Q4_0";
        case TYPE_Q4_K: return "Q4_K";
        case TYPE_Q5_K: return "Q5_K";
        case TYPE_Q6_K: return "Q6_K";
        default: return "?";
        }
}

uint32_t mk_type_block(uint32_t type) {
        switch (type) {
        case TYPE_F32: case TYPE_F16: case TYPE_BF16: return 1;
        case TYPE_Q8_0: return QK8_0;
        case TYPE_Q4_0: return QK4_0;
        case TYPE_Q4_K: case TYPE_Q5_K: case TYPE_Q6_K: return QK_K;
        default: return 0;
        }
}

uint32_t mk_type_size(uint32_t type) {
        switch (type) {
        case TYPE_F32: return 4;
        case TYPE_F16: case TYPE_BF16: return 2;
        case TYPE_Q8_0: return sizeof(block_q8_0);
        case TYPE_Q4_0: return sizeof(block_q4_0);
        case TYPE_Q4_K: return sizeof(block_q4_K);
        case TYPE_Q5_K: return sizeof(block_q5_K);
        case TYPE_Q6_K: return sizeof(block_q6_K);
        default: return 0;
        }
}

size_t mk_row_size(uint32_t type, int64_t n) {
        uint32_t blk = mk_type_block(type);
        if (blk == 0 || n <= 0 || n % blk != 0)
                return 0;
        return (size_t)(n / blk) * mk_type_size(type);
}

void mk_quantize_row(uint32_t type, const float *x, void *y, int64_t n) {
        switch (type) {
        case TYPE_F32:
                memcpy(y, x, (size_t)n * sizeof(float));
                break;
        case TYPE_F16:
                for (int64_t i = 0; i < n; i++)
                        ((uint16_t *)y)[i] = mk_fp32_to_fp16(x[i]);
                break;
        case TYPE_BF16:
                for (int64_t i = 0; i < n; i++)
                        ((uint16_t *)y)[i] = mk_fp32_to_bf16(x[i]);
                break;
        case TYPE_Q8_0: quantize_q8_0(x, y, n / QK8_0); break;
        case TYPE_Q4_0: quantize_q4_0(x, y, n / QK4_0); break;
        case TYPE_Q4_K: quantize_q4_K(x, y, n / QK_K); break;
        case TYPE_Q5_K: quantize_q5_K(x, y, n / QK_K); break;
        case TYPE_Q6_K: quantize_q6_K(x, y, n / QK_K); break;
        }
}
