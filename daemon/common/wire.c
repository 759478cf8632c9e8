/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/common/wire.h"
#include "macro.h"

/* ---- parameters ---- */

void gen_params_default(gen_params *p) {
        *p = (gen_params){
                .temperature = 0.8f,
                .top_k = 40,
                .top_p = 0.95f,
                .min_p = 0.05f,
                .repeat_penalty = 1.0f,
                .seed = 0,
                .max_tokens = 512,
        };
}

void gen_params_done(gen_params *p) {
        for (uint32_t i = 0; i < p->n_stop && i < WIRE_MAX_STOP; i++)
                free(p->stop[i]);
        p->n_stop = 0;
}

int gen_params_copy(gen_params *dst, const gen_params *src) {
        *dst = *src;
        dst->n_stop = 0;
        for (uint32_t i = 0; i < src->n_stop; i++) {
                dst->stop[i] = strdup(src->stop[i]);
                if (!dst->stop[i]) {
                        gen_params_done(dst);
                        return -ENOMEM;
                }
                dst->n_stop = i + 1;
        }
        return 0;
}

int gen_params_check(const gen_params *p, char *err, size_t errlen) {
        if (!isfinite(p->temperature) || p->temperature < 0 || p->temperature > 10)
                return set_error(err, errlen, -EINVAL, "temperature must be a number from 0 to 10");
        if (p->top_k < 0 || p->top_k > 1000000)
                return set_error(err, errlen, -EINVAL, "top-k must be from 0 (off) to 1000000");
        if (!isfinite(p->top_p) || p->top_p <= 0 || p->top_p > 1)
                return set_error(err, errlen, -EINVAL, "top-p must be above 0 and at most 1");
        if (!isfinite(p->min_p) || p->min_p < 0 || p->min_p > 1)
                return set_error(err, errlen, -EINVAL, "min-p must be from 0 to 1");
        if (!isfinite(p->repeat_penalty) || p->repeat_penalty < 0.1f || p->repeat_penalty > 10)
                return set_error(err, errlen, -EINVAL, "repeat-penalty must be from 0.1 to 10");
        if (p->max_prompt_tokens > (1u << 24))
                return set_error(err, errlen, -EINVAL, "max-prompt-tokens must be at most 16777216");
        if (p->max_tokens < 1 || p->max_tokens > 65536)
                return set_error(err, errlen, -EINVAL, "max-tokens must be from 1 to 65536");
        if (p->n_stop > WIRE_MAX_STOP)
                return set_error(err, errlen, -EINVAL, "at most %u stop strings", WIRE_MAX_STOP);
        for (uint32_t i = 0; i < p->n_stop; i++) {
                size_t n = strlen(p->stop[i]);
                if (n < 1 || n > WIRE_MAX_STOP_LEN || !utf8_is_valid(p->stop[i], n))
                        return set_error(err, errlen, -EINVAL,
                                         "each stop string must be valid UTF-8 of 1 to %u bytes", WIRE_MAX_STOP_LEN);
        }
        return 0;
}

/* ---- output buffer ---- */

void wire_buf_free(wire_buf *b) {
        free(b->data);
        *b = (wire_buf){};
}

