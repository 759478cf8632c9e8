/* SPDX-License-Identifier: MIT */
/* The Whisper encoder (specs/whisper.md §3.2), activations token-major
 * ([position][channel]):
 *
 *   x = GELU(conv1d(mel, conv1, k=3, pad=1) + b1)            [2T][S]
 *   x = GELU(conv1d(x, conv2, k=3, stride=2, pad=1) + b2)    [T][S]
 *   x += positional_embedding[0..T)
 *   L times:  x += SelfAttn(LN(x));  x += MLP(LN(x))
 *   out = LN_post(x)
 *
 * Convolutions are products of an im2col matrix with the kernel; attention
 * is per head: P = softmax(Q K^T / sqrt(D)), O = P V, with sgemm. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "whisper-impl.h"

/* col[t][i*3 + k] = x[stride*t + k - 1][i] (zero outside), x: [n_in_t][C] */
static void im2col(const float *x, int64_t n_in_t, int64_t C, int stride, int64_t n_out_t, float *col) {
        for (int64_t t = 0; t < n_out_t; t++) {
                float *c = col + t * 3 * C;
                for (int k = 0; k < 3; k++) {
                        int64_t src = stride * t + k - 1;
                        if (src < 0 || src >= n_in_t) {
                                for (int64_t i = 0; i < C; i++)
                                        c[i * 3 + k] = 0;
                                continue;
                        }
                        const float *xr = x + src * C;
                        for (int64_t i = 0; i < C; i++)
                                c[i * 3 + k] = xr[i];
                }
        }
}

typedef struct attn_job {
        const float *q, *k, *v;
        float *out, *scores; /* scores: one [T][T] buffer per thread */
        int64_t T, S, D, H;
        float scale;
} attn_job;

/* Heads are spread over the threads; each runs single-threaded sgemm
 * (the matmul pool keeps OpenBLAS at one thread). */
static void attn_worker(void *ctx, int ith, int nth) {
        attn_job *j = ctx;
        const int64_t T = j->T;
        float *sc = j->scores + (size_t)ith * T * T;

        for (int64_t h = ith; h < j->H; h += nth) {
                const int64_t off = h * j->D;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)j->D, j->scale, j->q + off,
                            (int)j->S, j->k + off, (int)j->S, 0.0f, sc, (int)T);
                for (int64_t r = 0; r < T; r++)
                        whisper_softmax_row(sc + r * T, T);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)j->D, (int)T, 1.0f, sc, (int)T,
                            j->v + off, (int)j->S, 0.0f, j->out + off, (int)j->S);
        }
}

void openblas_set_num_threads(int n);

/* Full (non-causal) multi-head attention: out[T][S]. */
static void encoder_attention(whisper_state *s, attn_job *j) {
        openblas_set_num_threads(1);
        threadpool_run(matmul_ctx_pool(s->mm), attn_worker, j);
}

