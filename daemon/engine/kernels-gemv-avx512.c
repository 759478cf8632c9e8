/* SPDX-License-Identifier: MIT */
/* Decoding kernels for AVX-512 VNNI + VBMI: one token through many rows.
 *
 * Generation streams every weight once per token; at two threads the dot
 * kernels of kernels-avx512.c ran at about the memory's speed in L2, so
 * they could not hide the memory's latency.  These do less work per weight
 * byte by moving everything that depends only on the activations out of
 * the row loop: gemv_prep converts the token once per product into a
 * layout made for the weight type's blocks (the int8 values in the order
 * the unpacked weights come out, the activation scales as float lanes, and
 * the offset terms as the int32 lanes vpdpbusd starts from), and the row
 * loop is left with loading, unpacking and one multiply-add per lane.
 *
 * The activations are quantized exactly as for the dot kernels (ggml's
 * Q8_0), so results differ from vec_dot only by float summation order. */
#include <immintrin.h>

#include "kernels-cpu.h"
#include "kernels-impl.h"
#include "kernels.h"
#include "macro.h"

#define VBMI __attribute__((target("avx512vbmi,gfni")))
#define PREFETCH_AHEAD 2048

/* GFNI moves the Q4 high nibbles and Q6_K's bit pairs; every CPU with
 * AVX-512 VBMI but one (Cannon Lake) has it. */
bool gemv_avx512_supported(void) {
        const cpu_features *f = cpu_features_get();
        return f->avx512vbmi && f->gfni;
}

/* The four-row kernels take one row from each quarter of a call's rows
 * (j, q + j, 2q + j, 3q + j), not four neighbours: each of the four then
 * reads one long sequential stream, and a prefetch a fixed distance ahead
 * in the same stream runs into the next row of that quarter.  With
 * neighbouring rows the only distance that did not land in a row already
 * being read was the next group, four rows ahead: too far for 2048-wide
 * rows, too near for 8192-wide ones.  Measured from memory at two threads
 * (Q4_K, 2048 wide): 74 % of the read bandwidth with neighbours, 95 % with
 * quarters (REFERENCE.md, run 11). */
typedef void (*rows_x4_fn)(int64_t n, const uint8_t *const w[4], const void *act, float y[4]);

static void gemv_quarters(rows_x4_fn rows_x4, int64_t n, const uint8_t *w, size_t row_bytes, int64_t n_rows,
                          const void *act, float *y) {
        const int64_t q = gemv_quarter(n_rows, row_bytes);
        float out[4];

        /* The loop prefetches PREFETCH_AHEAD on: ask for the first
         * PREFETCH_AHEAD bytes of each stream at once, rather than as the
         * loads miss one block after the other.  A product starts its
         * streams cold once per thread and again at every chunk of its
         * tail (E2B, tokens alternating: 1.007; twice as far: 1.000). */
        if (q > 0)
                for (size_t l = 0; l < MIN((size_t)PREFETCH_AHEAD, (size_t)q * row_bytes); l += 64)
                        for (int k = 0; k < 4; k++)
                                _mm_prefetch((const char *)w + (size_t)(k * q) * row_bytes + l, _MM_HINT_T0);
        for (int64_t j = 0; j < q; j++) {
                const uint8_t *x[4];
                for (int k = 0; k < 4; k++)
                        x[k] = w + (size_t)(k * q + j) * row_bytes;
                rows_x4(n, x, act, out);
                for (int k = 0; k < 4; k++)
                        y[k * q + j] = out[k];
        }
        /* the last one to seven rows: groups that repeat the last row */
        for (int64_t r0 = 4 * q; r0 < n_rows; r0 += 4) {
                const uint8_t *x[4];
                for (int k = 0; k < 4; k++)
                        x[k] = w + (size_t)MIN(r0 + k, n_rows - 1) * row_bytes;
                rows_x4(n, x, act, out);
                for (int64_t r = r0; r < MIN(r0 + 4, n_rows); r++)
                        y[r] = out[r - r0];
        }
}

/* Each of four row streams, `lines` cache lines from PREFETCH_AHEAD on.  A
 * macro, unrolled: written as a static inline function, gcc 12 left no
 * prefetch in the object at all. */
#define PREFETCH_X4(w0, w1, w2, w3, lines)                                                                \
        do {                                                                                              \
                _Pragma("GCC unroll 4") for (int l_ = 0; l_ < (lines); l_++) {                          \
                        _mm_prefetch((const char *)(w0) + PREFETCH_AHEAD + 64 * l_, _MM_HINT_T0);         \
                        _mm_prefetch((const char *)(w1) + PREFETCH_AHEAD + 64 * l_, _MM_HINT_T0);         \
                        _mm_prefetch((const char *)(w2) + PREFETCH_AHEAD + 64 * l_, _MM_HINT_T0);         \
                        _mm_prefetch((const char *)(w3) + PREFETCH_AHEAD + 64 * l_, _MM_HINT_T0);         \
                }                                                                                         \
        } while (0)

