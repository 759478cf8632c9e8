/* SPDX-License-Identifier: MIT */
/* The gemma3 and gemma3n architectures for sotto-mkmodel: metadata keys and
 * tensor names as llama.cpp's converter writes them (specs/gemma3n-text.md
 * §6), with the published constants of Gemma 3 1B and Gemma 3n E2B / E4B
 * that the preset table does not carry.
 *
 * Types: the file type's choice, except where a row does not fit its block
 * (Gemma 3 1B's 1152-wide rows, LAuReL's 64-wide ones), where llama.cpp
 * falls back to another type: we take Q8_0 (F32 below 32), and the AltUp
 * coefficient matrices (rows of 4), always F32. */
#include <stdio.h>

#include "mkmodel-model.h"
#include "mkmodel-quant.h"
#include "tensor-type.h"

#define GEMMA_SWA 512
#define GEMMA3N_PLE 256
#define GEMMA3N_ALTUP 4
#define GEMMA3N_LAUREL 64
#define GEMMA3N_SPARSE_LAYERS 10
#define GEMMA3N_OWN_KV 20

static uint32_t fit_type(uint32_t type, int64_t ne0) {
        if (ne0 % mk_type_block(type) == 0)
                return type;
        return ne0 % QK8_0 == 0 ? TYPE_Q8_0 : TYPE_F32;
}

static void weight(mk_model *m, mk_role role, int layer, const char *name, int64_t ne0, int64_t ne1, int64_t ne2) {
        uint32_t type = fit_type(mk_model_type_for(m, role, layer, ne0), ne0);
        mk_model_add_typed(m, name, ne2 > 1 ? 3 : 2, ne0, ne1, ne2, type, MK_INIT_MATRIX);
}

/* Gemma's vocabulary layout: <pad> <eos> <bos> <unk> <mask>, unused
 * control slots up to <start_of_turn> (105) and <end_of_turn> (106), the
 * 256 byte tokens, then pieces "▁w0", "▁w1", ... */
static void put_gemma_vocab(mk_model *m) {
        mk_gguf *w = m->gguf;
        uint32_t n = m->preset->n_vocab;
        const uint32_t first_byte = 107, first_piece = first_byte + 256;
        static const char *const specials[] = { "<pad>", "<eos>", "<bos>", "<unk>", "<mask>" };
        char s[32];

        mk_gguf_kv_str(w, "tokenizer.ggml.model", "llama");
        mk_gguf_kv_str(w, "tokenizer.ggml.pre", "default");
        mk_gguf_arr_begin(w, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, n);
        for (uint32_t i = 0; i < n; i++) {
                if (i < 5)
                        mk_gguf_arr_str(w, specials[i]);
                else if (i == 105)
                        mk_gguf_arr_str(w, "<start_of_turn>");
                else if (i == 106)
                        mk_gguf_arr_str(w, "<end_of_turn>");
                else if (i < first_byte) {
                        snprintf(s, sizeof s, "<unused%u>", i - 5);
                        mk_gguf_arr_str(w, s);
                } else if (i < first_piece) {
                        snprintf(s, sizeof s, "<0x%02X>", i - first_byte);
                        mk_gguf_arr_str(w, s);
                } else {
                        snprintf(s, sizeof s, "\xe2\x96\x81w%u", i - first_piece);
                        mk_gguf_arr_str(w, s);
                }
        }
        mk_gguf_arr_begin(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, n);
        for (uint32_t i = 0; i < n; i++)
                mk_gguf_arr_f32(w, i < first_piece ? 0.0f : -(float)(i - first_piece));
        /* 1 normal, 2 unknown, 3 control, 5 unused, 6 byte */
        mk_gguf_arr_begin(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, n);
        for (uint32_t i = 0; i < n; i++)
                mk_gguf_arr_i32(w, i == 3 ? 2 : i < 5 || i == 105 || i == 106 ? 3 : i < first_byte ? 5 :
                                   i < first_piece ? 6 : 1);
        mk_gguf_kv_u32(w, "tokenizer.ggml.bos_token_id", 2);
        mk_gguf_kv_u32(w, "tokenizer.ggml.eos_token_id", 1);
        mk_gguf_kv_u32(w, "tokenizer.ggml.unknown_token_id", 3);
        mk_gguf_kv_u32(w, "tokenizer.ggml.padding_token_id", 0);
        mk_gguf_kv_bool(w, "tokenizer.ggml.add_bos_token", true);
        mk_gguf_kv_bool(w, "tokenizer.ggml.add_eos_token", false);
        mk_gguf_kv_bool(w, "tokenizer.ggml.add_space_prefix", false);
}

