/* SPDX-License-Identifier: MIT */
/* Application identity: the /proc/PID/cgroup and unit-name parsers on
 * real-looking lines, the /proc/PID/stat start time, and identity_from_pid
 * on a fake /proc tree (including a pid reused while it was being read). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/sottod/identity.h"
#include "test.h"

static void check_unit(const char *unit, int want_r, IdentityKind want_kind, const char *want_app,
                       const char *want_launcher) {
        IdentityKind kind = _IDENTITY_KIND_MAX;
        char app[256] = "", launcher[64] = "";
        int r = identity_parse_unit(unit, &kind, app, sizeof app, launcher, sizeof launcher);
        CHECK_MSG(r == want_r, "%s: r=%d want %d", unit, r, want_r);
        if (r > 0) {
                CHECK_MSG(kind == want_kind, "%s: kind %s", unit, identity_kind_to_string(kind));
                CHECK_MSG(!strcmp(app, want_app), "%s: app '%s' want '%s'", unit, app, want_app);
                CHECK_MSG(!strcmp(launcher, want_launcher), "%s: launcher '%s'", unit, launcher);
        }
}

static void check_cgroup(const char *path, int want_r, IdentityKind want_kind, const char *want_app) {
        IdentityKind kind = _IDENTITY_KIND_MAX;
        char app[256] = "", launcher[64] = "";
        int r = identity_parse_cgroup(path, &kind, app, sizeof app, launcher, sizeof launcher);
        CHECK_MSG(r == want_r, "%s: r=%d want %d", path, r, want_r);
        if (r > 0) {
                CHECK_MSG(kind == want_kind, "%s: kind %s", path, identity_kind_to_string(kind));
                CHECK_MSG(!strcmp(app, want_app), "%s: app '%s' want '%s'", path, app, want_app);
        }
}

static void test_units(void) {
        /* GNOME Shell, KDE Plasma, Flatpak, systemd-run, xdg-autostart */
        check_unit("app-gnome-org.gnome.Terminal-4242.scope", 1, IDENTITY_APP, "org.gnome.Terminal", "gnome");
        check_unit("app-gnome-firefox\\x2desr-4567.scope", 1, IDENTITY_APP, "firefox-esr", "gnome");
        check_unit("app-gnome-firefox-4567.scope", 1, IDENTITY_APP, "firefox", "gnome");
        check_unit("app-org.kde.konsole-2bf5d1ffa6c54b6e8d6b2a1f1b2c3d4e.scope", 1, IDENTITY_APP,
                   "org.kde.konsole", "");
        check_unit("app-org.kde.dolphin@2bf5d1ff.service", 1, IDENTITY_APP, "org.kde.dolphin", "");
        check_unit("app-gnome-org.gnome.Evolution\\x2dalarm\\x2dnotify@autostart.service", 1, IDENTITY_APP,
                   "org.gnome.Evolution-alarm-notify", "gnome");
        check_unit("app-gnome-org.gnome.Nautilus@12.service", 1, IDENTITY_APP, "org.gnome.Nautilus", "gnome");
        check_unit("app-gnome-org.gnome.Nautilus.service", 1, IDENTITY_APP, "org.gnome.Nautilus", "gnome");
        check_unit("app-flatpak-org.mozilla.firefox-12345.scope", 1, IDENTITY_FLATPAK, "org.mozilla.firefox",
                   "flatpak");
        check_unit("app-flatpak-com.github.tchx84.Flatseal-987.scope", 1, IDENTITY_FLATPAK,
                   "com.github.tchx84.Flatseal", "flatpak");
        check_unit("app-test-org.example.A-1.scope", 1, IDENTITY_APP, "org.example.A", "test");
        check_unit("app-org.example.My-App-3.scope", 1, IDENTITY_APP, "org.example.My-App", "");
        check_unit("app-org.example.B-7.scope", 1, IDENTITY_APP, "org.example.B", "");
        /* snaps */
        check_unit("snap.firefox.firefox-2a3b4c5d-1e2f-4a5b-8c9d-0e1f2a3b4c5d.scope", 1, IDENTITY_SNAP,
                   "snap.firefox.firefox", "snap");
        check_unit("snap.code.code.2a3b4c5d-1e2f-4a5b-8c9d-0e1f2a3b4c5d.scope", 1, IDENTITY_SNAP, "snap.code.code",
                   "snap");
        check_unit("snap.lxd.daemon.service", 1, IDENTITY_SNAP, "snap.lxd.daemon", "snap");
        check_unit("snap.firefox.firefox-notauuid.scope", -EINVAL, 0, NULL, NULL);
        check_unit("snap.firefox-2a3b4c5d-1e2f-4a5b-8c9d-0e1f2a3b4c5d.scope", -EINVAL, 0, NULL, NULL);
        /* not applications */
        check_unit("session-2.scope", 0, 0, NULL, NULL);
        check_unit("user@1000.service", 0, 0, NULL, NULL);
        check_unit("init.scope", 0, 0, NULL, NULL);
        check_unit("dbus.service", 0, 0, NULL, NULL);
        check_unit("app.slice", 0, 0, NULL, NULL);
        check_unit("app-org.gnome.Terminal.slice", 0, 0, NULL, NULL);
        check_unit("vte-spawn-8d7e4c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6.scope", 0, 0, NULL, NULL);
        check_unit("dbus-:1.2-org.freedesktop.portal.IBus@0.service", 0, 0, NULL, NULL);
        check_unit("application.scope", 0, 0, NULL, NULL);
        /* malformed application units */
        check_unit("app-.scope", 0, 0, NULL, NULL);
        check_unit("app--1.scope", -EINVAL, 0, NULL, NULL);
        check_unit("app-gnome-foo-.scope", -EINVAL, 0, NULL, NULL);
        check_unit("app-gnome-foo-1_2.scope", -EINVAL, 0, NULL, NULL);
        check_unit("app-gnome-fo\\o-1.scope", -EINVAL, 0, NULL, NULL);
        check_unit("app-gnome-fo\\x2-1.scope", -EINVAL, 0, NULL, NULL);
        check_unit("app-gnome-a\\x2fb-1.scope", -EINVAL, 0, NULL, NULL); /* '/' */
        check_unit("app-gnome-a\\x20b-1.scope", -EINVAL, 0, NULL, NULL); /* ' ' */
        check_unit("app-gnome-a\\x00b-1.scope", -EINVAL, 0, NULL, NULL);
        check_unit("app-gnome-\\x2e\\x2e-1.scope", -EINVAL, 0, NULL, NULL); /* ".." */
        check_unit("app-@1.service", -EINVAL, 0, NULL, NULL);
        check_unit("app-gnome-org.gnome.Nautilus-1.scope.scope", -EINVAL, 0, NULL, NULL);

        /* a name that does not fit the buffer */
        char app[8], launcher[4];
        IdentityKind kind;
        CHECK_EQ_INT(identity_parse_unit("app-gnome-org.example.Long-1.scope", &kind, app, sizeof app, launcher,
                                         sizeof launcher),
                     -ENAMETOOLONG);
}

