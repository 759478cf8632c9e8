/* SPDX-License-Identifier: MIT */
/* Products with weight matrices of any supported type.
 *
 * A weight W has n_out rows of n_in elements (GGUF ne = [n_in, n_out]).
 *   y[t][o] = sum_i W[o][i] * x[t][i]        for t < n_tokens
 * One token: a vector-matrix kernel over the quantized rows (memory bound).
 * Many tokens: whichever is faster for the type of OpenBLAS sgemm on
 * dequantized panels and an int8 kernel on quantized activations. */
#pragma once

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
/* Row r of W as floats (embedding lookup). */
int weight_get_row(const weight *w, int64_t r, float *out);
/* The path the last matmul with more than one token took, for sotto-bench. */
matmul_path matmul_last_path(const matmul_ctx *c, uint32_t type);
const char *matmul_path_name(matmul_path p);
/* Force the path of matmuls with more than one token (benchmarks, tests);
 * _MATMUL_PATH_MAX restores the automatic choice.  A forced path the type
 * or CPU lacks falls back to sgemm. */
void matmul_ctx_force_path(matmul_ctx *c, matmul_path p);
