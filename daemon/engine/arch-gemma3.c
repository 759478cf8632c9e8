/* SPDX-License-Identifier: MIT */
/* Gemma 3 text (general.architecture "gemma3"; specs/gemma3n-text.md,
 * Appendix A).  Pre- and post-normed blocks, per-head RMSNorm on q and k,
 * NeoX RoPE with a local base for sliding-window layers and a global base
 * (and optional linear scaling) for the others, a GELU-gated feed-forward.
 * Norm weights are used as stored (llama.cpp's converter has added Gemma's
 * "+1" already).
 *
 * Shapes (E = n_embd, H/G = query/KV heads, D = head_dim, F = n_ff):
 *
 *   x[n][E]     = token_embd[tokens] * sqrt(E)
 *   per layer:
 *     h         = rmsnorm(x) * attn_norm
 *     q[n][H*D] = h Wq^T, k,v[n][G*D] = h Wk^T, h Wv^T
 *     q, k      = rope(rmsnorm_head(q) * q_norm, rmsnorm_head(k) * k_norm)
 *     q        *= attn_scale            (1/sqrt(D); 27B: 1/sqrt(E/H))
 *     a         = softmax(q k^T + causal [+ window]) v
 *     x        += rmsnorm(a Wo^T) * post_attention_norm
 *     h         = rmsnorm(x) * ffn_norm
 *     x        += rmsnorm((gelu(h Wg^T) * h Wu^T) Wd^T) * post_ffw_norm
 *   logits      = (rmsnorm(x) * output_norm) Wout^T, soft-capped when the
 *                 file asks for it */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "gemma-model.h"
#include "gemma-ops.h"
#include "macro.h"

typedef struct gemma3_layer {
        const float *attn_norm, *q_norm, *k_norm, *post_attn_norm, *ffn_norm, *post_ffn_norm;
        weight wq, wk, wv, wo;
        weight w_gate, w_up, w_down;
        bool local;
} gemma3_layer;

typedef struct gemma3_weights {
        weight tok_embd;
        const float *output_norm;
        weight output;
        rope_params rope_local, rope_global;
        float attn_scale;
        float softcap; /* 0: none */
        int32_t window;
        gemma3_layer *layers;
} gemma3_weights;

typedef struct gemma3_state {
        float *x, *h, *q, *k, *v, *att, *ff, *up, *tmp, *att_scratch;
        void *mem;
} gemma3_state;

/* ---- loading ---- */

static void gemma3_unload(engine_model *m) {
        gemma3_weights *w = m->arch_data;
        if (!w)
                return;
        free(w->layers);
        free(w);
        m->arch_data = NULL;
}