static void put(wire_buf *b, const void *p, size_t n) {
        if (b->failed)
                return;
        if (n > SIZE_MAX - b->len || b->len + n > (size_t)WIRE_MAX_PAYLOAD * 64) {
                b->failed = true;
                return;
        }
        if (b->len + n > b->cap) {
                size_t cap = MAX(b->cap * 2, MAX(b->len + n, (size_t)4096));
                uint8_t *d = realloc(b->data, cap);
                if (!d) {
                        b->failed = true;
                        return;
                }
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
}

void wire_put_u32(wire_buf *b, uint32_t v) {
        uint8_t x[4] = { v, v >> 8, v >> 16, v >> 24 };
        put(b, x, 4);
}

void wire_put_u64(wire_buf *b, uint64_t v) {
        wire_put_u32(b, (uint32_t)v);
        wire_put_u32(b, (uint32_t)(v >> 32));
}

void wire_put_f32(wire_buf *b, float v) {
        uint32_t u;
        memcpy(&u, &v, 4);
        wire_put_u32(b, u);
}

void wire_put_bytes(wire_buf *b, const void *p, uint32_t len) {
        wire_put_u32(b, len);
        put(b, p, len);
}

/* ---- reader ---- */

int wire_get_u32(wire_reader *r, uint32_t *v) {
        if (r->left < 4)
                return -EBADMSG;
        *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
        r->p += 4;
        r->left -= 4;
        return 0;
}

int wire_get_u64(wire_reader *r, uint64_t *v) {
        uint32_t lo, hi;
        if (wire_get_u32(r, &lo) < 0 || wire_get_u32(r, &hi) < 0)
                return -EBADMSG;
        *v = (uint64_t)hi << 32 | lo;
        return 0;
}

int wire_get_f32(wire_reader *r, float *v) {
        uint32_t u;
        if (wire_get_u32(r, &u) < 0)
                return -EBADMSG;
        memcpy(v, &u, 4);
        return 0;
}

int wire_get_bytes(wire_reader *r, uint32_t max, const char **ret, uint32_t *len) {
        uint32_t n;
        if (wire_get_u32(r, &n) < 0 || n > max || n > r->left)
                return -EBADMSG;
        *ret = (const char *)r->p;
        *len = n;
        r->p += n;
        r->left -= n;
        return 0;
}

int wire_get_string(wire_reader *r, char *buf, size_t bufsize) {
        const char *s;
        uint32_t n;
        if (bufsize == 0 || wire_get_bytes(r, (uint32_t)MIN(bufsize - 1, (size_t)UINT32_MAX), &s, &n) < 0)
                return -EBADMSG;
        if (memchr(s, 0, n))
                return -EBADMSG;
        memcpy(buf, s, n);
        buf[n] = 0;
        return 0;
}

/* ---- frames ---- */

/* Reserves the header, returns its offset; finish_frame fills in the length. */
static size_t begin_frame(wire_buf *b, uint32_t type) {
        size_t at = b->len;
        wire_put_u32(b, type);
        wire_put_u32(b, 0);
        return at;
}

static int finish_frame(wire_buf *b, size_t at) {
        if (b->failed)
                return -ENOMEM;
        size_t n = b->len - at - WIRE_HEADER_SIZE;
        if (n > WIRE_MAX_PAYLOAD) {
                b->len = at;
                return -EMSGSIZE;
        }
        uint8_t *p = b->data + at + 4;
        p[0] = n, p[1] = n >> 8, p[2] = n >> 16, p[3] = n >> 24;
        return 0;
}

int wire_parse_header(const uint8_t *buf, size_t len, uint32_t *type, uint32_t *plen) {
        if (len < WIRE_HEADER_SIZE)
                return 0;
        wire_reader r = { buf, len };
        (void)wire_get_u32(&r, type);
        (void)wire_get_u32(&r, plen);
        if (*plen > WIRE_MAX_PAYLOAD)
                return -EBADMSG;
        return len - WIRE_HEADER_SIZE >= *plen;
}

/* ---- messages of plain fields ----
 * Such a message is described once, as a table of its fields in wire order;
 * its encoder and decoder both walk the table. */
typedef enum field_kind {
        FIELD_U32,
        FIELD_U64,
        FIELD_STRING, /* a char array: u32 length + bytes, without the NUL */
} field_kind;

typedef struct wire_field {
        field_kind kind;
        size_t offset, size;
} wire_field;

/* The size check fails the build when a member does not have the width its
 * kind says. */
#define FIELD_OF(kind, type, member, ok)                                                     \
        { kind, offsetof(type, member) + 0 * sizeof(char[(ok) ? 1 : -1]), sizeof(((type *)0)->member) }
#define U32(type, member) FIELD_OF(FIELD_U32, type, member, sizeof(((type *)0)->member) == 4)
#define U64(type, member) FIELD_OF(FIELD_U64, type, member, sizeof(((type *)0)->member) == 8)
#define STRING(type, member) FIELD_OF(FIELD_STRING, type, member, sizeof(((type *)0)->member) > 1)

static int encode_fields(wire_buf *b, uint32_t type, const void *x, const wire_field *f, size_t n) {
        size_t at = begin_frame(b, type);
        for (size_t i = 0; i < n; i++) {
                const char *p = (const char *)x + f[i].offset;
                uint32_t v32;
                uint64_t v64;
                switch (f[i].kind) {
                case FIELD_U32:
                        memcpy(&v32, p, sizeof v32);
                        wire_put_u32(b, v32);
                        break;
                case FIELD_U64:
                        memcpy(&v64, p, sizeof v64);
                        wire_put_u64(b, v64);
                        break;
                case FIELD_STRING:
                        wire_put_bytes(b, p, (uint32_t)strnlen(p, f[i].size - 1));
                        break;
                }
        }
        return finish_frame(b, at);
}

/* The whole payload must be the fields, nothing more or less; x is zeroed
 * first.  Range checks are the caller's. */
static int decode_fields(const uint8_t *payload, size_t len, void *x, size_t xsize, const wire_field *f, size_t n) {
        wire_reader r = { payload, len };
        memset(x, 0, xsize);
        for (size_t i = 0; i < n; i++) {
                char *p = (char *)x + f[i].offset;
                uint32_t v32;
                uint64_t v64;
                switch (f[i].kind) {
                case FIELD_U32:
                        if (wire_get_u32(&r, &v32) < 0)
                                return -EBADMSG;
                        memcpy(p, &v32, sizeof v32);
                        break;
                case FIELD_U64:
                        if (wire_get_u64(&r, &v64) < 0)
                                return -EBADMSG;
                        memcpy(p, &v64, sizeof v64);
                        break;
                case FIELD_STRING:
                        if (wire_get_string(&r, p, f[i].size) < 0)
                                return -EBADMSG;
                        break;
                }
        }
        return r.left == 0 ? 0 : -EBADMSG;
}

#define ENCODE_FIELDS(b, type, x, fields) encode_fields(b, type, x, fields, sizeof fields / sizeof fields[0])
#define DECODE_FIELDS(payload, len, x, fields) \
        decode_fields(payload, len, x, sizeof *(x), fields, sizeof fields / sizeof fields[0])

static const wire_field ready_fields[] = {
        U32(wire_ready, n_ctx), U32(wire_ready, n_ctx_train), U32(wire_ready, n_vocab), U32(wire_ready, pid),
        STRING(wire_ready, arch), STRING(wire_ready, name), U32(wire_ready, caps),
};

static const wire_field weights_fields[] = {
        U64(wire_weights, size),
        U32(wire_weights, n_blocks),
};

static const wire_field stats_fields[] = {
        U64(wire_stats, decode_steps), U64(wire_stats, batched_steps), U64(wire_stats, batched_tokens),
        U32(wire_stats, max_batch),
};

static const wire_field done_fields[] = {
        U64(wire_done, req_id),      U32(wire_done, status),      U32(wire_done, stop_reason),
        U32(wire_done, n_prompt),    U32(wire_done, n_generated), U32(wire_done, n_past),
        U64(wire_done, prompt_usec), U64(wire_done, total_usec),  STRING(wire_done, message),
};

static const wire_field audio_start_fields[] = {
        U64(wire_audio_start, req_id),     U32(wire_audio_start, format),     U32(wire_audio_start, rate),
        U32(wire_audio_start, channels),   U32(wire_audio_start, flags),      U32(wire_audio_start, partial_ms),
        U32(wire_audio_start, max_seconds), STRING(wire_audio_start, language),
};

/* The fields of GENERATE, shared with EXPLAIN. */
static int put_generate(wire_buf *b, const wire_generate *g) {
        const gen_params *p = &g->params;
        if (g->prompt_len > WIRE_MAX_PROMPT || p->n_stop > WIRE_MAX_STOP)
                return -EMSGSIZE;
        wire_put_u64(b, g->req_id);
        wire_put_u64(b, g->chat_id);
        wire_put_f32(b, p->temperature);
        wire_put_u32(b, (uint32_t)p->top_k);
        wire_put_f32(b, p->top_p);
        wire_put_f32(b, p->min_p);
        wire_put_f32(b, p->repeat_penalty);
        wire_put_u64(b, p->seed);
        wire_put_u32(b, p->max_tokens);
        /* flags: 1 raw, 2 a prompt token limit follows (absent in frames
         * that have none, so older frames read the same) */
        wire_put_u32(b, (p->raw ? 1u : 0u) | (p->max_prompt_tokens ? 2u : 0u));
        if (p->max_prompt_tokens)
                wire_put_u32(b, p->max_prompt_tokens);
        wire_put_u32(b, p->n_stop);
        for (uint32_t i = 0; i < p->n_stop; i++)
                wire_put_bytes(b, p->stop[i], (uint32_t)strlen(p->stop[i]));
        wire_put_bytes(b, g->prompt, g->prompt_len);
        return 0;
}

int wire_encode_generate(wire_buf *b, const wire_generate *g) {
        if (g->prompt_len > WIRE_MAX_PROMPT || g->params.n_stop > WIRE_MAX_STOP)
                return -EMSGSIZE;
        size_t at = begin_frame(b, WIRE_GENERATE);
        (void)put_generate(b, g);
        return finish_frame(b, at);
}

/* Leaves r after the prompt; on failure g->params holds nothing. */
static int get_generate(wire_reader *r, wire_generate *g) {
        uint32_t top_k;
        *g = (wire_generate){};
        gen_params *p = &g->params;
        if (wire_get_u64(r, &g->req_id) < 0 || wire_get_u64(r, &g->chat_id) < 0 ||
            wire_get_f32(r, &p->temperature) < 0 || wire_get_u32(r, &top_k) < 0 ||
            wire_get_f32(r, &p->top_p) < 0 || wire_get_f32(r, &p->min_p) < 0 ||
            wire_get_f32(r, &p->repeat_penalty) < 0 || wire_get_u64(r, &p->seed) < 0 ||
            wire_get_u32(r, &p->max_tokens) < 0)
                return -EBADMSG;
        p->top_k = (int32_t)top_k;
        uint32_t flags, n_stop;
        if (wire_get_u32(r, &flags) < 0 || flags > 3u)
                return -EBADMSG;
        p->raw = flags & 1u;
        if ((flags & 2u) && (wire_get_u32(r, &p->max_prompt_tokens) < 0 || p->max_prompt_tokens == 0))
                return -EBADMSG;
        if (wire_get_u32(r, &n_stop) < 0 || n_stop > WIRE_MAX_STOP)
                return -EBADMSG;
        for (uint32_t i = 0; i < n_stop; i++) {
                const char *s;
                uint32_t n;
                if (wire_get_bytes(r, WIRE_MAX_STOP_LEN, &s, &n) < 0 || memchr(s, 0, n)) {
                        gen_params_done(p);
                        return -EBADMSG;
                }
                p->stop[i] = strndup(s, n);
                if (!p->stop[i]) {
                        gen_params_done(p);
                        return -ENOMEM;
                }
                p->n_stop = i + 1;
        }
        if (wire_get_bytes(r, WIRE_MAX_PROMPT, &g->prompt, &g->prompt_len) < 0 ||
            gen_params_check(p, NULL, 0) < 0) {
                gen_params_done(p);
                return -EBADMSG;
        }
        return 0;
}

int wire_decode_generate(const uint8_t *payload, size_t len, wire_generate *g) {
        wire_reader r = { payload, len };
        int k = get_generate(&r, g);
        if (k < 0)
                return k;
        if (r.left != 0) {
                gen_params_done(&g->params);
                return -EBADMSG;
        }
        return 0;
}

int wire_encode_u64(wire_buf *b, uint32_t type, uint64_t v) {
        size_t at = begin_frame(b, type);
        wire_put_u64(b, v);
        return finish_frame(b, at);
}

int wire_decode_u64(const uint8_t *payload, size_t len, uint64_t *v) {
        wire_reader r = { payload, len };
        if (wire_get_u64(&r, v) < 0 || r.left != 0)
                return -EBADMSG;
        return 0;
}

int wire_encode_ready(wire_buf *b, const wire_ready *x) {
        return ENCODE_FIELDS(b, WIRE_READY, x, ready_fields);
}

int wire_decode_ready(const uint8_t *payload, size_t len, wire_ready *x) {
        if (DECODE_FIELDS(payload, len, x, ready_fields) < 0)
                return -EBADMSG;
        if (!utf8_is_valid(x->arch, strlen(x->arch)) || !utf8_is_valid(x->name, strlen(x->name)))
                return -EBADMSG;
        if (x->n_ctx < 1 || x->n_ctx > (1u << 20) || x->n_vocab < 1)
                return -EBADMSG;
        return 0;
}

int wire_encode_weights(wire_buf *b, const wire_weights *x) {
        return ENCODE_FIELDS(b, WIRE_WEIGHTS, x, weights_fields);
}

int wire_decode_weights(const uint8_t *payload, size_t len, wire_weights *x) {
        if (DECODE_FIELDS(payload, len, x, weights_fields) < 0)
                return -EBADMSG;
        if (x->size == 0 || x->size > (1ull << 40) || x->n_blocks == 0)
                return -EBADMSG;
        return 0;
}

int wire_encode_stats(wire_buf *b, const wire_stats *x) {
        return ENCODE_FIELDS(b, WIRE_STATS, x, stats_fields);
}

int wire_decode_stats(const uint8_t *payload, size_t len, wire_stats *x) {
        if (DECODE_FIELDS(payload, len, x, stats_fields) < 0)
                return -EBADMSG;
        /* A batched step is a decoding step of 2 to max_batch requests. */
        if (x->batched_steps > x->decode_steps || x->max_batch > 4096 ||
            x->batched_tokens < 2 * x->batched_steps ||
            (x->batched_steps > 0 && (x->max_batch < 2 || x->batched_tokens / x->max_batch > x->batched_steps)))
                return -EBADMSG;
        return 0;
}

int wire_encode_text(wire_buf *b, uint64_t req_id, uint32_t n_tokens, const char *text, uint32_t len) {
        if (len > WIRE_MAX_TEXT)
                return -EMSGSIZE;
        size_t at = begin_frame(b, WIRE_TEXT);
        wire_put_u64(b, req_id);
        wire_put_u32(b, n_tokens);
        wire_put_bytes(b, text, len);
        return finish_frame(b, at);
}

int wire_decode_text(const uint8_t *payload, size_t len, wire_text *t) {
        wire_reader r = { payload, len };
        *t = (wire_text){};
        if (wire_get_u64(&r, &t->req_id) < 0 || wire_get_u32(&r, &t->n_tokens) < 0 ||
            wire_get_bytes(&r, WIRE_MAX_TEXT, &t->text, &t->len) < 0 || r.left != 0)
                return -EBADMSG;
        return 0;
}

int wire_encode_done(wire_buf *b, const wire_done *d) {
        return ENCODE_FIELDS(b, WIRE_DONE, d, done_fields);
}

int wire_decode_done(const uint8_t *payload, size_t len, wire_done *d) {
        if (DECODE_FIELDS(payload, len, d, done_fields) < 0)
                return -EBADMSG;
        if (d->status >= _WIRE_STATUS_MAX || d->stop_reason >= _WIRE_STOP_MAX ||
            !utf8_is_valid(d->message, strlen(d->message)))
                return -EBADMSG;
        return 0;
}

/* ---- speech recognition ---- */

static bool audio_start_valid(const wire_audio_start *a) {
        if (a->format >= _WIRE_AUDIO_FORMAT_MAX || (a->flags & ~(uint32_t)_WIRE_AUDIO_FLAGS_ALL) ||
            a->partial_ms < 100 || a->partial_ms > 10000 || a->max_seconds < 1 || a->max_seconds > 86400)
                return false;
        if (a->format != WIRE_AUDIO_WAV &&
            (a->rate < 1000 || a->rate > 768000 || a->channels < 1 || a->channels > 32))
                return false;
        /* A live stream is raw PCM, already what recognition wants. */
        if ((a->flags & WIRE_AUDIO_LIVE) && (a->format == WIRE_AUDIO_WAV || a->rate != 16000 || a->channels != 1))
                return false;
        for (const char *c = a->language; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || *c == '-' || *c == '_'))
                        return false;
        return true;
}

