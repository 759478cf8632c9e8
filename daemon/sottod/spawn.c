/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "daemon/sottod/spawn.h"

#define SPAWN_MAX_FDS 7 /* fds 3 to 9; the copies go above them */

_Noreturn void spawn_exec_child(const int *fds, size_t n_fds, const char *path, char *const argv[]) {
        int tmp[SPAWN_MAX_FDS];
        sigset_t all;

        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_DFL);
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (n_fds > SPAWN_MAX_FDS)
                _exit(126);
        /* All are copied above 9 first, so that no dup2 overwrites a source
         * not yet placed. */
        for (size_t i = 0; i < n_fds; i++) {
                tmp[i] = fds[i] >= 0 ? fcntl(fds[i], F_DUPFD, 10) : -1;
                if (fds[i] >= 0 && tmp[i] < 0)
                        _exit(126);
        }
        for (size_t i = 0; i < n_fds; i++) {
                if (tmp[i] >= 0 && dup2(tmp[i], 3 + (int)i) < 0)
                        _exit(126);
                if (tmp[i] < 0)
                        close(3 + (int)i);
        }
        close_range(3 + (unsigned)n_fds, ~0U, 0);
        execv(path, argv);
        fprintf(stderr, "sottod: cannot execute %s: %m\n", path);
        _exit(127);
}
