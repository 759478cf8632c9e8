/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "daemon/sottod/authorize.h"
#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/config.h"
#include "daemon/sottod/dictation.h"
#include "daemon/sottod/log.h"
#include "daemon/sottod/manager.h"
#include "daemon/sottod/quota-manager.h"

uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- life cycle ---- */

int manager_new(const ManagerConfig *config, Manager **ret) {
        Manager *m = calloc(1, sizeof *m);
        int r;

        if (!m)
                return -ENOMEM;
        m->config = *config;
        m->model_fd = -1;
        m->mmproj_fd = -1;
        m->whisper_fd = -1;
        m->weights_fd = -1;
        m->state = "starting";
        m->next_request_id = 1;
        m->next_chat_id = 1;
        r = sd_event_default(&m->event);
        if (r >= 0)
                r = quotas_new(m);
        if (r < 0) {
                sd_event_unref(m->event);
                free(m);
                return r;
        }
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        dictation_free_all(m);
        while (m->chats)
                chat_free(m->chats);
        while (m->requests) {
                Request *q = m->requests;
                q->call = sd_bus_message_unref(q->call); /* no reply on the way out */
                if (q->state == REQUEST_QUEUED) {
                        /* unlink from the caller queue is not needed: callers go too */
                }
                request_finalize(q);
        }
        while (m->callers) {
                Caller *c = m->callers;
                m->callers = c->next;
                sd_bus_track_unref(c->track);
                free(c->name);
                free(c);
        }
        m->authority = authority_free(m->authority);
        quotas_free(m); /* writes the usage */
        if (m->worker)
                worker_free(m->worker);
        while (m->old_workers) {
                Worker *w = m->old_workers;
                m->old_workers = w->next;
                worker_free(w);
        }
        sd_event_source_unref(m->restart_timer);
        sd_event_source_unref(m->drain_timer);
        image_loads_free(m);
        if (m->model_fd >= 0)
                close(m->model_fd);
        if (m->mmproj_fd >= 0)
                close(m->mmproj_fd);
        if (m->whisper_fd >= 0)
                close(m->whisper_fd);
        if (m->weights_fd >= 0)
                close(m->weights_fd);
        free(m->model_file);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        manager_config_done(&m->config);
        free(m);
        return NULL;
}

void manager_set_state(Manager *m, const char *state, const char *reason_fmt, ...) {
        char reason[sizeof m->state_reason] = "";
        if (reason_fmt) {
                va_list ap;
                va_start(ap, reason_fmt);
                vsnprintf(reason, sizeof reason, reason_fmt, ap);
                va_end(ap);
        }
        if (STREQ(m->state, state) && STREQ(m->state_reason, reason))
                return;
        m->state = state;
        snprintf(m->state_reason, sizeof m->state_reason, "%s", reason);
        log_info("state: %s%s%s", state, *reason ? ": " : "", reason);
        if (m->bus)
                (void)sd_bus_emit_properties_changed(m->bus, SOTTO_OBJECT_PATH, SOTTO_IFACE_SERVICE, "State",
                                                     "StateReason", "ModelName", "ModelArchitecture", "ModelFile",
                                                     "ContextSize", "Capabilities", NULL);
        if (STREQ(state, "ready") && !m->notified_ready) {
                m->notified_ready = true;
                (void)sd_notifyf(false, "READY=1\nSTATUS=Serving %s", m->model_file ? m->model_file : "");
        } else
                (void)sd_notifyf(false, "STATUS=%s%s%s", state, *reason ? ": " : "", reason);
}

int manager_open_model(Manager *m) {
        int fd = open(m->config.model_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0)
                return log_error_errno(-errno, "cannot open the model %s: %m", m->config.model_path);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return log_error_errno(-EINVAL, "the model %s is not a regular file", m->config.model_path);
        }
        const char *base = strrchr(m->config.model_path, '/');
        char *name = strdup(base ? base + 1 : m->config.model_path);
        if (!name) {
                close(fd);
                return -ENOMEM;
        }
        if (m->model_fd >= 0)
                close(m->model_fd);
        m->model_fd = fd;
        free(m->model_file);
        m->model_file = name;
        return 0;
}

int manager_start(Manager *m) {
        return worker_start(m);
}

