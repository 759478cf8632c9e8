/* SPDX-License-Identifier: MIT */
/* A test client for the service tests: calls org.sotto.Sotto1 the way a
 * careless or hostile program would, and times the answers.
 *
 *   sotto-test-client ADDR introspect-chat     XML of a chat object (as its owner)
 *   sotto-test-client ADDR introspect-dictation  XML of a transcription object (as its owner)
 *   sotto-test-client ADDR hostile             the hostile-call battery
 *   sotto-test-client ADDR flood N             N pending Ask calls from one connection
 *   sotto-test-client ADDR chat-turns          a chat keeps its context between turns
 *   sotto-test-client ADDR hold-chat           opens a chat, prints its path, sleeps
 *   sotto-test-client ADDR chat-cancel A B C N  turn A, turn B cancelled after its
 *                                              first bytes, turn C; prints ContextUsed
 *                                              after each and C's answer
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#define DEST "org.sotto.Sotto1"
#define PATH "/org/sotto/Sotto1"
#define TEXT "org.sotto.Sotto1.Text"

static const char *address;
static int failures;

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static sd_bus *connect_bus(void) {
        sd_bus *b = NULL;
        if (sd_bus_new(&b) < 0 || sd_bus_set_address(b, address) < 0 || sd_bus_set_bus_client(b, 1) < 0 ||
            sd_bus_negotiate_fds(b, 1) < 0 || sd_bus_start(b) < 0) {
                fprintf(stderr, "cannot connect to %s\n", address);
                exit(2);
        }
        return b;
}

/* ---- hostile calls ---- */

typedef int (*build_fn)(sd_bus_message *m, void *userdata);

static double latencies[256];
static int n_latencies;

/* Sends one call built by fn; expects an error whose name starts with
 * want (any named error when want is NULL). */
static void expect_error(sd_bus *bus, const char *what, const char *member, build_fn fn, void *userdata,
                         const char *want) {
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, TEXT, member);
        if (r >= 0)
                r = fn(m, userdata);
        if (r < 0) {
                printf("%-40s could not even be built by sd-bus (%s): the bus would refuse it too\n", what,
                       strerror(-r));
                sd_bus_message_unref(m);
                return;
        }
        uint64_t t0 = now_usec();
        r = sd_bus_call(bus, m, 10 * 1000000ull, &e, &reply);
        double ms = (now_usec() - t0) / 1000.0;
        latencies[n_latencies++] = ms;
        bool ok = r < 0 && e.name && (!want || strncmp(e.name, want, strlen(want)) == 0);
        printf("%-40s %-8s %7.2f ms  %s: %s\n", what, ok ? "ok" : "WRONG", ms, e.name ? e.name : strerror(-r),
               e.message ? e.message : "");
        if (!ok)
                failures++;
        sd_bus_error_free(&e);
        sd_bus_message_unref(m);
        sd_bus_message_unref(reply);
}

typedef struct ask_args {
        const char *prompt;
        const char *opt_key;
        char opt_type;
        const void *opt_value;
        int fd;
        int depth; /* nested variants around the option value */
} ask_args;

static int build_ask(sd_bus_message *m, void *userdata) {
        ask_args *a = userdata;
        int r = sd_bus_message_append(m, "s", a->prompt);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (a->opt_key) {
                char sig[2] = { a->opt_type, 0 };
                if ((r = sd_bus_message_open_container(m, 'e', "sv")) < 0 ||
                    (r = sd_bus_message_append(m, "s", a->opt_key)) < 0)
                        return r;
                for (int i = 0; i < a->depth; i++)
                        if ((r = sd_bus_message_open_container(m, 'v', "v")) < 0)
                                return r;
                if ((r = sd_bus_message_open_container(m, 'v', sig)) < 0 ||
                    (r = sd_bus_message_append_basic(m, a->opt_type, a->opt_value)) < 0 ||
                    (r = sd_bus_message_close_container(m)) < 0)
                        return r;
                for (int i = 0; i < a->depth; i++)
                        if ((r = sd_bus_message_close_container(m)) < 0)
                                return r;
                if ((r = sd_bus_message_close_container(m)) < 0)
                        return r;
        }
        if ((r = sd_bus_message_close_container(m)) < 0)
                return r;
        return sd_bus_message_append(m, "h", a->fd);
}

