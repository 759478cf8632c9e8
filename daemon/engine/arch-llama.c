/* SPDX-License-Identifier: MIT */
/* The llama architecture (Llama 2/3, TinyLlama, stories*, SmolLM, ...):
 * pre-norm decoder blocks with RMSNorm, rotary embeddings ("normal",
 * adjacent pairs: llama.cpp's converter permutes wq/wk so that this
 * applies), grouped-query attention and a SwiGLU feed-forward.
 *
 * Shapes (E = n_embd, H/G = query/KV heads, D = head_dim, F = n_ff, and n
 * tokens in a chunk); every row-vector product goes through matmul() so the
 * weight's own kernel (quantized or not) is used:
 *
 *   x[n][E]    = token_embd[tokens]
 *   per layer:
 *     h        = rmsnorm(x) * attn_norm
 *     q[n][H*D] = h Wq^T,  k,v[n][G*D] = h Wk^T, h Wv^T
 *     q, k     = rope(q, k, positions)          K/V appended to the cache
 *     a[n][H*D] = softmax(q k^T / sqrt(D) + causal) v   (head h uses KV h/(H/G))
 *     x       += a Wo^T
 *     h        = rmsnorm(x) * ffn_norm
 *     x       += (silu(h Wgate^T) * (h Wup^T)) Wdown^T
 *   logits     = (rmsnorm(x) * output_norm) Woutput^T   (Woutput = token_embd when tied)
 */
#include <math.h>
#include <string.h>

#include "macro.h"
#include "model-ops.h"
#include "model.h"
#include "tensor-type.h"

typedef struct llama_layer {
        const float *attn_norm, *ffn_norm;
        weight wq, wk, wv, wo;
        weight w_gate, w_up, w_down;
} llama_layer;

typedef struct llama_weights {
        weight tok_embd;
        const float *output_norm;
        weight output; /* a copy of tok_embd's descriptor when tied */
        rope_params rope;
        float attn_scale;
        llama_layer *layers;
} llama_weights;

/* Per-session scratch, sized for n_batch tokens at session creation. */
typedef struct llama_state {
        float *x;   /* [n_batch][E]     residual stream */
        float *h;   /* [n_batch][max(E, H*D)] normed input of a product / its output */
        float *q;   /* [n_batch][H*D] */
        float *k;   /* [n_batch][G*D] */
        float *v;   /* [n_batch][G*D] */
        float *att; /* [n_batch][H*D]   attention output */
        float *ff;  /* [n_batch][F]     gate, then silu(gate) * up */
        float *up;  /* [n_batch][F] */
        float *att_scratch;
        void *mem;
} llama_state;

/* ---- loading ---- */

/* Sanity bounds: far above any real model, low enough that no product of
 * them overflows a size_t or an int passed to BLAS. */
#define MAX_EMBD (1 << 16)
#define MAX_LAYER 1024
#define MAX_HEAD 1024
#define MAX_HEAD_DIM 1024
#define MAX_FF (1 << 18)

