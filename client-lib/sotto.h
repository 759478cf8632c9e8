/* SPDX-License-Identifier: MIT */
/* libsotto: the C client library of sotto, a local language model service
 * (org.sotto.Sotto1 on D-Bus).  See libsotto(3).
 *
 * Answers stream: each request hands the service the write end of a pipe,
 * the library reads the text as it comes and passes it to a callback, and
 * the request ends with statistics or a named error (sd_bus_error, names
 * org.sotto.Sotto1.Error.*).  Every call has a blocking form and an
 * asynchronous form driven by an sd-event loop.
 *
 * Functions return 0 (or a positive value) on success and a negative errno
 * on failure.  When the service itself refuses, the return is negative and
 * *error holds the service's error name and sentence. */
#ifndef SOTTO_H
#define SOTTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_BUS_NAME "org.sotto.Sotto1"

/* Error names of the service (sd_bus_error.name). */
#define SOTTO_ERROR_INVALID_INPUT "org.sotto.Sotto1.Error.InvalidInput"
#define SOTTO_ERROR_MODEL_UNAVAILABLE "org.sotto.Sotto1.Error.ModelUnavailable"
#define SOTTO_ERROR_BUSY "org.sotto.Sotto1.Error.Busy"
#define SOTTO_ERROR_CANCELLED "org.sotto.Sotto1.Error.Cancelled"
#define SOTTO_ERROR_WORKER_FAILED "org.sotto.Sotto1.Error.WorkerFailed"
#define SOTTO_ERROR_CONTEXT_FULL "org.sotto.Sotto1.Error.ContextFull"
#define SOTTO_ERROR_SHUTTING_DOWN "org.sotto.Sotto1.Error.ShuttingDown"
#define SOTTO_ERROR_QUOTA_EXCEEDED "org.sotto.Sotto1.Error.QuotaExceeded"
#define SOTTO_ERROR_NOT_AUTHORIZED "org.sotto.Sotto1.Error.NotAuthorized"
#define SOTTO_ERROR_AUTHORIZATION_UNAVAILABLE "org.sotto.Sotto1.Error.AuthorizationUnavailable"

typedef struct sotto sotto;                 /* a connection to the service */
typedef struct sotto_request sotto_request; /* one answer being streamed */
typedef struct sotto_chat sotto_chat;       /* a conversation with its own context */

/* Generation options; sotto_options_init() sets "use the service's default"
 * everywhere. */
typedef struct sotto_options {
        double temperature;    /* < 0: default; 0: greedy */
        int32_t top_k;         /* < 0: default; 0: off */
        double top_p;          /* < 0: default */
        double min_p;          /* < 0: default */
        double repeat_penalty; /* < 0: default */
        uint64_t seed;         /* used when has_seed */
        bool has_seed;
        uint32_t max_tokens;      /* 0: default */
        const char *const *stop;  /* NULL-terminated list, or NULL */
        bool raw;                 /* the prompt without the model's chat template */
} sotto_options;

void sotto_options_init(sotto_options *o);

typedef struct sotto_stats {
        uint32_t prompt_tokens;
        uint32_t generated_tokens;
        uint64_t queue_usec;
        uint64_t first_token_usec; /* from the call to the first token */
        uint64_t prompt_usec;
        uint64_t total_usec;
        double tokens_per_second;
        char stop_reason[32]; /* "end-of-text", "max-tokens", "stop-string", "context-full" */
} sotto_stats;

typedef struct sotto_status {
        char state[32];         /* "starting", "ready", "failed", "stopping" */
        char state_reason[300];
        char version[32];
        char model_name[256];
        char model_architecture[64];
        char model_file[256];
        uint32_t context_size;
        bool can_text, can_image, can_audio;
        uint32_t queue_length;
        uint32_t active_requests;
} sotto_status;

/* Text as it is generated, in whole UTF-8 characters.  Return a negative
 * value to cancel the request. */
typedef int (*sotto_text_fn)(const char *text, size_t len, void *userdata);
/* The end of an asynchronous request: error is NULL on success, stats are
 * valid then.  The request object stays valid until sotto_request_unref(). */