static int build_wrong_signature(sd_bus_message *m, void *userdata) {
        return sd_bus_message_append(m, "su", "hello", 42u);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static int cmd_hostile(void) {
        sd_bus *bus = connect_bus();
        int p[2];
        if (pipe(p) < 0)
                return 2;
        int wr = p[1], rd = p[0];
        const char *ok_prompt = "Once upon a time";
        int32_t neg = -1;
        uint32_t huge = 1000000000u;
        double nan_v = NAN, inf_v = INFINITY, big_t = 1e300;
        const char *str_v = "hot";

        expect_error(bus, "wrong signature (su)", "Ask", build_wrong_signature, NULL,
                     "org.freedesktop.DBus.Error.InvalidArgs");
        expect_error(bus, "unknown option key", "Ask",
                     build_ask, &(ask_args){ ok_prompt, "temprature", 'd', &(double){ 0.5 }, wr }, "org.sotto");
        expect_error(bus, "max-tokens -1", "Ask", build_ask, &(ask_args){ ok_prompt, "max-tokens", 'i', &neg, wr },
                     "org.sotto.Sotto1.Error.InvalidInput");
        expect_error(bus, "max-tokens 1e9", "Ask", build_ask, &(ask_args){ ok_prompt, "max-tokens", 'u', &huge, wr },
                     "org.sotto.Sotto1.Error.InvalidInput");
        expect_error(bus, "temperature NaN", "Ask", build_ask, &(ask_args){ ok_prompt, "temperature", 'd', &nan_v, wr },
                     "org.sotto.Sotto1.Error.InvalidInput");
        expect_error(bus, "temperature inf", "Ask", build_ask, &(ask_args){ ok_prompt, "temperature", 'd', &inf_v, wr },
                     "org.sotto.Sotto1.Error.InvalidInput");
        expect_error(bus, "temperature 1e300", "Ask", build_ask,
                     &(ask_args){ ok_prompt, "temperature", 'd', &big_t, wr }, "org.sotto.Sotto1.Error.InvalidInput");
        expect_error(bus, "temperature as a string", "Ask", build_ask,
                     &(ask_args){ ok_prompt, "temperature", 's', str_v, wr }, "org.sotto.Sotto1.Error.InvalidInput");
        expect_error(bus, "variant nested 30 deep", "Ask", build_ask,
                     &(ask_args){ ok_prompt, "temperature", 'd', &(double){ 0.5 }, wr, 30 },
                     "org.sotto.Sotto1.Error.InvalidInput");
        {
                /* Beyond the D-Bus nesting limit: the bus itself drops the
                 * sender, so this one goes on its own connection. */
                sd_bus *b2 = connect_bus();
                expect_error(b2, "variant nested 70 deep (own connection)", "Ask", build_ask,
                             &(ask_args){ ok_prompt, "temperature", 'd', &(double){ 0.5 }, wr, 70 }, NULL);
                sd_bus_unref(b2);
        }
        expect_error(bus, "empty prompt", "Ask", build_ask, &(ask_args){ "", NULL, 0, NULL, wr },
                     "org.sotto.Sotto1.Error.InvalidInput");

        /* Where the write end of a pipe is expected. */
        expect_error(bus, "read end of a pipe", "Ask", build_ask, &(ask_args){ ok_prompt, NULL, 0, NULL, rd },
                     "org.sotto.Sotto1.Error.InvalidInput");
        int zero = open("/dev/zero", O_RDWR | O_CLOEXEC);
        expect_error(bus, "/dev/zero", "Ask", build_ask, &(ask_args){ ok_prompt, NULL, 0, NULL, zero },
                     "org.sotto.Sotto1.Error.InvalidInput");
        int sp[2];
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp);
        expect_error(bus, "a socket", "Ask", build_ask, &(ask_args){ ok_prompt, NULL, 0, NULL, sp[0] },
                     "org.sotto.Sotto1.Error.InvalidInput");
        char fifo[] = "/tmp/sotto-test-fifo-XXXXXX";
        int tmpfd = mkstemp(fifo);
        close(tmpfd);
        unlink(fifo);
        mkfifo(fifo, 0600);
        int ff = open(fifo, O_RDWR | O_CLOEXEC);
        unlink(fifo);
        expect_error(bus, "a FIFO opened read-write", "Ask", build_ask, &(ask_args){ ok_prompt, NULL, 0, NULL, ff },
                     "org.sotto.Sotto1.Error.InvalidInput");
        char tmpl[] = "/tmp/sotto-test-file-XXXXXX";
        int file = mkstemp(tmpl);
        unlink(tmpl);
        expect_error(bus, "a regular file", "Ask", build_ask, &(ask_args){ ok_prompt, NULL, 0, NULL, file },
                     "org.sotto.Sotto1.Error.InvalidInput");
        /* A closed fd cannot travel over D-Bus: sd-bus refuses it. */
        expect_error(bus, "a closed fd", "Ask", build_ask, &(ask_args){ ok_prompt, NULL, 0, NULL, 999 }, NULL);

        /* Big prompts: 4 MiB is ours to refuse; 64 MiB is above the bus's
         * own message limit (32 MiB), where the bus answers or disconnects. */
        char *big = malloc((64u << 20) + 1);
        memset(big, 'a', 64u << 20);
        big[4u << 20] = 0;
        expect_error(bus, "a 4 MiB prompt", "Ask", build_ask, &(ask_args){ big, NULL, 0, NULL, wr },
                     "org.sotto.Sotto1.Error.InvalidInput");
        big[4u << 20] = 'a';
        big[64u << 20] = 0;
        {
                sd_bus *b2 = connect_bus();
                sd_bus_message *m = NULL;
                sd_bus_error e = SD_BUS_ERROR_NULL;
                sd_bus_message_new_method_call(b2, &m, DEST, PATH, TEXT, "Ask");
                build_ask(m, &(ask_args){ big, NULL, 0, NULL, wr });
                uint64_t t0 = now_usec();
                int r = sd_bus_call(b2, m, 10 * 1000000ull, &e, NULL);
                double ms = (now_usec() - t0) / 1000.0;
                latencies[n_latencies++] = ms;
                bool ok = r < 0 && ms < 5000;
                printf("%-40s %-8s %7.2f ms  %s: %s\n", "a 64 MiB prompt", ok ? "ok" : "WRONG", ms,
                       e.name ? e.name : strerror(-r), e.message ? e.message : "(the bus dropped the message)");
                if (!ok)
                        failures++;
                sd_bus_error_free(&e);
                sd_bus_message_unref(m);
                sd_bus_unref(b2);
        }
        free(big);

        qsort(latencies, n_latencies, sizeof(double), cmp_double);
        double p99 = latencies[(int)ceil(0.99 * n_latencies) - 1];
        printf("hostile calls: %d, median %.2f ms, p99 %.2f ms, max %.2f ms\n", n_latencies,
               latencies[n_latencies / 2], p99, latencies[n_latencies - 1]);
        /* The 64 MiB one is mostly the time to copy 64 MiB through the bus. */
        if (latencies[n_latencies / 2] > 50) {
                printf("WRONG: median above 50 ms\n");
                failures++;
        }
        sd_bus_flush_close_unref(bus);
        return failures ? 1 : 0;
}