static void test_cgroup_paths(void) {
        check_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-org.gnome.Terminal-4242.scope",
                     1, IDENTITY_APP, "org.gnome.Terminal");
        check_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/"
                     "app-flatpak-org.mozilla.firefox-12345.scope",
                     1, IDENTITY_FLATPAK, "org.mozilla.firefox");
        /* a sub-cgroup a service made for itself */
        check_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-org.gnome.Shell-1.scope/sub/x",
                     1, IDENTITY_APP, "org.gnome.Shell");
        check_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.kde.dolphin@2bf5.service/", 1,
                     IDENTITY_APP, "org.kde.dolphin");
        check_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/snap.firefox.firefox-"
                     "2a3b4c5d-1e2f-4a5b-8c9d-0e1f2a3b4c5d.scope",
                     1, IDENTITY_SNAP, "snap.firefox.firefox");
        check_cgroup("/sotto-test.slice/app-test-org.example.A-1.scope", 1, IDENTITY_APP, "org.example.A");
        /* the innermost unit decides: a shell in a terminal tab is not the terminal */
        check_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/"
                     "vte-spawn-8d7e4c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6.scope",
                     0, 0, NULL);
        check_cgroup("/user.slice/user-1000.slice/session-2.scope", 0, 0, NULL);
        check_cgroup("/user.slice/user-1000.slice/user@1000.service/init.scope", 0, 0, NULL);
        check_cgroup("/system.slice/cron.service", 0, 0, NULL);
        check_cgroup("/", 0, 0, NULL);
        check_cgroup("", 0, 0, NULL);
        check_cgroup("//", 0, 0, NULL);
        /* an app scope above the process's own unit does not count */
        check_cgroup("/app-gnome-org.example.A-1.scope/session-3.scope", 0, 0, NULL);
        /* a malformed app unit is no identity */
        check_cgroup("/app.slice/app-gnome-a\\x2fb-1.scope", 0, 0, NULL);
}

static void check_proc(const char *text, int want_r, const char *want) {
        char buf[512] = "";
        int r = cgroup_path_from_proc(text, buf, sizeof buf);
        CHECK_MSG(r == want_r, "'%s': r=%d want %d", text, r, want_r);
        if (r == 0)
                CHECK_MSG(!strcmp(buf, want), "'%s': '%s' want '%s'", text, buf, want);
}

