/* SPDX-License-Identifier: MIT */
/* One request from the call to the reply: validation, the output pipe, the
 * outcome reported by the worker, the reply with statistics or an error. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/log.h"
#include "daemon/sottod/manager.h"
#include "daemon/sottod/quota-manager.h"

#define OUT_MAX (1u << 20) /* answer bytes held for a caller that does not read */

uint64_t random_seed(void);

static void out_update_events(Request *q) {
        if (q->out_source)
                (void)sd_event_source_set_io_events(q->out_source, q->out_len > 0 ? EPOLLOUT : 0);
}

static void out_write(Request *q) {
        while (q->out_len > 0 && !q->out_broken) {
                ssize_t n = write(q->out_fd, q->out_buf, q->out_len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                q->out_broken = true;
                        break;
                }
                memmove(q->out_buf, q->out_buf + n, q->out_len - (size_t)n);
                q->out_len -= (size_t)n;
        }
        if (q->out_broken)
                q->out_len = 0;
        out_update_events(q);
}

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Request *q = userdata;

        if (revents & EPOLLOUT)
                out_write(q);
        if (revents & (EPOLLERR | EPOLLHUP))
                q->out_broken = true;
        if (q->out_broken) {
                /* The reader closed its end: that is how a caller cancels. */
                q->out_len = 0;
                q->out_source = sd_event_source_disable_unref(q->out_source);
                if (q->state != REQUEST_FINISHING) {
                        request_cancel(q, SOTTO_ERROR_CANCELLED, "the output pipe was closed");
                        return 0;
                }
        }
        if (q->state == REQUEST_FINISHING && q->out_len == 0)
                request_finalize(q);
        return 0;
}

int request_new(Manager *m, Caller *c, Chat *chat, sd_bus_message *call, char *prompt, size_t prompt_len,
                gen_params *params, int out_fd, Request **ret) {
        Request *q = calloc(1, sizeof *q);
        int r;

        if (!q)
                return -ENOMEM;
        r = sd_event_add_io(m->event, &q->out_source, out_fd, 0, on_output, q);
        if (r < 0) {
                free(q);
                return r;
        }
        q->manager = m;
        q->id = m->next_request_id++;
        q->caller = c;
        q->chat = chat;
        q->call = sd_bus_message_ref(call);
        q->out_fd = out_fd;
        q->prompt = prompt;
        q->prompt_len = prompt_len;
        q->params = *params; /* takes the stop strings */
        *params = (gen_params){};
        q->t_call = now_usec();
        q->state = REQUEST_QUEUED;
        if (chat)
                chat->turn = q;

        q->next = m->requests;
        if (m->requests)
                m->requests->prev = q;
        m->requests = q;
        if (c->queue_tail)
                c->queue_tail->queue_next = q;
        else
                c->queue_head = q;
        c->queue_tail = q;
        c->n_requests++;
        m->n_queued++;
        m->stats.requests++;
        quota_request_added(q);
        if (ret)
                *ret = q;
        return 0;
}

static void request_set_error(Request *q, const char *name, const char *fmt, va_list ap) {
        if (q->error_name)
                return; /* the first reason wins */
        q->error_name = name;
        vsnprintf(q->error_message, sizeof q->error_message, fmt, ap);
}

/* Takes a queued request out of its caller's queue (request_new put it
 * there): when it is dispatched or ends before that. */
void request_dequeue(Request *q) {
        Caller *c = q->caller;
        Request *prev = NULL;
        for (Request *i = c->queue_head; i; prev = i, i = i->queue_next)
                if (i == q) {
                        if (prev)
                                prev->queue_next = q->queue_next;
                        else
                                c->queue_head = q->queue_next;
                        if (c->queue_tail == q)
                                c->queue_tail = prev;
                        break;
                }
        q->queue_next = NULL;
        q->manager->n_queued--;
}

/* The outcome is known; reply once the output has drained. */
static void request_set_finishing(Request *q) {
        Manager *m = q->manager;
        if (q->state == REQUEST_QUEUED)
                request_dequeue(q);
        else if (q->state == REQUEST_ACTIVE) {
                m->n_active--;
                if (q->worker) {
                        q->worker->n_active--;
                        Worker *w = q->worker;
                        q->worker = NULL;
                        if (w->retiring)
                                worker_maybe_retire(w);
                }
        }
        q->state = REQUEST_FINISHING;
        if (q->chat && q->chat->turn == q)
                q->chat->turn = NULL;
        if (q->out_len == 0 || q->out_broken)
                request_finalize(q);
        /* A slot is free. */
        manager_schedule(m);
}

