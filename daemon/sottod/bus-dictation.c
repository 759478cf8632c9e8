/* SPDX-License-Identifier: MIT */
/* org.sotto.Sotto1.Speech (StartDictation, Transcribe) on /org/sotto/Sotto1
 * and org.sotto.Sotto1.Dictation on each dictation object.  A dictation
 * belongs to the connection that started it: only it may stop or cancel
 * it, its signals go to it alone, and it ends when it leaves the bus. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/sottod/authorize.h"
#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/dictation.h"
#include "daemon/sottod/log.h"
#include "daemon/sottod/quota-manager.h"

#define RATE 16000
#define MAX_PER_CALLER 4
#define MAX_DICTATIONS 32
#define READ_CHUNK (256u << 10)
#define MAX_RECORDING (256u << 20)
#define WORKER_BACKLOG (8u << 20) /* bytes queued for the worker before we wait */

typedef struct SpeechOptions {
        char target[256];
        char language[WIRE_MAX_LANGUAGE];
        bool partials, single;
        uint32_t partial_ms, max_seconds;
        uint32_t format, rate, channels;
} SpeechOptions;

/* ---- authorization and quota ---- */

/* org.sotto.dictate for StartDictation, org.sotto.generate for Transcribe
 * (authorize.h): 1 go on, 0 polkit is being asked (the call comes back),
 * < 0 refused with *error set. */
static int speech_authorize(Manager *m, sd_bus_message *msg, const char *action, sd_bus_error *error) {
        return authorize(m, msg, action, error);
}

/* AudioSecondsPerHour (quota-manager.c): an application whose bucket is
 * in debt may not start; each utterance recognized is charged its length
 * (speech only: listening to silence costs no recognition). */
static int speech_quota_admit(Manager *m, Caller *c, sd_bus_error *error) {
        uint64_t retry = 0;
        char head[128];
        if (!c->app)
                return 0;
        int r = quota_charge(m, c, QUOTA_AUDIO_SECONDS, 0, &retry);
        if (r != -EDQUOT)
                return 0;
        quota_format_error(head, sizeof head, quota_kind_to_string(QUOTA_AUDIO_SECONDS), retry);
        return sd_bus_error_setf(error, SOTTO_ERROR_QUOTA_EXCEEDED, "%s: audio used up; try again in %llu s.", head,
                                 (unsigned long long)quota_retry_seconds(retry));
}

static void dictation_cancel(Dictation *d, const char *reason, const char *error, const char *message);

static void speech_quota_charge(Dictation *d, double seconds) {
        uint64_t retry = 0;
        char head[128], msg[200];
        if (!d->caller->app)
                return;
        if (quota_charge(d->manager, d->caller, QUOTA_AUDIO_SECONDS, seconds, &retry) != -EDQUOT)
                return;
        quota_format_error(head, sizeof head, quota_kind_to_string(QUOTA_AUDIO_SECONDS), retry);
        snprintf(msg, sizeof msg, "%s: audio used up; try again in %llu s.", head,
                 (unsigned long long)quota_retry_seconds(retry));
        dictation_cancel(d, "failed", SOTTO_ERROR_QUOTA_EXCEEDED, msg);
}

/* ---- objects ---- */

static Dictation *dictation_find(Manager *m, uint64_t id) {
        for (Dictation *d = m->dictations; d; d = d->next)
                if (d->id == id)
                        return d;
        return NULL;
}

static uint32_t caller_dictations(Manager *m, Caller *c) {
        uint32_t n = 0;
        for (Dictation *d = m->dictations; d; d = d->next)
                n += d->caller == c;
        return n;
}

static void dictation_free(Dictation *d) {
        Manager *m = d->manager;
        if (d->live)
                capture_proc_kill(d);
        d->in_source = sd_event_source_disable_unref(d->in_source);
        if (d->in_fd >= 0)
                close(d->in_fd);
        if (d->prev)
                d->prev->next = d->next;
        else
                m->dictations = d->next;
        if (d->next)
                d->next->prev = d->prev;
        m->n_dictations--;
        if (d->worker) {
                Worker *w = d->worker;
                w->n_active--;
                if (w->retiring)
                        worker_maybe_retire(w);
        }
        Caller *c = d->caller;
        c->n_requests--;
        caller_maybe_free(c);
        free(d->path);
        free(d);
}

