/* SPDX-License-Identifier: MIT */
/* sotto dictate: the partial text of the utterance in progress on one
 * terminal line (rewritten with \r), each final text on its own line.
 * sotto transcribe FILE: the final text of each utterance, one per line.
 * --json: one object per event, for programs. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client-lib/sotto-cli-speech.h"

sotto_speech_options speech_arg;
bool speech_once;

static volatile bool interrupted;

typedef struct out {
        bool json, tty, line_open;
        unsigned n_finals;
        char reason[32];
} out;

static void on_sigint(int sig) {
        interrupted = true;
}

static json_object *hypothesis_json(const sotto_hypothesis *h) {
        json_object *o = json_object_new_object(), *t = json_object_new_array();
        json_object_object_add(o, "type", json_object_new_string(h->final ? "final" : "partial"));
        json_object_object_add(o, "text", json_object_new_string(h->text));
        json_object_object_add(o, "start", json_object_new_double(h->start_usec / 1e6));
        json_object_object_add(o, "end", json_object_new_double(h->end_usec / 1e6));
        json_object_object_add(o, "compute-ms", json_object_new_double(h->compute_usec / 1e3));
        json_object_object_add(o, "latency-ms", json_object_new_double(h->latency_usec / 1e3));
        for (size_t i = 0; i < h->n_tokens; i++)
                json_object_array_add(t, json_object_new_int64(h->tokens[i]));
        json_object_object_add(o, "tokens", t);
        if (h->final && h->forced)
                json_object_object_add(o, "forced", json_object_new_boolean(1));
        return o;
}

static int on_text(sotto_dictation *d, const sotto_hypothesis *h, void *userdata) {
        out *o = userdata;
        if (h->final)
                o->n_finals++;
        if (o->json) {
                json_object *j = hypothesis_json(h);
                puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
                json_object_put(j);
        } else if (!h->final) {
                if (o->tty) {
                        /* The utterance so far, on the same line each time. */
                        printf("\r\033[K%s", h->text);
                        o->line_open = true;
                }
        } else {
                printf("%s%s\n", o->line_open ? "\r\033[K" : "", h->text);
                o->line_open = false;
        }
        fflush(stdout);
        return 0;
}

static void on_ended(sotto_dictation *d, const char *reason, const sd_bus_error *error, void *userdata) {
        out *o = userdata;
        snprintf(o->reason, sizeof o->reason, "%s", reason);
        if (o->line_open) {
                printf("\n");
                o->line_open = false;
        }
        if (o->json) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "type", json_object_new_string("ended"));
                json_object_object_add(j, "reason", json_object_new_string(reason));
                if (error) {
                        json_object_object_add(j, "error", json_object_new_string(error->name));
                        json_object_object_add(j, "message", json_object_new_string(error->message ?: ""));
                }
                puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
                json_object_put(j);
        }
        fflush(stdout);
}

static int report(int r, const sd_bus_error *e, bool json) {
        if (r >= 0)
                return 0;
        if (!json || !e || !e->name)
                fprintf(stderr, "sotto: %s\n", e && e->message ? e->message : strerror(-r));
        return cli_exit_code(e, r);
}

/* Runs d to its end; Ctrl-C stops listening (the last words still come),
 * a second one cancels. */
static int run(sotto_dictation *d, out *o) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r, stops = 0;
        for (;;) {
                r = sotto_dictation_wait(d, &interrupted, &error);
                if (r != -EINTR)
                        break;
                interrupted = false;
                if (stops++ == 0)
                        (void)sotto_dictation_stop(d);
                else
                        (void)sotto_dictation_cancel(d);
        }
        int code = report(r, &error, o->json);
        sd_bus_error_free(&error);
        if (code == 0 && stops > 1)
                code = 130;
        return code;
}

static void catch_sigint(void) {
        struct sigaction sa = { .sa_handler = on_sigint };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
}

int cmd_dictate(sotto *s, bool json, int argc, char **argv) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sotto_dictation *d = NULL;
        out o = { .json = json, .tty = isatty(STDOUT_FILENO) };
        int r;

        if (argc > 0) {
                fprintf(stderr, "sotto: dictate takes no arguments\n");
                return 2;
        }
        speech_arg.single_utterance = speech_once;
        catch_sigint();
        r = sotto_dictation_start(s, &speech_arg, on_text, on_ended, &o, &d, &error);
        if (r < 0) {
                int code = report(r, &error, json);
                sd_bus_error_free(&error);
                return code;
        }
        if (!json && o.tty)
                fprintf(stderr, "Listening; Ctrl-C to stop.\n");
        int code = run(d, &o);
        sotto_dictation_free(d);
        return code;
}

int cmd_transcribe(sotto *s, bool json, int argc, char **argv) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sotto_dictation *d = NULL;
        out o = { .json = json };
        int fd, r;

        if (argc != 1) {
                fprintf(stderr, "sotto: transcribe takes one FILE (- for standard input)\n");
                return 2;
        }
        if (strcmp(argv[0], "-") == 0)
                fd = STDIN_FILENO;
        else if ((fd = open(argv[0], O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
                fprintf(stderr, "sotto: cannot open %s: %m\n", argv[0]);
                return 1;
        }
        catch_sigint();
        r = sotto_transcribe_start(s, fd, &speech_arg, on_text, on_ended, &o, &d, &error);
        if (fd != STDIN_FILENO)
                close(fd);
        if (r < 0) {
                int code = report(r, &error, json);
                sd_bus_error_free(&error);
                return code;
        }
        int code = run(d, &o);
        sotto_dictation_free(d);
        return code;
}
