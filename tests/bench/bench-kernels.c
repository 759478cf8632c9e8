/* SPDX-License-Identifier: MIT */
/* Kernel micro-benchmark.
 *
 *   bench-kernels [-t SECONDS] [-m MiB] [-s SET] [TYPE...]
 *
 * 1. Memory: read bandwidth (sotto-bench's probe, sotto-bench-bw.h: plain
 *    and as four prefetched streams per thread) and memcpy, 1 and 2
 *    threads.
 * 2. Vec-mat, per type: a stack of weight matrices of Llama-3.2-1B shapes
 *    (2048x2048, 2048x8192, 8192x2048) totalling -m MiB (default 1024, far
 *    beyond the caches), one token through all of them, as in decoding;
 *    reported as weight GB/s and as a fraction of the faster read.
 * 3. Matmul of 512 tokens by a 2048x8192 and an 8192x2048 weight per path
 *    (sgemm, int8), GFLOP/s, at the given thread count (2 by default). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "matmul.h"
#include "sotto-bench-bw.h"
#include "tensor-type.h"
#include "threadpool.h"

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double proc_cpu_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
        qsort(v, n, sizeof *v, cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (uint32_t)(rng >> 16);
}

/* --- memory bandwidth --------------------------------------------------- */

typedef struct mem_job {
        uint8_t *src, *dst;
        size_t size;
} mem_job;

static void copy_worker(void *p, int ith, int nth) {
        mem_job *j = p;
        size_t chunk = j->size / nth / 64 * 64, off = chunk * ith;
        memcpy(j->dst + off, j->src + off, chunk);
}

/* memcpy, read + write GB/s: a copy reads and writes each byte. */
static double copy_bandwidth(threadpool *tp, uint8_t *src, uint8_t *dst, size_t size, int reps) {
        mem_job j = { .src = src, .dst = dst, .size = size };
        double t[32];
        threadpool_run(tp, copy_worker, &j); /* warm: fault in the pages */
        for (int r = 0; r < reps; r++) {
                double t0 = now();
                threadpool_run(tp, copy_worker, &j);
                t[r] = now() - t0;
        }
        return 2.0 * size / median(t, reps) / 1e9;
}

/* --- weights ------------------------------------------------------------ */

static void *make_weights(uint32_t type, int64_t n_in, int64_t n_out, size_t *row_bytes) {
        const type_traits *t = type_traits_get(type);
        size_t rb;
        if (type_row_size(type, n_in, &rb) < 0)
                return NULL;
        uint8_t *w = aligned_alloc(64, (rb * n_out + 63) / 64 * 64);
        float *x = malloc(sizeof(float) * n_in);
        if (!w || !x)
                exit(1);
        for (int64_t r = 0; r < n_out; r++) {
                uint8_t *row = w + rb * r;
                if (t->from_float && (r < 64 || type == TYPE_F32 || type == TYPE_F16 || type == TYPE_BF16)) {
                        for (int64_t i = 0; i < n_in; i++)
                                x[i] = ((int)(rnd() % 2001) - 1000) * 1e-3f;
                        t->from_float(x, row, n_in);
                } else if (t->from_float) { /* quantizing is slow: copy a quantized row */
                        memcpy(row, w + rb * (r % 64), rb);
                } else {
                        for (size_t i = 0; i < rb; i++)
                                row[i] = (uint8_t)rnd();
                        for (int64_t b = 0; b < n_in / QK_K; b++) {
                                uint8_t *blk = row + b * t->type_size;
                                uint16_t d = fp32_to_fp16(1e-3f);
                                memcpy(type == TYPE_Q6_K ? blk + 208 : blk, &d, 2);
                                if (type != TYPE_Q6_K)
                                        memcpy(blk + 2, &d, 2);
                        }
                }
        }
        free(x);
        *row_bytes = rb;
        return w;
}

static const int64_t shapes[][2] = { { 2048, 2048 }, { 2048, 8192 }, { 8192, 2048 } };

