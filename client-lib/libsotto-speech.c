/* SPDX-License-Identifier: MIT */
/* libsotto: dictation and transcription (org.sotto.Sotto1.Speech and the
 * org.sotto.Sotto1.Dictation objects it creates). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client-lib/sotto.h"
#include "daemon/capture/capture-connect.h"

#define OBJECT_PATH "/org/sotto/Sotto1"
#define IFACE_SPEECH "org.sotto.Sotto1.Speech"
#define IFACE_DICTATION "org.sotto.Sotto1.Dictation"

#define _public_ __attribute__((visibility("default")))

struct sotto_dictation {
        sotto *s;
        char *path;
        sd_bus_slot *match;
        sotto_hypothesis_fn on_text;
        sotto_ended_fn on_ended;
        void *userdata;
        bool ended, cancelling;
        sd_bus_error error;
};

_public_ void sotto_speech_options_init(sotto_speech_options *o) {
        *o = (sotto_speech_options){};
}

static int append_options(sd_bus_message *m, const sotto_speech_options *o, bool live) {
        int r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0 || !o)
                return r < 0 ? r : sd_bus_message_close_container(m);
        if (r >= 0 && o->language)
                r = sd_bus_message_append(m, "{sv}", "language", "s", o->language);
        if (r >= 0 && o->max_seconds)
                r = sd_bus_message_append(m, "{sv}", "max-seconds", "u", o->max_seconds);
        if (live) {
                if (r >= 0 && o->target)
                        r = sd_bus_message_append(m, "{sv}", "target", "s", o->target);
                if (r >= 0 && o->no_partials)
                        r = sd_bus_message_append(m, "{sv}", "partials", "b", 0);
                if (r >= 0 && o->single_utterance)
                        r = sd_bus_message_append(m, "{sv}", "single-utterance", "b", 1);
                if (r >= 0 && o->partial_interval_ms)
                        r = sd_bus_message_append(m, "{sv}", "partial-interval-ms", "u", o->partial_interval_ms);
        } else {
                if (r >= 0 && o->format)
                        r = sd_bus_message_append(m, "{sv}", "format", "s", o->format);
                if (r >= 0 && o->rate)
                        r = sd_bus_message_append(m, "{sv}", "rate", "u", o->rate);
                if (r >= 0 && o->channels)
                        r = sd_bus_message_append(m, "{sv}", "channels", "u", o->channels);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int read_hypothesis(sd_bus_message *m, sotto_hypothesis *h, uint32_t **tokens) {
        const char *text;
        int r = sd_bus_message_read(m, "s", &text);
        if (r < 0)
                return r;
        h->text = text;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (strcmp(key, "start-usec") == 0)
                        r = sd_bus_message_read(m, "v", "t", &h->start_usec);
                else if (strcmp(key, "end-usec") == 0)
                        r = sd_bus_message_read(m, "v", "t", &h->end_usec);
                else if (strcmp(key, "compute-usec") == 0)
                        r = sd_bus_message_read(m, "v", "t", &h->compute_usec);
                else if (strcmp(key, "latency-usec") == 0)
                        r = sd_bus_message_read(m, "v", "t", &h->latency_usec);
                else if (strcmp(key, "forced") == 0) {
                        int b = 0;
                        r = sd_bus_message_read(m, "v", "b", &b);
                        h->forced = b;
                } else if (strcmp(key, "tokens") == 0) {
                        const void *p;
                        size_t n;
                        r = sd_bus_message_enter_container(m, 'v', "au");
                        if (r >= 0)
                                r = sd_bus_message_read_array(m, 'u', &p, &n);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(m);
                        if (r >= 0) {
                                free(*tokens);
                                *tokens = malloc(n ? n : 1);
                                if (!*tokens)
                                        return -ENOMEM;
                                memcpy(*tokens, p, n);
                                h->tokens = *tokens;
                                h->n_tokens = n / sizeof(uint32_t);
                        }
                } else
                        r = sd_bus_message_skip(m, "v"); /* keys added later */
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        sotto_dictation *d = userdata;
        const char *member = sd_bus_message_get_member(m);
        if (!d->path || d->ended || strcmp(sd_bus_message_get_path(m) ?: "", d->path) != 0)
                return 0;
        if (strcmp(member, "Ended") == 0) {
                const char *reason, *error, *message;
                if (sd_bus_message_read(m, "sss", &reason, &error, &message) < 0)
                        return 0;
                d->ended = true;
                if (*error)
                        (void)sd_bus_error_set(&d->error, error, message);
                if (d->on_ended)
                        d->on_ended(d, reason, *error ? &d->error : NULL, d->userdata);
                return 0;
        }
        bool final = strcmp(member, "Final") == 0;
        if (!final && strcmp(member, "Partial") != 0)
                return 0;
        sotto_hypothesis h = { .final = final };
        uint32_t *tokens = NULL;
        if (read_hypothesis(m, &h, &tokens) >= 0 && d->on_text && !d->cancelling &&
            d->on_text(d, &h, d->userdata) < 0)
                (void)sotto_dictation_cancel(d);
        free(tokens);
        return 0;
}

