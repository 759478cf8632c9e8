/* SPDX-License-Identifier: MIT */
/* The sotto-capture process of a dictation, seen from sottod: started with
 * the caller's PipeWire connection on fd 3, its sample pipe on fd 4 and a
 * control pipe on fd 5; its samples (16 kHz mono f32) go on to the worker
 * as they come; its exit code names why it stopped (capture.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/capture/capture.h"
#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/dictation.h"
#include "daemon/sottod/log.h"
#include "daemon/sottod/spawn.h"

#ifndef LIBEXECDIR
#define LIBEXECDIR "/usr/libexec/sotto"
#endif

/* $SOTTO_CAPTURE, else next to sottod, else the installed one. */
static const char *capture_path(void) {
        static char path[PATH_MAX + 32];
        const char *env = getenv("SOTTO_CAPTURE");
        char self[PATH_MAX];
        if (env && *env)
                return env;
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
                self[n] = 0;
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = 0;
                        snprintf(path, sizeof path, "%s/sotto-capture", self);
                        if (access(path, X_OK) == 0)
                                return path;
                }
        }
        return LIBEXECDIR "/sotto-capture";
}

/* Everything in the pipe, without blocking. */
static int drain(Dictation *d) {
        char buf[65536];
        for (;;) {
                ssize_t n = read(d->capture_fd, buf, sizeof buf);
                if (n < 0)
                        return errno == EINTR ? 0 : errno == EAGAIN ? 0 : -errno;
                if (n == 0)
                        return -EPIPE;
                dictation_send_audio(d, buf, (size_t)n);
                if (d->end_sent)
                        return 0;
        }
}

static int on_capture_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Dictation *d = userdata;
        if (drain(d) < 0)
                /* EOF or error: the exit status tells why. */
                d->capture_io = sd_event_source_disable_unref(d->capture_io);
        return 0;
}

static const char *stop_reason(int code, const char **error, char *msg, size_t n) {
        *error = NULL;
        switch (code) {
        case CAPTURE_STOPPED:
                return "stopped";
        case CAPTURE_SOURCE_VANISHED:
                *error = SOTTO_ERROR_SOURCE_VANISHED;
                snprintf(msg, n, "The audio source went away (unplugged, or removed from PipeWire).");
                return "source-vanished";
        case CAPTURE_DISCONNECTED:
                *error = SOTTO_ERROR_SOURCE_VANISHED;
                snprintf(msg, n, "The connection to PipeWire was lost.");
                return "disconnected";
        case CAPTURE_READER_CLOSED:
        default:
                *error = SOTTO_ERROR_CAPTURE_FAILED;
                snprintf(msg, n, "Audio capture failed (sotto-capture exited with %d; its reason is in the log).",
                         code);
                return "capture-failed";
        }
}

static int on_capture_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Dictation *d = userdata;
        char msg[200] = "";
        const char *error, *reason;

        d->capture_child = sd_event_source_disable_unref(d->capture_child);
        d->capture_pid = 0;
        d->capture_status = si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;
        /* What it wrote before it went is still in the pipe. */
        if (d->capture_fd >= 0 && !d->end_sent)
                (void)drain(d);
        d->capture_io = sd_event_source_disable_unref(d->capture_io);
        if (d->capture_fd >= 0) {
                close(d->capture_fd);
                d->capture_fd = -1;
        }
        reason = stop_reason(d->capture_status, &error, msg, sizeof msg);
        log_debug("dictation %llu: sotto-capture exited with %d (%s)", (unsigned long long)d->id, d->capture_status,
                  reason);
        dictation_input_ended(d, reason, error, "%s", msg);
        return 0;
}

int capture_proc_start(Dictation *d, int pipewire_fd, const char *target) {
        Manager *m = d->manager;
        int audio[2], control[2], r;

        if (pipe2(audio, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(control, O_CLOEXEC) < 0) {
                r = -errno;
                close(audio[0]);
                close(audio[1]);
                return r;
        }
        const char *exe = capture_path();
        char a_user[160], a_target[300];
        snprintf(a_user, sizeof a_user, "--user=%s", m->config.user);
        snprintf(a_target, sizeof a_target, "--target=%s", target ? target : "");
        char *argv[] = { (char *)"sotto-capture", (char *)"--pipewire-fd=3", (char *)"--output-fd=4",
                         (char *)"--control-fd=5", a_user, target && *target ? a_target : NULL, NULL };

        pid_t pid = fork();
        if (pid < 0) {
                r = -errno;
                close(audio[0]), close(audio[1]), close(control[0]), close(control[1]);
                return r;
        }
        if (pid == 0)
                spawn_exec_child((const int[]){ pipewire_fd, audio[1], control[0] }, 3, exe, argv);
        close(audio[1]);
        close(control[0]);
        d->capture_pid = pid;
        d->capture_fd = audio[0];
        d->control_fd = control[1];
        d->capture_status = -1;
        (void)fcntl(d->capture_fd, F_SETFL, O_NONBLOCK);
        (void)fcntl(d->control_fd, F_SETFL, O_NONBLOCK);
        r = sd_event_add_child(m->event, &d->capture_child, pid, WEXITED, on_capture_exit, d);
        if (r >= 0)
                r = sd_event_add_io(m->event, &d->capture_io, d->capture_fd, EPOLLIN, on_capture_io, d);
        if (r < 0) {
                capture_proc_kill(d);
                return r;
        }
        (void)sd_event_source_set_child_process_own(d->capture_child, true);
        log_info("dictation %llu: started sotto-capture %d for %s", (unsigned long long)d->id, (int)pid,
                 d->caller->name);
        return 0;
}

void capture_proc_stop(Dictation *d) {
        if (d->control_fd < 0)
                return;
        /* One byte, or the closed end: either stops it cleanly. */
        (void)!write(d->control_fd, "q", 1);
        close(d->control_fd);
        d->control_fd = -1;
}

void capture_proc_kill(Dictation *d) {
        d->capture_io = sd_event_source_disable_unref(d->capture_io);
        if (d->capture_child) {
                /* Owned by the source: disabling it kills and reaps. */
                d->capture_child = sd_event_source_disable_unref(d->capture_child);
        } else if (d->capture_pid > 0) {
                (void)kill(d->capture_pid, SIGKILL);
                (void)waitpid(d->capture_pid, NULL, 0);
        }
        d->capture_pid = 0;
        if (d->capture_fd >= 0)
                close(d->capture_fd);
        if (d->control_fd >= 0)
                close(d->control_fd);
        d->capture_fd = d->control_fd = -1;
}