void dictation_free_all(Manager *m) {
        while (m->dictations)
                dictation_free(m->dictations);
}

static int emit(Dictation *d, const char *member, const char *types, ...) {
        Manager *m = d->manager;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        va_list ap;
        int r;

        if (d->caller->gone || !m->bus)
                return 0;
        r = sd_bus_message_new_signal(m->bus, &s, d->path, SOTTO_IFACE_DICTATION, member);
        if (r >= 0)
                r = sd_bus_message_set_destination(s, d->caller->name);
        if (r >= 0) {
                va_start(ap, types);
                r = sd_bus_message_appendv(s, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_send(m->bus, s, NULL);
        if (r < 0)
                log_warning_errno(r, "dictation %llu: cannot send %s: %m", (unsigned long long)d->id, member);
        return r;
}

/* The last word: Ended, then the object goes. */
static void dictation_end(Dictation *d) {
        const char *reason = d->reason ? d->reason : "finished";
        log_info("dictation %llu of %s ended: %s%s%s", (unsigned long long)d->id, d->caller->name, reason,
                 d->message[0] ? ": " : "", d->message);
        (void)emit(d, "Ended", "sss", reason, d->error ? d->error : "", d->message);
        dictation_free(d);
}

static void set_outcome(Dictation *d, const char *reason, const char *error, const char *fmt, va_list ap) {
        /* The first reason wins, but an error beats a clean end: input that
         * ended well may still be refused by the worker (a malformed file). */
        if (d->reason && (d->error || !error))
                return;
        d->reason = reason;
        d->error = error;
        if (fmt)
                vsnprintf(d->message, sizeof d->message, fmt, ap);
}

static void outcome(Dictation *d, const char *reason, const char *error, const char *fmt, ...) _printf_(4, 5);
static void outcome(Dictation *d, const char *reason, const char *error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        set_outcome(d, reason, error, fmt, ap);
        va_end(ap);
}

/* ---- to the worker ---- */

static bool worker_usable(Dictation *d) {
        return d->worker && !d->worker->dead;
}

void dictation_send_audio(Dictation *d, const void *data, size_t len) {
        const uint8_t *p = data;
        if (d->end_sent || !worker_usable(d))
                return;
        while (len > 0) {
                uint32_t n = (uint32_t)MIN(len, (size_t)WIRE_MAX_AUDIO_CHUNK);
                if (wire_encode_audio_data(&d->worker->conn.out, d->id, p, n) < 0) {
                        worker_kill(d->worker, "out of memory");
                        return;
                }
                p += n;
                len -= n;
        }
        worker_send_flush(d->worker);
}

void dictation_input_ended(Dictation *d, const char *reason, const char *error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        set_outcome(d, reason, error, fmt, ap);
        va_end(ap);
        if (d->end_sent)
                return;
        d->end_sent = true;
        if (!worker_usable(d)) {
                /* Nothing to wait for. */
                if (!d->reason || !d->error)
                        d->error = SOTTO_ERROR_WORKER_FAILED;
                return dictation_end(d);
        }
        if (d->cancelled)
                worker_send_u64(d->worker, WIRE_CANCEL, d->id);
        else
                worker_send_u64(d->worker, WIRE_AUDIO_END, d->id);
}

static void dictation_cancel(Dictation *d, const char *reason, const char *error, const char *message) {
        if (d->cancelled)
                return;
        d->cancelled = true;
        outcome(d, reason, error, "%s", message);
        if (d->live)
                capture_proc_kill(d);
        d->in_source = sd_event_source_disable_unref(d->in_source);
        if (!d->end_sent)
                dictation_input_ended(d, reason, error, "%s", message);
        else if (worker_usable(d))
                worker_send_u64(d->worker, WIRE_CANCEL, d->id);
}

/* ---- frames from the worker ---- */

int dictation_worker_text(Manager *m, Worker *w, const uint8_t *payload, size_t len) {
        wire_audio_text t;
        if (wire_decode_audio_text(payload, len, &t) < 0)
                return -EBADMSG;
        Dictation *d = dictation_find(m, t.req_id);
        if (!d || d->worker != w)
                return -EBADMSG;
        if (d->cancelled)
                return 0;
        _cleanup_free_ char *text = strndup(t.text, t.len); /* the decoder checked it is UTF-8 */
        if (!text)
                return -ENOMEM;
        const bool final = t.kind == WIRE_AUDIO_FINAL;
        if (final)
                d->n_finals++;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        int r;
        if (d->caller->gone || !m->bus)
                return 0;
        r = sd_bus_message_new_signal(m->bus, &s, d->path, SOTTO_IFACE_DICTATION, final ? "Final" : "Partial");
        if (r >= 0)
                r = sd_bus_message_set_destination(s, d->caller->name);
        if (r >= 0)
                r = sd_bus_message_append(s, "s", text);
        if (r >= 0)
                r = sd_bus_message_open_container(s, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(s, "{sv}{sv}{sv}{sv}", "start-usec", "t", t.start * 1000000u / RATE,
                                          "end-usec", "t", t.end * 1000000u / RATE, "compute-usec", "t",
                                          t.compute_usec, "latency-usec", "t", t.latency_usec);
        if (r >= 0 && final)
                r = sd_bus_message_append(s, "{sv}", "forced", "b", (int)t.forced);
        if (r >= 0)
                r = sd_bus_message_open_container(s, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(s, "s", "tokens");
        if (r >= 0)
                r = sd_bus_message_open_container(s, 'v', "au");
        if (r >= 0)
                r = sd_bus_message_append_array(s, 'u', t.tokens, t.n_tokens * sizeof(uint32_t));
        if (r >= 0)
                r = sd_bus_message_close_container(s);
        if (r >= 0)
                r = sd_bus_message_close_container(s);
        if (r >= 0)
                r = sd_bus_message_close_container(s);
        if (r >= 0)
                r = sd_bus_send(m->bus, s, NULL);
        if (r < 0)
                log_warning_errno(r, "dictation %llu: cannot send a hypothesis: %m", (unsigned long long)d->id);
        if (final)
                speech_quota_charge(d, (double)(t.end - t.start) / RATE);
        return 0;
}

int dictation_worker_done(Manager *m, Worker *w, const wire_done *done) {
        Dictation *d = dictation_find(m, done->req_id);
        if (!d || d->worker != w)
                return -EBADMSG;
        switch (done->status) {
        case WIRE_OK:
                if (done->stop_reason == WIRE_STOP_MAX_TOKENS)
                        outcome(d, "limit", NULL, "%s", done->message);
                else if (d->live && !d->end_sent)
                        outcome(d, "finished", NULL, "the utterance is complete");
                break;
        case WIRE_ERR_CANCELLED:
                outcome(d, "cancelled", SOTTO_ERROR_CANCELLED, "cancelled");
                break;
        case WIRE_ERR_INVALID:
                outcome(d, "failed", SOTTO_ERROR_INVALID_INPUT, "%s", done->message);
                break;
        case WIRE_ERR_BUSY:
                outcome(d, "failed", SOTTO_ERROR_BUSY, "%s", done->message);
                break;
        default:
                outcome(d, "failed", d->worker ? SOTTO_ERROR_MODEL_UNAVAILABLE : SOTTO_ERROR_WORKER_FAILED, "%s",
                        done->message);
                break;
        }
        /* The worker is done with it: no more audio is needed. */
        d->end_sent = true;
        dictation_end(d);
        return 0;
}

void dictation_worker_died(Manager *m, Worker *w, const char *reason) {
        for (Dictation *d = m->dictations, *next; d; d = next) {
                next = d->next;
                if (d->worker != w)
                        continue;
                outcome(d, "failed", SOTTO_ERROR_WORKER_FAILED,
                        "The speech recognition worker stopped (%s); try again.", reason);
                d->worker->n_active--;
                d->worker = NULL;
                dictation_end(d);
        }
}

void dictation_caller_gone(Manager *m, Caller *c) {
        for (Dictation *d = m->dictations, *next; d; d = next) {
                next = d->next;
                if (d->caller == c)
                        dictation_cancel(d, "caller-left", SOTTO_ERROR_CANCELLED, "the caller left the bus");
        }
}

/* ---- reading a recording ---- */

static int on_input(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static int input_start(Dictation *d);

static int on_input_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Dictation *d = userdata;
        d->in_source = sd_event_source_disable_unref(d->in_source);
        if (input_start(d) < 0)
                dictation_cancel(d, "failed", SOTTO_ERROR_INVALID_INPUT, "cannot read the audio");
        return 0;
}

/* Reads one chunk and passes it on; at the end, recognition finishes. */
static int on_input(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Dictation *d = userdata;
        Manager *m = d->manager;
        _cleanup_free_ uint8_t *buf = NULL;
        int r;

        if (d->end_sent || !worker_usable(d))
                return 0;
        /* A worker busy with someone else's speech reads nothing for a
         * while: wait instead of queuing the whole file in memory. */
        if (d->worker->conn.out.len - d->worker->conn.out_sent > WORKER_BACKLOG) {
                d->in_source = sd_event_source_disable_unref(d->in_source);
                r = sd_event_add_time_relative(m->event, &d->in_source, CLOCK_MONOTONIC, 20000, 0, on_input_timer, d);
                if (r < 0)
                        dictation_cancel(d, "failed", SOTTO_ERROR_INVALID_INPUT, "cannot wait for the worker");
                return 0;
        }
        buf = malloc(READ_CHUNK);
        if (!buf)
                return 0;
        ssize_t n = read(d->in_fd, buf, READ_CHUNK);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n < 0) {
                dictation_cancel(d, "failed", SOTTO_ERROR_INVALID_INPUT, "cannot read the audio");
                return 0;
        }
        if (n == 0) {
                d->in_source = sd_event_source_disable_unref(d->in_source);
                dictation_input_ended(d, "finished", NULL, "%s", "");
                return 0;
        }
        if ((uint64_t)n > MAX_RECORDING - d->in_bytes) {
                dictation_cancel(d, "failed", SOTTO_ERROR_INVALID_INPUT, "The recording is larger than 256 MiB.");
                return 0;
        }
        d->in_bytes += (uint64_t)n;
        dictation_send_audio(d, buf, (size_t)n);
        return 0;
}

static int on_file_defer(sd_event_source *s, void *userdata) {
        Dictation *d = userdata;
        return on_input(NULL, d->in_fd, EPOLLIN, d);
}

static int input_start(Dictation *d) {
        Manager *m = d->manager;
        int r;
        if (d->in_regular) {
                r = sd_event_add_defer(m->event, &d->in_source, on_file_defer, d);
                if (r >= 0)
                        r = sd_event_source_set_enabled(d->in_source, SD_EVENT_ON);
                return r;
        }
        return sd_event_add_io(m->event, &d->in_source, d->in_fd, EPOLLIN, on_input, d);
}

/* ---- options ---- */

static bool name_ok(const char *s, size_t max) {
        size_t n = strlen(s);
        if (n == 0 || n > max)
                return false;
        for (const char *c = s; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      strchr("._:-", *c)))
                        return false;
        return true;
}

static int read_u32(sd_bus_message *msg, const char *key, uint32_t min, uint32_t max, uint32_t *ret,
                    sd_bus_error *error) {
        char type;
        const char *contents;
        int r = sd_bus_message_peek_type(msg, &type, &contents);
        if (r < 0)
                return r;
        if (!contents || !strchr("yqutnix", contents[0]) || contents[1])
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "Option '%s' must be an integer.", key);
        union {
                uint8_t y;
                uint16_t q;
                int16_t n;
                uint32_t u;
                int32_t i;
                uint64_t t;
                int64_t x;
        } v = {};
        r = sd_bus_message_enter_container(msg, 'v', contents);
        if (r >= 0)
                r = sd_bus_message_read_basic(msg, contents[0], &v);
        if (r >= 0)
                r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        int64_t x;
        switch (contents[0]) {
        case 'y': x = v.y; break;
        case 'q': x = v.q; break;
        case 'n': x = v.n; break;
        case 'u': x = v.u; break;
        case 'i': x = v.i; break;
        case 'x': x = v.x; break;
        default: x = v.t > INT64_MAX ? INT64_MAX : (int64_t)v.t; break;
        }
        if (x < min || x > max)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "Option '%s' must be in %u .. %u.", key,
                                         min, max);
        *ret = (uint32_t)x;
        return 0;
}