/* The keys both architectures share, under their prefix. */
static void put_common(mk_model *m, const char *a) {
        const mk_preset *p = m->preset;
        mk_gguf *w = m->gguf;
        char k[128];

#define KEY(s) (snprintf(k, sizeof k, "%s." s, a), k)
        mk_gguf_kv_u32(w, KEY("context_length"), p->n_ctx);
        mk_gguf_kv_u32(w, KEY("embedding_length"), p->n_embd);
        mk_gguf_kv_u32(w, KEY("block_count"), p->n_layer);
        mk_gguf_kv_u32(w, KEY("attention.head_count"), p->n_head);
        mk_gguf_kv_u32(w, KEY("attention.head_count_kv"), p->n_head_kv);
        mk_gguf_kv_u32(w, KEY("attention.key_length"), p->head_dim);
        mk_gguf_kv_u32(w, KEY("attention.value_length"), p->head_dim);
        mk_gguf_kv_f32(w, KEY("attention.layer_norm_rms_epsilon"), p->rms_eps);
        mk_gguf_kv_f32(w, KEY("rope.freq_base"), p->rope_base);
        mk_gguf_kv_u32(w, KEY("attention.sliding_window"), GEMMA_SWA);
#undef KEY
}

/* Attention and feed-forward tensors of one layer (both architectures). */
static void put_block(mk_model *m, int i, bool gemma3n) {
        const mk_preset *p = m->preset;
        int64_t d = p->n_embd, q_dim = (int64_t)p->n_head * p->head_dim, kv_dim = (int64_t)p->n_head_kv * p->head_dim;
        char n[64];

#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, i), n)
        mk_model_add_norm(m, NAME("attn_norm.weight"), d);
        weight(m, MK_ROLE_ATTN_Q, i, NAME("attn_q.weight"), d, q_dim, 1);
        weight(m, MK_ROLE_ATTN_K, i, NAME("attn_k.weight"), d, kv_dim, 1);
        weight(m, MK_ROLE_ATTN_V, i, NAME("attn_v.weight"), d, kv_dim, 1);
        weight(m, MK_ROLE_ATTN_OUT, i, NAME("attn_output.weight"), q_dim, d, 1);
        mk_model_add_norm(m, NAME("attn_q_norm.weight"), p->head_dim);
        mk_model_add_norm(m, NAME("attn_k_norm.weight"), p->head_dim);
        mk_model_add_norm(m, NAME("post_attention_norm.weight"), d);
        mk_model_add_norm(m, NAME("ffn_norm.weight"), d);
        weight(m, MK_ROLE_FFN_GATE, i, NAME("ffn_gate.weight"), d, p->n_ff, 1);
        weight(m, MK_ROLE_FFN_UP, i, NAME("ffn_up.weight"), d, p->n_ff, 1);
        weight(m, MK_ROLE_FFN_DOWN, i, NAME("ffn_down.weight"), p->n_ff, d, 1);
        mk_model_add_norm(m, NAME("post_ffw_norm.weight"), d);
        if (!gemma3n)
                return;
        weight(m, MK_ROLE_OTHER, i, NAME("inp_gate.weight"), d, GEMMA3N_PLE, 1);
        weight(m, MK_ROLE_OTHER, i, NAME("proj.weight"), GEMMA3N_PLE, d, 1);
        mk_model_add_norm(m, NAME("post_norm.weight"), d);
        mk_model_add_typed(m, NAME("altup_correct_coef.weight"), 2, GEMMA3N_ALTUP, GEMMA3N_ALTUP, 1, TYPE_F32,
                           MK_INIT_MATRIX);
        mk_model_add_norm(m, NAME("altup_correct_scale.weight"), d);
        mk_model_add_typed(m, NAME("altup_predict_coef.weight"), 2, GEMMA3N_ALTUP, GEMMA3N_ALTUP * GEMMA3N_ALTUP, 1,
                           TYPE_F32, MK_INIT_MATRIX);
        weight(m, MK_ROLE_OTHER, i, NAME("altup_router.weight"), d, GEMMA3N_ALTUP, 1);
        mk_model_add_norm(m, NAME("altup_router_norm.weight"), d);
        weight(m, MK_ROLE_OTHER, i, NAME("laurel_l.weight"), d, GEMMA3N_LAUREL, 1);
        weight(m, MK_ROLE_OTHER, i, NAME("laurel_r.weight"), GEMMA3N_LAUREL, d, 1);
        mk_model_add_norm(m, NAME("laurel_post_norm.weight"), d);
#undef NAME
}