int whisper_encode(whisper_state *s, const float *mel, int32_t n_len, int32_t offset) {
        const whisper_model *m = s->m;
        const int64_t T = s->audio_ctx, S = m->hp.n_audio_state, M = m->hp.n_mels, H = m->hp.n_audio_head;
        const int64_t F = 2 * T; /* mel frames consumed */
        int r;

        if (!mel || n_len < 0 || offset < 0)
                return -EINVAL;
        s->encoded = false; /* until every layer and the cross K/V are done */
        if (whisper_aborted(s))
                return -ECANCELED;

        size_t n_col = (size_t)MAX(F * 3 * M, T * 3 * S);
        _cleanup_free_ float *xin = calloc((size_t)(F * M), sizeof(float));
        _cleanup_free_ float *col = malloc(n_col * sizeof(float));
        _cleanup_free_ float *h1 = malloc((size_t)(F * S) * sizeof(float));
        _cleanup_free_ float *x = malloc((size_t)(T * S) * sizeof(float));
        _cleanup_free_ float *cur = malloc((size_t)(T * S) * sizeof(float));
        _cleanup_free_ float *q = malloc((size_t)(T * S) * sizeof(float));
        _cleanup_free_ float *k = malloc((size_t)(T * S) * sizeof(float));
        _cleanup_free_ float *v = malloc((size_t)(T * S) * sizeof(float));
        _cleanup_free_ float *o = malloc((size_t)(T * S) * sizeof(float));
        _cleanup_free_ float *ff = malloc((size_t)(T * 4 * S) * sizeof(float));
        if (!xin || !col || !h1 || !x || !cur || !q || !k || !v || !o || !ff)
                return -ENOMEM;

        /* the window of mel frames, token-major; frames past n_len are zero */
        for (int64_t t = 0; t < F && offset + t < n_len; t++)
                for (int64_t i = 0; i < M; i++)
                        xin[t * M + i] = mel[(size_t)i * n_len + offset + t];

        /* ---- convolutions ---- */
        im2col(xin, F, M, 1, F, col);
        if ((r = whisper_linear(s, &m->e_conv1, col, F, m->e_conv1_b, h1)) < 0)
                return r;
        whisper_gelu(h1, F * S);
        im2col(h1, F, S, 2, T, col);
        if ((r = whisper_linear(s, &m->e_conv2, col, T, m->e_conv2_b, x)) < 0)
                return r;
        whisper_gelu(x, T * S);
        for (int64_t i = 0; i < T * S; i++)
                x[i] += m->e_pe[i];

        /* ---- transformer blocks ---- */
        attn_job aj = { .q = q, .k = k, .v = v, .out = o, .scores = s->scores, .T = T, .S = S, .D = S / H, .H = H,
                        .scale = 1.0f / sqrtf((float)(S / H)) };
        for (int l = 0; l < m->hp.n_audio_layer; l++) {
                const whisper_block *b = &m->e_blocks[l];

                if (whisper_aborted(s))
                        return -ECANCELED;
                whisper_layer_norm(cur, x, T, S, b->attn_ln_w, b->attn_ln_b);
                if ((r = whisper_linear(s, &b->attn_q, cur, T, b->attn_q_b, q)) < 0 ||
                    (r = whisper_linear(s, &b->attn_k, cur, T, NULL, k)) < 0 ||
                    (r = whisper_linear(s, &b->attn_v, cur, T, b->attn_v_b, v)) < 0)
                        return r;
                encoder_attention(s, &aj);
                if ((r = whisper_linear(s, &b->attn_o, o, T, b->attn_o_b, cur)) < 0)
                        return r;
                for (int64_t i = 0; i < T * S; i++)
                        x[i] += cur[i];

                whisper_layer_norm(cur, x, T, S, b->mlp_ln_w, b->mlp_ln_b);
                if ((r = whisper_linear(s, &b->mlp_0, cur, T, b->mlp_0_b, ff)) < 0)
                        return r;
                whisper_gelu(ff, T * 4 * S);
                if ((r = whisper_linear(s, &b->mlp_2, ff, T, b->mlp_2_b, cur)) < 0)
                        return r;
                for (int64_t i = 0; i < T * S; i++)
                        x[i] += cur[i];
        }
        whisper_layer_norm(s->enc_out, x, T, S, m->e_ln_w, m->e_ln_b);

        /* ---- cross-attention K/V of every decoder layer ---- */
        if (whisper_aborted(s))
                return -ECANCELED;
        for (int l = 0; l < m->hp.n_text_layer; l++) {
                const whisper_block *b = &m->d_blocks[l];
                if ((r = whisper_linear(s, &b->cross_k, s->enc_out, T, NULL, s->cross_k + (size_t)l * T * S)) < 0 ||
                    (r = whisper_linear(s, &b->cross_v, s->enc_out, T, b->cross_v_b, s->cross_v + (size_t)l * T * S)) < 0)
                        return r;
        }
        s->encoded = true;
        return 0;
}

const float *whisper_encoder_output(const whisper_state *s, int32_t *n_ctx, int32_t *n_state) {
        if (n_ctx)
                *n_ctx = s->audio_ctx;
        if (n_state)
                *n_state = s->m->hp.n_audio_state;
        return s->encoded ? s->enc_out : NULL;
}
