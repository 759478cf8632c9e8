/* SPDX-License-Identifier: MIT */
/* sottod's one context: the bus, the callers and what they hold (queued
 * requests, chats), the worker process, the queue and the statistics. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "daemon/common/wire.h"
#include "daemon/sottod/crashloop.h"
#include "daemon/sottod/identity.h"
#include "macro.h"

#define SOTTO_BUS_NAME "org.sotto.Sotto1"
#define SOTTO_OBJECT_PATH "/org/sotto/Sotto1"
#define SOTTO_CHAT_PREFIX "/org/sotto/Sotto1/chat"
#define SOTTO_IFACE_SERVICE "org.sotto.Sotto1.Service"
#define SOTTO_IFACE_TEXT "org.sotto.Sotto1.Text"
#define SOTTO_IFACE_CHAT "org.sotto.Sotto1.Chat"
#define SOTTO_IFACE_ADMIN "org.sotto.Sotto1.Admin"
#define SOTTO_IFACE_VISION "org.sotto.Sotto1.Vision"

typedef struct Manager Manager;
typedef struct Caller Caller;
typedef struct Request Request;
typedef struct Chat Chat;
typedef struct Worker Worker;
typedef struct Authority Authority;
typedef struct ImageLoad ImageLoad;

typedef enum RequestState {
        REQUEST_QUEUED,
        REQUEST_ACTIVE,    /* sent to the worker, DONE not yet received */
        REQUEST_FINISHING, /* outcome known, output still draining */
} RequestState;

struct Request {
        Manager *manager;
        uint64_t id;
        Caller *caller;
        Chat *chat; /* NULL for Ask */
        Worker *worker;
        RequestState state;
        sd_bus_message *call; /* replied to when the request ends */
        int out_fd;
        sd_event_source *out_source;
        char *out_buf;
        size_t out_len, out_cap;
        bool out_broken; /* the reader went away */
        char *prompt;
        size_t prompt_len;
        uint8_t *image; /* Explain: the encoded image, sent to the worker ahead of the question */
        size_t image_len;
        gen_params params;
        uint64_t t_call, t_dispatch, t_first, t_cancel;
        uint32_t n_tokens;           /* tokens generated, as reported by the worker */
        uint32_t n_tokens_at_cancel;
        bool cancel_sent;
        const char *cancel_error; /* error name to reply with once cancelled */
        char cancel_message[160];
        /* outcome */
        const char *error_name; /* NULL: success */
        char error_message[300];
        wire_done done;
        Request *queue_next;  /* in the caller's queue */
        Request *next, *prev; /* in manager->requests */
};

struct Chat {
        Manager *manager;
        uint64_t id;
        char *path;
        Caller *owner;
        gen_params defaults;
        Request *turn;    /* the turn being answered, if any */
        Worker *worker;   /* the worker holding its KV cache, NULL before the first turn */
        uint32_t n_past;
        uint32_t n_ctx;   /* fixed when the chat opens */
        bool lost;        /* its worker died: the context is gone */
        Chat *next, *prev; /* in manager->chats */
};

struct Caller {
        Manager *manager;
        char *name; /* unique bus name */
        sd_bus_track *track;
        Request *queue_head, *queue_tail; /* waiting for the worker */
        uint32_t n_requests;             /* queued, active and finishing */
        uint32_t n_chats;
        bool gone; /* left the bus */
        Identity identity;   /* read once, when the caller first appears (identity.h) */
        struct App *app;     /* its application's quotas and usage (quota-manager.h) */
        uint64_t last_served; /* scheduler stamp (sched.c) */
        Caller *next, *prev;
};

/* The identity of the files a worker loads (model, projector, speech
 * model): its derived weights are those of exactly these (weights.c). */
typedef struct WeightsKey {
        struct {
                uint64_t dev, ino, size;
                int64_t mtime_sec, mtime_nsec;
        } file[3];
} WeightsKey;

struct Worker {
        Manager *manager;
        pid_t pid;
        uint64_t generation;
        sd_event_source *child_source, *io_source;
        wire_conn conn;
        bool ready, dead, draining;
        uint32_t n_active;
        uint64_t started_usec;
        wire_ready info;
        bool retiring; /* replaced by a reload: exits once idle, not a crash */
        char kill_reason[160];
        Worker *next; /* in manager->old_workers */
        WeightsKey weights_key; /* the files it was started with */
        bool weights_sent;      /* it sent its derived weights (once, before READY) */
        bool weights_handed;    /* it was started with the shared derived weights */
        wire_stats decode;      /* its decoding counters (WIRE_STATS) */
};

typedef struct Statistics {
        uint64_t requests, completed, failed, cancelled, rejected;
        uint64_t tokens_generated, prompt_tokens;
        uint64_t worker_starts, worker_crashes;
        uint64_t cancel_max_extra_tokens, cancel_max_usec;
        uint64_t chats_opened;
        wire_stats decode_retired; /* of the workers gone (weights.c) */
        uint64_t weights_builds;   /* derived-weights memfds received from workers */
        uint64_t weights_handed;   /* workers started with one */
} Statistics;