int wire_encode_audio_start(wire_buf *b, const wire_audio_start *a) {
        if (!audio_start_valid(a) || strnlen(a->language, sizeof a->language) >= sizeof a->language)
                return -EINVAL;
        return ENCODE_FIELDS(b, WIRE_AUDIO_START, a, audio_start_fields);
}

int wire_decode_audio_start(const uint8_t *payload, size_t len, wire_audio_start *a) {
        if (DECODE_FIELDS(payload, len, a, audio_start_fields) < 0 || !audio_start_valid(a))
                return -EBADMSG;
        return 0;
}

int wire_encode_audio_data(wire_buf *b, uint64_t req_id, const void *data, uint32_t len) {
        if (len > WIRE_MAX_AUDIO_CHUNK)
                return -EMSGSIZE;
        size_t at = begin_frame(b, WIRE_AUDIO_DATA);
        wire_put_u64(b, req_id);
        wire_put_bytes(b, data, len);
        return finish_frame(b, at);
}

int wire_decode_audio_data(const uint8_t *payload, size_t len, wire_audio_data *d) {
        wire_reader r = { payload, len };
        const char *p;
        *d = (wire_audio_data){};
        if (wire_get_u64(&r, &d->req_id) < 0 || wire_get_bytes(&r, WIRE_MAX_AUDIO_CHUNK, &p, &d->len) < 0 ||
            r.left != 0)
                return -EBADMSG;
        d->data = (const uint8_t *)p;
        return 0;
}

