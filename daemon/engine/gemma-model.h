/* SPDX-License-Identifier: MIT */
/* What arch-gemma3.c and arch-gemma3n.c read alike from the GGUF: the
 * common hyperparameters and the per-layer attention schedule. */
#pragma once

#include <stdbool.h>

#include "model-ops.h"
#include "model.h"

/* Sanity bounds: far above any real model, low enough that no product of
 * them overflows a size_t or an int passed to BLAS. */
#define GEMMA_MAX_EMBD (1 << 16)
#define GEMMA_MAX_LAYER 1024
#define GEMMA_MAX_HEAD 1024
#define GEMMA_MAX_HEAD_DIM 1024
#define GEMMA_MAX_FF (1 << 18)

/* Reads into m->hp: embedding_length, block_count, head counts, head_dim
 * (attention.key_length, default n_embd / n_head), context_length, RMS
 * epsilon, rope.freq_base (global layers), n_vocab from the tokenizer.
 * n_ff is left to the caller (gemma_get_n_ff). */
int gemma_read_hparams(engine_model *m, char *err, size_t errlen);

/* feed_forward_length of layer il: a scalar, or an array with one entry
 * per layer (Gemma 3n). */
int gemma_get_n_ff(engine_model *m, int32_t il, int32_t *ret, char *err, size_t errlen);

/* An optional float key; *ret keeps its default when absent. */
int gemma_get_f32_opt(engine_model *m, const char *suffix, float *ret, char *err, size_t errlen);

/* Element il of an optional float array key (-ENOENT when absent). */
int gemma_get_f32_at(engine_model *m, const char *suffix, int32_t il, float *ret);

/* Whether layer il attends through the sliding window: from
 * attention.sliding_window_pattern when present (true = local), else
 * every layer but each period-th one ((il + 1) % period == 0 is global). */
bool gemma_layer_is_local(engine_model *m, int32_t il, int32_t period);

/* Carve one aligned allocation into n float buffers of the given sizes
 * (each rounded up to a cache line). */
int gemma_alloc_floats(void **mem, size_t n, const size_t *sizes, float **const *ptrs);

/* ---- a batch of sessions (continuous batching) ---- */

/* The session of a batch whose scratch serves the whole batch: the one
 * whose attention needs the most scratch per thread (largest context, a
 * ring's gather buffer); NULL when n rows do not fit its scratch. */
engine_session *gemma_batch_owner(engine_session *const *ss, int32_t n);

/* kv[i], pos[i]: the cache and position of ss[i] (ops_attend's arrays). */
void gemma_batch_kv(engine_session *const *ss, int32_t n, kv_cache **kv, int32_t *pos);

/* Bind a 3-D tensor of n stacked matrices (GGUF ne = {n_in, n_out, n}) as
 * n weights, slices of the mapping. */
int gemma_bind_stack(const engine_model *m, weight *w, int64_t n, int64_t n_in, int64_t n_out, char *err,
                     size_t errlen, const char *name);