static int gemma3_load(engine_model *m, char *err, size_t errlen) {
        model_hparams *hp = &m->hp;
        gemma3_weights *w;
        uint32_t swa = 0;
        gguf_str s;
        char key[256];
        float f;
        int r;

        w = calloc(1, sizeof *w);
        if (!w)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        m->arch_data = w;

        r = gemma_read_hparams(m, err, errlen);
        if (r < 0)
                return r;
        r = gemma_get_n_ff(m, 0, &hp->n_ff, err, errlen);
        if (r < 0)
                return r;

        /* Sliding window: absent or 0 means every layer is global. */
        r = model_get_u32(m, "attention.sliding_window", false, &swa, err, errlen);
        if (r < 0 && r != -ENOENT)
                return r;
        if (swa > INT32_MAX)
                return set_error(err, errlen, -EINVAL, "sliding window %u is out of range", swa);
        w->window = (int32_t)swa;

        w->rope_global = (rope_params){ .mode = ROPE_NEOX, .n_rot = hp->n_rot, .head_dim = hp->head_dim,
                                        .freq_base = hp->rope_freq_base, .freq_scale = 1.0f };
        w->rope_local = w->rope_global;
        w->rope_local.freq_base = 10000.0f;
        r = gemma_get_f32_opt(m, "rope.freq_base_swa", &w->rope_local.freq_base, err, errlen);
        if (r < 0)
                return r;
        if (!(w->rope_local.freq_base > 0.0f))
                return set_error(err, errlen, -EINVAL, "local rope frequency base must be positive");
        /* Linear RoPE scaling (4B and larger) applies to global layers only. */
        snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch_name);
        if (gguf_get_str(m->gguf, key, &s) >= 0 && !gguf_str_eq(s, "none")) {
                if (!gguf_str_eq(s, "linear"))
                        return set_error(err, errlen, -EOPNOTSUPP, "RoPE scaling '%.*s' is not supported",
                                         (int)MIN(s.len, 64u), s.p);
                f = 1.0f;
                r = gemma_get_f32_opt(m, "rope.scaling.factor", &f, err, errlen);
                if (r < 0)
                        return r;
                if (!(f > 0.0f))
                        return set_error(err, errlen, -EINVAL, "RoPE scaling factor must be positive");
                w->rope_global.freq_scale = 1.0f / f;
        }

        /* query_pre_attn_scalar: head_dim, except for the 62-layer 27B model */
        w->attn_scale = hp->n_layer == 62 ? 1.0f / sqrtf((float)(hp->n_embd / hp->n_head))
                                          : 1.0f / sqrtf((float)hp->head_dim);
        w->softcap = 0.0f;
        r = gemma_get_f32_opt(m, "final_logit_softcapping", &w->softcap, err, errlen);
        if (r < 0)
                return r;
        if (w->softcap < 0.0f)
                return set_error(err, errlen, -EINVAL, "negative final logit soft-cap");

        int64_t E = hp->n_embd, D = hp->head_dim, QD = (int64_t)hp->n_head * D, KD = (int64_t)hp->n_head_kv * D;
        int64_t F = hp->n_ff, V = hp->n_vocab;

        if ((r = model_bind_weight(m, &w->tok_embd, false, E, V, err, errlen, "token_embd.weight")) < 0 ||
            (r = model_bind_vector(m, &w->output_norm, E, err, errlen, "output_norm.weight")) < 0 ||
            (r = model_bind_weight(m, &w->output, true, E, V, err, errlen, "output.weight")) < 0)
                return r;
        if (!w->output.data)
                w->output = w->tok_embd;

        w->layers = calloc((size_t)hp->n_layer, sizeof(gemma3_layer));
        if (!w->layers)
                return set_error(err, errlen, -ENOMEM, "out of memory");

        uint64_t bytes = weight_bytes(&w->output) + w->tok_embd.row_bytes;
        for (int32_t il = 0; il < hp->n_layer; il++) {
                gemma3_layer *l = &w->layers[il];
                int32_t ff;

                r = gemma_get_n_ff(m, il, &ff, err, errlen);
                if (r < 0)
                        return r;
                if (ff != F)
                        return set_error(err, errlen, -EINVAL, "layer %d: feed-forward length %d differs from %" PRId64,
                                         il, ff, F);
                struct {
                        const float **v;
                        int64_t n;
                        const char *name;
                } vecs[] = {
                        { &l->attn_norm, E, "attn_norm" },          { &l->q_norm, D, "attn_q_norm" },
                        { &l->k_norm, D, "attn_k_norm" },           { &l->post_attn_norm, E, "post_attention_norm" },
                        { &l->ffn_norm, E, "ffn_norm" },            { &l->post_ffn_norm, E, "post_ffw_norm" },
                };
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
                for (size_t i = 0; i < ELEMENTSOF(vecs); i++) {
                        r = model_bind_vector(m, vecs[i].v, vecs[i].n, err, errlen, "blk.%d.%s.weight", il,
                                              vecs[i].name);
                        if (r < 0)
                                return r;
                        bytes += (uint64_t)vecs[i].n * sizeof(float);
                }
                for (size_t i = 0; i < ELEMENTSOF(mats); i++) {
                        r = model_bind_weight(m, mats[i].w, false, mats[i].n_in, mats[i].n_out, err, errlen,
                                              "blk.%d.%s.weight", il, mats[i].name);
                        if (r < 0)
                                return r;
                        bytes += weight_bytes(mats[i].w);
                }
                /* llama.cpp: every 6th layer global when a window is set */
                l->local = w->window > 0 && (il + 1) % 6 != 0;
        }
        m->bytes_per_token = bytes;
        return 0;
}

/* ---- sessions ---- */

static void gemma3_session_done(engine_session *s) {
        gemma3_state *st = s->arch_state;

        kv_cache_done(&s->kv);
        if (!st)
                return;
        free(st->mem);
        free(st);
        s->arch_state = NULL;
}

