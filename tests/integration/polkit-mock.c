/* SPDX-License-Identifier: MIT */
/* A stand-in for polkitd on a private bus, for tests/integration/polkit-mock.sh
 * (which needs no root, unlike the tests with the real polkitd).  It owns
 * org.freedesktop.PolicyKit1 and answers CheckAuthorization from a table,
 * and prints what it was asked, so the test can check the request itself:
 *
 *   polkit-mock ADDR ACTION=ANSWER...
 *     ANSWER: yes | no | challenge | error | garbage (a reply of the wrong
 *     type) | slow (yes after 1 s) | keep (yes, retained after a challenge)
 *   prints "ready", then per call:
 *     "check SUBJECT-KIND NAME ACTION FLAGS CANCELLATION-ID"
 *
 * An action not in the table is answered "no". */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

static char **table;
static int n_table;
static sd_event *event;

static const char *answer_for(const char *action) {
        size_t n = strlen(action);
        for (int i = 0; i < n_table; i++)
                if (strncmp(table[i], action, n) == 0 && table[i][n] == '=')
                        return table[i] + n + 1;
        return "no";
}

static int reply(sd_bus_message *call, const char *answer) {
        if (strcmp(answer, "error") == 0)
                return sd_bus_reply_method_errorf(call, "org.freedesktop.PolicyKit1.Error.Failed",
                                                  "The mock was told to fail");
        if (strcmp(answer, "garbage") == 0)
                return sd_bus_reply_method_return(call, "s", "not an authorization result");
        if (strcmp(answer, "keep") == 0)
                return sd_bus_reply_method_return(call, "(bba{ss})", 1, 0, 1,
                                                  "polkit.retains_authorization_after_challenge", "1");
        bool yes = strcmp(answer, "yes") == 0 || strcmp(answer, "slow") == 0;
        bool challenge = strcmp(answer, "challenge") == 0;
        return sd_bus_reply_method_return(call, "(bba{ss})", yes, challenge, 0);
}

static int on_slow(sd_event_source *s, uint64_t usec, void *userdata) {
        sd_bus_message *call = userdata;
        (void)reply(call, "slow");
        sd_bus_message_unref(call);
        sd_event_source_unref(s);
        return 0;
}

static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *kind, *key, *name = "?", *action, *cancel;
        uint32_t flags;
        int r;

        if (!sd_bus_message_is_method_call(m, "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization"))
                return 0;
        r = sd_bus_message_enter_container(m, 'r', "sa{sv}");
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &kind);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r >= 0 && strcmp(key, "name") == 0)
                        r = sd_bus_message_read(m, "v", "s", &name);
                else if (r >= 0)
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &action);
        if (r >= 0)
                r = sd_bus_message_skip(m, "a{ss}");
        if (r >= 0)
                r = sd_bus_message_read(m, "us", &flags, &cancel);
        if (r < 0) {
                printf("bad request: %s\n", strerror(-r));
                fflush(stdout);
                return sd_bus_reply_method_errorf(m, SD_BUS_ERROR_INVALID_ARGS, "bad request");
        }
        printf("check %s %s %s %u '%s'\n", kind, name, action, flags, cancel);
        fflush(stdout);
        const char *answer = answer_for(action);
        if (strcmp(answer, "slow") == 0)
                return sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, 1000000, 0, on_slow,
                                                  sd_bus_message_ref(m)) < 0 ? -ENOMEM : 1;
        (void)reply(m, answer);
        return 1;
}

int main(int argc, char **argv) {
        sd_bus *bus = NULL;
        if (argc < 2) {
                fprintf(stderr, "usage: %s ADDR ACTION=ANSWER...\n", argv[0]);
                return 2;
        }
        table = argv + 2;
        n_table = argc - 2;
        if (sd_event_default(&event) < 0 || sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, argv[1]) < 0 ||
            sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0 ||
            sd_bus_attach_event(bus, event, 0) < 0 ||
            sd_bus_add_object(bus, NULL, "/org/freedesktop/PolicyKit1/Authority", on_message, NULL) < 0 ||
            sd_bus_request_name(bus, "org.freedesktop.PolicyKit1", 0) < 0) {
                fprintf(stderr, "polkit-mock: cannot set up on %s\n", argv[1]);
                return 2;
        }
        (void)sd_bus_set_exit_on_disconnect(bus, 1);
        printf("ready\n");
        fflush(stdout);
        return sd_event_loop(event) < 0;
}
