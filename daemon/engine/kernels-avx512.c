/* SPDX-License-Identifier: MIT */
/* AVX-512 (F BW VL DQ VNNI BF16) kernels. */
#include <immintrin.h>

#include "kernels-cpu.h"
#include "kernels-impl.h"
#include "kernels.h"

static bool avx512_supported(void) {
        const cpu_features *f = cpu_features_get();
        return f->avx2 && f->fma && f->f16c && f->bmi2 && f->avx512f && f->avx512bw && f->avx512vl &&
               f->avx512dq && f->avx512vnni && f->avx512bf16;
}

const kernel_set kernels_avx512 = {
        .name = "avx512",
        .supported = avx512_supported,
};
