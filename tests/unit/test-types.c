/* SPDX-License-Identifier: MIT */
/* Tensor type traits, half/bfloat16 conversions, and the scalar reference
 * kernels against the block layouts of specs/gguf.md written out a second
 * way (element by element from the bit positions). */
#include <errno.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "gguf.h"
#include "kernels.h"
#include "tensor-type.h"
#include "test.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return (uint32_t)(rng_state >> 16);
}
static float rndf(void) { /* roughly normal, mean 0, sd ~1 */
        float s = 0;
        for (int i = 0; i < 4; i++)
                s += (float)(rnd() & 0xFFFF) / 65536.f - 0.5f;
        return s * 1.7f;
}
static float f_of(uint32_t u) {
        float f;
        memcpy(&f, &u, 4);
        return f;
}
static uint32_t bits_of(float f) {
        uint32_t u;
        memcpy(&u, &f, 4);
        return u;
}

static void test_traits(void) {
        static const struct { uint32_t id; uint32_t bs, ts; } sizes[] = {
                { 0, 1, 4 }, { 1, 1, 2 }, { 2, 32, 18 }, { 3, 32, 20 }, { 6, 32, 22 }, { 7, 32, 24 },
                { 8, 32, 34 }, { 9, 32, 36 }, { 10, 256, 84 }, { 11, 256, 110 }, { 12, 256, 144 },
                { 13, 256, 176 }, { 14, 256, 210 }, { 15, 256, 292 }, { 16, 256, 66 }, { 17, 256, 74 },
                { 18, 256, 98 }, { 19, 256, 50 }, { 20, 32, 18 }, { 21, 256, 110 }, { 22, 256, 82 },
                { 23, 256, 136 }, { 24, 1, 1 }, { 25, 1, 2 }, { 26, 1, 4 }, { 27, 1, 8 }, { 28, 1, 8 },
                { 29, 256, 56 }, { 30, 1, 2 }, { 34, 256, 54 }, { 35, 256, 66 }, { 39, 32, 17 },
        };
        static const uint32_t unknown[] = { 4, 5, 31, 32, 33, 36, 37, 38, 40, 1000, UINT32_MAX };

        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
                const type_traits *t = type_traits_get(sizes[i].id);
                CHECK_MSG(t, "type %u", sizes[i].id);
                CHECK_EQ_INT(t->block_size, sizes[i].bs);
                CHECK_EQ_INT(t->type_size, sizes[i].ts);
                CHECK(strcmp(type_name(sizes[i].id), "?") != 0);
        }
        for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
                size_t r;
                CHECK(!type_traits_get(unknown[i]));
                CHECK(strcmp(type_name(unknown[i]), "?") == 0);
                CHECK(type_row_size(unknown[i], 256, &r) == -EINVAL);
        }
        const uint32_t supported[] = { TYPE_F32, TYPE_F16, TYPE_BF16, TYPE_Q8_0, TYPE_Q4_0, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K };
        for (size_t i = 0; i < 8; i++) {
                const type_traits *t = type_traits_get(supported[i]);
                CHECK(type_is_supported(supported[i]));
                CHECK(t->to_float);
                CHECK(kernels_scalar.vec_dot[supported[i]]);
                CHECK(kernels_scalar.from_float[t->vec_dot_type]);
        }
        CHECK(!type_is_supported(TYPE_Q4_1) && !type_is_supported(TYPE_Q8_K) && !type_is_supported(TYPE_Q2_K));
        CHECK_EQ_INT(type_traits_get(TYPE_Q4_0)->vec_dot_type, TYPE_Q8_0);
        CHECK_EQ_INT(type_traits_get(TYPE_Q6_K)->vec_dot_type, TYPE_Q8_K);

        size_t r;
        CHECK_OK(type_row_size(TYPE_Q4_K, 2048, &r));
        CHECK_EQ_INT(r, 8 * 144);
        CHECK_OK(type_row_size(TYPE_F16, 3, &r));
        CHECK_EQ_INT(r, 6);
        CHECK(type_row_size(TYPE_Q4_0, 33, &r) == -EINVAL);
        CHECK(type_row_size(TYPE_Q4_0, -32, &r) == -EINVAL);
        CHECK(type_row_size(TYPE_F32, INT64_MAX, &r) == -EOVERFLOW);
}