static int llama_hparams(engine_model *m, llama_weights *w, char *err, size_t errlen) {
        model_hparams *hp = &m->hp;
        uint32_t u;
        float f;
        gguf_str s;
        char key[256];
        int r;

#define GET_U32(suffix, field, required, dflt, lo, hi)                                                            \
        do {                                                                                                      \
                u = (dflt);                                                                                       \
                r = model_get_u32(m, suffix, required, &u, err, errlen);                                          \
                if (r < 0 && r != -ENOENT)                                                                        \
                        return r;                                                                                 \
                if (u < (uint32_t)(lo) || u > (uint32_t)(hi))                                                     \
                        return set_error(err, errlen, -EINVAL, "%s.%s = %u is out of range [%u, %u]", m->arch_name, \
                                         suffix, u, (unsigned)(lo), (unsigned)(hi));                               \
                field = (int32_t)u;                                                                               \
        } while (0)

        GET_U32("embedding_length", hp->n_embd, true, 0, 1, MAX_EMBD);
        GET_U32("block_count", hp->n_layer, true, 0, 1, MAX_LAYER);
        GET_U32("attention.head_count", hp->n_head, true, 0, 1, MAX_HEAD);
        GET_U32("attention.head_count_kv", hp->n_head_kv, false, hp->n_head, 1, hp->n_head);
        GET_U32("feed_forward_length", hp->n_ff, true, 0, 1, MAX_FF);
        GET_U32("context_length", hp->n_ctx_train, false, 2048, 1, INT32_MAX);
        if (hp->n_embd % hp->n_head != 0)
                return set_error(err, errlen, -EINVAL, "embedding length %d is not a multiple of the %d heads",
                                 hp->n_embd, hp->n_head);
        GET_U32("attention.key_length", hp->head_dim, false, hp->n_embd / hp->n_head, 2, MAX_HEAD_DIM);
        GET_U32("attention.value_length", u, false, hp->head_dim, hp->head_dim, hp->head_dim);
        GET_U32("rope.dimension_count", hp->n_rot, false, hp->head_dim, 2, hp->head_dim);
        if (hp->n_head % hp->n_head_kv != 0)
                return set_error(err, errlen, -EINVAL, "%d heads cannot share %d KV heads", hp->n_head,
                                 hp->n_head_kv);
        if (hp->n_rot % 2 != 0)
                return set_error(err, errlen, -EINVAL, "rope dimension count %d is odd", hp->n_rot);
#undef GET_U32

        hp->rope_freq_base = 10000.0f;
        r = model_get_f32(m, "rope.freq_base", false, &hp->rope_freq_base, err, errlen);
        if (r < 0 && r != -ENOENT)
                return r;
        if (!(hp->rope_freq_base > 0.0f))
                return set_error(err, errlen, -EINVAL, "rope frequency base must be positive");
        r = model_get_f32(m, "attention.layer_norm_rms_epsilon", true, &hp->norm_eps, err, errlen);
        if (r < 0)
                return r;
        if (!(hp->norm_eps >= 0.0f))
                return set_error(err, errlen, -EINVAL, "RMS norm epsilon must not be negative");

        /* Linear RoPE scaling divides positions; other kinds (YaRN, ...) we
         * cannot run faithfully, so refuse them. */
        w->rope.freq_scale = 1.0f;
        snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch_name);
        if (gguf_get_str(m->gguf, key, &s) >= 0 && !gguf_str_eq(s, "none")) {
                if (!gguf_str_eq(s, "linear"))
                        return set_error(err, errlen, -EOPNOTSUPP, "RoPE scaling '%.*s' is not supported",
                                         (int)MIN(s.len, 64u), s.p);
                f = 1.0f;
                r = model_get_f32(m, "rope.scaling.factor", false, &f, err, errlen);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (!(f > 0.0f))
                        return set_error(err, errlen, -EINVAL, "RoPE scaling factor must be positive");
                w->rope.freq_scale = 1.0f / f;
        }

        hp->n_vocab = tokenizer_n_vocab(m->tok);
        if (hp->n_vocab <= 0)
                return set_error(err, errlen, -EINVAL, "the vocabulary is empty");
        return 0;
}

static void llama_unload(engine_model *m) {
        llama_weights *w = m->arch_data;
        if (!w)
                return;
        free(w->layers);
        free(w);
        m->arch_data = NULL;
}

