/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bus-name.h"
#include "client-lib/sotto.h"

#define OBJECT_PATH "/org/sotto/Sotto1"
#define IFACE_SERVICE "org.sotto.Sotto1.Service"
#define IFACE_TEXT "org.sotto.Sotto1.Text"
#define IFACE_CHAT "org.sotto.Sotto1.Chat"
#define IFACE_VISION "org.sotto.Sotto1.Vision"

#define _public_ __attribute__((visibility("default")))

struct sotto {
        unsigned n_ref;
        sd_bus *bus;
        sd_event *event; /* attached to, if any */
};

struct sotto_chat {
        sotto *s;
        char *path;
};

struct sotto_request {
        unsigned n_ref;
        sotto *s;
        int fd; /* read end of the pipe */
        sd_event_source *io;
        sd_bus_slot *slot;
        sotto_text_fn on_text;
        sotto_done_fn on_done;
        void *userdata;
        bool eof, replied, finished, cancelled;
        sd_bus_error error;
        sotto_stats stats;
};

_public_ void sotto_options_init(sotto_options *o) {
        *o = (sotto_options){ .temperature = -1, .top_k = -1, .top_p = -1, .min_p = -1, .repeat_penalty = -1 };
}

/* ---- connection ---- */

static int sotto_new(sd_bus *bus, sotto **ret) {
        sotto *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->n_ref = 1;
        s->bus = sd_bus_ref(bus);
        *ret = s;
        return 0;
}

_public_ int sotto_connect_bus(sd_bus *bus, sotto **ret) {
        if (!bus || !ret)
                return -EINVAL;
        return sotto_new(bus, ret);
}

static int connect_with(int (*open_fn)(sd_bus **), sotto **ret) {
        sd_bus *bus = NULL;
        int r = open_fn(&bus);
        if (r < 0)
                return r;
        r = sotto_new(bus, ret);
        sd_bus_unref(bus);
        return r;
}

_public_ int sotto_connect_system(sotto **ret) {
        return connect_with(sd_bus_open_system, ret);
}

_public_ int sotto_connect_session(sotto **ret) {
        return connect_with(sd_bus_open_user, ret);
}

_public_ int sotto_connect_address(const char *address, sotto **ret) {
        sd_bus *bus = NULL;
        int r;
        if (!address || !ret)
                return -EINVAL;
        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sotto_new(bus, ret);
        sd_bus_unref(bus);
        return r;
}

_public_ int sotto_connect(sotto **ret) {
        sotto *s = NULL;
        int r = sotto_connect_system(&s);
        if (r >= 0) {
                if (bus_name_available(s->bus, SOTTO_BUS_NAME)) {
                        *ret = s;
                        return 0;
                }
                sotto_unref(s);
        }
        return sotto_connect_session(ret);
}

_public_ sotto *sotto_ref(sotto *s) {
        if (s)
                s->n_ref++;
        return s;
}

_public_ sotto *sotto_unref(sotto *s) {
        if (!s || --s->n_ref > 0)
                return NULL;
        if (s->event)
                (void)sd_bus_detach_event(s->bus);
        sd_event_unref(s->event);
        sd_bus_flush_close_unref(s->bus);
        free(s);
        return NULL;
}

_public_ sd_bus *sotto_get_bus(sotto *s) {
        return s ? s->bus : NULL;
}

_public_ int sotto_attach_event(sotto *s, sd_event *event, int64_t priority) {
        int r;
        if (!s || s->event)
                return -EBUSY;
        r = sd_bus_attach_event(s->bus, event, (int)priority);
        if (r < 0)
                return r;
        s->event = sd_event_ref(sd_bus_get_event(s->bus));
        return 0;
}

_public_ int sotto_detach_event(sotto *s) {
        if (!s || !s->event)
                return -EINVAL;
        (void)sd_bus_detach_event(s->bus);
        s->event = sd_event_unref(s->event);
        return 0;
}

/* ---- requests ---- */