int wire_encode_audio_text(wire_buf *b, const wire_audio_text *t) {
        if (t->kind >= _WIRE_AUDIO_KIND_MAX || t->n_tokens > WIRE_MAX_AUDIO_TOKENS || t->len > WIRE_MAX_TEXT ||
            t->start > t->end || t->forced > 1 || !utf8_is_valid(t->text, t->len))
                return -EINVAL;
        size_t at = begin_frame(b, WIRE_AUDIO_TEXT);
        wire_put_u64(b, t->req_id);
        wire_put_u32(b, t->kind);
        wire_put_u32(b, t->forced);
        wire_put_u64(b, t->start);
        wire_put_u64(b, t->end);
        wire_put_u64(b, t->compute_usec);
        wire_put_u64(b, t->latency_usec);
        wire_put_u32(b, t->n_tokens);
        for (uint32_t i = 0; i < t->n_tokens; i++)
                wire_put_u32(b, t->tokens[i]);
        wire_put_bytes(b, t->text, t->len);
        return finish_frame(b, at);
}

int wire_decode_audio_text(const uint8_t *payload, size_t len, wire_audio_text *t) {
        wire_reader r = { payload, len };
        *t = (wire_audio_text){};
        if (wire_get_u64(&r, &t->req_id) < 0 || wire_get_u32(&r, &t->kind) < 0 || wire_get_u32(&r, &t->forced) < 0 ||
            wire_get_u64(&r, &t->start) < 0 || wire_get_u64(&r, &t->end) < 0 ||
            wire_get_u64(&r, &t->compute_usec) < 0 || wire_get_u64(&r, &t->latency_usec) < 0 ||
            wire_get_u32(&r, &t->n_tokens) < 0)
                return -EBADMSG;
        if (t->kind >= _WIRE_AUDIO_KIND_MAX || t->forced > 1 || t->start > t->end ||
            t->n_tokens > WIRE_MAX_AUDIO_TOKENS)
                return -EBADMSG;
        for (uint32_t i = 0; i < t->n_tokens; i++)
                if (wire_get_u32(&r, &t->tokens[i]) < 0)
                        return -EBADMSG;
        if (wire_get_bytes(&r, WIRE_MAX_TEXT, &t->text, &t->len) < 0 || r.left != 0 ||
            !utf8_is_valid(t->text, t->len))
                return -EBADMSG;
        return 0;
}