static int llama_load(engine_model *m, char *err, size_t errlen) {
        const model_hparams *hp = &m->hp;
        llama_weights *w;
        int r;

        w = calloc(1, sizeof *w);
        if (!w)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        m->arch_data = w; /* from here on, engine_model_free() cleans up */

        r = llama_hparams(m, w, err, errlen);
        if (r < 0)
                return r;

        int64_t E = hp->n_embd, D = hp->head_dim, QD = (int64_t)hp->n_head * D, KD = (int64_t)hp->n_head_kv * D;
        int64_t F = hp->n_ff, V = hp->n_vocab;

        r = model_bind_weight(m, &w->tok_embd, false, E, V, err, errlen, "token_embd.weight");
        if (r < 0)
                return r;
        r = model_bind_vector(m, &w->output_norm, E, err, errlen, "output_norm.weight");
        if (r < 0)
                return r;
        r = model_bind_weight(m, &w->output, true, E, V, err, errlen, "output.weight");
        if (r < 0)
                return r;
        if (!w->output.data)
                w->output = w->tok_embd; /* tied embeddings */

        /* Llama 3.1+ files carry per-pair divisors of the RoPE frequencies. */
        if (gguf_find_tensor(m->gguf, "rope_freqs.weight")) {
                r = model_bind_vector(m, &w->rope.factors, hp->n_rot / 2, err, errlen, "rope_freqs.weight");
                if (r < 0)
                        return r;
        }
        w->rope.mode = ROPE_NORM;
        w->rope.n_rot = hp->n_rot;
        w->rope.head_dim = hp->head_dim;
        w->rope.freq_base = hp->rope_freq_base;
        w->attn_scale = 1.0f / sqrtf((float)D);

        w->layers = calloc((size_t)hp->n_layer, sizeof(llama_layer));
        if (!w->layers)
                return set_error(err, errlen, -ENOMEM, "out of memory");

        uint64_t bytes = weight_bytes(&w->output) + (uint64_t)E * sizeof(float) * (2 * hp->n_layer + 1) +
                         w->tok_embd.row_bytes;
        for (int32_t il = 0; il < hp->n_layer; il++) {
                llama_layer *l = &w->layers[il];
                struct {
                        weight *w;
                        int64_t n_in, n_out;
                        const char *name;
                } mats[] = {
                        { &l->wq, E, QD, "attn_q" },       { &l->wk, E, KD, "attn_k" },
                        { &l->wv, E, KD, "attn_v" },       { &l->wo, QD, E, "attn_output" },
                        { &l->w_gate, E, F, "ffn_gate" }, { &l->w_up, E, F, "ffn_up" },
                        { &l->w_down, F, E, "ffn_down" },
                };

                r = model_bind_vector(m, &l->attn_norm, E, err, errlen, "blk.%d.attn_norm.weight", il);
                if (r < 0)
                        return r;
                r = model_bind_vector(m, &l->ffn_norm, E, err, errlen, "blk.%d.ffn_norm.weight", il);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < ELEMENTSOF(mats); i++) {
                        r = model_bind_weight(m, mats[i].w, false, mats[i].n_in, mats[i].n_out, err, errlen,
                                              "blk.%d.%s.weight", il, mats[i].name);
                        if (r < 0)
                                return r;
                        bytes += weight_bytes(mats[i].w);
                }
        }
        m->bytes_per_token = bytes;
        return 0;
}

/* ---- sessions ---- */

static void llama_session_done(engine_session *s) {
        llama_state *st = s->arch_state;

        kv_cache_done(&s->kv);
        if (!st)
                return;
        free(st->mem);
        free(st);
        s->arch_state = NULL;
}

static int llama_session_init(engine_session *s, char *err, size_t errlen) {
        const engine_model *m = s->model;
        const model_hparams *hp = &m->hp;
        llama_state *st;
        int32_t *n_kv = NULL, *hd = NULL;
        int r;

        /* every layer caches G heads of D */
        n_kv = calloc((size_t)hp->n_layer, sizeof(int32_t));
        hd = calloc((size_t)hp->n_layer, sizeof(int32_t));
        if (!n_kv || !hd) {
                free(n_kv);
                free(hd);
                return set_error(err, errlen, -ENOMEM, "out of memory");
        }
        for (int32_t il = 0; il < hp->n_layer; il++) {
                n_kv[il] = hp->n_head_kv;
                hd[il] = hp->head_dim;
        }
        r = kv_cache_init(&s->kv, s->n_ctx, hp->n_layer, n_kv, hd);
        free(n_kv);
        free(hd);
        if (r < 0)
                return set_error(err, errlen, r, "cannot allocate the KV cache for %d positions: %s", s->n_ctx,
                                 strerror(-r));

        st = calloc(1, sizeof *st);
        if (!st)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        s->arch_state = st;

        size_t B = (size_t)s->n_batch, E = (size_t)hp->n_embd, QD = (size_t)hp->n_head * hp->head_dim;
        size_t KD = (size_t)hp->n_head_kv * hp->head_dim, F = (size_t)hp->n_ff;
        size_t att = ops_attention_scratch_floats(s->n_ctx, hp->n_head_kv, hp->n_head) * (size_t)m->n_threads;
        /* sizes of x, h, q, k, v, att, ff, up, att_scratch, each rounded up to
         * a cache line so that threads writing neighbouring rows never share one */
        size_t sizes[] = { B * E, B * MAX(E, QD), B * QD, B * KD, B * KD, B * QD, B * F, B * F, att };
        float **ptrs[] = { &st->x, &st->h, &st->q, &st->k, &st->v, &st->att, &st->ff, &st->up, &st->att_scratch };
        size_t total = 0;
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++)
                total += align_up_size(sizes[i], 16);
        if (posix_memalign(&st->mem, 64, total * sizeof(float)) != 0) {
                st->mem = NULL;
                return set_error(err, errlen, -ENOMEM, "cannot allocate %zu MiB of scratch",
                                 total * sizeof(float) >> 20);
        }
        float *at = st->mem;
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                *ptrs[i] = at;
                at += align_up_size(sizes[i], 16);
        }
        return 0;
}

