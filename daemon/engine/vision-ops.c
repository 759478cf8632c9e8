/* SPDX-License-Identifier: MIT */
/* Element-wise pieces of the vision encoder: LayerNorm, softmax, the FFN
 * activations, biases, and products whose activations are rounded to the
 * weight's dot type first (F16 for F16 weights), as ggml's CPU backend
 * computes them, so that our embeddings can be held to a tight tolerance
 * against the reference's.
 *
 * The softmax is the hot spot after the products: 16 heads x 4096^2 scores
 * per layer at Gemma 3's size, 7 billion exponentials per image, so it has
 * an AVX2 path with a polynomial exp:
 *   e^x = 2^n e^r,  n = round(x / ln 2),  r = x - n ln 2 in [-ln2/2, ln2/2]
 *   e^r by its Taylor series to r^6 (relative error below 2e-7 there). */
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "gemma-ops.h"
#include "kernels-cpu.h"
#include "kernels.h"
#include "tensor-type.h"
#include "vision-impl.h"

/* ---- LayerNorm ---- */

typedef struct norm_job {
        float *y;
        const float *x, *w, *b;
        int64_t n_rows, n;
        float eps;
} norm_job;

static void norm_worker(void *ctx, int ith, int nth) {
        const norm_job *j = ctx;
        for (int64_t t = ith; t < j->n_rows; t += nth) {
                const float *xr = j->x + t * j->n;
                float *yr = j->y + t * j->n;
                double sum = 0, sum2 = 0;
                for (int64_t i = 0; i < j->n; i++)
                        sum += xr[i];
                float mean = (float)(sum / j->n);
                for (int64_t i = 0; i < j->n; i++) {
                        float d = xr[i] - mean;
                        yr[i] = d;
                        sum2 += (double)d * d;
                }
                float scale = 1.0f / sqrtf((float)(sum2 / j->n) + j->eps);
                for (int64_t i = 0; i < j->n; i++) {
                        float v = yr[i] * scale;
                        if (j->w)
                                v *= j->w[i];
                        if (j->b)
                                v += j->b[i];
                        yr[i] = v;
                }
        }
}

void vision_layer_norm(threadpool *tp, float *y, const float *x, int64_t n_rows, int64_t n, const float *w,
                       const float *b, float eps) {
        norm_job j = { .y = y, .x = x, .w = w, .b = b, .n_rows = n_rows, .n = n, .eps = eps };
        if (tp && n_rows > 1)
                threadpool_run(tp, norm_worker, &j);
        else
                norm_worker(&j, 0, 1);
}

/* ---- softmax ---- */

__attribute__((target("avx2,fma"))) static inline __m256 exp_avx2(__m256 x) {
        const __m256 lo = _mm256_set1_ps(-87.0f);
        __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
        x = _mm256_max_ps(x, lo);
        __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        /* r = x - n ln2, ln2 in two parts so that n * hi is exact */
        __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
        r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
        __m256 p = _mm256_set1_ps(1.0f / 720);
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
        __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
        __m256 v = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
        return _mm256_andnot_ps(under, v);
}

__attribute__((target("avx2,fma"))) static void softmax_avx2(float *x, int64_t n) {
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
                vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
        float m[8], mx = -INFINITY;
        _mm256_storeu_ps(m, vmax);
        for (int k = 0; k < 8; k++)
                mx = m[k] > mx ? m[k] : mx;
        for (int64_t k = i; k < n; k++)
                mx = x[k] > mx ? x[k] : mx;

        __m256 vm = _mm256_set1_ps(mx);
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
        for (i = 0; i + 8 <= n; i += 8) {
                __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
                _mm256_storeu_ps(x + i, e);
                s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
                s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
        }
        double s[4], sum = 0;
        _mm256_storeu_pd(s, _mm256_add_pd(s0, s1));
        sum = s[0] + s[1] + s[2] + s[3];
        for (; i < n; i++) {
                x[i] = expf(x[i] - mx);
                sum += x[i];
        }
        __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
        for (i = 0; i + 8 <= n; i += 8)
                _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
        for (; i < n; i++)
                x[i] *= (float)(1.0 / sum);
}

static void softmax_scalar(float *x, int64_t n) {
        float mx = -INFINITY;
        for (int64_t i = 0; i < n; i++)
                mx = x[i] > mx ? x[i] : mx;
        double sum = 0;
        for (int64_t i = 0; i < n; i++) {
                x[i] = expf(x[i] - mx);
                sum += x[i];
        }
        float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < n; i++)
                x[i] *= inv;
}

void vision_softmax_rows(float *x, int64_t n_rows, int64_t n) {
        const cpu_features *f = cpu_features_get();
        bool avx2 = f->avx2 && f->fma;
        for (int64_t r = 0; r < n_rows; r++)
                (avx2 ? softmax_avx2 : softmax_scalar)(x + r * n, n);
}

/* ---- FFN activation ---- */

typedef struct act_job {
        float *x;
        int64_t n;
        vision_ffn_op op;
} act_job;

static void act_worker(void *ctx, int ith, int nth) {
        const act_job *j = ctx;
        int64_t per = (j->n / 16 + nth) / nth * 16, lo = MIN(j->n, per * ith), hi = MIN(j->n, per * (ith + 1));
        for (int64_t i = lo; i < hi; i++) {
                float v = j->x[i];
                j->x[i] = j->op == VISION_FFN_SILU ? v / (1.0f + expf(-v)) : v / (1.0f + expf(-1.702f * v));
        }
}

