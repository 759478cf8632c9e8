/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gemma-model.h"
#include "macro.h"
#include "tensor-type.h"

static int get_u32(engine_model *m, const char *suffix, bool required, uint32_t dflt, uint32_t lo, uint32_t hi,
                   int32_t *ret, char *err, size_t errlen) {
        uint32_t u = dflt;
        int r;

        r = model_get_u32(m, suffix, required, &u, err, errlen);
        if (r < 0 && r != -ENOENT)
                return r;
        if (u < lo || u > hi)
                return set_error(err, errlen, -EINVAL, "%s.%s = %u is out of range [%u, %u]", m->arch_name, suffix,
                                 u, lo, hi);
        *ret = (int32_t)u;
        return 0;
}

int gemma_read_hparams(engine_model *m, char *err, size_t errlen) {
        model_hparams *hp = &m->hp;
        int32_t v;
        int r;

        if ((r = get_u32(m, "embedding_length", true, 0, 1, GEMMA_MAX_EMBD, &hp->n_embd, err, errlen)) < 0 ||
            (r = get_u32(m, "block_count", true, 0, 1, GEMMA_MAX_LAYER, &hp->n_layer, err, errlen)) < 0 ||
            (r = get_u32(m, "attention.head_count", true, 0, 1, GEMMA_MAX_HEAD, &hp->n_head, err, errlen)) < 0 ||
            (r = get_u32(m, "attention.head_count_kv", false, (uint32_t)hp->n_head, 1, (uint32_t)hp->n_head,
                         &hp->n_head_kv, err, errlen)) < 0 ||
            (r = get_u32(m, "context_length", false, 8192, 1, INT32_MAX, &hp->n_ctx_train, err, errlen)) < 0)
                return r;
        if (hp->n_head % hp->n_head_kv != 0)
                return set_error(err, errlen, -EINVAL, "%d heads cannot share %d KV heads", hp->n_head,
                                 hp->n_head_kv);
        r = get_u32(m, "attention.key_length", false, (uint32_t)MAX(2, hp->n_embd / hp->n_head), 2,
                    GEMMA_MAX_HEAD_DIM, &hp->head_dim, err, errlen);
        if (r < 0)
                return r;
        r = get_u32(m, "attention.value_length", false, (uint32_t)hp->head_dim, (uint32_t)hp->head_dim,
                    (uint32_t)hp->head_dim, &v, err, errlen);
        if (r < 0)
                return r;
        if (hp->head_dim % 2 != 0)
                return set_error(err, errlen, -EINVAL, "head dimension %d is odd", hp->head_dim);
        hp->n_rot = hp->head_dim;

        hp->rope_freq_base = 10000.0f;
        r = gemma_get_f32_opt(m, "rope.freq_base", &hp->rope_freq_base, err, errlen);
        if (r < 0)
                return r;
        if (!(hp->rope_freq_base > 0.0f))
                return set_error(err, errlen, -EINVAL, "rope frequency base must be positive");
        hp->norm_eps = 1e-6f;
        r = gemma_get_f32_opt(m, "attention.layer_norm_rms_epsilon", &hp->norm_eps, err, errlen);
        if (r < 0)
                return r;
        if (!(hp->norm_eps >= 0.0f))
                return set_error(err, errlen, -EINVAL, "RMS norm epsilon must not be negative");

        hp->n_vocab = tokenizer_n_vocab(m->tok);
        if (hp->n_vocab <= 0)
                return set_error(err, errlen, -EINVAL, "the vocabulary is empty");
        return 0;
}

int gemma_get_f32_opt(engine_model *m, const char *suffix, float *ret, char *err, size_t errlen) {
        int r = model_get_f32(m, suffix, false, ret, err, errlen);
        return r == -ENOENT ? 0 : r;
}

int gemma_get_n_ff(engine_model *m, int32_t il, int32_t *ret, char *err, size_t errlen) {
        char key[256];
        int64_t v;
        int r;

        snprintf(key, sizeof key, "%s.feed_forward_length", m->arch_name);
        r = gguf_get_i64_at(m->gguf, key, (uint64_t)il, &v);
        if (r < 0)
                return set_error(err, errlen, r == -ENOENT ? -EINVAL : r, "metadata key %s: %s for layer %d", key,
                                 r == -ENOENT ? "missing" : "unreadable", il);
        if (v < 1 || v > GEMMA_MAX_FF)
                return set_error(err, errlen, -EINVAL, "%s[%d] = %" PRId64 " is out of range", key, il, v);
        *ret = (int32_t)v;
        return 0;
}