/* Half: the spec's formula, computed in double. */
static double half_value(uint16_t h) {
        int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
        double v;
        if (e == 0)
                v = ldexp(m, -24);
        else if (e == 31)
                v = m ? NAN : INFINITY;
        else
                v = ldexp(1024 + m, e - 25);
        return s ? -v : v;
}

__attribute__((target("f16c"))) static uint16_t hw_to_half(float f) {
        return (uint16_t)_cvtss_sh(f, 0);
}

static bool have_f16c(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2"); /* every AVX2 CPU has F16C */
}

static void test_half(void) {
        for (uint32_t h = 0; h < 65536; h++) {
                float f = fp16_to_fp32((uint16_t)h);
                double v = half_value((uint16_t)h);
                if (isnan(v)) {
                        CHECK_MSG(isnan(f), "%04x", h);
                        CHECK_EQ_INT(fp32_to_fp16(f) & 0x7E00, 0x7E00); /* quiet NaN back */
                        continue;
                }
                CHECK_MSG((double)f == v && !!signbit(f) == !!signbit(v), "%04x: %g vs %g", h, f, v);
                CHECK_MSG(fp32_to_fp16(f) == h, "%04x round trip gives %04x", h, fp32_to_fp16(f));
        }
        /* Ties and edges: halfway between 1 and 1+2^-10 goes to even. */
        CHECK_EQ_INT(fp32_to_fp16(1.f + 0x1p-11f), 0x3C00);
        CHECK_EQ_INT(fp32_to_fp16(1.f + 3 * 0x1p-11f), 0x3C02);
        CHECK_EQ_INT(fp32_to_fp16(65504.f), 0x7BFF);
        CHECK_EQ_INT(fp32_to_fp16(65519.f), 0x7BFF);
        CHECK_EQ_INT(fp32_to_fp16(65520.f), 0x7C00);
        CHECK_EQ_INT(fp32_to_fp16(-1e10f), 0xFC00);
        CHECK_EQ_INT(fp32_to_fp16(0x1p-25f), 0x0000);           /* tie to even: 0 */
        CHECK_EQ_INT(fp32_to_fp16(0x1p-25f * 3), 0x0002);       /* 1.5 units: 2 */
        CHECK_EQ_INT(fp32_to_fp16(-0x1p-24f), 0x8001);
        CHECK_EQ_INT(fp32_to_fp16(0x1p-14f - 0x1p-25f), 0x0400); /* rounds up to the smallest normal */
        if (have_f16c())
                for (int i = 0; i < 2000000; i++) {
                        float f = f_of(rnd() << 1 ^ rnd());
                        uint16_t a = fp32_to_fp16(f), b = hw_to_half(f);
                        if (isnan(f))
                                CHECK((a & 0x7C00) == 0x7C00 && (a & 0x3FF) && (b & 0x3FF));
                        else
                                CHECK_MSG(a == b, "%08x: %04x vs F16C %04x", bits_of(f), a, b);
                }
}

static void test_bf16(void) {
        CHECK_EQ_INT(fp32_to_bf16(1.f), 0x3F80);
        CHECK_EQ_INT(fp32_to_bf16(f_of(0x3F808000)), 0x3F80); /* tie, even stays */
        CHECK_EQ_INT(fp32_to_bf16(f_of(0x3F818000)), 0x3F82); /* tie, odd goes up */
        CHECK_EQ_INT(fp32_to_bf16(f_of(0x3F808001)), 0x3F81);
        CHECK_EQ_INT(fp32_to_bf16(f_of(0x7F7FFFFF)), 0x7F80); /* max float rounds to inf */
        CHECK_EQ_INT(fp32_to_bf16(f_of(0x7F800001)) & 0x7FC0, 0x7FC0);
        CHECK(isinf(bf16_to_fp32(0xFF80)) && bf16_to_fp32(0xFF80) < 0);
        for (uint32_t h = 0; h < 65536; h++) {
                float f = bf16_to_fp32((uint16_t)h);
                CHECK_EQ_INT(bits_of(f), h << 16);
                if (!isnan(f))
                        CHECK_EQ_INT(fp32_to_bf16(f), h);
        }
}