typedef struct ManagerConfig {
        char *model_path;
        bool model_from_cli; /* --model wins over Model= on every reload */
        char *config_path;   /* re-read on SIGHUP */
        char *config_dir;    /* drop-ins; NULL: "<config_path>.d" */
        char *worker_path;
        char *whisper_model_path; /* WhisperModel= / --whisper-model; NULL: no speech */
        char *user;
        uint32_t n_ctx;        /* 0: the worker picks */
        uint32_t n_threads;    /* 0: the worker picks */
        uint32_t max_active;   /* requests generated at once */
        uint32_t max_per_caller; /* queued + active per caller */
        uint32_t max_queued;   /* in total */
        uint32_t max_chats_per_caller;
        uint32_t max_chats;
        uint32_t max_prompt_bytes;
        uint64_t drain_usec;   /* SIGTERM: how long active requests may finish */
        bool polkit;           /* ask polkit (authorize.h); set on the system bus or by --polkit */
        char *mmproj_path;     /* the vision projector (--mmproj, VisionModel=); NULL: no images */
        bool mmproj_from_cli;
        uint32_t max_image_bytes; /* an image larger than this is refused unread (MaxImageBytes=) */
        uint64_t image_timeout_usec; /* a piped image must arrive within this */
} ManagerConfig;

struct Manager {
        sd_event *event;
        sd_bus *bus;
        ManagerConfig config;
        int model_fd;
        char *model_file; /* base name */
        int mmproj_fd;    /* -1: no vision projector */
        ImageLoad *image_loads; /* images being read from callers (bus-explain.c) */
        uint32_t n_image_loads;

        Worker *worker; /* the one new requests go to */
        Worker *old_workers; /* draining after a model reload */
        uint64_t worker_generation;
        crashloop crashes;
        sd_event_source *restart_timer;

        const char *state; /* "starting", "ready", "failed", "stopping" */
        char state_reason[300];
        bool notified_ready;

        Caller *callers;
        Caller *rr_last; /* the caller served last, for round robin */
        Request *requests;
        Chat *chats;
        uint32_t n_queued, n_active, n_chats;
        uint64_t next_request_id, next_chat_id;

        bool stopping;
        sd_event_source *drain_timer;
        int whisper_fd;                 /* the speech model, -1: none (bus-dictation.c) */
        int weights_fd;                 /* sealed derived weights of weights_key's files, -1: none (weights.c) */
        WeightsKey weights_key;
        struct Dictation *dictations;   /* dictations and transcriptions */
        uint32_t n_dictations;
        Statistics stats;
        Authority *authority; /* polkit answers per caller (authorize.c) */
        struct Quotas *quotas; /* applications, limits, usage (quota-manager.c) */
};

/* manager.c */
int manager_new(const ManagerConfig *config, Manager **ret);
Manager *manager_free(Manager *m);
int manager_register_objects(Manager *m);
int manager_start(Manager *m);
int manager_open_model(Manager *m);
void manager_set_state(Manager *m, const char *state, const char *reason_fmt, ...) _printf_(3, 4);
uint64_t now_usec(void);

int caller_get(Manager *m, const char *name, Caller **ret);
int request_new(Manager *m, Caller *c, Chat *chat, sd_bus_message *call, char *prompt, size_t prompt_len,
                gen_params *params, int out_fd, Request **ret);
void request_fail(Request *q, const char *error_name, const char *fmt, ...) _printf_(3, 4);
void request_cancel(Request *q, const char *error_name, const char *fmt, ...) _printf_(3, 4);
void request_dequeue(Request *q); /* out of its caller's queue; q is REQUEST_QUEUED */
void manager_schedule(Manager *m);
void manager_stop(Manager *m);
void chat_free(Chat *c);
int manager_reload(Manager *m);
void request_finalize(Request *q);
void caller_maybe_free(Caller *c);
int submit_request(Manager *m, sd_bus_message *msg, Chat *chat, const char *prompt, gen_params *params, int fd,
                   sd_bus_error *error);
int submit_request_image(Manager *m, sd_bus_message *msg, Chat *chat, const char *prompt, gen_params *params, int fd,
                         uint8_t *image, size_t image_len, sd_bus_error *error);
int take_output_fd(int fd, sd_bus_error *error);
void worker_maybe_retire(Worker *w);
void manager_check_stopped(Manager *m);

/* worker-proc.c */
int worker_start(Manager *m);
void worker_send_generate(Worker *w, Request *q);
void worker_send_u64(Worker *w, uint32_t type, uint64_t v);
void worker_send_flush(Worker *w); /* after appending frames to w->conn.out */
void worker_free(Worker *w);
void worker_kill(Worker *w, const char *why);

/* weights.c */
void weights_key_of(Manager *m, WeightsKey *k);
int weights_fd_for(Manager *m, const WeightsKey *k); /* the shared memfd for these files, or -1 */
uint64_t weights_shared_memory(Manager *m);          /* bytes of memory it holds, 0: none */
int worker_take_weights(Worker *w, const uint8_t *payload, size_t len);
int worker_take_stats(Worker *w, const uint8_t *payload, size_t len);
void worker_stats_retire(Worker *w);
void decode_stats_total(Manager *m, wire_stats *ret);

/* request.c: results delivered by the worker */
void request_text(Request *q, const char *text, size_t len, uint32_t n_tokens);
void request_done(Request *q, const wire_done *d);

/* bus vtables */
extern const sd_bus_vtable service_vtable[];
extern const sd_bus_vtable text_vtable[];
extern const sd_bus_vtable chat_vtable[];
extern const sd_bus_vtable admin_vtable[]; /* bus-admin.c */
extern const sd_bus_vtable vision_vtable[];
/* bus-explain.c */
int method_chat_send_image(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int manager_open_mmproj(Manager *m);
void image_loads_free(Manager *m);
int chat_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                     sd_bus_error *error);
int chat_node_enumerator(sd_bus *bus, const char *prefix, void *userdata, char ***nodes, sd_bus_error *error);
int manager_statistics(Manager *m, sd_bus_message *reply);

static inline void manager_freep(Manager **m) {
        manager_free(*m);
}