typedef void (*sotto_done_fn)(sotto_request *req, const sd_bus_error *error, const sotto_stats *stats,
                              void *userdata);

/* ---- connecting ---- */

/* The system bus when the service is there (running or activatable), else
 * the session bus. */
int sotto_connect(sotto **ret);
int sotto_connect_system(sotto **ret);
int sotto_connect_session(sotto **ret);
int sotto_connect_address(const char *address, sotto **ret);
/* Use a bus connection the caller already has (a reference is taken). */
int sotto_connect_bus(sd_bus *bus, sotto **ret);
sotto *sotto_ref(sotto *s);
sotto *sotto_unref(sotto *s);
sd_bus *sotto_get_bus(sotto *s);

/* ---- blocking ---- */

/* These run their own loop and must not be used while the connection is
 * attached to an sd-event loop (-EBUSY). */
int sotto_ask(sotto *s, const char *prompt, const sotto_options *o, sotto_text_fn on_text, void *userdata,
              sotto_stats *stats, sd_bus_error *error);
int sotto_chat_open(sotto *s, const sotto_options *o, sotto_chat **ret, sd_bus_error *error);
int sotto_chat_send(sotto_chat *c, const char *text, const sotto_options *o, sotto_text_fn on_text, void *userdata,
                    sotto_stats *stats, sd_bus_error *error);
int sotto_get_status(sotto *s, sotto_status *status, sd_bus_error *error);

/* An image (PNG or JPEG) and a question about it; the answer streams like
 * sotto_ask()'s.  image_fd is a regular file (read from its current offset)
 * or the read end of a pipe (read to EOF); the service gets a copy of the
 * fd, the caller keeps and closes its own.  question may be "" or NULL: the
 * model then describes the image.  Needs the "image" capability
 * (sotto_status.can_image), else ModelUnavailable. */
int sotto_explain(sotto *s, int image_fd, const char *question, const sotto_options *o, sotto_text_fn on_text,
                  void *userdata, sotto_stats *stats, sd_bus_error *error);
/* A chat turn with an image; the image stays in the chat's context. */
int sotto_chat_send_image(sotto_chat *c, int image_fd, const char *text, const sotto_options *o,
                          sotto_text_fn on_text, void *userdata, sotto_stats *stats, sd_bus_error *error);

/* Closes the chat on the service (it is also closed when the connection
 * goes) and frees it; returns NULL. */
sotto_chat *sotto_chat_close(sotto_chat *c);
const char *sotto_chat_get_path(sotto_chat *c);

/* ---- asynchronous (sd-event) ---- */

int sotto_attach_event(sotto *s, sd_event *event, int64_t priority);
int sotto_detach_event(sotto *s);

int sotto_ask_async(sotto *s, const char *prompt, const sotto_options *o, sotto_text_fn on_text,
                    sotto_done_fn on_done, void *userdata, sotto_request **ret);
int sotto_chat_send_async(sotto_chat *c, const char *text, const sotto_options *o, sotto_text_fn on_text,
                          sotto_done_fn on_done, void *userdata, sotto_request **ret);
int sotto_explain_async(sotto *s, int image_fd, const char *question, const sotto_options *o,
                        sotto_text_fn on_text, sotto_done_fn on_done, void *userdata, sotto_request **ret);
int sotto_chat_send_image_async(sotto_chat *c, int image_fd, const char *text, const sotto_options *o,
                                sotto_text_fn on_text, sotto_done_fn on_done, void *userdata, sotto_request **ret);
/* Cancels: the service stops within one decoding step, and on_done gets
 * org.sotto.Sotto1.Error.Cancelled (unless the answer was complete). */
void sotto_request_cancel(sotto_request *r);
sotto_request *sotto_request_unref(sotto_request *r);