/* SIGHUP: the configuration is read again (with --config; a broken file
 * keeps the last good settings), the model file is opened again (it may
 * have been replaced, or Model= changed) and a
 * new worker loads it.  Requests and chats already on the old worker finish
 * there; new ones go to the new worker once it is ready. */
int manager_reload(Manager *m) {
        int r;
        if (m->stopping)
                return 0;
        if (m->config.config_path) {
                char err[1024];
                (void)manager_reload_config(m, NULL, err, sizeof err); /* logs; keeps the last good */
        }
        log_info("reloading the model %s", m->config.model_path);
        r = manager_open_model(m);
        if (r < 0)
                return log_warning_errno(r, "keeping the model that is loaded");
        r = manager_open_mmproj(m);
        if (r < 0)
                return log_warning_errno(r, "keeping the model that is loaded");
        Worker *old = m->worker;
        m->worker = NULL;
        if (old) {
                old->retiring = true;
                old->next = m->old_workers;
                m->old_workers = old;
        }
        crashloop_reset(&m->crashes);
        manager_set_state(m, "starting", "loading %s", m->model_file);
        r = worker_start(m);
        if (old)
                worker_maybe_retire(old);
        return r;
}

int manager_register_objects(Manager *m) {
        int r = sd_bus_add_object_vtable(m->bus, NULL, SOTTO_OBJECT_PATH, SOTTO_IFACE_SERVICE, service_vtable, m);
        if (r >= 0)
                r = sd_bus_add_object_vtable(m->bus, NULL, SOTTO_OBJECT_PATH, SOTTO_IFACE_TEXT, text_vtable, m);
        if (r >= 0)
                r = sd_bus_add_object_vtable(m->bus, NULL, SOTTO_OBJECT_PATH, SOTTO_IFACE_ADMIN, admin_vtable, m);
        if (r >= 0)
                r = sd_bus_add_object_vtable(m->bus, NULL, SOTTO_OBJECT_PATH, SOTTO_IFACE_VISION, vision_vtable, m);
        if (r >= 0)
                r = sd_bus_add_fallback_vtable(m->bus, NULL, SOTTO_CHAT_PREFIX, SOTTO_IFACE_CHAT, chat_vtable,
                                               chat_object_find, m);
        if (r >= 0)
                r = sd_bus_add_node_enumerator(m->bus, NULL, SOTTO_CHAT_PREFIX, chat_node_enumerator, m);
        if (r >= 0)
                r = dictation_register(m);
        return r;
}

/* ---- callers ---- */

static int on_caller_gone(sd_bus_track *t, void *userdata) {
        Caller *c = userdata;
        Manager *m = c->manager;

        log_debug("caller %s left the bus", c->name);
        c->gone = true;
        c->n_requests++; /* keeps c alive while what it holds is freed */
        /* Everything it holds ends now: queued and running requests, chats. */
        for (Request *q = m->requests, *next; q; q = next) {
                next = q->next;
                if (q->caller == c) {
                        q->call = sd_bus_message_unref(q->call);
                        request_cancel(q, SOTTO_ERROR_CANCELLED, "the caller left the bus");
                }
        }
        for (Chat *ch = m->chats, *next; ch; ch = next) {
                next = ch->next;
                if (ch->owner == c)
                        chat_free(ch);
        }
        dictation_caller_gone(m, c);
        c->n_requests--;
        caller_maybe_free(c);
        return 0;
}

void caller_maybe_free(Caller *c) {
        if (!c->gone || c->n_requests > 0 || c->n_chats > 0)
                return;
        Manager *m = c->manager;
        if (m->rr_last == c)
                m->rr_last = c->prev;
        if (c->prev)
                c->prev->next = c->next;
        else
                m->callers = c->next;
        if (c->next)
                c->next->prev = c->prev;
        sd_bus_track_unref(c->track);
        free(c->name);
        free(c);
}

