/* SPDX-License-Identifier: MIT */
/* sotto: the command line of sotto (see sotto(1)). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <editline/readline.h>

#include "client-lib/sotto-cli-admin.h"
#include "client-lib/screenshot.h"
#include "client-lib/sotto.h"
#include "client-lib/sotto-cli-speech.h"

/* Exit codes (documented in sotto(1)). */
enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,         /* other errors */
        EXIT_USAGE = 2,        /* bad command line */
        EXIT_NO_SERVICE = 3,   /* cannot reach the service */
        EXIT_BUSY = 4,         /* Busy, QuotaExceeded, ShuttingDown: try again later */
        EXIT_INVALID = 5,      /* InvalidInput, ContextFull */
        EXIT_UNAVAILABLE = 6,  /* ModelUnavailable, WorkerFailed */
        EXIT_DENIED = 7,       /* NotAuthorized, AuthorizationUnavailable, AccessDenied */
        EXIT_CANCELLED = 130,  /* Ctrl-C */
};

#define MAX_STDIN (1u << 20)

static struct {
        const char *address;
        int bus; /* 0 auto, 1 system, 2 session */
        bool json;
        bool all; /* usage --all */
        bool screen; /* explain --screen */
        const char *model;
        sotto_options opts;
} arg;

static int exit_code_for(const sd_bus_error *e, int r) {
        if (!e || !e->name)
                return r == -ECONNREFUSED || r == -ENOENT || r == -ENOTCONN ? EXIT_NO_SERVICE : EXIT_FAIL;
        static const struct {
                const char *name;
                int code;
        } map[] = {
                { SOTTO_ERROR_BUSY, EXIT_BUSY },
                { SOTTO_ERROR_QUOTA_EXCEEDED, EXIT_BUSY },
                { SOTTO_ERROR_SHUTTING_DOWN, EXIT_BUSY },
                { SOTTO_ERROR_INVALID_INPUT, EXIT_INVALID },
                { SOTTO_ERROR_CONTEXT_FULL, EXIT_INVALID },
                { SOTTO_ERROR_MODEL_UNAVAILABLE, EXIT_UNAVAILABLE },
                { SOTTO_ERROR_WORKER_FAILED, EXIT_UNAVAILABLE },
                { SOTTO_ERROR_NOT_AUTHORIZED, EXIT_DENIED },
                { SOTTO_ERROR_AUTHORIZATION_UNAVAILABLE, EXIT_DENIED },
                { "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", EXIT_DENIED },
                { SOTTO_ERROR_SOURCE_VANISHED, EXIT_FAIL },
                { SOTTO_ERROR_CAPTURE_FAILED, EXIT_FAIL },
                { SOTTO_ERROR_CANCELLED, EXIT_CANCELLED },
                { "org.freedesktop.DBus.Error.AccessDenied", EXIT_DENIED },
                { "org.freedesktop.DBus.Error.ServiceUnknown", EXIT_NO_SERVICE },
                { "org.freedesktop.DBus.Error.NameHasNoOwner", EXIT_NO_SERVICE },
                { "org.freedesktop.DBus.Error.NoReply", EXIT_NO_SERVICE },
                { "org.freedesktop.DBus.Error.Disconnected", EXIT_NO_SERVICE },
        };
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
                if (strcmp(e->name, map[i].name) == 0)
                        return map[i].code;
        return EXIT_FAIL;
}

static int report_error(const sd_bus_error *e, int r, const char *what) {
        if (arg.json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "error", json_object_new_string(e && e->name ? e->name : strerror(-r)));
                json_object_object_add(o, "message",
                                       json_object_new_string(e && e->message ? e->message : strerror(-r)));
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                json_object_put(o);
        }
        if (e && e->name)
                fprintf(stderr, "sotto: %s: %s (%s)\n", what, e->message ? e->message : "", e->name);
        else
                fprintf(stderr, "sotto: %s: %s\n", what, strerror(-r));
        return exit_code_for(e, r);
}

int cli_exit_code(const sd_bus_error *e, int r) {
        return exit_code_for(e, r);
}

static int connect_service(sotto **s) {
        int r;
        if (arg.address)
                r = sotto_connect_address(arg.address, s);
        else if (arg.bus == 1)
                r = sotto_connect_system(s);
        else if (arg.bus == 2)
                r = sotto_connect_session(s);
        else
                r = sotto_connect(s);
        if (r < 0)
                fprintf(stderr, "sotto: cannot connect to the bus: %s\n", strerror(-r));
        else
                /* Someone at a terminal may be asked for a password by
                 * polkit (through their agent); a script is refused instead. */
                (void)sd_bus_set_allow_interactive_authorization(sotto_get_bus(*s), isatty(STDIN_FILENO));
        return r;
}