/* --- dequantization, written from the spec's bit positions ------------ */

static float q4_0_elem(const block_q4_0 *b, int i) {
        int q = i < 16 ? b->qs[i] & 15 : b->qs[i - 16] >> 4;
        return (q - 8) * fp16_to_fp32(b->d);
}
static void k_sm(const uint8_t *s, int j, int *sc, int *m) {
        /* bits: scales 0..3 in s[0..3] low 6, mins 0..3 in s[4..7] low 6;
         * scales 4..7: low 4 in s[8..11] low nibble, high 2 in s[0..3] top;
         * mins 4..7: low 4 in s[8..11] high nibble, high 2 in s[4..7] top. */
        if (j < 4) {
                *sc = s[j] & 63;
                *m = s[4 + j] & 63;
        } else {
                *sc = (s[8 + j - 4] & 15) + 16 * (s[j - 4] >> 6);
                *m = (s[8 + j - 4] >> 4) + 16 * (s[j] >> 6);
        }
}
static float q4_k_elem(const block_q4_K *b, int i) {
        int sub = i / 32, chunk = i / 64, l = i % 32, sc, m;
        int q = sub % 2 == 0 ? b->qs[chunk * 32 + l] & 15 : b->qs[chunk * 32 + l] >> 4;
        k_sm(b->scales, sub, &sc, &m);
        return fp16_to_fp32(b->d) * sc * q - fp16_to_fp32(b->dmin) * m;
}
static float q5_k_elem(const block_q5_K *b, int i) {
        int sub = i / 32, chunk = i / 64, l = i % 32, sc, m;
        int q = sub % 2 == 0 ? b->qs[chunk * 32 + l] & 15 : b->qs[chunk * 32 + l] >> 4;
        q += 16 * ((b->qh[l] >> sub) & 1);
        k_sm(b->scales, sub, &sc, &m);
        return fp16_to_fp32(b->d) * sc * q - fp16_to_fp32(b->dmin) * m;
}
static float q6_k_elem(const block_q6_K *b, int i) {
        int half = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
        int lo = b->ql[half * 64 + (quarter & 1) * 32 + l];
        lo = quarter < 2 ? lo & 15 : lo >> 4;
        int hi = (b->qh[half * 32 + l] >> (2 * quarter)) & 3;
        return fp16_to_fp32(b->d) * b->scales[i / 16] * ((lo | hi << 4) - 32);
}

static uint16_t rnd_half_scale(void) {
        return fp32_to_fp16((float)(rnd() % 1000 + 1) * 1e-4f);
}

static void fill_random(void *p, size_t n) {
        uint8_t *b = p;
        for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t)rnd();
}

