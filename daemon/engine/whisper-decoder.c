/* SPDX-License-Identifier: MIT */
/* The Whisper decoder (specs/whisper.md §4), one call per batch of tokens:
 *
 *   h = token_embedding[tok] + positional_embedding[pos]
 *   L times:  h += SelfAttn_causal(LN(h))     K/V appended to the cache
 *             h += CrossAttn(LN(h), enc)      K/V computed by whisper_encode
 *             h += MLP(LN(h))
 *   logits = LN(h_last) . token_embedding^T
 *
 * Attention for each query is two matrix-vector products per head:
 * scores = K_h q_h / sqrt(D), out_h = V_h^T softmax(scores). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "whisper-impl.h"

/* One query row q[S] against n_kv keys/values ([n_kv][S] each). */
static void attend(const float *q, const float *K, const float *V, int64_t n_kv, int64_t S, int64_t H, float *sc,
                   float *out) {
        const int64_t D = S / H;
        const float scale = 1.0f / sqrtf((float)D);
        for (int64_t h = 0; h < H; h++) {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n_kv, (int)D, scale, K + h * D, (int)S, q + h * D, 1, 0.0f,
                            sc, 1);
                whisper_softmax_row(sc, n_kv);
                cblas_sgemv(CblasRowMajor, CblasTrans, (int)n_kv, (int)D, 1.0f, V + h * D, (int)S, sc, 1, 0.0f,
                            out + h * D, 1);
        }
}

int whisper_decode(whisper_state *s, const int32_t *tokens, int32_t n, int32_t n_past, float *logits) {
        const whisper_model *m = s->m;
        const int64_t S = m->hp.n_text_state, H = m->hp.n_text_head, C = m->hp.n_text_ctx, T = s->audio_ctx;
        int r;

        if (n < 1 || !tokens || n_past < 0 || n_past > s->n_cached)
                return -EINVAL;
        if ((int64_t)n_past + n > C)
                return -ENOSPC;
        if (!s->encoded)
                return -ENODATA;
        if (whisper_aborted(s))
                return -ECANCELED;
        for (int32_t i = 0; i < n; i++)
                if (tokens[i] < 0 || tokens[i] >= m->hp.n_vocab)
                        return -EINVAL;

        _cleanup_free_ float *h = malloc((size_t)(n * S) * sizeof(float));
        _cleanup_free_ float *cur = malloc((size_t)(n * S) * sizeof(float));
        _cleanup_free_ float *q = malloc((size_t)(n * S) * sizeof(float));
        _cleanup_free_ float *o = malloc((size_t)(n * S) * sizeof(float));
        _cleanup_free_ float *ff = malloc((size_t)(n * 4 * S) * sizeof(float));
        _cleanup_free_ float *sc = malloc((size_t)MAX(C, T) * sizeof(float));
        if (!h || !cur || !q || !o || !ff || !sc)
                return -ENOMEM;

        for (int32_t i = 0; i < n; i++) {
                whisper_weight_row(&m->d_tok, tokens[i], h + i * S);
                const float *pe = m->d_pe + (int64_t)(n_past + i) * S;
                for (int64_t j = 0; j < S; j++)
                        h[i * S + j] += pe[j];
        }

        for (int l = 0; l < m->hp.n_text_layer; l++) {
                const whisper_block *b = &m->d_blocks[l];
                float *Kc = s->kv_k + (size_t)l * C * S, *Vc = s->kv_v + (size_t)l * C * S;

                /* causal self-attention; this batch's K/V go to positions n_past.. */
                whisper_layer_norm(cur, h, n, S, b->attn_ln_w, b->attn_ln_b);
                const weight *qkv[3] = { &b->attn_q, &b->attn_k, &b->attn_v };
                const float *qkv_b[3] = { b->attn_q_b, NULL, b->attn_v_b };
                float *qkv_y[3] = { q, Kc + (size_t)n_past * S, Vc + (size_t)n_past * S };
                if ((r = whisper_linear_multi(s, qkv, 3, cur, n, qkv_b, qkv_y)) < 0)
                        return r;
                for (int32_t i = 0; i < n; i++)
                        attend(q + i * S, Kc, Vc, n_past + i + 1, S, H, sc, o + i * S);
                if ((r = whisper_linear(s, &b->attn_o, o, n, b->attn_o_b, cur)) < 0)
                        return r;
                for (int64_t i = 0; i < n * S; i++)
                        h[i] += cur[i];

                /* cross-attention over the encoded window */
                whisper_layer_norm(cur, h, n, S, b->cross_ln_w, b->cross_ln_b);
                if ((r = whisper_linear(s, &b->cross_q, cur, n, b->cross_q_b, q)) < 0)
                        return r;
                for (int32_t i = 0; i < n; i++)
                        attend(q + i * S, s->cross_k + (size_t)l * T * S, s->cross_v + (size_t)l * T * S, T, S, H, sc,
                               o + i * S);
                if ((r = whisper_linear(s, &b->cross_o, o, n, b->cross_o_b, cur)) < 0)
                        return r;
                for (int64_t i = 0; i < n * S; i++)
                        h[i] += cur[i];

                /* MLP */
                whisper_layer_norm(cur, h, n, S, b->mlp_ln_w, b->mlp_ln_b);
                if ((r = whisper_linear(s, &b->mlp_0, cur, n, b->mlp_0_b, ff)) < 0)
                        return r;
                whisper_gelu(ff, n * 4 * S);
                if ((r = whisper_linear(s, &b->mlp_2, ff, n, b->mlp_2_b, cur)) < 0)
                        return r;
                for (int64_t i = 0; i < n * S; i++)
                        h[i] += cur[i];
        }
        s->n_cached = n_past + n;

        if (logits) {
                whisper_layer_norm(cur, h + (int64_t)(n - 1) * S, 1, S, m->d_ln_w, m->d_ln_b);
                if ((r = whisper_linear(s, &m->d_tok, cur, 1, NULL, logits)) < 0)
                        return r;
        }
        return 0;
}

int whisper_detect_language(whisper_state *s, float *probs) {
        const whisper_model *m = s->m;
        const whisper_special *sp = &m->sp;
        int r;

        if (!m->multilingual)
                return -EOPNOTSUPP;
        _cleanup_free_ float *logits = malloc((size_t)m->hp.n_vocab * sizeof(float));
        if (!logits)
                return -ENOMEM;
        if ((r = whisper_decode(s, &sp->sot, 1, 0, logits)) < 0)
                return r;

        /* softmax over the language tokens only */
        int best = 0;
        float p[128];
        for (int i = 0; i < sp->n_langs; i++) {
                p[i] = logits[sp->sot + 1 + i];
                if (p[i] > p[best])
                        best = i;
        }
        whisper_softmax_row(p, sp->n_langs);
        if (probs)
                memcpy(probs, p, (size_t)sp->n_langs * sizeof(float));
        return best;
}
