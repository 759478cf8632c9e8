/* SPDX-License-Identifier: MIT */
/* Speech recognition in sotto-worker: the audio streams sottod opens with
 * WIRE_AUDIO_START.  A live stream (dictation) is cut into utterances by the
 * voice-activity detector as its samples arrive; while an utterance goes on
 * it is decoded again from its start every partial_ms of audio (a partial
 * hypothesis), and once it ends, a last time (the final text).  A recording
 * (Transcribe) is gathered whole, parsed here (WAV or raw PCM: the untrusted
 * bytes are read in the sandbox, never in sottod), then cut and decoded the
 * same way, finals only.  The same utterance gives the same tokens either
 * way: the cut is placed on samples and the decoder's window is sized from
 * the utterance alone. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "daemon/common/wire.h"
#include "whisper.h"

typedef struct waudio waudio;

/* model may be NULL (none configured, or it failed to load: why_not says
 * why); requests then fail with a sentence.  Frames go into conn->out. */
int waudio_new(const whisper_model *model, const char *why_not, int n_threads, wire_conn *conn, waudio **ret);
void waudio_free(waudio *a);

/* AUDIO_START / AUDIO_DATA / AUDIO_END.  -EBADMSG for a malformed frame or
 * one naming a stream that does not exist (a protocol violation). */
int waudio_dispatch(waudio *a, uint32_t type, const uint8_t *payload, size_t len);
/* poll is called during a decode (between encoder layers and decoder
 * steps, at most every couple of milliseconds is up to it) to read and
 * dispatch what sottod sent, so that a CANCEL or the end of the audio
 * stops the decode in progress; it returns true when sottod is gone.  It
 * may call waudio_dispatch and waudio_cancel, never waudio_step. */
void waudio_set_poll(waudio *a, bool (*poll)(void *userdata), void *userdata);
/* WIRE_CANCEL: true when id named an audio stream. */
bool waudio_cancel(waudio *a, uint64_t id);
/* Whether some recognition work is waiting. */
bool waudio_busy(const waudio *a);
/* Does one piece of it (one decode at most).  -errno only when the
 * connection is lost. */
int waudio_step(waudio *a);
