/* SPDX-License-Identifier: MIT */
/* Gemma 3n text (general.architecture "gemma3n"; specs/gemma3n-text.md).
 *
 * Beyond Gemma 3: K AltUp streams of width E (one active stream a goes
 * through each block, the others are predicted and corrected around it),
 * per-layer embeddings (a P-wide input per layer and token, looked up in a
 * table that stays in the mapped file, only the rows of the tokens read),
 * a LAuReL low-rank side path, V normalized without weight, attention
 * unscaled, KV shared by the last Ns layers (they read the cache of the
 * last own-KV layer of their kind and allocate none), gaussian top-k on the
 * gate of the first sparse layers, a final soft-cap.  Numerics follow
 * llama.cpp's graph op by op (gemma-ops.h says why).
 *
 *   x0       = token_embd[t] * sqrt(E)
 *   PLI[l]   = (ple[t][l] * sqrt(P) + rmsnorm((Mp x0 / sqrt(E))[l]) * np) / sqrt(2)
 *   s[0]     = x0,  s[k] = U_k x0 * |x0| / |U_k x0|          (k = 1..K-1)
 *   per layer:
 *     c      = Cp tanh(R (rmsnorm(s[a]) * n_router / E))     K*K coefficients
 *     pred_i = s_i + sum_j c[i K + j] s_j
 *     h      = rmsnorm(pred_a) * attn_norm
 *     lau    = h + rmsnorm(Lr Ll h) * n_laurel
 *     g      = pred_a + rmsnorm(attention(h) Wo^T) * post_attn_norm
 *     al     = (g + lau) / sqrt(2)
 *     f      = rmsnorm(al) * ffn_norm
 *     out    = al + rmsnorm((gelu(topk(f Wg^T)) * f Wu^T) Wd^T) * post_ffw_norm
 *     cc     = Cc tanh(R (rmsnorm(out) * n_router / E)) + 1
 *     s'_i   = pred_i + cc_i (out - pred_a)
 *     z      = rmsnorm(Pp (gelu(Gp (s'_a * s_corr)) * PLI[l])) * n_ple
 *     s'_i  += z for i != 0
 *   x        = (s[0] + sum_k Z_k s[k] * |s[a]| / |Z_k s[k]|) / K
 *   logits   = 30 tanh(((rmsnorm(x) * output_norm) Wout^T) / 30) */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gemma-matformer.h"
#include "gemma-model.h"
#include "gemma-ops.h"
#include "macro.h"
#include "tensor-type.h"

#define MAX_ALTUP 16
/* Rows of the per-layer embedding table with text tokens; rows above are
 * multimodal placeholders, which use row 0 (<pad>) like transformers. */
#define PLE_TEXT_VOCAB 262144

typedef struct gemma3n_layer {
        const float *attn_norm, *q_norm, *k_norm, *post_attn_norm, *ffn_norm, *post_ffn_norm;
        const float *ple_post_norm, *corr_scale, *router_norm, *laurel_norm;
        weight wq, wk, wv, wo;
        weight w_gate, w_up, w_down;
        weight ple_gate, ple_proj;
        weight router, pred_coef, corr_coef;
        weight laurel_l, laurel_r;
        int32_t n_ff;
        int32_t orig;   /* its index in the file (MatFormer keeps a subset) */
        int32_t kv_src; /* the layer whose cache it reads (itself when it owns one) */
        bool local;
        bool sparse;
        float std_mul;
} gemma3n_layer;

typedef struct gemma3n_weights {
        weight tok_embd, ple_embd, ple_model_proj, output;
        weight altup_proj[MAX_ALTUP - 1], altup_unembd[MAX_ALTUP - 1];
        const float *ple_proj_norm, *output_norm;
        rope_params rope_local, rope_global;
        float softcap;
        int32_t window;
        int32_t n_altup, i_act, n_ple, laurel_rank, n_ff_max, n_kv_own;
        int32_t n_layer_file; /* the per-layer embeddings hold this many slices */
        gemma3n_layer *layers;
} gemma3n_weights;

typedef struct gemma3n_state {
        float *s, *pred;       /* [K][B][E] streams, predictions */
        float *pli, *plp;      /* [B][L*P] per-layer inputs, projection */
        float *h, *q, *k, *v, *att;
        float *lr, *lau, *al, *y;
        float *ff, *up;
        float *mod, *coef, *g;
        float *tmp, *att_scratch;
        void *mem;
        void *ple_raw; /* one row of the per-layer table as stored */
} gemma3n_state;

/* ---- loading ---- */

static void gemma3n_unload(engine_model *m) {
        gemma3n_weights *w = m->arch_data;
        if (!w)
                return;
        free(w->layers);
        free(w);
        m->arch_data = NULL;
}

static int get_u32_opt(engine_model *m, const char *suffix, uint32_t dflt, uint32_t lo, uint32_t hi, int32_t *ret,
                       char *err, size_t errlen) {
        uint32_t u = dflt;
        int r = model_get_u32(m, suffix, false, &u, err, errlen);
        if (r < 0 && r != -ENOENT)
                return r;
        if (u < lo || u > hi)
                return set_error(err, errlen, -EINVAL, "%s.%s = %u is out of range [%u, %u]", m->arch_name, suffix,
                                 u, lo, hi);
        *ret = (int32_t)u;
        return 0;
}

