/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "gemma-ops.h"
#include "kernels.h"
#include "macro.h"
#include "model-ops.h"
#include "tensor-type.h"

/* ======================================================================
 * GELU through a table of 65536 F16 results, one per F16 input, filled
 * once.  The formula is evaluated in float with the same constants and
 * order of operations as ggml, then rounded to F16. */

static uint16_t gelu_table[1 << 16];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;
/* the kernel set's gelu_f16 gives the table's value for every F16 input */
static bool gelu_computed;

static float gelu_exact(float x) {
        return 0.5f * x * (1.0f + tanhf(GELU_SQRT_2_OVER_PI * x * (1.0f + GELU_COEF_A * x * x)));
}

/* Whether gelu_f16 equals the lookup on every finite F16 input, in blocks
 * of 256 (about 0.1 ms, once per process). */
static bool gelu_f16_exact(const kernel_set *k) {
        float x[256], want[256], got[256];

        for (uint32_t h0 = 0; h0 < (1u << 16); h0 += 256) {
                for (uint32_t i = 0; i < 256; i++) {
                        uint16_t h = (uint16_t)(h0 + i);
                        x[i] = (h & 0x7C00) == 0x7C00 ? 0.0f : fp16_to_fp32(h);
                }
                k->f16_lookup(want, x, gelu_table, 256);
                k->gelu_f16(got, x, gelu_table, 256);
                if (memcmp(want, got, sizeof want) != 0)
                        return false;
        }
        return true;
}

static void gelu_table_init(void) {
        for (uint32_t i = 0; i < (1u << 16); i++)
                gelu_table[i] = fp32_to_fp16(gelu_exact(fp16_to_fp32((uint16_t)i)));
        gelu_computed = gelu_f16_exact(kernels_best());
}

static inline float gelu_lookup(float x) {
        if (x <= -10.0f)
                return 0.0f;
        if (x >= 10.0f)
                return x;
        return fp16_to_fp32(gelu_table[fp32_to_fp16(x)]);
}

float gemma_gelu(float x) {
        pthread_once(&gelu_once, gelu_table_init);
        return gelu_lookup(x);
}

typedef struct gelu_job {
        float *g;
        const float *u;
        int64_t n;
} gelu_job;

/* Calls of up to this many values (a token's feed-forward width or four)
 * compute GELU rather than read the table: between two such calls a token
 * streams tens of MiB of weights, which leave no table line in the caches
 * (8192 values against cold caches: table 17.8 us, computed 7.6).  A
 * prompt's millions of values keep the table warm, where reading it is
 * the faster (2.8 us against 4.8). */
#define GELU_COMPUTED_MAX 65536

/* gelu_lookup over a span, 256 values at a time: the table lookup (or the
 * computed GELU, equal to it) by the kernel set's vector code, then the
 * clamps.  n_call: the values of the whole call. */
_vector_clones_ static void gelu_span(float *g, const float *u, int64_t n, int64_t n_call) {
        const kernel_set *k = kernels_best();
        void (*f16_gelu)(float *, const float *, const uint16_t *, int64_t) =
                gelu_computed && n_call <= GELU_COMPUTED_MAX ? k->gelu_f16 : k->f16_lookup;
        float v[256];

        for (int64_t i0 = 0; i0 < n; i0 += 256) {
                int64_t m = MIN(256, n - i0);
                float *x = g + i0;
                f16_gelu(v, x, gelu_table, m);
                for (int64_t i = 0; i < m; i++) {
                        float r = x[i] <= -10.0f ? 0.0f : x[i] >= 10.0f ? x[i] : v[i];
                        x[i] = u ? r * u[i0 + i] : r;
                }
        }
}

static void gelu_worker(void *ctx, int ith, int nth) {
        gelu_job *j = ctx;
        int64_t lo, hi;

        ops_float_share(j->n, ith, nth, &lo, &hi);
        gelu_span(j->g + lo, j->u ? j->u + lo : NULL, hi - lo, j->n);
}

