/* SPDX-License-Identifier: MIT */
/* Choice of the many-token path per type, and the int8 path's entry. */
#include <errno.h>

#include "matmul-impl.h"

matmul_path matmul_choose_path(matmul_ctx *c, const weight *w, int64_t n_tokens) {
        return MATMUL_PATH_SGEMM;
}

int matmul_int8(matmul_ctx *c, const weight *w, const float *x, int64_t n_tokens, float *y) {
        return -EOPNOTSUPP;
}