static int gemma3n_hparams(engine_model *m, gemma3n_weights *w, char *err, size_t errlen) {
        model_hparams *hp = &m->hp;
        int32_t L, n_shared;
        int r;

        r = gemma_read_hparams(m, err, errlen);
        if (r < 0)
                return r;
        L = hp->n_layer;
        if ((r = get_u32_opt(m, "attention.sliding_window", 512, 1, INT32_MAX, &w->window, err, errlen)) < 0 ||
            (r = get_u32_opt(m, "altup.num_inputs", 4, 2, MAX_ALTUP, &w->n_altup, err, errlen)) < 0 ||
            (r = get_u32_opt(m, "altup.active_idx", 0, 0, (uint32_t)w->n_altup - 1, &w->i_act, err, errlen)) < 0 ||
            (r = get_u32_opt(m, "embedding_length_per_layer_input", 256, 1, 1 << 16, &w->n_ple, err, errlen)) < 0)
                return r;
        /* llama.cpp keeps KV in the first 20 layers; files say how many share */
        r = get_u32_opt(m, "attention.shared_kv_layers", L > 20 ? (uint32_t)(L - 20) : 0, 0, (uint32_t)L - 1,
                        &n_shared, err, errlen);
        if (r < 0) {
                float f;
                /* some converters write it as a float */
                if (model_get_f32(m, "attention.shared_kv_layers", true, &f, err, errlen) < 0 || f < 0.0f ||
                    f >= (float)L || f != floorf(f))
                        return r;
                n_shared = (int32_t)f;
        }
        w->n_kv_own = L - n_shared;

        w->rope_global = (rope_params){ .mode = ROPE_NEOX, .n_rot = hp->n_rot, .head_dim = hp->head_dim,
                                        .freq_base = hp->rope_freq_base, .freq_scale = 1.0f };
        w->rope_local = w->rope_global;
        w->rope_local.freq_base = 10000.0f;
        r = gemma_get_f32_opt(m, "rope.freq_base_swa", &w->rope_local.freq_base, err, errlen);
        if (r < 0)
                return r;
        if (!(w->rope_local.freq_base > 0.0f))
                return set_error(err, errlen, -EINVAL, "local rope frequency base must be positive");
        w->softcap = 30.0f;
        r = gemma_get_f32_opt(m, "final_logit_softcapping", &w->softcap, err, errlen);
        if (r < 0)
                return r;
        if (w->softcap < 0.0f)
                return set_error(err, errlen, -EINVAL, "negative final logit soft-cap");
        return 0;
}

static int gemma3n_layer_schedule(engine_model *m, gemma3n_weights *w, int32_t L, char *err, size_t errlen) {
        for (int32_t il = 0; il < L; il++) {
                gemma3n_layer *l = &w->layers[il];
                int32_t o = l->orig;
                float f;

                l->local = gemma_layer_is_local(m, o, 5);
                /* Sparse layers: activation_sparsity_scale holds the normal
                 * quantile of the target sparsity; a positive finite one
                 * makes the layer sparse (0 or -inf: dense).  Without the
                 * key, llama.cpp's fixed choice: the first 10 layers. */
                if (gemma_get_f32_at(m, "activation_sparsity_scale", o, &f) >= 0) {
                        l->sparse = isfinite(f) && f > 0.0f;
                        l->std_mul = l->sparse ? f : 0.0f;
                } else {
                        l->sparse = o < 10;
                        l->std_mul = 1.6448533535003662f;
                }
                /* KV sharing: the last own-KV layer of the same kind (among
                 * the layers kept) */
                l->kv_src = il;
                if (o >= w->n_kv_own) {
                        l->kv_src = -1;
                        for (int32_t j = il - 1; j >= 0; j--)
                                if (w->layers[j].orig < w->n_kv_own && w->layers[j].local == l->local) {
                                        l->kv_src = j;
                                        break;
                                }
                        if (l->kv_src < 0)
                                return set_error(err, errlen, -EINVAL,
                                                 "layer %d shares the KV cache of an earlier %s layer, but there is none",
                                                 il, l->local ? "sliding-window" : "global");
                }
        }
        return 0;
}

static void matformer_donep(gemma_matformer *mf) {
        gemma_matformer_done(mf);
}