void request_fail(Request *q, const char *error_name, const char *fmt, ...) {
        va_list ap;
        if (q->state == REQUEST_FINISHING)
                return;
        va_start(ap, fmt);
        request_set_error(q, error_name, fmt, ap);
        va_end(ap);
        request_set_finishing(q);
}

void request_cancel(Request *q, const char *error_name, const char *fmt, ...) {
        va_list ap;
        switch (q->state) {
        case REQUEST_QUEUED:
                va_start(ap, fmt);
                request_set_error(q, error_name, fmt, ap);
                va_end(ap);
                q->manager->stats.cancelled++;
                request_set_finishing(q);
                return;
        case REQUEST_ACTIVE:
                if (q->cancel_sent)
                        return;
                q->cancel_sent = true;
                q->cancel_error = error_name;
                va_start(ap, fmt);
                vsnprintf(q->cancel_message, sizeof q->cancel_message, fmt, ap);
                va_end(ap);
                q->t_cancel = now_usec();
                q->n_tokens_at_cancel = q->n_tokens;
                if (q->worker)
                        worker_send_u64(q->worker, WIRE_CANCEL, q->id);
                return;
        case REQUEST_FINISHING:
                if (q->out_broken || !q->call)
                        request_finalize(q);
                return;
        }
}

void request_text(Request *q, const char *text, size_t len, uint32_t n_tokens) {
        if (q->t_first == 0 && n_tokens > 0)
                q->t_first = now_usec();
        quota_charge_generated(q, n_tokens);
        q->n_tokens = n_tokens;
        if (q->out_broken || len == 0)
                return;
        if (q->out_len + len > OUT_MAX) {
                request_cancel(q, SOTTO_ERROR_BUSY, "the answer is not being read from the output pipe");
                return;
        }
        if (q->out_len + len > q->out_cap) {
                size_t cap = MAX(q->out_cap * 2, q->out_len + len + 4096);
                char *b = realloc(q->out_buf, cap);
                if (!b) {
                        request_cancel(q, SOTTO_ERROR_BUSY, "out of memory");
                        return;
                }
                q->out_buf = b;
                q->out_cap = cap;
        }
        memcpy(q->out_buf + q->out_len, text, len);
        q->out_len += len;
        out_write(q);
}

static const char *const stop_reasons[] = {
        [WIRE_STOP_EOG] = "end-of-text",   [WIRE_STOP_MAX_TOKENS] = "max-tokens",
        [WIRE_STOP_STRING] = "stop-string", [WIRE_STOP_CONTEXT] = "context-full",
        [WIRE_STOP_NONE] = "none",
};