static void gelu_run(threadpool *tp, gelu_job *j) {
        pthread_once(&gelu_once, gelu_table_init);
        if (tp && j->n >= 8192 && threadpool_size(tp) > 1)
                threadpool_run(tp, gelu_worker, j);
        else
                gelu_worker(j, 0, 1);
}

void gemma_ops_gelu(threadpool *tp, float *x, int64_t n) {
        gelu_job j = { .g = x, .n = n };
        gelu_run(tp, &j);
}

void gemma_ops_geglu(threadpool *tp, float *g, const float *u, int64_t n) {
        gelu_job j = { .g = g, .u = u, .n = n };
        gelu_run(tp, &j);
}

static void geglu_rows(void *ctx, int64_t r0, int64_t r1) {
        gelu_job *j = ctx;
        gelu_span(j->g + r0, j->u + r0, r1 - r0, j->n);
}

/* ======================================================================
 * Small element-wise steps, each rounded as its own ggml op. */

typedef struct softcap_job {
        float *x;
        int64_t n;
        float cap;
} softcap_job;

_vector_clones_ static void softcap_span(float *x, int64_t n, float cap) {
        float inv = 1.0f / cap;

        for (int64_t i = 0; i < n; i++)
                x[i] *= inv;
        kernels_best()->tanh_f32(x, x, n);
        for (int64_t i = 0; i < n; i++)
                x[i] *= cap;
}

static void softcap_worker(void *ctx, int ith, int nth) {
        softcap_job *j = ctx;
        int64_t lo, hi;

        ops_float_share(j->n, ith, nth, &lo, &hi);
        softcap_span(j->x + lo, hi - lo, j->cap);
}

static void softcap_rows(void *ctx, int64_t r0, int64_t r1) {
        softcap_job *j = ctx;
        softcap_span(j->x + r0, r1 - r0, j->cap);
}

/* On all threads, with the kernel set's tanh: over a 262144-token
 * vocabulary libm's tanhf was a few per cent of a generated token's time,
 * on one thread while the others waited. */
void gemma_ops_softcap(threadpool *tp, float *x, int64_t n, float cap) {
        softcap_job j = { .x = x, .n = n, .cap = cap };

        if (tp && n >= 8192 && threadpool_size(tp) > 1)
                threadpool_run(tp, softcap_worker, &j);
        else
                softcap_worker(&j, 0, 1);
}

_vector_clones_ void gemma_ops_scale(float *x, int64_t n, float s) {
        for (int64_t i = 0; i < n; i++)
                x[i] *= s;
}

float gemma_magnitude(const float *x, int64_t n) {
        return sqrtf((float)ops_sum_squares(x, n));
}

/* Sums in eight double lanes: one chain of dependent double adds waited
 * an add's latency per value, 13 us per 8192-wide gate row. */
#define SUM_LANES 8
static double sum_f64(const float *x, int64_t n) {
        double lane[SUM_LANES] = { 0 }, s = 0.0;
        int64_t i = 0;

        for (; i + SUM_LANES <= n; i += SUM_LANES)
                for (int k = 0; k < SUM_LANES; k++)
                        lane[k] += (double)x[i + k];
        for (; i < n; i++)
                lane[0] += (double)x[i];
        for (int k = 0; k < SUM_LANES; k++)
                s += lane[k];
        return s;
}

/* sum of (x - mean)^2, each square in float as ggml does */
static double sum_sq_dev_f64(const float *x, int64_t n, float mean) {
        double lane[SUM_LANES] = { 0 }, s = 0.0;
        int64_t i = 0;

        for (; i + SUM_LANES <= n; i += SUM_LANES)
                for (int k = 0; k < SUM_LANES; k++) {
                        float d = x[i + k] - mean;
                        lane[k] += (double)(d * d);
                }
        for (; i < n; i++) {
                float d = x[i] - mean;
                lane[0] += (double)(d * d);
        }
        for (int k = 0; k < SUM_LANES; k++)
                s += lane[k];
        return s;
}