static int start(sotto *s, const char *method, int fd, bool live, const sotto_speech_options *o,
                 sotto_hypothesis_fn on_text, sotto_ended_fn on_ended, void *userdata, sotto_dictation **ret,
                 sd_bus_error *error) {
        sd_bus *bus = sotto_get_bus(s);
        sd_bus_message *call = NULL, *reply = NULL;
        const char *path;
        int r;

        if (!s || fd < 0 || !ret)
                return -EINVAL;
        sotto_dictation *d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->s = sotto_ref(s);
        d->on_text = on_text;
        d->on_ended = on_ended;
        d->userdata = userdata;
        d->error = SD_BUS_ERROR_NULL;
        /* Subscribed before the call: no signal can come first. */
        r = sd_bus_match_signal(bus, &d->match, NULL, NULL, IFACE_DICTATION, NULL, on_signal, d);
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &call, SOTTO_BUS_NAME, OBJECT_PATH, IFACE_SPEECH, method);
        if (r >= 0)
                r = sd_bus_message_append(call, "h", fd);
        if (r >= 0)
                r = append_options(call, o, live);
        if (r >= 0)
                r = sd_bus_call(bus, call, UINT64_MAX, error, &reply);
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0 && !(d->path = strdup(path)))
                r = -ENOMEM;
        sd_bus_message_unref(call);
        sd_bus_message_unref(reply);
        if (r < 0) {
                sotto_dictation_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

_public_ int sotto_dictation_start_fd(sotto *s, int pipewire_fd, const sotto_speech_options *o,
                                      sotto_hypothesis_fn on_text, sotto_ended_fn on_ended, void *userdata,
                                      sotto_dictation **ret, sd_bus_error *error) {
        return start(s, "StartDictation", pipewire_fd, true, o, on_text, on_ended, userdata, ret, error);
}

_public_ int sotto_dictation_start(sotto *s, const sotto_speech_options *o, sotto_hypothesis_fn on_text,
                                   sotto_ended_fn on_ended, void *userdata, sotto_dictation **ret,
                                   sd_bus_error *error) {
        char err[256];
        /* The caller's own PipeWire, with the caller's own rights. */
        int fd = capture_connect_pipewire(NULL, err, sizeof err);
        if (fd < 0) {
                (void)sd_bus_error_set(error, SOTTO_ERROR_CAPTURE_FAILED, err);
                return fd;
        }
        int r = sotto_dictation_start_fd(s, fd, o, on_text, on_ended, userdata, ret, error);
        close(fd);
        return r;
}

_public_ int sotto_transcribe_start(sotto *s, int fd, const sotto_speech_options *o, sotto_hypothesis_fn on_text,
                                    sotto_ended_fn on_ended, void *userdata, sotto_dictation **ret,
                                    sd_bus_error *error) {
        return start(s, "Transcribe", fd, false, o, on_text, on_ended, userdata, ret, error);
}

static int call_simple(sotto_dictation *d, const char *method) {
        if (!d || !d->path)
                return -EINVAL;
        if (d->ended)
                return 0;
        return sd_bus_call_method_async(sotto_get_bus(d->s), NULL, SOTTO_BUS_NAME, d->path, IFACE_DICTATION, method,
                                        NULL, NULL, "");
}

_public_ int sotto_dictation_stop(sotto_dictation *d) {
        return call_simple(d, "Stop");
}

_public_ int sotto_dictation_cancel(sotto_dictation *d) {
        if (d)
                d->cancelling = true;
        return call_simple(d, "Cancel");
}

_public_ int sotto_dictation_wait(sotto_dictation *d, volatile bool *interrupt, sd_bus_error *error) {
        sd_bus *bus = sotto_get_bus(d->s);
        int r;
        while (!d->ended) {
                if (interrupt && *interrupt)
                        return -EINTR;
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, 100000); /* wakes up for *interrupt */
                if (r < 0 && r != -EINTR)
                        return r;
        }
        if (sd_bus_error_is_set(&d->error)) {
                (void)sd_bus_error_copy(error, &d->error);
                return -sd_bus_error_get_errno(&d->error) ?: -EIO;
        }
        return 0;
}

_public_ bool sotto_dictation_is_ended(sotto_dictation *d) {
        return d && d->ended;
}

_public_ const char *sotto_dictation_get_path(sotto_dictation *d) {
        return d ? d->path : NULL;
}

_public_ sotto_dictation *sotto_dictation_free(sotto_dictation *d) {
        if (!d)
                return NULL;
        /* Freed before it ended: the service must not go on for nobody. */
        if (d->path && !d->ended)
                (void)sotto_dictation_cancel(d);
        sd_bus_slot_unref(d->match);
        sd_bus_error_free(&d->error);
        free(d->path);
        if (d->s) {
                (void)sd_bus_flush(sotto_get_bus(d->s));
                sotto_unref(d->s);
        }
        free(d);
        return NULL;
}
