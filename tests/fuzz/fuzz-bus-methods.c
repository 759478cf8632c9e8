/* SPDX-License-Identifier: MIT */
/* sottod's method handlers driven with arbitrary calls: the input picks the
 * method and builds its arguments (any signature, any option keys and value
 * types, nested variants, odd fds).  The daemon's real vtables run on a
 * peer-to-peer sd-bus pair; there is no worker, so accepted requests stay
 * queued and are freed with the manager.  Nothing may crash or leak. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/sottod/manager.h"

typedef struct input {
        const uint8_t *p;
        size_t left;
} input;

static uint8_t byte(input *in) {
        if (!in->left)
                return 0;
        in->left--;
        return *in->p++;
}

static void bytes(input *in, void *dst, size_t n) {
        for (size_t i = 0; i < n; i++)
                ((uint8_t *)dst)[i] = byte(in);
}

/* A short string, forced to valid UTF-8 (D-Bus refuses anything else). */
static void string(input *in, char *buf, size_t size) {
        size_t n = byte(in) % size;
        for (size_t i = 0; i < n; i++) {
                uint8_t c = byte(in);
                buf[i] = c >= 0x20 && c < 0x7f ? (char)c : (c % 4 == 0 ? '\n' : 'a' + c % 26);
        }
        buf[n] = 0;
}

static const char *const keys[] = { "temperature", "top-k", "top-p", "min-p", "repeat-penalty",
                                    "seed", "max-tokens", "stop", "bogus", "" };

static int append_value(sd_bus_message *m, input *in, int depth) {
        char s[64];
        uint64_t v = 0;
        double d;
        switch (byte(in) % (depth < 6 ? 12 : 11)) {
        case 0: bytes(in, &v, 1); return sd_bus_message_append(m, "v", "y", (uint8_t)v);
        case 1: bytes(in, &v, 2); return sd_bus_message_append(m, "v", "n", (int16_t)v);
        case 2: bytes(in, &v, 4); return sd_bus_message_append(m, "v", "i", (int32_t)v);
        case 3: bytes(in, &v, 4); return sd_bus_message_append(m, "v", "u", (uint32_t)v);
        case 4: bytes(in, &v, 8); return sd_bus_message_append(m, "v", "x", (int64_t)v);
        case 5: bytes(in, &v, 8); return sd_bus_message_append(m, "v", "t", v);
        case 6: bytes(in, &d, 8); return sd_bus_message_append(m, "v", "d", d);
        case 7: string(in, s, sizeof s); return sd_bus_message_append(m, "v", "s", s);
        case 8: return sd_bus_message_append(m, "v", "b", byte(in) & 1);
        case 9: {
                char a[3][64];
                unsigned n = byte(in) % 4;
                for (unsigned i = 0; i < n; i++)
                        string(in, a[i < 3 ? i : 2], sizeof a[0]);
                return sd_bus_message_append(m, "v", "as", n > 3 ? 3 : n, a[0], a[1], a[2]);
        }
        case 10: return sd_bus_message_append(m, "v", "(ii)", 1, 2);
        default: {
                int r = sd_bus_message_open_container(m, 'v', "v");
                if (r < 0)
                        return r;
                /* a variant holding a variant: read as the inner value by nobody */
                r = append_value(m, in, depth + 1);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(m);
        }
        }
}

