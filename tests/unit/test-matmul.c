/* SPDX-License-Identifier: MIT */
/* matmul against a plain double-precision product of the dequantized
 * weights with the float activations, for every type, both paths and
 * several thread counts; the vec path must not depend on the thread count. */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "kernels.h"
#include "macro.h"
#include "matmul.h"
#include "matmul-impl.h"
#include "tensor-type.h"
#include "test.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;
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

/* Random weights of the type: quantized from random floats where we have a
 * quantizer, else random blocks with small positive scales. */
static void *make_weight(uint32_t type, int64_t n_in, int64_t n_out, size_t *row_bytes) {
        const type_traits *t = type_traits_get(type);
        size_t rb;
        CHECK_OK(type_row_size(type, n_in, &rb));
        uint8_t *w = malloc(rb * n_out);
        float *x = malloc(sizeof(float) * n_in);
        CHECK(w && x);
        for (int64_t r = 0; r < n_out; r++) {
                uint8_t *row = w + rb * r;
                if (t->from_float) {
                        for (int64_t i = 0; i < n_in; i++)
                                x[i] = rndf();
                        t->from_float(x, row, n_in);
                        continue;
                }
                for (size_t i = 0; i < rb; i++)
                        row[i] = (uint8_t)rnd();
                for (int64_t b = 0; b < n_in / QK_K; b++) {
                        uint8_t *blk = row + b * t->type_size;
                        uint16_t d = fp32_to_fp16((rnd() % 100 + 1) * 1e-3f), dm = fp32_to_fp16((rnd() % 100) * 1e-3f);
                        if (type == TYPE_Q6_K)
                                memcpy(blk + 208, &d, 2);
                        else {
                                memcpy(blk, &d, 2);
                                memcpy(blk + 2, &dm, 2);
                        }
                }
        }
        free(x);
        *row_bytes = rb;
        return w;
}

static void check_against_reference(const weight *w, const float *x, int64_t n_tokens, const float *y,
                                    double tol) {
        float *wf = malloc(sizeof(float) * w->n_in);
        CHECK(wf);
        for (int64_t o = 0; o < w->n_out; o++) {
                CHECK_OK(weight_get_row(w, o, wf));
                for (int64_t t = 0; t < n_tokens; t++) {
                        double ref = 0, mag = 0;
                        for (int64_t i = 0; i < w->n_in; i++) {
                                ref += (double)wf[i] * x[t * w->n_in + i];
                                mag += fabs((double)wf[i] * x[t * w->n_in + i]);
                        }
                        double got = y[t * w->n_out + o];
                        CHECK_MSG(fabs(got - ref) <= tol * mag + 1e-6, "%s t=%lld o=%lld: %g vs %g (mag %g)",
                                  type_name(w->type), (long long)t, (long long)o, got, ref, mag);
                }
        }
        free(wf);
}

static weight new_weight(uint32_t type, int64_t n_in, int64_t n_out) {
        weight w = { .name = "w", .type = type, .n_in = n_in, .n_out = n_out };
        w.data = make_weight(type, n_in, n_out, &w.row_bytes);
        return w;
}

/* matmul_multi_x: each weight on its own activations, of other widths (a
 * small Q8_0 product beside a large Q4_K one, as LAuReL's beside Wo), gives
 * exactly what separate calls give. */
static void test_multi_x(matmul_ctx *const *ctx, const float *x) {
        weight ws[] = { new_weight(TYPE_Q4_K, 512, 83), new_weight(TYPE_Q8_0, 64, 48), new_weight(TYPE_Q4_K, 512, 16) };
        const weight *wp[] = { &ws[0], &ws[1], &ws[2] };
        const float *xs[] = { x, x + 512, x + 1024 };
        float ym[3][83], ys[3][83];
        float *ymp[] = { ym[0], ym[1], ym[2] };

        for (int n = 1; n <= 3; n++) {
                CHECK_OK(matmul_multi_x(ctx[n], wp, xs, 3, 1, ymp));
                for (int i = 0; i < 3; i++) {
                        CHECK_OK(matmul(ctx[n], &ws[i], xs[i], 1, ys[i]));
                        CHECK_MSG(memcmp(ym[i], ys[i], sizeof(float) * ws[i].n_out) == 0, "multi_x weight %d, %d threads",
                                  i, n);
                }
        }
        for (int i = 0; i < 3; i++)
                free((void *)ws[i].data);
}

