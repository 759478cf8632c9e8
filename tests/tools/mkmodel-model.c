/* SPDX-License-Identifier: MIT */
/* Presets, file types and the model plan of sotto-mkmodel. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "mkmodel-model.h"
#include "mkmodel-quant.h"
#include "tensor-type.h"

/* ---- presets ---- */

const mk_preset mk_presets[] = {
        /* The shape of the golden llama files: small enough for unit tests,
         * wide enough (256) for the K-quants. */
        {
                .name = "llama-tiny", .arch = "llama", .model_name = "sotto-random-llama-tiny",
                .n_embd = 256, .n_layer = 2, .n_head = 4, .n_head_kv = 2, .head_dim = 64,
                .n_ff = 768, .n_vocab = 512, .n_ctx = 256,
                .rope_base = 10000.0f, .rms_eps = 1e-5f, .tied_output = false,
        },
        /* Llama 3.2 1B: 16 layers, GQA 32/8 heads of 64, SwiGLU 8192, a
         * 128256-token vocabulary and tied embeddings.  (Its llama3 RoPE
         * frequency scaling, rope_freqs.weight, is left out: it does not
         * change the amount of work.) */
        {
                .name = "llama-1b", .arch = "llama", .model_name = "sotto-random-llama-3.2-1b",
                .n_embd = 2048, .n_layer = 16, .n_head = 32, .n_head_kv = 8, .head_dim = 64,
                .n_ff = 8192, .n_vocab = 128256, .n_ctx = 131072,
                .rope_base = 500000.0f, .rms_eps = 1e-5f, .tied_output = true,
        },
        /* A small gemma3n for service tests: every gemma3n part (per-layer
         * embeddings, AltUp, LAuReL, sparse and sliding layers) at a size
         * that loads and answers in milliseconds; its vocabulary has Gemma's
         * turn markers, so the chat template applies. */
        {
                .name = "gemma3n-tiny", .arch = "gemma3n", .model_name = "sotto-random-gemma-3n-tiny",
                .n_embd = 256, .n_layer = 6, .n_head = 4, .n_head_kv = 2, .head_dim = 64,
                .n_ff = 512, .n_vocab = 1024, .n_ctx = 2048,
                .rope_base = 1000000.0f, .rms_eps = 1e-6f, .tied_output = true,
        },
        /* Gemma 3 1B, Gemma 3n E2B and E4B (published configurations; the
         * Gemma-specific constants are in mkmodel-gemma.c). */
        {
                .name = "gemma3-1b", .arch = "gemma3", .model_name = "sotto-random-gemma-3-1b",
                .n_embd = 1152, .n_layer = 26, .n_head = 4, .n_head_kv = 1, .head_dim = 256,
                .n_ff = 6912, .n_vocab = 262144, .n_ctx = 32768,
                .rope_base = 1000000.0f, .rms_eps = 1e-6f, .tied_output = true,
        },
        {
                .name = "gemma3n-e2b", .arch = "gemma3n", .model_name = "sotto-random-gemma-3n-e2b",
                .n_embd = 2048, .n_layer = 30, .n_head = 8, .n_head_kv = 2, .head_dim = 256,
                .n_ff = 8192, .n_vocab = 262400, .n_ctx = 32768,
                .rope_base = 1000000.0f, .rms_eps = 1e-6f, .tied_output = true,
        },
        {
                .name = "gemma3n-e4b", .arch = "gemma3n", .model_name = "sotto-random-gemma-3n-e4b",
                .n_embd = 2048, .n_layer = 35, .n_head = 8, .n_head_kv = 2, .head_dim = 256,
                .n_ff = 16384, .n_vocab = 262400, .n_ctx = 32768,
                .rope_base = 1000000.0f, .rms_eps = 1e-6f, .tied_output = true,
        },
};
const size_t mk_n_presets = ELEMENTSOF(mk_presets);

static const mk_arch arches[] = {
        { "llama", mk_build_llama },
        { "gemma3", mk_build_gemma3 },
        { "gemma3n", mk_build_gemma3n },
};

/* ---- file types ---- */