static int gemma3n_load(engine_model *m, char *err, size_t errlen) {
        _cleanup_(matformer_donep) gemma_matformer mf = {};
        model_hparams *hp = &m->hp;
        gemma3n_weights *w;
        int r;

        w = calloc(1, sizeof *w);
        if (!w)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        m->arch_data = w;

        r = gemma3n_hparams(m, w, err, errlen);
        if (r < 0)
                return r;
        w->n_layer_file = hp->n_layer;
        r = gemma_matformer_parse(m->matformer, hp->n_layer, &mf, err, errlen);
        if (r < 0)
                return r;

        int64_t E = hp->n_embd, D = hp->head_dim, QD = (int64_t)hp->n_head * D, KD = (int64_t)hp->n_head_kv * D;
        int64_t V = hp->n_vocab, L = hp->n_layer, P = w->n_ple, K = w->n_altup;
        const gguf_tensor *t;

        if ((r = model_bind_weight(m, &w->tok_embd, false, E, V, err, errlen, "token_embd.weight")) < 0 ||
            (r = model_bind_vector(m, &w->output_norm, E, err, errlen, "output_norm.weight")) < 0 ||
            (r = model_bind_weight(m, &w->output, true, E, V, err, errlen, "output.weight")) < 0 ||
            (r = model_bind_weight(m, &w->ple_model_proj, false, E, L * P, err, errlen,
                                   "per_layer_model_proj.weight")) < 0 ||
            (r = model_bind_vector(m, &w->ple_proj_norm, P, err, errlen, "per_layer_proj_norm.weight")) < 0 ||
            (r = gemma_bind_stack(m, w->altup_proj, K - 1, E, E, err, errlen, "altup_proj.weight")) < 0 ||
            (r = gemma_bind_stack(m, w->altup_unembd, K - 1, E, E, err, errlen, "altup_unembd_proj.weight")) < 0)
                return r;
        if (!w->output.data)
                w->output = w->tok_embd;
        /* The per-layer embedding table: as many rows as the file has
         * (262400 in llama.cpp's files, zero rows past the text vocabulary). */
        t = gguf_find_tensor(m->gguf, "per_layer_token_embd.weight");
        if (!t)
                return set_error(err, errlen, -EINVAL, "tensor per_layer_token_embd.weight is missing");
        if (t->ne[1] < 1 || t->ne[1] > INT32_MAX)
                return set_error(err, errlen, -EINVAL, "per_layer_token_embd.weight has no rows");
        r = model_bind_weight(m, &w->ple_embd, false, L * P, t->ne[1], err, errlen, "per_layer_token_embd.weight");
        if (r < 0)
                return r;

        w->layers = calloc((size_t)mf.n_layer, sizeof(gemma3n_layer));
        if (!w->layers)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        for (int32_t il = 0; il < mf.n_layer; il++)
                w->layers[il].orig = mf.layer[il];
        r = gemma3n_layer_schedule(m, w, mf.n_layer, err, errlen);
        if (r < 0)
                return r;

        /* bytes read per token: every matrix of the blocks, the head, one
         * row of each embedding table (not the tables) */
        uint64_t bytes = weight_bytes(&w->output) + w->tok_embd.row_bytes + w->ple_embd.row_bytes +
                         weight_bytes(&w->ple_model_proj);
        for (int64_t k = 0; k < K - 1; k++)
                bytes += weight_bytes(&w->altup_proj[k]) + weight_bytes(&w->altup_unembd[k]);

        for (int32_t il = 0; il < mf.n_layer; il++) {
                gemma3n_layer *l = &w->layers[il];
                bool own = l->kv_src == il;
                int32_t o = l->orig;
                int64_t F;

                r = gemma_get_n_ff(m, o, &l->n_ff, err, errlen);
                if (r < 0)
                        return r;
                F = l->n_ff;

                /* the LAuReL rank is the shape of laurel_l */
                t = gguf_find_tensor(m->gguf, "blk.0.laurel_l.weight");
                if (!t || t->ne[1] < 1 || t->ne[1] > 65536)
                        return set_error(err, errlen, -EINVAL, "tensor blk.0.laurel_l.weight is missing or empty");
                w->laurel_rank = (int32_t)t->ne[1];
                int64_t R = w->laurel_rank;

                struct {
                        const float **v;
                        int64_t n;
                        const char *name;
                } vecs[] = {
                        { &l->attn_norm, E, "attn_norm" },
                        { &l->q_norm, D, "attn_q_norm" },
                        { &l->k_norm, D, "attn_k_norm" },
                        { &l->post_attn_norm, E, "post_attention_norm" },
                        { &l->ffn_norm, E, "ffn_norm" },
                        { &l->post_ffn_norm, E, "post_ffw_norm" },
                        { &l->ple_post_norm, E, "post_norm" },
                        { &l->corr_scale, E, "altup_correct_scale" },
                        { &l->router_norm, E, "altup_router_norm" },
                        { &l->laurel_norm, E, "laurel_post_norm" },
                };
                struct {
                        weight *w;
                        int64_t n_in, n_out;
                        const char *name;
                        bool used;
                } mats[] = {
                        { &l->wq, E, QD, "attn_q", true },
                        { &l->wk, E, KD, "attn_k", own },
                        { &l->wv, E, KD, "attn_v", own },
                        { &l->wo, QD, E, "attn_output", true },
                        { &l->w_gate, E, F, "ffn_gate", true },
                        { &l->w_up, E, F, "ffn_up", true },
                        { &l->w_down, F, E, "ffn_down", true },
                        { &l->ple_gate, E, P, "inp_gate", true },
                        { &l->ple_proj, P, E, "proj", true },
                        { &l->router, E, K, "altup_router", true },
                        { &l->pred_coef, K, K * K, "altup_predict_coef", true },
                        { &l->corr_coef, K, K, "altup_correct_coef", true },
                        { &l->laurel_l, E, R, "laurel_l", true },
                        { &l->laurel_r, R, E, "laurel_r", true },
                };
                for (size_t i = 0; i < ELEMENTSOF(vecs); i++) {
                        r = model_bind_vector(m, vecs[i].v, vecs[i].n, err, errlen, "blk.%d.%s.weight", o,
                                              vecs[i].name);
                        if (r < 0)
                                return r;
                }
                for (size_t i = 0; i < ELEMENTSOF(mats); i++) {
                        /* KV-sharing layers still carry attn_k/attn_v; never read */
                        if (!mats[i].used)
                                continue;
                        r = model_bind_weight(m, mats[i].w, false, mats[i].n_in, mats[i].n_out, err, errlen,
                                              "blk.%d.%s.weight", o, mats[i].name);
                        if (r < 0)
                                return r;
                }

                /* MatFormer: the first F' units, in place: fewer rows of gate
                 * and up, the first F' columns of each row of down. */
                if (mf.n_ff[il] > 0 && mf.n_ff[il] != l->n_ff) {
                        int32_t Fs = mf.n_ff[il];
                        size_t row;
                        if (Fs > l->n_ff || type_row_size(l->w_down.type, Fs, &row) < 0)
                                return set_error(err, errlen, -EINVAL,
                                                 "matformer: layer %d cannot be %d wide (it has %d units in blocks of %s)",
                                                 o, Fs, l->n_ff, type_name(l->w_down.type));
                        l->n_ff = Fs;
                        l->w_gate.n_out = Fs;
                        l->w_up.n_out = Fs;
                        l->w_down.n_in = Fs;
                }
                for (size_t i = 0; i < ELEMENTSOF(mats); i++) {
                        size_t row;
                        if (mats[i].used && type_row_size(mats[i].w->type, mats[i].w->n_in, &row) >= 0)
                                bytes += (uint64_t)row * (uint64_t)mats[i].w->n_out;
                }
                w->n_ff_max = MAX(w->n_ff_max, l->n_ff);
        }
        hp->n_layer = mf.n_layer;
        m->matformer_applied = m->matformer != NULL;
        hp->n_ff = w->n_ff_max;
        m->bytes_per_token = bytes;
        return 0;
}