static int append_options(sd_bus_message *m, const sotto_options *o) {
        int r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (o) {
                if (o->temperature >= 0 && (r = sd_bus_message_append(m, "{sv}", "temperature", "d", o->temperature)) < 0)
                        return r;
                if (o->top_k >= 0 && (r = sd_bus_message_append(m, "{sv}", "top-k", "i", o->top_k)) < 0)
                        return r;
                if (o->top_p >= 0 && (r = sd_bus_message_append(m, "{sv}", "top-p", "d", o->top_p)) < 0)
                        return r;
                if (o->min_p >= 0 && (r = sd_bus_message_append(m, "{sv}", "min-p", "d", o->min_p)) < 0)
                        return r;
                if (o->repeat_penalty >= 0 &&
                    (r = sd_bus_message_append(m, "{sv}", "repeat-penalty", "d", o->repeat_penalty)) < 0)
                        return r;
                if (o->has_seed && (r = sd_bus_message_append(m, "{sv}", "seed", "t", o->seed)) < 0)
                        return r;
                if (o->max_tokens > 0 && (r = sd_bus_message_append(m, "{sv}", "max-tokens", "u", o->max_tokens)) < 0)
                        return r;
                if (o->raw && (r = sd_bus_message_append(m, "{sv}", "raw", "b", 1)) < 0)
                        return r;
                if (o->stop) {
                        if ((r = sd_bus_message_open_container(m, 'e', "sv")) < 0 ||
                            (r = sd_bus_message_append(m, "s", "stop")) < 0 ||
                            (r = sd_bus_message_open_container(m, 'v', "as")) < 0 ||
                            (r = sd_bus_message_append_strv(m, (char **)o->stop)) < 0 ||
                            (r = sd_bus_message_close_container(m)) < 0 || (r = sd_bus_message_close_container(m)) < 0)
                                return r;
                }
        }
        return sd_bus_message_close_container(m);
}

static void request_finish(sotto_request *q) {
        if (q->finished)
                return;
        q->finished = true;
        q->io = sd_event_source_disable_unref(q->io);
        if (q->fd >= 0)
                close(q->fd);
        q->fd = -1;
        q->n_ref++;
        if (q->on_done)
                q->on_done(q, sd_bus_error_is_set(&q->error) ? &q->error : NULL, &q->stats, q->userdata);
        sotto_request_unref(q);
}

static void read_available(sotto_request *q) {
        char buf[4096];
        while (q->fd >= 0 && !q->eof) {
                ssize_t n = read(q->fd, buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                q->eof = true;
                        return;
                }
                if (n == 0) {
                        q->eof = true;
                        return;
                }
                if (q->on_text && !q->cancelled && q->on_text(buf, (size_t)n, q->userdata) < 0)
                        sotto_request_cancel(q);
        }
}

static int on_pipe(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        sotto_request *q = userdata;
        read_available(q);
        if (q->eof) {
                q->io = sd_event_source_disable_unref(q->io);
                if (q->replied)
                        request_finish(q);
        }
        return 0;
}

static void parse_stats(sd_bus_message *m, sotto_stats *st) {
        if (sd_bus_message_enter_container(m, 'a', "{sv}") <= 0)
                return;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                const char *key, *contents;
                char type;
                if (sd_bus_message_read(m, "s", &key) < 0 || sd_bus_message_peek_type(m, &type, &contents) < 0)
                        return;
                if (strcmp(contents, "u") == 0 && strcmp(key, "prompt-tokens") == 0)
                        sd_bus_message_read(m, "v", "u", &st->prompt_tokens);
                else if (strcmp(contents, "u") == 0 && strcmp(key, "generated-tokens") == 0)
                        sd_bus_message_read(m, "v", "u", &st->generated_tokens);
                else if (strcmp(contents, "t") == 0 && strcmp(key, "queue-usec") == 0)
                        sd_bus_message_read(m, "v", "t", &st->queue_usec);
                else if (strcmp(contents, "t") == 0 && strcmp(key, "time-to-first-token-usec") == 0)
                        sd_bus_message_read(m, "v", "t", &st->first_token_usec);
                else if (strcmp(contents, "t") == 0 && strcmp(key, "prompt-usec") == 0)
                        sd_bus_message_read(m, "v", "t", &st->prompt_usec);
                else if (strcmp(contents, "t") == 0 && strcmp(key, "total-usec") == 0)
                        sd_bus_message_read(m, "v", "t", &st->total_usec);
                else if (strcmp(contents, "d") == 0 && strcmp(key, "tokens-per-second") == 0)
                        sd_bus_message_read(m, "v", "d", &st->tokens_per_second);
                else if (strcmp(contents, "s") == 0 && strcmp(key, "stop-reason") == 0) {
                        const char *s;
                        if (sd_bus_message_read(m, "v", "s", &s) >= 0)
                                snprintf(st->stop_reason, sizeof st->stop_reason, "%s", s);
                } else
                        sd_bus_message_skip(m, "v"); /* newer keys: ignored */
                sd_bus_message_exit_container(m);
        }
        sd_bus_message_exit_container(m);
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        sotto_request *q = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        q->slot = sd_bus_slot_unref(q->slot);
        q->replied = true;
        if (e) {
                sd_bus_error_copy(&q->error, e);
                /* Deliver what already arrived, then end: an error is final. */
                read_available(q);
                request_finish(q);
                return 0;
        }
        parse_stats(m, &q->stats);
        if (q->eof || q->fd < 0)
                request_finish(q);
        return 0;
}