_vector_clones_ void gemma_gaussian_topk(float *x, int64_t n, float std_mul) {
        if (n < 2)
                return;
        float mean = (float)sum_f64(x, n) / (float)n;
        double sq = sum_sq_dev_f64(x, n, mean);
        float std = sqrtf((float)sq * (1.0f / (float)(n - 1)));
        float cut = mean + std * std_mul;
        for (int64_t i = 0; i < n; i++) {
                float v = x[i] - cut;
                x[i] = v > 0.0f ? v : 0.0f;
        }
}

/* ======================================================================
 * Products with activations rounded to the weight's dot type.  Rounding
 * a row through Q8_0 / Q8_K / F16 and back is idempotent, so the one-token
 * path (which converts again) sees the same values as the many-token one.
 * This forces the path of the model's matmul context for the duration of
 * the call (one forward pass at a time per model). */

/* Weights whose rows are longer than n_in (the first n_in columns of a
 * wider matrix, MatFormer's in-place slices): the activations converted to
 * the dot type once, then every row dotted with every token on the pool. */
typedef struct strided_job {
        const weight *w;
        vec_dot_fn dot;
        const uint8_t *act;
        size_t act_row;
        int64_t n_tokens;
        float *y;
} strided_job;

static void strided_worker(void *p, int ith, int nth) {
        const strided_job *j = p;
        int64_t n = j->w->n_out, r0 = n * ith / nth, r1 = n * (ith + 1) / nth;

        for (int64_t r = r0; r < r1; r++) {
                const uint8_t *row = (const uint8_t *)j->w->data + (size_t)r * j->w->row_bytes;
                for (int64_t t = 0; t < j->n_tokens; t++)
                        j->dot(j->w->n_in, &j->y[t * j->w->n_out + r], row, j->act + (size_t)t * j->act_row);
        }
}

static int matmul_strided(matmul_ctx *mm, const weight *w, uint32_t dt, const float *x, int64_t n_tokens, float *y,
                          float *tmp) {
        const kernel_set *k = kernels_best();
        strided_job j = { .w = w, .dot = k->vec_dot[w->type], .n_tokens = n_tokens, .y = y };
        size_t row;
        int r;

        if (!j.dot)
                return -EOPNOTSUPP;
        if (dt == TYPE_F32) {
                j.act = (const uint8_t *)x;
                j.act_row = (size_t)w->n_in * sizeof(float);
        } else {
                /* the converted rows are never larger than the floats */
                r = type_row_size(dt, w->n_in, &row);
                if (r < 0)
                        return r;
                if (row > (size_t)w->n_in * sizeof(float) || !k->from_float[dt])
                        return -EOPNOTSUPP;
                for (int64_t i = 0; i < n_tokens; i++)
                        k->from_float[dt](x + i * w->n_in, (uint8_t *)tmp + (size_t)i * row, w->n_in);
                j.act = (const uint8_t *)tmp;
                j.act_row = row;
        }
        threadpool *tp = matmul_ctx_pool(mm);
        if (tp && threadpool_size(tp) > 1 && w->n_out >= 64)
                threadpool_run(tp, strided_worker, &j);
        else
                strided_worker(&j, 0, 1);
        return 0;
}

/* Whether the activations must be rounded to the dot type before the
 * product: not for F32 weights, and not for one token on quantized
 * weights, whose dot kernels convert x themselves (the round trip would
 * give them the same blocks: idempotent). */
static bool rounds_first(const type_traits *t, int64_t n_tokens) {
        return t->vec_dot_type != TYPE_F32 && !(t->is_quantized && n_tokens == 1);
}