void request_done(Request *q, const wire_done *d) {
        Manager *m = q->manager;
        uint64_t now = now_usec();

        quota_request_done(q, d);
        q->done = *d;
        q->n_tokens = d->n_generated;
        m->stats.tokens_generated += d->n_generated;
        m->stats.prompt_tokens += d->n_prompt;
        if (q->cancel_sent) {
                /* How far generation went on after the cancel was decided: the
                 * "within one decoding step" promise, measured. */
                uint64_t extra = d->n_generated > q->n_tokens_at_cancel ? d->n_generated - q->n_tokens_at_cancel : 0;
                m->stats.cancel_max_extra_tokens = MAX(m->stats.cancel_max_extra_tokens, extra);
                m->stats.cancel_max_usec = MAX(m->stats.cancel_max_usec, now - q->t_cancel);
        }
        if (q->chat) {
                q->chat->n_past = d->n_past;
        }
        switch (d->status) {
        case WIRE_OK:
                m->stats.completed++;
                break;
        case WIRE_ERR_CANCELLED:
                m->stats.cancelled++;
                request_fail(q, q->cancel_error ? q->cancel_error : SOTTO_ERROR_CANCELLED, "Cancelled: %s.",
                             q->cancel_sent ? q->cancel_message : "by the worker");
                return;
        case WIRE_ERR_CONTEXT_FULL:
                m->stats.failed++;
                request_fail(q, SOTTO_ERROR_CONTEXT_FULL, "Context full: %s.", d->message);
                return;
        case WIRE_ERR_INVALID:
                m->stats.failed++;
                request_fail(q, SOTTO_ERROR_INVALID_INPUT, "Invalid input: %s.", d->message);
                return;
        case WIRE_ERR_QUOTA:
                /* A size limit: waiting does not help, a shorter prompt does. */
                m->stats.rejected++;
                request_fail(q, SOTTO_ERROR_QUOTA_EXCEEDED, "limit=MaxPromptTokens retry-after=0: %s.", d->message);
                return;
        case WIRE_ERR_BUSY:
                m->stats.rejected++;
                request_fail(q, SOTTO_ERROR_BUSY, "Busy: %s.", d->message);
                return;
        case WIRE_ERR_UNAVAILABLE:
                m->stats.failed++;
                request_fail(q, SOTTO_ERROR_MODEL_UNAVAILABLE, "The model cannot do this: %s.", d->message);
                return;
        default:
                m->stats.failed++;
                request_fail(q, SOTTO_ERROR_WORKER_FAILED, "The inference worker failed: %s.", d->message);
                return;
        }
        request_set_finishing(q);
}

static int reply_statistics(Request *q) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const wire_done *d = &q->done;
        uint64_t now = now_usec();
        uint64_t gen_usec = q->t_first && now > q->t_first ? now - q->t_first : 0;
        double tps = gen_usec > 0 && d->n_generated > 1 ? (d->n_generated - 1) / (gen_usec / 1e6) : 0.0;
        int r;

        r = sd_bus_message_new_method_return(q->call, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "a{sv}", 8, "prompt-tokens", "u", d->n_prompt, "generated-tokens", "u",
                                  d->n_generated, "queue-usec", "t",
                                  q->t_dispatch > q->t_call ? q->t_dispatch - q->t_call : (uint64_t)0,
                                  "time-to-first-token-usec", "t", q->t_first ? q->t_first - q->t_call : (uint64_t)0,
                                  "prompt-usec", "t", d->prompt_usec, "total-usec", "t", now - q->t_call,
                                  "tokens-per-second", "d", tps, "stop-reason", "s",
                                  stop_reasons[d->stop_reason < _WIRE_STOP_MAX ? d->stop_reason : WIRE_STOP_NONE]);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

void request_finalize(Request *q) {
        Manager *m = q->manager;

        /* EOF first, then the reply: a client sees all the text before it
         * learns the outcome. */
        q->out_source = sd_event_source_disable_unref(q->out_source);
        if (q->out_fd >= 0)
                close(q->out_fd);
        q->out_fd = -1;
        if (q->call && !q->caller->gone) {
                int r;
                if (q->error_name)
                        r = sd_bus_reply_method_errorf(q->call, q->error_name, "%s", q->error_message);
                else
                        r = reply_statistics(q);
                if (r < 0)
                        log_warning_errno(r, "cannot reply to %s: %m", q->caller->name);
        }
        if (q->state == REQUEST_QUEUED || q->state == REQUEST_ACTIVE) {
                /* Only on the way out (manager_free): keep the counts right. */
                q->state = REQUEST_FINISHING;
        }
        if (q->chat && q->chat->turn == q)
                q->chat->turn = NULL;
        sd_bus_message_unref(q->call);
        if (q->prev)
                q->prev->next = q->next;
        else
                m->requests = q->next;
        if (q->next)
                q->next->prev = q->prev;
        Caller *c = q->caller;
        quota_request_removed(q);
        c->n_requests--;
        gen_params_done(&q->params);
        free(q->prompt);
        free(q->image);
        free(q->out_buf);
        free(q);
        caller_maybe_free(c);
        manager_check_stopped(m);
}

/* ---- admission ---- */

/* The output must be the write end of a pipe: not a file, socket, device,
 * or the read end.  Returns a copy the daemon owns, non-blocking. */