/* ---- images ---- */

int wire_encode_explain(wire_buf *b, const wire_explain *x, const void *image) {
        const uint8_t *p = image;
        if (x->image_size == 0 || x->image_size > WIRE_MAX_IMAGE || !image ||
            x->gen.prompt_len > WIRE_MAX_PROMPT || x->gen.params.n_stop > WIRE_MAX_STOP)
                return -EMSGSIZE;
        size_t start = b->len;
        for (uint32_t off = 0; off < x->image_size;) {
                uint32_t n = MIN(x->image_size - off, WIRE_MAX_IMAGE_CHUNK);
                size_t at = begin_frame(b, WIRE_IMAGE_DATA);
                wire_put_u64(b, x->gen.req_id);
                wire_put_bytes(b, p + off, n);
                int r = finish_frame(b, at);
                if (r < 0) {
                        b->len = start;
                        return r;
                }
                off += n;
        }
        size_t at = begin_frame(b, WIRE_EXPLAIN);
        (void)put_generate(b, &x->gen);
        wire_put_u32(b, x->image_size);
        int r = finish_frame(b, at);
        if (r < 0)
                b->len = start;
        return r;
}

int wire_decode_explain(const uint8_t *payload, size_t len, wire_explain *x) {
        wire_reader r = { payload, len };
        *x = (wire_explain){};
        int k = get_generate(&r, &x->gen);
        if (k < 0)
                return k;
        if (wire_get_u32(&r, &x->image_size) < 0 || r.left != 0 || x->image_size == 0 ||
            x->image_size > WIRE_MAX_IMAGE) {
                gen_params_done(&x->gen.params);
                return -EBADMSG;
        }
        return 0;
}

