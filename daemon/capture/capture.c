/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <unistd.h>

#include "daemon/capture/capture.h"

const char *capture_stop_name(enum capture_stop s) {
        switch (s) {
        case CAPTURE_RUNNING: return "running";
        case CAPTURE_STOPPED: return "stopped";
        case CAPTURE_ERROR: return "error";
        case CAPTURE_READER_CLOSED: return "reader-closed";
        case CAPTURE_SOURCE_VANISHED: return "source-vanished";
        case CAPTURE_DISCONNECTED: return "disconnected";
        }
        return "unknown";
}

void capture_report(int fd, enum capture_stop s, const char *detail) {
        char line[512];
        int n;

        if (detail && *detail)
                n = snprintf(line, sizeof(line), "sotto-capture: stop: %s: %s\n", capture_stop_name(s), detail);
        else
                n = snprintf(line, sizeof(line), "sotto-capture: stop: %s\n", capture_stop_name(s));
        if (n > (int) sizeof(line) - 1)
                n = sizeof(line) - 1;
        if (n > 0 && write(fd, line, (size_t) n) < 0)
                return;
}