/* The int32 sums of four rows into one vector, lanes 0 1 2 3 of each
 * 128-bit lane = rows 0 1 2 3, the four sums of a 128-bit lane of a row
 * added: in-lane unpacks, vshufps and adds run on any of the four vector
 * pipes, so the rows take one convert and one multiply-add instead of four
 * of each (and of the permutes that spread each row's scale).  The sums
 * stay exact.  rows_in_lanes takes pairs already in lanes x x y y. */
static inline __m512i rows_in_lanes(__m512i s01, __m512i s23) {
        const __m512 a = _mm512_castsi512_ps(s01), b = _mm512_castsi512_ps(s23);
        return _mm512_add_epi32(_mm512_castps_si512(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))),
                                _mm512_castps_si512(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))));
}

static inline __m512i rows_x4(__m512i s0, __m512i s1, __m512i s2, __m512i s3) {
        return rows_in_lanes(_mm512_add_epi32(_mm512_unpacklo_epi64(s0, s1), _mm512_unpackhi_epi64(s0, s1)),
                             _mm512_add_epi32(_mm512_unpacklo_epi64(s2, s3), _mm512_unpackhi_epi64(s2, s3)));
}

/* Lane 0 of each 128-bit lane of f, as four floats. */
static inline __m128 lane0_x4(__m512 f) {
        return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), f));
}

/* y[r] = the sum of the lanes of fr, added pair by pair as
 * _mm512_reduce_add_ps adds them (halves, quarters, then within a 128-bit
 * lane 0 + 2, 1 + 3, and those two), for the four rows at once: the
 * same sums, bit for bit, in a dozen instructions instead of forty and
 * four scalar stores (a call of a short row's four rows, 64-wide Q8_0,
 * spent most of its time here). */
static inline void reduce_x4(float y[4], __m512 f0, __m512 f1, __m512 f2, __m512 f3) {
        /* [f0 | f1] halves: lanes i and i + 8 of each row */
        __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(f0, f1, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(f0, f1, _MM_SHUFFLE(3, 2, 3, 2)));
        __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(f2, f3, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(f2, f3, _MM_SHUFFLE(3, 2, 3, 2)));
        /* 128-bit lane r: row r's lanes j and j + 4 */
        __m512 t = _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
        __m512 u = _mm512_add_ps(t, _mm512_shuffle_ps(t, t, _MM_SHUFFLE(1, 0, 3, 2)));
        _mm_storeu_ps(y, lane0_x4(_mm512_add_ps(u, _mm512_shuffle_ps(u, u, _MM_SHUFFLE(1, 1, 1, 1)))));
}

/* y[r] = (f[r] + f[4 + r]) + (f[8 + r] + f[12 + r]) */
static inline __m128 sum_x4_ps(__m512 f) {
        __m512 h = _mm512_add_ps(f, _mm512_shuffle_f32x4(f, f, _MM_SHUFFLE(2, 3, 0, 1)));
        __m512 q = _mm512_add_ps(h, _mm512_shuffle_f32x4(h, h, _MM_SHUFFLE(1, 0, 3, 2)));
        return _mm512_castps512_ps128(q);
}

static inline void sum_x4(float y[4], __m512 f) {
        _mm_storeu_ps(y, sum_x4_ps(f));
}

/* --- Q4_0 ----------------------------------------------------------------
 * Groups of four blocks (128 weights, 72 bytes).  The 64 bytes of nibbles
 * give two vectors: low nibbles = elements 0..15 of blocks 0..3, high
 * nibbles = elements 16..31.  Per group the prepared activations hold:
 *   lo[64], hi[64]  int8, in that order;
 *   off[16]         int32: -8 * the sum of the 8 activations lane l meets
 *                   (lane l belongs to block l/4);
 *   da[16]          float: the activation scale of block l/4. */
typedef struct gq4_0 {
        int8_t lo[64], hi[64];
        int32_t off[16];
        float da[16];
} gq4_0;
_Static_assert(sizeof(gq4_0) == 256, "gq4_0");

static void prep_q4_0(const float *x, void *vact, int64_t n) {
        gq4_0 *g = vact;
        const __m512i ones = _mm512_set1_epi8(1);

        for (int64_t i = 0; i < n / 128; i++, x += 128) {
                block_q8_0 b[4];
                kernels_avx512.from_float[TYPE_Q8_0](x, b, 128);
                for (int k = 0; k < 4; k++) {
                        memcpy(g[i].lo + 16 * k, b[k].qs, 16);
                        memcpy(g[i].hi + 16 * k, b[k].qs + 16, 16);
                        float d = fp16_to_fp32(b[k].d);
                        for (int l = 0; l < 4; l++)
                                g[i].da[4 * k + l] = d;
                }
                __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_loadu_si512(g[i].lo));
                s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512(g[i].hi));
                _mm512_storeu_si512(g[i].off, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s, 3)));
        }
}

