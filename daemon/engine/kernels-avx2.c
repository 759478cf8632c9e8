/* SPDX-License-Identifier: MIT */
/* AVX2 + FMA + F16C kernels. */
#include <immintrin.h>

#include "kernels-cpu.h"
#include "kernels-impl.h"
#include "kernels.h"

static bool avx2_supported(void) {
        const cpu_features *f = cpu_features_get();
        return f->avx2 && f->fma && f->f16c && f->bmi2;
}

const kernel_set kernels_avx2 = {
        .name = "avx2",
        .supported = avx2_supported,
};
