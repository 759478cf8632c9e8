/* SPDX-License-Identifier: MIT */
/* The framed protocol between sottod and sotto-worker, over a SOCK_STREAM
 * socketpair.  A frame is a header {u32 type, u32 length} followed by length
 * bytes of payload, all little-endian.  Every length is checked against
 * WIRE_MAX_PAYLOAD before anything is allocated, and every field is read
 * through a bounds-checked reader: a short or oversized frame is -EBADMSG.
 * Neither side trusts the other's bytes: sottod treats the worker (which
 * parses untrusted content) as possibly compromised. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_HEADER_SIZE 8u
#define WIRE_MAX_PAYLOAD (6u << 20) /* a prompt of up to 4 MiB plus fields */
#define WIRE_MAX_PROMPT (4u << 20)
#define WIRE_MAX_STOP 8u
#define WIRE_MAX_STOP_LEN 256u
#define WIRE_MAX_TEXT 65536u
#define WIRE_MAX_NAME 256u
#define WIRE_MAX_IMAGE (64u << 20)      /* encoded image bytes of one EXPLAIN */
#define WIRE_MAX_IMAGE_CHUNK (4u << 20) /* bytes of one IMAGE_DATA frame */

enum wire_type {
        /* sottod -> worker */
        WIRE_GENERATE = 1,
        WIRE_CANCEL = 2,
        WIRE_CHAT_CLOSE = 3,
        WIRE_AUDIO_START = 10, /* speech recognition: see wire_audio_start */
        WIRE_AUDIO_DATA = 11,
        WIRE_AUDIO_END = 12,   /* u64 req_id: no more audio, finish */
        WIRE_IMAGE_DATA = 20, /* a piece of the encoded image of the EXPLAIN that follows */
        WIRE_EXPLAIN = 21,    /* a generate whose prompt is about that image */
        WIRE_TEST_ESCAPE = 90, /* honoured only by a worker built with test hooks */
        /* worker -> sottod */
        WIRE_READY = 101,
        WIRE_TEXT = 102,
        WIRE_DONE = 103,
        WIRE_WEIGHTS = 104, /* the sealed derived-weights memfd, as SCM_RIGHTS; before READY only */
        WIRE_STATS = 105,   /* decoding counters since the worker started */
        WIRE_AUDIO_TEXT = 110, /* a partial or final hypothesis */
        WIRE_TEST_RESULT = 190,
};

/* Sampling and stopping, as validated by sottod (options.c) and checked
 * again by the worker. */
typedef struct gen_params {
        float temperature;
        int32_t top_k;
        float top_p;
        float min_p;
        float repeat_penalty;
        uint64_t seed;
        uint32_t max_tokens;
        bool raw; /* the prompt as it is, without the model's chat template */
        uint32_t max_prompt_tokens; /* 0: no limit; else longer prompts end in WIRE_ERR_QUOTA (sotto.conf MaxPromptTokens) */
        uint32_t n_stop;
        char *stop[WIRE_MAX_STOP]; /* owned, NUL-terminated */
} gen_params;

void gen_params_default(gen_params *p);
void gen_params_done(gen_params *p); /* frees the stop strings */
int gen_params_copy(gen_params *dst, const gen_params *src);
/* Range checks shared by both sides: 0 or -EINVAL with a sentence. */
int gen_params_check(const gen_params *p, char *err, size_t errlen);

/* WIRE_GENERATE: a one-shot request (chat_id 0) or a chat turn. */
typedef struct wire_generate {
        uint64_t req_id;
        uint64_t chat_id;
        gen_params params;
        const char *prompt; /* points into the frame, not NUL-terminated */
        uint32_t prompt_len;
} wire_generate;

