/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/sottod/log.h"

static int max_level = LOG_INFO;

void log_set_max_level(int level) {
        max_level = level;
}

static void log_va(int level, int r, const char *fmt, va_list ap) {
        static int journal = -1;
        char buf[1024];

        if (journal < 0)
                journal = getenv("JOURNAL_STREAM") != NULL;
        if (r < 0)
                errno = -r; /* for %m */
        vsnprintf(buf, sizeof buf, fmt, ap);
        if (journal)
                fprintf(stderr, "<%d>%s\n", level, buf);
        else
                fprintf(stderr, "sottod: %s\n", buf);
}

int log_full(int level, const char *fmt, ...) {
        if (level > max_level)
                return 0;
        va_list ap;
        va_start(ap, fmt);
        log_va(level, 0, fmt, ap);
        va_end(ap);
        return 0;
}

int log_full_errno(int level, int r, const char *fmt, ...) {
        if (level <= max_level) {
                va_list ap;
                va_start(ap, fmt);
                log_va(level, r, fmt, ap);
                va_end(ap);
        }
        return r < 0 ? r : -r;
}
