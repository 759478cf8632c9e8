/* SPDX-License-Identifier: MIT */
/* Memory read bandwidth, measured the way generation reads weights: every
 * thread streams through its own contiguous slice once, and the time is
 * from the start of all to the end of the last.
 *
 * Buffer: 4 x the last-level cache, at least 512 MiB, at most 2 GiB and a
 * quarter of the available memory, so that nothing of it is still cached
 * from the previous pass. */
#include <errno.h>
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
        uint64_t sink[64]; /* per thread, so the sums are not optimized away */
} bw_job;

static void bw_read(void *ctx, int ith, int nth) {
        bw_job *j = ctx;
        size_t n = j->bytes / 64;               /* 64-byte lines */
        size_t a = n * ith / nth, b = n * (ith + 1) / nth;
        const v2u64 *p = (const v2u64 *)(j->buf + a * 64);
        v2u64 s0 = {}, s1 = {}, s2 = {}, s3 = {};
        for (size_t i = a; i < b; i++, p += 4) { /* four independent sums: loads, not adds, limit */
                s0 += p[0];
                s1 += p[1];
                s2 += p[2];
                s3 += p[3];
        }
        v2u64 s = s0 ^ s1 ^ s2 ^ s3;
        j->sink[ith & 63] = s[0] ^ s[1];
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

int bw_measure(int n_threads, int runs, bw_result *ret) {
        size_t llc = llc_size(), avail = mem_available();
        size_t bytes = MAX((size_t)512 << 20, 4 * llc);
        bytes = MIN(bytes, (size_t)2 << 30);
        if (avail > 0)
                bytes = MIN(bytes, avail / 4);
        bytes &= ~(size_t)((1 << 20) - 1);
        if (bytes < (64u << 20) || runs < 1 || runs > 100)
                return -EINVAL;

        void *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buf == MAP_FAILED)
                return -errno;
        madvise(buf, bytes, MADV_HUGEPAGE); /* fewer TLB misses, as with large weight mappings */
        memset(buf, 0x5a, bytes);           /* real pages, not the shared zero page */

        threadpool *tp = NULL;
        int r = threadpool_new(n_threads, &tp);
        if (r < 0) {
                munmap(buf, bytes);
                return r;
        }
        bw_job job = { .buf = buf, .bytes = bytes };
        double gbs[100];
        threadpool_run(tp, bw_read, &job); /* warm-up */
        for (int i = 0; i < runs; i++) {
                double t0 = now();
                threadpool_run(tp, bw_read, &job);
                gbs[i] = bytes / (now() - t0) / 1e9;
        }
        threadpool_free(tp);
        munmap(buf, bytes);

        qsort(gbs, runs, sizeof gbs[0], cmp_double);
        *ret = (bw_result) {
                .gbs = runs % 2 ? gbs[runs / 2] : (gbs[runs / 2 - 1] + gbs[runs / 2]) / 2,
                .min_gbs = gbs[0],
                .max_gbs = gbs[runs - 1],
                .buf_bytes = bytes,
                .llc_bytes = llc,
                .runs = runs,
        };
        return 0;
}
