/* SPDX-License-Identifier: MIT */
/* Every SIMD kernel set the CPU supports against the scalar reference, on
 * random data:
 *   - quantizers (Q8_0, Q8_K, F16, BF16 activations): bit for bit;
 *   - dequantizers: bit for bit (the same float operations per element);
 *   - dots of Q8_0/Q4_0: the per-block integer sums are exact and so is
 *     their conversion; the SIMD kernels accumulate d_w*d_a*sum in float in
 *     another order: a float sum of n/32 terms differs by at most
 *     ~n/32 * 2^-24 of the sum of magnitudes, checked with margin at 1e-5;
 *   - K-quant dots likewise (per super-block integer sums exact);
 *   - F32/F16/BF16 dots: float products summed in another order versus
 *     the double reference: 1e-5 of the sum of magnitudes for n <= 8192.
 * Run with SOTTO_KERNELS unset it also checks that kernels_best() picks
 * the widest supported set. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "macro.h"
#include "tensor-type.h"
#include "test.h"

static uint64_t rng_state = 0x13198A2E03707344ull;
static uint32_t rnd(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return (uint32_t)(rng_state >> 16);
}
static float rndf(void) {
        float s = 0;
        for (int i = 0; i < 4; i++)
                s += (float)(rnd() & 0xFFFF) / 65536.f - 0.5f;
        return s * 1.7f;
}

static void random_blocks(uint32_t type, void *p, int64_t n) {
        const type_traits *t = type_traits_get(type);
        uint8_t *b = p;
        size_t nb = (size_t)(n / t->block_size);

        for (size_t i = 0; i < nb * t->type_size; i++)
                b[i] = (uint8_t)rnd();
        for (size_t i = 0; i < nb; i++) {
                uint8_t *blk = b + i * t->type_size;
                uint16_t d = fp32_to_fp16((rnd() % 1000 + 1) * 1e-4f), dm = fp32_to_fp16((rnd() % 1000) * 1e-4f);
                switch (type) {
                case TYPE_Q6_K:
                        memcpy(blk + 208, &d, 2);
                        break;
                case TYPE_Q4_K: case TYPE_Q5_K:
                        memcpy(blk + 2, &dm, 2);
                        /* fall through */
                case TYPE_Q8_0: case TYPE_Q4_0:
                        memcpy(blk, &d, 2);
                        break;
                }
        }
}

static void fill_row(float *x, int64_t n, int mode) {
        for (int64_t i = 0; i < n; i++)
                x[i] = rndf();
        if (mode == 1) /* ties for the rounding: multiples of 1/2 */
                for (int64_t i = 0; i < n; i++)
                        x[i] = roundf(x[i] * 254) / 2;
        if (mode == 2) /* blocks of zeros and of one value */
                for (int64_t i = 0; i < n; i++)
                        x[i] = (i / 32) % 3 == 0 ? 0 : (i / 32) % 3 == 1 ? (i % 32 == 5 ? -2.f : 0) : x[i];
        if (mode == 3) /* wide range, f16 overflows and subnormals */
                for (int64_t i = 0; i < n; i++)
                        x[i] = ldexpf(x[i], (int)(rnd() % 60) - 30);
}

