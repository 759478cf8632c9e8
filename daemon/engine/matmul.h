/* SPDX-License-Identifier: MIT */
/* Products with weight matrices of any supported type.
 *
 * A weight W has n_out rows of n_in elements (GGUF ne = [n_in, n_out]).
 *   y[t][o] = sum_i W[o][i] * x[t][i]        for t < n_tokens
 * One token: a vector-matrix kernel over the quantized rows (memory bound).
 * Many tokens: whichever is faster for the type of OpenBLAS sgemm on
 * dequantized panels and an int8 kernel on quantized activations.
 *
 * Paths (matmul_last_path tells which ran):
 *   - fewer than 8 tokens: vec, the dot kernel of kernels_best() per row
 *     and token; rows handed out to the pool's threads in chunks, so the
 *     result does not depend on the thread count;
 *   - more, Q8_0 Q4_0 Q4_K Q5_K Q6_K on a CPU with AVX-512 VNNI: int8, about
 *     2-3x faster than sgemm here (bench-kernels); activations are quantized
 *     as for vec (ggml's Q8_0 / Q8_K), so both paths agree to float rounding;
 *   - otherwise sgemm on float activations (F32 F16 BF16, or no VNNI).
 * No repacked copy of the weights is kept: the int8 path repacks 32 rows at
 * a time into a per-thread buffer while it runs (one pass over the weights,
 * shared by all tokens), so there is no separate repacking step to call. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "threadpool.h"

typedef struct weight {
        const char *name;
        uint32_t type;
        int64_t n_in, n_out;
        size_t row_bytes;
        const void *data; /* n_out rows of row_bytes */
} weight;

/* Bytes of a weight's rows (0 when it is absent). */
static inline uint64_t weight_bytes(const weight *w) {
        return w->data ? (uint64_t)w->row_bytes * (uint64_t)w->n_out : 0;
}

typedef enum matmul_path {
        MATMUL_PATH_VEC,   /* vector-matrix kernel per token */
        MATMUL_PATH_SGEMM, /* OpenBLAS sgemm on dequantized panels */
        MATMUL_PATH_INT8,  /* int8 matrix kernel on quantized activations */
        _MATMUL_PATH_MAX,
} matmul_path;

typedef struct matmul_ctx matmul_ctx;

int matmul_ctx_new(int n_threads, matmul_ctx **ret);
void matmul_ctx_free(matmul_ctx *c);
threadpool *matmul_ctx_pool(matmul_ctx *c);

/* x: n_tokens rows of n_in floats; y: n_tokens rows of n_out floats. */
int matmul(matmul_ctx *c, const weight *w, const float *x, int64_t n_tokens, float *y);
/* Several products of the same activations (q/k/v, gate/up): for one
 * token, the activations are converted once per kernel and all n_w
 * weights run in one dispatch to the pool (threads move on to the next
 * weight's rows as they finish), instead of a dispatch and a wait each.
 * ys[i]: n_tokens rows of ws[i]->n_out.  The same results as n_w matmul()
 * calls.  At most MATMUL_MULTI_MAX weights. */
#define MATMUL_MULTI_MAX 8
int matmul_multi(matmul_ctx *c, const weight *const *ws, int n_w, const float *x, int64_t n_tokens, float *const *ys);
/* The same, weight i applied to its own activations xs[i] (n_tokens rows
 * of ws[i]->n_in): products that do not depend on each other, such as a
 * small one beside a large one, share a dispatch. */
int matmul_multi_x(matmul_ctx *c, const weight *const *ws, const float *const *xs, int n_w, int64_t n_tokens,
                   float *const *ys);
/* For one token, ys[i] = x W_i^T for weights of as many rows, the rows of
 * all scheduled together, and post(ctx, r0, r1) on each range of rows as
 * soon as every product has it, on the thread that computed it, while the
 * rows are in its cache: a gated feed-forward's activation or a soft-cap
 * without a dispatch and a pass over memory of its own.  Without a fused
 * kernel for the types, the products and one post over all rows. */
typedef void (*matmul_rows_fn)(void *ctx, int64_t r0, int64_t r1);
int matmul_post(matmul_ctx *c, const weight *const *ws, int n_w, const float *x, float *const *ys,
                matmul_rows_fn post, void *post_ctx);
/* Row r of W as floats (embedding lookup). */
int weight_get_row(const weight *w, int64_t r, float *out);
/* The same for a row of w's layout held elsewhere (read from the file). */
int weight_row_to_float(const weight *w, const void *row, float *out);
/* The path the last matmul with more than one token took, for sotto-bench. */
matmul_path matmul_last_path(const matmul_ctx *c, uint32_t type);
const char *matmul_path_name(matmul_path p);
/* Whether many-token products with this weight type take the int8 path on
 * this CPU (which rounds as the vec path does; sgemm does not). */
bool matmul_has_int8(uint32_t type);
/* Force the path of matmuls with more than one token (benchmarks, tests);
 * _MATMUL_PATH_MAX restores the automatic choice.  A forced path the type
 * or CPU lacks falls back to sgemm. */
void matmul_ctx_force_path(matmul_ctx *c, matmul_path p);