/* ---- 10 000 pending calls from one client ---- */

typedef struct flood_state {
        int replies, busy, named, other, ok;
        char other_name[256];
        double lat[20000];
        uint64_t sent[20000];
} flood_state;

typedef struct flood_slot {
        flood_state *st;
        int i;
} flood_slot;

static int on_flood_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        flood_slot *fs = userdata;
        flood_state *st = fs->st;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        st->lat[st->replies++] = (now_usec() - st->sent[fs->i]) / 1000.0;
        if (!e)
                st->ok++;
        else if (strcmp(e->name, "org.sotto.Sotto1.Error.Busy") == 0)
                st->busy++, st->named++;
        else if (strncmp(e->name, "org.", 4) == 0) {
                st->named++;
                snprintf(st->other_name, sizeof st->other_name, "%s (%s)", e->name, e->message ? e->message : "");
        }
        else
                st->other++;
        return 0;
}

static int cmd_flood(int n, int32_t max_tokens, bool burst) {
        sd_bus *bus = connect_bus();
        static flood_state st;
        flood_slot *slots = calloc((size_t)n, sizeof *slots);
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0 || n > 20000)
                return 2;
        /* Keep reading, so accepted requests can finish. */
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        for (int i = 0; i < n; i++) {
                sd_bus_message *m = NULL;
                slots[i] = (flood_slot){ &st, i };
                sd_bus_message_new_method_call(bus, &m, DEST, PATH, TEXT, "Ask");
                build_ask(m, &(ask_args){ "Once upon a time", "max-tokens", 'i', &max_tokens, p[1] });
                st.sent[i] = now_usec();
                if (sd_bus_call_async(bus, NULL, m, on_flood_reply, &slots[i], 60 * 1000000ull) < 0) {
                        fprintf(stderr, "cannot queue call %d\n", i);
                        return 2;
                }
                sd_bus_message_unref(m);
        }
        close(p[1]);
        uint64_t t0 = now_usec();
        while (st.replies < n && now_usec() - t0 < 60 * 1000000ull) {
                char buf[4096];
                while (read(p[0], buf, sizeof buf) > 0)
                        ;
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        break;
                if (r == 0)
                        sd_bus_wait(bus, 10000);
        }
        qsort(st.lat, (size_t)st.replies, sizeof(double), cmp_double);
        double p99 = st.replies ? st.lat[(int)ceil(0.99 * st.replies) - 1] : -1;
        printf("flood: %d calls, %d replies: %d answered, %d Busy, %d other named errors, %d unnamed; "
               "p50 %.1f ms, p99 %.1f ms\n",
               n, st.replies, st.ok, st.busy, st.named - st.busy, st.other, st.replies ? st.lat[st.replies / 2] : -1,
               p99);
        if (st.other_name[0])
                printf("flood: other errors are like %s\n", st.other_name);
        sd_bus_flush_close_unref(bus);
        if (burst)
                return st.ok == n ? 0 : 1;
        return st.replies == n && st.other == 0 && st.busy > 0 ? 0 : 1;
}