static void test_set(const kernel_set *k) {
        static const uint32_t act_types[] = { TYPE_Q8_0, TYPE_Q8_K, TYPE_F16, TYPE_BF16 };
        static const uint32_t w_types[] = { TYPE_F32, TYPE_F16, TYPE_BF16, TYPE_Q8_0, TYPE_Q4_0, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K };
        static const int64_t sizes[] = { 256, 512, 2048, 8192 };
        enum { NMAX = 8192 };
        static float x[NMAX], a[NMAX], y0[NMAX], y1[NMAX];
        static uint8_t q0[NMAX * 4 + 64], q1[NMAX * 4 + 64], wq[NMAX * 4 + 64];

        for (size_t si = 0; si < 4; si++) {
                int64_t n = sizes[si];
                for (int mode = 0; mode < 4; mode++) {
                        fill_row(x, n, mode);
                        for (size_t ai = 0; ai < 4; ai++) {
                                uint32_t t = act_types[ai];
                                size_t rb;
                                CHECK_OK(type_row_size(t, n, &rb));
                                memset(q0, 0xAA, rb);
                                memset(q1, 0x55, rb);
                                kernels_scalar.from_float[t](x, q0, n);
                                k->from_float[t](x, q1, n);
                                CHECK_MSG(memcmp(q0, q1, rb) == 0, "%s from_float %s n=%lld mode %d", k->name,
                                          type_name(t), (long long)n, mode);
                        }
                }
                for (size_t wi = 0; wi < 8; wi++) {
                        uint32_t t = w_types[wi];
                        const type_traits *tr = type_traits_get(t);
                        for (int rep = 0; rep < 10; rep++) {
                                fill_row(x, n, 0);
                                fill_row(a, n, rep % 3 == 2 ? 2 : 0);
                                if (tr->is_quantized)
                                        random_blocks(t, wq, n);
                                else
                                        tr->from_float(x, wq, n);
                                kernels_scalar.to_float[t](wq, y0, n);
                                k->to_float[t](wq, y1, n);
                                CHECK_MSG(memcmp(y0, y1, n * sizeof(float)) == 0, "%s to_float %s", k->name, tr->name);

                                kernels_scalar.from_float[tr->vec_dot_type](a, q0, n);
                                float s0, s1;
                                kernels_scalar.vec_dot[t](n, &s0, wq, q0);
                                k->vec_dot[t](n, &s1, wq, q0);
                                /* magnitude: the dot of absolute values */
                                kernels_scalar.to_float[tr->vec_dot_type](q0, a, n);
                                double mag = 0;
                                for (int64_t i = 0; i < n; i++)
                                        mag += fabs((double)y0[i] * a[i]);
                                CHECK_MSG(fabs((double)s0 - s1) <= 1e-5 * mag + 1e-30, "%s vec_dot %s n=%lld: %.9g vs %.9g (mag %g)",
                                          k->name, tr->name, (long long)n, s0, s1, mag);
                        }
                }
        }
}

/* The decoding kernels against the scalar dot, row by row: the same
 * activation quantization, float sums in another order (1e-5 of the sum
 * of magnitudes, as for vec_dot).  The row counts cover groups of rows
 * the kernels take at once (four, one from each quarter of the rows),
 * with and without a short last group, and quarters a multiple of 4 KiB
 * long, which the kernels shorten by a row (32 and 35 rows of 4608
 * bytes); rows beyond n_rows must stay untouched. */
static void test_gemv(const kernel_set *k) {
        static const uint32_t w_types[] = { TYPE_Q8_0, TYPE_Q4_0, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K };
        static const int64_t sizes[] = { 64, 128, 192, 256, 512, 2048, 8192 };
        static const int row_counts[] = { 23, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 22, 32, 35 };
        enum { NMAX = 8192, ROWS = 35 };
        static float x[NMAX], w[NMAX], a[NMAX], y[ROWS];
        static uint8_t wq[ROWS * NMAX * 2], q0[NMAX * 4 + 64];
        static uint8_t act[NMAX * 8] __attribute__((aligned(64)));
        int n_tested = 0, n_sizes = 0;

        if (!k->gemv)
                return;
        for (size_t wi = 0; wi < ELEMENTSOF(w_types); wi++) {
                uint32_t t = w_types[wi];
                const type_traits *tr = type_traits_get(t);
                const gemv_kernel *g = &k->gemv[t];
                if (!g->rows)
                        continue;
                for (size_t si = 0; si < ELEMENTSOF(sizes); si++) {
                        int64_t n = sizes[si];
                        size_t rb;
                        /* every kernel takes 256; the smaller sizes where its unit divides them */
                        CHECK(gemv_takes(g, 256));
                        if (!gemv_takes(g, n))
                                continue;
                        CHECK_OK(type_row_size(t, n, &rb));
                        CHECK(gemv_act_row(g, n) <= sizeof act);
                        n_sizes++;
                        for (int rep = 0; rep < (int)ELEMENTSOF(row_counts); rep++) {
                                int n_rows = row_counts[(rep + (int)si) % ELEMENTSOF(row_counts)];
                                fill_row(x, n, rep % 3);
                                for (int r = 0; r < ROWS; r++)
                                        random_blocks(t, wq + r * rb, n);
                                for (int r = 0; r < ROWS; r++)
                                        y[r] = -12345.f;
                                g->prep(x, act, n);
                                g->rows(n, wq, rb, n_rows, act, y);
                                for (int r = n_rows; r < ROWS; r++)
                                        CHECK_MSG(y[r] == -12345.f, "%s gemv %s wrote row %d of %d", k->name, tr->name, r,
                                                  n_rows);
                                k->from_float[tr->vec_dot_type](x, q0, n);
                                kernels_scalar.to_float[tr->vec_dot_type](q0, a, n);
                                for (int r = 0; r < n_rows; r++) {
                                        float s0;
                                        kernels_scalar.vec_dot[t](n, &s0, wq + r * rb, q0);
                                        kernels_scalar.to_float[t](wq + r * rb, w, n);
                                        double mag = 0;
                                        for (int64_t i = 0; i < n; i++)
                                                mag += fabs((double)w[i] * a[i]);
                                        CHECK_MSG(fabs((double)s0 - y[r]) <= 1e-5 * mag + 1e-30,
                                                  "%s gemv %s n=%lld row %d rep %d: %.9g vs %.9g (mag %g)", k->name,
                                                  tr->name, (long long)n, r, rep, s0, y[r], mag);
                                }
                        }
                }
                n_tested++;
        }
        printf("%s: gemv ok for %d types, %d type-width pairs\n", k->name, n_tested, n_sizes);
}