static void test_dequant(void) {
        enum { NB = 4 };
        float y[NB * QK_K];

        block_q4_0 q40[NB * 8];
        fill_random(q40, sizeof q40);
        for (int i = 0; i < NB * 8; i++)
                q40[i].d = rnd_half_scale();
        type_traits_get(TYPE_Q4_0)->to_float(q40, y, NB * QK_K);
        for (int i = 0; i < NB * QK_K; i++)
                CHECK_MSG(y[i] == q4_0_elem(&q40[i / 32], i % 32), "q4_0 %d", i);

        block_q8_0 q80[NB * 8];
        fill_random(q80, sizeof q80);
        for (int i = 0; i < NB * 8; i++)
                q80[i].d = rnd_half_scale();
        type_traits_get(TYPE_Q8_0)->to_float(q80, y, NB * QK_K);
        for (int i = 0; i < NB * QK_K; i++)
                CHECK(y[i] == q80[i / 32].qs[i % 32] * fp16_to_fp32(q80[i / 32].d));

        block_q4_K q4k[NB];
        fill_random(q4k, sizeof q4k);
        for (int i = 0; i < NB; i++)
                q4k[i].d = rnd_half_scale(), q4k[i].dmin = rnd_half_scale();
        type_traits_get(TYPE_Q4_K)->to_float(q4k, y, NB * QK_K);
        for (int i = 0; i < NB * QK_K; i++)
                CHECK_MSG(fabsf(y[i] - q4_k_elem(&q4k[i / 256], i % 256)) <= 1e-6f * (1 + fabsf(y[i])), "q4_K %d", i);

        block_q5_K q5k[NB];
        fill_random(q5k, sizeof q5k);
        for (int i = 0; i < NB; i++)
                q5k[i].d = rnd_half_scale(), q5k[i].dmin = rnd_half_scale();
        type_traits_get(TYPE_Q5_K)->to_float(q5k, y, NB * QK_K);
        for (int i = 0; i < NB * QK_K; i++)
                CHECK_MSG(fabsf(y[i] - q5_k_elem(&q5k[i / 256], i % 256)) <= 1e-6f * (1 + fabsf(y[i])), "q5_K %d", i);

        block_q6_K q6k[NB];
        fill_random(q6k, sizeof q6k);
        for (int i = 0; i < NB; i++)
                q6k[i].d = rnd_half_scale();
        type_traits_get(TYPE_Q6_K)->to_float(q6k, y, NB * QK_K);
        for (int i = 0; i < NB * QK_K; i++)
                CHECK_MSG(fabsf(y[i] - q6_k_elem(&q6k[i / 256], i % 256)) <= 1e-6f * (1 + fabsf(y[i])), "q6_K %d", i);
}

/* --- quantizers -------------------------------------------------------- */

static void test_quantize(void) {
        enum { N = 4 * QK_K };
        float x[N], y[N];

        for (int i = 0; i < N; i++)
                x[i] = rndf();
        /* A block of zeros and one with a single value. */
        memset(x, 0, 32 * sizeof(float));
        memset(x + 256, 0, 256 * sizeof(float));
        x[300] = -3.f;

        block_q8_0 q8[N / 32];
        type_traits_get(TYPE_Q8_0)->from_float(x, q8, N);
        type_traits_get(TYPE_Q8_0)->to_float(q8, y, N);
        for (int b = 0; b < N / 32; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++)
                        amax = fmaxf(amax, fabsf(x[b * 32 + j]));
                for (int j = 0; j < 32; j++)
                        CHECK_MSG(fabsf(y[b * 32 + j] - x[b * 32 + j]) <= amax / 127 * 0.51f + amax * 1e-3f,
                                  "q8_0 %d", b * 32 + j);
        }
        CHECK(q8[0].d == 0);

        /* Activation quantizer: same bound, halves to even. */
        kernels_scalar.from_float[TYPE_Q8_0](x, q8, N);
        type_traits_get(TYPE_Q8_0)->to_float(q8, y, N);
        for (int i = 0; i < N; i++)
                CHECK(fabsf(y[i] - x[i]) <= 0.03f);
        float tie[32] = { 127.f, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f };
        kernels_scalar.from_float[TYPE_Q8_0](tie, q8, 32);
        CHECK(q8[0].qs[0] == 127 && q8[0].qs[1] == 0 && q8[0].qs[2] == 2 && q8[0].qs[3] == 2 &&
              q8[0].qs[4] == 0 && q8[0].qs[5] == -2);
        type_traits_get(TYPE_Q8_0)->from_float(tie, q8, 32); /* the weight quantizer rounds away */
        CHECK(q8[0].qs[1] == 1 && q8[0].qs[2] == 2 && q8[0].qs[3] == 3 && q8[0].qs[5] == -3);

        block_q4_0 q4[N / 32];
        type_traits_get(TYPE_Q4_0)->from_float(x, q4, N);
        type_traits_get(TYPE_Q4_0)->to_float(q4, y, N);
        for (int b = 0; b < N / 32; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++)
                        amax = fmaxf(amax, fabsf(x[b * 32 + j]));
                for (int j = 0; j < 32; j++)
                        CHECK(fabsf(y[b * 32 + j] - x[b * 32 + j]) <= amax / 8 * 1.001f /* the clamped end: a full step */);
        }

        block_q8_K qk[N / QK_K];
        type_traits_get(TYPE_Q8_K)->from_float(x, qk, N);
        for (int b = 0; b < N / QK_K; b++) {
                float amax = 0;
                for (int j = 0; j < QK_K; j++)
                        amax = fmaxf(amax, fabsf(x[b * QK_K + j]));
                for (int s = 0; s < 16; s++) {
                        int sum = 0;
                        for (int l = 0; l < 16; l++)
                                sum += qk[b].qs[s * 16 + l];
                        CHECK_EQ_INT(qk[b].bsums[s], sum);
                }
                for (int j = 0; j < QK_K; j++) {
                        CHECK(qk[b].qs[j] >= -127);
                        CHECK(fabsf(qk[b].d * qk[b].qs[j] - x[b * QK_K + j]) <= amax / 127 * 0.501f);
                }
        }
        /* The value of largest magnitude maps to -127 (so d has its opposite sign). */
        CHECK(qk[1].qs[300 - 256] == -127 && qk[1].d > 0 && qk[1].qs[0] == 0);
        float zeros[QK_K] = { 0 };
        type_traits_get(TYPE_Q8_K)->from_float(zeros, qk, QK_K);
        CHECK(qk[0].d == 0 && qk[0].qs[5] == 0 && qk[0].bsums[3] == 0);
}

