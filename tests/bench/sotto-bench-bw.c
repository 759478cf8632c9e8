/* SPDX-License-Identifier: MIT */
/* Memory read bandwidth, measured the way generation reads weights: every
 * thread streams through its own contiguous slice once, and the time is
 * from the start of all to the end of the last.
 *
 * Two ways of reading, alternated, and the faster one is the figure: one
 * plain stream per thread, left to the hardware prefetcher, and four
 * streams per thread (the quarters of its slice) with software prefetch
 * 2 KiB ahead, as the decoding kernels read.  The second is faster here
 * (by about a tenth); a bound taken from the first alone was beaten by
 * the kernels.
 *
 * Buffer: 4 x the last-level cache, at least 512 MiB, at most 2 GiB and a
 * quarter of the available memory, so that nothing of it is still cached
 * from the previous pass. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "sotto-bench-bw.h"
#include "threadpool.h"

typedef uint64_t v2u64 __attribute__((vector_size(16)));

typedef struct bw_job {
        const uint8_t *buf;
        size_t bytes;
        bool streams;
        uint64_t sink[64]; /* per thread, so the sums are not optimized away */
} bw_job;

static void bw_read_plain(const v2u64 *p, size_t lines, uint64_t *sink) {
        v2u64 s0 = {}, s1 = {}, s2 = {}, s3 = {};
        for (size_t i = 0; i < lines; i++, p += 4) { /* four independent sums: loads, not adds, limit */
                s0 += p[0];
                s1 += p[1];
                s2 += p[2];
                s3 += p[3];
        }
        v2u64 s = s0 ^ s1 ^ s2 ^ s3;
        *sink = s[0] ^ s[1];
}

#define BW_AHEAD 2048
/* The streams start 33 lines more than a quarter apart: quarters of a
 * slice a multiple of 4 KiB long read 7-13 % slower (2 threads, 1920 MiB:
 * 30.7-32.2 GB/s against 34.6-34.7 with any skew from 1 to 64 KiB; a
 * skew of one line, 31.2).  The decoding kernels keep their quarters off
 * multiples of 4 KiB for the same reason. */
#define BW_SKEW_LINES 33

static void bw_read_streams(const uint8_t *buf, size_t lines, uint64_t *sink) {
        const size_t q = (lines - 3 * BW_SKEW_LINES) / 4 * 64, d = q + 64 * BW_SKEW_LINES; /* bytes per stream, apart */
        const v2u64 *p0 = (const v2u64 *)buf, *p1 = (const v2u64 *)(buf + d), *p2 = (const v2u64 *)(buf + 2 * d),
                    *p3 = (const v2u64 *)(buf + 3 * d);
        v2u64 s0 = {}, s1 = {}, s2 = {}, s3 = {};
        for (size_t i = 0; i < q / 64; i++, p0 += 4, p1 += 4, p2 += 4, p3 += 4) {
                __builtin_prefetch((const char *)p0 + BW_AHEAD);
                __builtin_prefetch((const char *)p1 + BW_AHEAD);
                __builtin_prefetch((const char *)p2 + BW_AHEAD);
                __builtin_prefetch((const char *)p3 + BW_AHEAD);
                s0 += p0[0] ^ p0[1] ^ p0[2] ^ p0[3];
                s1 += p1[0] ^ p1[1] ^ p1[2] ^ p1[3];
                s2 += p2[0] ^ p2[1] ^ p2[2] ^ p2[3];
                s3 += p3[0] ^ p3[1] ^ p3[2] ^ p3[3];
        }
        v2u64 s = s0 ^ s1 ^ s2 ^ s3;
        *sink = s[0] ^ s[1];
}

static void bw_read(void *ctx, int ith, int nth) {
        bw_job *j = ctx;
        size_t n = j->bytes / 64;               /* 64-byte lines */
        size_t a = n * ith / nth, b = n * (ith + 1) / nth;
        if (j->streams)
                bw_read_streams(j->buf + a * 64, b - a, &j->sink[ith & 63]);
        else
                bw_read_plain((const v2u64 *)(j->buf + a * 64), b - a, &j->sink[ith & 63]);
}

