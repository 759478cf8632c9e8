/* SPDX-License-Identifier: MIT */
/* The llama architecture for sotto-mkmodel: metadata as llama.cpp reads it
 * (LLM_KV_* of arch "llama") and tensors in the order convert_hf_to_gguf
 * writes them.  Shapes are GGUF ne = [in, out]. */
#include <stdio.h>

#include "mkmodel-model.h"

void mk_build_llama(mk_model *m) {
        const mk_preset *p = m->preset;
        mk_gguf *w = m->gguf;
        int64_t d = p->n_embd, q_dim = (int64_t)p->n_head * p->head_dim, kv_dim = (int64_t)p->n_head_kv * p->head_dim;

        mk_model_put_general(m);
        mk_gguf_kv_u32(w, "llama.context_length", p->n_ctx);
        mk_gguf_kv_u32(w, "llama.embedding_length", p->n_embd);
        mk_gguf_kv_u32(w, "llama.block_count", p->n_layer);
        mk_gguf_kv_u32(w, "llama.feed_forward_length", p->n_ff);
        mk_gguf_kv_u32(w, "llama.attention.head_count", p->n_head);
        mk_gguf_kv_u32(w, "llama.attention.head_count_kv", p->n_head_kv);
        mk_gguf_kv_u32(w, "llama.attention.key_length", p->head_dim);
        mk_gguf_kv_u32(w, "llama.attention.value_length", p->head_dim);
        mk_gguf_kv_f32(w, "llama.rope.freq_base", p->rope_base);
        mk_gguf_kv_u32(w, "llama.rope.dimension_count", p->head_dim);
        mk_gguf_kv_f32(w, "llama.attention.layer_norm_rms_epsilon", p->rms_eps);
        mk_gguf_kv_u32(w, "llama.vocab_size", p->n_vocab);
        mk_model_put_spm_vocab(m);

        mk_model_add_weight(m, MK_ROLE_TOKEN_EMBD, -1, "token_embd.weight", d, p->n_vocab);
        for (int i = 0; i < (int)p->n_layer; i++) {
                char n[64];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, i), n)
                mk_model_add_norm(m, NAME("attn_norm.weight"), d);
                mk_model_add_weight(m, MK_ROLE_ATTN_Q, i, NAME("attn_q.weight"), d, q_dim);
                mk_model_add_weight(m, MK_ROLE_ATTN_K, i, NAME("attn_k.weight"), d, kv_dim);
                mk_model_add_weight(m, MK_ROLE_ATTN_V, i, NAME("attn_v.weight"), d, kv_dim);
                mk_model_add_weight(m, MK_ROLE_ATTN_OUT, i, NAME("attn_output.weight"), q_dim, d);
                mk_model_add_norm(m, NAME("ffn_norm.weight"), d);
                mk_model_add_weight(m, MK_ROLE_FFN_GATE, i, NAME("ffn_gate.weight"), d, p->n_ff);
                mk_model_add_weight(m, MK_ROLE_FFN_UP, i, NAME("ffn_up.weight"), d, p->n_ff);
                mk_model_add_weight(m, MK_ROLE_FFN_DOWN, i, NAME("ffn_down.weight"), p->n_ff, d);
#undef NAME
        }
        mk_model_add_norm(m, "output_norm.weight", d);
        if (!p->tied_output)
                mk_model_add_weight(m, MK_ROLE_OUTPUT, -1, "output.weight", d, p->n_vocab);
}