static void test_proc_cgroup(void) {
        /* pure cgroup2 (Debian 12 with systemd) */
        check_proc("0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-x-1.scope\n", 0,
                   "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-x-1.scope");
        /* hybrid: unified wins over name=systemd */
        check_proc("12:pids:/\n11:memory:/x\n1:name=systemd:/user.slice/old.scope\n0::/sotto-test.slice/"
                   "app-test-org.example.A-1.scope\n",
                   0, "/sotto-test.slice/app-test-org.example.A-1.scope");
        /* legacy v1 only */
        check_proc("9:cpu,cpuacct:/\n1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n", 0,
                   "/user.slice/user-1000.slice/session-2.scope");
        /* a container's root */
        check_proc("0::/\n", 0, "/");
        /* ':' inside the path */
        check_proc("0::/a:b/c\n", 0, "/a:b/c");
        /* no trailing newline, empty lines */
        check_proc("\n0::/x", 0, "/x");
        /* nothing usable */
        check_proc("4:memory:/foo\n", -ENOENT, NULL);
        check_proc("", -ENOENT, NULL);
        /* malformed */
        check_proc("0:/x\n", -EINVAL, NULL);
        check_proc("zero::/x\n", -EINVAL, NULL);
        check_proc(":memory:/\n", -EINVAL, NULL);
        check_proc("0::relative\n", -EINVAL, NULL);
        check_proc("0::\n", -EINVAL, NULL);
        char small[4];
        CHECK_EQ_INT(cgroup_path_from_proc("0::/abcdef\n", small, sizeof small), -ENAMETOOLONG);
}

static void test_stat(void) {
        uint64_t t = 0;
        const char *plain = "1234 (bash) S 1 1234 1234 34816 1234 4194304 1000 0 0 0 1 2 0 0 20 0 1 0 987654 1 2 "
                            "3\n";
        CHECK_OK(proc_stat_start_time(plain, &t));
        CHECK_EQ_INT(t, 987654);
        /* comm is whatever the process set: spaces and parentheses */
        const char *evil = "77 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19) R 1 77 77 0 -1 4194560 0 0 "
                           "0 0 0 0 0 0 20 0 1 0 4242 0 0\n";
        CHECK_OK(proc_stat_start_time(evil, &t));
        CHECK_EQ_INT(t, 4242);
        CHECK_EQ_INT(proc_stat_start_time("1 (x) S 1 2 3", &t), -EINVAL);
        CHECK_EQ_INT(proc_stat_start_time("no parenthesis", &t), -EINVAL);
        CHECK_EQ_INT(proc_stat_start_time("1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12x 0\n", &t), -EINVAL);

        /* our own start time is stable */
        uint64_t a, b;
        CHECK_OK(proc_start_time("/proc", getpid(), &a));
        CHECK_OK(proc_start_time("/proc", getpid(), &b));
        CHECK_EQ_INT(a, b);
        CHECK_EQ_INT(proc_start_time("/proc", 0x3fffffff, &a), -ESRCH);
}

static void test_status(void) {
        uid_t u = 0;
        CHECK_OK(proc_status_euid("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t1\t1\t1\t1\n", &u));
        CHECK_EQ_INT(u, 0); /* the effective one, not the real one */
        CHECK_OK(proc_status_euid("Uid:\t5\t6\t7\t8\n", &u));
        CHECK_EQ_INT(u, 6);
        CHECK_EQ_INT(proc_status_euid("Name:\tx\nGid:\t1\t1\t1\t1\n", &u), -EINVAL);
        CHECK_EQ_INT(proc_status_euid("Name:\tUid:\t1\nUid:\tx\n", &u), -EINVAL);
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "w");
        CHECK(f);
        fputs(text, f);
        fclose(f);
}