/* ---- sessions ---- */

static void gemma3n_session_done(engine_session *s) {
        gemma3n_state *st = s->arch_state;

        kv_cache_done(&s->kv);
        if (!st)
                return;
        free(st->mem);
        free(st->ple_raw);
        free(st);
        s->arch_state = NULL;
}

static int gemma3n_session_init(engine_session *s, char *err, size_t errlen) {
        const engine_model *m = s->model;
        const model_hparams *hp = &m->hp;
        const gemma3n_weights *w = m->arch_data;
        _cleanup_free_ int32_t *n_kv = NULL, *hd = NULL;
        _cleanup_free_ bool *ring = NULL;
        gemma3n_state *st;
        int r;

        /* only the layers that own their K/V get storage; the sliding-window
         * ones a ring of window + n_batch positions */
        n_kv = calloc((size_t)hp->n_layer, sizeof(int32_t));
        hd = calloc((size_t)hp->n_layer, sizeof(int32_t));
        ring = calloc((size_t)hp->n_layer, sizeof(bool));
        if (!n_kv || !hd || !ring)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        for (int32_t il = 0; il < hp->n_layer; il++) {
                bool own = w->layers[il].kv_src == il;
                n_kv[il] = own ? hp->n_head_kv : 0;
                hd[il] = own ? hp->head_dim : 0;
                ring[il] = w->layers[il].local;
        }
        r = kv_cache_init_ring(&s->kv, s->n_ctx, hp->n_layer, n_kv, hd, ring, w->window,
                               s->params.kv_full || w->window > INT32_MAX - s->n_batch ? 0 : w->window + s->n_batch);
        if (r < 0)
                return set_error(err, errlen, r, "cannot allocate the KV cache for %d positions: %s", s->n_ctx,
                                 strerror(-r));

        st = calloc(1, sizeof *st);
        if (!st)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        s->arch_state = st;

        size_t B = (size_t)s->n_batch, E = (size_t)hp->n_embd, QD = (size_t)hp->n_head * hp->head_dim;
        size_t KD = (size_t)hp->n_head_kv * hp->head_dim, F = (size_t)w->n_ff_max, K = (size_t)w->n_altup;
        size_t LP = (size_t)w->n_layer_file * (size_t)w->n_ple, P = (size_t)w->n_ple, R = (size_t)w->laurel_rank;
        size_t att = (ops_attention_scratch_floats(s->n_ctx, hp->n_head_kv, hp->n_head) +
                      kv_cache_gather_floats(&s->kv)) * (size_t)m->n_threads;
        size_t widest = MAX(MAX(MAX(E, QD), MAX(F, P)), MAX(R, K));
        size_t sizes[] = {
                K * B * E, K * B * E, B * LP, B * LP,                 /* s, pred, pli, plp */
                B * MAX(E, QD), B * QD, B * KD, B * KD, B * QD,       /* h, q, k, v, att */
                B * R, B * E, B * E, B * E,                           /* lr, lau, al, y */
                B * F, B * F,                                         /* ff, up */
                B * K, B * K * K, B * P,                              /* mod, coef, g */
                B * widest, att,                                      /* tmp, att_scratch */
        };
        float **const ptrs[] = {
                &st->s, &st->pred, &st->pli, &st->plp, &st->h, &st->q, &st->k, &st->v, &st->att,
                &st->lr, &st->lau, &st->al, &st->y, &st->ff, &st->up, &st->mod, &st->coef, &st->g,
                &st->tmp, &st->att_scratch,
        };
        _Static_assert(ELEMENTSOF(sizes) == ELEMENTSOF(ptrs), "scratch table");
        r = gemma_alloc_floats(&st->mem, ELEMENTSOF(sizes), sizes, ptrs);
        if (r < 0)
                return set_error(err, errlen, r, "cannot allocate the scratch for %zu tokens", B);
        st->ple_raw = malloc(w->ple_embd.row_bytes);
        if (!st->ple_raw)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        return 0;
}