/* One row of four: its int32 sums p (lane l: block l/4) against the
 * shared activations alo, ahi, off (high nibbles moved down by one
 * vgf2p8affineqb); r0 keeps the group's first 64 bytes (the scales of its
 * blocks). */
#define Q40_ROW(w, r0, p)                                                                                 \
        do {                                                                                              \
                r0 = _mm512_loadu_si512(w);                                                               \
                __m512i q = _mm512_permutex2var_epi8(r0, qi, _mm512_loadu_si512((w) + 8));                \
                __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_gf2p8affine_epi64_epi8(q, hi4, 0);          \
                p = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(off, lo, alo), hi, ahi);                      \
        } while (0)

VBMI static void gemv_q4_0_x4(int64_t n, const uint8_t *const w[4], const void *vact, float y[4]) {
        static const uint8_t qidx[64] __attribute__((aligned(64))) = {
                2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
                20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
                38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53,
                56, 57, 58, 59, 60, 61, 62, 63, 120, 121, 122, 123, 124, 125, 126, 127,
        };
        /* the fp16 scale of row r, block c, for lane 4c + r of rows_x4():
         * byte 18c of row r's r0, from rows 0, 1 (2, 3) with one vpermt2b */
        static const uint8_t didx[64] __attribute__((aligned(64))) = {
                0, 1, 64, 65, 0, 1, 64, 65, 18, 19, 82, 83, 18, 19, 82, 83,
                36, 37, 100, 101, 36, 37, 100, 101, 54, 55, 118, 119, 54, 55, 118, 119,
        };
        const __m512i qi = _mm512_load_si512(qidx), di = _mm512_load_si512(didx), m4 = _mm512_set1_epi8(0x0F);
        /* the bit matrix of x >> 4 for vgf2p8affineqb (as for Q4_K) */
        const __m512i hi4 = _mm512_set1_epi64(0x1020408000000000ll);
        const gq4_0 *g = vact;
        const uint8_t *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
        __m512 facc = _mm512_setzero_ps();

        for (int64_t i = 0; i < n / 128; i++, w0 += 72, w1 += 72, w2 += 72, w3 += 72) {
                PREFETCH_X4(w0, w1, w2, w3, 2);
                const __m512i off = _mm512_load_si512(g[i].off), alo = _mm512_load_si512(g[i].lo),
                              ahi = _mm512_load_si512(g[i].hi);
                __m512i r0, r1, r2, r3, p0, p1, p2, p3;
                Q40_ROW(w0, r0, p0);
                Q40_ROW(w1, r1, p1);
                Q40_ROW(w2, r2, p2);
                Q40_ROW(w3, r3, p3);
                /* halves 4c + r: rows 0, 1 from the first, 2, 3 from the second */
                __m512i h = _mm512_mask_blend_epi8(0xF0F0F0F0ull, _mm512_permutex2var_epi8(r0, di, r1),
                                                   _mm512_permutex2var_epi8(r2, di, r3));
                __m512 dw = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(h)), _mm512_load_ps(g[i].da));
                facc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(rows_x4(p0, p1, p2, p3)), dw, facc);
        }
        sum_x4(y, facc);
}
#undef Q40_ROW

VBMI static void gemv_q4_0(int64_t n, const void *vw, size_t row_bytes, int64_t n_rows, const void *vact, float *y) {
        gemv_quarters(gemv_q4_0_x4, n, vw, row_bytes, n_rows, vact, y);
}

/* --- Q8_0 ----------------------------------------------------------------
 * Groups of two blocks (64 weights, 68 bytes).  Weights are biased by 128
 * to unsigned bytes (x ^ 0x80); the bias comes back through the start
 * value -128 * sum(activations of the lane). */
typedef struct gq8_0 {
        int8_t a[64];
        int32_t off[16];
        float da[16];
} gq8_0;
_Static_assert(sizeof(gq8_0) == 192, "gq8_0");

static void prep_q8_0(const float *x, void *vact, int64_t n) {
        gq8_0 *g = vact;
        const __m512i ones = _mm512_set1_epi8(1);

        for (int64_t i = 0; i < n / 64; i++, x += 64) {
                block_q8_0 b[2];
                kernels_avx512.from_float[TYPE_Q8_0](x, b, 64);
                for (int k = 0; k < 2; k++) {
                        memcpy(g[i].a + 32 * k, b[k].qs, 32);
                        float d = fp16_to_fp32(b[k].d);
                        for (int l = 0; l < 8; l++)
                                g[i].da[8 * k + l] = d;
                }
                __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_loadu_si512(g[i].a));
                _mm512_storeu_si512(g[i].off, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s, 7)));
        }
}

/* One row of four: shared activations a8, off, da. */
#define Q80_ROW(w, acc)                                                                                   \
        do {                                                                                              \
                __m512i r0 = _mm512_loadu_si512(w), r1 = _mm512_loadu_si512((w) + 4);                   \
                __m512i q = _mm512_xor_si512(_mm512_permutex2var_epi8(r0, qi, r1), bias);                 \
                __m512i p = _mm512_dpbusd_epi32(off, q, a8);                                              \
                __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi8(si, r0)));     \
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, da), acc);                 \
        } while (0)