static size_t llc_size(void) {
        long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
        if (l3 > 0)
                return (size_t)l3;
        long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
        return l2 > 0 ? (size_t)l2 : 0;
}

static size_t mem_available(void) {
        _cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
        char line[256];
        unsigned long long kib;
        while (f && fgets(line, sizeof line, f))
                if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
                        return (size_t)kib * 1024;
        return 0;
}

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

struct bw_probe {
        void *buf;
        size_t bytes, llc;
        threadpool *tp;
};

void bw_probe_free(bw_probe *p) {
        if (!p)
                return;
        threadpool_free(p->tp);
        if (p->buf)
                munmap(p->buf, p->bytes);
        free(p);
}

int bw_probe_new(int n_threads, bw_probe **ret) {
        size_t llc = llc_size(), avail = mem_available();
        size_t bytes = MAX((size_t)512 << 20, 4 * llc);
        bytes = MIN(bytes, (size_t)2 << 30);
        if (avail > 0)
                bytes = MIN(bytes, avail / 4);
        bytes &= ~(size_t)((1 << 20) - 1);
        if (bytes < (64u << 20))
                return -EINVAL;

        bw_probe *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->bytes = bytes;
        p->llc = llc;
        p->buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p->buf == MAP_FAILED) {
                int r = -errno;
                p->buf = NULL;
                bw_probe_free(p);
                return r;
        }
        madvise(p->buf, bytes, MADV_HUGEPAGE); /* fewer TLB misses, as with large weight mappings */
        memset(p->buf, 0x5a, bytes);           /* real pages, not the shared zero page */
        int r = threadpool_new(n_threads, &p->tp);
        if (r < 0) {
                bw_probe_free(p);
                return r;
        }
        bw_job job = { .buf = p->buf, .bytes = bytes };
        threadpool_run(p->tp, bw_read, &job); /* warm-up */
        *ret = p;
        return 0;
}

size_t bw_probe_bytes(const bw_probe *p) {
        return p->bytes;
}

double bw_probe_once(bw_probe *p, double *plain, double *streams) {
        bw_job job = { .buf = p->buf, .bytes = p->bytes };
        double gbs[2];
        for (int k = 0; k < 2; k++) {
                job.streams = k;
                double t0 = now();
                threadpool_run(p->tp, bw_read, &job);
                gbs[k] = p->bytes / (now() - t0) / 1e9;
        }
        if (plain)
                *plain = gbs[0];
        if (streams)
                *streams = gbs[1];
        return MAX(gbs[0], gbs[1]);
}

int bw_measure(int n_threads, int runs, bw_result *ret) {
        bw_probe *p = NULL;
        double gbs[2][100];

        if (runs < 1 || runs > 100)
                return -EINVAL;
        int r = bw_probe_new(n_threads, &p);
        if (r < 0)
                return r;
        for (int i = 0; i < runs; i++) /* the patterns alternated, so that both see the same machine */
                bw_probe_once(p, &gbs[0][i], &gbs[1][i]);
        size_t bytes = p->bytes, llc = p->llc;
        bw_probe_free(p);

        double med[2];
        for (int k = 0; k < 2; k++) {
                qsort(gbs[k], runs, sizeof gbs[k][0], cmp_double);
                med[k] = runs % 2 ? gbs[k][runs / 2] : (gbs[k][runs / 2 - 1] + gbs[k][runs / 2]) / 2;
        }
        const int best = med[1] > med[0];
        *ret = (bw_result) {
                .gbs = med[best],
                .min_gbs = gbs[best][0],
                .max_gbs = gbs[best][runs - 1],
                .plain_gbs = med[0],
                .streams_gbs = med[1],
                .buf_bytes = bytes,
                .llc_bytes = llc,
                .runs = runs,
        };
        return 0;
}
