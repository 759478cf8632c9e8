/* SPDX-License-Identifier: MIT */
/* The KV cache: F32 keys and values of every past position, per layer and
 * KV head.  Layout per layer and head: [n_ctx][head_dim], so one head's keys
 * are one contiguous matrix (a single sgemm/sgemv operand, streamed in order
 * by the one-token attention). */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct kv_layer {
        int32_t n_head_kv;
        int32_t head_dim;
        float *k; /* [n_head_kv][n_ctx][head_dim] */
        float *v; /* [n_head_kv][n_ctx][head_dim] */
} kv_layer;

typedef struct kv_cache {
        int32_t n_ctx;
        int32_t n_layer;
        kv_layer *layers;
        void *mem; /* one anonymous mapping for all layers, pages committed on use */
        size_t mem_size;
} kv_cache;

/* Layers with n_head_kv[i] == 0 get no storage (architectures that share
 * KV between layers). */
int kv_cache_init(kv_cache *kv, int32_t n_ctx, int32_t n_layer, const int32_t *n_head_kv, const int32_t *head_dim);
void kv_cache_done(kv_cache *kv);

static inline float *kv_cache_k(const kv_cache *kv, int32_t il, int32_t h) {
        const kv_layer *l = &kv->layers[il];
        return l->k + (size_t)h * (size_t)kv->n_ctx * (size_t)l->head_dim;
}
static inline float *kv_cache_v(const kv_cache *kv, int32_t il, int32_t h) {
        const kv_layer *l = &kv->layers[il];
        return l->v + (size_t)h * (size_t)kv->n_ctx * (size_t)l->head_dim;
}

/* Copy n rows of keys and values (row t: n_head_kv * head_dim floats, rows
 * ld floats apart) into positions pos0 .. pos0 + n - 1 of layer il. */
void kv_cache_store(kv_cache *kv, int32_t il, int32_t pos0, int32_t n, const float *k, const float *v, size_t ld);
