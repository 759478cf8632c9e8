/* SPDX-License-Identifier: MIT */
/* libsotto's blocking and asynchronous forms against a running sottod:
 *   sotto-test-lib ADDRESS */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client-lib/sotto.h"

static int failures;
#define EXPECT(cond, ...)                                               \
        do {                                                            \
                if (!(cond)) {                                          \
                        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                        fprintf(stderr, __VA_ARGS__);                   \
                        fputc('\n', stderr);                            \
                        failures++;                                     \
                }                                                       \
        } while (0)

typedef struct collect {
        char text[8192];
        size_t len;
        int pieces;
        int cancel_after; /* pieces; 0 never */
} collect;

static int on_text(const char *t, size_t n, void *userdata) {
        collect *c = userdata;
        if (c->len + n < sizeof c->text) {
                memcpy(c->text + c->len, t, n);
                c->len += n;
                c->text[c->len] = 0;
        }
        c->pieces++;
        return c->cancel_after && c->pieces >= c->cancel_after ? -1 : 0;
}

typedef struct done_state {
        bool done;
        char error[128];
        sotto_stats stats;
} done_state;

typedef struct async_state {
        collect c;
        done_state d;
} async_state;

static int on_text_async(const char *t, size_t n, void *userdata) {
        return on_text(t, n, &((async_state *)userdata)->c);
}

static void on_done(sotto_request *r, const sd_bus_error *e, const sotto_stats *st, void *userdata) {
        done_state *d = &((async_state *)userdata)->d;
        d->done = true;
        if (e)
                snprintf(d->error, sizeof d->error, "%s", e->name);
        else
                d->stats = *st;
}

int main(int argc, char **argv) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sotto *s = NULL;
        sotto_options o;
        sotto_stats st;
        int r;

        if (argc < 2)
                return 2;
        r = sotto_connect_address(argv[1], &s);
        if (r < 0)
                return fprintf(stderr, "connect: %s\n", strerror(-r)), 1;

        /* Status. */
        sotto_status status;
        r = sotto_get_status(s, &status, &e);
        EXPECT(r >= 0 && !strcmp(status.state, "ready") && status.can_text && status.context_size > 0,
               "status: r=%d state=%s", r, status.state);

        /* Blocking ask, greedy twice: same text, statistics filled. */
        sotto_options_init(&o);
        o.temperature = 0;
        o.max_tokens = 16;
        collect a = {}, b = {};
        r = sotto_ask(s, "Once upon a time", &o, on_text, &a, &st, &e);
        EXPECT(r >= 0, "sotto_ask: %d %s", r, e.message ? e.message : "");
        EXPECT(st.generated_tokens == 16 || !strcmp(st.stop_reason, "end-of-text"), "tokens %u (%s)",
               st.generated_tokens, st.stop_reason);
        EXPECT(st.prompt_tokens > 0 && st.total_usec > 0 && st.first_token_usec <= st.total_usec, "stats");
        r = sotto_ask(s, "Once upon a time", &o, on_text, &b, NULL, &e);
        EXPECT(r >= 0 && a.len > 0 && !strcmp(a.text, b.text), "greedy answers differ: '%s' '%s'", a.text, b.text);
        printf("ask: '%s' (%u tokens, first after %llu us)\n", a.text, st.generated_tokens,
               (unsigned long long)st.first_token_usec);

        /* Stop strings. */
        if (a.len > 4) {
                char stop[3] = { a.text[a.len / 2], a.text[a.len / 2 + 1], 0 };
                const char *stops[] = { stop, NULL };
                collect c = {};
                o.stop = stops;
                r = sotto_ask(s, "Once upon a time", &o, on_text, &c, &st, &e);
                o.stop = NULL;
                EXPECT(r >= 0 && !strstr(c.text, stop) && !strcmp(st.stop_reason, "stop-string") &&
                               !strncmp(c.text, a.text, c.len),
                       "stop '%s': '%s' (%s)", stop, c.text, st.stop_reason);
        }

        /* An error with its name. */
        sd_bus_error_free(&e);
        o.max_tokens = 0;
        r = sotto_ask(s, "", &o, on_text, &a, NULL, &e);
        EXPECT(r < 0 && sd_bus_error_has_name(&e, SOTTO_ERROR_INVALID_INPUT), "empty prompt: %s", e.name);
        sd_bus_error_free(&e);

        /* A chat, blocking. */
        sotto_chat *chat = NULL;
        o.max_tokens = 4;
        r = sotto_chat_open(s, &o, &chat, &e);
        EXPECT(r >= 0 && chat && sotto_chat_get_path(chat), "chat open: %d", r);
        if (chat) {
                collect c1 = {}, c2 = {};
                r = sotto_chat_send(chat, "Hello", NULL, on_text, &c1, &st, &e);
                EXPECT(r >= 0, "turn 1: %s", e.message ? e.message : "");
                r = sotto_chat_send(chat, "And then", NULL, on_text, &c2, &st, &e);
                EXPECT(r >= 0, "turn 2: %s", e.message ? e.message : "");
                sotto_chat_close(chat);
        }

        /* Asynchronous, cancelled from the text callback. */
        sd_event *ev = NULL;
        sd_event_default(&ev);
        EXPECT(sotto_attach_event(s, ev, 0) >= 0, "attach");
        EXPECT(sotto_ask(s, "x", &o, NULL, NULL, NULL, NULL) == -EBUSY, "blocking call while attached");
        async_state x = { .c = { .cancel_after = 1 } };
        sotto_request *req = NULL;
        o.max_tokens = 2000;
        o.temperature = -1;
        r = sotto_ask_async(s, "Tell me a long story", &o, on_text_async, on_done, &x, &req);
        EXPECT(r >= 0, "ask_async: %d", r);
        while (r >= 0 && !x.d.done)
                if (sd_event_run(ev, 10 * 1000000ull) <= 0)
                        break;
        EXPECT(x.d.done && !strcmp(x.d.error, SOTTO_ERROR_CANCELLED), "cancelled request ended with '%s'", x.d.error);
        sotto_request_unref(req);

        /* Asynchronous, to the end. */
        async_state y = {};
        o.max_tokens = 8;
        r = sotto_ask_async(s, "Once upon a time", &o, on_text_async, on_done, &y, &req);
        while (r >= 0 && !y.d.done)
                if (sd_event_run(ev, 10 * 1000000ull) <= 0)
                        break;
        EXPECT(y.d.done && !y.d.error[0] && y.d.stats.generated_tokens > 0 && y.c.len > 0, "async: '%s'", y.d.error);
        sotto_request_unref(req);
        sotto_detach_event(s);
        sd_event_unref(ev);
        sotto_unref(s);
        sd_bus_error_free(&e);
        if (!failures)
                printf("libsotto: all checks passed\n");
        return failures ? 1 : 0;
}