typedef struct post_seen {
        const float *ya, *yb;
        float *copy_a, *copy_b;
        _Atomic int *calls; /* per row */
} post_seen;

static void post_record(void *p, int64_t r0, int64_t r1) {
        post_seen *s = p;
        for (int64_t r = r0; r < r1; r++) {
                atomic_fetch_add(&s->calls[r], 1);
                s->copy_a[r] = s->ya[r];
                if (s->yb)
                        s->copy_b[r] = s->yb[r];
        }
}

/* matmul_post: the products separate calls give, and post once on every
 * row, after every product has it (what post sees is the final value);
 * two weights of one shape (Q4_K and Q6_K, as a Q4_K_M gate and up) and
 * one alone (the logits), under 1 MiB (even shares) and over (a long
 * schedule with its shrinking tail). */
static void test_post(matmul_ctx *const *ctx, const float *x, int64_t n_out) {
        const int64_t n_in = 512;
        weight ws[] = { new_weight(TYPE_Q4_K, n_in, n_out), new_weight(TYPE_Q6_K, n_in, n_out) };
        const weight *wp[] = { &ws[0], &ws[1] };
        float *y[2], *ref[2], *copy[2];
        _Atomic int *calls = calloc((size_t)n_out, sizeof *calls);

        CHECK(calls);
        for (int i = 0; i < 2; i++) {
                y[i] = malloc(sizeof(float) * n_out);
                ref[i] = malloc(sizeof(float) * n_out);
                copy[i] = malloc(sizeof(float) * n_out);
                CHECK(y[i] && ref[i] && copy[i]);
                CHECK_OK(matmul(ctx[1], &ws[i], x, 1, ref[i]));
        }
        for (int n = 1; n <= 3; n++)
                for (int n_w = 1; n_w <= 2; n_w++) {
                        post_seen s = { .ya = y[0], .yb = n_w == 2 ? y[1] : NULL, .copy_a = copy[0],
                                        .copy_b = copy[1], .calls = calls };
                        for (int64_t r = 0; r < n_out; r++)
                                atomic_store(&calls[r], 0);
                        CHECK_OK(matmul_post(ctx[n], wp, n_w, x, y, post_record, &s));
                        for (int64_t r = 0; r < n_out; r++)
                                CHECK_MSG(atomic_load(&calls[r]) == 1, "post on row %lld %d times, %d threads, %d weights",
                                          (long long)r, atomic_load(&calls[r]), n, n_w);
                        for (int i = 0; i < n_w; i++) {
                                CHECK_MSG(memcmp(y[i], ref[i], sizeof(float) * n_out) == 0, "matmul_post product %d", i);
                                CHECK_MSG(memcmp(copy[i], ref[i], sizeof(float) * n_out) == 0,
                                          "post saw product %d before it was done", i);
                        }
                }
        /* shapes that differ, no post */
        weight narrow = new_weight(TYPE_Q4_K, n_in, 16);
        const weight *bad[] = { &ws[0], &narrow };
        CHECK(matmul_post(ctx[2], bad, 2, x, y, post_record, NULL) == -EINVAL);
        CHECK(matmul_post(ctx[2], wp, 1, x, y, NULL, NULL) == -EINVAL);
        free((void *)narrow.data);
        for (int i = 0; i < 2; i++) {
                free((void *)ws[i].data);
                free(y[i]);
                free(ref[i]);
                free(copy[i]);
        }
        free(calls);
}