/* Distance in units in the last place between two floats of one sign
 * (or zeros). */
static int64_t ulp_distance(float a, float b) {
        int32_t ia, ib;
        memcpy(&ia, &a, 4);
        memcpy(&ib, &b, 4);
        if (ia < 0)
                ia = INT32_MIN - ia;
        if (ib < 0)
                ib = INT32_MIN - ib;
        return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}

/* An element-wise function against libm: within max_ulp everywhere (a
 * sweep of magnitudes 2^-20 .. 2^(top-1), both signs, values around the
 * k ln2 / 2 where the AVX-512 versions change their reduction step, and
 * the special values), a NaN kept; odd counts cover the masked tail; y
 * may be x. */
typedef void (*map_fn)(float *y, const float *x, int64_t n);
static void test_map(const char *set, const char *what, map_fn f, float (*ref)(float), int top, int64_t max_ulp,
                     const float *special, size_t n_special) {
        enum { N = 4099 };
        static float x[N], y[N];
        int64_t worst = 0;
        float worst_x = 0;

        for (int pass = 0; pass < 64; pass++) {
                for (int i = 0; i < N; i++) {
                        float m = ldexpf(1.0f + (float)i / N, -20 + (int)((pass * N + i) % (20 + top)));
                        x[i] = (i & 1) ? -m : m;
                }
                for (int i = 0; i < N && pass == 0; i++)
                        x[i] = (float)(i - N / 2) * (0.5f * 0.69314718f) / 64.0f;
                memcpy(x, special, n_special * sizeof *special);
                memcpy(y, x, sizeof x);
                int64_t n = N - pass % 16;
                f(y, y, n);
                for (int64_t i = 0; i < n; i++) {
                        int64_t d = ulp_distance(y[i], ref(x[i]));
                        if (d > worst) {
                                worst = d;
                                worst_x = x[i];
                        }
                }
        }
        CHECK_MSG(worst <= max_ulp, "%s %s: %lld ulp at %.9g", set, what, (long long)worst, worst_x);
        float nan_in = NAN, nan_out = 0;
        f(&nan_out, &nan_in, 1);
        CHECK(isnan(nan_out));
        printf("%s: %s within %lld ulp of libm\n", set, what, (long long)worst);
}

static void test_math(const kernel_set *k) {
        static const float tanh_special[] = { 0.0f, -0.0f, INFINITY, -INFINITY, 1e-30f, -1e-40f,
                                              9.0f, 10.0f, 10.5f, 88.0f };
        static const float exp_special[] = { 0.0f, -0.0f, INFINITY, -INFINITY, 88.7f, 88.8f,
                                             -87.5f, -103.9f, -104.0f, -150.0f, 1e-30f };
        test_map(k->name, "tanh", k->tanh_f32, tanhf, 4, 4, tanh_special, ELEMENTSOF(tanh_special));
        test_map(k->name, "exp", k->exp_f32, expf, 7, 1, exp_special, ELEMENTSOF(exp_special));
}

/* The attention products against double sums, for the widths that take
 * each kernel's main loops and its leftovers (query rows not a multiple
 * of 4, odd key counts, head widths not a multiple of 64 or of 16):
 * within 1e-5 of the sum of magnitudes, as the float dots above. */