void mk_build_gemma3(mk_model *m) {
        const mk_preset *p = m->preset;

        mk_model_put_general(m);
        put_common(m, "gemma3");
        mk_gguf_kv_u32(m->gguf, "gemma3.feed_forward_length", p->n_ff);
        put_gemma_vocab(m);

        weight(m, MK_ROLE_TOKEN_EMBD, -1, "token_embd.weight", p->n_embd, p->n_vocab, 1);
        for (int i = 0; i < (int)p->n_layer; i++)
                put_block(m, i, false);
        mk_model_add_norm(m, "output_norm.weight", p->n_embd);
        if (!p->tied_output)
                weight(m, MK_ROLE_OUTPUT, -1, "output.weight", p->n_embd, p->n_vocab, 1);
}

void mk_build_gemma3n(mk_model *m) {
        const mk_preset *p = m->preset;
        mk_gguf *w = m->gguf;
        int L = (int)p->n_layer;
        int64_t d = p->n_embd;

        mk_model_put_general(m);
        put_common(m, "gemma3n");
        mk_gguf_arr_begin(w, "gemma3n.feed_forward_length", GGUF_TYPE_INT32, (uint64_t)L);
        for (int i = 0; i < L; i++)
                mk_gguf_arr_i32(w, (int32_t)p->n_ff);
        mk_gguf_kv_f32(w, "gemma3n.rope.freq_base_swa", 10000.0f);
        mk_gguf_kv_f32(w, "gemma3n.final_logit_softcapping", 30.0f);
        mk_gguf_kv_u32(w, "gemma3n.altup.active_idx", 0);
        mk_gguf_kv_u32(w, "gemma3n.altup.num_inputs", GEMMA3N_ALTUP);
        mk_gguf_kv_u32(w, "gemma3n.embedding_length_per_layer_input", GEMMA3N_PLE);
        mk_gguf_kv_u32(w, "gemma3n.attention.shared_kv_layers", L > GEMMA3N_OWN_KV ? L - GEMMA3N_OWN_KV : 0);
        /* Φ^-1(0.95) on the sparse layers, -inf (p = 0) on the others */
        mk_gguf_arr_begin(w, "gemma3n.activation_sparsity_scale", GGUF_TYPE_FLOAT32, (uint64_t)L);
        for (int i = 0; i < L; i++)
                mk_gguf_arr_f32(w, i < GEMMA3N_SPARSE_LAYERS ? 1.6448536f : -__builtin_inff());
        mk_gguf_arr_begin(w, "gemma3n.attention.sliding_window_pattern", GGUF_TYPE_BOOL, (uint64_t)L);
        for (int i = 0; i < L; i++)
                mk_gguf_arr_bool(w, (i + 1) % 5 != 0);
        put_gemma_vocab(m);

        weight(m, MK_ROLE_TOKEN_EMBD, -1, "token_embd.weight", d, p->n_vocab, 1);
        weight(m, MK_ROLE_OTHER, -1, "per_layer_token_embd.weight", (int64_t)L * GEMMA3N_PLE, p->n_vocab, 1);
        weight(m, MK_ROLE_OTHER, -1, "altup_proj.weight", d, d, GEMMA3N_ALTUP - 1);
        weight(m, MK_ROLE_OTHER, -1, "altup_unembd_proj.weight", d, d, GEMMA3N_ALTUP - 1);
        weight(m, MK_ROLE_OTHER, -1, "per_layer_model_proj.weight", d, (int64_t)L * GEMMA3N_PLE, 1);
        mk_model_add_norm(m, "per_layer_proj_norm.weight", GEMMA3N_PLE);
        for (int i = 0; i < L; i++)
                put_block(m, i, true);
        mk_model_add_norm(m, "output_norm.weight", d);
        if (!p->tied_output)
                weight(m, MK_ROLE_OUTPUT, -1, "output.weight", d, p->n_vocab, 1);
}