/* ---- the forward pass ---- */

static bool aborted(const engine_session *s) {
        return s->params.abort_cb && s->params.abort_cb(s->params.abort_userdata);
}

static int llama_forward(engine_session *s, const int32_t *tokens, int32_t n, bool all_logits, float *logits) {
        const engine_model *m = s->model;
        const model_hparams *hp = &m->hp;
        const llama_weights *w = m->arch_data;
        llama_state *st = s->arch_state;
        matmul_ctx *mm = m->mm;
        threadpool *tp = matmul_ctx_pool(mm);
        int32_t pos0 = s->n_past, last = hp->n_layer - 1;
        size_t E = (size_t)hp->n_embd;
        kv_cache *kv = &s->kv;
        int r;

        /* x = token_embd[tokens] */
        for (int32_t t = 0; t < n; t++) {
                r = weight_get_row(&w->tok_embd, tokens[t], st->x + t * E);
                if (r < 0)
                        return r;
        }
        ops_rmsnorm(tp, st->h, st->x, w->layers[0].attn_norm, n, (int64_t)E, hp->norm_eps);

        for (int32_t il = 0; il < hp->n_layer; il++) {
                const llama_layer *l = &w->layers[il];
                int32_t rows = n;

                if (aborted(s))
                        return -ECANCELED;

                /* ---- attention: h holds rmsnorm(x) * attn_norm ---- */
                const weight *qkv[] = { &l->wq, &l->wk, &l->wv };
                float *qkv_out[] = { st->q, st->k, st->v };
                if ((r = matmul_multi(mm, qkv, 3, st->h, n, qkv_out)) < 0)
                        return r;
                /* The last layer only matters for the rows whose logits are
                 * wanted: none (the K/V is all a later chunk needs) or the
                 * last one. */
                bool trim = il == last && !all_logits;
                ops_attend(tp, &(attend_params){ .rope = &w->rope, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv,
                                                 .head_dim = hp->head_dim, .il = il, .kv_il = il, .q_scale = 1.0f,
                                                 .scale = w->attn_scale, .last_only = trim },
                           &kv, &pos0, 1, st->q, st->k, st->v, n, il == last && !logits ? NULL : st->att,
                           st->att_scratch);
                if (il == last && !logits)
                        return 0;
                if (trim && n > 1) {
                        memmove(st->x, st->x + (size_t)(n - 1) * E, E * sizeof(float));
                        rows = 1;
                }

                /* x += att Wo^T; h = rmsnorm(x) * ffn_norm */
                if ((r = matmul(mm, &l->wo, st->att, rows, st->h)) < 0)
                        return r;
                ops_add_rmsnorm(tp, st->x, st->h, st->h, l->ffn_norm, rows, (int64_t)E, hp->norm_eps);

                /* ---- feed-forward: x += (silu(h Wg^T) * h Wu^T) Wd^T ---- */
                const weight *gu[] = { &l->w_gate, &l->w_up };
                float *gu_out[] = { st->ff, st->up };
                if ((r = matmul_multi(mm, gu, 2, st->h, rows, gu_out)) < 0)
                        return r;
                ops_swiglu(tp, st->ff, st->up, (int64_t)rows * hp->n_ff);
                if ((r = matmul(mm, &l->w_down, st->ff, rows, st->h)) < 0)
                        return r;

                /* residual, fused with the next layer's (or the output) norm */
                const float *next_norm = il < last ? w->layers[il + 1].attn_norm : w->output_norm;
                ops_add_rmsnorm(tp, st->x, st->h, st->h, next_norm, rows, (int64_t)E, hp->norm_eps);
                if (il == last)
                        n = rows;
        }

        /* logits = h Woutput^T for the rows kept */
        return matmul(mm, &w->output, st->h, n, logits);
}