static int gemma3_session_init(engine_session *s, char *err, size_t errlen) {
        const engine_model *m = s->model;
        const model_hparams *hp = &m->hp;
        const gemma3_weights *w = m->arch_data;
        _cleanup_free_ int32_t *n_kv = NULL, *hd = NULL;
        _cleanup_free_ bool *ring = NULL;
        gemma3_state *st;
        int r;

        n_kv = calloc((size_t)hp->n_layer, sizeof(int32_t));
        hd = calloc((size_t)hp->n_layer, sizeof(int32_t));
        ring = calloc((size_t)hp->n_layer, sizeof(bool));
        if (!n_kv || !hd || !ring)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        for (int32_t il = 0; il < hp->n_layer; il++) {
                n_kv[il] = hp->n_head_kv;
                hd[il] = hp->head_dim;
                ring[il] = w->layers[il].local;
        }
        /* sliding-window layers: a ring of window + n_batch positions */
        r = kv_cache_init_ring(&s->kv, s->n_ctx, hp->n_layer, n_kv, hd, ring, w->window,
                               s->params.kv_full || w->window <= 0 || w->window > INT32_MAX - s->n_batch
                                       ? 0
                                       : w->window + s->n_batch);
        if (r < 0)
                return set_error(err, errlen, r, "cannot allocate the KV cache for %d positions: %s", s->n_ctx,
                                 strerror(-r));

        st = calloc(1, sizeof *st);
        if (!st)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        s->arch_state = st;

        size_t B = (size_t)s->n_batch, E = (size_t)hp->n_embd, QD = (size_t)hp->n_head * hp->head_dim;
        size_t KD = (size_t)hp->n_head_kv * hp->head_dim, F = (size_t)hp->n_ff;
        size_t att = (ops_attention_scratch_floats(s->n_ctx, hp->n_head_kv, hp->n_head) +
                      kv_cache_gather_floats(&s->kv)) * (size_t)m->n_threads;
        size_t sizes[] = { B * E, B * MAX(E, QD), B * QD, B * KD, B * KD, B * QD, B * F, B * F,
                           B * MAX(MAX(E, QD), F), att };
        float **const ptrs[] = { &st->x, &st->h, &st->q, &st->k, &st->v, &st->att, &st->ff, &st->up, &st->tmp,
                                 &st->att_scratch };
        r = gemma_alloc_floats(&st->mem, ELEMENTSOF(sizes), sizes, ptrs);
        if (r < 0)
                return set_error(err, errlen, r, "cannot allocate the scratch for %zu tokens", B);
        return 0;
}

/* ---- the forward pass ---- */

static bool aborted(const engine_session *s) {
        return s->params.abort_cb && s->params.abort_cb(s->params.abort_userdata);
}

/* tokens, or rows of input embeddings (embd, taken as they are); bidirectional:
 * the rows see each other both ways (a Gemma 3 image).  The rows are
 * consecutive positions of s (n_ss == 1, ss == &s), or one token for each
 * of n_ss == n sessions at its own position (continuous batching: the
 * products take the n rows at once, attention goes session by session;
 * s owns the scratch, gemma_batch_owner). */
