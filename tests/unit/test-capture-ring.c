/* SPDX-License-Identifier: MIT */
/* The capture ring: wrap-around, refusal when full, and a producer thread
 * against a consumer thread moving a counting sequence with no sample lost,
 * repeated or reordered. */
#include <pthread.h>
#include <stdio.h>

#include "daemon/capture/ring.h"
#include "tests/unit/test.h"

#define TOTAL 2000000u

static void *producer(void *data) {
        struct ring *r = data;
        float chunk[97];
        uint32_t next = 0;

        while (next < TOTAL) {
                uint32_t n = TOTAL - next < 97 ? TOTAL - next : 97;
                for (uint32_t i = 0; i < n; i++)
                        chunk[i] = (float) ((next + i) % 4096);
                uint32_t w = ring_write(r, chunk, n);
                next += w;      /* what did not fit is offered again */
        }
        return NULL;
}

int main(void) {
        struct ring r;
        const float *a, *b;
        uint32_t na, nb, expect = 0;
        float in[10] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
        pthread_t t;

        CHECK(ring_init(&r, 0) < 0);
        CHECK_OK(ring_init(&r, 5));          /* rounded up to 8 */
        CHECK_EQ_INT(ring_write(&r, in, 10), 8);
        CHECK_EQ_INT(ring_write(&r, in, 1), 0);
        CHECK_EQ_INT(ring_peek(&r, &a, &na, &b, &nb), 8);
        CHECK(na == 8 && nb == 0 && a[0] == 1 && a[7] == 8);
        ring_consume(&r, 6);
        CHECK_EQ_INT(ring_write(&r, in, 5), 5);       /* wraps */
        CHECK_EQ_INT(ring_peek(&r, &a, &na, &b, &nb), 7);
        CHECK(na == 2 && nb == 5 && a[0] == 7 && a[1] == 8 && b[0] == 1 && b[4] == 5);
        ring_consume(&r, 7);
        CHECK_EQ_INT(ring_peek(&r, &a, &na, &b, &nb), 0);
        ring_free(&r);

        CHECK_OK(ring_init(&r, 1024));
        CHECK(pthread_create(&t, NULL, producer, &r) == 0);
        while (expect < TOTAL) {
                uint32_t n = ring_peek(&r, &a, &na, &b, &nb);
                for (uint32_t i = 0; i < n; i++) {
                        float v = i < na ? a[i] : b[i - na];
                        CHECK_MSG(v == (float) ((expect + i) % 4096), "sample %u is %g", expect + i, v);
                }
                ring_consume(&r, n);
                expect += n;
        }
        pthread_join(t, NULL);
        ring_free(&r);
        printf("ok: %u samples through a 1024-sample ring\n", TOTAL);
        return 0;
}
