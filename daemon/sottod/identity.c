/* SPDX-License-Identifier: MIT */
/* Application identity from the kernel's view of the calling process: its
 * cgroup (the unit the session manager, Flatpak or snapd started it in), else
 * its executable.  Names follow the systemd desktop-environment convention:
 *   app[-<launcher>]-<AppID>-<random>.scope
 *   app[-<launcher>]-<AppID>[@<random>].service
 *   app-flatpak-<AppID>-<n>.scope
 *   snap.<name>.<app>-<uuid>.scope, snap.<name>.<app>.service
 * with the AppID escaped the systemd way (\x2d for '-'). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/sottod/identity.h"
#include "macro.h"

static const char *const kind_names[_IDENTITY_KIND_MAX] = {
        [IDENTITY_APP] = "app",
        [IDENTITY_FLATPAK] = "flatpak",
        [IDENTITY_SNAP] = "snap",
        [IDENTITY_EXE] = "executable",
        [IDENTITY_UNCONFINED] = "unconfined",
};

const char *identity_kind_to_string(IdentityKind k) {
        return k >= 0 && k < _IDENTITY_KIND_MAX ? kind_names[k] : "?";
}

/* ---- /proc/PID/cgroup ---- */

int cgroup_path_from_proc(const char *text, char *buf, size_t size) {
        const char *v1 = NULL, *v2 = NULL;
        size_t v1_len = 0, v2_len = 0;

        for (const char *line = text; *line;) {
                const char *end = strchrnul(line, '\n');
                /* hierarchy-id:controllers:path; the path may itself hold ':' */
                const char *c1 = memchr(line, ':', (size_t)(end - line));
                const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
                if (end > line) {
                        if (!c1 || !c2 || c1 == line)
                                return -EINVAL;
                        for (const char *p = line; p < c1; p++)
                                if (!isdigit((unsigned char)*p))
                                        return -EINVAL;
                        const char *path = c2 + 1;
                        size_t len = (size_t)(end - path);
                        if (len == 0 || *path != '/')
                                return -EINVAL;
                        if (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1) {
                                v2 = path;
                                v2_len = len;
                        } else if ((size_t)(c2 - c1 - 1) == strlen("name=systemd") &&
                                   !memcmp(c1 + 1, "name=systemd", strlen("name=systemd"))) {
                                v1 = path;
                                v1_len = len;
                        }
                }
                line = *end ? end + 1 : end;
        }
        /* Hybrid systems list both; the unified one is where systemd and the
         * test harness put processes into units. */
        const char *p = v2 ? v2 : v1;
        size_t len = v2 ? v2_len : v1_len;
        if (!p)
                return -ENOENT;
        if (len >= size)
                return -ENAMETOOLONG;
        memcpy(buf, p, len);
        buf[len] = 0;
        return 0;
}

/* ---- unit names ---- */

static bool appid_char_ok(char c) {
        return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-' || c == '+';
}

/* s[0..len) with \xNN unescaped into buf; -EINVAL on other escapes, on
 * characters an application ID never has, or if empty. */
static int unescape_appid(const char *s, size_t len, char *buf, size_t size) {
        size_t o = 0;
        if (len == 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (c == '\\') {
                        if (len - i < 4 || s[i + 1] != 'x' || !isxdigit((unsigned char)s[i + 2]) ||
                            !isxdigit((unsigned char)s[i + 3]))
                                return -EINVAL;
                        char hex[3] = { s[i + 2], s[i + 3], 0 };
                        c = (char)strtoul(hex, NULL, 16);
                        i += 3;
                }
                if (!appid_char_ok(c))
                        return -EINVAL;
                if (o + 1 >= size)
                        return -ENAMETOOLONG;
                buf[o++] = c;
        }
        buf[o] = 0;
        return buf[0] == '.' || buf[0] == '-' ? -EINVAL : 0;
}

static bool ends_with(const char *s, size_t len, const char *suffix, size_t *stem) {
        size_t n = strlen(suffix);
        if (len < n || memcmp(s + len - n, suffix, n))
                return false;
        *stem = len - n;
        return true;
}