VBMI static void gemv_q8_0_x4(int64_t n, const uint8_t *const w[4], const void *vact, float y[4]) {
        static const uint8_t qidx[64] __attribute__((aligned(64))) = {
                2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
                18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33,
                36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,
                52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 124, 125, 126, 127,
        };
        static const uint8_t sidx[64] __attribute__((aligned(64))) = {
                0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                34, 35, 34, 35, 34, 35, 34, 35, 34, 35, 34, 35, 34, 35, 34, 35,
        };
        const __m512i qi = _mm512_load_si512(qidx), si = _mm512_load_si512(sidx), bias = _mm512_set1_epi8((char)0x80);
        const gq8_0 *g = vact;
        const uint8_t *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
        __m512 f0 = _mm512_setzero_ps(), f1 = f0, f2 = f0, f3 = f0;

        for (int64_t i = 0; i < n / 64; i++, w0 += 68, w1 += 68, w2 += 68, w3 += 68) {
                PREFETCH_X4(w0, w1, w2, w3, 2);
                const __m512i off = _mm512_load_si512(g[i].off), a8 = _mm512_load_si512(g[i].a);
                const __m512 da = _mm512_load_ps(g[i].da);
                Q80_ROW(w0, f0);
                Q80_ROW(w1, f1);
                Q80_ROW(w2, f2);
                Q80_ROW(w3, f3);
        }
        reduce_x4(y, f0, f1, f2, f3);
}
#undef Q80_ROW

VBMI static void gemv_q8_0(int64_t n, const void *vw, size_t row_bytes, int64_t n_rows, const void *vact, float *y) {
        gemv_quarters(gemv_q8_0_x4, n, vw, row_bytes, n_rows, vact, y);
}

/* --- K-quants: activations as Q8_K blocks ------------------------------- */

/* Q4_K: four rows at a time, sharing the activation loads and the
 * unpacking of the scales.  A block's 128 bytes of nibbles are two 64-byte
 * loads v0, v1 (32-byte chunk k = sub-blocks 2k, low nibbles, and 2k+1,
 * high).  The in-lane qword unpacks U = unpacklo(v0, v1) and
 * V = unpackhi(v0, v1) (any of the four vector pipes, unlike a 128-bit
 * shuffle) put in dwords 0-1 of 128-bit lane c bytes of v0, chunk c/2, and
 * in dwords 2-3 bytes of v1, chunk 2 + c/2, the same in U and V.  vpdpbusd
 * then sums, per int32 lane, products of one sub-block only: even
 * sub-blocks into one accumulator (low nibbles of U and V, masked), odd
 * into another (high nibbles, moved down by vgf2p8affineqb: one uop where
 * a shift and a mask, or a mask and a shift of the sums, took two).  Each
 * lane holds at most 8 * 15 * 127, so two rows share the int16 packs:
 * packs(even of row x, even of row y) has, in 128-bit lane c, four words
 * of x then four of y (of each four, two of sub-block 2 (c/2), two of
 * 4 + 2 (c/2); the odd sums one sub-block higher); one vpmaddwd and one vpdpwssd apply both rows' scales and leave
 * int32 lanes x x y y in each 128-bit lane, exact.  rows_in_lanes() then
 * joins the two pairs, so a super-block takes one convert and one
 * multiply-add by d*D for the four rows.
 * The prepared activations: the int8 values in the order of the low
 * nibbles of U, of V, the high nibbles of U, of V; the sums of the eight
 * sub-block pairs (for the mins; broadcast to the four rows when loaded);
 * the scale once.  320 bytes per 256 values, five cache lines, instead of
 * 384 with the sums stored four times and the scale sixteen: on wide rows
 * the activations are evicted from L1 between two reads (see Q6_K). */
typedef struct gq4_k {
        int8_t qs[4][64];
        int16_t bs[8];
        float d;
        uint8_t pad[44]; /* whole cache lines: qs stays aligned */
} gq4_k;
_Static_assert(sizeof(gq4_k) == 320, "gq4_k");

/* Byte p of vector v: element t of the nibble order (low nibbles,
 * bytes t: elements 64 (t / 32) + t % 32; high nibbles 32 further) with
 * t = 64 ((p / 8) % 2) + 16 (p / 16) + 8 (v % 2) + p % 8, that is b.qs
 * byte 128 ((p / 8) % 2) + idx0[p] + {0, 8, 32, 40}[v]: one vpermt2b of
 * each half of the 256 values and a blend (one byte at a time this took
 * 2.3 us for a 2048-wide row, the other threads waiting). */