/* Q4_K_M as llama.cpp's llama_model_quantize chooses it for a dense model
 * (src/llama-quant.cpp, llama_tensor_get_type):
 *  - the output matrix (token_embd when the output is tied to it): Q6_K;
 *  - attn_v and ffn_down of layer i: Q6_K when "more bits" are due,
 *    i < n/8 or i >= 7n/8 or (i - n/8) % 3 == 2, else Q4_K (for 16 layers:
 *    layers 0 1 4 7 10 13 14 15);
 *  - every other 2-D weight, token_embd of an untied model included: Q4_K.
 * (llama.cpp falls back to other types when a row is not a multiple of 256;
 * our presets never need that, and mk_model_plan refuses such a shape.) */
static bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static uint32_t choose_q4_k_m(const mk_model *m, mk_role role, int layer, int64_t ne0) {
        int n = (int)m->preset->n_layer;
        switch (role) {
        case MK_ROLE_OUTPUT:
                return TYPE_Q6_K;
        case MK_ROLE_TOKEN_EMBD:
                return m->preset->tied_output ? TYPE_Q6_K : TYPE_Q4_K;
        case MK_ROLE_ATTN_V:
        case MK_ROLE_FFN_DOWN:
                return use_more_bits(layer, n) ? TYPE_Q6_K : TYPE_Q4_K;
        default:
                return TYPE_Q4_K;
        }
}

const mk_ftype mk_ftypes[] = {
        { "F32", TYPE_F32, 0, NULL },
        { "F16", TYPE_F16, 1, NULL },
        { "BF16", TYPE_BF16, 32, NULL },
        { "Q8_0", TYPE_Q8_0, 7, NULL },
        { "Q4_0", TYPE_Q4_0, 2, NULL },
        { "Q4_K", TYPE_Q4_K, 14, NULL }, /* file type Q4_K_S, as llama.cpp labels a pure Q4_K file */
        { "Q5_K", TYPE_Q5_K, 16, NULL }, /* Q5_K_S */
        { "Q6_K", TYPE_Q6_K, 18, NULL },
        { "Q4_K_M", TYPE_Q4_K, 15, choose_q4_k_m },
};
const size_t mk_n_ftypes = ELEMENTSOF(mk_ftypes);

const mk_preset *mk_preset_find(const char *name) {
        for (size_t i = 0; i < mk_n_presets; i++)
                if (strcmp(mk_presets[i].name, name) == 0)
                        return &mk_presets[i];
        return NULL;
}

const mk_ftype *mk_ftype_find(const char *name) {
        for (size_t i = 0; i < mk_n_ftypes; i++)
                if (strcasecmp(mk_ftypes[i].name, name) == 0)
                        return &mk_ftypes[i];
        return NULL;
}

const mk_arch *mk_arch_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(arches); i++)
                if (strcmp(arches[i].name, name) == 0)
                        return &arches[i];
        return NULL;
}

/* ---- the plan ---- */

static mk_tensor *add_tensor3(mk_model *m, const char *name, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
                              uint32_t type, mk_init init) {
        if (m->error < 0)
                return NULL;
        if (m->n_tensors == m->cap) {
                size_t cap = MAX(m->cap * 2, (size_t)64);
                mk_tensor *t = realloc(m->tensors, cap * sizeof *t);
                if (!t) {
                        m->error = -ENOMEM;
                        return NULL;
                }
                m->tensors = t;
                m->cap = cap;
        }
        mk_tensor *t = &m->tensors[m->n_tensors];
        *t = (mk_tensor) { .n_dims = n_dims, .ne = { ne0, ne1, ne2, 1 }, .type = type, .init = init };
        snprintf(t->name, sizeof t->name, "%s", name);
        int r = mk_gguf_add_tensor(m->gguf, name, n_dims, t->ne, type, &t->offset, &t->nbytes);
        if (r < 0) {
                m->error = r;
                snprintf(m->why, sizeof m->why, "tensor %s: a row of %" PRId64 " is not a multiple of the %s block",
                         name, ne0, mk_type_name(type));
                return NULL;
        }
        m->n_tensors++;
        return t;
}

static mk_tensor *add_tensor(mk_model *m, const char *name, int n_dims, int64_t ne0, int64_t ne1, uint32_t type,
                             mk_init init) {
        return add_tensor3(m, name, n_dims, ne0, ne1, 1, type, init);
}

