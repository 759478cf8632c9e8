/* SPDX-License-Identifier: MIT */
/* cpuid leaves 1 and 7 for the instruction sets, xgetbv for whether the OS
 * saves the YMM/ZMM state (without it the instructions fault). */
#include <cpuid.h>
#include <pthread.h>
#include <stdint.h>

#include "kernels-cpu.h"

static cpu_features features;
static pthread_once_t features_once = PTHREAD_ONCE_INIT;

static uint64_t xgetbv0(void) {
        uint32_t lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        return ((uint64_t)hi << 32) | lo;
}

static void detect(void) {
        unsigned a, b, c, d;
        cpu_features f = {};

        if (!__get_cpuid(1, &a, &b, &c, &d))
                return;
        bool osxsave = c & (1u << 27);
        f.fma = c & (1u << 12);
        f.f16c = c & (1u << 29);
        uint64_t xcr0 = osxsave ? xgetbv0() : 0;
        bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xE6) == 0xE6;

        if (__get_cpuid_max(0, NULL) >= 7) {
                __cpuid_count(7, 0, a, b, c, d);
                f.avx2 = ymm && (b & (1u << 5));
                f.bmi2 = b & (1u << 8);
                f.avx512f = zmm && (b & (1u << 16));
                f.avx512dq = zmm && (b & (1u << 17));
                f.avx512bw = zmm && (b & (1u << 30));
                f.avx512vl = zmm && (b & (1u << 31));
                f.avx512vnni = zmm && (c & (1u << 11));
                f.avx512vbmi = zmm && (c & (1u << 1));
                f.gfni = c & (1u << 8);
                f.amx_int8 = d & (1u << 25);
                __cpuid_count(7, 1, a, b, c, d);
                f.avx_vnni = ymm && (a & (1u << 4));
                f.avx512bf16 = zmm && (a & (1u << 5));
        }
        f.fma = f.fma && ymm;
        f.f16c = f.f16c && ymm;
        features = f;
}

const cpu_features *cpu_features_get(void) {
        pthread_once(&features_once, detect);
        return &features;
}
