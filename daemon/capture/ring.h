/* SPDX-License-Identifier: MIT */
/* A single-producer single-consumer ring of float samples.  The producer is
 * PipeWire's real-time process callback, so ring_write() never allocates,
 * locks or makes a system call; the consumer is the main loop.  Indices run
 * freely (wrapping at 2^32) and the capacity is a power of two. */
#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct ring {
        float *data;
        uint32_t mask;                  /* capacity - 1 */
        _Atomic uint32_t head;          /* written by the producer */
        _Atomic uint32_t tail;          /* written by the consumer */
};

/* capacity: samples, rounded up to a power of two (at most 2^30). */
int ring_init(struct ring *r, size_t capacity);
void ring_free(struct ring *r);

/* Producer side: copies up to n samples, returns how many fit. */
uint32_t ring_write(struct ring *r, const float *src, uint32_t n);

/* Consumer side: the readable samples as at most two spans (the second is
 * used after a wrap), then ring_consume() once they have been taken. */
uint32_t ring_peek(struct ring *r, const float **a, uint32_t *na, const float **b, uint32_t *nb);
void ring_consume(struct ring *r, uint32_t n);