static void test_set(void) {
        static const uint32_t types[] = { TYPE_F32, TYPE_F16, TYPE_BF16, TYPE_Q8_0, TYPE_Q4_0, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K };
        static const int64_t token_counts[] = { 1, 3, 7, 8, 37 };
        const int64_t n_in = 512, n_out = 83;
        matmul_ctx *ctx[4] = {};

        for (int n = 1; n <= 3; n++)
                CHECK_OK(matmul_ctx_new(n, &ctx[n]));

        float *x = malloc(sizeof(float) * n_in * 37);
        float *y = malloc(sizeof(float) * n_out * 37), *y1 = malloc(sizeof(float) * n_out * 37);
        CHECK(x && y && y1);
        for (int64_t i = 0; i < n_in * 37; i++)
                x[i] = rndf();

        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
                uint32_t type = types[ti];
                weight w = { .name = "w", .type = type, .n_in = n_in, .n_out = n_out };
                void *data = make_weight(type, n_in, n_out, &w.row_bytes);
                w.data = data;
                uint32_t act = type_traits_get(type)->vec_dot_type;
                /* The vec path quantizes the activations: Q8 costs up to
                 * half a step of 1/127 of each block's largest value per
                 * element, bf16 2^-9, f16 2^-11 relative. */
                double vec_tol = act == TYPE_F32 ? 1e-5 : act == TYPE_F16 ? 1e-3 : act == TYPE_BF16 ? 4e-3 : 1.5e-2;

                for (size_t ki = 0; ki < sizeof token_counts / sizeof token_counts[0]; ki++) {
                        int64_t nt = token_counts[ki];
                        for (int n = 1; n <= 3; n++) {
                                memset(y, 0xFF, sizeof(float) * n_out * nt);
                                CHECK_OK(matmul(ctx[n], &w, x, nt, y));
                                bool vec = nt < 8;
                                /* sgemm works on the float activations; the
                                 * vec and int8 paths on quantized ones */
                                bool exact_act = !vec && matmul_last_path(ctx[n], type) == MATMUL_PATH_SGEMM;
                                check_against_reference(&w, x, nt, y, exact_act ? 1e-5 : vec_tol);
                                if (vec) {
                                        if (n == 1)
                                                memcpy(y1, y, sizeof(float) * n_out * nt);
                                        else
                                                CHECK_MSG(memcmp(y, y1, sizeof(float) * n_out * nt) == 0,
                                                          "%s: %d threads differ from 1", type_name(type), n);
                                } else
                                        CHECK(matmul_last_path(ctx[n], type) != MATMUL_PATH_VEC);
                        }
                }
                /* Forced paths on 37 tokens: int8 and vec see the same
                 * quantized activations, so they agree to float rounding
                 * (1e-5 of the magnitude: a few hundred float adds). */
                {
                        float *yv = malloc(sizeof(float) * n_out * 37), *yi = malloc(sizeof(float) * n_out * 37);
                        CHECK(yv && yi);
                        for (int n = 1; n <= 3; n += 2) {
                                matmul_ctx_force_path(ctx[n], MATMUL_PATH_VEC);
                                CHECK_OK(matmul(ctx[n], &w, x, 37, yv));
                                CHECK(matmul_last_path(ctx[n], type) == MATMUL_PATH_VEC);
                                matmul_ctx_force_path(ctx[n], MATMUL_PATH_SGEMM);
                                CHECK_OK(matmul(ctx[n], &w, x, 37, yi));
                                CHECK(matmul_last_path(ctx[n], type) == MATMUL_PATH_SGEMM);
                                check_against_reference(&w, x, 37, yi, 1e-5);
                                matmul_ctx_force_path(ctx[n], MATMUL_PATH_INT8);
                                CHECK_OK(matmul(ctx[n], &w, x, 37, yi));
                                if (matmul_last_path(ctx[n], type) == MATMUL_PATH_INT8) {
                                        float *wf = malloc(sizeof(float) * n_in);
                                        CHECK(wf);
                                        for (int64_t o = 0; o < n_out; o++) {
                                                CHECK_OK(weight_get_row(&w, o, wf));
                                                for (int64_t t = 0; t < 37; t++) {
                                                        double mag = 0;
                                                        for (int64_t i = 0; i < n_in; i++)
                                                                mag += fabs((double)wf[i] * x[t * n_in + i]);
                                                        CHECK_MSG(fabs(yi[t * n_out + o] - yv[t * n_out + o]) <= 1e-5 * mag,
                                                                  "%s int8 vs vec t=%lld o=%lld: %g vs %g", type_name(type),
                                                                  (long long)t, (long long)o, yi[t * n_out + o], yv[t * n_out + o]);
                                                }
                                        }
                                        free(wf);
                                } else
                                        CHECK(!type_traits_get(type)->is_quantized || !kernels_get("avx512"));
                                matmul_ctx_force_path(ctx[n], _MATMUL_PATH_MAX);
                        }
                        free(yv);
                        free(yi);
                }

                /* The vec path is the best set's gemv kernel where it has one for
                 * the type, else its dot kernel, row by row. */
                const kernel_set *k = kernels_best();
                size_t arow;
                CHECK_OK(type_row_size(act, n_in, &arow));
                uint8_t *aq = malloc(arow);
                CHECK(aq);
                k->from_float[act](x, aq, n_in);
                CHECK_OK(matmul(ctx[2], &w, x, 1, y));
                const gemv_kernel *g = k->gemv && gemv_takes(&k->gemv[type], n_in) ? &k->gemv[type] : NULL;
                void *gact = NULL;
                if (g) {
                        CHECK(posix_memalign(&gact, 64, gemv_act_row(g, n_in)) == 0);
                        g->prep(x, gact, n_in);
                }
                for (int64_t o = 0; o < n_out; o++) {
                        float s;
                        if (g) /* the decoding kernel, one row at a time */
                                g->rows(n_in, (const uint8_t *)data + o * w.row_bytes, w.row_bytes, 1, gact, &s);
                        else
                                k->vec_dot[type](n_in, &s, (const uint8_t *)data + o * w.row_bytes, aq);
                        CHECK(s == y[o]);
                }
                free(gact);
                free(aq);

                /* Bad arguments are refused, not crashed on. */
                weight bad = w;
                bad.row_bytes++;
                CHECK(matmul(ctx[1], &bad, x, 1, y) == -EINVAL);
                bad = w;
                bad.n_in = 100;
                CHECK(matmul(ctx[1], &bad, x, 1, y) == -EINVAL);
                CHECK(matmul(ctx[1], &w, x, 0, y) == -EINVAL);
                CHECK(weight_get_row(&w, n_out, y) == -EINVAL);
                free(data);
        }
        /* matmul_multi: q/k/v-like mixes of types and sizes (Q4_K with a
         * Q6_K, as in Q4_K_M files) give exactly what separate calls give. */
        static const uint32_t mixes[][3] = { { TYPE_Q4_0, TYPE_Q4_0, TYPE_Q4_0 }, { TYPE_Q8_0, TYPE_Q8_0, TYPE_Q8_0 },
                                             { TYPE_Q4_K, TYPE_Q4_K, TYPE_Q6_K }, { TYPE_Q4_K, TYPE_Q6_K, TYPE_F16 } };
        static const int64_t outs[3] = { 83, 32, 48 };
        for (size_t mi = 0; mi < ELEMENTSOF(mixes); mi++)
                for (int64_t nt = 1; nt <= 3; nt += 2) {
                        weight ws[3];
                        const weight *wp[3];
                        float *ym[3], *ys[3];
                        for (int i = 0; i < 3; i++) {
                                ws[i] = (weight){ .name = "m", .type = mixes[mi][i], .n_in = n_in, .n_out = outs[i] };
                                ws[i].data = make_weight(ws[i].type, n_in, outs[i], &ws[i].row_bytes);
                                wp[i] = &ws[i];
                                ym[i] = malloc(sizeof(float) * outs[i] * nt);
                                ys[i] = malloc(sizeof(float) * outs[i] * nt);
                                CHECK(ym[i] && ys[i]);
                        }
                        CHECK_OK(matmul_multi(ctx[2], wp, 3, x, nt, ym));
                        for (int i = 0; i < 3; i++) {
                                CHECK_OK(matmul(ctx[3], &ws[i], x, nt, ys[i]));
                                CHECK_MSG(memcmp(ym[i], ys[i], sizeof(float) * outs[i] * nt) == 0,
                                          "matmul_multi mix %zu weight %d nt %lld", mi, i, (long long)nt);
                                free((void *)ws[i].data);
                                free(ym[i]);
                                free(ys[i]);
                        }
                }

        test_multi_x(ctx, x);
        test_post(ctx, x, 200);
        test_post(ctx, x, 4000);

        weight q41 = { .type = TYPE_Q4_1, .n_in = 64, .n_out = 1, .row_bytes = 40, .data = x };
        CHECK(matmul(ctx[1], &q41, x, 1, y) == -EINVAL);
        CHECK(strcmp(matmul_path_name(MATMUL_PATH_INT8), "int8") == 0);

        for (int n = 1; n <= 3; n++)
                matmul_ctx_free(ctx[n]);
        free(x);
        free(y);
        free(y1);
}