static void bench_vec(uint32_t type, int n_threads, size_t budget, double seconds, double read_bw) {
        matmul_ctx *c;
        weight ws[512];
        int n = 0;
        size_t total = 0;

        if (matmul_ctx_new(n_threads, &c) < 0)
                exit(1);
        while (total < budget && n < 512) {
                const int64_t *s = shapes[n % 3];
                weight *w = &ws[n];
                *w = (weight){ .name = "w", .type = type, .n_in = s[0], .n_out = s[1] };
                w->data = make_weights(type, s[0], s[1], &w->row_bytes);
                total += w->row_bytes * w->n_out;
                n++;
        }
        float *x = malloc(sizeof(float) * 8192), *y = malloc(sizeof(float) * 8192);
        for (int i = 0; i < 8192; i++)
                x[i] = ((int)(rnd() % 2001) - 1000) * 1e-3f;
        double t[256], cpu[256];
        int reps = 0;
        double start = now();
        for (int i = 0; i < n; i++) /* warm */
                matmul(c, &ws[i], x, 1, y);
        while (reps < 256 && (reps < 5 || now() - start < seconds)) {
                double t0 = now(), c0 = proc_cpu_now();
                for (int i = 0; i < n; i++)
                        matmul(c, &ws[i], x, 1, y);
                t[reps] = now() - t0;
                cpu[reps++] = proc_cpu_now() - c0;
        }
        double med = median(t, reps), medc = median(cpu, reps);
        double gbs = total / med / 1e9;
        /* CPU time: what the threads used, spinning included; on a busy
         * machine wall-clock GB/s mostly measures the share of CPU we got. */
        printf("vec   %-5s %d thr: %7.1f MiB in %3d matmuls  %7.3f ms  %6.2f GB/s  %5.1f%% of read bw  (%.2f GB per CPU-second)\n",
               type_name(type), n_threads, total / 1048576.0, n, med * 1e3, gbs, 100 * gbs / read_bw, total / medc / 1e9);
        for (int i = 0; i < n; i++)
                free((void *)ws[i].data);
        free(x);
        free(y);
        matmul_ctx_free(c);
}

/* Compute speed of the dot kernels alone: 64 rows of 4096 that stay in L2,
 * timed in thread CPU time (robust to other load on the machine). */
static void bench_dot(uint32_t type) {
        static const char *sets[] = { "scalar", "avx2", "avx512" };
        const int64_t n = 4096, rows = 64;
        const type_traits *t = type_traits_get(type);
        size_t rb, arb;
        void *w = make_weights(type, n, rows, &rb);
        float x[4096];
        static uint8_t aq[4096 * 4];

        for (int i = 0; i < n; i++)
                x[i] = ((int)(rnd() % 2001) - 1000) * 1e-3f;
        type_row_size(t->vec_dot_type, n, &arb);
        printf("dot   %-5s in L2:", t->name);
        for (int k = 0; k < 3; k++) {
                const kernel_set *ks = kernels_get(sets[k]);
                if (!ks)
                        continue;
                ks->from_float[t->vec_dot_type](x, aq, n);
                double best = 1e9;
                float sink = 0;
                for (int rep = 0; rep < 30; rep++) {
                        double t0 = cpu_now();
                        for (int r = 0; r < rows; r++) {
                                float s;
                                ks->vec_dot[type](n, &s, (const uint8_t *)w + r * rb, aq);
                                sink += s;
                        }
                        double dt = cpu_now() - t0;
                        best = dt < best ? dt : best;
                }
                printf("  %s %6.2f GB/s", sets[k], rows * rb / best / 1e9 + sink * 0);
        }
        /* the decoding kernel on prepared activations, all rows in one call */
        const kernel_set *kb = kernels_best();
        if (kb->gemv && kb->gemv[type].rows && n % 256 == 0) {
                static uint8_t act[4096 * 8] __attribute__((aligned(64)));
                static float y[64];
                double best = 1e9;
                kb->gemv[type].prep(x, act, n);
                for (int rep = 0; rep < 30; rep++) {
                        double t0 = cpu_now();
                        kb->gemv[type].rows(n, w, rb, rows, act, y);
                        double dt = cpu_now() - t0;
                        best = dt < best ? dt : best;
                }
                printf("  gemv %6.2f GB/s", rows * rb / best / 1e9 + y[0] * 0);
        }
        printf("\n");
        free(w);
}