uint32_t mk_model_type_for(const mk_model *m, mk_role role, int layer, int64_t ne0) {
        return m->ftype->choose ? m->ftype->choose(m, role, layer, ne0) : m->ftype->type;
}

void mk_model_add_typed(mk_model *m, const char *name, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
                        uint32_t type, mk_init init) {
        add_tensor3(m, name, n_dims, ne0, ne1, ne2, type, init);
}

void mk_model_add_weight(mk_model *m, mk_role role, int layer, const char *name, int64_t ne0, int64_t ne1) {
        uint32_t type = m->ftype->choose ? m->ftype->choose(m, role, layer, ne0) : m->ftype->type;
        add_tensor(m, name, 2, ne0, ne1, type, MK_INIT_MATRIX);
}

void mk_model_add_norm(mk_model *m, const char *name, int64_t n) {
        add_tensor(m, name, 1, n, 1, TYPE_F32, MK_INIT_NORM);
}

void mk_model_put_general(mk_model *m) {
        mk_gguf_kv_str(m->gguf, "general.architecture", m->preset->arch);
        mk_gguf_kv_str(m->gguf, "general.name", m->preset->model_name);
        mk_gguf_kv_u32(m->gguf, "general.alignment", MK_GGUF_ALIGN);
        mk_gguf_kv_u32(m->gguf, "general.file_type", m->ftype->file_type);
        if (mk_type_block(m->ftype->type) > 1)
                mk_gguf_kv_u32(m->gguf, "general.quantization_version", 2);
}

/* Token types (llama_token_type): 1 normal, 2 unknown, 3 control, 6 byte. */
void mk_model_put_spm_vocab(mk_model *m) {
        mk_gguf *w = m->gguf;
        uint32_t n = m->preset->n_vocab;
        const uint32_t first_piece = 3 + 256;
        char s[32];

        mk_gguf_kv_str(w, "tokenizer.ggml.model", "llama");
        mk_gguf_arr_begin(w, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, n);
        for (uint32_t i = 0; i < n; i++) {
                if (i < 3)
                        mk_gguf_arr_str(w, (const char *[]) { "<unk>", "<s>", "</s>" }[i]);
                else if (i < first_piece) {
                        snprintf(s, sizeof s, "<0x%02X>", i - 3);
                        mk_gguf_arr_str(w, s);
                } else {
                        snprintf(s, sizeof s, "\xe2\x96\x81w%u", i - first_piece); /* ▁w<i> */
                        mk_gguf_arr_str(w, s);
                }
        }
        /* Scores: 0 for the specials and bytes, then falling, so that merges
         * prefer the earlier pieces (as in a trained SentencePiece model). */
        mk_gguf_arr_begin(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, n);
        for (uint32_t i = 0; i < n; i++)
                mk_gguf_arr_f32(w, i < first_piece ? 0.0f : -(float)(i - first_piece));
        mk_gguf_arr_begin(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, n);
        for (uint32_t i = 0; i < n; i++)
                mk_gguf_arr_i32(w, i == 0 ? 2 : i < 3 ? 3 : i < first_piece ? 6 : 1);
        mk_gguf_kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
        mk_gguf_kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
        mk_gguf_kv_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        mk_gguf_kv_bool(w, "tokenizer.ggml.add_bos_token", true);
        mk_gguf_kv_bool(w, "tokenizer.ggml.add_eos_token", false);
}

int mk_model_plan(mk_model *m, const mk_preset *p, const mk_ftype *ft, char *err, size_t errlen) {
        const mk_arch *a = mk_arch_find(p->arch);
        if (!a)
                return set_error(err, errlen, -EOPNOTSUPP, "preset %s: no builder for architecture %s", p->name,
                                 p->arch);
        *m = (mk_model) { .preset = p, .ftype = ft };
        int r = mk_gguf_new(&m->gguf);
        if (r < 0)
                return set_error(err, errlen, r, "out of memory");
        a->build(m);
        if (m->error < 0)
                return set_error(err, errlen, m->error, "preset %s in %s: %s", p->name, ft->name,
                                 m->why[0] ? m->why : "out of memory");
        return 0;
}

void mk_model_done(mk_model *m) {
        mk_gguf_free(m->gguf);
        free(m->tensors);
        *m = (mk_model) {};
}