enum wire_status {
        WIRE_OK = 0,
        WIRE_ERR_CANCELLED = 1,
        WIRE_ERR_CONTEXT_FULL = 2,
        WIRE_ERR_INVALID = 3,
        WIRE_ERR_ENGINE = 4,
        WIRE_ERR_BUSY = 5,
        WIRE_ERR_UNAVAILABLE = 6, /* the model cannot do this (e.g. no vision encoder) */
        WIRE_ERR_QUOTA = 7, /* over a size limit of the caller's application (max_prompt_tokens) */
        _WIRE_STATUS_MAX,
};

enum wire_stop_reason {
        WIRE_STOP_EOG = 0,
        WIRE_STOP_MAX_TOKENS = 1,
        WIRE_STOP_STRING = 2,
        WIRE_STOP_CONTEXT = 3,
        WIRE_STOP_NONE = 4, /* failed or cancelled */
        _WIRE_STOP_MAX,
};

typedef struct wire_done {
        uint64_t req_id;
        uint32_t status;      /* enum wire_status */
        uint32_t stop_reason; /* enum wire_stop_reason */
        uint32_t n_prompt;
        uint32_t n_generated;
        uint32_t n_past;      /* context used afterwards (chats) */
        uint64_t prompt_usec;
        uint64_t total_usec;
        char message[WIRE_MAX_NAME]; /* NUL-terminated sentence, "" on success */
} wire_done;

typedef struct wire_ready {
        uint32_t n_ctx;
        uint32_t n_ctx_train;
        uint32_t n_vocab;
        uint32_t pid;
        char arch[64];
        char name[WIRE_MAX_NAME];
        uint32_t caps; /* WIRE_CAP_* */
} wire_ready;

#define WIRE_CAP_IMAGE (1u << 0) /* a vision encoder is loaded: EXPLAIN is answered */

typedef struct wire_text {
        uint64_t req_id;
        uint32_t n_tokens; /* tokens generated so far */
        const char *text;  /* points into the frame */
        uint32_t len;
} wire_text;

/* ---- speech recognition ----
 * sottod sends AUDIO_START, any number of AUDIO_DATA and AUDIO_END (or
 * CANCEL) for one req_id; the worker answers with AUDIO_TEXT frames and ends
 * with WIRE_DONE (n_prompt: audio milliseconds, n_generated: tokens). */
#define WIRE_MAX_AUDIO_CHUNK (1u << 20)
#define WIRE_MAX_AUDIO_TOKENS 512u
#define WIRE_MAX_LANGUAGE 16u

enum wire_audio_format {
        WIRE_AUDIO_WAV = 0,   /* a whole RIFF/WAVE file, parsed by the worker */
        WIRE_AUDIO_S16LE = 1, /* raw interleaved PCM at rate/channels */
        WIRE_AUDIO_F32LE = 2,
        _WIRE_AUDIO_FORMAT_MAX,
};

enum {
        WIRE_AUDIO_PARTIALS = 1u << 0, /* send partial hypotheses */
        WIRE_AUDIO_SINGLE = 1u << 1,   /* end after the first utterance */
        WIRE_AUDIO_LIVE = 1u << 2,     /* a live stream: recognize as it comes */
        _WIRE_AUDIO_FLAGS_ALL = (1u << 3) - 1,
};

typedef struct wire_audio_start {
        uint64_t req_id;
        uint32_t format;     /* enum wire_audio_format */
        uint32_t rate;       /* raw formats: 1000 .. 768000 */
        uint32_t channels;   /* raw formats: 1 .. 32 */
        uint32_t flags;
        uint32_t partial_ms; /* audio between partials: 100 .. 10000 */
        uint32_t max_seconds; /* of audio accepted: 1 .. 86400 */
        char language[WIRE_MAX_LANGUAGE]; /* "" or "auto": detect */
} wire_audio_start;

typedef struct wire_audio_data {
        uint64_t req_id;
        const uint8_t *data; /* points into the frame */
        uint32_t len;
} wire_audio_data;

