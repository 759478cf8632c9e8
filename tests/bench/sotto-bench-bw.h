/* SPDX-License-Identifier: MIT */
/* Memory read bandwidth: what generation speed is bounded by. */
#pragma once

#include <stddef.h>

typedef struct bw_result {
        double gbs;        /* median, 1e9 bytes per second */
        double min_gbs, max_gbs;
        size_t buf_bytes;  /* the buffer read */
        size_t llc_bytes;  /* last-level cache as the system reports it, 0 if unknown */
        int runs;
} bw_result;

/* Streaming read of a buffer much larger than the last-level cache with
 * n_threads threads (each a contiguous slice), repeated `runs` times after
 * a warm-up; the median is the figure. */
int bw_measure(int n_threads, int runs, bw_result *ret);
