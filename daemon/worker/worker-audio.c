/* SPDX-License-Identifier: MIT */
/* Speech recognition streams in sotto-worker (see worker-audio.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/worker/worker-audio.h"
#include "macro.h"
#include "vad.h"
#include "wav.h"

#define RATE 16000
#define MAX_STREAMS 64
#define MAX_RECORDING_BYTES (256u << 20) /* a Transcribe input, before decoding */
#define AUDIO_CTX_STEP 64                /* encoder positions (1.28 s): one state per step */
#define TRIM_SLACK RATE                  /* samples dropped at a time, at least */

typedef struct span {
        int64_t start, end;
        bool forced;
        uint64_t t_detect; /* when the audio that ended it arrived */
} span;

typedef struct wstream {
        uint64_t id;
        wire_audio_start cfg;
        bool live;
        /* a recording, gathered whole */
        uint8_t *raw;
        size_t raw_len, raw_cap;
        /* a live stream: the bytes of a sample split between frames */
        uint8_t rem[4];
        uint32_t rem_len;
        /* samples base .. base+n-1 of the stream */
        float *pcm;
        size_t n, cap;
        int64_t base;
        vad vad;
        bool in_utt;
        int64_t utt_start, partial_at;
        span *finals;
        size_t n_finals, cap_finals;
        bool ended, cancelled, single_done, limit_hit;
        uint32_t n_tokens;
        uint64_t t_start, compute_usec;
        uint64_t t_data; /* when the newest audio arrived */
        struct wstream *next;
} wstream;

struct waudio {
        const whisper_model *model;
        char why_not[256];
        int n_threads;
        wire_conn *conn;
        whisper_state *state;
        int state_ctx;
        wstream *streams;
        uint32_t n_streams;
        int error;
        /* Measured costs (moving averages), to size partials: encoder time
         * per position of its window, decoder time per token. */
        double enc_usec_per_pos, dec_usec_per_token;
        /* abort_cb timestamps of the decode in progress */
        uint64_t cb_first, cb_second, cb_last;
        uint32_t cb_calls;
        /* Reads sottod's frames during a decode (a CANCEL, more audio):
         * true when the connection is gone. */
        bool (*poll)(void *userdata);
        void *poll_userdata;
        /* The stream being decoded; running_gone: it was finished (its DONE
         * sent) by a frame read during the decode, and is freed after it. */
        wstream *running;
        enum wire_audio_kind running_kind;
        bool running_gone;
};

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int waudio_new(const whisper_model *model, const char *why_not, int n_threads, wire_conn *conn, waudio **ret) {
        waudio *a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        a->model = model;
        snprintf(a->why_not, sizeof a->why_not, "%s", why_not && *why_not ? why_not : "no speech model is loaded");
        a->n_threads = MAX(n_threads, 1);
        a->conn = conn;
        *ret = a;
        return 0;
}

static void stream_free(wstream *s) {
        free(s->raw);
        free(s->pcm);
        free(s->finals);
        free(s);
}

void waudio_free(waudio *a) {
        if (!a)
                return;
        while (a->streams) {
                wstream *s = a->streams;
                a->streams = s->next;
                stream_free(s);
        }
        whisper_state_free(a->state);
        free(a);
}

static wstream *stream_find(waudio *a, uint64_t id) {
        for (wstream *s = a->streams; s; s = s->next)
                if (s->id == id)
                        return s;
        return NULL;
}

static void flush(waudio *a) {
        if (wire_conn_flush(a->conn) < 0)
                a->error = -EPIPE;
}

/* Ends a stream with WIRE_DONE: n_prompt carries the audio milliseconds,
 * n_generated the tokens of its final texts. */
static void finish(waudio *a, wstream *s, enum wire_status status, enum wire_stop_reason why, const char *fmt, ...)
        _printf_(5, 6);
static void finish(waudio *a, wstream *s, enum wire_status status, enum wire_stop_reason why, const char *fmt, ...) {
        uint64_t samples = (uint64_t)MAX(s->base + (int64_t)s->n, 0);
        wire_done d = {
                .req_id = s->id,
                .status = status,
                .stop_reason = status == WIRE_OK ? why : WIRE_STOP_NONE,
                .n_prompt = (uint32_t)MIN(samples * 1000 / RATE, (uint64_t)UINT32_MAX),
                .n_generated = s->n_tokens,
                .prompt_usec = s->compute_usec,
                .total_usec = now_usec() - s->t_start,
        };
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(d.message, sizeof d.message, fmt, ap);
                va_end(ap);
                /* The message may quote the input: keep it UTF-8. */
                for (char *c = d.message; *c; c++)
                        if ((unsigned char)*c >= 0x80)
                                *c = '?';
        }
        if (wire_encode_done(&a->conn->out, &d) < 0)
                a->error = -ENOMEM;
        for (wstream **p = &a->streams; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        break;
                }
        a->n_streams--;
        if (s == a->running)
                a->running_gone = true; /* recognize() frees it when the decode stops */
        else
                stream_free(s);
        flush(a);
}

