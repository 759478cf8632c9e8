/* SPDX-License-Identifier: MIT */
/* The pool runs the function once on every thread index, every time, and
 * returns only when all are done; works after sleeping (past the spin). */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "threadpool.h"
#include "test.h"

typedef struct job {
        _Atomic int calls[8];
        _Atomic long sum;
        int nth_seen[8];
        int slow;
} job;

static void fn(void *p, int ith, int nth) {
        job *j = p;
        atomic_fetch_add(&j->calls[ith], 1);
        j->nth_seen[ith] = nth;
        if (j->slow && ith == nth - 1)
                usleep(2000); /* the caller must wait for it */
        atomic_fetch_add(&j->sum, ith + 1);
}

/* A dynamic job: items from a shared counter, each done exactly once. */
typedef struct dyn_job {
        _Atomic int next;
        int n_items;
        _Atomic unsigned char *hits;
        int slow; /* a worker that starts late: the caller does the items */
} dyn_job;

static void dyn_fn(void *p, int ith, int nth) {
        dyn_job *j = p;

        if (j->slow && ith > 0)
                usleep(3000);
        for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->n_items;)
                atomic_fetch_add(&j->hits[i], 1);
}

/* Dynamic and plain jobs interleaved; each dynamic job lives on the heap
 * and is freed as soon as the run returns, so a worker that touched it
 * late would be a use-after-free under ASan.  Every other one comes with
 * a prefetch plan, also on the heap, whose streams lie in a mapping that
 * cannot be read: a prefetch never faults, and the workers are still
 * prefetching when the next job starts. */
static void test_dynamic(int n) {
        size_t guard_len = 8 << 20;
        uint8_t *guard = mmap(NULL, guard_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        threadpool *tp;

        CHECK(guard != MAP_FAILED);
        CHECK_OK(threadpool_new(n, &tp));
        for (int round = 0; round < 3000; round++) {
                dyn_job *j = calloc(1, sizeof *j);
                CHECK(j);
                j->n_items = 1 + round % 97;
                j->hits = calloc((size_t)j->n_items, 1);
                CHECK(j->hits);
                j->slow = round % 300 == 7;
                if (round % 2) {
                        threadpool_prefetch *plan = calloc((size_t)n, sizeof *plan);
                        CHECK(plan);
                        for (int t = 1; t < n; t++) {
                                for (int k = 0; k < 4; k++)
                                        plan[t].stream[k] = guard + (size_t)k * (guard_len / 4);
                                plan[t].bytes = guard_len / 4;
                        }
                        threadpool_run_dynamic_prefetch(tp, dyn_fn, j, plan);
                        free(plan);
                } else
                        threadpool_run_dynamic(tp, dyn_fn, j);
                for (int i = 0; i < j->n_items; i++)
                        CHECK_EQ_INT(atomic_load(&j->hits[i]), 1);
                free((void *)j->hits);
                free(j);
                if (round % 3 == 0) {
                        job s = { .slow = 0 };
                        threadpool_run(tp, fn, &s);
                        CHECK_EQ_INT(atomic_load(&s.sum), n * (n + 1) / 2);
                        for (int i = 0; i < n; i++)
                                CHECK_EQ_INT(atomic_load(&s.calls[i]), 1);
                }
                if (round % 1000 == 999)
                        usleep(5000);
        }
        threadpool_free(tp);
        munmap(guard, guard_len);
}

int main(void) {
        threadpool *tp;

        CHECK(threadpool_new(0, &tp) == -EINVAL);
        for (int n = 1; n <= 4; n++) {
                CHECK_OK(threadpool_new(n, &tp));
                CHECK_EQ_INT(threadpool_size(tp), n);
                for (int round = 0; round < 3000; round++) {
                        job j = { .slow = round % 500 == 0 };
                        threadpool_run(tp, fn, &j);
                        /* Everything is visible once run returns. */
                        CHECK_EQ_INT(atomic_load(&j.sum), n * (n + 1) / 2);
                        for (int i = 0; i < n; i++) {
                                CHECK_EQ_INT(atomic_load(&j.calls[i]), 1);
                                CHECK_EQ_INT(j.nth_seen[i], n);
                        }
                        if (round % 1000 == 999)
                                usleep(5000); /* let the workers fall asleep */
                }
                threadpool_free(tp);
        }
        for (int n = 1; n <= 4; n++)
                test_dynamic(n);
        threadpool_free(NULL);
        printf("threadpool ok\n");
        return 0;
}