/* One token for each of n sessions: the products take the n rows at once
 * (one pass over the weights), RoPE, the KV cache and attention go session
 * by session.  The scratch is that of the session with the largest context
 * (its attention scratch fits every other one's), which is sized for at
 * least min(n_ctx, 512) rows. */
static int llama_forward_batch(engine_session *const *ss, const int32_t *tokens, int32_t n, float *logits) {
        const engine_model *m = ss[0]->model;
        const model_hparams *hp = &m->hp;
        const llama_weights *w = m->arch_data;
        matmul_ctx *mm = m->mm;
        threadpool *tp = matmul_ctx_pool(mm);
        size_t E = (size_t)hp->n_embd;
        const engine_session *own = ss[0];
        kv_cache *kvs[ENGINE_BATCH_MAX];
        int32_t pos[ENGINE_BATCH_MAX];
        int r;

        for (int32_t i = 1; i < n; i++)
                if (ss[i]->n_ctx > own->n_ctx)
                        own = ss[i];
        if (n > own->n_batch)
                return -E2BIG;
        llama_state *st = own->arch_state;
        for (int32_t i = 0; i < n; i++) {
                kvs[i] = &ss[i]->kv;
                pos[i] = ss[i]->n_past;
        }

        for (int32_t t = 0; t < n; t++)
                if ((r = weight_get_row(&w->tok_embd, tokens[t], st->x + t * E)) < 0)
                        return r;
        ops_rmsnorm(tp, st->h, st->x, w->layers[0].attn_norm, n, (int64_t)E, hp->norm_eps);

        for (int32_t il = 0; il < hp->n_layer; il++) {
                const llama_layer *l = &w->layers[il];

                for (int32_t i = 0; i < n; i++)
                        if (aborted(ss[i]))
                                return -ECANCELED;
                const weight *qkv[] = { &l->wq, &l->wk, &l->wv };
                float *qkv_out[] = { st->q, st->k, st->v };
                if ((r = matmul_multi(mm, qkv, 3, st->h, n, qkv_out)) < 0)
                        return r;
                ops_attend(tp, &(attend_params){ .rope = &w->rope, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv,
                                                 .head_dim = hp->head_dim, .il = il, .kv_il = il, .q_scale = 1.0f,
                                                 .scale = w->attn_scale },
                           kvs, pos, n, st->q, st->k, st->v, n, st->att, st->att_scratch);
                if ((r = matmul(mm, &l->wo, st->att, n, st->h)) < 0)
                        return r;
                ops_add_rmsnorm(tp, st->x, st->h, st->h, l->ffn_norm, n, (int64_t)E, hp->norm_eps);
                const weight *gu[] = { &l->w_gate, &l->w_up };
                float *gu_out[] = { st->ff, st->up };
                if ((r = matmul_multi(mm, gu, 2, st->h, n, gu_out)) < 0)
                        return r;
                ops_swiglu(tp, st->ff, st->up, (int64_t)n * hp->n_ff);
                if ((r = matmul(mm, &l->w_down, st->ff, n, st->h)) < 0)
                        return r;
                const float *next_norm = il < hp->n_layer - 1 ? w->layers[il + 1].attn_norm : w->output_norm;
                ops_add_rmsnorm(tp, st->x, st->h, st->h, next_norm, n, (int64_t)E, hp->norm_eps);
        }
        return matmul(mm, &w->output, st->h, n, logits);
}

const arch_ops arch_llama = {
        .name = "llama",
        .load = llama_load,
        .unload = llama_unload,
        .session_init = llama_session_init,
        .session_done = llama_session_done,
        .forward = llama_forward,
        .forward_batch = llama_forward_batch,
};