/* ---- samples and utterances ---- */

static int push_final(wstream *s, int64_t start, int64_t end, bool forced) {
        if (s->n_finals == s->cap_finals) {
                size_t cap = MAX(s->cap_finals * 2, (size_t)8);
                span *f = realloc(s->finals, cap * sizeof *f);
                if (!f)
                        return -ENOMEM;
                s->finals = f;
                s->cap_finals = cap;
        }
        s->finals[s->n_finals++] = (span){ start, end, forced, now_usec() };
        return 0;
}

static int on_vad_event(wstream *s, const vad_event *ev) {
        if (s->single_done)
                return 0;
        if (ev->type == VAD_START) {
                s->in_utt = true;
                s->utt_start = ev->pos;
                s->partial_at = ev->pos;
                return 0;
        }
        s->in_utt = false;
        if (s->cfg.flags & WIRE_AUDIO_SINGLE)
                s->single_done = true;
        return push_final(s, s->utt_start, ev->pos, ev->forced);
}

/* Drops samples nothing can need again: what the detector may still look
 * back at (its look-back window plus the pre-roll) and what pending or
 * running utterances cover. */
static void trim(wstream *s) {
        int64_t keep = (int64_t)s->vad.cursor - VAD_LOOKBACK - (int64_t)s->vad.p.preroll_ms * RATE / 1000;
        if (s->in_utt)
                keep = MIN(keep, s->utt_start);
        for (size_t i = 0; i < s->n_finals; i++)
                keep = MIN(keep, s->finals[i].start);
        int64_t drop = keep - s->base;
        if (drop < TRIM_SLACK)
                return;
        drop = MIN(drop, (int64_t)s->n);
        memmove(s->pcm, s->pcm + drop, (s->n - (size_t)drop) * sizeof(float));
        s->n -= (size_t)drop;
        s->base += drop;
}

static int append_samples(wstream *s, const float *x, size_t k) {
        if (s->n + k > s->cap) {
                size_t cap = MAX(s->cap * 2, s->n + k + RATE);
                float *p = realloc(s->pcm, cap * sizeof(float));
                if (!p)
                        return -ENOMEM;
                s->pcm = p;
                s->cap = cap;
        }
        for (size_t i = 0; i < k; i++) /* PipeWire's floats are trusted no more than a file's */
                s->pcm[s->n + i] = isfinite(x[i]) ? MAX(-1.0f, MIN(1.0f, x[i])) : 0.0f;
        s->n += k;
        s->t_data = now_usec();
        vad_event ev;
        int r;
        while ((r = vad_process(&s->vad, s->pcm, (uint64_t)s->base, s->n, &ev)) == 1)
                if ((r = on_vad_event(s, &ev)) < 0)
                        return r;
        if (r < 0)
                return r;
        trim(s);
        return 0;
}

static int end_of_audio(wstream *s) {
        vad_event ev;
        if (vad_flush(&s->vad, &ev) == 1)
                return on_vad_event(s, &ev);
        return 0;
}