VBMI static void prep_q4_k(const float *x, void *vact, int64_t n) {
        static const uint8_t idx0[64] __attribute__((aligned(64))) = {
                0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7,
                16, 17, 18, 19, 20, 21, 22, 23, 16, 17, 18, 19, 20, 21, 22, 23,
                64, 65, 66, 67, 68, 69, 70, 71, 64, 65, 66, 67, 68, 69, 70, 71,
                80, 81, 82, 83, 84, 85, 86, 87, 80, 81, 82, 83, 84, 85, 86, 87,
        };
        static const int8_t add[4] = { 0, 8, 32, 40 };
        const __mmask64 second_half = 0xFF00FF00FF00FF00ull;
        gq4_k *g = vact;

        for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
                block_q8_K b;
                kernels_avx512.from_float[TYPE_Q8_K](x, &b, QK_K);
                const __m512i l0 = _mm512_loadu_si512(b.qs), l1 = _mm512_loadu_si512(b.qs + 64);
                const __m512i h0 = _mm512_loadu_si512(b.qs + 128), h1 = _mm512_loadu_si512(b.qs + 192);
                for (int v = 0; v < 4; v++) {
                        __m512i idx = _mm512_add_epi8(_mm512_load_si512(idx0), _mm512_set1_epi8(add[v]));
                        _mm512_storeu_si512(g[i].qs[v],
                                            _mm512_mask_blend_epi8(second_half, _mm512_permutex2var_epi8(l0, idx, l1),
                                                                   _mm512_permutex2var_epi8(h0, idx, h1)));
                }
                for (int j = 0; j < 8; j++)
                        g[i].bs[j] = (int16_t)(b.bsums[2 * j] + b.bsums[2 * j + 1]);
                g[i].d = b.d;
                memset(g[i].pad, 0, sizeof g[i].pad);
        }
}

/* The 6-bit scales and mins of four Q4_K blocks (spec 3.3), one per
 * 128-bit lane (q: the first 16 bytes of each block, d and dmin, then the
 * 12 bytes of scales): scales in bytes 0..7 of the lane, mins in 8..15, as
 * k_scale_min() unpacks them. */
static inline __m512i k_scales_mins_x4(__m512i q) {
        /* low bits: sc0-3 = q4-7, sc4-7 = q12-15 (low nibble), m0-3 = q8-11,
         * m4-7 = q12-15 (high nibble); high bits of sc4-7 / m4-7: top two
         * bits of q4-7 / q8-11.  Whole dwords move, so vpshufd (any
         * pipe) instead of vpshufb (shuffle pipes) */
        const __m512i ml = _mm512_broadcast_i32x4(_mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15));
        const __m512i mh = _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
        __m512i a = _mm512_shuffle_epi32(q, _MM_PERM_DCDB), b = _mm512_shuffle_epi32(q, _MM_PERM_CABA);
        a = _mm512_mask_blend_epi8(0xF000F000F000F000ull, a, _mm512_srli_epi16(a, 4));
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(b, 2), mh);
        return _mm512_ternarylogic_epi32(a, ml, hi, 0xEA); /* (a & ml) | hi */
}

/* The even and odd sub-block sums (e, o) of super-block x of one row
 * against activations a0..a3; hi4: the bit matrix of x >> 4. */
#define Q4K_EO(x, e, o)                                                                                             \
        do {                                                                                                        \
                __m512i v0 = _mm512_loadu_si512((x)->qs), v1 = _mm512_loadu_si512((x)->qs + 64);                 \
                __m512i A = _mm512_unpacklo_epi64(v0, v1), B = _mm512_unpackhi_epi64(v0, v1);                     \
                e = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(A, m4), a0);                     \
                e = _mm512_dpbusd_epi32(e, _mm512_and_si512(B, m4), a1);                                          \
                o = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_gf2p8affine_epi64_epi8(A, hi4, 0), a2);    \
                o = _mm512_dpbusd_epi32(o, _mm512_gf2p8affine_epi64_epi8(B, hi4, 0), a3);                         \
        } while (0)

/* Two rows x, y of a group of four: their sums scaled (scale bytes picked
 * from sm by se for the even sub-blocks, so for the odd), as int32 lanes
 * x x y y in s. */
#define Q4K_PAIR(x, y, s, se, so)                                                                                   \
        do {                                                                                                        \
                __m512i ex, ox, ey, oy;                                                                             \
                Q4K_EO(x, ex, ox);                                                                                  \
                Q4K_EO(y, ey, oy);                                                                                  \
                s = _mm512_madd_epi16(_mm512_packs_epi32(ex, ey), _mm512_maskz_permutexvar_epi8(even, (se), sm));     \
                s = _mm512_dpwssd_epi32(s, _mm512_packs_epi32(ox, oy), _mm512_maskz_permutexvar_epi8(even, (so), sm)); \
        } while (0)

/* The scales and mins (sm) and d, dmin times D (dd = d0 dmin0 d1 dmin1 ...)
 * of super-block j of the four rows: the first 16 bytes of each block, d
 * and dmin then the scales, one block per 128-bit lane. */
