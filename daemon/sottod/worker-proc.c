/* SPDX-License-Identifier: MIT */
/* The sotto-worker process seen from sottod: start it with the model fd,
 * read what it sends (trusting none of it), notice its death at once, fail
 * its requests with WorkerFailed, restart it unless it crash-loops. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/dictation.h"
#include "daemon/sottod/log.h"
#include "daemon/sottod/manager.h"
#include "daemon/sottod/spawn.h"

static void worker_update_events(Worker *w) {
        if (w->io_source)
                (void)sd_event_source_set_io_events(w->io_source,
                                                    EPOLLIN | (w->conn.out.len > w->conn.out_sent ? EPOLLOUT : 0));
}

static void worker_flush(Worker *w) {
        if (w->dead)
                return;
        int r = wire_conn_flush(&w->conn);
        if (r < 0)
                worker_kill(w, "its connection failed");
        else
                worker_update_events(w);
}

void worker_send_generate(Worker *w, Request *q) {
        wire_generate g = {
                .req_id = q->id,
                .chat_id = q->chat ? q->chat->id : 0,
                .params = q->params,
                .prompt = q->prompt,
                .prompt_len = (uint32_t)q->prompt_len,
        };
        int r;
        if (q->image) {
                /* The image goes ahead of its question; sottod has read it but
                 * never looks into it. */
                wire_explain x = { .gen = g, .image_size = (uint32_t)q->image_len };
                r = q->image_len <= WIRE_MAX_IMAGE ? wire_encode_explain(&w->conn.out, &x, q->image) : -EMSGSIZE;
                free(q->image);
                q->image = NULL;
        } else
                r = wire_encode_generate(&w->conn.out, &g);
        if (r < 0) {
                request_fail(q, SOTTO_ERROR_INVALID_INPUT, "The request is too large for the worker.");
                return;
        }
        worker_flush(w);
}

void worker_send_flush(Worker *w) {
        worker_flush(w);
}

void worker_send_u64(Worker *w, uint32_t type, uint64_t v) {
        if (w->dead)
                return;
        if (wire_encode_u64(&w->conn.out, type, v) < 0)
                return worker_kill(w, "out of memory");
        worker_flush(w);
}

static Request *find_active(Manager *m, Worker *w, uint64_t id) {
        for (Request *q = m->requests; q; q = q->next)
                if (q->id == id && q->worker == w && q->state == REQUEST_ACTIVE)
                        return q;
        return NULL;
}

/* Frames from the worker.  Anything malformed, out of place or naming a
 * request that is not running there is a protocol violation: the worker is
 * killed, never believed. */
static int worker_dispatch(Worker *w, uint32_t type, const uint8_t *payload, size_t len) {
        Manager *m = w->manager;
        switch (type) {
        case WIRE_READY: {
                wire_ready info;
                if (w->ready || wire_decode_ready(payload, len, &info) < 0)
                        return -EBADMSG;
                w->info = info;
                w->ready = true;
                log_info("worker %d ready: %s (%s), context %u tokens, %.1f s after start", (int)w->pid,
                         info.name, info.arch, info.n_ctx, (now_usec() - w->started_usec) / 1e6);
                if (w == m->worker) {
                        /* Old workers of a reload retire now that this one serves. */
                        for (Worker *o = m->old_workers; o; o = o->next)
                                worker_maybe_retire(o);
                        if (!m->stopping)
                                manager_set_state(m, "ready", NULL);
                }
                manager_schedule(m);
                return 0;
        }
        case WIRE_TEXT: {
                wire_text t;
                if (wire_decode_text(payload, len, &t) < 0 || !utf8_is_valid(t.text, t.len))
                        return -EBADMSG;
                Request *q = find_active(m, w, t.req_id);
                if (!q)
                        return -EBADMSG;
                request_text(q, t.text, t.len, t.n_tokens);
                return 0;
        }
        case WIRE_DONE: {
                wire_done d;
                if (wire_decode_done(payload, len, &d) < 0)
                        return -EBADMSG;
                Request *q = find_active(m, w, d.req_id);
                if (!q)
                        return dictation_worker_done(m, w, &d); /* speech, or a violation */
                request_done(q, &d);
                return 0;
        }
        case WIRE_AUDIO_TEXT:
                return dictation_worker_text(m, w, payload, len);
        case WIRE_WEIGHTS:
                return worker_take_weights(w, payload, len);
        case WIRE_STATS:
                return worker_take_stats(w, payload, len);
        default:
                return -EBADMSG;
        }
}

