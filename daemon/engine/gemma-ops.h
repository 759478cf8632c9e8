/* SPDX-License-Identifier: MIT */
/* Pieces of the Gemma 3 / Gemma 3n forward passes that other architectures
 * do not have: GELU (tanh form), the final logit soft-cap, the gaussian
 * top-k of Gemma 3n's sparse feed-forward layers, the AltUp magnitudes,
 * and products whose activations are rounded the way the reference runs
 * them.
 *
 * Why the rounding: random-weight Gemma models amplify every 2^-11 step
 * several hundred times, so matching llama.cpp's logits needs its CPU
 * numerics, not just the same maths:
 *   - GELU goes through a table of F16 results indexed by the input
 *     rounded to F16 (ggml's GGML_GELU_FP16), exact outside [-10, 10];
 *   - activations are converted to the weight's dot type (F16 for F16
 *     weights, Q8_0 for Q8_0/Q4_0, Q8_K for K-quants) before every product,
 *     whatever path (one token or many) computes it. */
#pragma once

#include <stdint.h>

#include "matmul.h"
#include "threadpool.h"

/* gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), through the F16 table. */
float gemma_gelu(float x);
/* x[i] = gelu(x[i]) */
void gemma_ops_gelu(threadpool *tp, float *x, int64_t n);
/* g[i] = gelu(g[i]) * u[i] */
void gemma_ops_geglu(threadpool *tp, float *g, const float *u, int64_t n);

/* x = cap * tanh(x / cap) (as three rounded steps: scale, tanh, scale) */
void gemma_ops_softcap(threadpool *tp, float *x, int64_t n, float cap);
/* x *= s */
void gemma_ops_scale(float *x, int64_t n, float s);

/* Gaussian top-k of one gate row: x = max(x - (mean + std_mul * std), 0),
 * std the sample standard deviation (divisor n - 1, as llama.cpp). */
void gemma_gaussian_topk(float *x, int64_t n, float std_mul);

/* sqrt(sum x^2), the sum in double (ggml's sum_rows). */
float gemma_magnitude(const float *x, int64_t n);

/* Floats of scratch gemma_matmul needs for n_tokens rows of n_in. */
static inline int64_t gemma_matmul_scratch_floats(int64_t n_in, int64_t n_tokens) {
        return n_in * n_tokens;
}
/* y = x W^T with x first rounded to the weight's dot type (into tmp, which
 * holds gemma_matmul_scratch_floats()); for F32 weights tmp is unused.
 * W may have rows longer than n_in (row_bytes more than n_in elements take:
 * the first n_in columns of a wider matrix, as MatFormer slices it); those
 * run on the dot kernels row by row. */
int gemma_matmul(matmul_ctx *mm, const weight *w, const float *x, int64_t n_tokens, float *y, float *tmp);
/* Several products of the same activations (q/k/v, gate/up) as
 * gemma_matmul computes them, in one pool dispatch (matmul_multi) when the
 * weights share their dot type and take whole rows; otherwise one
 * gemma_matmul each.  The same results either way. */
int gemma_matmul_multi(matmul_ctx *mm, const weight *const *ws, int n_w, const float *x, int64_t n_tokens,
                       float *const *ys, float *tmp);
/* gate = gelu(x Wg^T) * (x Wu^T), Gemma's GEGLU: for one token on whole
 * quantized rows the activation runs on each range of rows as the pool
 * finishes it (matmul_post; E2B, tokens alternating: 1.003), otherwise
 * after the products; the same values either way. */
int gemma_matmul_geglu(matmul_ctx *mm, const weight *w_gate, const weight *w_up, const float *x, int64_t n_tokens,
                       float *gate, float *up, float *tmp);
/* y = gelu(x W^T) * m, m's rows m_ld floats apart (Gemma 3n's per-layer
 * input gate), by rows as the pool finishes them like gemma_matmul_geglu
 * (E2B, tokens alternating: 1.004, 7 rounds all above 1). */
int gemma_matmul_gelu_mul(matmul_ctx *mm, const weight *w, const float *x, int64_t n_tokens, float *y, const float *m,
                          int64_t m_ld, float *tmp);
/* y = cap tanh((x W^T) / cap) (no cap when cap <= 0), the logits'
 * soft-cap: for one token on whole quantized rows on each range of rows as
 * the pool finishes it (1.001), otherwise after; the same values. */
int gemma_matmul_softcap(matmul_ctx *mm, const weight *w, const float *x, int64_t n_tokens, float *y, float *tmp,
                         float cap);
/* The same, weight i applied to its own activations xs[i]: products that
 * do not wait for each other in one dispatch where nothing needs rounding
 * first (one token on quantized weights), otherwise one call each. */
int gemma_matmul_multi_x(matmul_ctx *mm, const weight *const *ws, const float *const *xs, int n_w, int64_t n_tokens,
                         float *const *ys, float *tmp);
