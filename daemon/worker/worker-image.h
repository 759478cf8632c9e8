/* SPDX-License-Identifier: MIT */
/* Images in the worker: the bytes of an EXPLAIN arrive ahead of it
 * (IMAGE_DATA frames) and are staged here; the request's first step decodes
 * them under daemon/media's limits, preprocesses them for the vision tower
 * and encodes them.  Every failure is a wire status with a sentence, never a
 * crash: the image is hostile, the other requests go on. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/common/wire.h"
#include "engine.h"
#include "vision.h"

/* ---- the vision side of the model (the mmproj file) ---- */

typedef struct worker_vision worker_vision;

/* Loads the multimodal projector from fd (before the sandbox).  fd < 0:
 * *ret = NULL, the model has no vision. */
int worker_vision_load(int fd, const engine_model *model, int n_threads, worker_vision **ret, char *err,
                       size_t errlen);
worker_vision *worker_vision_free(worker_vision *v);
/* WIRE_CAP_IMAGE when images can be answered. */
uint32_t worker_vision_caps(const worker_vision *v);

/* ---- staging ---- */

typedef struct worker_image_stage {
        uint64_t req_id;
        uint8_t *data;
        size_t len, cap;
} worker_image_stage;

/* Appends one IMAGE_DATA frame; -EBADMSG when it belongs to another request
 * than the image being staged or grows past WIRE_MAX_IMAGE (a protocol
 * violation), -ENOMEM. */
int worker_image_stage_add(worker_image_stage *s, const uint8_t *payload, size_t len);
/* Hands the staged bytes of req_id over (exactly size of them) and empties
 * the stage; -EBADMSG when they are not what the EXPLAIN announces. */
int worker_image_stage_take(worker_image_stage *s, uint64_t req_id, uint32_t size, uint8_t **ret);
void worker_image_stage_done(worker_image_stage *s);

/* ---- the first step of an EXPLAIN ---- */

/* The prompt of an EXPLAIN: tokens, where positions
 * [image_pos[i], image_pos[i] + n_image_tokens) take the rows of embd
 * (n_embd floats each) instead of token embeddings. */
typedef struct worker_explain_prompt {
        int32_t *tokens;
        size_t n_tokens;
        float *embd;           /* n_images * n_image_tokens * n_embd */
        size_t n_embd;
        size_t n_image_tokens; /* per image */
        size_t *image_pos;
        size_t n_images;
        /* what the steps took, for the statistics and the bench */
        uint64_t decode_usec, preprocess_usec, encode_usec;
        uint32_t width, height; /* of the decoded image */
} worker_explain_prompt;

void worker_explain_prompt_done(worker_explain_prompt *p);

/* The same on a thread of its own, so that the worker goes on streaming
 * the other requests' tokens while an image is decoded and encoded (one
 * encoder pass at the real size is tens of seconds on a small CPU).  The
 * vision context serves one image at a time: start gives -EBUSY while
 * another job holds it (try again at a later step).  image is taken.
 * poll: -EAGAIN while running, else what worker_explain_prepare returned
 * (the prompt moved into *ret, the sentence into err).  free cancels
 * (the encoder stops between layers) and waits for the thread. */
typedef struct worker_explain_job worker_explain_job;
int worker_explain_start(worker_vision *v, const engine_model *model, uint8_t *image, size_t size,
                         const char *question, size_t question_len, bool first_turn, bool turn_open,
                         worker_explain_job **ret);
int worker_explain_poll(worker_explain_job *j, worker_explain_prompt *ret, char *err, size_t errlen);
worker_explain_job *worker_explain_free(worker_explain_job *j);

/* The next piece of the prompt from position pos (of n_prompt): a whole
 * image block (*embd set to its rows; it goes through the model in one
 * bidirectional piece), or at most max text tokens, stopping before the
 * next image (*embd NULL).  Returns its length. */
size_t worker_explain_next(const worker_explain_prompt *p, size_t pos, size_t n_prompt, size_t max,
                           const float **embd);

/* Decodes, preprocesses and encodes the image and builds the chat prompt
 * around the question.  Returns 0, or a wire status (WIRE_ERR_INVALID for
 * an image that does not decode, WIRE_ERR_UNAVAILABLE without a vision
 * encoder, ...) with a sentence in err. */
int worker_explain_prepare(worker_vision *v, const engine_model *model, const uint8_t *image, size_t size,
                           const char *question, size_t question_len, bool first_turn, bool turn_open,
                           vision_abort_fn abort_cb,
                           void *abort_userdata, worker_explain_prompt *ret, char *err, size_t errlen);
