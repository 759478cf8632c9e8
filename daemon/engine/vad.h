/* SPDX-License-Identifier: MIT */
/* Voice activity: an energy detector that cuts a stream of 16 kHz mono
 * samples into utterances.
 *
 * Each 10 ms frame's energy (dBFS) is compared with a running estimate of
 * the noise floor (set by the first frame, following any drop at once and
 * rising slowly); a run of loud frames starts an utterance and a run of
 * quiet ones (the hangover) ends it.  The utterance's edges are then placed
 * on samples, not frames: the first and last samples above an amplitude
 * threshold, widened by a fixed pre-roll and tail.  So the same audio gives
 * the same cut whatever the frame grid (where the stream started), which
 * makes a recording and the same sound captured live decode alike.
 *
 * Positions are absolute sample indices in the stream (0 = its first
 * sample).  The detector keeps no samples: the caller holds the stream and
 * passes it in; vad_process may look back up to VAD_LOOKBACK samples before
 * the point it has reached. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VAD_RATE 16000
#define VAD_FRAME 160 /* 10 ms */
#define VAD_LOOKBACK (2 * VAD_RATE)

typedef struct vad_params {
        float threshold_db;  /* frame energy above the floor that counts as voice; default 12 */
        float min_db;        /* never voice below this (dBFS); default -50 */
        float floor_rise_db; /* dB per second at most; default 4 */
        int32_t start_ms;    /* loud frames in a row to start; default 40 */
        int32_t hangover_ms; /* quiet frames in a row to end; default 500 */
        int32_t preroll_ms;  /* kept before the first loud sample; default 200 */
        int32_t tail_ms;     /* kept after the last loud sample; default 200 (<= hangover) */
        int32_t max_ms;      /* longest utterance, then it is cut; default 28000 */
} vad_params;

typedef enum vad_event_type {
        VAD_NONE = 0,
        VAD_START,
        VAD_END,
} vad_event_type;

typedef struct vad_event {
        vad_event_type type;
        /* START: where the utterance begins (may be negative: before the
         * stream, to be read as silence).  END: one past its last sample. */
        int64_t pos;
        bool forced; /* END: cut at max_ms, the voice goes on */
} vad_event;

typedef struct vad {
        vad_params p;
        uint64_t cursor;    /* next sample to examine (absolute) */
        float frame_sum;    /* sum of squares of the frame being filled */
        uint32_t frame_n;
        float floor_db;
        bool floor_set;
        bool in_speech;
        int32_t loud_run, quiet_run; /* frames */
        int64_t start;               /* of the current utterance */
        int64_t last_loud;           /* last sample above the amplitude threshold, -1 none */
        int64_t run_first_loud;      /* first loud sample of the current loud run, -1 none */
        int64_t prev_end;            /* end of the previous utterance */
        float frame_db;              /* energy of the last frame, for tests */
} vad;

void vad_default_params(vad_params *p);
/* -EINVAL for parameters out of range. */
int vad_init(vad *v, const vad_params *p);

/* Examines samples x[0..n) at absolute positions base..base+n-1 from the
 * detector's cursor on (samples before the cursor are only looked back at;
 * the cursor must lie in [base, base+n]).  Returns 1 with *ev set as soon as
 * an utterance starts or ends (call again to go on), 0 when it has reached
 * base+n, -EINVAL when the cursor is outside the span given. */
int vad_process(vad *v, const float *x, uint64_t base, size_t n, vad_event *ev);

/* The end of the stream: an utterance in progress ends at its last loud
 * sample plus the tail (1 with *ev), else 0. */
int vad_flush(vad *v, vad_event *ev);

/* The amplitude above which a sample counts as loud, from the floor. */
float vad_amplitude_threshold(const vad *v);
