/* SPDX-License-Identifier: MIT */
/* sotto usage [--all], sotto quota [APP] [KEY=VALUE...]: the Admin
 * interface of the service (dbus/org.sotto.Sotto1.xml), called directly on
 * the library's bus connection. */
#include <errno.h>
#include <stdarg.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client-lib/sotto-cli-admin.h"

#define _cleanup_(f) __attribute__((cleanup(f)))

#define ADMIN_IFACE "org.sotto.Sotto1.Admin"

typedef struct UsageRow {
        uint32_t uid;
        const char *kind, *app;
        uint64_t requests, prompt, generated, images;
        double audio;
} UsageRow;

static int read_usage_dict(sd_bus_message *m, UsageRow *u) {
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (!strcmp(key, "requests"))
                        r = sd_bus_message_read(m, "v", "t", &u->requests);
                else if (!strcmp(key, "prompt-tokens"))
                        r = sd_bus_message_read(m, "v", "t", &u->prompt);
                else if (!strcmp(key, "generated-tokens"))
                        r = sd_bus_message_read(m, "v", "t", &u->generated);
                else if (!strcmp(key, "images"))
                        r = sd_bus_message_read(m, "v", "t", &u->images);
                else if (!strcmp(key, "audio-seconds"))
                        r = sd_bus_message_read(m, "v", "d", &u->audio);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static json_object *usage_json(const UsageRow *u) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "uid", json_object_new_int64(u->uid));
        json_object_object_add(o, "kind", json_object_new_string(u->kind));
        json_object_object_add(o, "application", json_object_new_string(u->app));
        json_object_object_add(o, "requests", json_object_new_int64((int64_t)u->requests));
        json_object_object_add(o, "prompt-tokens", json_object_new_int64((int64_t)u->prompt));
        json_object_object_add(o, "generated-tokens", json_object_new_int64((int64_t)u->generated));
        json_object_object_add(o, "audio-seconds", json_object_new_double(u->audio));
        json_object_object_add(o, "images", json_object_new_int64((int64_t)u->images));
        return o;
}