static int on_worker_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        uint32_t type;
        const uint8_t *payload;
        size_t len;
        int r;

        if (revents & EPOLLOUT)
                worker_flush(w);
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) || w->dead)
                return 0;
        r = wire_conn_read(&w->conn);
        if (r < 0) {
                /* EOF: it is exiting; its exit status says why. */
                worker_kill(w, r == -EPIPE ? NULL : "its connection failed");
                return 0;
        }
        while (!w->dead && (r = wire_conn_next(&w->conn, &type, &payload, &len)) > 0)
                if (worker_dispatch(w, type, payload, len) < 0) {
                        worker_kill(w, "it broke the protocol");
                        return 0;
                }
        if (r < 0)
                worker_kill(w, "it sent a malformed frame");
        return 0;
}

void worker_kill(Worker *w, const char *why) {
        if (w->dead)
                return;
        if (why && !w->kill_reason[0])
                snprintf(w->kill_reason, sizeof w->kill_reason, "%s", why);
        /* The exit handler does the rest once the kernel confirms it. */
        w->io_source = sd_event_source_disable_unref(w->io_source);
        if (w->pid > 0)
                (void)kill(w->pid, SIGKILL);
}

void worker_free(Worker *w) {
        if (!w)
                return;
        sd_event_source_disable_unref(w->io_source);
        if (w->child_source) {
                if (!w->dead && w->pid > 0) {
                        (void)kill(w->pid, SIGKILL);
                        (void)waitpid(w->pid, NULL, 0);
                }
                sd_event_source_disable_unref(w->child_source);
        }
        worker_stats_retire(w);
        wire_conn_done(&w->conn);
        free(w);
}

/* An idle replaced worker is told to go by closing its socket. */
void worker_maybe_retire(Worker *w) {
        Manager *m = w->manager;
        if (!w->retiring || w->dead || w->n_active > 0)
                return;
        for (Chat *c = m->chats; c; c = c->next)
                if (c->worker == w)
                        return;
        /* Keep it until its successor serves, so nothing waits on nothing. */
        if (!m->worker || !m->worker->ready)
                return;
        log_info("worker %d retires (the model was reloaded)", (int)w->pid);
        worker_kill(w, "it was replaced");
}

static int on_restart(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        m->restart_timer = sd_event_source_unref(m->restart_timer);
        if (!m->worker && !m->stopping)
                (void)worker_start(m);
        return 0;
}

static void worker_died(Worker *w, const char *how) {
        Manager *m = w->manager;
        char reason[300];

        w->dead = true;
        w->io_source = sd_event_source_disable_unref(w->io_source);
        snprintf(reason, sizeof reason, "%s%s%s%s", how, w->kill_reason[0] ? " because " : "", w->kill_reason,
                 w->ready ? "" : ", before it had loaded the model (its own message is in the log)");
        bool expected = w->retiring && !w->n_active;
        if (expected)
                log_info("worker %d exited: %s", (int)w->pid, reason);
        else
                log_warning("worker %d died: %s", (int)w->pid, reason);

        for (Request *q = m->requests, *next; q; q = next) {
                next = q->next;
                if (q->worker == w && q->state == REQUEST_ACTIVE)
                        request_fail(q, SOTTO_ERROR_WORKER_FAILED,
                                     "The inference worker stopped (%s) while answering; nothing else is affected, "
                                     "try again.", reason);
        }
        for (Chat *c = m->chats; c; c = c->next)
                if (c->worker == w) {
                        c->lost = true;
                        c->worker = NULL;
                }
        dictation_worker_died(m, w, reason);

        if (w == m->worker) {
                m->worker = NULL;
                if (m->stopping)
                        return;
                m->stats.worker_crashes++;
                if (crashloop_record(&m->crashes, now_usec())) {
                        manager_set_state(m, "failed",
                                          "the inference worker crashed %d times within %d s and is not restarted "
                                          "(last: %s); send SIGHUP or restart sottod after fixing the cause",
                                          CRASHLOOP_BURST, CRASHLOOP_INTERVAL_USEC / 1000000, reason);
                        for (Request *q = m->requests, *next; q; q = next) {
                                next = q->next;
                                if (q->state == REQUEST_QUEUED)
                                        request_fail(q, SOTTO_ERROR_MODEL_UNAVAILABLE, "No model is available: %s.",
                                                     m->state_reason);
                        }
                        return;
                }
                manager_set_state(m, "starting", "restarting the inference worker (%s)", reason);
                /* Not from inside this handler: the event loop reaps first. */
                (void)sd_event_add_time_relative(m->event, &m->restart_timer, CLOCK_MONOTONIC, 0, 0, on_restart, m);
        } else if (!expected)
                m->stats.worker_crashes++;
}