int wire_decode_image_data(const uint8_t *payload, size_t len, wire_image_data *d) {
        wire_reader r = { payload, len };
        *d = (wire_image_data){};
        if (wire_get_u64(&r, &d->req_id) < 0 || wire_get_bytes(&r, WIRE_MAX_IMAGE_CHUNK, &d->data, &d->len) < 0 ||
            r.left != 0 || d->len == 0)
                return -EBADMSG;
        return 0;
}

/* ---- connection ---- */

void wire_conn_init(wire_conn *c, int fd) {
        *c = (wire_conn){ .fd = fd };
}

void wire_conn_done(wire_conn *c) {
        if (c->fd >= 0)
                close(c->fd);
        for (uint32_t i = 0; i < c->n_fds && i < WIRE_MAX_FDS; i++)
                close(c->fds[i]);
        free(c->in);
        wire_buf_free(&c->out);
        *c = (wire_conn){ .fd = -1 };
}

int wire_conn_read(wire_conn *c) {
        /* Drop the frame handed out last. */
        if (c->in_consumed > 0) {
                memmove(c->in, c->in + c->in_consumed, c->in_len - c->in_consumed);
                c->in_len -= c->in_consumed;
                c->in_consumed = 0;
        }
        if (c->in_cap - c->in_len < 65536) {
                size_t cap = c->in_cap ? c->in_cap * 2 : 131072;
                if (cap > WIRE_MAX_PAYLOAD + WIRE_HEADER_SIZE + 131072)
                        cap = WIRE_MAX_PAYLOAD + WIRE_HEADER_SIZE + 131072;
                if (cap > c->in_cap) {
                        uint8_t *p = realloc(c->in, cap);
                        if (!p)
                                return -ENOMEM;
                        c->in = p;
                        c->in_cap = cap;
                }
        }
        if (c->in_len == c->in_cap)
                return 0; /* full: the caller must consume frames first */
        /* recvmsg: fds may come along (WIRE_WEIGHTS); the kernel closes
         * those that do not fit the control buffer. */
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * WIRE_MAX_FDS)];
        } control;
        struct iovec iov = { .iov_base = c->in + c->in_len, .iov_len = c->in_cap - c->in_len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof control };
        ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
                if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS || h->cmsg_len < CMSG_LEN(0))
                        continue;
                size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
                        if (c->n_fds < WIRE_MAX_FDS)
                                c->fds[c->n_fds++] = fd;
                        else
                                close(fd);
                }
        }
        if (n == 0)
                return -EPIPE;
        c->in_len += (size_t)n;
        return 0;
}