/* ---- the forward pass ---- */

static bool aborted(const engine_session *s) {
        return s->params.abort_cb && s->params.abort_cb(s->params.abort_userdata);
}

/* mod[t] = tanh(R (rmsnorm(x[t]) * router_norm / E)), K values per row */
static int router(engine_session *s, const gemma3n_layer *l, const float *x, int32_t n, float *mod) {
        const engine_model *m = s->model;
        const gemma3n_weights *w = m->arch_data;
        gemma3n_state *st = s->arch_state;
        int64_t E = m->hp.n_embd;
        int r;

        ops_rmsnorm(matmul_ctx_pool(m->mm), st->y, x, l->router_norm, n, E, m->hp.norm_eps);
        gemma_ops_scale(st->y, (int64_t)n * E, 1.0f / (float)E);
        r = gemma_matmul(m->mm, &l->router, st->y, n, mod, st->tmp);
        if (r < 0)
                return r;
        for (int64_t i = 0; i < (int64_t)n * w->n_altup; i++)
                mod[i] = tanhf(mod[i]);
        return 0;
}

/* y[k] = W_k x * |x0| / |W_k x| for each row: the AltUp magnitude match. */
static int altup_project(engine_session *s, const weight *wk, const float *x, const float *x0, int32_t n, float *y) {
        const engine_model *m = s->model;
        gemma3n_state *st = s->arch_state;
        int64_t E = m->hp.n_embd;
        int r;

        r = gemma_matmul(m->mm, wk, x, n, y, st->tmp);
        if (r < 0)
                return r;
        for (int32_t t = 0; t < n; t++) {
                float target = gemma_magnitude(x0 + t * E, E), mag = gemma_magnitude(y + t * E, E);
                for (int64_t i = 0; i < E; i++)
                        y[t * E + i] = y[t * E + i] * target / mag;
        }
        return 0;
}

/* The per-layer-embedding table is most of E2B's parameters and must stay
 * in the file (copied_bytes below: the loader's copy of the weights leaves
 * it out, and its weight points into the file mapping): each token needs
 * one row (L * 256 values), read with pread.  Read through the mapping, a
 * row faulted in more than itself (the kernel maps the neighbours that are
 * in the page cache, whole large folios), so a long context of varied
 * tokens would map the whole table into this process; dropping those
 * pages after each token cost, with the faults, 0.2 ms of a 50 ms E2B
 * token.  Without a descriptor (a model served from the mapping itself)
 * the row is read through the mapping and the table's pages are unmapped
 * after the lookups (ple_release). */
static int ple_get_row(const engine_model *m, gemma3n_state *st, int64_t row, float *out, bool *mapped) {
        const weight *w = &((const gemma3n_weights *)m->arch_data)->ple_embd;
        int r;

        if (row < 0 || row >= w->n_out)
                return -EINVAL;
        r = weights_copy_read(&m->copy, (const uint8_t *)w->data + (size_t)row * w->row_bytes, w->row_bytes,
                              st->ple_raw);
        if (r == -ENOENT) {
                *mapped = true;
                return weight_get_row(w, row, out);
        }
        if (r < 0)
                return r;
        return weight_row_to_float(w, st->ple_raw, out);
}

/* On a read-only shared file mapping MADV_DONTNEED only drops our
 * page-table entries, the page cache keeps the data for the next read (on
 * a copy it would zero the rows: hence the table is never copied). */