static int on_worker_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Worker *w = userdata;
        Manager *m = w->manager;
        char how[64];

        if (si->si_code == CLD_EXITED)
                snprintf(how, sizeof how, "exited with status %d", si->si_status);
        else
                snprintf(how, sizeof how, "killed by signal %d (%s)", si->si_status, strsignal(si->si_status));
        if (!w->dead)
                worker_died(w, how);
        /* Unlink and free. */
        if (m->worker == w)
                m->worker = NULL;
        for (Worker **p = &m->old_workers; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        break;
                }
        w->child_source = sd_event_source_disable_unref(w->child_source);
        w->pid = 0;
        worker_free(w);
        manager_check_stopped(m);
        return 0;
}

static int fmt_arg(char *buf, size_t n, const char *name, unsigned long v) {
        return snprintf(buf, n, "--%s=%lu", name, v);
}

int worker_start(Manager *m) {
        int pair[2];
        Worker *w;
        int r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                return log_error_errno(-errno, "cannot create the worker socket: %m");
        w = calloc(1, sizeof *w);
        if (!w) {
                close(pair[0]);
                close(pair[1]);
                return -ENOMEM;
        }
        w->manager = m;
        w->generation = ++m->worker_generation;
        wire_conn_init(&w->conn, pair[0]);

        /* The derived weights an earlier worker of these files built (fd 7). */
        weights_key_of(m, &w->weights_key);
        int weights_fd = weights_fd_for(m, &w->weights_key);
        w->weights_handed = weights_fd >= 0;

        char a_ctx[32], a_thr[32], a_act[32], a_chats[32], a_user[160], a_mmproj[32] = "--mmproj-fd=5";
        fmt_arg(a_ctx, sizeof a_ctx, "context", m->config.n_ctx);
        fmt_arg(a_thr, sizeof a_thr, "threads", m->config.n_threads);
        fmt_arg(a_act, sizeof a_act, "max-active", m->config.max_active);
        fmt_arg(a_chats, sizeof a_chats, "max-chats", m->config.max_chats);
        snprintf(a_user, sizeof a_user, "--user=%s", m->config.user);
        char *argv[] = { (char *)"sotto-worker", (char *)"--socket-fd=3", (char *)"--model-fd=4", a_ctx, a_thr,
                         a_act, a_chats, a_user, NULL, NULL, NULL, NULL };
        /* Optional fds: the vision projector (5), the speech model (6), the
         * derived weights (7). */
        size_t n_arg = 8;
        if (m->mmproj_fd >= 0)
                argv[n_arg++] = a_mmproj;
        if (m->whisper_fd >= 0)
                argv[n_arg++] = (char *)"--whisper-model-fd=6";
        if (weights_fd >= 0)
                argv[n_arg++] = (char *)"--weights-fd=7";

        pid_t pid = fork();
        if (pid < 0) {
                r = log_error_errno(-errno, "cannot fork the worker: %m");
                close(pair[1]);
                worker_free(w);
                return r;
        }
        if (pid == 0)
                /* The socket on fd 3, the model on 4, then the optional
                 * ones: the vision projector (5), the speech model (6), the
                 * derived weights (7); nothing else. */
                spawn_exec_child((const int[]){ pair[1], m->model_fd, m->mmproj_fd, m->whisper_fd, weights_fd }, 5,
                                 m->config.worker_path, argv);
        close(pair[1]);
        w->pid = pid;
        w->started_usec = now_usec();
        (void)fcntl(w->conn.fd, F_SETFL, O_NONBLOCK);
        r = sd_event_add_child(m->event, &w->child_source, pid, WEXITED, on_worker_exit, w);
        if (r >= 0)
                r = sd_event_add_io(m->event, &w->io_source, w->conn.fd, EPOLLIN, on_worker_io, w);
        if (r < 0) {
                (void)kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                w->child_source = sd_event_source_disable_unref(w->child_source);
                worker_free(w);
                return log_error_errno(r, "cannot watch the worker: %m");
        }
        /* Reaped by us, even if the event loop ends first. */
        (void)sd_event_source_set_child_process_own(w->child_source, true);
        m->worker = w;
        m->stats.worker_starts++;
        m->stats.weights_handed += w->weights_handed;
        log_info("started worker %d (%s)%s", (int)pid, m->config.worker_path,
                 w->weights_handed ? " with the shared derived weights" : "");
        return 0;
}
