/* SPDX-License-Identifier: MIT */
/* A caller for the polkit tests (tests/integration/polkit-*.sh).
 *
 *   polkit-client ADDR authorize ACTION [interactive] [N]
 *       calls Service.Authorize(ACTION) N times (default 1) on ONE
 *       connection; prints "pid P" and "name UNIQUE-NAME", then one line per call: "ok" or the
 *       error name and message, then "done SECONDS" (wall time of all calls)
 *   polkit-client ADDR hold-ask GOFILE
 *       Authorize(org.sotto.generate), prints "authorized", waits until
 *       GOFILE exists, then Ask on the same connection; prints
 *       "first-byte-ms M", "total-ms T", "end EPOCH_MS" and "ok", or the error
 *   polkit-client ADDR twice ACTION GOFILE
 *       Authorize(ACTION), prints "first", waits until GOFILE exists, calls
 *       it again on the same connection
 *   polkit-client ADDR interactive-seq GOFILE
 *       waits until GOFILE exists (an agent has registered for this pid),
 *       then on one connection: manage-models without and twice with
 *       interactive authorization, configure with and then without it;
 *       one line per call
 *   polkit-client ADDR chat-send GOFILE
 *       OpenChat, prints "opened" (or the error), waits until GOFILE exists,
 *       then Chat.Send on it: prints "ok" or the error name
 *   polkit-client ADDR dictate
 *       Speech.StartDictation with one end of a socketpair as the PipeWire
 *       connection: prints "ok OBJECT-PATH" or the error name and message
 *   polkit-client ADDR burst ACTION N
 *       N Authorize(ACTION) calls sent at once on one connection, then the
 *       N answers ("ok" or the error name), then "done SECONDS"
 *   polkit-client ADDR ask
 *       one Ask, prints "ok" or the error name (exit 0 either way)
 *
 * Exit status: 0 when the calls could be made, 2 when the bus is out of
 * reach. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#define DEST "org.sotto.Sotto1"
#define PATH "/org/sotto/Sotto1"

static uint64_t now_ms(clockid_t clk) {
        struct timespec ts;
        clock_gettime(clk, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static sd_bus *connect_bus(const char *address) {
        sd_bus *b = NULL;
        if (sd_bus_new(&b) < 0 || sd_bus_set_address(b, address) < 0 || sd_bus_set_bus_client(b, 1) < 0 ||
            sd_bus_negotiate_fds(b, 1) < 0 || sd_bus_start(b) < 0) {
                fprintf(stderr, "cannot connect to %s\n", address);
                exit(2);
        }
        return b;
}

static int call_authorize(sd_bus *bus, const char *action, int interactive) {
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, "org.sotto.Sotto1.Service", "Authorize");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", action);
        if (r >= 0)
                r = sd_bus_message_set_allow_interactive_authorization(m, interactive);
        if (r >= 0)
                r = sd_bus_call(bus, m, 30 * 1000000ull, &e, &reply);
        if (r >= 0)
                printf("ok\n");
        else
                printf("%s %s\n", e.name ? e.name : "errno", e.message ? e.message : strerror(-r));
        fflush(stdout);
        sd_bus_error_free(&e);
        sd_bus_message_unref(m);
        sd_bus_message_unref(reply);
        return r;
}

static int n_replies;

static int on_burst_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        printf("%s\n", e ? e->name : "ok");
        n_replies++;
        return 0;
}

static int call_burst(sd_bus *bus, const char *action, int n) {
        sd_bus_slot *slots[64] = {};
        int r = 0;
        if (n < 1 || n > 64)
                return -EINVAL;
        for (int i = 0; i < n && r >= 0; i++) {
                sd_bus_message *m = NULL;
                r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, "org.sotto.Sotto1.Service", "Authorize");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", action);
                if (r >= 0)
                        r = sd_bus_call_async(bus, &slots[i], m, on_burst_reply, NULL, 30 * 1000000ull);
                sd_bus_message_unref(m);
        }
        while (r >= 0 && n_replies < n) {
                r = sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(bus, 1000000);
        }
        for (int i = 0; i < n; i++)
                sd_bus_slot_unref(slots[i]);
        return r;
}

static sd_bus_message *ask_reply;

static int on_ask_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ask_reply = sd_bus_message_ref(m);
        return 0;
}

/* Ask, reading the answer from the pipe while the call is in flight.
 * Prints the error if the call fails. */