static void bench_gemm(uint32_t type, int n_threads, double seconds) {
        const int64_t nt = 512;
        matmul_ctx *c;

        if (matmul_ctx_new(n_threads, &c) < 0)
                exit(1);
        float *x = malloc(sizeof(float) * 8192 * nt), *y = malloc(sizeof(float) * 8192 * nt);
        for (int64_t i = 0; i < 8192 * nt; i++)
                x[i] = ((int)(rnd() % 2001) - 1000) * 1e-3f;
        for (int s = 1; s < 3; s++) {
                weight w = { .name = "w", .type = type, .n_in = shapes[s][0], .n_out = shapes[s][1] };
                w.data = make_weights(type, w.n_in, w.n_out, &w.row_bytes);
                for (matmul_path p = MATMUL_PATH_SGEMM; p <= MATMUL_PATH_INT8; p++) {
                        matmul_ctx_force_path(c, p);
                        matmul(c, &w, x, nt, y);
                        if (matmul_last_path(c, type) != p) {
                                printf("gemm  %-5s %d thr: %5lldx%-5lld %-5s  (not available)\n", type_name(type),
                                       n_threads, (long long)w.n_in, (long long)w.n_out, matmul_path_name(p));
                                continue;
                        }
                        double t[64], cpu[64];
                        int reps = 0;
                        double start = now();
                        while (reps < 64 && (reps < 3 || now() - start < seconds)) {
                                double t0 = now(), c0 = proc_cpu_now();
                                matmul(c, &w, x, nt, y);
                                t[reps] = now() - t0;
                                cpu[reps++] = proc_cpu_now() - c0;
                        }
                        double med = median(t, reps), medc = median(cpu, reps);
                        double flop = 2.0 * nt * w.n_in * w.n_out;
                        /* CPU time includes the pool's spinning, so the
                         * per-core figure is a lower bound. */
                        printf("gemm  %-5s %d thr: %5lldx%-5lld %-5s %8.2f ms  %7.1f GFLOP/s  %7.1f GFLOP per CPU-second\n",
                               type_name(type), n_threads, (long long)w.n_in, (long long)w.n_out, matmul_path_name(p),
                               med * 1e3, flop / med / 1e9, flop / medc / 1e9);
                }
                free((void *)w.data);
        }
        free(x);
        free(y);
        matmul_ctx_free(c);
}

int main(int argc, char **argv) {
        double seconds = 2;
        size_t budget = 1024; /* beyond a 480 MiB L3 */
        int gemm_threads = 2, opt;
        bool do_vec = true, do_gemm = true;

        bool do_dot = true;
        while ((opt = getopt(argc, argv, "t:m:s:g:VGD")) != -1)
                switch (opt) {
                case 't': seconds = atof(optarg); break;
                case 'm': budget = (size_t)atol(optarg); break;
                case 's': setenv("SOTTO_KERNELS", optarg, 1); break;
                case 'g': gemm_threads = atoi(optarg); break;
                case 'V': do_vec = false; break;
                case 'G': do_gemm = false; break;
                case 'D': do_dot = false; break;
                default:
                        fprintf(stderr, "usage: %s [-t SECONDS] [-m MiB] [-s SET] [-g THREADS] [-V] [-G] [-D] [TYPE...]\n", argv[0]);
                        return 2;
                }
        budget <<= 20;
        printf("kernels: %s\n", kernels_best()->name);

        size_t msize = 1ull << 30;
        uint8_t *src = aligned_alloc(64, msize), *dst = aligned_alloc(64, msize);
        if (!src || !dst)
                return 1;
        memset(src, 1, msize);
        memset(dst, 2, msize);
        double read_bw[3];
        for (int n = 1; n <= 2; n++) {
                threadpool *tp;
                if (threadpool_new(n, &tp) < 0)
                        return 1;
                /* sotto-bench's probe: the fractions below are of the
                 * faster of its two reads */
                bw_result bw;
                if (bw_measure(n, 7, &bw) < 0)
                        return 1;
                double copy_bw = copy_bandwidth(tp, src, dst, msize / 2, 7);
                read_bw[n] = bw.gbs;
                printf("mem   %d thr: read %6.2f GB/s  four prefetched streams %6.2f GB/s   memcpy %6.2f GB/s (read+write)\n",
                       n, bw.plain_gbs, bw.streams_gbs, copy_bw);
                threadpool_free(tp);
        }
        free(src);
        free(dst);

        static const uint32_t all[] = { TYPE_Q4_0, TYPE_Q8_0, TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K, TYPE_F16, TYPE_BF16, TYPE_F32 };
        uint32_t types[16];
        int n_types = 0;
        for (int i = optind; i < argc && n_types < 16; i++)
                for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
                        if (strcasecmp(argv[i], type_name(all[k])) == 0)
                                types[n_types++] = all[k];
        if (!n_types)
                for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
                        types[n_types++] = all[k];

        for (int i = 0; i < n_types && do_dot; i++)
                bench_dot(types[i]);
        for (int i = 0; i < n_types && do_vec; i++)
                for (int n = 1; n <= 2; n++)
                        bench_vec(types[i], n, budget, seconds, read_bw[n]);
        for (int i = 0; i < n_types && do_gemm; i++)
                bench_gemm(types[i], gemm_threads, seconds);
        return 0;
}
