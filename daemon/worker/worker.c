/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/worker/stop.h"
#include "daemon/worker/worker-audio.h"
#include "daemon/worker/worker-batch.h"
#include "daemon/worker/worker-chat.h"
#include "daemon/worker/worker-image.h"
#include "daemon/worker/worker.h"
#include "macro.h"

#define PREFILL_CHUNK 64
#define OUT_HIGH_WATER (1u << 20)

typedef struct wchat {
        uint64_t id;
        engine_session *sess;
        bool busy;
        bool closing;
        bool turn_open; /* the model's last answer ended without <end_of_turn> */
        struct wchat *next;
} wchat;

typedef struct wreq {
        uint64_t id;
        wchat *chat;
        engine_session *own; /* one-shot requests own their session */
        engine_session *sess;
        engine_sampler *sampler;
        gen_params params;
        int32_t *prompt;
        size_t n_prompt, prompt_pos;
        int32_t n_past_start;
        int32_t pending; /* sampled token not handled yet, -1 none */
        uint32_t n_gen;
        detok_stream ds;
        char *text;
        size_t text_len, text_cap, emitted;
        bool cancelled;
        bool prompt_done;
        bool turn_closed; /* ended with its end-of-turn token in the context */
        uint64_t t_start, prompt_usec;
        /* EXPLAIN: the encoded image and the question, turned into the
         * prompt by the first step (worker-image.c) */
        uint8_t *image;
        size_t image_size;
        char *question;
        size_t question_len;
        worker_explain_prompt xp;
        worker_explain_job *job; /* decoding and encoding the image on its own thread */
        struct wreq *next;
} wreq;

typedef struct worker {
        engine_model *model;
        const tokenizer *tok;
        worker_config cfg;
        int32_t n_vocab;
        float *logits;
        wire_conn conn;
        wreq *active; /* round robin: the head runs next */
        uint32_t n_active;
        wchat *chats;
        uint32_t n_chats;
        wreq *current;
        worker_vision *vision;
        worker_image_stage stage; /* the image of the next EXPLAIN */
        wreq *first_next; /* just finished its prompt: its first token goes out next */
        uint64_t last_poll;
        bool eof;
        int error;
        waudio *audio; /* speech recognition streams */
        worker_batch batch; /* continuous batching of the decoding requests (worker-batch.c) */
        wreq **in_batch;    /* the requests of the batched step in progress */
        int32_t n_in_batch;
} worker;

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- sending ---- */

static int flush_out(worker *w, bool block) {
        for (;;) {
                int r = wire_conn_flush(&w->conn);
                if (r <= 0)
                        return r;
                if (!block && w->conn.out.len - w->conn.out_sent < OUT_HIGH_WATER)
                        return 0;
                struct pollfd p = { .fd = w->conn.fd, .events = POLLOUT };
                if (poll(&p, 1, -1) < 0 && errno != EINTR)
                        return -errno;
        }
}

static void send_text(worker *w, wreq *q, const char *text, size_t len) {
        while (len > 0 || text == NULL) {
                size_t n = MIN(len, (size_t)WIRE_MAX_TEXT);
                if (wire_encode_text(&w->conn.out, q->id, q->n_gen, text ? text : "", (uint32_t)n) < 0)
                        w->error = -ENOMEM;
                if (!text)
                        break;
                text += n;
                len -= n;
        }
        if (flush_out(w, false) < 0)
                w->error = -EPIPE;
}

/* ---- requests ---- */