_vector_clones_ static int gemma3_run(engine_session *s, engine_session *const *ss, int32_t n_ss, const int32_t *tokens,
                      const float *embd, int32_t n, bool bidirectional, bool all_logits, float *logits) {
        const engine_model *m = s->model;
        const model_hparams *hp = &m->hp;
        const gemma3_weights *w = m->arch_data;
        gemma3_state *st = s->arch_state;
        matmul_ctx *mm = m->mm;
        threadpool *tp = matmul_ctx_pool(mm);
        int32_t last = hp->n_layer - 1, pos[ENGINE_BATCH_MAX];
        size_t E = (size_t)hp->n_embd;
        kv_cache *kvs[ENGINE_BATCH_MAX];
        float eps = hp->norm_eps;
        int r;

        gemma_batch_kv(ss, n_ss, kvs, pos);

        /* x = token_embd[tokens] * sqrt(E), or the embeddings as given */
        if (embd)
                memcpy(st->x, embd, (size_t)n * E * sizeof(float));
        for (int32_t t = 0; !embd && t < n; t++) {
                r = weight_get_row(&w->tok_embd, tokens[t], st->x + t * E);
                if (r < 0)
                        return r;
                gemma_ops_scale(st->x + t * E, (int64_t)E, sqrtf((float)E));
        }

        for (int32_t il = 0; il < hp->n_layer; il++) {
                const gemma3_layer *l = &w->layers[il];
                const rope_params *rp = l->local ? &w->rope_local : &w->rope_global;
                int32_t rows = n;

                for (int32_t i = 0; i < n_ss; i++)
                        if (aborted(ss[i]))
                                return -ECANCELED;

                /* ---- attention ---- */
                ops_rmsnorm(tp, st->h, st->x, l->attn_norm, n, (int64_t)E, eps);
                const weight *qkv[] = { &l->wq, &l->wk, &l->wv };
                float *qkv_out[] = { st->q, st->k, st->v };
                if ((r = gemma_matmul_multi(mm, qkv, 3, st->h, n, qkv_out, st->tmp)) < 0)
                        return r;
                ops_rmsnorm(tp, st->q, st->q, l->q_norm, (int64_t)n * hp->n_head, hp->head_dim, eps);
                ops_rmsnorm(tp, st->k, st->k, l->k_norm, (int64_t)n * hp->n_head_kv, hp->head_dim, eps);
                /* The last layer only matters for the rows whose logits are
                 * wanted: none (the K/V is all a later chunk needs) or the
                 * last one. */
                bool trim = il == last && !all_logits;
                ops_attend(tp, &(attend_params){ .rope = rp, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv,
                                                 .head_dim = hp->head_dim, .il = il, .kv_il = il,
                                                 .window = l->local ? w->window : 0, .q_scale = w->attn_scale,
                                                 .scale = 1.0f, .bidirectional = bidirectional, .last_only = trim },
                           kvs, pos, n_ss, st->q, st->k, st->v, n, il == last && !logits ? NULL : st->att,
                           st->att_scratch);
                if (il == last && !logits)
                        return 0;
                if (trim && n > 1) {
                        memmove(st->x, st->x + (size_t)(n - 1) * E, E * sizeof(float));
                        rows = 1;
                }

                /* x += rmsnorm(att Wo^T) * post_attention_norm; h = rmsnorm(x) * ffn_norm */
                if ((r = gemma_matmul(mm, &l->wo, st->att, rows, st->h, st->tmp)) < 0)
                        return r;
                ops_rmsnorm(tp, st->h, st->h, l->post_attn_norm, rows, (int64_t)E, eps);
                ops_add_rmsnorm(tp, st->x, st->h, st->h, l->ffn_norm, rows, (int64_t)E, eps);

                /* ---- feed-forward ---- */
                if ((r = gemma_matmul_geglu(mm, &l->w_gate, &l->w_up, st->h, rows, st->ff, st->up, st->tmp)) < 0)
                        return r;
                if ((r = gemma_matmul(mm, &l->w_down, st->ff, rows, st->h, st->tmp)) < 0)
                        return r;
                ops_rmsnorm(tp, st->h, st->h, l->post_ffn_norm, rows, (int64_t)E, eps);
                ops_add_rmsnorm(tp, st->x, st->h, NULL, NULL, rows, (int64_t)E, eps);
                if (il == last)
                        n = rows;
        }

        /* logits = (rmsnorm(x) * output_norm) Wout^T, then the soft-cap */
        ops_rmsnorm(tp, st->h, st->x, w->output_norm, n, (int64_t)E, eps);
        return gemma_matmul_softcap(mm, &w->output, st->h, n, logits, st->tmp, w->softcap);
}

static int gemma3_forward(engine_session *s, const int32_t *tokens, int32_t n, bool all_logits, float *logits) {
        return gemma3_run(s, &s, 1, tokens, NULL, n, false, all_logits, logits);
}

static int gemma3_forward_embd(engine_session *s, const float *embd, int32_t n, bool bidirectional, bool all_logits,
                               float *logits) {
        return gemma3_run(s, &s, 1, NULL, embd, n, bidirectional, all_logits, logits);
}

static int gemma3_forward_batch(engine_session *const *ss, const int32_t *tokens, int32_t n, float *logits) {
        engine_session *s = gemma_batch_owner(ss, n);

        if (!s)
                return -E2BIG;
        return gemma3_run(s, ss, n, tokens, NULL, n, false, true, logits);
}

const arch_ops arch_gemma3 = {
        .name = "gemma3",
        .load = gemma3_load,
        .unload = gemma3_unload,
        .session_init = gemma3_session_init,
        .session_done = gemma3_session_done,
        .forward = gemma3_forward,
        .forward_embd = gemma3_forward_embd,
        .forward_batch = gemma3_forward_batch,
};