/* Every kernel set the CPU has: matmul contexts take kernels_best(), which
 * follows SOTTO_KERNELS. */
/* The row schedules hand out every row exactly once, in increasing order,
 * in whole units but for the last chunk; the long one starts with one big
 * chunk per thread covering at least half of the rows when there are
 * enough, and then hands out chunks that
 * never grow and are at least min_rows (40, so 48) long but for the last;
 * a single taker gets everything. */
static void test_row_sched(void) {
        static const int64_t rows[] = { 1, 15, 16, 17, 100, 512, 2048, 2049, 8192, 262144 };
        static uint8_t seen[262144];

        for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                for (int nth = 1; nth <= 4; nth++)
                        for (int kind = 0; kind < 2; kind++) {
                                int64_t n = rows[i], r0, r1, next = 0, first = -1, prev = -1, k = 0;
                                row_sched s;
                                if (kind)
                                        row_sched_init_long(&s, n, nth, 16, 40);
                                else
                                        row_sched_init(&s, n, nth, 16);
                                memset(seen, 0, (size_t)n);
                                while (row_sched_next(&s, 0, &r0, &r1)) {
                                        CHECK(r0 == next && r1 > r0 && r1 <= n);
                                        CHECK(r1 == n || (r1 - r0) % 16 == 0);
                                        if (first < 0)
                                                first = r1 - r0;
                                        if (kind && s.n_big && k++ >= s.n_big) {
                                                CHECK(r1 == n || r1 - r0 >= 48);
                                                CHECK(prev < 0 || r1 - r0 <= prev);
                                                prev = r1 - r0;
                                        }
                                        for (int64_t r = r0; r < r1; r++)
                                                seen[r]++;
                                        next = r1;
                                }
                                CHECK_MSG(next == n, "rows %lld, %d threads, kind %d: ended at %lld", (long long)n, nth,
                                          kind, (long long)next);
                                for (int64_t r = 0; r < n; r++)
                                        CHECK(seen[r] == 1);
                                if (kind && nth > 1 && n >= 2048)
                                        CHECK(first * nth >= n / 2);
                                /* thread ith starts with big chunk ith */
                                if (kind && s.n_big) {
                                        row_sched_init_long(&s, n, nth, 16, 40);
                                        CHECK(row_sched_next(&s, nth - 1, &r0, &r1));
                                        CHECK(r0 == (nth - 1) * s.big && r1 == r0 + s.big);
                                        CHECK(row_sched_next(&s, 0, &r0, &r1) && r0 == 0);
                                }
                        }
        printf("row schedules ok\n");
}

int main(void) {
        test_row_sched();
        static const char *sets[] = { "scalar", "avx2", "avx512" };
        for (size_t i = 0; i < 3; i++) {
                if (!kernels_get(sets[i]))
                        continue;
                setenv("SOTTO_KERNELS", sets[i], 1);
                CHECK(strcmp(kernels_best()->name, sets[i]) == 0);
                test_set();
                printf("matmul with %s kernels ok\n", sets[i]);
        }
        return 0;
}