#define Q4K_HEAD(j, sm, dd)                                                                                         \
        do {                                                                                                        \
                __m512i q_ = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(x0 + (j))));                \
                q_ = _mm512_inserti32x4(q_, _mm_loadu_si128((const __m128i *)(x1 + (j))), 1);                     \
                q_ = _mm512_inserti32x4(q_, _mm_loadu_si128((const __m128i *)(x2 + (j))), 2);                     \
                q_ = _mm512_inserti32x4(q_, _mm_loadu_si128((const __m128i *)(x3 + (j))), 3);                     \
                sm = k_scales_mins_x4(q_);                                                                          \
                /* d, dmin: the first dword of each lane */                                                         \
                __m128i h_ = _mm512_castsi512_si128(_mm512_permutexvar_epi32(first, q_));                              \
                dd = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_cvtph_ps(h_), _mm256_set1_ps(a[j].d)));           \
        } while (0)

VBMI static void gemv_q4_k_x4(int64_t n, const uint8_t *const w[4], const void *vact, float y[4]) {
        const int64_t nb = n / QK_K;
        const block_q4_K *x0 = (const block_q4_K *)w[0], *x1 = (const block_q4_K *)w[1], *x2 = (const block_q4_K *)w[2], *x3 = (const block_q4_K *)w[3];
        const gq4_k *a = vact;
        /* vgf2p8affineqb: byte 7 - i of the matrix selects the bits that
         * make bit i; bits 0-3 from 4-7 */
        const __m512i m4 = _mm512_set1_epi8(0x0F), hi4 = _mm512_set1_epi64(0x1020408000000000ll);
        const __mmask64 even = 0x5555555555555555ull;
        /* word i of packs(rows 0, 1): the scale of row (i % 8) / 4, even
         * sub-block 2 (i / 16) + 4 ((i % 4) / 2), byte 16 row + sub-block of
         * sm; +1 for the odd ones, +32 for rows 2, 3.  For the mins, word
         * 8r + j: byte 16r + 8 + j */
        const __m512i se01 = _mm512_set_epi16(22, 22, 18, 18, 6, 6, 2, 2, 22, 22, 18, 18, 6, 6, 2, 2, 20, 20, 16, 16, 4,
                                              4, 0, 0, 20, 20, 16, 16, 4, 4, 0, 0);
        const __m512i so01 = _mm512_add_epi16(se01, _mm512_set1_epi16(1)),
                      se23 = _mm512_add_epi16(se01, _mm512_set1_epi16(32)),
                      so23 = _mm512_add_epi16(se01, _mm512_set1_epi16(33));
        const __m512i mi = _mm512_set_epi16(63, 62, 61, 60, 59, 58, 57, 56, 47, 46, 45, 44, 43, 42, 41, 40, 31, 30, 29,
                                            28, 27, 26, 25, 24, 15, 14, 13, 12, 11, 10, 9, 8);
        /* from dd: d of the rows, dmin of the mins lanes */
        const __m512i first = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
        const __m512i di = _mm512_set4_epi32(6, 4, 2, 0);
        const __m512i dmi = _mm512_set_epi32(7, 7, 7, 7, 5, 5, 5, 5, 3, 3, 3, 3, 1, 1, 1, 1);
        __m512 facc = _mm512_setzero_ps(), macc = facc;

        /* the scales and d of the next super-block are unpacked one
         * iteration ahead: their latency no longer delays the rows' */
        __m512i smn;
        __m512 ddn;
        Q4K_HEAD(0, smn, ddn);
        for (int64_t i = 0; i < nb; i++) {
                const block_q4_K *b0 = x0 + i, *b1 = x1 + i, *b2 = x2 + i, *b3 = x3 + i;
                PREFETCH_X4(b0, b1, b2, b3, 3);
                const __m512i sm = smn;
                const __m512 dd = ddn;
                if (i + 1 < nb) /* one block (256-wide rows): no second head */
                        Q4K_HEAD(i + 1, smn, ddn);
                /* mins: sum_j m_j * bs_j, four int32 partial sums per row */
                __m512i pm = _mm512_madd_epi16(_mm512_maskz_permutexvar_epi8(even, mi, sm), _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)a[i].bs)));
                macc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(pm), _mm512_permutexvar_ps(dmi, dd), macc);
                const __m512i a0 = _mm512_load_si512(a[i].qs[0]), a1 = _mm512_load_si512(a[i].qs[1]),
                              a2 = _mm512_load_si512(a[i].qs[2]), a3 = _mm512_load_si512(a[i].qs[3]);
                __m512i s01, s23;
                Q4K_PAIR(b0, b1, s01, se01, so01);
                Q4K_PAIR(b2, b3, s23, se23, so23);
                facc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(rows_in_lanes(s01, s23)), _mm512_permutexvar_ps(di, dd), facc);
        }
        /* row r: lanes 4r..4r+3 of macc (mins), added (0 + 1) + (2 + 3) */
        __m512 m = _mm512_add_ps(macc, _mm512_shuffle_ps(macc, macc, _MM_SHUFFLE(2, 3, 0, 1)));
        m = _mm512_add_ps(m, _mm512_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
        _mm_storeu_ps(y, _mm_sub_ps(sum_x4_ps(facc), lane0_x4(m)));
}
#undef Q4K_HEAD
#undef Q4K_PAIR
#undef Q4K_EO

