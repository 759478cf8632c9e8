/* SPDX-License-Identifier: MIT */
/* Element-wise pieces of the Whisper forward pass. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "whisper-impl.h"

/* y = (x - mean) / sqrt(var + eps) * w + b, per row of n */
void whisper_layer_norm(float *y, const float *x, int64_t n_tokens, int64_t n, const float *w, const float *b) {
        for (int64_t t = 0; t < n_tokens; t++) {
                const float *xr = x + t * n;
                float *yr = y + t * n;
                double sum = 0, sum2 = 0;
                for (int64_t i = 0; i < n; i++)
                        sum += xr[i];
                float mean = (float)(sum / n);
                for (int64_t i = 0; i < n; i++) {
                        float d = xr[i] - mean;
                        sum2 += (double)d * d;
                }
                float scale = 1.0f / sqrtf((float)(sum2 / n) + WHISPER_LN_EPS);
                for (int64_t i = 0; i < n; i++)
                        yr[i] = (xr[i] - mean) * scale * w[i] + b[i];
        }
}

/* GELU, tanh approximation (what ggml uses):
 *   0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
void whisper_gelu(float *x, int64_t n) {
        const float c = 0.79788456080286535588f;
        for (int64_t i = 0; i < n; i++) {
                float v = x[i];
                x[i] = 0.5f * v * (1.0f + tanhf(c * v * (1.0f + 0.044715f * v * v)));
        }
}

void whisper_softmax_row(float *x, int64_t n) {
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

/* IEEE 754 half <-> single, exact, round to nearest even. */
float whisper_fp16_to_fp32(uint16_t h) {
        uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
        if (exp == 0x1f)
                u = sign | 0x7f800000u | (man << 13);
        else if (exp == 0) {
                if (man == 0)
                        u = sign;
                else {
                        /* subnormal: normalize */
                        int e = -1;
                        do {
                                e++;
                                man <<= 1;
                        } while (!(man & 0x400));
                        u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
                }
        } else
                u = sign | ((exp + 127 - 15) << 23) | (man << 13);
        float f;
        memcpy(&f, &u, 4);
        return f;
}

uint16_t whisper_fp32_to_fp16(float f) {
        uint32_t u;
        memcpy(&u, &f, 4);
        uint32_t sign = (u >> 16) & 0x8000;
        int32_t exp = (int32_t)((u >> 23) & 0xff);
        uint32_t man = u & 0x7fffff;

        if (exp == 0xff)
                return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
        int32_t e = exp - 127 + 15;
        if (e >= 0x1f)
                return (uint16_t)(sign | 0x7c00);
        if (e <= 0) {
                if (e < -10)
                        return (uint16_t)sign;
                man |= 0x800000;
                uint32_t shift = (uint32_t)(14 - e);
                uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), halfway = 1u << (shift - 1);
                if (rem > halfway || (rem == halfway && (h & 1)))
                        h++;
                return (uint16_t)(sign | h);
        }
        uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
                h++; /* may carry into the exponent, up to infinity: correct */
        return (uint16_t)(sign | h);
}

/* ---- a fork-join loop over [0, n) for the few parallel element-wise
 * steps (softmax rows, attention heads) ---- */

typedef struct par_job {
        void (*fn)(void *ctx, int64_t i0, int64_t i1);
        void *ctx;
        int64_t i0, i1;
} par_job;

static void *par_worker(void *arg) {
        par_job *j = arg;
        if (j->i1 > j->i0)
                j->fn(j->ctx, j->i0, j->i1);
        return NULL;
}

void whisper_parallel_for(int nth, int64_t n, void (*fn)(void *ctx, int64_t i0, int64_t i1), void *ctx) {
        nth = MAX(1, MIN(nth, 16));
        if (n < nth)
                nth = (int)MAX(n, 1);
        par_job jobs[16];
        pthread_t tids[16];
        int started = 0;
        for (int i = 0; i < nth; i++)
                jobs[i] = (par_job){ .fn = fn, .ctx = ctx, .i0 = n * i / nth, .i1 = n * (i + 1) / nth };
        for (int i = 1; i < nth; i++) {
                if (pthread_create(&tids[i], NULL, par_worker, &jobs[i]) != 0)
                        break;
                started = i;
        }
        for (int i = started + 1; i < nth; i++)
                par_worker(&jobs[i]);
        par_worker(&jobs[0]);
        for (int i = 1; i <= started; i++)
                pthread_join(tids[i], NULL);
}
