/* SPDX-License-Identifier: MIT */
/* Speech in sottod: dictations (live audio from the caller's PipeWire,
 * through a sotto-capture process) and transcriptions (a recording read
 * from an fd), each an object /org/sotto/Sotto1/dictation/N owned by its
 * caller, with unicast Partial/Final/Ended signals.  sottod only moves the
 * bytes: the samples and files are parsed by the worker. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/sottod/manager.h"

#define SOTTO_IFACE_SPEECH "org.sotto.Sotto1.Speech"
#define SOTTO_IFACE_DICTATION "org.sotto.Sotto1.Dictation"
#define SOTTO_DICTATION_PREFIX "/org/sotto/Sotto1/dictation"

typedef struct Dictation Dictation;

struct Dictation {
        Manager *manager;
        uint64_t id; /* also the request id on the wire */
        char *path;
        Caller *caller;
        Worker *worker;
        bool live;
        /* live: the sotto-capture process and its pipes */
        pid_t capture_pid;
        int capture_fd, control_fd;
        sd_event_source *capture_io, *capture_child;
        int capture_status; /* exit code, -1 while running */
        /* recording: the caller's fd */
        int in_fd;
        bool in_regular;
        sd_event_source *in_source;
        uint64_t in_bytes;
        /* progress */
        bool end_sent;      /* AUDIO_END (or CANCEL) sent to the worker */
        bool cancelled;
        bool stopping;
        const char *reason; /* why it ends, once known */
        const char *error;  /* a D-Bus error name, or NULL */
        char message[300];
        uint32_t n_finals;
        uint64_t t_start;
        Dictation *next, *prev;
};

/* bus-dictation.c */
extern const sd_bus_vtable speech_vtable[];
extern const sd_bus_vtable dictation_vtable[];
int dictation_register(Manager *m);
int dictation_open_model(Manager *m); /* WhisperModel=: opened before privileges drop */
void dictation_caller_gone(Manager *m, Caller *c);
/* From the worker: 0, or -EBADMSG when the frame names no dictation of w. */
int dictation_worker_text(Manager *m, Worker *w, const uint8_t *payload, size_t len);
int dictation_worker_done(Manager *m, Worker *w, const wire_done *d);
void dictation_worker_died(Manager *m, Worker *w, const char *reason);
void dictation_free_all(Manager *m);
/* Sends audio to the worker; ends the dictation if the worker lags too far. */
void dictation_send_audio(Dictation *d, const void *data, size_t len);
/* The audio has ended (capture stopped, input read): recognize the rest. */
void dictation_input_ended(Dictation *d, const char *reason, const char *error, const char *fmt, ...)
        _printf_(4, 5);

/* capture-proc.c */
int capture_proc_start(Dictation *d, int pipewire_fd, const char *target);
void capture_proc_stop(Dictation *d);   /* a stop byte: the tail of the speech still comes */
void capture_proc_kill(Dictation *d);   /* at once, nothing more */
