/* SPDX-License-Identifier: MIT */
/* Products with Whisper's weight matrices through the engine's matmul
 * (any supported type: F32, F16, Q8_0, Q5_0 for whisper.cpp files), plus
 * the bias:  y[t][o] = sum_i W[o][i] x[t][i] + b[o]. */
#include <string.h>

#include "whisper-impl.h"

int whisper_linear(whisper_state *s, const weight *w, const float *x, int64_t n_tokens, const float *b, float *y) {
        int r = matmul(s->mm, w, x, n_tokens, y);
        if (r < 0)
                return r;
        if (b)
                for (int64_t t = 0; t < n_tokens; t++) {
                        float *yr = y + t * w->n_out;
                        for (int64_t o = 0; o < w->n_out; o++)
                                yr[o] += b[o];
                }
        return 0;
}

void whisper_weight_row(const weight *w, int64_t r, float *out) {
        (void)weight_get_row(w, r, out);
}