static void chat_free(worker *w, wchat *c) {
        for (wchat **p = &w->chats; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        engine_session_free(c->sess);
        free(c);
        w->n_chats--;
}

static void req_free(wreq *q) {
        if (!q)
                return;
        engine_session_free(q->own);
        engine_sampler_free(q->sampler);
        gen_params_done(&q->params);
        free(q->prompt);
        free(q->text);
        worker_explain_free(q->job); /* stops the encoder, waits for its thread */
        free(q->image);
        free(q->question);
        worker_explain_prompt_done(&q->xp);
        free(q);
}

static void req_finish(worker *w, wreq *q, enum wire_status status, enum wire_stop_reason why, const char *fmt, ...)
        _printf_(5, 6);

static void req_finish(worker *w, wreq *q, enum wire_status status, enum wire_stop_reason why, const char *fmt, ...) {
        wire_done d = {
                .req_id = q->id,
                .status = status,
                .stop_reason = status == WIRE_OK ? why : WIRE_STOP_NONE,
                .n_prompt = (uint32_t)q->n_prompt,
                .n_generated = q->n_gen,
                .prompt_usec = q->prompt_usec,
                .total_usec = now_usec() - q->t_start,
        };
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(d.message, sizeof d.message, fmt, ap);
                va_end(ap);
        }
        if (q->chat) {
                /* A turn that did not complete leaves no trace in the chat. */
                if (status != WIRE_OK && q->sess && engine_session_rewind(q->sess, q->n_past_start) < 0) {
                        /* a sliding-window cache no longer holds what that
                         * position needs (engine.h): the chat starts over */
                        (void)engine_session_rewind(q->sess, 0);
                        q->chat->turn_open = false;
                }
                d.n_past = q->sess ? (uint32_t)engine_session_n_past(q->sess) : 0;
                if (status == WIRE_OK)
                        q->chat->turn_open = !q->turn_closed;
                q->chat->busy = false;
                if (q->chat->closing)
                        chat_free(w, q->chat);
        } else if (q->sess)
                d.n_past = (uint32_t)engine_session_n_past(q->sess);
        /* The counters first: when the caller has its answer, they count it. */
        if (wire_encode_stats(&w->conn.out, &w->batch.total) < 0 || wire_encode_done(&w->conn.out, &d) < 0)
                w->error = -ENOMEM;
        for (wreq **p = &w->active; *p; p = &(*p)->next)
                if (*p == q) {
                        *p = q->next;
                        break;
                }
        if (w->first_next == q)
                w->first_next = NULL;
        w->n_active--;
        req_free(q);
        if (flush_out(w, false) < 0)
                w->error = -EPIPE;
}

static int text_append(wreq *q, const char *s, size_t n) {
        if (q->text_len + n > q->text_cap) {
                size_t cap = MAX(q->text_cap * 2, q->text_len + n + 256);
                char *t = realloc(q->text, cap);
                if (!t)
                        return -ENOMEM;
                q->text = t;
                q->text_cap = cap;
        }
        memcpy(q->text + q->text_len, s, n);
        q->text_len += n;
        return 0;
}

/* Hands out what the stop strings allow; true when one was hit. */
static bool emit_text(worker *w, wreq *q, bool final) {
        bool hit;
        size_t n = stop_scan(q->text, q->text_len, q->emitted, q->params.stop, q->params.n_stop, &hit);
        if (final && !hit)
                n = q->text_len - q->emitted;
        send_text(w, q, n ? q->text + q->emitted : NULL, n);
        q->emitted += n;
        return hit;
}

static wchat *chat_find(worker *w, uint64_t id) {
        for (wchat *c = w->chats; c; c = c->next)
                if (c->id == id)
                        return c;
        return NULL;
}

static bool abort_cb(void *userdata);

