/* SPDX-License-Identifier: MIT */
/* Memory read bandwidth: what generation speed is bounded by. */
#pragma once

#include <stddef.h>

#include "macro.h"

typedef struct bw_result {
        double gbs;        /* median of the faster pattern, 1e9 bytes per second */
        double min_gbs, max_gbs;
        double plain_gbs, streams_gbs; /* the median of each pattern */
        size_t buf_bytes;  /* the buffer read */
        size_t llc_bytes;  /* last-level cache as the system reports it, 0 if unknown */
        int runs;
} bw_result;

/* Streaming read of a buffer much larger than the last-level cache with
 * n_threads threads (each a contiguous slice), in two patterns (one plain
 * stream, four prefetched streams per thread) alternated `runs` times
 * after a warm-up; the median of the faster pattern is the figure. */
int bw_measure(int n_threads, int runs, bw_result *ret);

/* The same reads, one at a time, to pair with other measurements: a
 * probe owns its buffer (allocated and touched by bw_probe_new) and
 * threads; bw_probe_once reads it once in each pattern and returns the
 * faster, in GB/s. */
typedef struct bw_probe bw_probe;
int bw_probe_new(int n_threads, bw_probe **ret);
void bw_probe_free(bw_probe *p);
double bw_probe_once(bw_probe *p, double *plain, double *streams);
size_t bw_probe_bytes(const bw_probe *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(bw_probe *, bw_probe_free);