/* ---- chats ---- */

static int open_chat(sd_bus *bus, char **path) {
        sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *p;
        int r = sd_bus_call_method(bus, DEST, PATH, TEXT, "OpenChat", &e, &reply, "a{sv}", 0);
        if (r < 0) {
                fprintf(stderr, "OpenChat: %s\n", e.message ? e.message : strerror(-r));
                return r;
        }
        sd_bus_message_read(reply, "o", &p);
        *path = strdup(p);
        sd_bus_message_unref(reply);
        return 0;
}

static int cmd_introspect_chat(void) {
        sd_bus *bus = connect_bus();
        sd_bus_message *reply = NULL;
        char *path;
        const char *xml;
        if (open_chat(bus, &path) < 0)
                return 1;
        int r = sd_bus_call_method(bus, DEST, path, "org.freedesktop.DBus.Introspectable", "Introspect", NULL,
                                   &reply, "");
        if (r < 0 || sd_bus_message_read(reply, "s", &xml) < 0)
                return 1;
        fputs(xml, stdout);
        /* Someone else must not see it. */
        sd_bus *other = connect_bus();
        sd_bus_error e = SD_BUS_ERROR_NULL;
        r = sd_bus_call_method(other, DEST, path, "org.sotto.Sotto1.Chat", "Close", &e, NULL, "");
        if (r >= 0 || !sd_bus_error_has_name(&e, "org.freedesktop.DBus.Error.UnknownObject")) {
                fprintf(stderr, "another connection could use the chat: %s\n", e.name ? e.name : "no error");
                return 1;
        }
        return 0;
}

/* A transcription held open (its input pipe stays open), introspected as
 * its owner; others must not see it; then cancelled. */