/* GENERATE, or EXPLAIN when image is set (taken). */
static void start_request(worker *w, wire_generate g, uint8_t *image, size_t image_size) {
        wreq *q = calloc(1, sizeof *q);
        if (!q) {
                gen_params_done(&g.params);
                free(image);
                w->error = -ENOMEM;
                return;
        }
        q->image = image;
        q->image_size = image_size;
        q->id = g.req_id;
        q->params = g.params; /* takes the stop strings */
        q->pending = -1;
        q->t_start = now_usec();
        detok_stream_init(&q->ds);
        q->ds.first = false; /* the answer continues the prompt: keep its leading space */
        q->next = NULL;
        /* First tokens first: a new request runs its prompt right after the
         * step in progress, then (first_next) its first token, and only then
         * takes its turn with the others.  So a long generation delays a new
         * request's first token by at most the one step it is in (sottod's
         * priorities decide which requests get here at all). */
        q->next = w->active;
        w->active = q;
        w->n_active++;

        if (w->n_active > w->cfg.max_active)
                return req_finish(w, q, WIRE_ERR_BUSY, WIRE_STOP_NONE, "the worker is running %u requests already",
                                  w->cfg.max_active);
        if (g.chat_id) {
                wchat *c = chat_find(w, g.chat_id);
                if (!c) {
                        if (w->n_chats >= w->cfg.max_chats)
                                return req_finish(w, q, WIRE_ERR_BUSY, WIRE_STOP_NONE,
                                                  "the worker holds %u chats already", w->cfg.max_chats);
                        c = calloc(1, sizeof *c);
                        if (!c)
                                return req_finish(w, q, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "out of memory");
                        c->id = g.chat_id;
                        c->next = w->chats;
                        w->chats = c;
                        w->n_chats++;
                }
                if (c->busy || c->closing)
                        return req_finish(w, q, WIRE_ERR_BUSY, WIRE_STOP_NONE, "this chat is answering already");
                c->busy = true;
                q->chat = c;
        }
        if (q->image) {
                /* The first step decodes the image and builds the prompt. */
                q->question = strndup(g.prompt, g.prompt_len);
                q->question_len = g.prompt_len;
                if (!q->question)
                        return req_finish(w, q, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "out of memory");
        }
        /* The prompt is tokenized here, in the sandbox, never in sottod, in
         * the model's chat template unless raw (worker-chat.c).  Text that
         * spells a control token stays text (parse_special off). */
        worker_chat_turn turn = {
                .first = !q->chat || !q->chat->sess || engine_session_n_past(q->chat->sess) == 0,
                .raw = q->params.raw,
                .turn_open = q->chat && q->chat->turn_open,
        };
        char err[256] = "";
        int r = q->image ? 0
                         : worker_chat_prompt(w->tok, g.prompt, g.prompt_len, &turn, &q->prompt, &q->n_prompt, err,
                                              sizeof err);
        if (r < 0)
                return req_finish(w, q, r == -ENOMEM ? WIRE_ERR_ENGINE : WIRE_ERR_INVALID, WIRE_STOP_NONE, "%s",
                                  err);
        if (q->n_prompt == 0 && !q->image)
                return req_finish(w, q, WIRE_ERR_INVALID, WIRE_STOP_NONE, "the prompt is empty");
        engine_sampler_params sp;
        engine_sampler_default_params(&sp);
        sp.temperature = q->params.temperature;
        sp.top_k = q->params.top_k;
        sp.top_p = q->params.top_p;
        sp.min_p = q->params.min_p;
        sp.repeat_penalty = q->params.repeat_penalty;
        sp.seed = q->params.seed;
        r = engine_sampler_new(&sp, w->n_vocab, &q->sampler);
        if (r < 0)
                return req_finish(w, q, WIRE_ERR_INVALID, WIRE_STOP_NONE, "bad sampling parameters: %s",
                                  strerror(-r));
}

static void handle_generate(worker *w, const uint8_t *payload, size_t len) {
        wire_generate g;
        if (wire_decode_generate(payload, len, &g) < 0) {
                w->error = -EBADMSG;
                return;
        }
        start_request(w, g, NULL, 0);
}

static void handle_explain(worker *w, const uint8_t *payload, size_t len) {
        wire_explain x;
        uint8_t *image;
        if (wire_decode_explain(payload, len, &x) < 0) {
                w->error = -EBADMSG;
                return;
        }
        if (worker_image_stage_take(&w->stage, x.gen.req_id, x.image_size, &image) < 0) {
                gen_params_done(&x.gen.params);
                w->error = -EBADMSG;
                return;
        }
        start_request(w, x.gen, image, x.image_size);
}

static void handle_cancel(worker *w, const uint8_t *payload, size_t len) {
        uint64_t id;
        if (wire_decode_u64(payload, len, &id) < 0) {
                w->error = -EBADMSG;
                return;
        }
        for (wreq *q = w->active; q; q = q->next)
                if (q->id == id)
                        q->cancelled = true;
        (void)waudio_cancel(w->audio, id);
}