int gemma_matmul(matmul_ctx *mm, const weight *w, const float *x, int64_t n_tokens, float *y, float *tmp) {
        const type_traits *t = type_traits_get(w->type);
        const kernel_set *k = kernels_best();
        uint32_t dt;
        size_t row;
        int r;

        if (!t || n_tokens <= 0)
                return -EINVAL;
        dt = t->vec_dot_type;
        r = type_row_size(w->type, w->n_in, &row);
        if (r < 0 || row > w->row_bytes)
                return -EINVAL;
        if (row < w->row_bytes)
                return matmul_strided(mm, w, dt, x, n_tokens, y, tmp);
        if (!rounds_first(t, n_tokens))
                return matmul(mm, w, x, n_tokens, y);
        if (!k->from_float[dt] || !k->to_float[dt])
                return -EOPNOTSUPP;
        r = type_row_size(dt, w->n_in, &row);
        if (r < 0)
                return r;

        /* one row of blocks at a time, on the stack up to F = 16384 in F16 */
        uint8_t small[1 << 15];
        void *blocks = row <= sizeof small ? small : malloc(row);
        if (!blocks)
                return -ENOMEM;
        for (int64_t i = 0; i < n_tokens; i++) {
                k->from_float[dt](x + i * w->n_in, blocks, w->n_in);
                k->to_float[dt](blocks, tmp + i * w->n_in, w->n_in);
        }
        if (blocks != small)
                free(blocks);
        if (!t->is_quantized)
                return matmul(mm, w, tmp, n_tokens, y);

        /* Quantized weights: ggml sums integer products per block and
         * scales each block sum.  The int8 path does the same for many
         * tokens at once (prompts), so matmul() may choose it; an sgemm
         * over dequantized values rounds differently, which these models
         * amplify to 0.04, so without int8 the per-token dot kernels
         * compute every row. */
        if (matmul_has_int8(w->type))
                return matmul(mm, w, tmp, n_tokens, y);
        matmul_ctx_force_path(mm, MATMUL_PATH_VEC);
        r = matmul(mm, w, tmp, n_tokens, y);
        matmul_ctx_force_path(mm, _MATMUL_PATH_MAX);
        return r;
}

int gemma_matmul_multi(matmul_ctx *mm, const weight *const *ws, int n_w, const float *x, int64_t n_tokens,
                       float *const *ys, float *tmp) {
        const kernel_set *k = kernels_best();
        const type_traits *t0 = n_w > 0 ? type_traits_get(ws[0]->type) : NULL;
        bool same = t0 && n_w <= MATMUL_MULTI_MAX && n_tokens > 0, force_vec = false;
        uint32_t dt = t0 ? t0->vec_dot_type : 0;
        size_t row;
        int r;

        for (int i = 0; same && i < n_w; i++) {
                const type_traits *t = type_traits_get(ws[i]->type);
                same = t && t->vec_dot_type == dt && ws[i]->n_in == ws[0]->n_in &&
                       type_row_size(ws[i]->type, ws[i]->n_in, &row) >= 0 && row == ws[i]->row_bytes;
                /* gemma_matmul forces the dot kernels on quantized weights
                 * without int8: all or none of them here */
                bool fv = same && t->is_quantized && !matmul_has_int8(ws[i]->type);
                if (i == 0)
                        force_vec = fv;
                else if (fv != force_vec)
                        same = false;
        }
        if (same && dt != TYPE_F32 &&
            (!k->from_float[dt] || !k->to_float[dt] || type_row_size(dt, ws[0]->n_in, &row) < 0))
                same = false;
        if (!same) {
                for (int i = 0; i < n_w; i++)
                        if ((r = gemma_matmul(mm, ws[i], x, n_tokens, ys[i], tmp)) < 0)
                                return r;
                return 0;
        }
        if (rounds_first(t0, n_tokens)) {
                /* round the activations once, as gemma_matmul does per call */
                int64_t n_in = ws[0]->n_in;
                uint8_t small[1 << 15];
                void *blocks = row <= sizeof small ? small : malloc(row);
                if (!blocks)
                        return -ENOMEM;
                for (int64_t i = 0; i < n_tokens; i++) {
                        k->from_float[dt](x + i * n_in, blocks, n_in);
                        k->to_float[dt](blocks, tmp + i * n_in, n_in);
                }
                if (blocks != small)
                        free(blocks);
                x = tmp;
        }
        if (force_vec)
                matmul_ctx_force_path(mm, MATMUL_PATH_VEC);
        r = matmul_multi(mm, ws, n_w, x, n_tokens, ys);
        if (force_vec)
                matmul_ctx_force_path(mm, _MATMUL_PATH_MAX);
        return r;
}