static int cmd_introspect_dictation(void) {
        sd_bus *bus = connect_bus();
        sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *path, *xml;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return 1;
        int r = sd_bus_call_method(bus, DEST, PATH, "org.sotto.Sotto1.Speech", "Transcribe", &e, &reply, "ha{sv}",
                                   p[0], 0);
        if (r < 0 || sd_bus_message_read(reply, "o", &path) < 0) {
                fprintf(stderr, "Transcribe: %s\n", e.message ? e.message : strerror(-r));
                return 1;
        }
        char *own = strdup(path);
        reply = sd_bus_message_unref(reply);
        r = sd_bus_call_method(bus, DEST, own, "org.freedesktop.DBus.Introspectable", "Introspect", NULL, &reply, "");
        if (r < 0 || sd_bus_message_read(reply, "s", &xml) < 0)
                return 1;
        fputs(xml, stdout);
        sd_bus *other = connect_bus();
        r = sd_bus_call_method(other, DEST, own, "org.sotto.Sotto1.Dictation", "Cancel", &e, NULL, "");
        if (r >= 0 || !sd_bus_error_has_name(&e, "org.freedesktop.DBus.Error.UnknownObject")) {
                fprintf(stderr, "another connection could use the transcription: %s\n", e.name ? e.name : "no error");
                return 1;
        }
        r = sd_bus_call_method(bus, DEST, own, "org.sotto.Sotto1.Dictation", "Cancel", NULL, NULL, "");
        close(p[1]);
        return r < 0;
}

/* One turn in the chat; the answer is small enough for the pipe's buffer,
 * so a blocking call is fine here. */
static int chat_turn(sd_bus *bus, const char *path, const char *text, uint32_t max_tokens) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        int r = sd_bus_call_method(bus, DEST, path, "org.sotto.Sotto1.Chat", "Send", &e, NULL, "sa{sv}h", text, 1,
                                   "max-tokens", "u", max_tokens, p[1]);
        close(p[1]);
        close(p[0]);
        if (r < 0)
                fprintf(stderr, "Send: %s\n", e.message ? e.message : strerror(-r));
        sd_bus_error_free(&e);
        return r;
}

static int cmd_hold_chat(const char *turn, uint32_t max_tokens) {
        sd_bus *bus = connect_bus();
        char *path;
        if (open_chat(bus, &path) < 0)
                return 1;
        (void)sd_bus_set_method_call_timeout(bus, 600 * 1000000ull);
        if (turn && chat_turn(bus, path, turn, max_tokens) < 0)
                return 1;
        printf("%s\n", path);
        fflush(stdout);
        for (;;)
                pause();
}

static int context_used(sd_bus *bus, const char *path, uint32_t *ret) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_get_property_trivial(bus, DEST, path, "org.sotto.Sotto1.Chat", "ContextUsed", &e, 'u', ret);
        if (r < 0)
                fprintf(stderr, "ContextUsed: %s\n", e.message ? e.message : strerror(-r));
        sd_bus_error_free(&e);
        return r;
}

/* Chat.Send, greedy, without waiting for the reply; *out is the read end
 * of the answer's pipe. */
static int chat_send_async(sd_bus *bus, const char *path, const char *text, uint32_t max_tokens,
                           sd_bus_message_handler_t on_reply, void *userdata, int *out) {
        sd_bus_message *m = NULL;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        int r = sd_bus_message_new_method_call(bus, &m, DEST, path, "org.sotto.Sotto1.Chat", "Send");
        if (r >= 0)
                r = sd_bus_message_append(m, "sa{sv}h", text, 2, "max-tokens", "u", max_tokens, "temperature", "d",
                                          0.0, p[1]);
        if (r >= 0)
                r = sd_bus_call_async(bus, NULL, m, on_reply, userdata, 600 * 1000000ull);
        if (r >= 0)
                r = sd_bus_flush(bus);
        sd_bus_message_unref(m);
        close(p[1]);
        if (r < 0) {
                close(p[0]);
                return r;
        }
        *out = p[0];
        return 0;
}

struct turn_reply {
        bool done;
        char error[256];
};

static int on_turn_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        struct turn_reply *t = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        snprintf(t->error, sizeof t->error, "%s", e ? e->name : "ok");
        t->done = true;
        return 0;
}

static int wait_turn(sd_bus *bus, struct turn_reply *t) {
        while (!t->done) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r == 0 && (r = sd_bus_wait(bus, UINT64_MAX)) < 0)
                        return r;
        }
        return 0;
}

/* A chat whose second turn is cancelled (its output pipe closed) once the
 * answer has begun, so after its whole prompt was evaluated: with a long
 * enough prompt, a sliding-window model can no longer take the chat back
 * to where the turn began, and the chat starts over (ContextUsed 0). */