static void test_attention(const kernel_set *k) {
        static const int32_t shapes[][3] = { /* n_q, nk, hd */
                { 4, 1, 256 }, { 4, 37, 256 }, { 4, 512, 256 }, { 8, 64, 128 }, { 5, 3, 64 },
                { 1, 9, 256 }, { 3, 130, 80 }, { 2, 7, 24 }, { 4, 16, 112 },
        };
        double worst = 0;

        for (size_t i = 0; i < ELEMENTSOF(shapes); i++) {
                int32_t nq = shapes[i][0], nk = shapes[i][1], hd = shapes[i][2];
                size_t nqd = (size_t)nq * hd, nkd = (size_t)nk * hd, nqk = (size_t)nq * nk;
                float *q = malloc(nqd * sizeof(float)), *kk = malloc(nkd * sizeof(float));
                float *v = malloc(nkd * sizeof(float)), *s = malloc(nqk * sizeof(float));
                float *p = malloc(nqk * sizeof(float)), *o = malloc(nqd * sizeof(float));
                CHECK(q && kk && v && s && p && o);
                fill_row(q, (int64_t)nqd, 0);
                fill_row(kk, (int64_t)nkd, 0);
                fill_row(v, (int64_t)nkd, 0);
                /* the value rows to prefetch change nothing */
                k->attn_scores(q, nq, kk, nk, hd, 0.125f, v, p);
                k->attn_scores(q, nq, kk, nk, hd, 0.125f, NULL, s);
                CHECK_MSG(memcmp(p, s, nqk * sizeof(float)) == 0, "%s scores differ with v_next", k->name);
                fill_row(p, (int64_t)nqk, 0);
                k->attn_mix(p, nq, v, nk, hd, o);
                for (int32_t r = 0; r < nq; r++) {
                        for (int32_t j = 0; j < nk; j++) {
                                double sum = 0, mag = 0;
                                for (int32_t d = 0; d < hd; d++) {
                                        double x = (double)q[r * hd + d] * kk[(size_t)j * hd + d];
                                        sum += x;
                                        mag += fabs(x);
                                }
                                double err = fabs(s[(size_t)r * nk + j] - 0.125 * sum) / (0.125 * mag + 1e-30);
                                worst = MAX(worst, err);
                                CHECK_MSG(err <= 1e-5, "%s scores %dx%dx%d [%d][%d]: %g", k->name, nq, nk, hd, r,
                                          j, err);
                        }
                        for (int32_t d = 0; d < hd; d++) {
                                double sum = 0, mag = 0;
                                for (int32_t j = 0; j < nk; j++) {
                                        double x = (double)p[(size_t)r * nk + j] * v[(size_t)j * hd + d];
                                        sum += x;
                                        mag += fabs(x);
                                }
                                double err = fabs(o[r * hd + d] - sum) / (mag + 1e-30);
                                worst = MAX(worst, err);
                                CHECK_MSG(err <= 1e-5, "%s mix %dx%dx%d [%d][%d]: %g", k->name, nq, nk, hd, r, d,
                                          err);
                        }
                }
                free(q), free(kk), free(v), free(s), free(p), free(o);
        }
        printf("%s: attention products within %.2g of the sum of magnitudes\n", k->name, worst);
}

/* RMSNorm's sum of squares: bit for bit the scalar set's (the order is
 * part of the contract), within 1e-15 of a long double sum, for lengths
 * that end in every place of the 32 partial sums; and zero for n = 0. */
static void test_sum_squares(const kernel_set *k) {
        static const int64_t lengths[] = { 1, 7, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 256, 2047, 2048, 8193 };
        static float x[8193];

        CHECK(k->sum_squares(x, 0) == 0.0);
        for (size_t i = 0; i < ELEMENTSOF(lengths); i++) {
                int64_t n = lengths[i];
                long double ref = 0;
                for (int64_t j = 0; j < n; j++) {
                        x[j] = ldexpf(rndf(), (int)(rnd() % 24) - 12);
                        ref += (long double)(x[j] * x[j]);
                }
                double got = k->sum_squares(x, n), want = kernels_scalar.sum_squares(x, n);
                CHECK_MSG(memcmp(&got, &want, sizeof got) == 0, "%s sum_squares n=%lld: %.17g vs scalar %.17g",
                          k->name, (long long)n, got, want);
                CHECK_MSG(fabsl(got - ref) <= 1e-15L * ref, "%s sum_squares n=%lld: %.17g vs %.17Lg", k->name,
                          (long long)n, got, ref);
        }
        printf("%s: sum of squares as the scalar set, bit for bit\n", k->name);
}

/* Every F16 value but NaNs as a float, and for each finite one whose
 * neighbour above is finite too the float halfway between them (ties
 * round to even) and the next float above that; x holds F16_INPUTS_MAX.
 * Returns how many. */
#define F16_INPUTS_MAX (3 * 65536)
static int64_t f16_inputs(float *x) {
        int64_t n = 0;

        for (uint32_t h = 0; h < (1u << 16); h++) {
                if ((h & 0x7C00) == 0x7C00 && (h & 0x03FF))
                        continue;
                float f = fp16_to_fp32((uint16_t)h), up = fp16_to_fp32((uint16_t)(h + 1));
                x[n++] = f;
                if ((h & 0x7FFF) < 0x7BFF && (h & 0x7C00) != 0x7C00) {
                        float mid = f + (up - f) * 0.5f;
                        x[n++] = mid;
                        x[n++] = nextafterf(mid, up);
                }
        }
        return n;
}