static int call_ask(sd_bus *bus, uint64_t *first_ms, uint64_t *total_ms) {
        sd_bus_message *m = NULL;
        sd_bus_slot *slot = NULL;
        int p[2], r;
        uint64_t t0 = now_ms(CLOCK_MONOTONIC), t_first = 0;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        r = sd_bus_message_new_method_call(bus, &m, DEST, PATH, "org.sotto.Sotto1.Text", "Ask");
        if (r >= 0)
                r = sd_bus_message_append(m, "sa{sv}h", "Once upon a time", 2, "max-tokens", "u", 48, "temperature",
                                          "d", 0.0, p[1]);
        if (r >= 0)
                r = sd_bus_call_async(bus, &slot, m, on_ask_reply, NULL, 60 * 1000000ull);
        close(p[1]);
        sd_bus_message_unref(m);
        if (r < 0) {
                close(p[0]);
                return r;
        }
        bool eof = false;
        while (!eof || !ask_reply) {
                struct pollfd fds[2] = { { .fd = eof ? -1 : p[0], .events = POLLIN },
                                         { .fd = sd_bus_get_fd(bus), .events = (short)sd_bus_get_events(bus) } };
                (void)poll(fds, 2, 100);
                if (fds[0].revents) {
                        char buf[4096];
                        ssize_t n = read(p[0], buf, sizeof buf);
                        if (n > 0 && !t_first)
                                t_first = now_ms(CLOCK_MONOTONIC);
                        if (n <= 0)
                                eof = true;
                }
                while ((r = sd_bus_process(bus, NULL)) > 0)
                        ;
                if (r < 0)
                        break;
        }
        close(p[0]);
        sd_bus_slot_unref(slot);
        *first_ms = t_first ? t_first - t0 : 0;
        *total_ms = now_ms(CLOCK_MONOTONIC) - t0;
        if (!ask_reply)
                return r < 0 ? r : -EIO;
        const sd_bus_error *e = sd_bus_message_get_error(ask_reply);
        if (e) {
                printf("%s %s\n", e->name, e->message ? e->message : "");
                return -EACCES;
        }
        return t_first ? 0 : -ENODATA;
}

static void chat_send(sd_bus *bus, const char *gofile) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *path;
        char *chat;
        int p[2];
        int r = sd_bus_call_method(bus, DEST, PATH, "org.sotto.Sotto1.Text", "OpenChat", &e, &reply, "a{sv}", 0);
        if (r < 0 || sd_bus_message_read(reply, "o", &path) < 0) {
                printf("%s\n", e.name ? e.name : "OpenChat failed");
                return;
        }
        chat = strdup(path);
        sd_bus_message_unref(reply);
        reply = NULL;
        printf("opened\n");
        fflush(stdout);
        while (access(gofile, F_OK) != 0)
                usleep(10000);
        if (!chat || pipe2(p, O_CLOEXEC) < 0)
                return;
        r = sd_bus_call_method(bus, DEST, chat, "org.sotto.Sotto1.Chat", "Send", &e, &reply, "sa{sv}h", "Hello", 1,
                               "max-tokens", "u", 4, p[1]);
        close(p[1]);
        close(p[0]);
        printf("%s\n", r >= 0 ? "ok" : e.name ? e.name : strerror(-r));
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
        free(chat);
}

