/* SPDX-License-Identifier: MIT */
/* The pool runs the function once on every thread index, every time, and
 * returns only when all are done; works after sleeping (past the spin). */
#include <errno.h>
#include <stdatomic.h>
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
        threadpool_free(NULL);
        printf("threadpool ok\n");
        return 0;
}
