/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "bus-name.h"
#include "client-lib/screenshot.h"

extern char **environ;

#define PORTAL_NAME "org.freedesktop.portal.Desktop"
#define PORTAL_PATH "/org/freedesktop/portal/desktop"
#define PORTAL_TIMEOUT_USEC (120 * 1000000ull) /* the user may be asked first */

static int errf(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int errf(char *err, size_t errlen, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        return r;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- the portal ---- */

typedef struct portal_wait {
        bool done;
        uint32_t response;
        char *uri;
} portal_wait;

static int on_response(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        portal_wait *w = userdata;
        int r;

        w->done = true;
        r = sd_bus_message_read(m, "u", &w->response);
        if (r < 0)
                return 0;
        if (sd_bus_message_enter_container(m, 'a', "{sv}") <= 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                const char *key, *contents, *uri;
                char type;
                if (sd_bus_message_read(m, "s", &key) < 0 || sd_bus_message_peek_type(m, &type, &contents) < 0)
                        return 0;
                if (strcmp(key, "uri") == 0 && strcmp(contents, "s") == 0 &&
                    sd_bus_message_read(m, "v", "s", &uri) >= 0) {
                        free(w->uri);
                        w->uri = strdup(uri);
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                if (sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        return 0;
}

static int hexval(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* file:///a%20b.png -> /a b.png */
static char *uri_to_path(const char *uri) {
        const char *p;
        if (strncmp(uri, "file://", 7) != 0)
                return NULL;
        p = uri + 7;
        if (*p != '/') {
                /* file://localhost/... */
                p = strchr(p, '/');
                if (!p || strncmp(uri + 7, "localhost/", 10) != 0)
                        return NULL;
        }
        char *out = malloc(strlen(p) + 1), *o = out;
        if (!out)
                return NULL;
        for (; *p; p++) {
                if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
                        char c = (char)(hexval(p[1]) << 4 | hexval(p[2]));
                        if (c == 0) {
                                free(out);
                                return NULL;
                        }
                        *o++ = c;
                        p += 2;
                } else
                        *o++ = *p;
        }
        *o = 0;
        return out;
}

/* 1 with *ret_fd set; 0 when there is no portal; -errno when the portal
 * is there but failed or the user declined (message in err). */
static int portal_screenshot(int *ret_fd, char *err, size_t errlen) {
        sd_bus *bus = NULL;
        sd_bus_slot *slot = NULL, *slot2 = NULL;
        sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        portal_wait w = {};
        char token[32], path[256], sender[128];
        const char *unique, *handle;
        uint64_t rnd = 0;
        int r;

        if (!getenv("DBUS_SESSION_BUS_ADDRESS") && !getenv("XDG_RUNTIME_DIR"))
                return 0;
        if (sd_bus_open_user(&bus) < 0)
                return 0;
        if (!bus_name_available(bus, PORTAL_NAME)) {
                r = 0;
                goto out;
        }
        r = sd_bus_get_unique_name(bus, &unique);
        if (r < 0)
                goto fail;
        /* The Request object's path is known before the call, so the
         * Response cannot be missed: subscribe first. */
        snprintf(sender, sizeof sender, "%s", unique + (unique[0] == ':'));
        for (char *c = sender; *c; c++)
                if (*c == '.')
                        *c = '_';
        (void)getrandom(&rnd, sizeof rnd, GRND_NONBLOCK);
        snprintf(token, sizeof token, "sotto%llx", (unsigned long long)(rnd ^ (uint64_t)getpid()));
        snprintf(path, sizeof path, PORTAL_PATH "/request/%s/%s", sender, token);
        r = sd_bus_match_signal(bus, &slot, PORTAL_NAME, path, "org.freedesktop.portal.Request", "Response",
                                on_response, &w);
        if (r < 0)
                goto fail;
        r = sd_bus_call_method(bus, PORTAL_NAME, PORTAL_PATH, "org.freedesktop.portal.Screenshot", "Screenshot", &e,
                               &reply, "sa{sv}", "", 3, "handle_token", "s", token, "modal", "b", 0, "interactive",
                               "b", 0);
        if (r < 0) {
                /* No Screenshot interface (no backend for it): as if absent. */
                if (sd_bus_error_has_name(&e, "org.freedesktop.DBus.Error.UnknownMethod") ||
                    sd_bus_error_has_name(&e, "org.freedesktop.DBus.Error.UnknownInterface") ||
                    sd_bus_error_has_name(&e, "org.freedesktop.DBus.Error.ServiceUnknown")) {
                        r = 0;
                        goto out;
                }
                r = errf(err, errlen, r, "the screenshot portal refused: %s", e.message ? e.message : strerror(-r));
                goto out;
        }
        r = sd_bus_message_read(reply, "o", &handle);
        if (r < 0)
                goto fail;
        if (strcmp(handle, path) != 0) {
                /* An old portal that ignores handle_token. */
                r = sd_bus_match_signal(bus, &slot2, PORTAL_NAME, handle, "org.freedesktop.portal.Request",
                                        "Response", on_response, &w);
                if (r < 0)
                        goto fail;
        }
        uint64_t deadline = now_usec() + PORTAL_TIMEOUT_USEC;
        while (!w.done) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        goto fail;
                if (r > 0)
                        continue;
                uint64_t t = now_usec();
                if (t >= deadline) {
                        r = errf(err, errlen, -ETIMEDOUT, "the screenshot portal did not answer within %llu s",
                                 PORTAL_TIMEOUT_USEC / 1000000ull);
                        goto out;
                }
                r = sd_bus_wait(bus, deadline - t);
                if (r < 0)
                        goto fail;
        }
        if (w.response != 0) {
                r = errf(err, errlen, -ECANCELED, "the screenshot was %s",
                         w.response == 1 ? "cancelled (declined)" : "refused by the portal");
                goto out;
        }
        char *file = w.uri ? uri_to_path(w.uri) : NULL;
        if (!file) {
                r = errf(err, errlen, -EBADMSG, "the screenshot portal returned no file URI (%s)",
                         w.uri ? w.uri : "none");
                goto out;
        }
        int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                r = errf(err, errlen, -errno, "cannot open the portal's screenshot %s: %s", file, strerror(errno));
        else {
                *ret_fd = fd;
                r = 1;
        }
        free(file);
        goto out;
fail:
        r = errf(err, errlen, r, "the screenshot portal failed: %s", strerror(-r));
out:
        free(w.uri);
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
        sd_bus_slot_unref(slot);
        sd_bus_slot_unref(slot2);
        sd_bus_flush_close_unref(bus);
        return r;
}

/* ---- the tools ---- */

typedef struct tool {
        const char *name;
        const char *argv[8]; /* "%f": the output file */
        const char *needs;   /* an environment variable without which it cannot work */
} tool;

static const tool tools[] = {
        { "grim", { "grim", "%f", NULL }, "WAYLAND_DISPLAY" },
        { "gnome-screenshot", { "gnome-screenshot", "-f", "%f", NULL }, NULL },
        { "spectacle", { "spectacle", "-b", "-n", "-o", "%f", NULL }, NULL },
        { "import", { "import", "-window", "root", "%f", NULL }, "DISPLAY" },
};

static bool in_path(const char *name) {
        const char *path = getenv("PATH");
        char buf[4096];
        if (!path)
                return false;
        while (*path) {
                size_t n = strcspn(path, ":");
                if (n > 0 && n + strlen(name) + 2 < sizeof buf) {
                        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, name);
                        if (access(buf, X_OK) == 0)
                                return true;
                }
                path += n + (path[n] == ':');
        }
        return false;
}

/* Runs one tool into a fresh temporary file; 0 with *ret_fd, or -errno
 * with what went wrong in why. */
static int run_tool(const tool *t, int *ret_fd, char *why, size_t whylen) {
        const char *dir = getenv("XDG_RUNTIME_DIR");
        char file[4096];
        const char *argv[8];
        int status, r;

        if (t->needs && !getenv(t->needs))
                return errf(why, whylen, -ENXIO, "%s needs $%s", t->name, t->needs);
        snprintf(file, sizeof file, "%s/sotto-screen-XXXXXX.png", dir && *dir ? dir : "/tmp");
        int fd = mkostemps(file, 4, O_CLOEXEC);
        if (fd < 0)
                return errf(why, whylen, -errno, "cannot create a temporary file: %s", strerror(errno));
        for (size_t i = 0; i < 8; i++)
                argv[i] = t->argv[i] && strcmp(t->argv[i], "%f") == 0 ? file : t->argv[i];

        /* Its messages are kept for the error, not shown when it works. */
        int log = memfd_create("sotto-screenshot-log", MFD_CLOEXEC);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (log >= 0) {
                posix_spawn_file_actions_adddup2(&fa, log, STDOUT_FILENO);
                posix_spawn_file_actions_adddup2(&fa, log, STDERR_FILENO);
        }
        pid_t pid;
        r = posix_spawnp(&pid, t->name, &fa, NULL, (char *const *)argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0) {
                r = errf(why, whylen, -r, "%s could not be started: %s", t->name, strerror(r));
                goto out;
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        r = errf(why, whylen, -errno, "waiting for %s: %s", t->name, strerror(errno));
                        goto out;
                }
        struct stat st;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
                char msg[200] = "";
                if (log >= 0) {
                        ssize_t n = pread(log, msg, sizeof msg - 1, 0);
                        msg[n > 0 ? n : 0] = 0;
                        msg[strcspn(msg, "\n")] = 0;
                }
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                        r = errf(why, whylen, -ENODATA, "%s wrote no image", t->name);
                else if (WIFEXITED(status))
                        r = errf(why, whylen, -EIO, "%s failed (exit %d%s%s)", t->name, WEXITSTATUS(status),
                                 *msg ? ": " : "", msg);
                else
                        r = errf(why, whylen, -EIO, "%s was killed by signal %d", t->name, WTERMSIG(status));
                goto out;
        }
        if (lseek(fd, 0, SEEK_SET) < 0) {
                r = errf(why, whylen, -errno, "cannot rewind %s: %s", file, strerror(errno));
                goto out;
        }
        *ret_fd = fd;
        fd = -1;
        r = 0;
out:
        unlink(file); /* the open fd keeps it while it is read */
        if (fd >= 0)
                close(fd);
        if (log >= 0)
                close(log);
        return r;
}

int screenshot_take(int *ret_fd, const char **how, char *err, size_t errlen) {
        char tried[1024] = "", why[300];
        size_t n_found = 0;
        int r;

        r = portal_screenshot(ret_fd, err, errlen);
        if (r > 0) {
                *how = "portal";
                return 0;
        }
        if (r < 0)
                return r; /* there is a portal: its answer (e.g. declined) stands */

        for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
                if (!in_path(tools[i].name))
                        continue;
                n_found++;
                r = run_tool(&tools[i], ret_fd, why, sizeof why);
                if (r >= 0) {
                        *how = tools[i].name;
                        return 0;
                }
                size_t l = strlen(tried);
                snprintf(tried + l, sizeof tried - l, "%s%s", l ? "; " : "", why);
        }
        if (n_found == 0)
                return errf(err, errlen, -ENOENT,
                            "no screenshot portal (org.freedesktop.portal.Screenshot on the session bus) and no "
                            "screenshot tool: none of grim, gnome-screenshot, spectacle, import (ImageMagick) is in "
                            "PATH; install one, or save a screenshot and run 'sotto explain FILE'");
        return errf(err, errlen, -EIO,
                    "no screenshot portal (org.freedesktop.portal.Screenshot on the session bus), and the "
                    "screenshot tools failed: %s", tried);
}