/* --model names the model the caller expects; the service serves one. */
static int check_model(sotto *s) {
        sotto_status st;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        if (!arg.model)
                return 0;
        int r = sotto_get_status(s, &st, &e);
        if (r < 0) {
                r = report_error(&e, r, "cannot read the service status");
                sd_bus_error_free(&e);
                return -r;
        }
        if (strcmp(arg.model, st.model_name) != 0 && strcmp(arg.model, st.model_file) != 0) {
                fprintf(stderr, "sotto: the service serves '%s' (%s), not '%s'\n", st.model_name, st.model_file,
                        arg.model);
                return -EXIT_UNAVAILABLE;
        }
        return 0;
}

/* ---- one streamed request under an event loop, Ctrl-C cancels ---- */

typedef struct stream {
        sotto_request *req;
        bool done, interrupted, at_line_start;
        int code;
        char *text; /* collected for --json */
        size_t len;
        sotto_stats stats;
        sd_bus_error error;
} stream;

static int on_text(const char *t, size_t n, void *userdata) {
        stream *st = userdata;
        if (arg.json) {
                char *p = realloc(st->text, st->len + n + 1);
                if (!p)
                        return -ENOMEM;
                memcpy(p + st->len, t, n);
                st->len += n;
                p[st->len] = 0;
                st->text = p;
                return 0;
        }
        if (fwrite(t, 1, n, stdout) != n || fflush(stdout) != 0)
                return -EPIPE; /* our reader is gone: stop the service too */
        st->at_line_start = t[n - 1] == '\n';
        return 0;
}

static void on_done(sotto_request *q, const sd_bus_error *e, const sotto_stats *stats, void *userdata) {
        stream *st = userdata;
        st->done = true;
        if (e)
                sd_bus_error_copy(&st->error, e);
        else
                st->stats = *stats;
}

static int on_sigint(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        stream *st = userdata;
        if (st->interrupted)
                _exit(EXIT_CANCELLED); /* second Ctrl-C: do not wait */
        st->interrupted = true;
        sotto_request_cancel(st->req);
        return 0;
}

static json_object *stats_json(const sotto_stats *s) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "prompt-tokens", json_object_new_int64(s->prompt_tokens));
        json_object_object_add(o, "generated-tokens", json_object_new_int64(s->generated_tokens));
        json_object_object_add(o, "queue-usec", json_object_new_int64((int64_t)s->queue_usec));
        json_object_object_add(o, "time-to-first-token-usec", json_object_new_int64((int64_t)s->first_token_usec));
        json_object_object_add(o, "prompt-usec", json_object_new_int64((int64_t)s->prompt_usec));
        json_object_object_add(o, "total-usec", json_object_new_int64((int64_t)s->total_usec));
        json_object_object_add(o, "tokens-per-second", json_object_new_double(s->tokens_per_second));
        json_object_object_add(o, "stop-reason", json_object_new_string(s->stop_reason));
        return o;
}

/* Runs one Ask (chat NULL) or chat turn to its end; with image_fd >= 0 an
 * Explain. */
static int stream_one(sotto *s, sotto_chat *chat, int image_fd, const char *text) {
        sd_event *e = NULL;
        stream st = { .at_line_start = true, .error = SD_BUS_ERROR_NULL };
        int r, code = EXIT_OK;

        r = sd_event_default(&e);
        if (r >= 0)
                r = sotto_attach_event(s, e, 0);
        if (r < 0) {
                fprintf(stderr, "sotto: %s\n", strerror(-r));
                sd_event_unref(e);
                return EXIT_FAIL;
        }
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        sd_event_source *sig = NULL;
        (void)sd_event_add_signal(e, &sig, SIGINT, on_sigint, &st);

        if (image_fd >= 0)
                r = sotto_explain_async(s, image_fd, text, &arg.opts, on_text, on_done, &st, &st.req);
        else
                r = chat ? sotto_chat_send_async(chat, text, &arg.opts, on_text, on_done, &st, &st.req)
                         : sotto_ask_async(s, text, &arg.opts, on_text, on_done, &st, &st.req);
        if (r < 0) {
                code = report_error(NULL, r, "cannot send the request");
                goto out;
        }
        while (!st.done) {
                r = sd_event_run(e, UINT64_MAX);
                if (r < 0) {
                        code = report_error(NULL, r, "event loop");
                        goto out;
                }
        }
        if (!arg.json && !st.at_line_start && isatty(STDOUT_FILENO))
                putchar('\n');
        if (sd_bus_error_is_set(&st.error)) {
                code = st.interrupted ? EXIT_CANCELLED : report_error(&st.error, -EIO, "the request failed");
                if (st.interrupted)
                        fprintf(stderr, "sotto: cancelled\n");
        } else if (arg.json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "text", json_object_new_string_len(st.text ? st.text : "", (int)st.len));
                json_object_object_add(o, "statistics", stats_json(&st.stats));
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                json_object_put(o);
        } else if (st.interrupted)
                code = EXIT_CANCELLED;
