/* SPDX-License-Identifier: MIT */
/* Products with Whisper's weight matrices (F32, F16, Q8_0, Q5_0):
 *   y[t][o] = sum_i W[o][i] x[t][i] + b[o]
 * Many tokens (encoder, prompt): W dequantized to floats, OpenBLAS sgemm.
 * One token (decoding): rows dequantized and dotted on the fly, split
 * across threads (memory bound). */
#include <cblas.h>
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <string.h>

#include "type-q5_0.h"
#include "whisper-impl.h"

#define SGEMM_MIN_TOKENS 4

/* ---- dequantization ---- */

__attribute__((target("avx2,fma,f16c"))) static void f16_row_avx2(const uint16_t *x, float *y, int64_t n) {
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
                _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
        for (; i < n; i++)
                y[i] = whisper_fp16_to_fp32(x[i]);
}

/* AVX2 + FMA + F16C, with the OS saving the YMM registers */
static bool have_avx2(void) {
        static int v = -1;
        if (v < 0) {
                unsigned a, b, c, d;
                v = 0;
                if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_FMA) && (c & bit_F16C) && (c & bit_OSXSAVE)) {
                        unsigned lo, hi;
                        __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
                        if ((lo & 6) == 6 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX2))
                                v = 1;
                }
        }
        return v;
}

static void q8_0_row(const void *x, float *y, int64_t n) {
        const uint8_t *b = x;
        for (int64_t i = 0; i < n / 32; i++, b += 34, y += 32) {
                uint16_t d16;
                memcpy(&d16, b, 2);
                float d = whisper_fp16_to_fp32(d16);
                for (int j = 0; j < 32; j++)
                        y[j] = (float)(int8_t)b[2 + j] * d;
        }
}

static void row_to_float(uint32_t type, const void *x, float *y, int64_t n) {
        switch (type) {
        case 0:
                memcpy(y, x, (size_t)n * sizeof(float));
                break;
        case 1:
                if (have_avx2())
                        f16_row_avx2(x, y, n);
                else
                        for (int64_t i = 0; i < n; i++)
                                y[i] = whisper_fp16_to_fp32(((const uint16_t *)x)[i]);
                break;
        case 6:
                q5_0_to_float(x, y, n);
                break;
        case 8:
                q8_0_row(x, y, n);
                break;
        }
}

void whisper_weight_row(const weight *w, int64_t r, float *out) {
        row_to_float(w->type, (const uint8_t *)w->data + (size_t)r * w->row_bytes, out, w->n_in);
}

void whisper_weight_to_float(const weight *w, float *out) {
        for (int64_t r = 0; r < w->n_out; r++)
                whisper_weight_row(w, r, out + r * w->n_in);
}

/* ---- dot products ---- */

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int64_t n) {
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        }
        s0 = _mm256_add_ps(s0, s1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        float s = _mm_cvtss_f32(h);
        for (; i < n; i++)
                s += a[i] * b[i];
        return s;
}

/* F16 row times float vector without a temporary. */
__attribute__((target("avx2,fma,f16c"))) static float dot_f16_avx2(const uint16_t *w, const float *x, int64_t n) {
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
                __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i)));
                __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8)));
                s0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), s0);
                s1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), s1);
        }
        s0 = _mm256_add_ps(s0, s1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        float s = _mm_cvtss_f32(h);
        for (; i < n; i++)
                s += whisper_fp16_to_fp32(w[i]) * x[i];
        return s;
}

static float dot(const float *a, const float *b, int64_t n) {
        if (have_avx2())
                return dot_avx2(a, b, n);
        float s = 0;
        for (int64_t i = 0; i < n; i++)
                s += a[i] * b[i];
        return s;
}

/* ---- few tokens: rows split across threads ---- */

typedef struct vec_job {
        const weight *w;
        const float *x, *b;
        int64_t n_tokens;
        float *y;
        int64_t r0, r1;
        float *row; /* n_in floats */
} vec_job;

static void *vec_worker(void *arg) {
        vec_job *j = arg;
        const weight *w = j->w;
        for (int64_t r = j->r0; r < j->r1; r++) {
                const void *src = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
                for (int64_t t = 0; t < j->n_tokens; t++) {
                        float v;
                        if (w->type == 1 && have_avx2())
                                v = dot_f16_avx2(src, j->x + t * w->n_in, w->n_in);
                        else {
                                if (t == 0)
                                        row_to_float(w->type, src, j->row, w->n_in);
                                v = dot(j->row, j->x + t * w->n_in, w->n_in);
                        }
                        j->y[t * w->n_out + r] = v + (j->b ? j->b[r] : 0.f);
                }
        }
        return NULL;
}

static int linear_vec(whisper_state *s, const weight *w, const float *x, int64_t n_tokens, const float *b, float *y) {
        int nth = s->n_threads;
        /* threads only pay off on big matrices */
        if ((int64_t)w->n_in * w->n_out < 256 * 1024)
                nth = 1;
        nth = MIN(nth, 16);
        vec_job jobs[16];
        pthread_t tids[16];
        _cleanup_free_ float *rows = malloc((size_t)nth * (size_t)w->n_in * sizeof(float));
        if (!rows)
                return -ENOMEM;
        for (int i = 0; i < nth; i++)
                jobs[i] = (vec_job){ .w = w, .x = x, .b = b, .n_tokens = n_tokens, .y = y,
                                     .r0 = w->n_out * i / nth, .r1 = w->n_out * (i + 1) / nth,
                                     .row = rows + (size_t)i * w->n_in };
        int started = 0;
        for (int i = 1; i < nth; i++) {
                if (pthread_create(&tids[i], NULL, vec_worker, &jobs[i]) != 0)
                        break;
                started = i;
        }
        for (int i = started + 1; i < nth; i++)
                vec_worker(&jobs[i]);
        vec_worker(&jobs[0]);
        for (int i = 1; i <= started; i++)
                pthread_join(tids[i], NULL);
        return 0;
}

/* ---- many tokens: sgemm on the dequantized matrix ---- */

int whisper_linear(whisper_state *s, const weight *w, const float *x, int64_t n_tokens, const float *b, float *y) {
        if (n_tokens < SGEMM_MIN_TOKENS)
                return linear_vec(s, w, x, n_tokens, b, y);

        const float *wf;
        if (w->type == 0)
                wf = w->data;
        else {
                size_t need = (size_t)w->n_in * (size_t)w->n_out;
                if (need > s->dequant_n) {
                        float *p = realloc(s->dequant, need * sizeof(float));
                        if (!p)
                                return -ENOMEM;
                        s->dequant = p;
                        s->dequant_n = need;
                }
                whisper_weight_to_float(w, s->dequant);
                wf = s->dequant;
        }
        if (b)
                for (int64_t t = 0; t < n_tokens; t++)
                        memcpy(y + t * w->n_out, b, (size_t)w->n_out * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_tokens, (int)w->n_out, (int)w->n_in, 1.0f, x,
                    (int)w->n_in, wf, (int)w->n_in, b ? 1.0f : 0.0f, y, (int)w->n_out);
        return 0;
}