enum wire_audio_kind {
        WIRE_AUDIO_PARTIAL = 0,
        WIRE_AUDIO_FINAL = 1,
        _WIRE_AUDIO_KIND_MAX,
};

typedef struct wire_audio_text {
        uint64_t req_id;
        uint32_t kind;         /* enum wire_audio_kind */
        uint32_t forced;       /* 1: cut at the longest utterance, not by a pause */
        uint64_t start, end;   /* the utterance, in samples at 16 kHz from the stream's start */
        uint64_t compute_usec; /* recognition time of this hypothesis */
        uint64_t latency_usec; /* from the audio that made it due reaching the worker to this frame */
        uint32_t n_tokens;
        uint32_t tokens[WIRE_MAX_AUDIO_TOKENS];
        const char *text; /* points into the frame; valid UTF-8 */
        uint32_t len;
} wire_audio_text;

/* WIRE_WEIGHTS: the worker built the derived-weights arena
 * (daemon/engine/weights-arena.h) and hands the sealed memfd, attached to
 * the frame as SCM_RIGHTS, to sottod, which gives it to the next workers of
 * the same model files.  sottod believes none of it: it checks the seals and
 * the size itself, and takes the frame only before READY (before the worker
 * has seen a request). */
typedef struct wire_weights {
        uint64_t size;     /* bytes of the memfd */
        uint32_t n_blocks;
} wire_weights;

/* WIRE_STATS: sent before each DONE of a text request, so that a caller
 * whose answer ended sees its steps counted in GetStatistics. */
typedef struct wire_stats {
        uint64_t decode_steps;   /* passes that decoded tokens of decoding requests */
        uint64_t batched_steps;  /* of those, with two requests or more (continuous batching) */
        uint64_t batched_tokens; /* tokens decoded in batched steps */
        uint32_t max_batch;      /* the largest batch */
} wire_stats;

#define WIRE_MAX_FDS 4 /* received fds waiting for their frame; more are closed */

/* ---- growable output buffer ---- */
typedef struct wire_buf {
        uint8_t *data;
        size_t len, cap;
        bool failed; /* an append ran out of memory or past the limit */
} wire_buf;

void wire_buf_free(wire_buf *b);
void wire_put_u32(wire_buf *b, uint32_t v);
void wire_put_u64(wire_buf *b, uint64_t v);
void wire_put_f32(wire_buf *b, float v);
void wire_put_bytes(wire_buf *b, const void *p, uint32_t len); /* u32 length + bytes */

/* ---- bounds-checked reader ---- */
typedef struct wire_reader {
        const uint8_t *p;
        size_t left;
} wire_reader;

int wire_get_u32(wire_reader *r, uint32_t *v);
int wire_get_u64(wire_reader *r, uint64_t *v);
int wire_get_f32(wire_reader *r, float *v);
/* A length-prefixed byte string of at most max bytes; *ret points into the frame. */
int wire_get_bytes(wire_reader *r, uint32_t max, const char **ret, uint32_t *len);
/* Same, copied into buf (size bufsize, NUL-terminated); rejects embedded NULs. */
int wire_get_string(wire_reader *r, char *buf, size_t bufsize);

/* ---- message codecs: encode appends one whole frame to b ---- */
int wire_encode_generate(wire_buf *b, const wire_generate *g);
int wire_decode_generate(const uint8_t *payload, size_t len, wire_generate *g); /* g->params owns copies */
int wire_encode_u64(wire_buf *b, uint32_t type, uint64_t v);                     /* CANCEL, CHAT_CLOSE */
int wire_decode_u64(const uint8_t *payload, size_t len, uint64_t *v);
int wire_encode_ready(wire_buf *b, const wire_ready *r);
int wire_decode_ready(const uint8_t *payload, size_t len, wire_ready *r);
int wire_encode_text(wire_buf *b, uint64_t req_id, uint32_t n_tokens, const char *text, uint32_t len);
int wire_decode_text(const uint8_t *payload, size_t len, wire_text *t);
int wire_encode_done(wire_buf *b, const wire_done *d);
int wire_decode_done(const uint8_t *payload, size_t len, wire_done *d);