int caller_get(Manager *m, const char *name, Caller **ret) {
        int r;
        for (Caller *c = m->callers; c; c = c->next)
                if (!c->gone && STREQ(c->name, name)) {
                        *ret = c;
                        return 0;
                }
        Caller *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->name = strdup(name);
        if (!c->name) {
                free(c);
                return -ENOMEM;
        }
        r = sd_bus_track_new(m->bus, &c->track, on_caller_gone, c);
        if (r >= 0)
                r = sd_bus_track_add_name(c->track, name);
#ifdef SOTTO_FUZZING
        /* The fuzzer talks peer to peer, where there are no names to track. */
        if (r < 0 && c->track)
                r = 0;
#endif
        if (r >= 0)
                r = caller_identify(m, c); /* once, now, for the life of the name */
        if (r < 0) {
                sd_bus_track_unref(c->track);
                free(c->name);
                free(c);
                return r;
        }
        c->next = m->callers;
        if (m->callers)
                m->callers->prev = c;
        m->callers = c;
        *ret = c;
        return 0;
}

/* ---- scheduling ---- */

/* Priorities, then round robin over applications and their callers:
 * sched.c. */
static Request *pick_next(Manager *m) {
        return sched_pick(m);
}

void manager_schedule(Manager *m) {
        while (m->n_active < m->config.max_active && m->n_queued > 0) {
                Request *q = pick_next(m);
                if (!q)
                        break;
                Worker *w = q->chat && q->chat->worker ? q->chat->worker : m->worker;
                if (!w || !w->ready || w->dead)
                        break;
                request_dequeue(q);
                q->state = REQUEST_ACTIVE;
                q->worker = w;
                q->t_dispatch = now_usec();
                if (q->chat)
                        q->chat->worker = w;
                w->n_active++;
                m->n_active++;
                worker_send_generate(w, q);
        }
}

/* ---- chats ---- */

void chat_free(Chat *c) {
        Manager *m = c->manager;
        if (c->turn) {
                Request *q = c->turn;
                c->turn = NULL;
                q->chat = NULL;
                request_cancel(q, SOTTO_ERROR_CANCELLED, "the chat was closed");
        }
        if (c->worker && !c->worker->dead)
                worker_send_u64(c->worker, WIRE_CHAT_CLOSE, c->id);
        Worker *w = c->worker;
        if (c->prev)
                c->prev->next = c->next;
        else
                m->chats = c->next;
        if (c->next)
                c->next->prev = c->prev;
        m->n_chats--;
        c->owner->n_chats--;
        caller_maybe_free(c->owner);
        gen_params_done(&c->defaults);
        free(c->path);
        free(c);
        if (w && w->retiring)
                worker_maybe_retire(w);
}

/* ---- stopping ---- */

void manager_check_stopped(Manager *m) {
        if (m->stopping && !m->requests)
                (void)sd_event_exit(m->event, 0);
}

static int on_drain_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        log_notice("requests did not finish in time; cancelling them");
        for (Request *q = m->requests, *next; q; q = next) {
                next = q->next;
                request_cancel(q, SOTTO_ERROR_SHUTTING_DOWN, "sottod is stopping");
        }
        return 0;
}

/* SIGTERM: queued requests fail at once, running ones get drain_usec to
 * finish and are then cancelled; every caller gets a reply. */
void manager_stop(Manager *m) {
        if (m->stopping) {
                /* Second signal: do not wait. */
                on_drain_timeout(NULL, 0, m);
                return;
        }
        m->stopping = true;
        (void)sd_notify(false, "STOPPING=1");
        manager_set_state(m, "stopping", "sottod is stopping");
        for (Request *q = m->requests, *next; q; q = next) {
                next = q->next;
                if (q->state == REQUEST_QUEUED)
                        request_fail(q, SOTTO_ERROR_SHUTTING_DOWN, "sottod is stopping; try again later");
        }
        if (m->requests)
                (void)sd_event_add_time_relative(m->event, &m->drain_timer, CLOCK_MONOTONIC, m->config.drain_usec, 0,
                                                 on_drain_timeout, m);
        manager_check_stopped(m);
}

/* A random seed for callers that give none (a fixed seed is the caller's
 * way to get the same answer twice). */
uint64_t random_seed(void);
uint64_t random_seed(void) {
        uint64_t s = 0;
        if (getrandom(&s, sizeof s, GRND_NONBLOCK) != sizeof s)
                s = now_usec() ^ ((uint64_t)getpid() << 32);
        return s;
}
