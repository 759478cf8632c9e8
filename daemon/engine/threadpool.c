/* SPDX-License-Identifier: MIT */
/* The thread pool: workers wait for a new generation number, run the job,
 * and count themselves done.  A decode step runs ~100 short jobs, so both
 * sides spin for a while (SPIN_NS) before sleeping on a futex; a sleeper is
 * woken only when someone announced it sleeps (store, then load, on both
 * sides, all sequentially consistent, so no wake-up is lost).
 *
 * Dynamic jobs (threadpool_run_dynamic) are closed by the caller once its
 * own call returns, which means the work is done: a worker joins a job by
 * counting itself into `entry` while it is open, and the caller waits only
 * for those that joined.  On a busy machine a worker is often off its CPU
 * when a job starts; the caller then does the whole product alone instead
 * of waiting a time slice for a thread that would find nothing left.
 *
 * No sched_yield() while spinning: on an oversubscribed machine a thread
 * that yields keeps losing its turn to the other processes (CFS), and a
 * decode step pays a scheduling round per dispatch; sleeping on the futex
 * early lets the scheduler wake it promptly (measured at load ~12: tg
 * 0.9-1.4 tok/s with yielding, 1.6-4.3 without, on llama-1b Q4_0). */
#include <errno.h>
#include <immintrin.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "threadpool.h"

#define SPIN_NS 50000 /* 50 us: longer than the gap between two dispatches of a decode step */

struct worker {
        threadpool *tp;
        pthread_t thread;
        int ith;
};

struct threadpool {
        int n;
        struct worker *workers;

        /* Written by the caller before a job, read by the workers. */
        threadpool_fn fn;
        void *ctx;
        threadpool_prefetch *plan; /* [n]: the last plan given, copied */
        bool stop;

        _Alignas(64) _Atomic uint32_t gen; /* futex: a new job */
        _Atomic int sleepers;              /* workers asleep on gen */
        /* generation << 32 | ENTRY_CLOSED | workers that joined */
        _Atomic uint64_t entry;
        _Alignas(64) _Atomic uint32_t done; /* futex: workers finished */
        _Atomic int caller_sleeps;
};

#define ENTRY_CLOSED (UINT64_C(1) << 31)
#define ENTRY_COUNT (ENTRY_CLOSED - 1)

