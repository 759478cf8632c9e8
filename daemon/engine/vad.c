/* SPDX-License-Identifier: MIT */
/* Energy voice-activity detection (see vad.h).
 *
 * Per frame of N = 160 samples:   E = 10 log10(sum x^2 / N + 1e-10)  dBFS
 * The floor F follows E down at once (minimum statistics) and up by at most
 * r dB per frame (r = floor_rise_db / 100).
 * A frame is loud when E > max(min_db, F + threshold_db); a sample is loud
 * when |x| > 10^(max(min_db, F + threshold_db / 2) / 20), which a loud
 * frame always holds (its RMS exceeds that level). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "macro.h"
#include "vad.h"

#define FLOOR_MIN_DB -100.0f

void vad_default_params(vad_params *p) {
        *p = (vad_params){
                .threshold_db = 12.0f,
                .min_db = -50.0f,
                .floor_rise_db = 4.0f,
                .start_ms = 40,
                .hangover_ms = 500,
                .preroll_ms = 200,
                .tail_ms = 200,
                .max_ms = 28000,
        };
}

int vad_init(vad *v, const vad_params *p) {
        vad_params def;
        if (!p) {
                vad_default_params(&def);
                p = &def;
        }
        if (!(p->threshold_db > 0 && p->threshold_db <= 60) || !(p->min_db >= -100 && p->min_db <= 0) ||
            !(p->floor_rise_db >= 0 && p->floor_rise_db <= 100) || p->start_ms < 10 || p->start_ms > 1000 ||
            p->hangover_ms < 10 || p->hangover_ms > 10000 || p->preroll_ms < 0 || p->preroll_ms > 1000 ||
            p->tail_ms < 0 || p->tail_ms > p->hangover_ms || p->max_ms < 1000 || p->max_ms > 30000)
                return -EINVAL;
        *v = (vad){ .p = *p, .last_loud = -1, .run_first_loud = -1, .floor_db = FLOOR_MIN_DB };
        return 0;
}

static int64_t ms_to_samples(int32_t ms) {
        return (int64_t)ms * VAD_RATE / 1000;
}

float vad_amplitude_threshold(const vad *v) {
        return powf(10.0f, MAX(v->p.min_db, v->floor_db + v->p.threshold_db * 0.5f) / 20.0f);
}

/* The first sample of the utterance: the first loud sample of the run that
 * started it, moved back over earlier loud samples as long as they are less
 * than a frame apart.  Independent of where frames begin. */
static int64_t find_onset(const vad *v, const float *x, uint64_t base, size_t n, int64_t run_start) {
        const float thr = vad_amplitude_threshold(v);
        int64_t lo = MAX((int64_t)base, (int64_t)v->cursor - VAD_LOOKBACK);
        lo = MAX(lo, v->prev_end);
        int64_t s = -1;
        for (int64_t i = MAX(run_start, lo); i < (int64_t)v->cursor && i < (int64_t)(base + n); i++)
                if (fabsf(x[i - (int64_t)base]) > thr) {
                        s = i;
                        break;
                }
        if (s < 0)
                return MAX(run_start, lo);
        for (;;) {
                int64_t from = MAX(s - VAD_FRAME, lo), earliest = -1;
                for (int64_t i = from; i < s; i++)
                        if (fabsf(x[i - (int64_t)base]) > thr) {
                                earliest = i;
                                break;
                        }
                if (earliest < 0)
                        return s;
                s = earliest;
        }
}

int vad_process(vad *v, const float *x, uint64_t base, size_t n, vad_event *ev) {
        const vad_params *p = &v->p;
        const int32_t start_frames = (p->start_ms + 9) / 10, hang_frames = (p->hangover_ms + 9) / 10;

        *ev = (vad_event){};
        if (v->cursor < base || v->cursor > base + n)
                return -EINVAL;
        while (v->cursor < base + n) {
                float thr = vad_amplitude_threshold(v);
                /* Fill the current frame. */
                while (v->frame_n < VAD_FRAME && v->cursor < base + n) {
                        float s = x[v->cursor - base];
                        v->frame_sum += s * s;
                        if (fabsf(s) > thr)
                                v->last_loud = (int64_t)v->cursor;
                        v->frame_n++;
                        v->cursor++;
                }
                if (v->frame_n < VAD_FRAME)
                        return 0;

                float e = 10.0f * log10f(v->frame_sum / VAD_FRAME + 1e-10f);
                e = MAX(e, FLOOR_MIN_DB);
                v->frame_db = e;
                v->frame_sum = 0;
                v->frame_n = 0;
                bool loud = e > MAX(p->min_db, v->floor_db + p->threshold_db);

                /* The floor: down at once, up slowly. */
                if (!v->floor_set) {
                        v->floor_db = e;
                        v->floor_set = true;
                } else if (e < v->floor_db)
                        v->floor_db = e;
                else {
                        /* Also in speech: its pauses pull the floor down
                         * again, while a noise that got louder for good
                         * becomes the floor within seconds. */
                        v->floor_db = MIN(e, v->floor_db + p->floor_rise_db / 100.0f);
                }

                int64_t frame_start = (int64_t)v->cursor - VAD_FRAME;
                if (loud) {
                        if (v->loud_run == 0)
                                v->run_first_loud = frame_start;
                        v->loud_run++;
                        v->quiet_run = 0;
                } else {
                        v->loud_run = 0;
                        v->quiet_run++;
                }

                if (!v->in_speech) {
                        if (v->loud_run >= start_frames) {
                                int64_t s = find_onset(v, x, base, n, v->run_first_loud);
                                v->start = MAX(s - ms_to_samples(p->preroll_ms), v->prev_end);
                                v->in_speech = true;
                                *ev = (vad_event){ .type = VAD_START, .pos = v->start };
                                return 1;
                        }
                        continue;
                }
                if (v->quiet_run >= hang_frames) {
                        int64_t end = v->last_loud >= v->start ? v->last_loud + 1 + ms_to_samples(p->tail_ms)
                                                               : (int64_t)v->cursor;
                        end = MIN(end, (int64_t)v->cursor);
                        v->in_speech = false;
                        v->prev_end = end;
                        *ev = (vad_event){ .type = VAD_END, .pos = end };
                        return 1;
                }
                if ((int64_t)v->cursor - v->start >= ms_to_samples(p->max_ms)) {
                        int64_t end = v->start + ms_to_samples(p->max_ms);
                        v->in_speech = false;
                        v->prev_end = end;
                        /* Still loud: the next utterance starts at once. */
                        v->loud_run = loud ? start_frames - 1 : 0;
                        v->run_first_loud = end;
                        *ev = (vad_event){ .type = VAD_END, .pos = end, .forced = true };
                        return 1;
                }
        }
        return 0;
}

int vad_flush(vad *v, vad_event *ev) {
        *ev = (vad_event){};
        if (!v->in_speech)
                return 0;
        int64_t end = v->last_loud >= v->start ? v->last_loud + 1 + ms_to_samples(v->p.tail_ms) : (int64_t)v->cursor;
        v->in_speech = false;
        v->prev_end = end;
        *ev = (vad_event){ .type = VAD_END, .pos = end };
        return 1;
}
