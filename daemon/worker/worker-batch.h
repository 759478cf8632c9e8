/* SPDX-License-Identifier: MIT */
/* Continuous batching in the worker: the requests that are decoding (prompt
 * done, one token a step) advance together, one token each in one pass over
 * the weights (engine_session_eval_batch), each sampled from its own row of
 * logits.  Decoding reads every weight once per step whatever the number of
 * rows, so n requests together cost little more than one.
 * SOTTO_WORKER_BATCH=0 in the worker's environment turns it off (for
 * comparisons: tests/bench/service.sh). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "daemon/common/wire.h"
#include "engine.h"

typedef struct worker_batch {
        bool enabled;
        int32_t n_vocab;
        float *logits; /* ENGINE_BATCH_MAX rows of n_vocab */
        /* since the last worker_batch_log(): batched steps and the tokens
         * they decoded */
        uint64_t steps, rows;
        /* since the worker started, for sottod's statistics (WIRE_STATS):
         * every decoding pass, batched or not */
        wire_stats total;
} worker_batch;

int worker_batch_init(worker_batch *b, int32_t n_vocab);
void worker_batch_done(worker_batch *b);

/* tokens[i] into ss[i] for 2 <= n <= ENGINE_BATCH_MAX distinct sessions;
 * row i of the logits then is worker_batch_row(b, i).  Returns what
 * engine_session_eval_batch returns (-ECANCELED: no session advanced). */
int worker_batch_eval(worker_batch *b, engine_session *const *ss, const int32_t *tokens, int32_t n);
float *worker_batch_row(worker_batch *b, int32_t i);
/* A decoding pass of one request alone (not through worker_batch_eval). */
void worker_batch_count_single(worker_batch *b);

/* One line on stderr (sottod's log) with the steps and the mean batch size
 * since the last line, when there were any; called when the worker goes
 * idle. */
void worker_batch_log(worker_batch *b);