int wire_encode_weights(wire_buf *b, const wire_weights *x);
int wire_decode_weights(const uint8_t *payload, size_t len, wire_weights *x);
int wire_encode_stats(wire_buf *b, const wire_stats *x);
int wire_decode_stats(const uint8_t *payload, size_t len, wire_stats *x);

int wire_encode_audio_start(wire_buf *b, const wire_audio_start *a);
int wire_decode_audio_start(const uint8_t *payload, size_t len, wire_audio_start *a);
int wire_encode_audio_data(wire_buf *b, uint64_t req_id, const void *data, uint32_t len);
int wire_decode_audio_data(const uint8_t *payload, size_t len, wire_audio_data *d);
int wire_encode_audio_text(wire_buf *b, const wire_audio_text *t);
int wire_decode_audio_text(const uint8_t *payload, size_t len, wire_audio_text *t);
/* An image travels ahead of its EXPLAIN as IMAGE_DATA frames {u64 req_id,
 * bytes} of at most WIRE_MAX_IMAGE_CHUNK each, in order; the EXPLAIN frame
 * (the fields of GENERATE, then u32 image_size) ends it, and image_size must
 * equal the bytes sent.  The worker holds one image at a time. */
typedef struct wire_explain {
        wire_generate gen; /* gen.prompt is the question */
        uint32_t image_size;
} wire_explain;

typedef struct wire_image_data {
        uint64_t req_id;
        const char *data; /* points into the frame */
        uint32_t len;
} wire_image_data;

/* Appends the IMAGE_DATA frames and the EXPLAIN frame. */
int wire_encode_explain(wire_buf *b, const wire_explain *x, const void *image);
int wire_decode_explain(const uint8_t *payload, size_t len, wire_explain *x); /* x->gen.params owns copies */
int wire_decode_image_data(const uint8_t *payload, size_t len, wire_image_data *d);

/* ---- a non-blocking connection ---- */
typedef struct wire_conn {
        int fd;
        uint8_t *in;
        size_t in_len, in_cap;
        size_t in_consumed; /* bytes of the frame handed out by wire_conn_next */
        wire_buf out;
        size_t out_sent;
        int fds[WIRE_MAX_FDS]; /* received with SCM_RIGHTS, oldest first */
        uint32_t n_fds;
} wire_conn;

void wire_conn_init(wire_conn *c, int fd); /* takes the fd */
void wire_conn_done(wire_conn *c);         /* closes it */
/* Reads what is available.  0: read something or EAGAIN; -EPIPE on EOF. */
int wire_conn_read(wire_conn *c);
/* The next complete frame: 1 with type/payload/len set (valid until the next
 * call), 0 when none is complete yet, -EBADMSG for a bad header. */
int wire_conn_next(wire_conn *c, uint32_t *type, const uint8_t **payload, size_t *len);
/* Writes as much of the output buffer as the socket takes: 0 when all is
 * sent, 1 when some is left (wait for POLLOUT), -errno on error. */
int wire_conn_flush(wire_conn *c);
/* The oldest fd received and not yet taken (the caller owns it), or -1. */
int wire_conn_take_fd(wire_conn *c);
/* Sends the frames of b (all of it, waiting for room) with fd attached to
 * the first byte as SCM_RIGHTS; c->out must be empty.  0 or -errno. */
int wire_conn_send_fd(wire_conn *c, const wire_buf *b, int fd);
/* Frame parsing of one buffer, for the fuzzer: 1 frame, 0 incomplete, -EBADMSG. */
int wire_parse_header(const uint8_t *buf, size_t len, uint32_t *type, uint32_t *plen);

/* True when p[0..len) is valid UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF). */
bool utf8_is_valid(const char *p, size_t len);