int wire_conn_take_fd(wire_conn *c) {
        if (c->n_fds == 0)
                return -1;
        int fd = c->fds[0];
        memmove(c->fds, c->fds + 1, (c->n_fds - 1) * sizeof *c->fds);
        c->n_fds--;
        return fd;
}

int wire_conn_send_fd(wire_conn *c, const wire_buf *b, int fd) {
        if (b->failed || b->len == 0 || c->out.len > c->out_sent)
                return -EINVAL;
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = b->data, .iov_len = b->len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof control };
        struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &fd, sizeof fd);
        size_t sent = 0;
        while (sent < b->len) {
                ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd p = { .fd = c->fd, .events = POLLOUT };
                                (void)poll(&p, 1, 1000);
                                continue;
                        }
                        return -errno;
                }
                sent += (size_t)n;
                /* The fd went with the first bytes; the rest goes plain. */
                iov = (struct iovec){ .iov_base = b->data + sent, .iov_len = b->len - sent };
                mh.msg_control = NULL;
                mh.msg_controllen = 0;
        }
        return 0;
}

int wire_conn_next(wire_conn *c, uint32_t *type, const uint8_t **payload, size_t *len) {
        if (c->in_consumed > 0) {
                memmove(c->in, c->in + c->in_consumed, c->in_len - c->in_consumed);
                c->in_len -= c->in_consumed;
                c->in_consumed = 0;
        }
        uint32_t plen;
        int r = wire_parse_header(c->in, c->in_len, type, &plen);
        if (r <= 0)
                return r;
        *payload = c->in + WIRE_HEADER_SIZE;
        *len = plen;
        c->in_consumed = WIRE_HEADER_SIZE + plen;
        return 1;
}