/* image_fd >= 0: Explain / SendImage, the image goes first (a copy). */
static int request_start(sotto *s, const char *path, const char *iface, const char *method, int image_fd,
                         const char *text, const sotto_options *o, sotto_text_fn on_text, sotto_done_fn on_done,
                         void *userdata, sotto_request **ret) {
        sd_bus_message *call = NULL;
        sotto_request *q;
        int fds[2], r;

        if (!s || !text || !s->event)
                return !s || !text ? -EINVAL : -ENOTCONN;
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        /* The service's end blocks no one: it is made non-blocking there. */
        q = calloc(1, sizeof *q);
        if (!q) {
                close(fds[0]);
                close(fds[1]);
                return -ENOMEM;
        }
        q->n_ref = 1;
        q->s = sotto_ref(s);
        q->fd = fds[0];
        q->on_text = on_text;
        q->on_done = on_done;
        q->userdata = userdata;
        r = sd_bus_message_new_method_call(s->bus, &call, SOTTO_BUS_NAME, path, iface, method);
        if (r >= 0 && image_fd >= 0)
                r = sd_bus_message_append(call, "h", image_fd);
        if (r >= 0)
                r = sd_bus_message_append(call, "s", text);
        if (r >= 0)
                r = append_options(call, o);
        if (r >= 0)
                r = sd_bus_message_append(call, "h", fds[1]); /* the message holds a copy */
        close(fds[1]);
        if (r >= 0)
                r = sd_event_add_io(s->event, &q->io, q->fd, EPOLLIN, on_pipe, q);
        /* No timeout: the reply comes when the answer is complete. */
        if (r >= 0)
                r = sd_bus_call_async(s->bus, &q->slot, call, on_reply, q, UINT64_MAX);
        sd_bus_message_unref(call);
        if (r < 0) {
                q->finished = true;
                sotto_request_unref(q);
                return r;
        }
        *ret = q;
        return 0;
}

_public_ int sotto_ask_async(sotto *s, const char *prompt, const sotto_options *o, sotto_text_fn on_text,
                             sotto_done_fn on_done, void *userdata, sotto_request **ret) {
        return request_start(s, OBJECT_PATH, IFACE_TEXT, "Ask", -1, prompt, o, on_text, on_done, userdata, ret);
}

_public_ int sotto_explain_async(sotto *s, int image_fd, const char *question, const sotto_options *o,
                                 sotto_text_fn on_text, sotto_done_fn on_done, void *userdata, sotto_request **ret) {
        if (image_fd < 0)
                return -EBADF;
        return request_start(s, OBJECT_PATH, IFACE_VISION, "Explain", image_fd, question ? question : "", o,
                             on_text, on_done, userdata, ret);
}

_public_ int sotto_chat_send_image_async(sotto_chat *c, int image_fd, const char *text, const sotto_options *o,
                                         sotto_text_fn on_text, sotto_done_fn on_done, void *userdata,
                                         sotto_request **ret) {
        if (!c)
                return -EINVAL;
        if (image_fd < 0)
                return -EBADF;
        return request_start(c->s, c->path, IFACE_CHAT, "SendImage", image_fd, text ? text : "", o, on_text,
                             on_done, userdata, ret);
}

_public_ int sotto_chat_send_async(sotto_chat *c, const char *text, const sotto_options *o, sotto_text_fn on_text,
                                   sotto_done_fn on_done, void *userdata, sotto_request **ret) {
        if (!c)
                return -EINVAL;
        return request_start(c->s, c->path, IFACE_CHAT, "Send", -1, text, o, on_text, on_done, userdata, ret);
}

_public_ void sotto_request_cancel(sotto_request *q) {
        if (!q || q->finished || q->cancelled)
                return;
        /* Closing the read end is the cancellation: the service sees it at
         * once and stops; its reply (Cancelled) ends the request. */
        q->cancelled = true;
        q->io = sd_event_source_disable_unref(q->io);
        close(q->fd);
        q->fd = -1;
        q->eof = true;
}