static int read_variant(sd_bus_message *msg, const char *key, char want, void *ret, sd_bus_error *error) {
        const char sig[2] = { want, 0 };
        int r = sd_bus_message_enter_container(msg, 'v', sig);
        if (r == -ENXIO || r == -EINVAL)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "Option '%s' must be of type %s.", key, sig);
        if (r >= 0)
                r = sd_bus_message_read_basic(msg, want, ret);
        if (r >= 0)
                r = sd_bus_message_exit_container(msg);
        return r;
}

static int options_read(sd_bus_message *msg, bool live, SpeechOptions *o, sd_bus_error *error) {
        *o = (SpeechOptions){ .partials = true, .partial_ms = 500, .max_seconds = live ? 600 : 3600,
                              .format = WIRE_AUDIO_WAV, .rate = RATE, .channels = 1 };
        snprintf(o->language, sizeof o->language, "en");
        int r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const char *key, *s;
                int b;
                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        return r;
                if (STREQ(key, "language")) {
                        if ((r = read_variant(msg, key, 's', &s, error)) < 0)
                                return r;
                        if (!name_ok(s, WIRE_MAX_LANGUAGE - 1) || strspn(s, "abcdefghijklmnopqrstuvwxyz") != strlen(s))
                                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                                         "Option 'language' must be a language code such as \"en\", "
                                                         "or \"auto\".");
                        snprintf(o->language, sizeof o->language, "%s", s);
                } else if (STREQ(key, "max-seconds")) {
                        if ((r = read_u32(msg, key, 1, live ? 3600 : 86400, &o->max_seconds, error)) < 0)
                                return r;
                } else if (live && STREQ(key, "target")) {
                        if ((r = read_variant(msg, key, 's', &s, error)) < 0)
                                return r;
                        if (!name_ok(s, sizeof o->target - 1))
                                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                                         "Option 'target' must be a PipeWire node name or serial.");
                        snprintf(o->target, sizeof o->target, "%s", s);
                } else if (live && STREQ(key, "partials")) {
                        if ((r = read_variant(msg, key, 'b', &b, error)) < 0)
                                return r;
                        o->partials = b;
                } else if (live && STREQ(key, "partial-interval-ms")) {
                        if ((r = read_u32(msg, key, 100, 10000, &o->partial_ms, error)) < 0)
                                return r;
                } else if (live && STREQ(key, "single-utterance")) {
                        if ((r = read_variant(msg, key, 'b', &b, error)) < 0)
                                return r;
                        o->single = b;
                } else if (!live && STREQ(key, "format")) {
                        if ((r = read_variant(msg, key, 's', &s, error)) < 0)
                                return r;
                        if (STREQ(s, "wav"))
                                o->format = WIRE_AUDIO_WAV;
                        else if (STREQ(s, "s16le"))
                                o->format = WIRE_AUDIO_S16LE;
                        else if (STREQ(s, "f32le"))
                                o->format = WIRE_AUDIO_F32LE;
                        else
                                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                                         "Option 'format' must be \"wav\", \"s16le\" or \"f32le\".");
                } else if (!live && STREQ(key, "rate")) {
                        if ((r = read_u32(msg, key, 1000, 768000, &o->rate, error)) < 0)
                                return r;
                } else if (!live && STREQ(key, "channels")) {
                        if ((r = read_u32(msg, key, 1, 32, &o->channels, error)) < 0)
                                return r;
                } else
                        return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "Unknown option '%s'.", key);
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