/* A recording, complete: parse it (WAV or raw PCM) into 16 kHz mono. */
static void decode_recording(waudio *a, wstream *s) {
        _cleanup_free_ float *mono = NULL, *pcm = NULL;
        size_t n_mono, n = 0;
        char err[256] = "";
        int r;

        if (s->cfg.format == WIRE_AUDIO_WAV) {
                r = wav_decode(s->raw, s->raw_len, RATE, &pcm, &n, err, sizeof err);
                if (r == -ENOMEM)
                        return finish(a, s, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "out of memory decoding the audio");
                if (r < 0)
                        return finish(a, s, WIRE_ERR_INVALID, WIRE_STOP_NONE, "the audio is not a usable WAV file: %s",
                                      err);
        } else {
                uint32_t bytes = s->cfg.format == WIRE_AUDIO_S16LE ? 2 : 4;
                size_t frame = (size_t)bytes * s->cfg.channels;
                if (s->raw_len % frame)
                        return finish(a, s, WIRE_ERR_INVALID, WIRE_STOP_NONE,
                                      "%zu bytes of raw audio are not whole frames of %zu bytes", s->raw_len, frame);
                wav_info w = {
                        .format = s->cfg.format == WIRE_AUDIO_S16LE ? WAV_FORMAT_PCM : WAV_FORMAT_FLOAT,
                        .channels = (uint16_t)s->cfg.channels,
                        .rate = s->cfg.rate,
                        .bits = (uint16_t)(bytes * 8),
                        .n_frames = s->raw_len / frame,
                        .data = s->raw,
                };
                if (wav_to_mono(&w, &mono, &n_mono) < 0 || wav_resample(mono, n_mono, w.rate, RATE, &pcm, &n) < 0)
                        return finish(a, s, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "out of memory decoding the audio");
        }
        free(s->raw);
        s->raw = NULL;
        s->raw_len = s->raw_cap = 0;
        if (n > (size_t)s->cfg.max_seconds * RATE)
                return finish(a, s, WIRE_ERR_INVALID, WIRE_STOP_NONE,
                              "the audio lasts %zu s, more than the %u s allowed", n / RATE, s->cfg.max_seconds);
        if (append_samples(s, pcm, n) < 0 || end_of_audio(s) < 0)
                return finish(a, s, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "out of memory");
        s->ended = true;
}

/* ---- frames from sottod ---- */

static int handle_start(waudio *a, const uint8_t *payload, size_t len) {
        wire_audio_start st;
        if (wire_decode_audio_start(payload, len, &st) < 0 || stream_find(a, st.req_id))
                return -EBADMSG;
        wstream *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->id = st.req_id;
        s->cfg = st;
        s->live = st.flags & WIRE_AUDIO_LIVE;
        s->t_start = now_usec();
        (void)vad_init(&s->vad, NULL);
        s->next = a->streams;
        a->streams = s;
        a->n_streams++;
        if (!a->model)
                finish(a, s, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "%s", a->why_not);
        else if (a->n_streams > MAX_STREAMS)
                finish(a, s, WIRE_ERR_BUSY, WIRE_STOP_NONE, "the worker is recognizing %u streams already",
                       MAX_STREAMS);
        else if (st.language[0] && strcmp(st.language, "auto") != 0 &&
                 (whisper_lang_id(st.language) < 0 ||
                  (!whisper_model_is_multilingual(a->model) && strcmp(st.language, "en") != 0)))
                finish(a, s, WIRE_ERR_INVALID, WIRE_STOP_NONE, "the speech model does not know the language '%s'",
                       st.language);
        return 0;
}

static int handle_data(waudio *a, const uint8_t *payload, size_t len) {
        wire_audio_data d;
        if (wire_decode_audio_data(payload, len, &d) < 0)
                return -EBADMSG;
        wstream *s = stream_find(a, d.req_id);
        if (!s)
                return 0; /* finished here already (an error, the single utterance); sottod will see DONE */
        if (s->ended)
                return -EBADMSG;
        if (s->cancelled || s->single_done || s->limit_hit)
                return 0;
        if (!s->live) {
                if (d.len > MAX_RECORDING_BYTES - s->raw_len) {
                        finish(a, s, WIRE_ERR_INVALID, WIRE_STOP_NONE, "the recording is larger than %u MiB",
                               MAX_RECORDING_BYTES >> 20);
                        return 0;
                }
                if (s->raw_len + d.len > s->raw_cap) {
                        size_t cap = MAX(s->raw_cap * 2, s->raw_len + d.len + 65536);
                        cap = MIN(cap, (size_t)MAX_RECORDING_BYTES);
                        uint8_t *p = realloc(s->raw, cap);
                        if (!p) {
                                finish(a, s, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "out of memory");
                                return 0;
                        }
                        s->raw = p;
                        s->raw_cap = cap;
                }
                memcpy(s->raw + s->raw_len, d.data, d.len);
                s->raw_len += d.len;
                return 0;
        }
        /* Live: little-endian f32 at 16 kHz mono, possibly split mid-sample. */
        float buf[4096];
        size_t k = 0;
        const uint8_t *p = d.data, *end = d.data + d.len;
        while (p < end) {
                s->rem[s->rem_len++] = *p++;
                if (s->rem_len == 4) {
                        uint32_t u = (uint32_t)s->rem[0] | (uint32_t)s->rem[1] << 8 | (uint32_t)s->rem[2] << 16 |
                                     (uint32_t)s->rem[3] << 24;
                        memcpy(&buf[k++], &u, 4);
                        s->rem_len = 0;
                }
                if (k == ELEMENTSOF(buf) || (p == end && k > 0)) {
                        if (append_samples(s, buf, k) < 0) {
                                finish(a, s, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "out of memory");
                                return 0;
                        }
                        k = 0;
                }
        }
        if ((uint64_t)(s->base + (int64_t)s->n) >= (uint64_t)s->cfg.max_seconds * RATE) {
                /* The longest dictation allowed: what is said so far ends it. */
                s->limit_hit = true;
                s->ended = true;
                if (end_of_audio(s) < 0)
                        finish(a, s, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "out of memory");
        }
        return 0;
}