_public_ sotto_request *sotto_request_unref(sotto_request *q) {
        if (!q || --q->n_ref > 0)
                return NULL;
        sd_event_source_disable_unref(q->io);
        sd_bus_slot_unref(q->slot);
        if (q->fd >= 0)
                close(q->fd);
        sd_bus_error_free(&q->error);
        sotto_unref(q->s);
        free(q);
        return NULL;
}

/* ---- blocking forms: a private event loop around the async ones ---- */

typedef struct blocking {
        bool done;
        int r;
        sd_bus_error *error;
        sotto_stats *stats;
} blocking;

static void blocking_done(sotto_request *q, const sd_bus_error *error, const sotto_stats *stats, void *userdata) {
        blocking *b = userdata;
        b->done = true;
        if (error) {
                b->r = -sd_bus_error_get_errno(error);
                if (b->r >= 0)
                        b->r = -EIO;
                if (b->error)
                        sd_bus_error_copy(b->error, error);
        } else if (b->stats)
                *b->stats = *stats;
        /* Not sd_event_exit(): an exiting loop closes the attached bus. */
}

typedef struct text_fwd {
        sotto_text_fn fn;
        void *userdata;
        blocking *b;
} text_fwd;

static int text_forward(const char *t, size_t n, void *userdata) {
        text_fwd *f = userdata;
        return f->fn ? f->fn(t, n, f->userdata) : 0;
}

static void blocking_done_fwd(sotto_request *q, const sd_bus_error *e, const sotto_stats *st, void *userdata) {
        blocking_done(q, e, st, ((text_fwd *)userdata)->b);
}

static int run_blocking(sotto *s, sotto_chat *c, int image_fd, const char *text, const sotto_options *o,
                        sotto_text_fn on_text, void *userdata, sotto_stats *stats, sd_bus_error *error) {
        sd_event *e = NULL;
        sotto_request *q = NULL;
        blocking b = { .error = error, .stats = stats };
        text_fwd f = { on_text, userdata, &b };
        int r;

        if (!s)
                return -EINVAL;
        if (s->event)
                return -EBUSY;
        r = sd_event_new(&e);
        if (r < 0)
                return r;
        r = sotto_attach_event(s, e, 0);
        if (r >= 0) {
                if (image_fd >= 0)
                        r = c ? sotto_chat_send_image_async(c, image_fd, text, o, text_forward, blocking_done_fwd, &f, &q)
                              : sotto_explain_async(s, image_fd, text, o, text_forward, blocking_done_fwd, &f, &q);
                else
                        r = c ? sotto_chat_send_async(c, text, o, text_forward, blocking_done_fwd, &f, &q)
                              : sotto_ask_async(s, text, o, text_forward, blocking_done_fwd, &f, &q);
                while (r >= 0 && !b.done)
                        r = sd_event_run(e, UINT64_MAX);
                if (r >= 0)
                        r = b.done ? b.r : -EIO;
                sotto_request_unref(q);
                sotto_detach_event(s);
        }
        sd_event_unref(e);
        return r;
}

_public_ int sotto_ask(sotto *s, const char *prompt, const sotto_options *o, sotto_text_fn on_text, void *userdata,
                       sotto_stats *stats, sd_bus_error *error) {
        return run_blocking(s, NULL, -1, prompt, o, on_text, userdata, stats, error);
}

_public_ int sotto_explain(sotto *s, int image_fd, const char *question, const sotto_options *o,
                           sotto_text_fn on_text, void *userdata, sotto_stats *stats, sd_bus_error *error) {
        if (image_fd < 0)
                return -EBADF;
        return run_blocking(s, NULL, image_fd, question ? question : "", o, on_text, userdata, stats, error);
}

_public_ int sotto_chat_send_image(sotto_chat *c, int image_fd, const char *text, const sotto_options *o,
                                   sotto_text_fn on_text, void *userdata, sotto_stats *stats, sd_bus_error *error) {
        if (!c)
                return -EINVAL;
        if (image_fd < 0)
                return -EBADF;
        return run_blocking(c->s, c, image_fd, text ? text : "", o, on_text, userdata, stats, error);
}

_public_ int sotto_chat_send(sotto_chat *c, const char *text, const sotto_options *o, sotto_text_fn on_text,
                             void *userdata, sotto_stats *stats, sd_bus_error *error) {
        if (!c)
                return -EINVAL;
        return run_blocking(c->s, c, -1, text, o, on_text, userdata, stats, error);
}

