/* SPDX-License-Identifier: MIT */
/* Small helpers shared by every part of sotto: cleanup attributes for owned
 * resources, ownership transfer, overflow-checked arithmetic. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _align_(n) __attribute__((aligned(n)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Take ownership out of a cleanup-managed variable. */
#define TAKE_PTR(p) ({ typeof(p) _p_ = (p); (p) = NULL; _p_; })
#define TAKE_FD(fd) ({ int _fd_ = (fd); (fd) = -1; _fd_; })

static inline void freep(void *p) { free(*(void **)p); }
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Defines func##p(type *p) calling func(*p) when *p is non-NULL, for use with
 * _cleanup_(func##p). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)          \
        static inline void func##p(type *p) {            \
                if (*p)                                  \
                        func(*p);                        \
        }

/* The forward passes' element-wise loops, compiled a second time for
 * x86-64-v4 (AVX-512) and picked when the process starts (ifunc): built
 * for the baseline alone they were 1.05 % of an E2B token's samples, with
 * the clones 0.57 % (norms, AltUp, GELU, soft-cap; perf, tg128, two
 * threads).  The results do not change: these files are built without
 * FMA contraction (module.mk).  gcc only; the clang builds (sanitizers,
 * fuzzers) keep the one version. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define _vector_clones_ __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define _vector_clones_
#endif

/* Overflow-checked arithmetic: true when the result does not fit. */
#define MUL_OVERFLOW(a, b, res) __builtin_mul_overflow(a, b, res)
#define ADD_OVERFLOW(a, b, res) __builtin_add_overflow(a, b, res)

static inline size_t align_up_size(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

/* Log an error into a caller-supplied buffer and return it as -errno:
 *   return set_error(err, errlen, -EINVAL, "tensor '%s': ...", name); */
_printf_(4, 5) int set_error(char *err, size_t errlen, int r, const char *fmt, ...);