VBMI static void gemv_q4_k(int64_t n, const void *vw, size_t row_bytes, int64_t n_rows, const void *vact, float *y) {
        gemv_quarters(gemv_q4_k_x4, n, vw, row_bytes, n_rows, vact, y);
}

/* Q6_K: four rows at a time as for Q4_K.  One 128-bit shuffle of the two
 * 64-byte halves of ql gives L0 = [ql 0..31 | ql 64..95] and
 * L1 = [ql 32..63 | ql 96..127], which line up byte for byte with the 64
 * bytes of qh: the four 6-bit vectors are the low and high nibbles of L0
 * and L1 with bit pairs 0-1, 2-3, 4-5, 6-7 of qh on top, the same pair in
 * every byte of a vector, so one vgf2p8affineqb (a bit matrix per byte)
 * or a mask, and one vpternlog, place them.
 * vpdpbusd starts each int32 lane from -32 times the sum of its four
 * activations (prepared), so a lane holds the exact sum of (q - 32) * a
 * over four elements of one 16-element sub-block, at most 4 * 32 * 127:
 * two vectors pack into int16 words and vpdpwssd applies the int8 scales;
 * rows_x4() joins the four rows' int32 sums for one convert and one
 * multiply-add by d0 d1 d2 d3 (times D) per super-block.
 * The prepared activations: vector k, byte p = element
 * 128 (p / 32) + 32 k + p % 32; the start values of each vector, as int16
 * (widened when loaded); the scale, 4 times.  448 bytes per 256 values
 * instead of 576 (int32 starts, 16 scales): between two reads of an
 * activation a four-row group streams four weight rows through L1, so
 * on wide rows (ffn_down, 8192-16384) the activations fell out of L1 and
 * their misses took the weights' place (one-token product stacks against
 * the probe, 16384 wide: 0.930 -> 0.948, 8192: 0.950 -> 0.962). */
typedef struct gq6_k {
        int8_t qs[4][64];
        int16_t off[4][16]; /* -32 times a sum of four int8: within +-16384 */
        float d[4];
        uint8_t pad[48];    /* whole cache lines: qs stays aligned */
} gq6_k;
_Static_assert(sizeof(gq6_k) == 448, "gq6_k");

static void prep_q6_k(const float *x, void *vact, int64_t n) {
        gq6_k *g = vact;

        for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
                block_q8_K b;
                kernels_avx512.from_float[TYPE_Q8_K](x, &b, QK_K);
                /* one element at a time this was 7 us for an 8192-wide
                 * row (Gemma 3n's ffn_down), with the other threads waiting */
                for (int k = 0; k < 4; k++) {
                        memcpy(g[i].qs[k], b.qs + 32 * k, 32);
                        memcpy(g[i].qs[k] + 32, b.qs + 128 + 32 * k, 32);
                        __m512i sum4 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1),
                                                           _mm512_loadu_si512(g[i].qs[k]));
                        _mm256_storeu_si256((__m256i *)g[i].off[k],
                                            _mm512_cvtepi32_epi16(_mm512_sub_epi32(_mm512_setzero_si512(),
                                                                                   _mm512_slli_epi32(sum4, 5))));
                }
                for (int l = 0; l < 4; l++)
                        g[i].d[l] = b.d;
                memset(g[i].pad, 0, sizeof g[i].pad);
        }
}

/* One row of four: the scaled sums of super-block x against the shared
 * activations a0..a3 and start values o0..o3, as int32 lanes in s. */
#define Q6K_ROW(x, s)                                                                                               \
        do {                                                                                                        \
                __m512i v0 = _mm512_loadu_si512((x)->ql), v1 = _mm512_loadu_si512((x)->ql + 64);                 \
                __m512i h = _mm512_loadu_si512((x)->qh);                                                          \
                __m512i L0 = _mm512_shuffle_i64x2(v0, v1, _MM_SHUFFLE(1, 0, 1, 0));                               \
                __m512i L1 = _mm512_shuffle_i64x2(v0, v1, _MM_SHUFFLE(3, 2, 3, 2));                               \
                /* qh bit pair 0-1 / 2-3 / 6-7 moved to bits 4-5, all     \
                 * other bits zero, by a GF(2) bit matrix (one uop, where   \
                 * a mask and a shift took two); pair 4-5 is in place, the  \
                 * mask 0x30 clears the rest.  What the nibbles' 16-bit     \
                 * shifts carry across bytes lands in bits 4-7, which the   \
                 * select (m4: nibble, else qh) drops.  The select's        \
                 * destination is a temporary, so m4 is not copied */                                               \
                __m512i w0 = _mm512_ternarylogic_epi32(_mm512_gf2p8affine_epi64_epi8(h, g01, 0), L0, m4, 0xD8);   \
                __m512i w1 = _mm512_ternarylogic_epi32(_mm512_gf2p8affine_epi64_epi8(h, g23, 0), L1, m4, 0xD8);   \
                __m512i w2 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(L0, 4), _mm512_and_si512(h, m30), m4, 0xE4); \
                __m512i w3 = _mm512_ternarylogic_epi32(_mm512_gf2p8affine_epi64_epi8(h, g67, 0), _mm512_srli_epi16(L1, 4), m4, \
                                                       0xD8);                                                       \
                __m512i p0 = _mm512_dpbusd_epi32(o0, w0, a0), p1 = _mm512_dpbusd_epi32(o1, w1, a1);               \
                __m512i p2 = _mm512_dpbusd_epi32(o2, w2, a2), p3 = _mm512_dpbusd_epi32(o3, w3, a3);               \
                __m512i sc = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x)->scales))); \
                s = _mm512_madd_epi16(_mm512_packs_epi32(p0, p1), _mm512_permutexvar_epi16(sw0, sc));              \
                s = _mm512_dpwssd_epi32(s, _mm512_packs_epi32(p2, p3), _mm512_permutexvar_epi16(sw1, sc));        \
        } while (0)

