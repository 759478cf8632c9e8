/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/capture/ring.h"

int ring_init(struct ring *r, size_t capacity) {
        size_t cap = 1;

        if (capacity == 0 || capacity > (1u << 30))
                return -EINVAL;
        while (cap < capacity)
                cap <<= 1;
        r->data = calloc(cap, sizeof(float));
        if (!r->data)
                return -ENOMEM;
        r->mask = (uint32_t) cap - 1;
        atomic_init(&r->head, 0);
        atomic_init(&r->tail, 0);
        return 0;
}

void ring_free(struct ring *r) {
        free(r->data);
        r->data = NULL;
}

uint32_t ring_write(struct ring *r, const float *src, uint32_t n) {
        uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
        uint32_t space = r->mask + 1 - (head - tail);
        uint32_t off = head & r->mask, first;

        if (n > space)
                n = space;
        first = r->mask + 1 - off;
        if (first > n)
                first = n;
        memcpy(r->data + off, src, first * sizeof(float));
        memcpy(r->data, src + first, (n - first) * sizeof(float));
        /* Release: the samples are visible before the new head. */
        atomic_store_explicit(&r->head, head + n, memory_order_release);
        return n;
}

uint32_t ring_peek(struct ring *r, const float **a, uint32_t *na, const float **b, uint32_t *nb) {
        uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        uint32_t n = head - tail, off = tail & r->mask;
        uint32_t first = r->mask + 1 - off;

        if (first > n)
                first = n;
        *a = r->data + off;
        *na = first;
        *b = r->data;
        *nb = n - first;
        return n;
}

void ring_consume(struct ring *r, uint32_t n) {
        uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        /* Release: our reads are done before the producer may overwrite. */
        atomic_store_explicit(&r->tail, tail + n, memory_order_release);
}
