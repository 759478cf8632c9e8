/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "kv-cache.h"
#include "macro.h"

int kv_cache_init(kv_cache *kv, int32_t n_ctx, int32_t n_layer, const int32_t *n_head_kv, const int32_t *head_dim) {
        size_t total = 0;

        *kv = (kv_cache){ .n_ctx = n_ctx, .n_layer = n_layer };
        if (n_ctx <= 0 || n_layer <= 0)
                return -EINVAL;

        kv->layers = calloc((size_t)n_layer, sizeof(kv_layer));
        if (!kv->layers)
                return -ENOMEM;

        /* Sizes first (overflow-checked), then one mapping carved up. */
        for (int32_t il = 0; il < n_layer; il++) {
                size_t per, bytes;
                if (n_head_kv[il] < 0 || head_dim[il] < 0)
                        goto einval;
                if (MUL_OVERFLOW((size_t)n_head_kv[il], (size_t)head_dim[il], &per) ||
                    MUL_OVERFLOW(per, (size_t)n_ctx, &per) || MUL_OVERFLOW(per, 2 * sizeof(float), &bytes) ||
                    ADD_OVERFLOW(total, align_up_size(bytes, 4096), &total))
                        goto einval;
                kv->layers[il].n_head_kv = n_head_kv[il];
                kv->layers[il].head_dim = head_dim[il];
        }
        if (total > 0) {
                void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                if (p == MAP_FAILED) {
                        free(kv->layers);
                        kv->layers = NULL;
                        return -errno;
                }
                kv->mem = p;
                kv->mem_size = total;
        }
        uint8_t *at = kv->mem;
        for (int32_t il = 0; il < n_layer; il++) {
                kv_layer *l = &kv->layers[il];
                size_t n = (size_t)l->n_head_kv * (size_t)l->head_dim * (size_t)n_ctx;
                if (n == 0)
                        continue;
                l->k = (float *)at;
                l->v = l->k + n;
                at += align_up_size(2 * n * sizeof(float), 4096);
        }
        return 0;

einval:
        free(kv->layers);
        kv->layers = NULL;
        return -EINVAL;
}

void kv_cache_done(kv_cache *kv) {
        if (kv->mem)
                munmap(kv->mem, kv->mem_size);
        free(kv->layers);
        *kv = (kv_cache){};
}

void kv_cache_store(kv_cache *kv, int32_t il, int32_t pos0, int32_t n, const float *k, const float *v, size_t ld) {
        const kv_layer *l = &kv->layers[il];
        size_t hd = (size_t)l->head_dim;

        for (int32_t h = 0; h < l->n_head_kv; h++) {
                float *kd = kv_cache_k(kv, il, h) + (size_t)pos0 * hd;
                float *vd = kv_cache_v(kv, il, h) + (size_t)pos0 * hd;
                for (int32_t t = 0; t < n; t++) {
                        memcpy(kd + (size_t)t * hd, k + (size_t)t * ld + (size_t)h * hd, hd * sizeof(float));
                        memcpy(vd + (size_t)t * hd, v + (size_t)t * ld + (size_t)h * hd, hd * sizeof(float));
                }
        }
}