/* ---- speech (libsotto-speech.c): dictation and transcription ----
 *
 * A dictation records from the caller's own PipeWire (the library opens the
 * connection: $PIPEWIRE_RUNTIME_DIR or $XDG_RUNTIME_DIR/pipewire-0, or a
 * sandboxed app passes the fd it got from the portal) and reports text as
 * the user speaks: partial hypotheses of the utterance in progress, then its
 * final text.  A transcription does the same for a recording read from an
 * fd (WAV, or raw PCM with its format given), finals only.  Callbacks run
 * from whatever processes the bus connection: sotto_dictation_wait(), or the
 * sd-event loop the connection is attached to. */

#define SOTTO_ERROR_SOURCE_VANISHED "org.sotto.Sotto1.Error.SourceVanished"
#define SOTTO_ERROR_CAPTURE_FAILED "org.sotto.Sotto1.Error.CaptureFailed"

typedef struct sotto_dictation sotto_dictation;

typedef struct sotto_speech_options {
        const char *language;         /* "en", ..., "auto"; NULL: the service's default ("en") */
        const char *target;           /* dictation: a PipeWire node name; NULL: the default source */
        bool no_partials;             /* dictation: finals only */
        bool single_utterance;        /* dictation: end after the first final */
        uint32_t partial_interval_ms; /* 0: default (500) */
        uint32_t max_seconds;         /* 0: default */
        const char *format;           /* transcription: "wav" (default), "s16le", "f32le" */
        uint32_t rate, channels;      /* transcription of raw PCM */
} sotto_speech_options;

void sotto_speech_options_init(sotto_speech_options *o);

typedef struct sotto_hypothesis {
        bool final;
        const char *text;            /* UTF-8 */
        uint64_t start_usec, end_usec; /* the utterance, from the start of the audio */
        uint64_t compute_usec;       /* recognition time */
        uint64_t latency_usec;       /* from the audio that ended it (final) or the newest audio (partial)
                                      * reaching the recognizer, to the text */
        const uint32_t *tokens;      /* the model's token ids */
        size_t n_tokens;
        bool forced;                 /* final: cut at the longest utterance, not at a pause */
} sotto_hypothesis;

/* Return a negative value to cancel. */
typedef int (*sotto_hypothesis_fn)(sotto_dictation *d, const sotto_hypothesis *h, void *userdata);
/* reason: "finished", "stopped", "cancelled", "limit", "source-vanished",
 * "disconnected", "capture-failed", "failed"; error NULL unless it failed. */
typedef void (*sotto_ended_fn)(sotto_dictation *d, const char *reason, const sd_bus_error *error, void *userdata);

int sotto_dictation_start(sotto *s, const sotto_speech_options *o, sotto_hypothesis_fn on_text,
                          sotto_ended_fn on_ended, void *userdata, sotto_dictation **ret, sd_bus_error *error);
/* The same with a PipeWire connection the caller opened (the portal's
 * OpenPipeWireRemote); the fd is not taken. */
int sotto_dictation_start_fd(sotto *s, int pipewire_fd, const sotto_speech_options *o, sotto_hypothesis_fn on_text,
                             sotto_ended_fn on_ended, void *userdata, sotto_dictation **ret, sd_bus_error *error);
/* A recording on fd (a file, pipe or socket; not taken). */
int sotto_transcribe_start(sotto *s, int fd, const sotto_speech_options *o, sotto_hypothesis_fn on_text,
                           sotto_ended_fn on_ended, void *userdata, sotto_dictation **ret, sd_bus_error *error);
/* Stop listening; the speech so far still gets its final text. */
int sotto_dictation_stop(sotto_dictation *d);
/* End at once, nothing more is reported but the end. */
int sotto_dictation_cancel(sotto_dictation *d);
/* Processes the connection until the dictation has ended (blocking use):
 * 0, or negative with *error set when it ended with an error.  Returns
 * early with -EINTR when *interrupt becomes true (from a signal handler);
 * call again after sotto_dictation_stop(). */
int sotto_dictation_wait(sotto_dictation *d, volatile bool *interrupt, sd_bus_error *error);
bool sotto_dictation_is_ended(sotto_dictation *d);
const char *sotto_dictation_get_path(sotto_dictation *d);
sotto_dictation *sotto_dictation_free(sotto_dictation *d);

#ifdef __cplusplus
}
#endif

#endif
