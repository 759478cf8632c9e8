/* SPDX-License-Identifier: MIT */
/* Element-wise pieces of the Whisper forward pass. */
#include <math.h>
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