static int handle_end(waudio *a, const uint8_t *payload, size_t len) {
        uint64_t id;
        if (wire_decode_u64(payload, len, &id) < 0)
                return -EBADMSG;
        wstream *s = stream_find(a, id);
        if (!s)
                return 0;
        if (s->ended && !s->limit_hit)
                return -EBADMSG;
        if (s->ended)
                return 0;
        if (!s->live)
                decode_recording(a, s); /* may finish it */
        else {
                s->ended = true;
                if (end_of_audio(s) < 0)
                        finish(a, s, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "out of memory");
        }
        return 0;
}

int waudio_dispatch(waudio *a, uint32_t type, const uint8_t *payload, size_t len) {
        switch (type) {
        case WIRE_AUDIO_START:
                return handle_start(a, payload, len);
        case WIRE_AUDIO_DATA:
                return handle_data(a, payload, len);
        case WIRE_AUDIO_END:
                return handle_end(a, payload, len);
        default:
                return -EBADMSG;
        }
}

void waudio_set_poll(waudio *a, bool (*poll)(void *userdata), void *userdata) {
        a->poll = poll;
        a->poll_userdata = userdata;
}

bool waudio_cancel(waudio *a, uint64_t id) {
        wstream *s = stream_find(a, id);
        if (!s)
                return false;
        s->cancelled = true;
        return true;
}

/* ---- recognition ---- */

/* Token bytes may split a character between tokens, and a random or
 * confused model may emit bytes that never form one: invalid sequences
 * become U+FFFD, so the text is always UTF-8. */
static size_t utf8_sanitize(const char *in, size_t n, char *out) {
        size_t o = 0;
        for (size_t i = 0; i < n;) {
                uint8_t c = (uint8_t)in[i];
                size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
                if (len > 0 && i + len <= n && utf8_is_valid(in + i, len)) {
                        memcpy(out + o, in + i, len);
                        o += len;
                        i += len;
                } else {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                }
        }
        return o;
}

/* The encoder's window fits the utterance (2 mel frames per position), in
 * steps, so that the same utterance always gets the same window. */
static int audio_ctx_for(const waudio *a, size_t n_samples) {
        int max = whisper_model_hparams(a->model)->n_audio_ctx;
        size_t frames = (n_samples + WHISPER_HOP - 1) / WHISPER_HOP;
        size_t ctx = (frames + 1) / 2 + 1;
        ctx = (ctx + AUDIO_CTX_STEP - 1) / AUDIO_CTX_STEP * AUDIO_CTX_STEP;
        return (int)MIN(ctx, (size_t)max);
}

/* Polled by the engine between encoder layers and decoder steps: the
 * decode in progress stops when its stream is cancelled or finished, when
 * a partial is overtaken (the utterance or the stream ended: its Final
 * comes next), or when sottod is gone. */
static bool should_stop(void *userdata) {
        waudio *a = userdata;
        if (a->poll && a->poll(a->poll_userdata))
                return true;
        const wstream *s = a->running;
        if (!s || a->running_gone || s->cancelled)
                return true;
        return a->running_kind == WIRE_AUDIO_PARTIAL && (s->ended || !s->in_utt || s->single_done);
}

/* Called by the decoder before the encoder and before every token: the
 * gaps give the encoder's and the decoder's costs. */
static bool time_cb(void *userdata) {
        waudio *a = userdata;
        uint64_t t = now_usec();
        if (a->cb_calls == 0)
                a->cb_first = t;
        else if (a->cb_calls == 1)
                a->cb_second = t;
        a->cb_last = t;
        a->cb_calls++;
        return should_stop(a);
}