/* Join generation g's job; false when it is closed (or already gone). */
static bool join(threadpool *tp, uint32_t g) {
        uint64_t e = atomic_load(&tp->entry);

        for (;;) {
                if ((uint32_t)(e >> 32) != g || (e & ENTRY_CLOSED))
                        return false;
                if (atomic_compare_exchange_weak(&tp->entry, &e, e + 1))
                        return true;
        }
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t val) {
        syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr, int n) {
        syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spin until *addr != val or SPIN_NS passed; true when it changed. */
static bool spin_while_equal(_Atomic uint32_t *addr, uint32_t val) {
        uint64_t start = 0;

        for (unsigned i = 1;; i++) {
                if (atomic_load_explicit(addr, memory_order_acquire) != val)
                        return true;
                _mm_pause();
                if ((i & 63) == 0) {
                        uint64_t t = now_ns();
                        if (!start)
                                start = t;
                        else if (t - start > SPIN_NS)
                                return false;
                }
        }
}

/* Into L2, four streams side by side, until done or a new job starts. */
static void prefetch(threadpool *tp, uint32_t g, const threadpool_prefetch *p) {
        for (size_t off = 0; off < p->bytes; off += 16 * 64) {
                if (atomic_load_explicit(&tp->gen, memory_order_relaxed) != g)
                        return;
                for (size_t l = off; l < MIN(p->bytes, off + 16 * 64); l += 64)
                        for (int k = 0; k < 4; k++)
                                _mm_prefetch((const char *)p->stream[k] + l, _MM_HINT_T1);
        }
}

static void *worker_main(void *p) {
        struct worker *w = p;
        threadpool *tp = w->tp;
        uint32_t seen = 0;

        for (;;) {
                uint32_t g;
                if (!spin_while_equal(&tp->gen, seen)) {
                        atomic_fetch_add(&tp->sleepers, 1);
                        while (atomic_load(&tp->gen) == seen)
                                futex_wait(&tp->gen, seen);
                        atomic_fetch_sub(&tp->sleepers, 1);
                }
                g = atomic_load_explicit(&tp->gen, memory_order_acquire);
                seen = g;
                if (tp->stop)
                        return NULL;
                if (!join(tp, g))
                        continue;
                tp->fn(tp->ctx, w->ith, tp->n);
                threadpool_prefetch plan = tp->plan[w->ith];
                atomic_fetch_add(&tp->done, 1);
                if (atomic_load(&tp->caller_sleeps))
                        futex_wake(&tp->done, 1);
                if (plan.bytes)
                        prefetch(tp, g, &plan);
        }
}

static void start_generation(threadpool *tp) {
        uint32_t g = atomic_load(&tp->gen) + 1;

        atomic_store(&tp->done, 0);
        atomic_store(&tp->entry, (uint64_t)g << 32);
        atomic_store(&tp->gen, g);
        if (atomic_load(&tp->sleepers) > 0)
                futex_wake(&tp->gen, INT_MAX);
}

/* Wait until want workers counted themselves done. */
static void wait_workers(threadpool *tp, uint32_t want) {
        uint32_t d;

        for (;;) {
                d = atomic_load_explicit(&tp->done, memory_order_acquire);
                if (d == want)
                        return;
                if (spin_while_equal(&tp->done, d))
                        continue;
                atomic_store(&tp->caller_sleeps, 1);
                while ((d = atomic_load(&tp->done)) != want)
                        futex_wait(&tp->done, d);
                atomic_store(&tp->caller_sleeps, 0);
                return;
        }
}

int threadpool_new(int n_threads, threadpool **ret) {
        threadpool *tp;
        int r;

        if (n_threads < 1 || n_threads > 1024)
                return -EINVAL;
        tp = calloc(1, sizeof *tp);
        if (!tp)
                return -ENOMEM;
        tp->n = n_threads;
        tp->workers = calloc((size_t)n_threads, sizeof *tp->workers);
        tp->plan = calloc((size_t)n_threads, sizeof *tp->plan);
        if (!tp->workers || !tp->plan) {
                free(tp->workers);
                free(tp->plan);
                free(tp);
                return -ENOMEM;
        }
        for (int i = 1; i < n_threads; i++) {
                struct worker *w = &tp->workers[i];
                w->tp = tp;
                w->ith = i;
                r = pthread_create(&w->thread, NULL, worker_main, w);
                if (r != 0) {
                        tp->n = i; /* only these exist: stop them */
                        threadpool_free(tp);
                        return -r;
                }
        }
        *ret = tp;
        return 0;
}

void threadpool_free(threadpool *tp) {
        if (!tp)
                return;
        if (tp->n > 1) {
                tp->stop = true;
                start_generation(tp);
                for (int i = 1; i < tp->n; i++)
                        pthread_join(tp->workers[i].thread, NULL);
        }
        free(tp->workers);
        free(tp->plan);
        free(tp);
}

int threadpool_size(const threadpool *tp) {
        return tp->n;
}

static void run(threadpool *tp, threadpool_fn fn, void *ctx, bool dynamic) {
        if (tp->n == 1) {
                fn(ctx, 0, 1);
                return;
        }
        tp->fn = fn;
        tp->ctx = ctx;
        start_generation(tp);
        fn(ctx, 0, tp->n);
        if (dynamic)
                wait_workers(tp, (uint32_t)(atomic_fetch_or(&tp->entry, ENTRY_CLOSED) & ENTRY_COUNT));
        else
                wait_workers(tp, (uint32_t)(tp->n - 1));
}

void threadpool_run(threadpool *tp, threadpool_fn fn, void *ctx) {
        run(tp, fn, ctx, false);
}

void threadpool_run_dynamic(threadpool *tp, threadpool_fn fn, void *ctx) {
        run(tp, fn, ctx, true);
}

void threadpool_run_dynamic_prefetch(threadpool *tp, threadpool_fn fn, void *ctx, const threadpool_prefetch *plan) {
        for (int i = 1; i < tp->n; i++)
                tp->plan[i] = plan ? plan[i] : (threadpool_prefetch){ .bytes = 0 };
        run(tp, fn, ctx, true);
}
