/* SPDX-License-Identifier: MIT */
/* Model architectures: each one is a const struct of function pointers in
 * its own file (arch-llama.c, ...), listed once in model.c's arch_table.
 * Adding an architecture is a new file plus one table entry.
 *
 * The loader (model.c) opens the GGUF, reads general.architecture, loads
 * the tokenizer and picks the entry whose name matches; everything that
 * depends on the architecture happens through these calls. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef struct engine_model engine_model;
typedef struct engine_session engine_session;

typedef struct arch_ops {
        const char *name; /* general.architecture */

        /* Read hyperparameters into m->hp, bind the weights (pointers into
         * the model's bytes through model_bind_weight and friends, no copies
         * of their own) into m->arch_data, set m->bytes_per_token.
         * The tokenizer is loaded already (m->tok). */
        int (*load)(engine_model *m, char *err, size_t errlen);
        void (*unload)(engine_model *m);

        /* Size the KV cache (s->kv, for s->n_ctx positions) and allocate the
         * scratch for s->n_batch tokens into s->arch_state.  Nothing is
         * allocated later: the decode loop never calls malloc. */
        int (*session_init)(engine_session *s, char *err, size_t errlen);
        void (*session_done)(engine_session *s);

        /* Run n tokens (n <= s->n_batch) at positions s->n_past ...
         * s->n_past + n - 1, writing their K/V into the cache (s->n_past is
         * not advanced here).  logits: NULL, or n_vocab floats for the last
         * token, or with all_logits n * n_vocab floats.  Returns 0,
         * -ECANCELED when the abort callback fired, or another -errno. */
        int (*forward)(engine_session *s, const int32_t *tokens, int32_t n, bool all_logits, float *logits);
        /* The same with n rows of input embeddings (n_embd floats each) in
         * place of the tokens' (engine_session_eval_embd); bidirectional:
         * the n rows attend to each other both ways.  NULL: the
         * architecture takes no embeddings. */
        int (*forward_embd)(engine_session *s, const float *embd, int32_t n, bool bidirectional, bool all_logits,
                            float *logits);
        /* Continuous batching: one token for each of n distinct sessions
         * (tokens[i] at ss[i]->n_past, each with its own KV cache) in one
         * pass over the weights; logits: n rows of n_vocab.  n_past is not
         * advanced here.  NULL: the sessions are evaluated one by one. */
        int (*forward_batch)(engine_session *const *ss, const int32_t *tokens, int32_t n, float *logits);

        /* NULL (all of every tensor), or how many leading bytes of tensor t
         * the loader's copy of the weights holds (weights-copy.h): none of
         * a tensor the architecture reads from the file in place (Gemma
         * 3n's per-layer-embedding table) or never reads with this MatFormer
         * selection (engine_model_params.matformer, may be NULL), the first
         * rows only of one the selection narrows, else t->nbytes.  The same
         * file and selection must give the same answers. */
        uint64_t (*copied_bytes)(const gguf_file *g, const gguf_tensor *t, const char *matformer);
} arch_ops;

extern const arch_ops arch_llama;
extern const arch_ops arch_gemma3;
extern const arch_ops arch_gemma3n;

/* The entry for general.architecture, or NULL. */
const arch_ops *arch_find(const char *name, size_t len);