int gemma_get_f32_at(engine_model *m, const char *suffix, int32_t il, float *ret) {
        char key[256];

        snprintf(key, sizeof key, "%s.%s", m->arch_name, suffix);
        return gguf_get_arr_f32(m->gguf, key, (uint64_t)il, ret);
}

bool gemma_layer_is_local(engine_model *m, int32_t il, int32_t period) {
        char key[256];
        int64_t v;

        snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", m->arch_name);
        if (gguf_get_arr_i64(m->gguf, key, (uint64_t)il, &v) >= 0)
                return v != 0;
        return period <= 0 || (il + 1) % period != 0;
}

int gemma_alloc_floats(void **mem, size_t n, const size_t *sizes, float **const *ptrs) {
        size_t total = 0;

        for (size_t i = 0; i < n; i++) {
                size_t s = align_up_size(sizes[i], 16);
                if (ADD_OVERFLOW(total, s, &total))
                        return -EOVERFLOW;
        }
        if (total > SIZE_MAX / sizeof(float))
                return -EOVERFLOW;
        if (posix_memalign(mem, 64, MAX(total, (size_t)16) * sizeof(float)) != 0) {
                *mem = NULL;
                return -ENOMEM;
        }
        float *at = *mem;
        for (size_t i = 0; i < n; i++) {
                *ptrs[i] = at;
                at += align_up_size(sizes[i], 16);
        }
        return 0;
}

int gemma_bind_stack(const engine_model *m, weight *w, int64_t n, int64_t n_in, int64_t n_out, char *err,
                     size_t errlen, const char *name) {
        const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
        size_t row;
        uint64_t one;
        int r;

        if (!t)
                return set_error(err, errlen, -EINVAL, "tensor %s is missing", name);
        if (t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != n || t->ne[3] != 1)
                return set_error(err, errlen, -EINVAL,
                                 "tensor %s has shape [%" PRId64 ", %" PRId64 ", %" PRId64 "], expected [%" PRId64
                                 ", %" PRId64 ", %" PRId64 "]",
                                 name, t->ne[0], t->ne[1], t->ne[2], n_in, n_out, n);
        if (!type_is_supported(t->type))
                return set_error(err, errlen, -EOPNOTSUPP, "tensor %s: type %s is not supported", name,
                                 type_name(t->type));
        r = type_row_size(t->type, n_in, &row);
        if (r < 0)
                return set_error(err, errlen, r, "tensor %s: %" PRId64 " columns do not fit type %s", name, n_in,
                                 type_name(t->type));
        one = (uint64_t)row * (uint64_t)n_out;
        if (one * (uint64_t)n > t->nbytes)
                return set_error(err, errlen, -EINVAL, "tensor %s is shorter than its shape", name);
        for (int64_t i = 0; i < n; i++)
                w[i] = (weight){
                        .name = t->name.p,
                        .type = t->type,
                        .n_in = n_in,
                        .n_out = n_out,
                        .row_bytes = row,
                        .data = (const uint8_t *)model_tensor_data(m, t) + i * one,
                };
        return 0;
}

engine_session *gemma_batch_owner(engine_session *const *ss, int32_t n) {
        const model_hparams *hp = &ss[0]->model->hp;
        engine_session *own = NULL;
        size_t best = 0;

        for (int32_t i = 0; i < n; i++) {
                size_t need = ops_attention_scratch_floats(ss[i]->n_ctx, hp->n_head_kv, hp->n_head) +
                              kv_cache_gather_floats(&ss[i]->kv);
                if (!own || need > best || (need == best && ss[i]->n_batch > own->n_batch)) {
                        own = ss[i];
                        best = need;
                }
        }
        return own && n <= own->n_batch ? own : NULL;
}

void gemma_batch_kv(engine_session *const *ss, int32_t n, kv_cache **kv, int32_t *pos) {
        for (int32_t i = 0; i < n; i++) {
                kv[i] = &ss[i]->kv;
                pos[i] = ss[i]->n_past;
        }
}