static void ple_release(const weight *w) {
        uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t a = ((uintptr_t)w->data + ps - 1) & ~(ps - 1);
        uintptr_t b = ((uintptr_t)w->data + (uintptr_t)w->n_out * w->row_bytes) & ~(ps - 1);

        if (b > a)
                (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

/* The forward pass over n rows: the tokens at consecutive positions of one
 * session (n_ss == 1), or one token for each of n_ss == n sessions at its
 * own position (continuous batching: every product takes the n rows at
 * once, one pass over the weights; RoPE, the KV caches and attention go
 * session by session).  s owns the scratch (gemma_batch_owner). */
_vector_clones_ static int gemma3n_run(engine_session *s, engine_session *const *ss, int32_t n_ss, const int32_t *tokens, int32_t n,
                       bool all_logits, float *logits) {
        const engine_model *m = s->model;
        const model_hparams *hp = &m->hp;
        const gemma3n_weights *w = m->arch_data;
        gemma3n_state *st = s->arch_state;
        matmul_ctx *mm = m->mm;
        threadpool *tp = matmul_ctx_pool(mm);
        int32_t K = w->n_altup, a = w->i_act, L = hp->n_layer;
        int64_t E = hp->n_embd, P = w->n_ple, LP = (int64_t)w->n_layer_file * P;
        size_t SB = (size_t)s->n_batch * (size_t)E; /* floats between streams */
        float eps = hp->norm_eps;
        kv_cache *kvs[ENGINE_BATCH_MAX];
        int32_t pos[ENGINE_BATCH_MAX];
        int r;

        /* The scratch the element-wise loops below index, as locals: built
         * with -fno-strict-aliasing, every float store could change st's
         * pointers, so the loops reloaded them each time and were not
         * vectorized. */
        float *const s_all = st->s, *const pred_all = st->pred, *const y = st->y, *const al = st->al;
        float *const lau = st->lau, *const pli = st->pli, *const plp = st->plp;

        gemma_batch_kv(ss, n_ss, kvs, pos);

#define S(k) (s_all + (size_t)(k) * SB)
#define PRED(k) (pred_all + (size_t)(k) * SB)

        /* ---- embeddings: x0 = token_embd[t] * sqrt(E), per-layer rows ---- */
        bool ple_mapped = false;
        for (int32_t t = 0; t < n; t++) {
                int32_t tp_row = tokens[t] < PLE_TEXT_VOCAB && tokens[t] < w->ple_embd.n_out ? tokens[t] : 0;

                r = weight_get_row(&w->tok_embd, tokens[t], S(0) + t * E);
                if (r < 0)
                        return r;
                gemma_ops_scale(S(0) + t * E, E, sqrtf((float)E));
                r = ple_get_row(m, st, tp_row, st->pli + t * LP, &ple_mapped);
                if (r < 0)
                        return r;
                gemma_ops_scale(st->pli + t * LP, LP, sqrtf((float)P));
        }
        if (ple_mapped)
                ple_release(&w->ple_embd);

        /* PLI = (ple + rmsnorm(Mp x0 / sqrt(E)) * np) / sqrt(2), per P-slice */
        r = gemma_matmul(mm, &w->ple_model_proj, S(0), n, st->plp, st->tmp);
        if (r < 0)
                return r;
        gemma_ops_scale(st->plp, (int64_t)n * LP, 1.0f / sqrtf((float)E));
        ops_rmsnorm(tp, st->plp, st->plp, w->ple_proj_norm, (int64_t)n * w->n_layer_file, P, eps);
        for (int64_t i = 0; i < (int64_t)n * LP; i++)
                pli[i] = (pli[i] + plp[i]) * (1.0f / sqrtf(2.0f));

        /* ---- AltUp streams: s[k] = U_k x0, magnitude-matched to x0 ---- */
        for (int32_t k = 1; k < K; k++) {
                r = altup_project(s, &w->altup_proj[k - 1], S(0), S(0), n, S(k));
                if (r < 0)
                        return r;
        }

        for (int32_t il = 0; il < L; il++) {
                const gemma3n_layer *l = &w->layers[il];
                const rope_params *rp = l->local ? &w->rope_local : &w->rope_global;
                bool own = l->kv_src == il;
                float *act = PRED(a);

                for (int32_t i = 0; i < n_ss; i++)
                        if (aborted(ss[i]))
                                return -ECANCELED;

                /* ---- AltUp predict: pred_i = s_i + sum_j c[iK + j] s_j ---- */
                if ((r = router(s, l, S(a), n, st->mod)) < 0 ||
                    (r = gemma_matmul(mm, &l->pred_coef, st->mod, n, st->coef, st->tmp)) < 0)
                        return r;
                for (int32_t i = 0; i < K; i++)
                        for (int32_t t = 0; t < n; t++) {
                                /* per element ((0 + s_0 c_0) + s_1 c_1 ...) + s_i, streams in the inner loop */
                                const float *c = st->coef + (size_t)t * K * K + (size_t)i * K;
                                float *out = PRED(i) + t * E, c0 = c[0];
                                for (int64_t e = 0; e < E; e++)
                                        out[e] = 0.0f + S(0)[t * E + e] * c0;
                                for (int32_t j = 1; j < K; j++) {
                                        const float cj = c[j];
                                        for (int64_t e = 0; e < E; e++)
                                                out[e] += S(j)[t * E + e] * cj;
                                }
                                for (int64_t e = 0; e < E; e++)
                                        out[e] += S(i)[t * E + e];
                        }

                /* ---- attention (scale 1: q/k norms take its place), and
                 * LAuReL's first product, on the same input ---- */
                ops_rmsnorm(tp, st->h, act, l->attn_norm, n, E, eps);
                const weight *qkv[4] = { &l->wq };
                float *qkv_out[4] = { st->q };
                int n_qkv = 1;
                if (own) {
                        qkv[n_qkv] = &l->wk;
                        qkv_out[n_qkv++] = st->k;
                        qkv[n_qkv] = &l->wv;
                        qkv_out[n_qkv++] = st->v;
                }
                qkv[n_qkv] = &l->laurel_l;
                qkv_out[n_qkv++] = st->lr;
                if ((r = gemma_matmul_multi(mm, qkv, n_qkv, st->h, n, qkv_out, st->tmp)) < 0)
                        return r;
                ops_rmsnorm(tp, st->q, st->q, l->q_norm, (int64_t)n * hp->n_head, hp->head_dim, eps);
                if (own) {
                        ops_rmsnorm(tp, st->k, st->k, l->k_norm, (int64_t)n * hp->n_head_kv, hp->head_dim, eps);
                        ops_rmsnorm(tp, st->v, st->v, NULL, (int64_t)n * hp->n_head_kv, hp->head_dim, eps);
                }
                ops_attend(tp, &(attend_params){ .rope = rp, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv,
                                                 .head_dim = hp->head_dim, .il = il, .kv_il = l->kv_src,
                                                 .window = l->local ? w->window : 0, .q_scale = 1.0f,
                                                 .scale = 1.0f },
                           kvs, pos, n_ss, st->q, own ? st->k : NULL, st->v, n, st->att, st->att_scratch);

                /* ---- LAuReL: lau = h + rmsnorm(Lr Ll h) * n_laurel, its
                 * second product in Wo's dispatch (a 74-139 KiB product
                 * alone streamed at half the rate of a large one; both
                 * moves, E2B, tokens alternating: about 1.004) ---- */
                const weight *wo_lr[] = { &l->wo, &l->laurel_r };
                const float *wo_lr_in[] = { st->att, st->lr };
                float *wo_lr_out[] = { st->al, st->lau };
                if ((r = gemma_matmul_multi_x(mm, wo_lr, wo_lr_in, 2, n, wo_lr_out, st->tmp)) < 0)
                        return r;
                ops_rmsnorm(tp, st->lau, st->lau, l->laurel_norm, n, E, eps);
                ops_add_rmsnorm(tp, st->lau, st->h, NULL, NULL, n, E, eps);

                /* al = (act + rmsnorm(att Wo^T) * post_attn_norm + lau) / sqrt(2) */
                ops_rmsnorm(tp, st->al, st->al, l->post_attn_norm, n, E, eps);
                for (int64_t i = 0; i < (int64_t)n * E; i++)
                        al[i] = ((al[i] + act[i]) + lau[i]) * (1.0f / sqrtf(2.0f));

                /* ---- feed-forward, gaussian top-k on sparse layers ---- */
                ops_rmsnorm(tp, st->h, st->al, l->ffn_norm, n, E, eps);
                if (l->sparse) { /* the top-k needs the whole gate row */
                        const weight *gu[] = { &l->w_up, &l->w_gate };
                        float *gu_out[] = { st->up, st->ff };
                        if ((r = gemma_matmul_multi(mm, gu, 2, st->h, n, gu_out, st->tmp)) < 0)
                                return r;
                        for (int32_t t = 0; t < n; t++)
                                gemma_gaussian_topk(st->ff + (size_t)t * l->n_ff, l->n_ff, l->std_mul);
                        gemma_ops_geglu(tp, st->ff, st->up, (int64_t)n * l->n_ff);
                } else if ((r = gemma_matmul_geglu(mm, &l->w_gate, &l->w_up, st->h, n, st->ff, st->up, st->tmp)) < 0)
                        return r;
                r = gemma_matmul(mm, &l->w_down, st->ff, n, st->h, st->tmp);
                if (r < 0)
                        return r;
                ops_rmsnorm(tp, st->h, st->h, l->post_ffn_norm, n, E, eps);
                ops_add_rmsnorm(tp, st->al, st->h, NULL, NULL, n, E, eps); /* al = out */

                /* ---- AltUp correct: s_i = pred_i + (Cc mod + 1)_i (out - pred_a) ---- */
                if ((r = router(s, l, st->al, n, st->mod)) < 0 ||
                    (r = gemma_matmul(mm, &l->corr_coef, st->mod, n, st->coef, st->tmp)) < 0)
                        return r;
                for (int64_t i = 0; i < (int64_t)n * E; i++)
                        y[i] = al[i] - act[i]; /* innovation */
                for (int32_t i = 0; i < K; i++)
                        for (int32_t t = 0; t < n; t++) {
                                float cc = st->coef[(size_t)t * K + i] + 1.0f;
                                for (int64_t e = 0; e < E; e++)
                                        S(i)[t * E + e] = y[t * E + e] * cc + PRED(i)[t * E + e];
                        }

                /* ---- per-layer input: s_i += rmsnorm(Pp (gelu(Gp (s_a * s_corr)) * PLI[l])) ---- */
                const float *corr_scale = l->corr_scale;
                for (int32_t t = 0; t < n; t++)
                        for (int64_t e = 0; e < E; e++)
                                y[t * E + e] = S(a)[t * E + e] * corr_scale[e];
                r = gemma_matmul_gelu_mul(mm, &l->ple_gate, st->y, n, st->g, pli + (int64_t)l->orig * P, LP, st->tmp);
                if (r < 0)
                        return r;
                r = gemma_matmul(mm, &l->ple_proj, st->g, n, st->y, st->tmp);
                if (r < 0)
                        return r;
                ops_rmsnorm(tp, st->y, st->y, l->ple_post_norm, n, E, eps);
                for (int32_t k = 1; k < K; k++)
                        ops_add_rmsnorm(tp, S(k), st->y, NULL, NULL, n, E, eps);
        }

        if (!logits)
                return 0;

        /* ---- merge the streams: x = (s_0 + sum_k Z_k s_k matched to |s_a|) / K ---- */
        int32_t t0 = all_logits ? 0 : n - 1, rows = n - t0;
        for (int32_t k = 1; k < K; k++) {
                r = altup_project(s, &w->altup_unembd[k - 1], S(k) + t0 * E, S(a) + t0 * E, rows, PRED(k));
                if (r < 0)
                        return r;
        }
        for (int64_t i = 0; i < (int64_t)rows * E; i++) {
                float x = S(0)[t0 * E + i];
                for (int32_t k = 1; k < K; k++)
                        x += PRED(k)[i];
                al[i] = x * (1.0f / (float)K);
        }
        ops_rmsnorm(tp, st->h, st->al, w->output_norm, rows, E, eps);
        return gemma_matmul_softcap(mm, &w->output, st->h, rows, logits, st->tmp, w->softcap);
#undef S
#undef PRED
}

/* What the load-time copy of the weights holds (arch_ops.copied_bytes):
 * nothing of the per-layer-embedding table (read from the file with
 * pread) nor of the layers a MatFormer selection skips (never read: a copy
 * of them would hold the parent model's memory), and of a kept layer that
 * the selection narrows to F' units the first F' rows of gate and up (the
 * first F' columns of down are spread over its rows: it is kept whole). */
static uint64_t gemma3n_copied_bytes(const gguf_file *g, const gguf_tensor *t, const char *matformer) {
        _cleanup_(matformer_donep) gemma_matformer mf = {};
        gguf_str name = t->name;
        uint32_t n_layer;
        unsigned layer;
        int end = 0;

        if (gguf_str_eq(name, "per_layer_token_embd.weight"))
                return 0;
        if (!matformer || !*matformer || name.len > 64 ||
            gguf_get_u32(g, "gemma3n.block_count", &n_layer) < 0 || n_layer < 1 || n_layer > GEMMA_MAX_LAYER)
                return t->nbytes;
        char buf[65];
        memcpy(buf, name.p, name.len);
        buf[name.len] = 0;
        if (sscanf(buf, "blk.%u.%n", &layer, &end) != 1 || end == 0 || layer >= n_layer)
                return t->nbytes;
        /* a bad selection fails the load later, with its message */
        if (gemma_matformer_parse(matformer, (int32_t)n_layer, &mf, NULL, 0) < 0)
                return t->nbytes;
        for (int32_t i = 0; i < mf.n_layer; i++) {
                if (mf.layer[i] != (int32_t)layer)
                        continue;
                int64_t rows = t->ne[1], keep = mf.n_ff[i];
                bool narrowed = (strcmp(buf + end, "ffn_gate.weight") == 0 || strcmp(buf + end, "ffn_up.weight") == 0) &&
                                t->n_dims == 2 && keep > 0 && keep < rows;
                return narrowed ? t->nbytes / (uint64_t)rows * (uint64_t)keep : t->nbytes;
        }
        return 0;
}

static int gemma3n_forward(engine_session *s, const int32_t *tokens, int32_t n, bool all_logits, float *logits) {
        return gemma3n_run(s, &s, 1, tokens, n, all_logits, logits);
}

static int gemma3n_forward_batch(engine_session *const *ss, const int32_t *tokens, int32_t n, float *logits) {
        engine_session *s = gemma_batch_owner(ss, n);

        if (!s)
                return -E2BIG;
        return gemma3n_run(s, ss, n, tokens, n, true, logits);
}

const arch_ops arch_gemma3n = {
        .name = "gemma3n",
        .load = gemma3n_load,
        .unload = gemma3n_unload,
        .session_init = gemma3n_session_init,
        .session_done = gemma3n_session_done,
        .forward = gemma3n_forward,
        .forward_batch = gemma3n_forward_batch,
        .copied_bytes = gemma3n_copied_bytes,
};
