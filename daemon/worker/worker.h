/* SPDX-License-Identifier: MIT */
/* sotto-worker's main loop: requests from sottod over the framed protocol,
 * one decoding step at a time for each active request in turn (so every
 * caller advances at the same pace; the decoding ones together in one
 * batched step, worker-batch.h), text streamed back as it is produced. */
#pragma once

#include <stdint.h>

#include "daemon/common/wire.h"
#include "engine.h"

typedef struct worker_config {
        int32_t n_ctx;      /* per request / chat */
        uint32_t max_active; /* requests at once; beyond: Busy */
        uint32_t max_chats;
        struct worker_vision *vision; /* the mmproj, NULL: no images (worker-image.h) */
        /* speech recognition (worker-audio.c): the model or NULL, and why */
        const struct whisper_model *whisper;
        const char *whisper_error;
        int32_t n_threads;
        /* the derived-weights memfd this worker built, to hand to sottod
         * (-1: none; weights-arena.h) */
        int weights_fd;
        uint64_t weights_size;
        uint32_t weights_blocks;
} worker_config;

/* Serves on conn until sottod closes it (returns 0) or on a protocol error
 * (-errno). */
int worker_run(engine_model *model, const worker_config *cfg, int sock_fd);
