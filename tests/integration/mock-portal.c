/* SPDX-License-Identifier: MIT */
/* A test double of xdg-desktop-portal's Screenshot interface, for
 * explain-screen.sh: a real xdg-desktop-portal needs a desktop backend
 * (GNOME Shell, wlroots, KDE) to take a screenshot, which cannot run
 * headless here.  It follows the portal's documented protocol: Screenshot(s
 * parent_window, a{sv} options) returns the Request object
 * /org/freedesktop/portal/desktop/request/SENDER/TOKEN (TOKEN from the
 * "handle_token" option), then emits Response(u response, a{sv} results)
 * on it, with results["uri"] a file:// URI of a PNG.
 *
 *   mock-portal ADDRESS PNG MODE
 *     MODE ok: copies PNG to a new file (name with a space, so that the URI
 *     is percent-encoded) and answers 0 with its URI; declined: answers 1.
 * Prints "ready" once it owns org.freedesktop.portal.Desktop, and each
 * call as "call TOKEN interactive=B" to stdout. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

static const char *png, *mode;
static unsigned n_calls;

static int copy_file(const char *from, const char *to) {
        char buf[65536];
        int in = open(from, O_RDONLY | O_CLOEXEC), out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ssize_t n;
        int r = 0;
        if (in < 0 || out < 0)
                r = -errno;
        while (r == 0 && (n = read(in, buf, sizeof buf)) > 0)
                if (write(out, buf, (size_t)n) != n)
                        r = -EIO;
        if (in >= 0)
                close(in);
        if (out >= 0)
                close(out);
        return r;
}

static int method_screenshot(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *parent, *token = NULL;
        int interactive = -1, r;
        char sender[128], path[512], file[4096], uri[8192];

        r = sd_bus_message_read(m, "s", &parent);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                if ((r = sd_bus_message_read(m, "s", &key)) < 0)
                        return r;
                if (strcmp(key, "handle_token") == 0)
                        r = sd_bus_message_read(m, "v", "s", &token);
                else if (strcmp(key, "interactive") == 0)
                        r = sd_bus_message_read(m, "v", "b", &interactive);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (!token)
                token = "t0";
        const char *u = sd_bus_message_get_sender(m);
        snprintf(sender, sizeof sender, "%s", u + (u[0] == ':'));
        for (char *c = sender; *c; c++)
                if (*c == '.')
                        *c = '_';
        snprintf(path, sizeof path, "/org/freedesktop/portal/desktop/request/%s/%s", sender, token);
        printf("call %s interactive=%d\n", token, interactive);
        fflush(stdout);
        r = sd_bus_reply_method_return(m, "o", path);
        if (r < 0)
                return r;

        sd_bus_message *sig = NULL;
        r = sd_bus_message_new_signal(sd_bus_message_get_bus(m), &sig, path, "org.freedesktop.portal.Request",
                                      "Response");
        if (r < 0)
                return r;
        (void)sd_bus_message_set_destination(sig, u);
        if (strcmp(mode, "ok") == 0) {
                snprintf(file, sizeof file, "%s.portal shot %u.png", png, ++n_calls);
                r = copy_file(png, file);
                if (r < 0)
                        return r;
                /* file:// with the space percent-encoded, as GIO writes it. */
                size_t k = snprintf(uri, sizeof uri, "file://");
                for (const char *c = file; *c && k + 4 < sizeof uri; c++)
                        k += *c == ' ' ? (size_t)snprintf(uri + k, 4, "%%20") : (uri[k] = *c, uri[k + 1] = 0, 1);
                r = sd_bus_message_append(sig, "ua{sv}", 0, 1, "uri", "s", uri);
        } else
                r = sd_bus_message_append(sig, "ua{sv}", 1, 0);
        if (r >= 0)
                r = sd_bus_send(NULL, sig, NULL);
        sd_bus_message_unref(sig);
        return r < 0 ? r : 1;
}

static const sd_bus_vtable screenshot_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Screenshot", "sa{sv}", "o", method_screenshot, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("version", "u", NULL, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

int main(int argc, char **argv) {
        sd_bus *bus = NULL;
        static const uint32_t version = 2;
        int r;

        if (argc != 4) {
                fprintf(stderr, "usage: mock-portal ADDRESS PNG ok|declined\n");
                return 2;
        }
        png = argv[2];
        mode = argv[3];
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, argv[1]);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/portal/desktop",
                                             "org.freedesktop.portal.Screenshot", screenshot_vtable,
                                             (void *)&version);
        if (r >= 0)
                r = sd_bus_request_name(bus, "org.freedesktop.portal.Desktop", 0);
        if (r < 0) {
                fprintf(stderr, "mock-portal: %s\n", strerror(-r));
                return 1;
        }
        printf("ready\n");
        fflush(stdout);
        for (;;) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        break;
                if (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0)
                        break;
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}