/* The F16 table lookup: bit for bit the scalar set's for every F16 value
 * but NaNs as input, for the floats halfway between neighbours (ties
 * round to even) and just beside them, in place and with a masked tail.
 * The table holds no NaN, whose payloads conversions may treat apart. */
static void test_f16_lookup(const kernel_set *k) {
        static uint16_t table[1 << 16];
        static float x[F16_INPUTS_MAX], y[F16_INPUTS_MAX], want[F16_INPUTS_MAX];

        for (uint32_t i = 0; i < (1u << 16); i++) {
                uint16_t v = (uint16_t)(i * 40503u + 7u);
                table[i] = (v & 0x7C00) == 0x7C00 ? (uint16_t)(v & 0x83FF) : v;
        }
        int64_t n = f16_inputs(x);
        for (int64_t len = n; len > n - 17; len -= 5) {
                memcpy(y, x, (size_t)len * sizeof *x);
                kernels_scalar.f16_lookup(want, x, table, len);
                k->f16_lookup(y, y, table, len);
                CHECK_MSG(memcmp(y, want, (size_t)len * sizeof *y) == 0, "%s f16_lookup differs from scalar (n %lld)",
                          k->name, (long long)len);
        }
        printf("%s: F16 table lookup as the scalar set, bit for bit\n", k->name);
}

/* The computed GELU: bit for bit the lookup in a table of libm's GELU for
 * every F16 input but NaNs, for the floats halfway between neighbours and
 * just beside them (the input's rounding), in place and with a masked
 * tail.  gemma-ops checks the F16 values themselves at run time and falls
 * back to the table; this says the fallback is not what runs here. */
static void test_gelu_f16(const kernel_set *k) {
        static uint16_t table[1 << 16];
        static float x[F16_INPUTS_MAX], y[F16_INPUTS_MAX], want[F16_INPUTS_MAX];
        int64_t below = 0;

        for (uint32_t i = 0; i < (1u << 16); i++) {
                float v = fp16_to_fp32((uint16_t)i);
                table[i] = fp32_to_fp16(0.5f * v * (1.0f + tanhf(GELU_SQRT_2_OVER_PI * v * (1.0f + GELU_COEF_A * v * v))));
        }
        int64_t n = f16_inputs(x);
        for (int64_t len = n; len > n - 17; len -= 5) {
                memcpy(y, x, (size_t)len * sizeof *x);
                kernels_scalar.f16_lookup(want, x, table, len);
                k->gelu_f16(y, y, table, len);
                for (int64_t i = 0; i < len; i++)
                        if (memcmp(&y[i], &want[i], sizeof *y) != 0) {
                                CHECK_MSG(false, "%s gelu_f16(%.9g) = %.9g, the table %.9g", k->name, x[i], y[i], want[i]);
                                break;
                        }
        }
        for (int64_t i = 0; i < n; i++)
                below += x[i] < -3.0f;
        printf("%s: computed GELU as the F16 table, bit for bit, %lld inputs (%lld below -3)\n", k->name, (long long)n,
               (long long)below);
}

int main(void) {
        const char *names[] = { "scalar", "avx2", "avx512" };
        int tested = 0;

        for (size_t i = 0; i < 3; i++) {
                const kernel_set *k = kernels_get(names[i]);
                if (!k) {
                        printf("%s: not supported here\n", names[i]);
                        continue;
                }
                /* Completed sets have every entry the scalar set has. */
                for (int t = 0; t < TYPE_COUNT; t++) {
                        CHECK(!kernels_scalar.vec_dot[t] || k->vec_dot[t]);
                        CHECK(!kernels_scalar.from_float[t] || k->from_float[t]);
                        CHECK(!kernels_scalar.to_float[t] || k->to_float[t]);
                }
                test_set(k);
                test_gemv(k);
                test_math(k);
                test_attention(k);
                test_sum_squares(k);
                test_f16_lookup(k);
                test_gelu_f16(k);
                printf("%s: ok\n", names[i]);
                tested++;
        }
        CHECK(!kernels_get("nonsense"));
        const kernel_set *best = kernels_best();
        const char *env = getenv("SOTTO_KERNELS");
        if (env && kernels_get(env))
                CHECK(strcmp(best->name, env) == 0);
        else
                for (size_t i = 3; i-- > 0;)
                        if (kernels_get(names[i])) {
                                CHECK_MSG(strcmp(best->name, names[i]) == 0, "best is %s", best->name);
                                break;
                        }
        printf("kernels ok (%d sets, best %s)\n", tested, best->name);
        return 0;
}
