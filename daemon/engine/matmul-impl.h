/* SPDX-License-Identifier: MIT */
/* Private to matmul*.c: the context and the helpers the paths share. */
#pragma once

#include <stdatomic.h>

#include "kernels.h"
#include "macro.h"
#include "matmul.h"

typedef struct matmul_buf {
        void *p;
        size_t size;
} matmul_buf;

#define MATMUL_SUCC_SLOTS 2048

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

        /* One-token products come in the same order every token: the one
         * after each (by its first weight), learned from the last token,
         * so that the workers can read the start of its rows while the
         * caller runs the serial steps in between (matmul_plan). */
        struct matmul_succ {
                const weight *w, *next;
        } succ[MATMUL_SUCC_SLOTS];
        const weight *prev;
        threadpool_prefetch *plan; /* [n_threads] */
};

int matmul_buf_reserve(matmul_buf *b, size_t n);
void matmul_split_rows(int64_t n_rows, int ith, int nth, int64_t *r0, int64_t *r1);
int matmul_quantize_act(matmul_ctx *c, uint32_t act_type, const float *x, int64_t n_in, int64_t n_tokens,
                        size_t *ret_row);

/* matmul-int8.c: the path for many tokens, and the int8 kernel itself
 * (-EOPNOTSUPP when there is none for this type or CPU). */
matmul_path matmul_choose_path(matmul_ctx *c, const weight *w, int64_t n_tokens);
int matmul_int8(matmul_ctx *c, const weight *w, const float *x, int64_t n_tokens, float *y);

/* Rows handed out in chunks from a shared counter: a thread that runs
 * slower (another process on its core) simply takes fewer chunks.  Which
 * thread computes a row never changes its value.  The first n_big chunks
 * may be big ones, and the rest shrinking ones (row_sched_init_long). */
typedef struct row_sched {
        _Alignas(64) _Atomic int64_t next; /* the first row not handed out yet */
        _Atomic uint32_t big_taken;        /* bit c: big chunk c handed out */
        int64_t chunk, n_rows, unit;
        int64_t n_big, big;
        int64_t shrink; /* 0: chunks of `chunk` rows; else a 1/shrink of what is left, at least `chunk` */
} row_sched;

/* About 8 chunks per thread, in multiples of unit rows. */
static inline void row_sched_init(row_sched *s, int64_t n_rows, int nth, int64_t unit) {
        int64_t units = (n_rows + unit - 1) / unit;
        int64_t per = MAX(1, units / ((int64_t)nth * 8));
        atomic_init(&s->next, 0);
        atomic_init(&s->big_taken, 0);
        s->chunk = per * unit;
        s->n_rows = n_rows;
        s->unit = unit;
        s->n_big = 0;
        s->big = 0;
        s->shrink = 0;
}

/* For the one-token kernels, which read weight rows as long streams and
 * pay at every chunk's start until their prefetch runs ahead again (from
 * memory, 2048-wide Q4_K at two threads: 90 % of the read bandwidth in one
 * call per thread, 88 % in chunks of 128 rows, 85 % of 64): the first
 * three quarters of the rows as one big chunk per thread, then chunks of a
 * 1/nth of the rows left, down to min_rows, so that the threads finish
 * within about one small chunk of each other however big the matrix (the
 * logits' 262144 rows in fixed chunks of 1/32 left one thread waiting
 * ~0.4 ms).  Each chunk starts its streams cold: 1/nth rather than
 * 1/(2 nth) of the rest makes fewer of them (E2B, tokens alternating:
 * 1.005 and 1.006; a larger min_rows, 128 KiB instead of 64: 0.997).  A
 * thread that never arrives leaves its big chunk to the others, as any
 * chunk. */
static inline void row_sched_init_long(row_sched *s, int64_t n_rows, int nth, int64_t unit, int64_t min_rows) {
        int64_t units = (n_rows + unit - 1) / unit;
        int64_t big = (units - units / 4) / nth;

        row_sched_init(s, n_rows, nth, unit);
        if (nth < 2 || nth > 32 || big < 16)
                return;
        s->n_big = nth;
        s->big = big * unit;
        atomic_init(&s->next, s->n_big * s->big);
        s->chunk = MAX(1, (min_rows + unit - 1) / unit) * unit;
        s->shrink = (int64_t)nth;
}

/* Small products: one equal share of whole units per thread, the rows
 * left over in single units. */
static inline void row_sched_init_even(row_sched *s, int64_t n_rows, int nth, int64_t unit) {
        int64_t whole = n_rows / unit;
        row_sched_init(s, n_rows, nth, unit);
        if (nth < 2 || nth > 32 || whole < nth)
                return;
        s->n_big = nth;
        s->big = whole / nth * unit;
        atomic_init(&s->next, s->n_big * s->big);
        s->chunk = unit;
}

/* Thread ith takes big chunk ith first (so a worker knows beforehand
 * which rows it will read, see matmul_plan), then any left. */
static inline bool row_sched_next(row_sched *s, int ith, int64_t *r0, int64_t *r1) {
        uint32_t all = (UINT32_C(1) << s->n_big) - 1;
        if (s->n_big > 0 && (atomic_load_explicit(&s->big_taken, memory_order_relaxed) & all) != all)
                for (int64_t k = 0; k < s->n_big; k++) {
                        int64_t c = (ith + k) % s->n_big;
                        uint32_t bit = UINT32_C(1) << c;
                        if (!(atomic_fetch_or_explicit(&s->big_taken, bit, memory_order_relaxed) & bit)) {
                                *r0 = c * s->big;
                                *r1 = *r0 + s->big;
                                return true;
                        }
                }
        int64_t pos = atomic_load_explicit(&s->next, memory_order_relaxed);
        for (;;) {
                if (pos >= s->n_rows)
                        return false;
                int64_t take = s->chunk;
                if (s->shrink)
                        take = MAX(take, ((s->n_rows - pos) / s->shrink + s->unit - 1) / s->unit * s->unit);
                int64_t end = MIN(pos + take, s->n_rows);
                if (atomic_compare_exchange_weak_explicit(&s->next, &pos, end, memory_order_relaxed,
                                                          memory_order_relaxed)) {
                        *r0 = pos;
                        *r1 = end;
                        return true;
                }
        }
}