/* ---- starting ---- */

static int dictation_new(Manager *m, sd_bus_message *msg, bool live, const SpeechOptions *o, Dictation **ret,
                         sd_bus_error *error) {
        Caller *c;
        int r;

        if (m->stopping)
                return sd_bus_error_setf(error, SOTTO_ERROR_SHUTTING_DOWN, "sottod is stopping; try again later.");
        if (m->whisper_fd < 0)
                return sd_bus_error_setf(error, SOTTO_ERROR_MODEL_UNAVAILABLE,
                                         "No speech model is configured (WhisperModel= in sotto.conf).");
        if (!m->worker || !m->worker->ready)
                return sd_bus_error_setf(error, SOTTO_ERROR_MODEL_UNAVAILABLE, "The service is %s%s%s; try again.",
                                         m->state, m->state_reason[0] ? ": " : "", m->state_reason);
        r = caller_get(m, sd_bus_message_get_sender(msg) ?: ":unknown", &c);
        if (r < 0)
                return r;
        r = speech_quota_admit(m, c, error);
        if (r < 0)
                return r;
        if (caller_dictations(m, c) >= MAX_PER_CALLER || m->n_dictations >= MAX_DICTATIONS)
                return sd_bus_error_setf(error, SOTTO_ERROR_BUSY,
                                         "Too many dictations and transcriptions are running (%u of yours, %u in "
                                         "all); end one first.",
                                         caller_dictations(m, c), m->n_dictations);
        Dictation *d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->manager = m;
        d->id = m->next_request_id++;
        d->caller = c;
        d->live = live;
        d->capture_fd = d->control_fd = d->in_fd = -1;
        d->capture_status = -1;
        d->t_start = now_usec();
        if (asprintf(&d->path, SOTTO_DICTATION_PREFIX "/%" PRIu64, d->id) < 0) {
                free(d);
                return -ENOMEM;
        }
        wire_audio_start st = {
                .req_id = d->id,
                .format = live ? WIRE_AUDIO_F32LE : o->format,
                .rate = live ? RATE : o->rate,
                .channels = live ? 1 : o->channels,
                .flags = (live ? WIRE_AUDIO_LIVE : 0) | (live && o->partials ? WIRE_AUDIO_PARTIALS : 0) |
                         (live && o->single ? WIRE_AUDIO_SINGLE : 0),
                .partial_ms = o->partial_ms,
                .max_seconds = o->max_seconds,
        };
        snprintf(st.language, sizeof st.language, "%s", o->language);
        if (wire_encode_audio_start(&m->worker->conn.out, &st) < 0) {
                free(d->path);
                free(d);
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "Bad speech options.");
        }
        d->worker = m->worker;
        d->worker->n_active++;
        c->n_requests++;
        d->next = m->dictations;
        if (m->dictations)
                m->dictations->prev = d;
        m->dictations = d;
        m->n_dictations++;
        worker_send_flush(d->worker);
        *ret = d;
        return 0;
}