void vision_ffn_act(threadpool *tp, vision_ffn_op op, float *x, int64_t n) {
        if (op == VISION_FFN_GELU) {
                gemma_ops_gelu(tp, x, n); /* ggml's F16 table, as the reference runs it */
                return;
        }
        act_job j = { .x = x, .n = n, .op = op };
        threadpool_run(tp, act_worker, &j);
}

/* ---- products ---- */

void vision_add_bias(float *y, const float *b, int64_t n_rows, int64_t n) {
        if (!b)
                return;
        for (int64_t t = 0; t < n_rows; t++) {
                float *yr = y + t * n;
                for (int64_t i = 0; i < n; i++)
                        yr[i] += b[i];
        }
}

typedef struct round_job {
        float *x;
        int64_t n_rows, n;
        uint32_t type;
} round_job;

/* x = to_float(from_float(x)), in place */
static void round_worker(void *ctx, int ith, int nth) {
        const round_job *j = ctx;
        const kernel_set *k = kernels_best();
        uint16_t buf[4096];
        for (int64_t t = ith; t < j->n_rows; t += nth)
                for (int64_t i = 0; i < j->n; i += 4096) {
                        int64_t len = MIN((int64_t)4096, j->n - i);
                        k->from_float[j->type](j->x + t * j->n + i, buf, len);
                        k->to_float[j->type](buf, j->x + t * j->n + i, len);
                }
}

/* Rows of W handed to thread ith: whole blocks of 16, the last thread
 * takes the rest. */
static void split_rows(int64_t n, int ith, int nth, int64_t *r0, int64_t *r1) {
        int64_t per = (n / 16 + nth - 1) / nth * 16;
        *r0 = MIN(n, per * ith);
        *r1 = ith == nth - 1 ? n : MIN(n, per * (ith + 1));
}

size_t vision_wbuf_floats(int64_t n_in, int64_t n_out, int nth) {
        int64_t r0, r1, most = 0;
        for (int i = 0; i < nth; i++) {
                split_rows(n_out, i, nth, &r0, &r1);
                most = MAX(most, r1 - r0);
        }
        return (size_t)most * (size_t)n_in;
}

typedef struct dense_job {
        const weight *w;
        to_float_fn to_float;
        const float *x;
        float *y, *wbuf;
        size_t wbuf_floats;
        int64_t n_tokens;
} dense_job;

/* Y[:, r0..r1) = X W[r0..r1)^T in one sgemm per thread: X is packed once
 * per thread, not once per panel of rows (4096 tokens of 1152 floats are
 * 19 MB, and OpenBLAS packs its whole A operand at every call). */
static void dense_worker(void *ctx, int ith, int nth) {
        const dense_job *j = ctx;
        const weight *w = j->w;
        int64_t r0, r1;
        split_rows(w->n_out, ith, nth, &r0, &r1);
        if (r1 <= r0)
                return;
        const float *wp;
        if (w->type == TYPE_F32)
                wp = (const float *)((const uint8_t *)w->data + (size_t)r0 * w->row_bytes);
        else {
                float *buf = j->wbuf + (size_t)ith * j->wbuf_floats;
                for (int64_t r = r0; r < r1; r++)
                        j->to_float((const uint8_t *)w->data + (size_t)r * w->row_bytes, buf + (r - r0) * w->n_in,
                                    w->n_in);
                wp = buf;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->n_tokens, (int)(r1 - r0), (int)w->n_in, 1.0f,
                    j->x, (int)w->n_in, wp, (int)w->n_in, 0.0f, j->y + r0, (int)w->n_out);
}

int vision_linear(vision_ctx *c, const weight *w, float *x, int64_t n_tokens, const float *b, float *y) {
        const type_traits *t = type_traits_get(w->type);
        threadpool *tp = matmul_ctx_pool(c->mm);
        int r;

        if (!t)
                return -EINVAL;
        if (t->is_quantized) {
                /* the int8 path quantizes the activations as ggml does */
                if ((r = matmul(c->mm, w, x, n_tokens, y)) < 0)
                        return r;
                vision_add_bias(y, b, n_tokens, w->n_out);
                return 0;
        }

        /* F16 and BF16 weights: ggml rounds the activations to that type
         * first.  Every input here is scratch that nothing reads afterwards
         * unrounded, so in place (rounding twice changes nothing). */
        const kernel_set *k = kernels_best();
        if (t->vec_dot_type != TYPE_F32) {
                if (!k->from_float[t->vec_dot_type] || !k->to_float[t->vec_dot_type] || !k->to_float[w->type])
                        return -EOPNOTSUPP;
                round_job j = { .x = x, .n_rows = n_tokens, .n = w->n_in, .type = t->vec_dot_type };
                threadpool_run(tp, round_worker, &j);
        }
        dense_job j = { .w = w, .to_float = k->to_float[w->type], .x = x, .y = y, .wbuf = c->wbuf,
                        .wbuf_floats = c->wbuf_floats, .n_tokens = n_tokens };
        if (w->type != TYPE_F32 && vision_wbuf_floats(w->n_in, w->n_out, threadpool_size(tp)) > c->wbuf_floats)
                return -EINVAL;
        openblas_set_num_threads(1);
        threadpool_run(tp, dense_worker, &j);
        vision_add_bias(y, b, n_tokens, w->n_out);
        return 0;
}