static int call(sotto *s, const char *method, sd_bus_message **reply, sd_bus_error *e, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus *bus = sotto_get_bus(s);
        int r = sd_bus_message_new_method_call(bus, &m, "org.sotto.Sotto1", "/org/sotto/Sotto1", ADMIN_IFACE,
                                               method);
        if (r < 0)
                return r;
        /* polkit may ask an administrator for a password, on a terminal. */
        (void)sd_bus_message_set_allow_interactive_authorization(m, isatty(STDIN_FILENO));
        if (types) {
                va_list ap;
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        return sd_bus_call(bus, m, 0, e, reply);
}

int cli_usage(sotto *s, bool all, bool json, cli_report_error_t report) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = call(s, all ? "GetAllUsage" : "GetUsage", &reply, &e, NULL);
        if (r < 0) {
                r = report(&e, r, "cannot read the usage");
                sd_bus_error_free(&e);
                return r;
        }
        json_object *arr = json ? json_object_new_array() : NULL;
        if (all) {
                r = sd_bus_message_enter_container(reply, 'a', "(ussa{sv})");
                if (r >= 0 && !json)
                        printf("%-6s %-10s %9s %12s %12s %10s %7s  %s\n", "UID", "KIND", "REQUESTS", "PROMPT-TOK",
                               "GENER-TOK", "AUDIO-S", "IMAGES", "APPLICATION");
                while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'r', "ussa{sv}")) > 0) {
                        UsageRow u = {};
                        r = sd_bus_message_read(reply, "uss", &u.uid, &u.kind, &u.app);
                        if (r >= 0)
                                r = read_usage_dict(reply, &u);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                        if (r < 0)
                                break;
                        if (json)
                                json_object_array_add(arr, usage_json(&u));
                        else
                                printf("%-6u %-10s %9llu %12llu %12llu %10.1f %7llu  %s\n", u.uid, u.kind,
                                       (unsigned long long)u.requests, (unsigned long long)u.prompt,
                                       (unsigned long long)u.generated, u.audio, (unsigned long long)u.images,
                                       u.app);
                }
                if (json && r >= 0)
                        puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        } else {
                UsageRow u = {};
                r = sd_bus_message_read(reply, "uss", &u.uid, &u.kind, &u.app);
                if (r >= 0)
                        r = read_usage_dict(reply, &u);
                if (r >= 0 && json)
                        puts(json_object_to_json_string_ext(usage_json(&u), JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                else if (r >= 0)
                        printf("Application: %s (%s, uid %u)\nRequests: %llu\nPrompt tokens: %llu\n"
                               "Generated tokens: %llu\nAudio seconds: %.1f\nImages: %llu\n",
                               u.app, u.kind, u.uid, (unsigned long long)u.requests, (unsigned long long)u.prompt,
                               (unsigned long long)u.generated, u.audio, (unsigned long long)u.images);
        }
        if (arr)
                json_object_put(arr);
        if (r < 0) {
                fprintf(stderr, "sotto: cannot read the reply: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}

static int show_quota(sotto *s, bool json, cli_report_error_t report) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *app, *prio;
        int r = call(s, "GetQuotaState", &reply, &e, NULL);
        if (r < 0) {
                r = report(&e, r, "cannot read the quota state");
                sd_bus_error_free(&e);
                return r;
        }
        r = sd_bus_message_read(reply, "ss", &app, &prio);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(stdt)");
        json_object *o = json ? json_object_new_object() : NULL, *limits = json ? json_object_new_object() : NULL;
        if (r >= 0 && !json)
                printf("Application: %s\nPriority: %s\n%-26s %12s %14s %12s\n", app, prio, "LIMIT", "VALUE",
                       "AVAILABLE", "RETRY-AFTER");
        const char *name;
        uint64_t value, retry;
        double avail;
        while (r >= 0 && (r = sd_bus_message_read(reply, "(stdt)", &name, &value, &avail, &retry)) > 0) {
                if (json) {
                        json_object *l = json_object_new_object();
                        json_object_object_add(l, "value", json_object_new_int64((int64_t)value));
                        json_object_object_add(l, "available", json_object_new_double(avail));
                        json_object_object_add(l, "retry-after", json_object_new_int64((int64_t)retry));
                        json_object_object_add(limits, name, l);
                } else if (value == 0)
                        printf("%-26s %12s %14s %12s\n", name, "unlimited", "-", "-");
                else
                        printf("%-26s %12llu %14.1f %11llus\n", name, (unsigned long long)value, avail,
                               (unsigned long long)retry);
        }
        if (json && r >= 0) {
                json_object_object_add(o, "application", json_object_new_string(app));
                json_object_object_add(o, "priority", json_object_new_string(prio));
                json_object_object_add(o, "limits", json_object_get(limits));
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        }
        if (o) {
                json_object_put(limits);
                json_object_put(o);
        }
        if (r < 0) {
                fprintf(stderr, "sotto: cannot read the reply: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}

int cli_quota(sotto *s, int argc, char **argv, bool json, cli_report_error_t report) {
        const char *app = "";
        int i = 0;
        if (argc == 0)
                return show_quota(s, json, report);
        if (!strchr(argv[0], '=')) {
                app = argv[0];
                i = 1;
        }
        if (i >= argc) {
                fprintf(stderr, "sotto: quota %s: give KEY=VALUE to set (see sotto.conf(5)); 'sotto quota' "
                                "alone shows your own limits\n",
                        app);
                return 2;
        }
        for (; i < argc; i++) {
                char key[128];
                sd_bus_error e = SD_BUS_ERROR_NULL;
                const char *eq = strchr(argv[i], '=');
                if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof key) {
                        fprintf(stderr, "sotto: '%s' is not KEY=VALUE\n", argv[i]);
                        return 2;
                }
                memcpy(key, argv[i], (size_t)(eq - argv[i]));
                key[eq - argv[i]] = 0;
                int r = call(s, "SetQuota", NULL, &e, "sss", app, key, eq + 1);
                if (r < 0) {
                        r = report(&e, r, "cannot set the quota");
                        sd_bus_error_free(&e);
                        return r;
                }
                if (!json)
                        printf("%s%s%s: %s = %s (until the service reloads or restarts)\n",
                               *app ? "[App " : "[Defaults", app, "]", key, eq + 1);
        }
        return 0;
}