static bool is_uuid(const char *s, size_t len) {
        static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
        if (len != sizeof pattern - 1)
                return false;
        for (size_t i = 0; i < len; i++)
                if (pattern[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
                        return false;
        return true;
}

static int parse_snap(const char *body, size_t len, bool scope, char *app_id, size_t app_size) {
        /* Scopes end in -<uuid> (older snapd: .<uuid>); services have none. */
        if (scope) {
                if (len < 37 || (body[len - 37] != '-' && body[len - 37] != '.') || !is_uuid(body + len - 36, 36))
                        return -EINVAL;
                len -= 37;
        }
        const char *dot = memchr(body, '.', len);
        if (!dot || dot == body || dot == body + len - 1)
                return -EINVAL;
        for (size_t i = 0; i < len; i++)
                if (!isalnum((unsigned char)body[i]) && body[i] != '-' && body[i] != '.' && body[i] != '_')
                        return -EINVAL;
        if (len + 5 + 1 > app_size)
                return -ENAMETOOLONG;
        snprintf(app_id, app_size, "snap.%.*s", (int)len, body);
        return 0;
}

int identity_parse_unit(const char *unit, IdentityKind *kind, char *app_id, size_t app_size, char *launcher,
                        size_t launcher_size) {
        size_t len = strlen(unit), stem;
        bool scope;
        int r;

        if (ends_with(unit, len, ".scope", &stem))
                scope = true;
        else if (ends_with(unit, len, ".service", &stem))
                scope = false;
        else
                return 0;

        if (!strncmp(unit, "snap.", 5) && stem > 5) {
                r = parse_snap(unit + 5, stem - 5, scope, app_id, app_size);
                if (r < 0)
                        return r;
                *kind = IDENTITY_SNAP;
                if (launcher_size)
                        snprintf(launcher, launcher_size, "snap");
                return 1;
        }
        if (strncmp(unit, "app-", 4) || stem <= 4)
                return 0;

        const char *body = unit + 4;
        size_t blen = stem - 4;
        if (scope) {
                /* -<random>: the last '-' (escaped dashes inside the AppID are \x2d) */
                const char *dash = NULL;
                for (size_t i = blen; i > 0; i--)
                        if (body[i - 1] == '-') {
                                dash = body + i - 1;
                                break;
                        }
                if (!dash || dash == body || dash == body + blen - 1)
                        return -EINVAL;
                for (const char *p = dash + 1; p < body + blen; p++)
                        if (!isalnum((unsigned char)*p))
                                return -EINVAL;
                blen = (size_t)(dash - body);
        } else {
                const char *at = memchr(body, '@', blen);
                if (at) {
                        if (at == body)
                                return -EINVAL;
                        blen = (size_t)(at - body);
                }
        }
        /* [<launcher>-]<AppID>: a launcher is one plain word without dots;
         * "org.example.My-App" alone (a raw dash) stays one AppID. */
        const char *dash = memchr(body, '-', blen);
        const char *app = body;
        size_t app_len = blen;
        char launch[64] = "";
        if (dash && dash > body && !memchr(body, '.', (size_t)(dash - body)) &&
            (size_t)(dash - body) < sizeof launch) {
                for (const char *p = body; p < dash; p++)
                        if (!isalnum((unsigned char)*p) && *p != '_')
                                return -EINVAL;
                memcpy(launch, body, (size_t)(dash - body));
                launch[dash - body] = 0;
                app = dash + 1;
                app_len = blen - (size_t)(dash - body) - 1;
        }
        r = unescape_appid(app, app_len, app_id, app_size);
        if (r < 0)
                return r;
        *kind = strcmp(launch, "flatpak") == 0 ? IDENTITY_FLATPAK : IDENTITY_APP;
        if (launcher_size)
                snprintf(launcher, launcher_size, "%s", launch);
        return 1;
}

int identity_parse_cgroup(const char *path, IdentityKind *kind, char *app_id, size_t app_size, char *launcher,
                          size_t launcher_size) {
        size_t end = strlen(path);
        char unit[256];

        /* From the leaf up to the innermost unit (sub-cgroups a service made
         * for itself are not units); that unit is the process's, app or not. */
        while (end > 0) {
                while (end > 0 && path[end - 1] == '/')
                        end--;
                size_t start = end;
                while (start > 0 && path[start - 1] != '/')
                        start--;
                if (start == end)
                        break;
                size_t n = end - start;
                if (n < sizeof unit) {
                        memcpy(unit, path + start, n);
                        unit[n] = 0;
                        size_t stem;
                        if (ends_with(unit, n, ".scope", &stem) || ends_with(unit, n, ".service", &stem)) {
                                int r = identity_parse_unit(unit, kind, app_id, app_size, launcher, launcher_size);
                                return r > 0 ? 1 : 0;
                        }
                }
                end = start;
        }
        return 0;
}

/* ---- /proc/PID/stat ---- */

int proc_stat_start_time(const char *text, uint64_t *ret) {
        /* pid (comm) state ppid ... : comm may contain anything, so count
         * fields from the last ')'. */
        const char *p = strrchr(text, ')');
        if (!p)
                return -EINVAL;
        p++;
        /* field 3 (state) is the first after ')'; starttime is field 22 */
        for (int field = 3; field < 22; field++) {
                p += strspn(p, " ");
                if (!*p)
                        return -EINVAL;
                p += strcspn(p, " ");
        }
        p += strspn(p, " ");
        if (!isdigit((unsigned char)*p))
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || (*end && *end != ' ' && *end != '\n'))
                return -EINVAL;
        *ret = v;
        return 0;
}

int proc_status_euid(const char *text, uid_t *ret) {
        /* "Uid:\treal\teffective\tsaved\tfs" */
        const char *p = strstr(text, "\nUid:");
        unsigned long long real, eff;
        if (!p && !strncmp(text, "Uid:", 4))
                p = text - 1;
        if (!p || sscanf(p + 5, "%llu %llu", &real, &eff) != 2 || eff > UINT32_MAX - 1)
                return -EINVAL;
        *ret = (uid_t)eff;
        return 0;
}

static int read_small(const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        size_t n = 0;
        if (fd < 0)
                return -errno;
        while (n + 1 < size) {
                ssize_t k = read(fd, buf + n, size - 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        if (n + 1 >= size)
                return -EFBIG;
        buf[n] = 0;
        return (int)n;
}

int proc_start_time(const char *proc_root, pid_t pid, uint64_t *ret) {
        char path[128], buf[2048];
        snprintf(path, sizeof path, "%s/%d/stat", proc_root, (int)pid);
        int r = read_small(path, buf, sizeof buf);
        if (r == -ENOENT || r == -ESRCH)
                return -ESRCH;
        if (r < 0)
                return r;
        return proc_stat_start_time(buf, ret);
}

static uid_t overflow_uid(void) {
        static uid_t cached = (uid_t)-1;
        char buf[32];
        if (cached == (uid_t)-1) {
                cached = 65534;
                if (read_small("/proc/sys/kernel/overflowuid", buf, sizeof buf) > 0) {
                        buf[strcspn(buf, "\n")] = 0;
                        char *end;
                        unsigned long u = strtoul(buf, &end, 10);
                        if (!*end && end != buf && u < UINT32_MAX)
                                cached = (uid_t)u;
                }
        }
        return cached;
}

int identity_from_pid(const char *proc_root, uid_t uid, pid_t pid, Identity *ret) {
        char path[128], buf[8192], cg[4096];
        uint64_t t0, t1;
        int r;

        if (pid <= 0)
                return -ESRCH;
        *ret = (Identity){ .uid = uid, .pid = pid };
        r = proc_start_time(proc_root, pid, &t0);
        if (r < 0)
                return r;
        /* The process's effective uid must be the one the bus daemon saw:
         * another user here means the pid belongs to someone else now.
         * (Not the owner of /proc/PID: that is root for a process that is
         * not dumpable.) */
        snprintf(path, sizeof path, "%s/%d/status", proc_root, (int)pid);
        r = read_small(path, buf, sizeof buf);
        if (r == -ENOENT || r == -ESRCH)
                return -ESRCH;
        if (r < 0)
                return r;
        uid_t euid;
        r = proc_status_euid(buf, &euid);
        if (r < 0)
                return r;
        if (euid != uid && euid != overflow_uid())
                return -ESRCH;
        /* The overflow uid is what another user's uid reads as inside a user
         * namespace (the unit's PrivateUsers=yes): then the uid cannot be
         * compared, and the start time alone guards against reuse. */

        snprintf(path, sizeof path, "%s/%d/cgroup", proc_root, (int)pid);
        r = read_small(path, buf, sizeof buf);
        if (r == -ENOENT || r == -ESRCH)
                return -ESRCH;
        if (r >= 0 && cgroup_path_from_proc(buf, cg, sizeof cg) >= 0 &&
            identity_parse_cgroup(cg, &ret->kind, ret->app_id, sizeof ret->app_id, ret->launcher,
                                  sizeof ret->launcher) > 0)
                goto check;

        /* Unconfined: the executable, as the kernel resolved it at exec. */
        snprintf(path, sizeof path, "%s/%d/exe", proc_root, (int)pid);
        ssize_t n = readlink(path, ret->app_id, sizeof ret->app_id - 1);
        if (n < 0 && (errno == EACCES || errno == EPERM)) {
                /* Another user's process, and we may not look (no ptrace
                 * right): all its unconfined programs are one application. */
                ret->kind = IDENTITY_UNCONFINED;
                snprintf(ret->app_id, sizeof ret->app_id, "unconfined");
        } else if (n <= 0 || (size_t)n >= sizeof ret->app_id - 1) {
                return n < 0 && errno != ENOENT ? -errno : -ESRCH;
        } else {
                ret->app_id[n] = 0;
                /* The file was replaced since (an upgrade): same program. */
                size_t len = (size_t)n, stem;
                if (ends_with(ret->app_id, len, " (deleted)", &stem))
                        ret->app_id[stem] = 0;
                ret->kind = IDENTITY_EXE;
        }
        ret->launcher[0] = 0;

check:
        r = proc_start_time(proc_root, pid, &t1);
        if (r < 0)
                return r;
        if (t1 != t0)
                return -ESRCH;
        ret->start_time = t0;
        return 0;
}

void identity_describe(const Identity *id, char *buf, size_t size) {
        snprintf(buf, size, "uid %u %s %s%s%s%s", (unsigned)id->uid, identity_kind_to_string(id->kind), id->app_id,
                 *id->launcher ? " (launcher " : "", id->launcher, *id->launcher ? ")" : "");
}