out:
        sd_event_source_disable_unref(sig);
        sigprocmask(SIG_UNBLOCK, &ss, NULL);
        sotto_request_unref(st.req);
        sotto_detach_event(s);
        sd_event_unref(e);
        free(st.text);
        sd_bus_error_free(&st.error);
        fflush(stdout);
        return code;
}

/* ---- commands ---- */

static char *read_stdin(size_t *len) {
        size_t cap = 65536, n = 0;
        char *buf = malloc(cap + 1);
        if (!buf)
                return NULL;
        for (;;) {
                if (n == cap) {
                        if (cap >= MAX_STDIN) {
                                fprintf(stderr, "sotto: standard input is larger than %u bytes\n", MAX_STDIN);
                                free(buf);
                                return NULL;
                        }
                        cap *= 2;
                        char *p = realloc(buf, cap + 1);
                        if (!p) {
                                free(buf);
                                return NULL;
                        }
                        buf = p;
                }
                size_t k = fread(buf + n, 1, cap - n, stdin);
                n += k;
                if (k == 0)
                        break;
        }
        buf[n] = 0;
        *len = n;
        return buf;
}

static int cmd_ask(sotto *s, int argc, char **argv) {
        size_t len = 0;
        char *prompt = NULL;
        for (int i = 0; i < argc; i++) {
                size_t n = strlen(argv[i]);
                char *p = realloc(prompt, len + n + 2);
                if (!p)
                        return EXIT_FAIL;
                prompt = p;
                if (len)
                        prompt[len++] = ' ';
                memcpy(prompt + len, argv[i], n);
                len += n;
                prompt[len] = 0;
        }
        /* `git diff | sotto ask "write a commit message"`: the question,
         * then the piped text. */
        if (!isatty(STDIN_FILENO)) {
                size_t n;
                char *in = read_stdin(&n);
                if (!in) {
                        free(prompt);
                        return EXIT_FAIL;
                }
                char *p = realloc(prompt, len + n + 3);
                if (!p)
                        return EXIT_FAIL;
                prompt = p;
                if (len && n) {
                        memcpy(prompt + len, "\n\n", 2);
                        len += 2;
                }
                memcpy(prompt + len, in, n);
                len += n;
                prompt[len] = 0;
                free(in);
        }
        if (!prompt || !*prompt) {
                fprintf(stderr, "sotto: ask: no prompt (give it as arguments or on standard input)\n");
                free(prompt);
                return EXIT_USAGE;
        }
        int code = stream_one(s, NULL, -1, prompt);
        free(prompt);
        return code;
}

static char *join_args(int argc, char **argv) {
        size_t len = 0;
        for (int i = 0; i < argc; i++)
                len += strlen(argv[i]) + 1;
        char *s = calloc(1, len + 1);
        for (int i = 0; s && i < argc; i++) {
                if (i)
                        strcat(s, " ");
                strcat(s, argv[i]);
        }
        return s;
}

/* The image fd of `sotto explain`: FILE, - (standard input) or --screen.
 * Returns the fd, or -exit code after saying why. */
