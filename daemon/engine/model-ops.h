/* SPDX-License-Identifier: MIT */
/* The non-matmul pieces of a transformer forward pass, shared by the
 * architectures: normalization, rotary embedding, gated activations,
 * causal attention over the KV cache.  Each runs on the thread pool when
 * there is enough work (several tokens) and on the calling thread for one
 * token, where a pool round trip would cost more than the work.
 *
 * Numerics follow ggml's CPU backend where it matters for matching
 * llama.cpp's logits (sums of squares and softmax sums in double, RoPE
 * angles by repeated multiplication). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv-cache.h"
#include "threadpool.h"

/* ---- normalization ----
 * rmsnorm(x) = x / sqrt(mean(x^2) + eps) * w, row by row (w may be NULL). */
void ops_rmsnorm(threadpool *tp, float *out, const float *x, const float *w, int64_t n_rows, int64_t n, float eps);
/* sum of x[i]^2, each square rounded to float and summed in double (as
 * ggml, in another order) */
double ops_sum_squares(const float *x, int64_t n);

/* x += y, then out = rmsnorm(x) * w: the residual add fused with the next
 * norm (out may be NULL: only the add). */
void ops_add_rmsnorm(threadpool *tp, float *x, const float *y, float *out, const float *w, int64_t n_rows,
                     int64_t n, float eps);

/* ---- rotary position embedding ----
 * For every row t (position pos0 + t) and head h, the first n_rot
 * dimensions are rotated in pairs by theta_i = pos * base^(-2i/n_rot) *
 * freq_scale / factor_i (factors: rope_freqs.weight, or NULL).
 *   ROPE_NORM: pairs (2i, 2i+1), llama.cpp's "normal" (llama)
 *   ROPE_NEOX: pairs (i, i + n_rot/2) (gemma, qwen) */
typedef enum rope_mode {
        ROPE_NORM,
        ROPE_NEOX,
} rope_mode;

typedef struct rope_params {
        rope_mode mode;
        int32_t n_rot;
        int32_t head_dim;
        float freq_base;
        float freq_scale;     /* 1: none; linear scaling 1/factor */
        const float *factors; /* n_rot/2 divisors of theta, or NULL */
} rope_params;

/* Rotates q (n_head heads per row, rows q_ld floats apart) and k (n_head_kv
 * heads, k_ld) in place; either may be NULL. */
void ops_rope(threadpool *tp, const rope_params *rp, float *q, int32_t n_head, size_t q_ld, float *k,
              int32_t n_head_kv, size_t k_ld, int32_t pos0, int32_t n_rows);

/* ---- activations ----
 * gate = silu(gate) * up, n elements (SwiGLU). */
void ops_swiglu(threadpool *tp, float *gate, const float *up, int64_t n);

/* Thread ith's share [*lo, *hi) of n floats for an element-wise job,
 * split on 16-float boundaries so that threads never share a cache line. */
void ops_float_share(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi);

/* ---- attention ----
 * For every query row t (position pos0 + t) and head h:
 *   out[t][h] = softmax_j(scale * q[t][h] . K[j]) V[j]  over keys j <= pos0 + t
 * (and pos0 + t - j < window when window > 0), K/V of KV head h / n_rep from
 * layer il of the cache, which must already hold positions <= pos0 + n - 1.
 * scratch: ops_attention_scratch_floats() + kv_cache_gather_floats() floats
 * per pool thread (the second part for a ring cache's wrapped ranges). */
typedef struct attn_params {
        const kv_cache *kv;
        int32_t il;
        int32_t n_head;
        int32_t n_head_kv;
        int32_t head_dim;
        float scale;
        int32_t window; /* 0: full causal */
        /* The n query rows also see each other's later positions: one
         * bidirectional block (a Gemma 3 image), earlier positions as
         * usual.  false: causal. */
        bool bidirectional;
} attn_params;

size_t ops_attention_scratch_floats(int32_t n_ctx, int32_t n_head_kv, int32_t n_head);
/* Returns the bytes of keys and values it read from the cache. */
uint64_t ops_attention(threadpool *tp, const attn_params *ap, const float *q, size_t q_ld, int32_t pos0,
                       int32_t n, float *out, size_t out_ld, float *scratch);

/* ---- one layer's attention step ----
 * RoPE on n rows of q (and k), q *= q_scale, the rows' K/V into layer il's
 * cache, then attention over layer kv_il's cache into att.  The rows are
 * consecutive positions of one sequence (n_seq == 1: kv[0] from pos[0]) or
 * one row for each sequence (n_seq == n: kv[i] at pos[i], continuous
 * batching).  k NULL: the layer has no K/V of its own (it reads another
 * layer's).  att NULL: only RoPE and the cache (a pass that wants no
 * logits does not need the last layer's attention).  last_only (one
 * sequence): only the last row's attention, into att's first row (the
 * last layer when one row of logits is wanted). */
typedef struct attend_params {
        const rope_params *rope;
        int32_t n_head, n_head_kv, head_dim;
        int32_t il, kv_il;
        int32_t window;  /* 0: full causal */
        float q_scale;   /* 1: none */
        float scale;     /* of the scores, as attn_params */
        bool bidirectional;
        bool last_only;
} attend_params;

void ops_attend(threadpool *tp, const attend_params *p, kv_cache *const *kv, const int32_t *pos, int32_t n_seq,
                float *q, float *k, const float *v, int32_t n, float *att, float *scratch);