VBMI static void gemv_q6_k_x4(int64_t n, const uint8_t *const w[4], const void *vact, float y[4]) {
        const int64_t nb = n / QK_K;
        const block_q6_K *x0 = (const block_q6_K *)w[0], *x1 = (const block_q6_K *)w[1], *x2 = (const block_q6_K *)w[2], *x3 = (const block_q6_K *)w[3];
        const gq6_k *a = vact;
        const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
        /* vgf2p8affineqb: byte 7 - i of the matrix selects the bits that
         * make bit i; bits 4, 5 from 0, 1 / 2, 3 / 6, 7 */
        const __m512i g01 = _mm512_set1_epi64(0x0000000001020000ll), g23 = _mm512_set1_epi64(0x0000000004080000ll),
                      g67 = _mm512_set1_epi64(0x0000000040800000ll);
        /* word i of packs(P(2m), P(2m+1)) belongs to sub-block
         * 8 (i / 16) + 4 m + 2 ((i % 8) / 4) + (i / 8) % 2 */
        const __m512i sw0 = _mm512_set_epi16(11, 11, 11, 11, 9, 9, 9, 9, 10, 10, 10, 10, 8, 8, 8, 8,
                                             3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0);
        const __m512i sw1 = _mm512_add_epi16(sw0, _mm512_set1_epi16(4));
        __m512 facc = _mm512_setzero_ps();

        for (int64_t i = 0; i < nb; i++) {
                const block_q6_K *b0 = x0 + i, *b1 = x1 + i, *b2 = x2 + i, *b3 = x3 + i;
                PREFETCH_X4(b0, b1, b2, b3, 4);
                __m128i hd = _mm_setr_epi16((short)b0->d, (short)b1->d, (short)b2->d, (short)b3->d, 0, 0, 0, 0);
                const __m512 dd = _mm512_broadcast_f32x4(_mm_mul_ps(_mm_cvtph_ps(hd), _mm_load_ps(a[i].d)));
                const __m512i a0 = _mm512_load_si512(a[i].qs[0]), a1 = _mm512_load_si512(a[i].qs[1]),
                              a2 = _mm512_load_si512(a[i].qs[2]), a3 = _mm512_load_si512(a[i].qs[3]);
                const __m512i o0 = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)a[i].off[0])),
                              o1 = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)a[i].off[1])),
                              o2 = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)a[i].off[2])),
                              o3 = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)a[i].off[3]));
                __m512i s0, s1, s2, s3;
                Q6K_ROW(b0, s0);
                Q6K_ROW(b1, s1);
                Q6K_ROW(b2, s2);
                Q6K_ROW(b3, s3);
                facc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(rows_x4(s0, s1, s2, s3)), dd, facc);
        }
        sum_x4(y, facc);
}
#undef Q6K_ROW

VBMI static void gemv_q6_k(int64_t n, const void *vw, size_t row_bytes, int64_t n_rows, const void *vact, float *y) {
        gemv_quarters(gemv_q6_k_x4, n, vw, row_bytes, n_rows, vact, y);
}

const gemv_kernel gemv_avx512[TYPE_COUNT] = {
        [TYPE_Q4_0] = { .prep = prep_q4_0, .rows = gemv_q4_0, .act_bytes = sizeof(gq4_0), .n_unit = 128 },
        [TYPE_Q8_0] = { .prep = prep_q8_0, .rows = gemv_q8_0, .act_bytes = sizeof(gq8_0), .n_unit = 64 },
        [TYPE_Q4_K] = { .prep = prep_q4_k, .rows = gemv_q4_k, .act_bytes = sizeof(gq4_k), .n_unit = QK_K },
        [TYPE_Q6_K] = { .prep = prep_q6_k, .rows = gemv_q6_k, .act_bytes = sizeof(gq6_k), .n_unit = QK_K },
};