_public_ int sotto_chat_open(sotto *s, const sotto_options *o, sotto_chat **ret, sd_bus_error *error) {
        sd_bus_message *call = NULL, *reply = NULL;
        const char *path;
        int r;

        if (!s || !ret)
                return -EINVAL;
        r = sd_bus_message_new_method_call(s->bus, &call, SOTTO_BUS_NAME, OBJECT_PATH, IFACE_TEXT, "OpenChat");
        if (r >= 0)
                r = append_options(call, o);
        if (r >= 0)
                r = sd_bus_call(s->bus, call, 0, error, &reply);
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0) {
                sotto_chat *c = calloc(1, sizeof *c);
                if (!c || !(c->path = strdup(path))) {
                        free(c);
                        r = -ENOMEM;
                } else {
                        c->s = sotto_ref(s);
                        *ret = c;
                }
        }
        sd_bus_message_unref(call);
        sd_bus_message_unref(reply);
        return r;
}

_public_ sotto_chat *sotto_chat_close(sotto_chat *c) {
        if (!c)
                return NULL;
        (void)sd_bus_call_method_async(c->s->bus, NULL, SOTTO_BUS_NAME, c->path, IFACE_CHAT, "Close", NULL, NULL, "");
        (void)sd_bus_flush(c->s->bus);
        sotto_unref(c->s);
        free(c->path);
        free(c);
        return NULL;
}

_public_ const char *sotto_chat_get_path(sotto_chat *c) {
        return c ? c->path : NULL;
}

_public_ int sotto_get_status(sotto *s, sotto_status *st, sd_bus_error *error) {
        sd_bus_message *reply = NULL;
        int r;

        if (!s || !st)
                return -EINVAL;
        *st = (sotto_status){};
        r = sd_bus_call_method(s->bus, SOTTO_BUS_NAME, OBJECT_PATH, "org.freedesktop.DBus.Properties", "GetAll",
                               error, &reply, "s", IFACE_SERVICE);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r > 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key, *contents, *sv;
                char type;
                struct {
                        const char *key;
                        char *dst;
                        size_t size;
                } strings[] = {
                        { "State", st->state, sizeof st->state },
                        { "StateReason", st->state_reason, sizeof st->state_reason },
                        { "Version", st->version, sizeof st->version },
                        { "ModelName", st->model_name, sizeof st->model_name },
                        { "ModelArchitecture", st->model_architecture, sizeof st->model_architecture },
                        { "ModelFile", st->model_file, sizeof st->model_file },
                };
                bool handled = false;
                if ((r = sd_bus_message_read(reply, "s", &key)) < 0 ||
                    (r = sd_bus_message_peek_type(reply, &type, &contents)) < 0)
                        break;
                for (size_t i = 0; i < sizeof strings / sizeof strings[0] && !handled; i++)
                        if (strcmp(key, strings[i].key) == 0 && strcmp(contents, "s") == 0) {
                                if ((r = sd_bus_message_read(reply, "v", "s", &sv)) < 0)
                                        break;
                                snprintf(strings[i].dst, strings[i].size, "%s", sv);
                                handled = true;
                        }
                if (r < 0)
                        break;
                if (!handled) {
                        if (strcmp(key, "ContextSize") == 0 && strcmp(contents, "u") == 0)
                                r = sd_bus_message_read(reply, "v", "u", &st->context_size);
                        else if (strcmp(key, "QueueLength") == 0 && strcmp(contents, "u") == 0)
                                r = sd_bus_message_read(reply, "v", "u", &st->queue_length);
                        else if (strcmp(key, "ActiveRequests") == 0 && strcmp(contents, "u") == 0)
                                r = sd_bus_message_read(reply, "v", "u", &st->active_requests);
                        else if (strcmp(key, "Capabilities") == 0 && strcmp(contents, "as") == 0) {
                                r = sd_bus_message_enter_container(reply, 'v', "as");
                                if (r >= 0)
                                        r = sd_bus_message_enter_container(reply, 'a', "s");
                                while (r >= 0 && (r = sd_bus_message_read_basic(reply, 's', &sv)) > 0) {
                                        st->can_text |= strcmp(sv, "text") == 0;
                                        st->can_image |= strcmp(sv, "image") == 0;
                                        st->can_audio |= strcmp(sv, "audio") == 0;
                                }
                                if (r >= 0)
                                        r = sd_bus_message_exit_container(reply);
                                if (r >= 0)
                                        r = sd_bus_message_exit_container(reply);
                        } else
                                r = sd_bus_message_skip(reply, "v");
                        if (r < 0)
                                break;
                }
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        break;
                r = 1;
        }
        sd_bus_message_unref(reply);
        return r < 0 ? r : 0;
}