/* Whether gemma_matmul hands w to matmul as it is: nothing rounded
 * first, whole rows. */
static bool goes_direct(const weight *w, int64_t n_tokens) {
        const type_traits *t = type_traits_get(w->type);
        size_t row;

        return t && !rounds_first(t, n_tokens) && type_row_size(w->type, w->n_in, &row) >= 0 && row == w->row_bytes;
}

int gemma_matmul_geglu(matmul_ctx *mm, const weight *w_gate, const weight *w_up, const float *x, int64_t n_tokens,
                       float *gate, float *up, float *tmp) {
        gelu_job j = { .g = gate, .u = up, .n = n_tokens * w_gate->n_out };
        const weight *ws[] = { w_up, w_gate };
        float *ys[] = { up, gate };
        int r;

        if (n_tokens == 1 && goes_direct(w_gate, 1) && goes_direct(w_up, 1) && w_gate->n_out == w_up->n_out &&
            w_gate->n_in == w_up->n_in) {
                pthread_once(&gelu_once, gelu_table_init); /* geglu_rows reads the table */
                return matmul_post(mm, ws, 2, x, ys, geglu_rows, &j);
        }
        if ((r = gemma_matmul_multi(mm, ws, 2, x, n_tokens, ys, tmp)) < 0)
                return r;
        gelu_run(matmul_ctx_pool(mm), &j);
        return 0;
}

int gemma_matmul_gelu_mul(matmul_ctx *mm, const weight *w, const float *x, int64_t n_tokens, float *y, const float *m,
                          int64_t m_ld, float *tmp) {
        gelu_job j = { .g = y, .u = m, .n = w->n_out };
        int r;

        if (n_tokens == 1 && goes_direct(w, 1)) {
                pthread_once(&gelu_once, gelu_table_init); /* geglu_rows reads the table */
                return matmul_post(mm, &w, 1, x, &y, geglu_rows, &j);
        }
        if ((r = gemma_matmul(mm, w, x, n_tokens, y, tmp)) < 0)
                return r;
        gemma_ops_gelu(matmul_ctx_pool(mm), y, n_tokens * w->n_out);
        for (int64_t t = 0; t < n_tokens; t++)
                for (int64_t i = 0; i < w->n_out; i++)
                        y[t * w->n_out + i] *= m[t * m_ld + i];
        return 0;
}

int gemma_matmul_softcap(matmul_ctx *mm, const weight *w, const float *x, int64_t n_tokens, float *y, float *tmp,
                         float cap) {
        softcap_job j = { .x = y, .n = n_tokens * w->n_out, .cap = cap };
        int r;

        if (cap > 0.0f && n_tokens == 1 && goes_direct(w, 1))
                return matmul_post(mm, &w, 1, x, &y, softcap_rows, &j);
        if ((r = gemma_matmul(mm, w, x, n_tokens, y, tmp)) < 0)
                return r;
        if (cap > 0.0f)
                gemma_ops_softcap(matmul_ctx_pool(mm), y, j.n, cap);
        return 0;
}

int gemma_matmul_multi_x(matmul_ctx *mm, const weight *const *ws, const float *const *xs, int n_w, int64_t n_tokens,
                         float *const *ys, float *tmp) {
        bool one_x = n_w > 0, direct = n_w <= MATMUL_MULTI_MAX && n_tokens > 0;
        int r;

        for (int i = 1; i < n_w; i++)
                one_x = one_x && xs[i] == xs[0];
        if (one_x)
                return gemma_matmul_multi(mm, ws, n_w, xs[0], n_tokens, ys, tmp);
        /* each its own activations: together where gemma_matmul would hand
         * the weight to matmul as it is (nothing rounded first, whole rows) */
        for (int i = 0; direct && i < n_w; i++)
                direct = goes_direct(ws[i], n_tokens);
        if (direct)
                return matmul_multi_x(mm, ws, xs, n_w, n_tokens, ys);
        for (int i = 0; i < n_w; i++)
                if ((r = gemma_matmul(mm, ws[i], xs[i], n_tokens, ys[i], tmp)) < 0)
                        return r;
        return 0;
}