static int append_options(sd_bus_message *m, input *in) {
        int r = sd_bus_message_open_container(m, 'a', "{sv}");
        unsigned n = byte(in) % 6;
        for (unsigned i = 0; r >= 0 && i < n; i++) {
                char k[32];
                uint8_t c = byte(in);
                if (c % 5 == 4)
                        string(in, k, sizeof k);
                else
                        snprintf(k, sizeof k, "%s", keys[c % (sizeof keys / sizeof keys[0])]);
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", k);
                if (r >= 0)
                        r = append_value(m, in, 0);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int pick_fd(input *in, int fds[4]) {
        return fds[byte(in) % 4];
}

static void pump(sd_bus *a, sd_bus *b, int rounds) {
        for (int i = 0; i < rounds; i++) {
                int x = sd_bus_process(a, NULL), y = sd_bus_process(b, NULL);
                if (x <= 0 && y <= 0)
                        break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        input in = { data, size };
        ManagerConfig cfg = {
                .max_active = 2, .max_per_caller = 4, .max_queued = 8, .max_chats_per_caller = 2, .max_chats = 4,
                .max_prompt_bytes = 4096, .drain_usec = 1000,
        };
        Manager *m = NULL;
        sd_bus *server = NULL, *client = NULL;
        int sp[2], pipefd[2], devnull, sock[2];
        sd_id128_t id = { { 1, 2, 3 } };

        if (size > 4096 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return 0;
        cfg.model_path = strdup("/nonexistent");
        cfg.user = strdup("nobody");
        if (manager_new(&cfg, &m) < 0)
                abort();
        m->state = "ready";
        if (sd_bus_new(&server) < 0 || sd_bus_set_fd(server, sp[0], sp[0]) < 0 || sd_bus_set_server(server, 1, id) < 0 ||
            sd_bus_set_anonymous(server, 1) < 0 || sd_bus_negotiate_fds(server, 1) < 0 || sd_bus_start(server) < 0)
                abort();
        if (sd_bus_new(&client) < 0 || sd_bus_set_fd(client, sp[1], sp[1]) < 0 || sd_bus_negotiate_fds(client, 1) < 0 ||
            sd_bus_start(client) < 0)
                abort();
        m->bus = server;
        if (manager_register_objects(m) < 0)
                abort();
        pump(server, client, 50);

        pipe2(pipefd, O_CLOEXEC);
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock);
        int fds[4] = { pipefd[1], pipefd[0], devnull, sock[0] };
        char chat_path[64] = "/org/sotto/Sotto1/chat/1";

        /* Several calls per input, so that chats opened earlier are used. */
        for (int call = 0; call < 4 && in.left > 0; call++) {
                sd_bus_message *msg = NULL;
                char text[128];
                int r = 0;
                uint8_t what = byte(&in);
                const char *path = "/org/sotto/Sotto1", *iface, *member;
                switch (what % 13) {
                case 0: iface = "org.sotto.Sotto1.Text", member = "Ask"; break;
                case 1: iface = "org.sotto.Sotto1.Text", member = "OpenChat"; break;
                case 2: iface = "org.sotto.Sotto1.Service", member = "GetStatistics"; break;
                case 3: iface = "org.sotto.Sotto1.Chat", member = "Send", path = chat_path; break;
                case 4: iface = "org.sotto.Sotto1.Chat", member = "Close", path = chat_path; break;
                case 5: iface = "org.freedesktop.DBus.Properties", member = "GetAll"; break;
                case 6: iface = "org.freedesktop.DBus.Introspectable", member = "Introspect"; break;
                case 7: iface = "org.sotto.Sotto1.Admin", member = "GetUsage"; break;
                case 8: iface = "org.sotto.Sotto1.Admin", member = "GetQuotaState"; break;
                case 9: iface = "org.sotto.Sotto1.Admin", member = "GetAllUsage"; break;
                case 10: iface = "org.sotto.Sotto1.Admin", member = "ReloadConfig"; break;
                case 11: iface = "org.sotto.Sotto1.Admin", member = "SetQuota"; break;
                default: iface = "org.sotto.Sotto1.Text", member = "Ask"; break;
                }
                if (sd_bus_message_new_method_call(client, &msg, NULL, path, iface, member) < 0)
                        abort();
                bool wrong = (what & 0x80) != 0; /* arguments of another shape */
                if (!strcmp(member, "Ask") || !strcmp(member, "Send")) {
                        string(&in, text, sizeof text);
                        r = sd_bus_message_append(msg, "s", text);
                        if (r >= 0 && !wrong)
                                r = append_options(msg, &in);
                        if (r >= 0)
                                r = sd_bus_message_append(msg, "h", pick_fd(&in, fds));
                } else if (!strcmp(member, "OpenChat")) {
                        r = wrong ? sd_bus_message_append(msg, "s", "x") : append_options(msg, &in);
                } else if (!strcmp(member, "SetQuota") && !wrong) {
                        /* application, key (often a real one), value */
                        static const char *const qkeys[] = { "PromptTokensPerMinute", "GeneratedTokensPerMinute",
                                                             "MaxConcurrentRequests", "Priority", "MaxAnswerTokens",
                                                             "MaxPromptTokens", "Bogus" };
                        char app[64], value[64];
                        string(&in, app, sizeof app);
                        string(&in, value, sizeof value);
                        r = sd_bus_message_append(msg, "sss", app, qkeys[byte(&in) % 7], value);
                        /* sometimes one argument too many */
                        if (r >= 0 && byte(&in) % 2)
                                r = sd_bus_message_append(msg, "s", "extra");
                } else if (!strcmp(member, "GetAll")) {
                        r = sd_bus_message_append(msg, "s", wrong ? "org.sotto.Sotto1.Chat" : "org.sotto.Sotto1.Service");
                } else if (wrong)
                        r = sd_bus_message_append(msg, "u", 7u);
                if (r >= 0)
                        (void)sd_bus_send(client, msg, NULL);
                sd_bus_message_unref(msg);
                pump(server, client, 200);
        }

        for (int i = 0; i < 4; i++)
                close(fds[i]);
        close(sock[1]);
        m->bus = NULL;
        manager_free(m);
        sd_bus_flush_close_unref(server);
        sd_bus_flush_close_unref(client);
        return 0;
}