static void test_from_pid(void) {
        char root[] = "/tmp/test-identity-XXXXXX", path[256];
        Identity id;
        CHECK(mkdtemp(root));

        /* An app scope in a fake /proc */
        snprintf(path, sizeof path, "%s/100", root);
        CHECK(mkdir(path, 0755) == 0);
        snprintf(path, sizeof path, "%s/100/stat", root);
        write_file(path, "100 (sneaky name) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5555 0 0\n");
        snprintf(path, sizeof path, "%s/100/status", root);
        char status[256];
        snprintf(status, sizeof status, "Name:\tsneaky\nUmask:\t0022\nState:\tS\nUid:\t%u\t%u\t%u\t%u\nGid:\t0\t0\t0\t0\n",
                 getuid() + 7, getuid(), getuid(), getuid());
        write_file(path, status);
        snprintf(path, sizeof path, "%s/100/cgroup", root);
        write_file(path, "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-org.example.A-9.scope\n");
        CHECK_OK(identity_from_pid(root, getuid(), 100, &id));
        CHECK_EQ_INT(id.kind, IDENTITY_APP);
        CHECK(!strcmp(id.app_id, "org.example.A"));
        CHECK(!strcmp(id.launcher, "gnome"));
        CHECK_EQ_INT(id.start_time, 5555);
        CHECK_EQ_INT(id.pid, 100);
        /* the bus says another uid owns the pid: someone else has it now */
        CHECK_EQ_INT(identity_from_pid(root, getuid() + 1, 100, &id), -ESRCH);
        /* inside a user namespace another user's uid reads as the overflow
         * uid: not comparable, accepted on the start time alone */
        snprintf(path, sizeof path, "%s/100/status", root);
        snprintf(status, sizeof status, "Uid:\t65534\t65534\t65534\t65534\n");
        write_file(path, status);
        if (getuid() != 65533) {
                CHECK_OK(identity_from_pid(root, 65533, 100, &id));
                CHECK_EQ_INT(id.uid, 65533); /* the bus's uid is the identity */
        }
        snprintf(status, sizeof status, "Uid:\t%u\t%u\t%u\t%u\n", getuid(), getuid(), getuid(), getuid());
        write_file(path, status);

        /* unconfined: the executable (a symlink like /proc/PID/exe) */
        snprintf(path, sizeof path, "%s/100/cgroup", root);
        write_file(path, "0::/user.slice/user-1000.slice/session-2.scope\n");
        snprintf(path, sizeof path, "%s/100/exe", root);
        CHECK(symlink("/usr/bin/some-editor (deleted)", path) == 0);
        CHECK_OK(identity_from_pid(root, getuid(), 100, &id));
        CHECK_EQ_INT(id.kind, IDENTITY_EXE);
        CHECK(!strcmp(id.app_id, "/usr/bin/some-editor"));

        /* gone */
        CHECK_EQ_INT(identity_from_pid(root, getuid(), 101, &id), -ESRCH);
        CHECK_EQ_INT(identity_from_pid(root, getuid(), 0, &id), -ESRCH);

        /* A real process: this test program itself (its exe is readable). */
        CHECK_OK(identity_from_pid("/proc", getuid(), getpid(), &id));
        if (id.kind == IDENTITY_EXE)
                CHECK(strstr(id.app_id, "test-identity") != NULL);
        char desc[256];
        identity_describe(&id, desc, sizeof desc);
        CHECK(strstr(desc, "uid ") == desc);

        /* A pid reused while it is being read: a second process rewrites
         * the fake stat file's start time in a loop, and every read must
         * either see one start time throughout or refuse. */
        snprintf(path, sizeof path, "%s/200", root);
        CHECK(mkdir(path, 0755) == 0);
        snprintf(path, sizeof path, "%s/200/status", root);
        snprintf(status, sizeof status, "Uid:\t%u\t%u\t%u\t%u\n", getuid(), getuid(), getuid(), getuid());
        write_file(path, status);
        snprintf(path, sizeof path, "%s/200/cgroup", root);
        write_file(path, "0::/app.slice/app-gnome-org.example.B-1.scope\n");
        char stat_path[256];
        snprintf(stat_path, sizeof stat_path, "%s/200/stat", root);
        write_file(stat_path, "200 (a) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1000 0 0\n");
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                /* flip the start time as fast as possible */
                for (int i = 0;; i++) { /* until killed */
                        char t[300];
                        snprintf(t, sizeof t, "%s.new", stat_path);
                        FILE *f = fopen(t, "w");
                        if (!f)
                                _exit(1);
                        fprintf(f, "200 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n", i & 1 ? 1000 : 2000);
                        fclose(f);
                        rename(t, stat_path);
                }
                _exit(0);
        }
        int refused = 0, accepted = 0;
        /* Bounded by time, not by count: on a busy machine the child may
         * get little CPU. */
        time_t deadline = time(NULL) + 20;
        while ((refused == 0 || accepted == 0) && time(NULL) < deadline) {
                int r = identity_from_pid(root, getuid(), 200, &id);
                if (r == -ESRCH)
                        refused++;
                else if (r == 0) {
                        accepted++;
                        CHECK(id.start_time == 1000 || id.start_time == 2000);
                }
        }
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        printf("pid-reuse race: %d reads refused, %d accepted with a consistent start time\n", refused, accepted);
        CHECK(refused > 0);

        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        CHECK(system(cmd) == 0);
}

int main(void) {
        test_units();
        test_cgroup_paths();
        test_proc_cgroup();
        test_stat();
        test_status();
        test_from_pid();
        printf("identity: ok\n");
        return 0;
}
