/* SPDX-License-Identifier: MIT */
/* Private to matmul*.c: the context and the helpers the paths share. */
#pragma once

#include "kernels.h"
#include "matmul.h"

typedef struct matmul_buf {
        void *p;
        size_t size;
} matmul_buf;

struct matmul_ctx {
        threadpool *tp;
        int n_threads;
        const kernel_set *k;
        void *act; /* activations converted to the dot type */
        size_t act_size;
        matmul_buf *scratch; /* one per thread */
        matmul_buf int8_act; /* activations of the int8 path */
        matmul_path last_path[TYPE_COUNT];
        matmul_path forced; /* _MATMUL_PATH_MAX: choose */
};

int matmul_buf_reserve(matmul_buf *b, size_t n);
void matmul_split_rows(int64_t n_rows, int ith, int nth, int64_t *r0, int64_t *r1);
int matmul_quantize_act(matmul_ctx *c, uint32_t act_type, const float *x, int64_t n_in, int64_t n_tokens,
                        size_t *ret_row);

/* matmul-int8.c: the path for many tokens, and the int8 kernel itself
 * (-EOPNOTSUPP when there is none for this type or CPU). */
matmul_path matmul_choose_path(matmul_ctx *c, const weight *w, int64_t n_tokens);
int matmul_int8(matmul_ctx *c, const weight *w, const float *x, int64_t n_tokens, float *y);