/* --- dot kernels against double-precision dots of dequantized rows ---- */

static void test_vec_dot(void) {
        static const uint32_t types[] = { TYPE_F32, TYPE_F16, TYPE_BF16, TYPE_Q8_0, TYPE_Q4_0, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K };
        enum { N = 8 * QK_K };
        static float x[N], a[N], wf[N], af[N];
        static uint8_t wq[N * 4], aq[N * 4];

        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
                uint32_t t = types[ti];
                const type_traits *tr = type_traits_get(t);
                const type_traits *at = type_traits_get(tr->vec_dot_type);
                for (int rep = 0; rep < 20; rep++) {
                        for (int i = 0; i < N; i++)
                                x[i] = rndf(), a[i] = rndf();
                        if (tr->from_float)
                                tr->from_float(x, wq, N);
                        else { /* K-quants: random but valid blocks with sane scales */
                                fill_random(wq, (size_t)N / QK_K * tr->type_size);
                                for (int b = 0; b < N / QK_K; b++) {
                                        uint8_t *blk = wq + (size_t)b * tr->type_size;
                                        uint16_t d = rnd_half_scale(), dm = rnd_half_scale();
                                        if (t == TYPE_Q6_K)
                                                memcpy(blk + 208, &d, 2);
                                        else {
                                                memcpy(blk, &d, 2);
                                                memcpy(blk + 2, &dm, 2);
                                        }
                                }
                        }
                        tr->to_float(wq, wf, N);
                        kernels_scalar.from_float[tr->vec_dot_type](a, aq, N);
                        at->to_float(aq, af, N);
                        double ref = 0, mag = 0;
                        for (int i = 0; i < N; i++) {
                                ref += (double)wf[i] * af[i];
                                mag += fabs((double)wf[i] * af[i]);
                        }
                        float s;
                        kernels_scalar.vec_dot[t](N, &s, wq, aq);
                        /* Integer parts are exact; the float part rounds
                         * once per block: relative 1e-5 of the magnitude. */
                        CHECK_MSG(fabs(s - ref) <= 1e-5 * mag + 1e-6, "%s: %g vs %g (mag %g)", tr->name, s, ref, mag);
                }
        }
}

