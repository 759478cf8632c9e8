/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "kv-cache.h"
#include "macro.h"

int kv_cache_init(kv_cache *kv, int32_t n_ctx, int32_t n_layer, const int32_t *n_head_kv, const int32_t *head_dim) {
        return kv_cache_init_ring(kv, n_ctx, n_layer, n_head_kv, head_dim, NULL, 0, 0);
}

int kv_cache_init_ring(kv_cache *kv, int32_t n_ctx, int32_t n_layer, const int32_t *n_head_kv,
                       const int32_t *head_dim, const bool *ring, int32_t window, int32_t n_ring) {
        size_t total = 0;

        *kv = (kv_cache){ .n_ctx = n_ctx, .n_layer = n_layer };
        if (n_ctx <= 0 || n_layer <= 0)
                return -EINVAL;
        if (!ring || n_ring <= 0 || n_ring >= n_ctx)
                n_ring = 0;
        if (n_ring > 0 && (window <= 0 || window > n_ring))
                return -EINVAL;

        kv->layers = calloc((size_t)n_layer, sizeof(kv_layer));
        if (!kv->layers)
                return -ENOMEM;
        if (n_ring > 0) {
                kv->ring_pos = malloc((size_t)n_ring * sizeof(int32_t));
                if (!kv->ring_pos)
                        goto enomem;
                for (int32_t i = 0; i < n_ring; i++)
                        kv->ring_pos[i] = -1;
                kv->window = window;
                kv->n_ring = n_ring;
        }

        /* Sizes first (overflow-checked), then one mapping carved up. */
        for (int32_t il = 0; il < n_layer; il++) {
                int32_t slots = n_ring > 0 && ring[il] ? n_ring : n_ctx;
                size_t per, bytes;
                if (n_head_kv[il] < 0 || head_dim[il] < 0)
                        goto einval;
                if (MUL_OVERFLOW((size_t)n_head_kv[il], (size_t)head_dim[il], &per) ||
                    MUL_OVERFLOW(per, (size_t)slots, &per) || MUL_OVERFLOW(per, 2 * sizeof(float), &bytes) ||
                    ADD_OVERFLOW(total, align_up_size(bytes, 4096), &total))
                        goto einval;
                kv->layers[il].n_head_kv = n_head_kv[il];
                kv->layers[il].head_dim = head_dim[il];
                kv->layers[il].n_slots = slots;
        }
        if (total > 0) {
                void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                if (p == MAP_FAILED) {
                        int r = -errno;
                        kv_cache_done(kv);
                        return r;
                }
                kv->mem = p;
                kv->mem_size = total;
        }
        uint8_t *at = kv->mem;
        for (int32_t il = 0; il < n_layer; il++) {
                kv_layer *l = &kv->layers[il];
                size_t n = (size_t)l->n_head_kv * (size_t)l->head_dim * (size_t)l->n_slots;
                if (n == 0)
                        continue;
                l->k = (float *)at;
                l->v = l->k + n;
                at += align_up_size(2 * n * sizeof(float), 4096);
        }
        return 0;

einval:
        kv_cache_done(kv);
        return -EINVAL;
enomem:
        kv_cache_done(kv);
        return -ENOMEM;
}

void kv_cache_done(kv_cache *kv) {
        if (kv->mem)
                munmap(kv->mem, kv->mem_size);
        free(kv->layers);
        free(kv->ring_pos);
        *kv = (kv_cache){};
}

const float *kv_cache_rows(const kv_cache *kv, int32_t il, int32_t h, bool value, int32_t pos0, int32_t n,
                           float *buf) {
        const kv_layer *l = &kv->layers[il];
        const float *base = value ? kv_cache_v(kv, il, h) : kv_cache_k(kv, il, h);
        size_t hd = (size_t)l->head_dim;
        int32_t slot = pos0 % l->n_slots;

        if (slot + n <= l->n_slots)
                return base + (size_t)slot * hd;
        /* wrapped: the older part at the ring's end, then its start */
        size_t n1 = (size_t)(l->n_slots - slot);
        memcpy(buf, base + (size_t)slot * hd, n1 * hd * sizeof(float));
        memcpy(buf + n1 * hd, base, ((size_t)n - n1) * hd * sizeof(float));
        return buf;
}

size_t kv_cache_gather_floats(const kv_cache *kv) {
        size_t hd = 0;

        if (kv->n_ring == 0)
                return 0;
        for (int32_t il = 0; il < kv->n_layer; il++)
                if (kv->layers[il].n_slots == kv->n_ring)
                        hd = MAX(hd, (size_t)kv->layers[il].head_dim);
        return 2 * (size_t)kv->n_ring * hd;
}

void kv_cache_store(kv_cache *kv, int32_t il, int32_t pos0, int32_t n, const float *k, const float *v, size_t ld) {
        const kv_layer *l = &kv->layers[il];
        size_t hd = (size_t)l->head_dim;
        bool ring = kv->n_ring > 0 && l->n_slots == kv->n_ring;

        for (int32_t h = 0; h < l->n_head_kv; h++) {
                float *kd = kv_cache_k(kv, il, h), *vd = kv_cache_v(kv, il, h);
                for (int32_t t = 0; t < n; t++) {
                        size_t slot = (size_t)((pos0 + t) % l->n_slots);
                        memcpy(kd + slot * hd, k + (size_t)t * ld + (size_t)h * hd, hd * sizeof(float));
                        memcpy(vd + slot * hd, v + (size_t)t * ld + (size_t)h * hd, hd * sizeof(float));
                }
        }
        if (ring)
                for (int32_t t = 0; t < n; t++)
                        kv->ring_pos[(pos0 + t) % kv->n_ring] = pos0 + t;
}

bool kv_cache_has(const kv_cache *kv, int32_t n_past) {
        if (kv->n_ring == 0)
                return true;
        for (int32_t q = MAX(0, n_past - kv->window + 1); q < n_past; q++)
                if (kv->ring_pos[q % kv->n_ring] != q)
                        return false;
        return true;
}