static int cmd_chat_cancel(const char *a, const char *b, const char *c, uint32_t max_tokens) {
        sd_bus *bus = connect_bus();
        struct turn_reply t = {};
        char *path, buf[4096];
        uint32_t used;
        int out;
        (void)sd_bus_set_method_call_timeout(bus, 600 * 1000000ull);
        if (open_chat(bus, &path) < 0 || chat_turn(bus, path, a, max_tokens) < 0 || context_used(bus, path, &used) < 0)
                return 1;
        printf("used-after-a %u\n", used);
        if (chat_send_async(bus, path, b, 4000, on_turn_reply, &t, &out) < 0)
                return 1;
        ssize_t n;
        while ((n = read(out, buf, sizeof buf)) < 0 && errno == EINTR)
                ;
        close(out); /* that is how a caller cancels */
        if (n <= 0 || wait_turn(bus, &t) < 0)
                return 1;
        printf("turn-b %s\n", t.error);
        if (context_used(bus, path, &used) < 0)
                return 1;
        printf("used-after-b %u\n", used);
        t = (struct turn_reply){};
        if (chat_send_async(bus, path, c, max_tokens, on_turn_reply, &t, &out) < 0 || wait_turn(bus, &t) < 0)
                return 1;
        size_t len = 0;
        while (len < sizeof buf - 1 && (n = read(out, buf + len, sizeof buf - 1 - len)) > 0)
                len += (size_t)n;
        close(out);
        buf[len] = 0;
        for (char *q = buf; *q; q++)
                if (*q == '\n')
                        *q = ' ';
        printf("turn-c %s\nanswer-c %s\n", t.error, buf);
        if (context_used(bus, path, &used) < 0)
                return 1;
        printf("used-after-c %u\n", used);
        return 0;
}

/* Receives sd_notify() datagrams on PATH and prints them, one per line. */
static int cmd_notify_listen(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        unlink(path);
        mode_t old = umask(0); /* the daemon writes here after switching user */
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                return 2;
        umask(old);
        for (;;) {
                char buf[4096];
                ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
                if (n < 0)
                        return 1;
                buf[n] = 0;
                for (char *p = buf; *p; p++)
                        if (*p == '\n')
                                *p = ' ';
                printf("%s\n", buf);
                fflush(stdout);
        }
}

/* A chat that answered one turn, then (after a line on stdin) tries another:
 * prints "ok" or the error name of the second turn. */
static int cmd_chat_probe(void) {
        sd_bus *bus = connect_bus();
        char *path, line[64];
        if (open_chat(bus, &path) < 0 || chat_turn(bus, path, "first turn", 4) < 0)
                return 1;
        printf("ready\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin))
                return 1;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return 1;
        int r = sd_bus_call_method(bus, DEST, path, "org.sotto.Sotto1.Chat", "Send", &e, NULL, "sa{sv}h", "again", 0,
                                   p[1]);
        close(p[1]);
        printf("%s %s\n", r >= 0 ? "ok" : e.name, r >= 0 ? "" : e.message);
        return 0;
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: %s ADDRESS COMMAND [ARGS]\n", argv[0]);
                return 2;
        }
        address = argv[1];
        const char *cmd = argv[2];
        if (strcmp(cmd, "hostile") == 0)
                return cmd_hostile();
        if (strcmp(cmd, "flood") == 0)
                return cmd_flood(argc > 3 ? atoi(argv[3]) : 10000, 4, false);
        if (strcmp(cmd, "burst") == 0 && argc > 4)
                return cmd_flood(atoi(argv[3]), atoi(argv[4]), true);
        if (strcmp(cmd, "introspect-chat") == 0)
                return cmd_introspect_chat();
        if (strcmp(cmd, "introspect-dictation") == 0)
                return cmd_introspect_dictation();
        if (strcmp(cmd, "hold-chat") == 0)
                return cmd_hold_chat(argc > 3 ? argv[3] : NULL, argc > 4 ? (uint32_t)atoi(argv[4]) : 8);
        if (strcmp(cmd, "chat-cancel") == 0 && argc > 6)
                return cmd_chat_cancel(argv[3], argv[4], argv[5], (uint32_t)atoi(argv[6]));
        if (strcmp(cmd, "chat-probe") == 0)
                return cmd_chat_probe();
        if (strcmp(cmd, "notify-listen") == 0 && argc > 3)
                return cmd_notify_listen(argv[3]);
        fprintf(stderr, "unknown command %s\n", cmd);
        return 2;
}