static void handle_chat_close(worker *w, const uint8_t *payload, size_t len) {
        uint64_t id;
        if (wire_decode_u64(payload, len, &id) < 0) {
                w->error = -EBADMSG;
                return;
        }
        wchat *c = chat_find(w, id);
        if (!c)
                return;
        if (c->busy)
                c->closing = true; /* freed when its turn ends */
        else
                chat_free(w, c);
}

#ifdef SOTTO_TEST_HOOKS
#include <fcntl.h>
#include <sys/socket.h>
/* Tries what the sandbox must forbid and reports each result, then tries to
 * execute a program, which must kill the worker. */
static void handle_test_escape(worker *w) {
        char buf[512];
        int fd1 = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
        int e1 = fd1 < 0 ? errno : 0;
        int fd2 = openat(AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
        int e2 = fd2 < 0 ? errno : 0;
        int fd3 = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int e3 = fd3 < 0 ? errno : 0;
        int fd4 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int e4 = fd4 < 0 ? errno : 0;
        int fd5 = open("/tmp/sotto-escape", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        int e5 = fd5 < 0 ? errno : 0;
        int n = snprintf(buf, sizeof buf, "open=%d openat=%d socket-unix=%d socket-inet=%d create=%d", fd1 < 0 ? -e1 : 0,
                         fd2 < 0 ? -e2 : 0, fd3 < 0 ? -e3 : 0, fd4 < 0 ? -e4 : 0, fd5 < 0 ? -e5 : 0);
        size_t at = w->conn.out.len;
        (void)at;
        wire_put_u32(&w->conn.out, WIRE_TEST_RESULT);
        wire_put_u32(&w->conn.out, (uint32_t)n + 4);
        wire_put_bytes(&w->conn.out, buf, (uint32_t)n);
        (void)flush_out(w, true);
        char *argv[] = { (char *)"/bin/true", NULL };
        execve("/bin/true", argv, NULL);
        /* Still here: the filter did not kill us.  Say so. */
        n = snprintf(buf, sizeof buf, "execve=%d", -errno);
        wire_put_u32(&w->conn.out, WIRE_TEST_RESULT);
        wire_put_u32(&w->conn.out, (uint32_t)n + 4);
        wire_put_bytes(&w->conn.out, buf, (uint32_t)n);
        (void)flush_out(w, true);
}
#endif

static void dispatch(worker *w) {
        uint32_t type;
        const uint8_t *payload;
        size_t len;
        int r = 0;

        while (!w->error && (r = wire_conn_next(&w->conn, &type, &payload, &len)) > 0) {
                switch (type) {
                case WIRE_GENERATE:
                        handle_generate(w, payload, len);
                        break;
                case WIRE_CANCEL:
                        handle_cancel(w, payload, len);
                        break;
                case WIRE_CHAT_CLOSE:
                        handle_chat_close(w, payload, len);
                        break;
                case WIRE_IMAGE_DATA:
                        if ((r = worker_image_stage_add(&w->stage, payload, len)) < 0)
                                w->error = r;
                        r = 0;
                        break;
                case WIRE_EXPLAIN:
                        handle_explain(w, payload, len);
                        break;
                case WIRE_AUDIO_START:
                case WIRE_AUDIO_DATA:
                case WIRE_AUDIO_END:
                        if ((r = waudio_dispatch(w->audio, type, payload, len)) < 0)
                                w->error = r;
                        r = 0;
                        break;
#ifdef SOTTO_TEST_HOOKS
                case WIRE_TEST_ESCAPE:
                        handle_test_escape(w);
                        break;
#endif
                default:
                        w->error = -EBADMSG;
                }
        }
        if (r < 0)
                w->error = r;
}

/* Reads and applies whatever sottod sent, without waiting. */
static void poll_input(worker *w) {
        struct pollfd p = { .fd = w->conn.fd, .events = POLLIN };
        while (!w->eof && !w->error && poll(&p, 1, 0) > 0) {
                int r = wire_conn_read(&w->conn);
                if (r == -EPIPE)
                        w->eof = true;
                else if (r < 0)
                        w->error = r;
                dispatch(w);
                if (!(p.revents & POLLIN))
                        break;
        }
}

/* Polled by the engine between layers: a cancel stops a step midway. */
static bool abort_cb(void *userdata) {
        worker *w = userdata;
        uint64_t t = now_usec();
        if (t - w->last_poll > 2000) {
                w->last_poll = t;
                /* GENERATE frames read here only queue work; nothing that the
                 * running step uses is freed (chats close after their turn). */
                poll_input(w);
        }
        for (int32_t i = 0; i < w->n_in_batch; i++)
                if (w->in_batch[i]->cancelled || w->eof)
                        return true;
        return w->current && (w->current->cancelled || w->eof);
}

/* Polled during a speech decode (worker-audio.c): a CANCEL or the end of
 * the audio read here stops it. */
static bool audio_poll(void *userdata) {
        worker *w = userdata;
        uint64_t t = now_usec();
        if (t - w->last_poll > 2000) {
                w->last_poll = t;
                poll_input(w);
        }
        return w->eof || w->error;
}

/* ---- decoding ---- */

/* Hands out a decoding request's pending token and checks what ends it:
 * false when it ended (q is freed), true when the token goes into its
 * session next. */
static bool req_emit(worker *w, wreq *q) {
        int r;

        int32_t t = q->pending;
        bool eog = worker_chat_is_end(w->tok, t);
        if (!eog) {
                /* Byte-level BPE vocabularies have tokens of 256 bytes and more
                 * (Llama 3, Qwen); 1 KiB holds any token plus a pending tail. */
                char buf[1024];
                q->n_gen++;
                engine_sampler_accept(q->sampler, t);
                r = detok_stream_push(w->tok, &q->ds, t, buf, sizeof buf);
                if (r < 0 || text_append(q, buf, (size_t)MAX(r, 0)) < 0) {
                        req_finish(w, q, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "cannot turn token %d into text", t);
                        return false;
                }
                if (emit_text(w, q, false)) {
                        req_finish(w, q, WIRE_OK, WIRE_STOP_STRING, NULL);
                        return false;
                }
        }
        enum wire_stop_reason why = WIRE_STOP_NONE;
        if (eog)
                why = WIRE_STOP_EOG;
        else if (q->n_gen >= q->params.max_tokens)
                why = WIRE_STOP_MAX_TOKENS;
        else if (engine_session_n_past(q->sess) >= engine_session_n_ctx(q->sess))
                why = WIRE_STOP_CONTEXT;
        if (why != WIRE_STOP_NONE) {
                /* A chat keeps the last token in its context for the next turn. */
                if (q->chat && engine_session_n_past(q->sess) < engine_session_n_ctx(q->sess))
                        q->turn_closed = engine_session_eval(q->sess, &t, 1, false, NULL) >= 0 && eog;
                char buf[16];
                r = detok_stream_flush(&q->ds, buf, sizeof buf);
                if (r > 0 && text_append(q, buf, (size_t)r) < 0) {
                        req_finish(w, q, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "out of memory");
                        return false;
                }
                bool hit = emit_text(w, q, true);
                req_finish(w, q, WIRE_OK, hit ? WIRE_STOP_STRING : why, NULL);
                return false;
        }
        return true;
}

/* The pending token went in (r from the engine): the next one from its row
 * of logits. */
static void req_decoded(worker *w, wreq *q, int r, float *logits) {
        if (r == -ECANCELED)
                return req_finish(w, q, WIRE_ERR_CANCELLED, WIRE_STOP_NONE, "cancelled");
        if (r < 0)
                return req_finish(w, q, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "the engine failed: %s", strerror(-r));
        q->pending = engine_sampler_sample(q->sampler, logits);
}

/* ---- one step of one request ---- */

static void req_step(worker *w, wreq *q) {
        int r;

        if (q->cancelled)
                return req_finish(w, q, WIRE_ERR_CANCELLED, WIRE_STOP_NONE, "cancelled");
        if (q->image || q->job) {
                /* The image is decoded and encoded on a thread of its own
                 * (worker-image.c) while the other requests go on. */
                char err[WIRE_MAX_NAME] = "";
                if (!q->job) {
                        bool first = !q->chat || !q->chat->sess || engine_session_n_past(q->chat->sess) == 0;
                        r = worker_explain_start(w->vision, w->model, q->image, q->image_size, q->question,
                                                 q->question_len, first, q->chat && q->chat->turn_open, &q->job);
                        if (r == -EBUSY)
                                return; /* another image holds the encoder: a later step */
                        q->image = NULL; /* taken */
                        if (r < 0)
                                return req_finish(w, q, WIRE_ERR_ENGINE, WIRE_STOP_NONE,
                                                  "cannot start on the image: %s", strerror(-r));
                        return;
                }
                r = worker_explain_poll(q->job, &q->xp, err, sizeof err);
                if (r == -EAGAIN)
                        return;
                q->job = NULL;
                if (r != 0)
                        return req_finish(w, q, (enum wire_status)r, WIRE_STOP_NONE, "%s", err);
                q->prompt = TAKE_PTR(q->xp.tokens);
                q->n_prompt = q->xp.n_tokens;
                return;
        }
        /* The caller's application may send prompts of at most this many
         * tokens (sotto.conf MaxPromptTokens): only here are they counted. */
        if (!q->sess && q->params.max_prompt_tokens && q->n_prompt > q->params.max_prompt_tokens)
                return req_finish(w, q, WIRE_ERR_QUOTA, WIRE_STOP_NONE,
                                  "the prompt is %zu tokens and this application may send at most %u", q->n_prompt,
                                  q->params.max_prompt_tokens);
        if (!q->sess) {
                if (q->chat && q->chat->sess)
                        q->sess = q->chat->sess;
                else {
                        engine_session_params p;
                        engine_session *s;
                        char err[256] = "";
                        engine_session_default_params(&p);
                        p.n_ctx = w->cfg.n_ctx;
                        p.abort_cb = abort_cb;
                        p.abort_userdata = w;
                        r = engine_session_new(w->model, &p, &s, err, sizeof err);
                        if (r < 0)
                                return req_finish(w, q, WIRE_ERR_ENGINE, WIRE_STOP_NONE,
                                                  "cannot create a session: %s", err);
                        if (q->chat)
                                q->chat->sess = s;
                        else
                                q->own = s;
                        q->sess = s;
                }
                q->n_past_start = engine_session_n_past(q->sess);
                if (q->n_past_start + (int64_t)q->n_prompt > engine_session_n_ctx(q->sess))
                        return req_finish(w, q, WIRE_ERR_CONTEXT_FULL, WIRE_STOP_NONE,
                                          "the prompt (%zu tokens) does not fit in the context (%d of %d tokens used)",
                                          q->n_prompt, q->n_past_start, engine_session_n_ctx(q->sess));
                for (size_t i = 0; i < q->n_prompt; i++)
                        if (q->prompt[i] >= 0) /* not an image's soft token */
                                engine_sampler_accept(q->sampler, q->prompt[i]);
        }

        if (!q->prompt_done) {
                /* Prefill in chunks, so that one long prompt delays the other
                 * callers by one chunk at a time, not by the whole prompt. */
                const float *embd = NULL; /* an image's soft tokens (worker-image.c) */
                size_t n = q->xp.n_images ? worker_explain_next(&q->xp, q->prompt_pos, q->n_prompt, PREFILL_CHUNK, &embd)
                                          : MIN((size_t)PREFILL_CHUNK, q->n_prompt - q->prompt_pos);
                bool last = q->prompt_pos + n == q->n_prompt;
                r = embd ? engine_session_eval_embd(q->sess, embd, (int32_t)n, true, false, last ? w->logits : NULL)
                         : engine_session_eval(q->sess, q->prompt + q->prompt_pos, (int32_t)n, false,
                                               last ? w->logits : NULL);
                if (r == -ECANCELED)
                        return req_finish(w, q, WIRE_ERR_CANCELLED, WIRE_STOP_NONE, "cancelled");
                if (r == -ENOSPC)
                        return req_finish(w, q, WIRE_ERR_CONTEXT_FULL, WIRE_STOP_NONE,
                                          "the prompt does not fit in the context of %d tokens",
                                          engine_session_n_ctx(q->sess));
                if (r < 0)
                        return req_finish(w, q, WIRE_ERR_ENGINE, WIRE_STOP_NONE, "the engine failed: %s",
                                          strerror(-r));
                q->prompt_pos += n;
                if (last) {
                        w->first_next = q;
                        q->prompt_done = true;
                        q->prompt_usec = now_usec() - q->t_start;
                        q->pending = engine_sampler_sample(q->sampler, w->logits);
                }
                return;
        }

        if (!req_emit(w, q))
                return;
        r = engine_session_eval(q->sess, &q->pending, 1, false, w->logits);
        if (r >= 0)
                worker_batch_count_single(&w->batch);
        req_decoded(w, q, r, w->logits);
}

/* ---- one step of every decoding request (worker-batch.c) ---- */

/* Batch when the request whose turn it is decodes, and another one too. */
static bool batch_ready(worker *w) {
        uint32_t n = 0;

        if (!w->batch.enabled || !w->active || !w->active->prompt_done)
                return false;
        for (wreq *q = w->active; q && n < 2; q = q->next)
                n += q->prompt_done;
        return n >= 2;
}

/* Every decoding request hands out its pending token (in turn order: a new
 * request's first token first), then all the tokens go through the model in
 * one pass, and each request samples from its own row. */
static void batch_step(worker *w) {
        wreq *m[ENGINE_BATCH_MAX];
        engine_session *ss[ENGINE_BATCH_MAX];
        int32_t tok[ENGINE_BATCH_MAX], n = 0, k = 0;

        for (wreq *q = w->active; q && n < ENGINE_BATCH_MAX; q = q->next)
                if (q->prompt_done)
                        m[n++] = q;
        /* The members take their next turn after the others (prompts,
         * images): rotate them to the tail first, as a step may free them. */
        for (int32_t i = 0; i < n; i++)
                for (wreq **p = &w->active; *p; p = &(*p)->next)
                        if (*p == m[i]) {
                                *p = m[i]->next;
                                break;
                        }
        wreq **tail = &w->active;
        while (*tail)
                tail = &(*tail)->next;
        for (int32_t i = 0; i < n; i++) {
                *tail = m[i];
                tail = &m[i]->next;
        }
        *tail = NULL;

        for (int32_t i = 0; i < n; i++) {
                wreq *q = m[i];
                if (q->cancelled)
                        req_finish(w, q, WIRE_ERR_CANCELLED, WIRE_STOP_NONE, "cancelled");
                else if (req_emit(w, q)) {
                        m[k] = q;
                        ss[k] = q->sess;
                        tok[k++] = q->pending;
                }
        }
        int r = -EINVAL;
        if (k >= 2) {
                w->in_batch = m;
                w->n_in_batch = k;
                r = worker_batch_eval(&w->batch, ss, tok, k);
                w->n_in_batch = 0;
        }
        for (int32_t i = 0; i < k; i++) {
                if (r >= 0) {
                        req_decoded(w, m[i], 0, worker_batch_row(&w->batch, i));
                        continue;
                }
                /* A cancel (no session advanced), a failure or a lone
                 * request: one by one, each request with its own outcome. */
                w->current = m[i];
                int ri = engine_session_eval(m[i]->sess, &m[i]->pending, 1, false, w->logits);
                w->current = NULL;
                if (ri >= 0)
                        worker_batch_count_single(&w->batch);
                req_decoded(w, m[i], ri, w->logits);
        }
}

int worker_run(engine_model *model, const worker_config *cfg, int sock_fd) {
        worker w = {
                .model = model,
                .tok = engine_model_tokenizer(model),
                .cfg = *cfg,
                .n_vocab = engine_model_n_vocab(model),
                .vision = cfg->vision,
        };
        wire_conn_init(&w.conn, sock_fd);
        w.logits = malloc(sizeof(float) * (size_t)MAX(w.n_vocab, 1));
        if (!w.logits || !w.tok || worker_batch_init(&w.batch, w.n_vocab) < 0 ||
            waudio_new(cfg->whisper, cfg->whisper_error, cfg->n_threads, &w.conn, &w.audio) < 0)
                return -ENOMEM;
        waudio_set_poll(w.audio, audio_poll, &w);

        wire_ready ready = {
                .n_ctx = (uint32_t)cfg->n_ctx,
                .n_ctx_train = (uint32_t)MAX(engine_model_n_ctx_train(model), 0),
                .n_vocab = (uint32_t)w.n_vocab,
                .pid = (uint32_t)getpid(),
                .caps = worker_vision_caps(cfg->vision),
        };
        snprintf(ready.arch, sizeof ready.arch, "%s", engine_model_arch(model));
        snprintf(ready.name, sizeof ready.name, "%s", engine_model_name(model));
        if (!utf8_is_valid(ready.name, strlen(ready.name)))
                snprintf(ready.name, sizeof ready.name, "%s", ready.arch);
        /* The derived weights this worker built go to sottod before READY,
         * the only time it takes them (wire.h). */
        if (cfg->weights_fd >= 0) {
                wire_buf b = {};
                wire_weights x = { .size = cfg->weights_size, .n_blocks = cfg->weights_blocks };
                int r = wire_encode_weights(&b, &x);
                if (r >= 0)
                        r = wire_conn_send_fd(&w.conn, &b, cfg->weights_fd);
                wire_buf_free(&b);
                if (r < 0)
                        return r;
        }
        if (wire_encode_ready(&w.conn.out, &ready) < 0 || flush_out(&w, true) < 0)
                return -EPIPE;

        while (!w.eof && !w.error) {
                struct pollfd p = { .fd = w.conn.fd, .events = POLLIN };
                if (w.conn.out.len > w.conn.out_sent)
                        p.events |= POLLOUT;
                /* Requests that only wait for their image's thread do not
                 * spin the loop: look again every 5 ms. */
                bool runnable = waudio_busy(w.audio);
                for (wreq *a = w.active; a && !runnable; a = a->next)
                        runnable = !a->job && !a->image;
                int r = poll(&p, 1, runnable ? 0 : w.active ? 5 : -1);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = wire_conn_read(&w.conn);
                        if (r == -EPIPE)
                                break;
                        if (r < 0)
                                return r;
                        dispatch(&w);
                }
                if (flush_out(&w, false) < 0)
                        break;
                if (w.active && !w.error && batch_ready(&w))
                        batch_step(&w);
                else if (w.active && !w.error) {
                        wreq *q = w.active;
                        /* Rotate first: the step may finish and free q. */
                        w.active = q->next;
                        q->next = NULL;
                        wreq **tail = &w.active;
                        while (*tail)
                                tail = &(*tail)->next;
                        *tail = q;
                        w.current = q;
                        req_step(&w, q);
                        w.current = NULL;
                        if (w.first_next) {
                                /* Back to the head: its first token next. */
                                wreq *f = w.first_next;
                                w.first_next = NULL;
                                for (wreq **p = &w.active; *p; p = &(*p)->next)
                                        if (*p == f) {
                                                *p = f->next;
                                                break;
                                        }
                                f->next = w.active;
                                w.active = f;
                        }
                }
                if (!w.active)
                        worker_batch_log(&w.batch);
                /* One piece of speech recognition between text steps. */
                if (!w.error && waudio_busy(w.audio) && waudio_step(w.audio) < 0)
                        break;
        }
        int r = w.error;
        while (w.active) {
                wreq *q = w.active;
                w.active = q->next;
                req_free(q);
        }
        while (w.chats)
                chat_free(&w, w.chats);
        worker_image_stage_done(&w.stage);
        waudio_free(w.audio);
        free(w.logits);
        worker_batch_log(&w.batch);
        worker_batch_done(&w.batch);
        wire_conn_done(&w.conn);
        return r;
}