static int explain_image_fd(int *argc, char ***argv) {
        struct stat st;
        int fd;

        if (arg.screen) {
                char err[1400];
                const char *how = NULL;
                int r = screenshot_take(&fd, &how, err, sizeof err);
                if (r < 0) {
                        fprintf(stderr, "sotto: explain --screen: cannot take a screenshot: %s\n", err);
                        return -EXIT_FAIL;
                }
                if (isatty(STDERR_FILENO))
                        fprintf(stderr, "sotto: screenshot taken with %s\n", how);
                return fd;
        }
        if (*argc < 1) {
                fprintf(stderr, "sotto: explain: which image? (sotto explain FILE [QUESTION], - for standard input, "
                                "or --screen)\n");
                return -EXIT_USAGE;
        }
        const char *file = (*argv)[0];
        (*argc)--, (*argv)++;
        if (strcmp(file, "-") == 0) {
                if (fstat(STDIN_FILENO, &st) < 0) {
                        fprintf(stderr, "sotto: explain: standard input is closed\n");
                        return -EXIT_USAGE;
                }
                if (isatty(STDIN_FILENO)) {
                        fprintf(stderr, "sotto: explain: standard input is a terminal; pipe an image into it "
                                        "(grim - | sotto explain -)\n");
                        return -EXIT_USAGE;
                }
                return STDIN_FILENO;
        }
        fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                fprintf(stderr, "sotto: explain: cannot open %s: %s\n", file, strerror(errno));
                return -EXIT_USAGE;
        }
        return fd;
}

static int cmd_explain(sotto *s, int argc, char **argv, int image_fd) {
        /* An empty question asks for a description. */
        char *question = join_args(argc, argv);
        if (!question)
                return EXIT_FAIL;
        int code = stream_one(s, NULL, image_fd, question);
        free(question);
        return code;
}

static int cmd_chat(sotto *s, int argc, char **argv) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sotto_chat *chat = NULL;
        bool tty = isatty(STDIN_FILENO);
        int r, code = EXIT_OK, failed = EXIT_OK;

        r = sotto_chat_open(s, &arg.opts, &chat, &e);
        if (r < 0) {
                code = report_error(&e, r, "cannot open a chat");
                sd_bus_error_free(&e);
                return code;
        }
        if (tty) {
                fprintf(stderr, "Chat with the model; Ctrl-C cancels an answer, Ctrl-D ends.\n");
                using_history();
        }
        for (;;) {
                char *line = NULL;
                if (tty)
                        line = readline("> ");
                else {
                        size_t cap = 0;
                        ssize_t n = getline(&line, &cap, stdin);
                        if (n < 0) {
                                free(line);
                                line = NULL;
                        } else if (n > 0 && line[n - 1] == '\n')
                                line[n - 1] = 0;
                }
                if (!line)
                        break;
                if (!*line) {
                        free(line);
                        continue;
                }
                if (tty)
                        add_history(line);
                code = stream_one(s, chat, -1, line);
                free(line);
                /* A turn that was refused (too long, invalid) leaves the chat
                 * as it was: go on with the next one. */
                if (code == EXIT_INVALID) {
                        failed = code;
                        continue;
                }
                if (code != EXIT_OK && code != EXIT_CANCELLED)
                        break;
                if (!tty && code == EXIT_CANCELLED)
                        break;
                code = EXIT_OK;
        }
        sotto_chat_close(chat);
        return code != EXIT_OK ? code : failed;
}

static int cmd_status(sotto *s) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sotto_status st;
        int r = sotto_get_status(s, &st, &e);
        if (r < 0) {
                r = report_error(&e, r, "cannot reach the service");
                sd_bus_error_free(&e);
                return r;
        }
        if (arg.json) {
                json_object *o = json_object_new_object(), *caps = json_object_new_array();
                json_object_object_add(o, "state", json_object_new_string(st.state));
                json_object_object_add(o, "state-reason", json_object_new_string(st.state_reason));
                json_object_object_add(o, "version", json_object_new_string(st.version));
                json_object_object_add(o, "model-name", json_object_new_string(st.model_name));
                json_object_object_add(o, "model-architecture", json_object_new_string(st.model_architecture));
                json_object_object_add(o, "model-file", json_object_new_string(st.model_file));
                json_object_object_add(o, "context-size", json_object_new_int64(st.context_size));
                if (st.can_text)
                        json_object_array_add(caps, json_object_new_string("text"));
                if (st.can_image)
                        json_object_array_add(caps, json_object_new_string("image"));
                if (st.can_audio)
                        json_object_array_add(caps, json_object_new_string("audio"));
                json_object_object_add(o, "capabilities", caps);
                json_object_object_add(o, "queue-length", json_object_new_int64(st.queue_length));
                json_object_object_add(o, "active-requests", json_object_new_int64(st.active_requests));
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                json_object_put(o);
        } else {
                printf("State: %s%s%s\n", st.state, *st.state_reason ? " (" : "", st.state_reason);
                if (*st.state_reason)
                        printf("\b)\n");
                printf("Version: %s\nModel: %s (%s), file %s\nContext: %u tokens\nCapabilities:%s%s%s\n"
                       "Queue: %u waiting, %u running\n",
                       st.version, st.model_name, st.model_architecture, st.model_file, st.context_size,
                       st.can_text ? " text" : "", st.can_image ? " image" : "", st.can_audio ? " audio" : "",
                       st.queue_length, st.active_requests);
        }
        return strcmp(st.state, "ready") == 0 ? EXIT_OK : EXIT_UNAVAILABLE;
}