static int method_start_dictation(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        SpeechOptions o;
        Dictation *d;
        struct stat st;
        int fd, r;

        r = sd_bus_message_read(msg, "h", &fd);
        if (r < 0)
                return r;
        r = options_read(msg, true, &o, error);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                         "The pipewire_fd argument must be a connected PipeWire socket.");
        r = speech_authorize(m, msg, SOTTO_ACTION_DICTATE, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* refused, or asked: the call comes back */
        r = dictation_new(m, msg, true, &o, &d, error);
        if (r < 0)
                return r;
        r = capture_proc_start(d, fd, o.target[0] ? o.target : NULL);
        if (r < 0) {
                outcome(d, "failed", SOTTO_ERROR_CAPTURE_FAILED, "cannot start sotto-capture");
                dictation_cancel(d, "failed", SOTTO_ERROR_CAPTURE_FAILED, "cannot start sotto-capture");
                return sd_bus_error_setf(error, SOTTO_ERROR_CAPTURE_FAILED, "Cannot start audio capture: %s.",
                                         strerror(-r));
        }
        log_info("dictation %" PRIu64 " started for %s", d->id, d->caller->name);
        return sd_bus_reply_method_return(msg, "o", d->path);
}

static int method_transcribe(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        SpeechOptions o;
        Dictation *d;
        struct stat st;
        int fd, r;

        r = sd_bus_message_read(msg, "h", &fd);
        if (r < 0)
                return r;
        r = options_read(msg, false, &o, error);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                         "The audio argument must be a regular file, a pipe or a socket.");
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > MAX_RECORDING)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "The recording is larger than 256 MiB.");
        int acc = fcntl(fd, F_GETFL);
        if (acc < 0 || (acc & O_ACCMODE) == O_WRONLY)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "The audio fd is not open for reading.");
        r = speech_authorize(m, msg, SOTTO_ACTION_GENERATE, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* refused, or asked: the call comes back */
        _cleanup_close_ int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (own < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                (void)fcntl(own, F_SETFL, acc | O_NONBLOCK);
        r = dictation_new(m, msg, false, &o, &d, error);
        if (r < 0)
                return r;
        d->in_fd = TAKE_FD(own);
        d->in_regular = S_ISREG(st.st_mode);
        r = input_start(d);
        if (r < 0) {
                dictation_cancel(d, "failed", SOTTO_ERROR_INVALID_INPUT, "cannot read the audio");
                return r;
        }
        log_info("transcription %" PRIu64 " started for %s", d->id, d->caller->name);
        return sd_bus_reply_method_return(msg, "o", d->path);
}

/* ---- the dictation object ---- */

static int dictation_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                                 void **found, sd_bus_error *error) {
        Manager *m = userdata;
        sd_bus_message *msg = sd_bus_get_current_message(bus);
        const char *sender = msg ? sd_bus_message_get_sender(msg) : NULL;
        if (!sender)
                return 0;
        /* To anyone but its owner, it does not exist. */
        for (Dictation *d = m->dictations; d; d = d->next)
                if (STREQ(d->path, path) && STREQ(d->caller->name, sender)) {
                        *found = d;
                        return 1;
                }
        return 0;
}