static void dictate(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *path = "";
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                printf("socketpair failed\n");
                return;
        }
        int r = sd_bus_call_method(bus, DEST, PATH, "org.sotto.Sotto1.Speech", "StartDictation", &e, &reply,
                                   "ha{sv}", sv[0], 0);
        if (r >= 0 && sd_bus_message_read(reply, "o", &path) >= 0)
                printf("ok %s\n", path);
        else
                printf("%s %s\n", e.name ? e.name : "errno", e.message ? e.message : strerror(-r));
        close(sv[0]);
        close(sv[1]);
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: %s ADDR authorize|hold-ask|ask ...\n", argv[0]);
                return 2;
        }
        sd_bus *bus = connect_bus(argv[1]);
        const char *unique = NULL;
        (void)sd_bus_get_unique_name(bus, &unique);
        printf("pid %d\nname %s\n", (int)getpid(), unique ?: "?");
        fflush(stdout);
        if (strcmp(argv[2], "authorize") == 0 && argc >= 4) {
                int interactive = argc >= 5 && strcmp(argv[4], "interactive") == 0;
                int n = argc >= 6 ? atoi(argv[5]) : 1;
                uint64_t t0 = now_ms(CLOCK_MONOTONIC);
                for (int i = 0; i < n; i++)
                        (void)call_authorize(bus, argv[3], interactive);
                printf("done %.3f\n", (now_ms(CLOCK_MONOTONIC) - t0) / 1000.0);
                printf("end %llu\n", (unsigned long long)now_ms(CLOCK_REALTIME));
        } else if (strcmp(argv[2], "hold-ask") == 0 && argc >= 4) {
                if (call_authorize(bus, "org.sotto.generate", 0) < 0)
                        return 0;
                printf("authorized\n");
                fflush(stdout);
                while (access(argv[3], F_OK) != 0)
                        usleep(10000);
                uint64_t first = 0, total = 0;
                int r = call_ask(bus, &first, &total);
                printf("first-byte-ms %llu\ntotal-ms %llu\nend %llu\n", (unsigned long long)first,
                       (unsigned long long)total, (unsigned long long)now_ms(CLOCK_REALTIME));
                printf(r < 0 ? "ask failed: %s\n" : "ok\n", strerror(-r));
        } else if (strcmp(argv[2], "twice") == 0 && argc >= 5) {
                (void)call_authorize(bus, argv[3], 0);
                printf("first\n");
                fflush(stdout);
                while (access(argv[4], F_OK) != 0)
                        usleep(10000);
                (void)call_authorize(bus, argv[3], 0);
        } else if (strcmp(argv[2], "interactive-seq") == 0 && argc >= 4) {
                while (access(argv[3], F_OK) != 0)
                        usleep(10000);
                (void)call_authorize(bus, "org.sotto.manage-models", 0);
                (void)call_authorize(bus, "org.sotto.manage-models", 1);
                (void)call_authorize(bus, "org.sotto.manage-models", 1);
                (void)call_authorize(bus, "org.sotto.configure", 1);
                (void)call_authorize(bus, "org.sotto.configure", 0);
        } else if (strcmp(argv[2], "chat-send") == 0 && argc >= 4) {
                chat_send(bus, argv[3]);
        } else if (strcmp(argv[2], "dictate") == 0) {
                dictate(bus);
        } else if (strcmp(argv[2], "burst") == 0 && argc >= 5) {
                uint64_t t0 = now_ms(CLOCK_MONOTONIC);
                int r = call_burst(bus, argv[3], atoi(argv[4]));
                if (r < 0)
                        printf("burst failed: %s\n", strerror(-r));
                printf("done %.3f\n", (now_ms(CLOCK_MONOTONIC) - t0) / 1000.0);
        } else if (strcmp(argv[2], "ask") == 0) {
                uint64_t first = 0, total = 0;
                int r = call_ask(bus, &first, &total);
                printf(r < 0 ? "ask failed: %s\n" : "ok\n", strerror(-r));
        } else {
                fprintf(stderr, "unknown command %s\n", argv[2]);
                return 2;
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}
