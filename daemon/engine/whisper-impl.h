/* SPDX-License-Identifier: MIT */
/* Private to whisper*.c: the model and state structures and the helpers
 * the files share. */
#pragma once

#include "macro.h"
#include "matmul.h"
#include "whisper.h"

#define WHISPER_N_FFT_BINS (1 + WHISPER_N_FFT / 2)
#define WHISPER_LN_EPS 1e-5f

/* Encoder and decoder blocks share the self-attention/MLP part. */
typedef struct whisper_block {
        const float *attn_ln_w, *attn_ln_b;
        weight attn_q, attn_k, attn_v, attn_o;
        const float *attn_q_b, *attn_v_b, *attn_o_b;
        /* decoder only */
        const float *cross_ln_w, *cross_ln_b;
        weight cross_q, cross_k, cross_v, cross_o;
        const float *cross_q_b, *cross_v_b, *cross_o_b;

        const float *mlp_ln_w, *mlp_ln_b;
        weight mlp_0, mlp_2;
        const float *mlp_0_b, *mlp_2_b;
} whisper_block;

typedef struct whisper_vocab {
        int32_t n;          /* n_vocab */
        uint32_t *offset;   /* n+1 offsets into bytes */
        char *bytes;
        /* open-addressing hash of piece -> id for lookups */
        int32_t *hash;
        uint32_t hash_size;
} whisper_vocab;

struct whisper_model {
        whisper_hparams hp;
        whisper_special sp;
        bool multilingual;

        int32_t n_mel_filters, n_fft_bins;
        float *filters; /* n_mels * n_fft_bins */
        whisper_vocab vocab;

        /* all tensor data, copied aligned */
        void *arena;      /* owned; NULL when the weights are in the shared arena */
        size_t arena_size;
        bool arena_shared; /* in the process's weights arena (weights-arena.h) */

        /* encoder */
        const float *e_pe;              /* [n_audio_ctx][S] */
        weight e_conv1, e_conv2;        /* rows: out channel; n_in = 3*in_ch, element (i,k) at i*3+k */
        const float *e_conv1_b, *e_conv2_b;
        whisper_block *e_blocks;
        const float *e_ln_w, *e_ln_b;

        /* decoder */
        const float *d_pe;              /* [n_text_ctx][S] */
        weight d_tok;                   /* [n_vocab] rows of S */
        whisper_block *d_blocks;
        const float *d_ln_w, *d_ln_b;
};

struct whisper_state {
        const whisper_model *m;
        int n_threads;
        int32_t audio_ctx;

        /* encoder output [audio_ctx][S] and cross K/V per layer */
        float *enc_out;
        float *cross_k, *cross_v; /* [L][audio_ctx][S] */

        /* self-attention cache [L][n_text_ctx][S] */
        float *kv_k, *kv_v;
        int32_t n_cached;
        bool encoded;

        matmul_ctx *mm; /* weight products and the thread pool */
        float *scores;  /* encoder attention: one [T][T] buffer per thread */

        whisper_abort_fn abort_fn;
        void *abort_userdata;
};

static inline bool whisper_aborted(const whisper_state *s) {
        return s->abort_fn && s->abort_fn(s->abort_userdata);
}

/* ---- whisper-linear.c: y[t][o] = sum_i W[o][i] x[t][i] (+ b[o]) ---- */
int whisper_linear(whisper_state *s, const weight *w, const float *x, int64_t n_tokens, const float *b, float *y);
/* The same products of one input with several weights (q/k/v), in one
 * pool dispatch where that is possible; bs[i] may be NULL. */
int whisper_linear_multi(whisper_state *s, const weight *const *ws, int n_w, const float *x, int64_t n_tokens,
                         const float *const *bs, float *const *ys);
/* Row r of W as floats. */
void whisper_weight_row(const weight *w, int64_t r, float *out);

/* ---- whisper-ops.c ---- */
void whisper_layer_norm(float *y, const float *x, int64_t n_tokens, int64_t n, const float *w, const float *b);
void whisper_gelu(float *x, int64_t n);
void whisper_softmax_row(float *x, int64_t n);


/* ---- whisper-vocab.c ---- */
int whisper_vocab_finish(whisper_model *m, char *err, size_t errlen);
void whisper_vocab_done(whisper_vocab *v);