static void usage(FILE *f) {
        fprintf(f, "Usage: sotto [OPTIONS] COMMAND [ARGS]\n\n"
                   "Commands:\n"
                   "  ask PROMPT...        answer PROMPT (and standard input when it is not a terminal)\n"
                   "  chat                 interactive conversation\n"
                   "  explain FILE [QUESTION]  answer QUESTION about a PNG or JPEG image\n"
                   "                       (- reads it from standard input; no QUESTION: describe it)\n"
                   "  explain --screen [QUESTION]  the same about a screenshot of this session\n"
                   "  status               what the service runs and how busy it is\n"
                   "  usage [--all]        requests and tokens used by this application (--all: by all)\n"
                   "  quota [APP] [KEY=VALUE...]  this application's limits; set one at run time\n"
                   "  dictate              speech from the microphone as text (Ctrl-C stops)\n"
                   "  transcribe FILE      the text of a recording (WAV, or raw with --format; - for stdin)\n\n"
                   "Options:\n"
                   "  --temperature T      0 for greedy; default the service's (0.8)\n"
                   "  --seed N             random seed, for repeatable answers\n"
                   "  --max-tokens N       longest answer\n"
                   "  --raw                the prompt as it is, without the model's chat template\n"
                   "  --model NAME         fail unless the service runs this model\n"
                   "  --json               machine-readable output\n"
                   "  --once               dictate: stop after the first utterance\n"
                   "  --language CODE      speech: \"en\", ..., or \"auto\"\n"
                   "  --source NODE        dictate: a PipeWire source by node name\n"
                   "  --format F --rate N --channels N  transcribe raw s16le or f32le audio\n"
                   "  --system, --session  which bus (default: system if the service is there)\n"
                   "  --address ADDR       a specific bus\n"
                   "  -h, --help\n\n"
                   "Exit status: 0 ok, 1 failure, 2 usage, 3 no service, 4 busy or over quota,\n"
                   "5 invalid input, 6 model unavailable or worker failed, 7 not authorized,\n"
                   "130 cancelled.\n");
}

static int parse_number(const char *s, double min, double max, double *ret) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static const struct option cli_options[] = {
        { "temperature", required_argument, NULL, 'T' }, { "seed", required_argument, NULL, 'S' },
        { "max-tokens", required_argument, NULL, 'M' },  { "model", required_argument, NULL, 'm' },
        { "json", no_argument, NULL, 'j' },              { "system", no_argument, NULL, 'y' },
        { "session", no_argument, NULL, 'u' },           { "address", required_argument, NULL, 'A' },
        { "raw", no_argument, NULL, 'r' },               { "help", no_argument, NULL, 'h' },
        { "all", no_argument, NULL, 'a' },
        { "screen", no_argument, NULL, 'X' },
        { "once", no_argument, NULL, 'O' },              { "language", required_argument, NULL, 'L' },
        { "source", required_argument, NULL, 'E' },      { "format", required_argument, NULL, 'F' },
        { "rate", required_argument, NULL, 'R' },        { "channels", required_argument, NULL, 'C' },
        {},
};