static void learn_costs(waudio *a, int ctx) {
        const double k = 0.3;
        if (a->cb_calls >= 2) {
                double enc = (double)(a->cb_second - a->cb_first) / ctx;
                a->enc_usec_per_pos = a->enc_usec_per_pos > 0 ? (1 - k) * a->enc_usec_per_pos + k * enc : enc;
        }
        if (a->cb_calls >= 4) {
                double dec = (double)(a->cb_last - a->cb_second) / (a->cb_calls - 2);
                a->dec_usec_per_token = a->dec_usec_per_token > 0 ? (1 - k) * a->dec_usec_per_token + k * dec : dec;
        }
}

/* A partial is due every partial_ms of audio: its decode must fit in
 * that time, or partials fall behind the voice.  From the measured costs,
 * the tokens that fit in 80% of it (at least 1).  Greedy decoding makes the
 * partial a prefix of what a full decode of the same audio gives. */
static int32_t partial_token_budget(const waudio *a, const wstream *s, int ctx, int32_t full) {
        if (a->dec_usec_per_token <= 0)
                return full;
        double budget = 0.8 * s->cfg.partial_ms * 1000.0 - a->enc_usec_per_pos * ctx;
        int32_t n = (int32_t)(budget / a->dec_usec_per_token);
        return MAX(1, MIN(n, full));
}

static int recognize(waudio *a, wstream *s, int64_t start, int64_t end, enum wire_audio_kind kind, bool forced,
                     uint64_t t_due) {
        size_t n = (size_t)(end - start);
        _cleanup_free_ float *x = calloc(MAX(n, (size_t)1), sizeof(float));
        whisper_result res = { .lang_id = -1 };
        char err[256] = "";
        int r;

        if (!x)
                return -ENOMEM;
        /* Samples outside what the stream holds (before its start, past its
         * end) are silence. */
        for (size_t i = 0; i < n; i++) {
                int64_t pos = start + (int64_t)i;
                if (pos >= s->base && pos < s->base + (int64_t)s->n)
                        x[i] = s->pcm[pos - s->base];
        }
        int ctx = audio_ctx_for(a, n);
        if (!a->state || a->state_ctx != ctx) {
                whisper_state_free(a->state);
                a->state = NULL;
                whisper_state_params sp;
                whisper_state_default_params(&sp);
                sp.n_threads = a->n_threads;
                sp.audio_ctx = ctx;
                if ((r = whisper_state_new(a->model, &sp, &a->state, err, sizeof err)) < 0)
                        return r;
                whisper_state_set_abort(a->state, should_stop, a);
                a->state_ctx = ctx;
        }
        whisper_params p;
        whisper_default_params(&p);
        p.language = s->cfg.language[0] ? s->cfg.language : "en";
        if (!whisper_model_is_multilingual(a->model))
                p.language = "en";
        p.no_timestamps = true;
        p.single_segment = true;
        /* Speech runs at 2 to 4 tokens a second; a decoder that goes on
         * longer is repeating itself. */
        p.max_tokens = (int32_t)MIN((size_t)200, 8 + 6 * n / RATE);
        if (kind == WIRE_AUDIO_PARTIAL)
                p.max_tokens = partial_token_budget(a, s, ctx, p.max_tokens);
        p.abort_cb = time_cb;
        p.abort_userdata = a;
        a->cb_calls = 0;

        uint64_t t0 = now_usec();
        a->running = s;
        a->running_kind = kind;
        a->running_gone = false;
        r = whisper_transcribe(a->state, &p, x, n, &res);
        a->running = NULL;
        uint64_t dt = now_usec() - t0;
        if (a->running_gone) {
                /* finished while we decoded: nothing more to say about it */
                stream_free(s);
                whisper_result_clear(&res);
                return -ESTALE;
        }
        if (r < 0) {
                whisper_result_clear(&res);
                return r;
        }
        learn_costs(a, ctx);
        s->compute_usec += dt;

        const whisper_special *sp = whisper_model_special(a->model);
        wire_audio_text t = {
                .req_id = s->id,
                .kind = kind,
                .forced = forced,
                .start = (uint64_t)MAX(start, (int64_t)0),
                .end = (uint64_t)MAX(end, (int64_t)0),
                .compute_usec = dt,
        };
        size_t bytes = 0;
        for (int32_t i = 0; i < res.n_tokens; i++) {
                size_t len;
                if (res.tokens[i].id >= sp->eot || !whisper_token_bytes(a->model, res.tokens[i].id, &len))
                        continue;
                if (t.n_tokens < WIRE_MAX_AUDIO_TOKENS)
                        t.tokens[t.n_tokens++] = (uint32_t)res.tokens[i].id;
                bytes += len;
        }
        _cleanup_free_ char *raw = malloc(bytes + 1), *text = malloc(3 * bytes + 1);
        if (!raw || !text) {
                whisper_result_clear(&res);
                return -ENOMEM;
        }
        size_t o = 0;
        for (int32_t i = 0; i < res.n_tokens; i++) {
                size_t len;
                const char *b;
                if (res.tokens[i].id >= sp->eot || !(b = whisper_token_bytes(a->model, res.tokens[i].id, &len)))
                        continue;
                memcpy(raw + o, b, len);
                o += len;
        }
        whisper_result_clear(&res);
        size_t tl = utf8_sanitize(raw, o, text);
        size_t skip = 0;
        while (skip < tl && text[skip] == ' ')
                skip++;
        t.text = text + skip;
        t.len = (uint32_t)MIN(tl - skip, (size_t)WIRE_MAX_TEXT);
        while (t.len > 0 && !utf8_is_valid(t.text, t.len)) /* cut at the limit mid-character */
                t.len--;
        if (kind == WIRE_AUDIO_FINAL)
                s->n_tokens += t.n_tokens;
        t.latency_usec = now_usec() - t_due;
        if (wire_encode_audio_text(&a->conn->out, &t) < 0)
                return -ENOMEM;
        flush(a);
        return 0;
}

