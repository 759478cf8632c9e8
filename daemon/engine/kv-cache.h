/* SPDX-License-Identifier: MIT */
/* The KV cache: F32 keys and values of past positions, per layer and KV
 * head.  Layout per layer and head: [n_slots][head_dim], so one head's keys
 * are one contiguous matrix (a single sgemm/sgemv operand, streamed in order
 * by the one-token attention).
 *
 * Full layers hold every position (n_slots = n_ctx, slot = position).
 * Sliding-window layers (Gemma's local attention) may hold a ring of
 * n_ring slots instead, position p in slot p % n_ring: a query at p only
 * sees keys p - window + 1 .. p, so the ring needs window + (tokens per
 * forward) - 1 slots whatever the context.  A range of keys that wraps
 * around the ring's end is copied into the caller's buffer in position
 * order (kv_cache_rows), so attention computes exactly what it computes
 * over a full cache. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kv_layer {
        int32_t n_head_kv;
        int32_t head_dim;
        int32_t n_slots; /* n_ctx, or n_ring for a ring layer */
        float *k;        /* [n_head_kv][n_slots][head_dim] */
        float *v;        /* [n_head_kv][n_slots][head_dim] */
} kv_layer;

typedef struct kv_cache {
        int32_t n_ctx;
        int32_t n_layer;
        kv_layer *layers;
        void *mem; /* one anonymous mapping for all layers, pages committed on use */
        size_t mem_size;
        /* The ring of the sliding-window layers (n_ring 0: none).  ring_pos[i]:
         * the position slot i holds in every ring layer (-1: none); a write
         * of p destroys p - n_ring, which kv_cache_has() checks. */
        int32_t window;
        int32_t n_ring;
        int32_t *ring_pos;
        /* Bytes of keys and values attention has read from the cache so
         * far (engine_session_kv_bytes_read) */
        uint64_t bytes_read;
} kv_cache;

/* Layers with n_head_kv[i] == 0 get no storage (architectures that share
 * KV between layers). */
int kv_cache_init(kv_cache *kv, int32_t n_ctx, int32_t n_layer, const int32_t *n_head_kv, const int32_t *head_dim);
/* The same, with the layers where ring[i] is true (sliding window of
 * window keys) holding n_ring slots; n_ring <= 0 or >= n_ctx: no ring.
 * n_ring must be at least window + the tokens of one forward call - 1. */
int kv_cache_init_ring(kv_cache *kv, int32_t n_ctx, int32_t n_layer, const int32_t *n_head_kv,
                       const int32_t *head_dim, const bool *ring, int32_t window, int32_t n_ring);
void kv_cache_done(kv_cache *kv);

static inline float *kv_cache_k(const kv_cache *kv, int32_t il, int32_t h) {
        const kv_layer *l = &kv->layers[il];
        return l->k + (size_t)h * (size_t)l->n_slots * (size_t)l->head_dim;
}
static inline float *kv_cache_v(const kv_cache *kv, int32_t il, int32_t h) {
        const kv_layer *l = &kv->layers[il];
        return l->v + (size_t)h * (size_t)l->n_slots * (size_t)l->head_dim;
}

/* n contiguous rows of keys (value: values) of KV head h of layer il for
 * positions pos0 .. pos0 + n - 1 (n <= the layer's slots): a pointer into
 * the cache, or, when the range wraps around a ring, buf (n * head_dim
 * floats) filled in position order. */
const float *kv_cache_rows(const kv_cache *kv, int32_t il, int32_t h, bool value, int32_t pos0, int32_t n,
                           float *buf);
/* Floats of buffer that kv_cache_rows may need for the keys and the values
 * of one head together (0 without a ring). */
size_t kv_cache_gather_floats(const kv_cache *kv);

/* Copy n rows of keys and values (row t: n_head_kv * head_dim floats, rows
 * ld floats apart) into positions pos0 .. pos0 + n - 1 of layer il. */
void kv_cache_store(kv_cache *kv, int32_t il, int32_t pos0, int32_t n, const float *k, const float *v, size_t ld);

/* Whether the cache still holds what a token at position n_past attends
 * to: always for full layers; for the ring, the window before n_past must
 * not have been overwritten by later positions (a rewind past it). */
bool kv_cache_has(const kv_cache *kv, int32_t n_past);