/* Options up to the first non-option; returns optind, -EXIT_USAGE, or 0 after --help. */
static int parse_options(int argc, char **argv) {
        double v;
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "+h", cli_options, NULL)) >= 0) {
                switch (c) {
                case 'T':
                        if (parse_number(optarg, 0, 10, &v) < 0) {
                                fprintf(stderr, "sotto: --temperature takes a number from 0 to 10\n");
                                return -EXIT_USAGE;
                        }
                        arg.opts.temperature = v;
                        break;
                case 'S': {
                        char *end;
                        errno = 0;
                        unsigned long long seed = strtoull(optarg, &end, 10);
                        if (errno || end == optarg || *end || optarg[0] == '-') {
                                fprintf(stderr, "sotto: --seed takes a non-negative integer\n");
                                return -EXIT_USAGE;
                        }
                        arg.opts.seed = seed;
                        arg.opts.has_seed = true;
                        break;
                }
                case 'M':
                        if (parse_number(optarg, 1, 65536, &v) < 0 || v != floor(v)) {
                                fprintf(stderr, "sotto: --max-tokens takes an integer from 1 to 65536\n");
                                return -EXIT_USAGE;
                        }
                        arg.opts.max_tokens = (uint32_t)v;
                        break;
                case 'm': arg.model = optarg; break;
                case 'j': arg.json = true; break;
                case 'r': arg.opts.raw = true; break;
                case 'a': arg.all = true; break;
                case 'y': arg.bus = 1; break;
                case 'u': arg.bus = 2; break;
                case 'A': arg.address = optarg; break;
                case 'X': arg.screen = true; break;
                case 'O': speech_once = true; break;
                case 'L': speech_arg.language = optarg; break;
                case 'E': speech_arg.target = optarg; break;
                case 'F': speech_arg.format = optarg; break;
                case 'R':
                case 'C':
                        if (parse_number(optarg, 1, 768000, &v) < 0 || v != floor(v)) {
                                fprintf(stderr, "sotto: --%s takes a positive integer\n", c == 'R' ? "rate" : "channels");
                                return -EXIT_USAGE;
                        }
                        if (c == 'R')
                                speech_arg.rate = (uint32_t)v;
                        else
                                speech_arg.channels = (uint32_t)v;
                        break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return -EXIT_USAGE;
                }
        }
        return optind;
}

int main(int argc, char **argv) {
        int r;

        sotto_options_init(&arg.opts);
        sotto_speech_options_init(&speech_arg);
        r = parse_options(argc, argv);
        if (r <= 0)
                return -r;
        if (r >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        const char *cmd = argv[r];
        /* Options may also follow the command (sotto ask --seed 1 ...). */
        int sub_argc = argc - r;
        char **sub_argv = argv + r;
        r = parse_options(sub_argc, sub_argv);
        if (r <= 0)
                return -r;
        int rest_argc = sub_argc - r;
        char **rest_argv = sub_argv + r;

        if (strcmp(cmd, "ask") != 0 && strcmp(cmd, "chat") != 0 && strcmp(cmd, "status") != 0 &&
            strcmp(cmd, "usage") != 0 && strcmp(cmd, "quota") != 0 && strcmp(cmd, "explain") != 0 &&
            strcmp(cmd, "dictate") != 0 && strcmp(cmd, "transcribe") != 0) {
                fprintf(stderr, "sotto: unknown command '%s'\n", cmd);
                usage(stderr);
                return EXIT_USAGE;
        }
        if (arg.screen && strcmp(cmd, "explain") != 0) {
                fprintf(stderr, "sotto: --screen goes with explain\n");
                return EXIT_USAGE;
        }
        /* The image first: a screenshot shows the screen as it was when
         * asked, and a missing file needs no service. */
        int image_fd = -1;
        if (strcmp(cmd, "explain") == 0 && (image_fd = explain_image_fd(&rest_argc, &rest_argv)) < 0)
                return -image_fd;
        signal(SIGPIPE, SIG_IGN);
        sotto *s = NULL;
        if (connect_service(&s) < 0)
                return EXIT_NO_SERVICE;
        int code;
        if (strcmp(cmd, "status") == 0)
                code = cmd_status(s);
        else if (strcmp(cmd, "usage") == 0)
                code = cli_usage(s, arg.all, arg.json, report_error);
        else if (strcmp(cmd, "quota") == 0)
                code = cli_quota(s, rest_argc, rest_argv, arg.json, report_error);
        else if ((code = -check_model(s)) != 0)
                ;
        else if (strcmp(cmd, "dictate") == 0)
                code = cmd_dictate(s, arg.json, rest_argc, rest_argv);
        else if (strcmp(cmd, "transcribe") == 0)
                code = cmd_transcribe(s, arg.json, rest_argc, rest_argv);
        else if (strcmp(cmd, "ask") == 0)
                code = cmd_ask(s, rest_argc, rest_argv);
        else if (strcmp(cmd, "explain") == 0)
                code = cmd_explain(s, rest_argc, rest_argv, image_fd);
        else
                code = cmd_chat(s, rest_argc, rest_argv);
        sotto_unref(s);
        return code;
}
