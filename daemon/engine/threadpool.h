/* SPDX-License-Identifier: MIT */
/* A fixed pool of worker threads that run one function on every thread and
 * wait for all of them: the shape of every parallel loop in the engine. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct threadpool threadpool;
/* ith in [0, nth); the calling thread is thread 0. */
typedef void (*threadpool_fn)(void *ctx, int ith, int nth);

int threadpool_new(int n_threads, threadpool **ret);
void threadpool_free(threadpool *tp);
int threadpool_size(const threadpool *tp);
/* Run fn(ctx, i, n) on every thread and return when all are done. */
void threadpool_run(threadpool *tp, threadpool_fn fn, void *ctx);
/* For jobs that take their work from a shared counter, so that fn on the
 * calling thread alone finishes all of it: fn runs on the caller and on
 * the workers that join before the caller is done; a worker that has not
 * joined by then (descheduled: the machine is busy) is not waited for and
 * never sees this job.  Returns when the work is done. */
void threadpool_run_dynamic(threadpool *tp, threadpool_fn fn, void *ctx);

/* What a worker reads into its L2 after its share of a dynamic job, while
 * the caller runs the serial steps before the next one: up to `bytes` of
 * each of four streams.  It stops as soon as the next job starts. */
typedef struct threadpool_prefetch {
        const uint8_t *stream[4];
        size_t bytes;
} threadpool_prefetch;

/* threadpool_run_dynamic, then worker ith (1 <= ith < n) prefetches
 * plan[ith] (bytes 0: nothing; plan NULL: none), copied.  The plan stays
 * for the jobs of threadpool_run and threadpool_run_dynamic that come
 * before the next call here: a worker takes it up again after each of
 * them (the attention between two products; E2B, tokens alternating:
 * 1.006, 1.002). */
void threadpool_run_dynamic_prefetch(threadpool *tp, threadpool_fn fn, void *ctx, const threadpool_prefetch *plan);