/* --- golden files: llama_model_quantize's output from one F32 parent ---- */

/* Bytes our quantizers write for the F32 parent equal the file's for
 * Q8_0 and Q4_0 (ggml's reference quantizers, no imatrix), F16 and BF16;
 * the K-quants dequantize to within their step of the parent. */
static void test_golden(void) {
        const char *dir = getenv("SHARED");
        char path[4096];
        gguf_file *parent = NULL;
        char err[256];
        struct stat st;

        if (!dir || !*dir)
                dir = "../shared";
        snprintf(path, sizeof path, "%s/golden/llama-f32.gguf", dir);
        if (stat(path, &st) < 0) {
                printf("golden files not found at %s: golden checks skipped\n", path);
                return;
        }
        CHECK_OK(gguf_open_path(path, &parent, err, sizeof err));
        static const struct { const char *file; uint32_t type; double max_rel_rms; } cases[] = {
                { "q8_0", TYPE_Q8_0, 0 }, { "q4_0", TYPE_Q4_0, 0 }, { "f16", TYPE_F16, 0 }, { "bf16", TYPE_BF16, 0 },
                /* K-quants: rms error over rms value of a weight row */
                { "q4_k", TYPE_Q4_K, 0.12 }, { "q5_k", TYPE_Q5_K, 0.06 }, { "q6_k", TYPE_Q6_K, 0.03 },
        };
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
                gguf_file *f = NULL;
                int checked = 0;
                snprintf(path, sizeof path, "%s/golden/llama-%s.gguf", dir, cases[c].file);
                CHECK_OK(gguf_open_path(path, &f, err, sizeof err));
                for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
                        const gguf_tensor *t = gguf_tensor_at(f, i);
                        if (t->n_dims != 2 || t->type != cases[c].type)
                                continue;
                        char name[80];
                        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.p);
                        const gguf_tensor *pt = gguf_find_tensor(parent, name);
                        CHECK_MSG(pt && pt->type == TYPE_F32 && pt->ne[0] == t->ne[0] && pt->ne[1] == t->ne[1], "%s", name);
                        const type_traits *tr = type_traits_get(t->type);
                        size_t rb;
                        CHECK_OK(type_row_size(t->type, t->ne[0], &rb));
                        uint8_t *mine = malloc(rb);
                        float *deq = malloc(sizeof(float) * t->ne[0]);
                        CHECK(mine && deq);
                        for (int64_t r = 0; r < t->ne[1]; r++) {
                                const float *src = (const float *)pt->data + r * t->ne[0];
                                const uint8_t *theirs = (const uint8_t *)t->data + r * rb;
                                if (cases[c].max_rel_rms == 0) {
                                        tr->from_float(src, mine, t->ne[0]);
                                        CHECK_MSG(memcmp(mine, theirs, rb) == 0, "%s %s row %lld differs from llama-quantize",
                                                  cases[c].file, name, (long long)r);
                                        continue;
                                }
                                tr->to_float(theirs, deq, t->ne[0]);
                                double e2 = 0, v2 = 0;
                                for (int64_t k = 0; k < t->ne[0]; k++) {
                                        e2 += ((double)deq[k] - src[k]) * ((double)deq[k] - src[k]);
                                        v2 += (double)src[k] * src[k];
                                }
                                CHECK_MSG(sqrt(e2 / v2) <= cases[c].max_rel_rms, "%s %s row %lld: relative rms error %g",
                                          cases[c].file, name, (long long)r, sqrt(e2 / v2));
                        }
                        free(mine);
                        free(deq);
                        checked++;
                }
                CHECK_MSG(checked >= 7, "%s: only %d tensors of its type", cases[c].file, checked);
                printf("golden %s: %d tensors ok\n", cases[c].file, checked);
                gguf_close(f);
        }
        gguf_close(parent);
}

int main(void) {
        test_golden();
        test_traits();
        test_half();
        test_bf16();
        test_dequant();
        test_quantize();
        test_vec_dot();
        printf("types ok\n");
        return 0;
}
