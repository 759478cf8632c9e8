/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/worker/worker-batch.h"
#include "macro.h"

int worker_batch_init(worker_batch *b, int32_t n_vocab) {
        const char *e = getenv("SOTTO_WORKER_BATCH");

        *b = (worker_batch){ .n_vocab = n_vocab, .enabled = !(e && strcmp(e, "0") == 0) };
        if (!b->enabled || n_vocab <= 0)
                return 0;
        /* 16 rows of a 128k vocabulary: 8 MiB, only touched by as many rows
         * as requests decode at once. */
        b->logits = malloc(sizeof(float) * (size_t)n_vocab * ENGINE_BATCH_MAX);
        if (!b->logits)
                return -ENOMEM;
        return 0;
}

void worker_batch_done(worker_batch *b) {
        free(b->logits);
        b->logits = NULL;
}

int worker_batch_eval(worker_batch *b, engine_session *const *ss, const int32_t *tokens, int32_t n) {
        if (!b->logits || n < 2 || n > ENGINE_BATCH_MAX)
                return -EINVAL;
        int r = engine_session_eval_batch(ss, tokens, n, b->logits);
        if (r >= 0) {
                b->steps++;
                b->rows += (uint64_t)n;
                b->total.decode_steps++;
                b->total.batched_steps++;
                b->total.batched_tokens += (uint64_t)n;
                b->total.max_batch = MAX(b->total.max_batch, (uint32_t)n);
        }
        return r;
}

void worker_batch_count_single(worker_batch *b) {
        b->total.decode_steps++;
}

float *worker_batch_row(worker_batch *b, int32_t i) {
        return b->logits + (size_t)i * (size_t)b->n_vocab;
}

void worker_batch_log(worker_batch *b) {
        if (b->steps == 0)
                return;
        fprintf(stderr, "sotto-worker: continuous batching: %" PRIu64 " batched steps, %" PRIu64
                        " tokens, mean batch size %.2f\n",
                b->steps, b->rows, (double)b->rows / (double)b->steps);
        b->steps = b->rows = 0;
}