int take_output_fd(int fd, sd_bus_error *error) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "The output fd cannot be used: %s.",
                                         strerror(errno));
        if (!S_ISFIFO(st.st_mode))
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                         "The output fd must be the write end of a pipe, not a %s.",
                                         S_ISSOCK(st.st_mode)  ? "socket"
                                         : S_ISREG(st.st_mode) ? "regular file"
                                         : S_ISCHR(st.st_mode) ? "character device"
                                         : S_ISDIR(st.st_mode) ? "directory"
                                                               : "special file");
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || (fl & O_ACCMODE) != O_WRONLY)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                         "The output fd must be the write end of a pipe (it is open for reading).");
        int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return sd_bus_error_setf(error, SOTTO_ERROR_BUSY, "Cannot take the output fd: %s.", strerror(errno));
        /* The caller has handed this end over and closes its own copy, so
         * making the shared description non-blocking does not affect it. */
        if (fcntl(copy, F_SETFL, fl | O_NONBLOCK) < 0) {
                close(copy);
                return sd_bus_error_setf(error, SOTTO_ERROR_BUSY, "Cannot use the output fd: %s.", strerror(errno));
        }
        return copy;
}

int submit_request(Manager *m, sd_bus_message *msg, Chat *chat, const char *prompt, gen_params *params, int fd,
                   sd_bus_error *error) {
        return submit_request_image(m, msg, chat, prompt, params, fd, NULL, 0, error);
}

/* With an image (taken, freed on failure too): an Explain or Chat.SendImage
 * whose bytes sottod has read; the question may then be empty. */
int submit_request_image(Manager *m, sd_bus_message *msg, Chat *chat, const char *prompt, gen_params *params, int fd,
                         uint8_t *image, size_t image_len, sd_bus_error *error) {
        _cleanup_free_ uint8_t *img = image;
        size_t len = strlen(prompt);
        Caller *c;
        int r;

        if (m->stopping) {
                m->stats.rejected++;
                return sd_bus_error_setf(error, SOTTO_ERROR_SHUTTING_DOWN, "sottod is stopping; try again later.");
        }
        if (STREQ(m->state, "failed")) {
                m->stats.rejected++;
                return sd_bus_error_setf(error, SOTTO_ERROR_MODEL_UNAVAILABLE, "No model is available: %s.",
                                         m->state_reason);
        }
        if (len == 0 && !img)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "The prompt is empty.");
        if (len > m->config.max_prompt_bytes)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                         "The prompt is %zu bytes; the limit is %u bytes.", len,
                                         m->config.max_prompt_bytes);
        if (!utf8_is_valid(prompt, len))
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "The prompt is not valid UTF-8.");
        r = caller_get(m, sd_bus_message_get_sender(msg) ?: ":unknown", &c);
        if (r < 0)
                return r;
        if (c->n_requests >= m->config.max_per_caller) {
                m->stats.rejected++;
                return sd_bus_error_setf(error, SOTTO_ERROR_BUSY,
                                         "You have %u requests in progress already; wait for one to finish.",
                                         c->n_requests);
        }
        if (m->n_queued >= m->config.max_queued) {
                m->stats.rejected++;
                return sd_bus_error_setf(error, SOTTO_ERROR_BUSY,
                                         "%u requests are waiting already; try again in a moment.", m->n_queued);
        }
        r = quota_admit(m, c, params, error);
        if (r < 0) {
                m->stats.rejected++;
                return r;
        }
        if (chat && chat->turn)
                return sd_bus_error_setf(error, SOTTO_ERROR_BUSY, "This chat is answering already; one turn at a time.");
        if (chat && chat->lost)
                return sd_bus_error_setf(error, SOTTO_ERROR_WORKER_FAILED,
                                         "This chat's context was lost when the inference worker stopped; open a new chat.");
        int out = take_output_fd(fd, error);
        if (out < 0)
                return out;
        char *copy = strndup(prompt, len);
        if (!copy) {
                close(out);
                return -ENOMEM;
        }
        if (params->seed == 0)
                params->seed = random_seed();
        Request *q;
        r = request_new(m, c, chat, msg, copy, len, params, out, &q);
        if (r < 0) {
                free(copy);
                close(out);
                return r;
        }
        q->image = TAKE_PTR(img);
        q->image_len = image_len;
        manager_schedule(m);
        return 1; /* replied later */
}
