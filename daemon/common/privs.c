/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "daemon/common/privs.h"
#include "macro.h"

static int drop_bounding_set(void) {
        /* CAP_SETPCAP is needed for this, so it happens before the uid change. */
        for (int c = 0; c <= CAP_LAST_CAP; c++)
                if (cap_drop_bound(c) < 0 && errno != EINVAL)
                        return -errno;
        return 0;
}

int privs_drop(const char *user, char *err, size_t errlen) {
        int switched = 0;

        if (geteuid() == 0) {
                struct passwd *pw;
                errno = 0;
                pw = getpwnam(user);
                if (!pw)
                        return set_error(err, errlen, errno > 0 ? -errno : -ESRCH,
                                         "user '%s' does not exist (create it with useradd --system %s)", user,
                                         user);
                if (pw->pw_uid == 0)
                        return set_error(err, errlen, -EPERM, "user '%s' is root; refusing to run as it", user);
                if (drop_bounding_set() < 0)
                        return set_error(err, errlen, -errno, "cannot drop the capability bounding set: %m");
                if (setgroups(1, &pw->pw_gid) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
                    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
                        return set_error(err, errlen, -errno, "cannot switch to user '%s': %m", user);
                /* Make sure there is no way back. */
                if (setresuid(0, 0, 0) == 0 || geteuid() == 0 || getegid() == 0)
                        return set_error(err, errlen, -EPERM, "still able to regain root after switching to '%s'",
                                         user);
                switched = 1;
        }
        /* Whatever uid we run as: no capabilities left in any set. */
        cap_t caps = cap_init();
        if (!caps)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        int r = cap_set_proc(caps);
        cap_free(caps);
        if (r < 0)
                return set_error(err, errlen, -errno, "cannot clear capabilities: %m");
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return set_error(err, errlen, -errno, "cannot set no_new_privs: %m");
        return switched;
}