int wire_conn_flush(wire_conn *c) {
        while (c->out_sent < c->out.len) {
                ssize_t n = send(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return -errno;
                }
                c->out_sent += (size_t)n;
        }
        if (c->out_sent == c->out.len) {
                c->out.len = 0;
                c->out_sent = 0;
                return 0;
        }
        if (c->out_sent > 1u << 20) {
                memmove(c->out.data, c->out.data + c->out_sent, c->out.len - c->out_sent);
                c->out.len -= c->out_sent;
                c->out_sent = 0;
        }
        return 1;
}

/* ---- UTF-8 ---- */

bool utf8_is_valid(const char *s, size_t len) {
        const uint8_t *p = (const uint8_t *)s, *end = p + len;
        while (p < end) {
                uint8_t c = *p;
                if (c < 0x80) {
                        p++;
                        continue;
                }
                size_t n;
                uint32_t cp, min;
                if ((c & 0xe0) == 0xc0)
                        n = 2, cp = c & 0x1f, min = 0x80;
                else if ((c & 0xf0) == 0xe0)
                        n = 3, cp = c & 0x0f, min = 0x800;
                else if ((c & 0xf8) == 0xf0)
                        n = 4, cp = c & 0x07, min = 0x10000;
                else
                        return false;
                if ((size_t)(end - p) < n)
                        return false;
                for (size_t i = 1; i < n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                p += n;
        }
        return true;
}