static bool partial_due(const wstream *s) {
        return s->live && s->in_utt && !s->single_done && (s->cfg.flags & WIRE_AUDIO_PARTIALS) &&
               s->base + (int64_t)s->n - s->partial_at >= (int64_t)s->cfg.partial_ms * RATE / 1000;
}

static bool has_work(const wstream *s) {
        return s->cancelled || s->n_finals > 0 || partial_due(s) || (s->ended && !s->in_utt) ||
               (s->single_done && s->n_finals == 0);
}

bool waudio_busy(const waudio *a) {
        for (const wstream *s = a->streams; s; s = s->next)
                if (has_work(s))
                        return true;
        return false;
}

/* A decode that should_stop() ended: -ESTALE, the stream is gone
 * already; a cancelled one ends now; an overtaken partial leaves the
 * stream to its Final; with sottod gone the worker is ending anyway. */
static int after_abort(waudio *a, wstream *s, int r) {
        if (r == -ECANCELED && s->cancelled)
                finish(a, s, WIRE_ERR_CANCELLED, WIRE_STOP_NONE, "cancelled");
        return a->error;
}

int waudio_step(waudio *a) {
        wstream *s = a->streams;
        while (s && !has_work(s))
                s = s->next;
        if (!s)
                return a->error;
        /* Round robin: the stream served goes to the back. */
        for (wstream **p = &a->streams; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        break;
                }
        s->next = NULL;
        wstream **tail = &a->streams;
        while (*tail)
                tail = &(*tail)->next;
        *tail = s;

        int r;
        if (s->cancelled)
                finish(a, s, WIRE_ERR_CANCELLED, WIRE_STOP_NONE, "cancelled");
        else if (s->n_finals > 0) {
                span f = s->finals[0];
                memmove(s->finals, s->finals + 1, (s->n_finals - 1) * sizeof *s->finals);
                s->n_finals--;
                r = recognize(a, s, f.start, f.end, WIRE_AUDIO_FINAL, f.forced, f.t_detect);
                if (r == -ESTALE || r == -ECANCELED)
                        return after_abort(a, s, r);
                if (r < 0)
                        finish(a, s, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "speech recognition failed: %s", strerror(-r));
                else
                        trim(s);
        } else if (partial_due(s)) {
                int64_t end = s->base + (int64_t)s->n;
                s->partial_at = end;
                r = recognize(a, s, s->utt_start, end, WIRE_AUDIO_PARTIAL, false, s->t_data);
                if (r == -ESTALE || r == -ECANCELED)
                        return after_abort(a, s, r);
                if (r < 0)
                        finish(a, s, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "speech recognition failed: %s", strerror(-r));
        } else if (s->single_done)
                finish(a, s, WIRE_OK, WIRE_STOP_EOG, NULL);
        else if (s->limit_hit)
                finish(a, s, WIRE_OK, WIRE_STOP_MAX_TOKENS, "the longest dictation (%u s) was reached",
                       s->cfg.max_seconds);
        else
                finish(a, s, WIRE_OK, WIRE_STOP_EOG, NULL);
        return a->error;
}