static int method_stop(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Dictation *d = userdata;
        if (!d->stopping && !d->cancelled) {
                d->stopping = true;
                if (d->live && d->control_fd >= 0)
                        capture_proc_stop(d); /* the rest of the speech still comes */
                else if (!d->live) {
                        d->in_source = sd_event_source_disable_unref(d->in_source);
                        dictation_input_ended(d, "stopped", NULL, "%s", "stopped by the caller");
                }
        }
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Dictation *d = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        /* Reply first: Ended may free d. */
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (!d->cancelled)
                dictation_cancel(d, "cancelled", SOTTO_ERROR_CANCELLED, "cancelled by the caller");
        return r < 0 ? r : 1;
}

const sd_bus_vtable speech_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("StartDictation", "ha{sv}", SD_BUS_PARAM(pipewire_fd) SD_BUS_PARAM(options), "o",
                                 SD_BUS_PARAM(dictation), method_start_dictation, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Transcribe", "ha{sv}", SD_BUS_PARAM(audio) SD_BUS_PARAM(options), "o",
                                 SD_BUS_PARAM(transcription), method_transcribe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

const sd_bus_vtable dictation_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Stop", "", "", method_stop, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Cancel", "", "", method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("Partial", "sa{sv}", SD_BUS_PARAM(text) SD_BUS_PARAM(info), 0),
        SD_BUS_SIGNAL_WITH_NAMES("Final", "sa{sv}", SD_BUS_PARAM(text) SD_BUS_PARAM(info), 0),
        SD_BUS_SIGNAL_WITH_NAMES("Ended", "sss", SD_BUS_PARAM(reason) SD_BUS_PARAM(error) SD_BUS_PARAM(message), 0),
        SD_BUS_VTABLE_END,
};

int dictation_register(Manager *m) {
        int r = sd_bus_add_object_vtable(m->bus, NULL, SOTTO_OBJECT_PATH, SOTTO_IFACE_SPEECH, speech_vtable, m);
        if (r >= 0)
                r = sd_bus_add_fallback_vtable(m->bus, NULL, SOTTO_DICTATION_PREFIX, SOTTO_IFACE_DICTATION,
                                               dictation_vtable, dictation_object_find, m);
        return r;
}

int dictation_open_model(Manager *m) {
        m->whisper_fd = -1;
        if (!m->config.whisper_model_path)
                return 0;
        int fd = open(m->config.whisper_model_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0)
                return log_error_errno(-errno, "cannot open the speech model %s: %m", m->config.whisper_model_path);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return log_error_errno(-EINVAL, "the speech model %s is not a regular file",
                                       m->config.whisper_model_path);
        }
        m->whisper_fd = fd;
        return 0;
}
