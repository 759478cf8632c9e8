/* SPDX-License-Identifier: MIT */
/* The public API of sotto's inference engine.
 *
 * A model is opaque and read-only once loaded: its weights stay in the
 * mapped file, so any number of sessions (and processes) share them.  A
 * session is the mutable per-conversation state (KV cache, position).  A
 * sampler turns logits into a token.  Nothing here exits or asserts on bad
 * input: every failure is a -errno with a sentence in err. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "tokenizer.h"

typedef struct engine_model engine_model;
typedef struct engine_session engine_session;
typedef struct engine_sampler engine_sampler;

/* ---- model ---- */

typedef struct engine_model_params {
        int n_threads;         /* 0: number of online CPUs; tiny models use fewer
                                * (one per MiB of weights read per token) */
        const char *matformer; /* gemma3n: nested sub-model selection, NULL = full */
} engine_model_params;

void engine_model_default_params(engine_model_params *p);
/* fd: the GGUF file; it is mapped read-only and shared (the fd may be closed
 * afterwards). */
int engine_model_load_fd(int fd, const engine_model_params *p, engine_model **ret, char *err, size_t errlen);
int engine_model_load_path(const char *path, const engine_model_params *p, engine_model **ret, char *err,
                           size_t errlen);
void engine_model_free(engine_model *m);

const char *engine_model_arch(const engine_model *m); /* "llama", "gemma3", "gemma3n" */
const char *engine_model_name(const engine_model *m); /* general.name, or the architecture */
int32_t engine_model_n_vocab(const engine_model *m);
int32_t engine_model_n_ctx_train(const engine_model *m);
const tokenizer *engine_model_tokenizer(const engine_model *m);
/* Bytes of weights read for one generated token (for the bandwidth bound). */
uint64_t engine_model_bytes_per_token(const engine_model *m);
/* Threads the model's forward passes run on. */
int engine_model_n_threads(const engine_model *m);
/* The path ("vec", "sgemm", "int8") the last batched product with weights
 * of this type took (matmul.h), for sotto-bench. */
const char *engine_model_matmul_path_name(const engine_model *m, uint32_t type);

/* ---- session ---- */

typedef bool (*engine_abort_fn)(void *userdata); /* true: stop now */

typedef struct engine_session_params {
        int32_t n_ctx;                /* 0: the model's training context, capped at 4096 */
        engine_abort_fn abort_cb;     /* polled between layers; NULL = never */
        void *abort_userdata;
        /* Sliding-window layers keep every position (as global ones do)
         * instead of a ring of about window + 512: more memory, and a rewind
         * is then always possible. */
        bool kv_full;
} engine_session_params;

void engine_session_default_params(engine_session_params *p);
int engine_session_new(const engine_model *m, const engine_session_params *p, engine_session **ret, char *err,
                       size_t errlen);
void engine_session_free(engine_session *s);

int32_t engine_session_n_past(const engine_session *s);
int32_t engine_session_n_ctx(const engine_session *s);
/* Bytes of cached keys and values its attention has read so far (the
 * part of a generated token's reads that grows with the context; see
 * engine_model_bytes_per_token for the weights'). */
uint64_t engine_session_kv_bytes_read(const engine_session *s);
/* Forget everything after position n_past (0 <= n_past <= current).
 * -ESTALE (the session unchanged) when a sliding-window layer's ring has
 * overwritten keys that position needs, i.e. more than about 512 positions
 * were evaluated after it; rewinding to 0 always works (kv_full avoids
 * the case). */
int engine_session_rewind(engine_session *s, int32_t n_past);

/* Run tokens through the model, appending them to the KV cache.  logits:
 * NULL, or room for n_vocab floats (the last position) or, with all_logits,
 * n_tokens * n_vocab floats.  -ENOSPC when the context is full (nothing is
 * appended), -ECANCELED when the abort callback fired (the session is
 * rewound to where it was, or to 0 when a sliding-window ring no longer
 * holds what that position needs: see engine_session_rewind). */
int engine_session_eval(engine_session *s, const int32_t *tokens, int32_t n_tokens, bool all_logits, float *logits);

/* Continuous batching: advance n sessions of one model by one token each
 * (tokens[i] for ss[i]) in a single pass over the weights, which decoding
 * reads once per step whatever n is; logits: room for n * n_vocab floats,
 * row i for session i.  The same logits as n engine_session_eval calls
 * (to float rounding).  1 <= n <= ENGINE_BATCH_MAX, the sessions distinct;
 * -ENOSPC when one of them is full, -ECANCELED when the abort callback of
 * one fired (no session is advanced then). */
#define ENGINE_BATCH_MAX 16
int engine_session_eval_batch(engine_session *const *ss, const int32_t *tokens, int32_t n, float *logits);

/* ---- input embeddings (images) ----
 * An image's soft tokens (vision.h: vision_encode) enter the prompt as rows
 * of input embeddings in place of token embeddings.  For Gemma 3 the
 * prompt is ... "<start_of_image>" [256 rows] "<end_of_image>" ...: eval the
 * text up to and including <start_of_image>, then the rows with
 * bidirectional = true (the image's positions see each other both ways, as
 * llama.cpp decodes Gemma 3 images), then the rest of the text from
 * <end_of_image> on.  The rows go in as they are: Gemma scales only looked
 * up token embeddings by sqrt(n_embd). */

/* Width of an input embedding row: the text model's hidden size (a vision
 * projector's vision_model_n_embd_out() must equal it). */
int32_t engine_model_n_embd(const engine_model *m);
/* Run n rows of engine_model_n_embd() floats at the next positions, like
 * engine_session_eval (logits, -ENOSPC, -ECANCELED alike).  A bidirectional
 * block goes through the model in one piece: at most 512 rows (-E2BIG).
 * -EOPNOTSUPP when the architecture takes no embeddings (llama, gemma3n:
 * neither has a vision tower here), -EINVAL for a non-finite value. */
int engine_session_eval_embd(engine_session *s, const float *embd, int32_t n, bool bidirectional, bool all_logits,
                             float *logits);

/* ---- sampler ---- */

typedef struct engine_sampler_params {
        float temperature;    /* <= 0: greedy */
        int32_t top_k;        /* <= 0: off */
        float top_p;          /* >= 1: off */
        float min_p;          /* <= 0: off */
        float repeat_penalty; /* 1: off */
        int32_t repeat_last_n;
        uint64_t seed;        /* ENGINE_SEED_RANDOM: from getrandom() */
} engine_sampler_params;

#define ENGINE_SEED_RANDOM UINT64_MAX

void engine_sampler_default_params(engine_sampler_params *p);
int engine_sampler_new(const engine_sampler_params *p, int32_t n_vocab, engine_sampler **ret);
void engine_sampler_free(engine_sampler *s);
/* Record a token (prompt or generated) for the repetition penalty. */
void engine_sampler_accept(engine_sampler *s, int32_t token);
/* Pick the next token from the logits (which it may modify). */
int32_t engine_sampler_sample(engine_sampler *s, float *logits);
