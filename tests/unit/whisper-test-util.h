/* SPDX-License-Identifier: MIT */
/* Shared by the Whisper tests: random-weight models made with
 * sotto-mkwhisper into a temporary directory. */
#pragma once

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

extern char **environ;

static inline const char *wt_build_dir(void) {
        const char *b = getenv("BUILD");
        return b && *b ? b : "build";
}

static inline char *wt_tmpdir(void) {
        static char dir[] = "/tmp/sotto-whisper-test-XXXXXX";
        static bool made;
        if (!made) {
                CHECK(mkdtemp(dir));
                made = true;
        }
        return dir;
}

static inline void wt_cleanup_tmpdir(void) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", wt_tmpdir());
        (void)!system(cmd);
}

/* Run sotto-mkwhisper with the given arguments (NULL-terminated) writing
 * to tmpdir/name; returns the path (static storage per call site is the
 * caller's business: it is malloc'ed).  Skips the test if the tool is
 * missing. */
static inline char *wt_make_model(const char *name, const char *const *args) {
        char tool[512], *path = NULL;
        const char *argv[32];
        int n = 0, status;
        pid_t pid;

        snprintf(tool, sizeof tool, "%s/sotto-mkwhisper", wt_build_dir());
        if (access(tool, X_OK) < 0) {
                printf("skipped: %s not built\n", tool);
                exit(EXIT_TEST_SKIP);
        }
        CHECK(asprintf(&path, "%s/%s", wt_tmpdir(), name) > 0);
        argv[n++] = tool;
        for (; *args && n < 28; args++)
                argv[n++] = *args;
        argv[n++] = "-o";
        argv[n++] = path;
        argv[n] = NULL;
        CHECK(posix_spawn(&pid, tool, NULL, NULL, (char *const *)argv, environ) == 0);
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sotto-mkwhisper failed for %s", name);
        return path;
}
