/* SPDX-License-Identifier: MIT */
/* Inside the engine: the loaded model and the session, shared by the
 * loader (model.c), the architectures (arch-*.c) and the session code.
 * Nothing outside daemon/engine/ includes this; the public API is engine.h. */
#pragma once

#include <pthread.h>

#include "arch.h"
#include "engine.h"
#include "kv-cache.h"
#include "macro.h"
#include "matmul.h"
#include "weights-copy.h"

/* Hyperparameters every decoder-only architecture has.  Per-architecture
 * extras live in the architecture's own weights struct. */
typedef struct model_hparams {
        int32_t n_vocab;
        int32_t n_ctx_train;
        int32_t n_embd;
        int32_t n_layer;
        int32_t n_head;
        int32_t n_head_kv;
        int32_t head_dim;  /* attention.key_length, default n_embd / n_head */
        int32_t n_rot;     /* rope.dimension_count, default head_dim */
        int32_t n_ff;
        float rope_freq_base;
        float norm_eps;
} model_hparams;

struct engine_model {
        gguf_file *gguf;
        tokenizer *tok;
        const arch_ops *arch;
        char *arch_name;
        char *name;
        model_hparams hp;
        void *arch_data;           /* the architecture's weights, arch->unload frees */
        uint64_t bytes_per_token;  /* weights read per generated token */
        /* engine_model_params.matformer during arch->load only; an
         * architecture that applies it sets matformer_applied. */
        const char *matformer;
        bool matformer_applied;

        /* Threads and matmul scratch.  One evaluation at a time per model:
         * sessions of one model take turns (the lock), so the thread pool is
         * never shared by two forward passes. */
        int n_threads;
        matmul_ctx *mm;
        pthread_mutex_t lock;

        /* The weights copied at load (weights-copy.h): gguf is open on
         * copy.image then, and the tensors the architecture's copied_bytes
         * leaves out whole are read from copy.file (model_tensor_data).
         * copy.image NULL: gguf reads the file mapping. */
        weights_copy copy;
};

struct engine_session {
        const engine_model *model;
        engine_session_params params;
        int32_t n_ctx;
        int32_t n_past;
        int32_t n_batch; /* tokens per forward chunk: scratch is sized for it */
        kv_cache kv;
        void *arch_state; /* the architecture's scratch, arch->session_done frees */
};

/* ---- metadata helpers (keys are "<arch>.<suffix>") ---- */

/* -ENOENT when absent (then *ret keeps its default when !required). */
int model_get_u32(const engine_model *m, const char *suffix, bool required, uint32_t *ret, char *err,
                  size_t errlen);
int model_get_f32(const engine_model *m, const char *suffix, bool required, float *ret, char *err, size_t errlen);

/* Bind a tensor as a weight matrix [n_out][n_in] (GGUF ne = {n_in, n_out}),
 * checking its shape and that we have kernels for its type.  A 1-D tensor
 * is bound with n_out = 1 and must be F32 (norm weights).  Absent and
 * optional: returns 0 with w->data == NULL. */
int model_bind_weight(const engine_model *m, weight *w, bool optional, int64_t n_in, int64_t n_out, char *err,
                      size_t errlen, const char *fmt, ...) _printf_(8, 9);
/* Where the bytes of tensor t are read: t->data, or for a tensor that the
 * weights copy left out whole (arch->copied_bytes), its place in the file
 * mapping.  Every weight binding goes through it. */
const void *model_tensor_data(const engine_model *m, const gguf_tensor *t);
/* A 1-D F32 vector of n elements (norm weights). */
int model_bind_vector(const engine_model *m, const float **v, int64_t n, char *err, size_t errlen,
                      const char *fmt, ...) _printf_(6, 7);
