/* SPDX-License-Identifier: MIT */
/* Why sotto-capture ended: its exit code and the word on its status line
 * "sotto-capture: stop: WORD[: detail]". */
#pragma once

enum capture_stop {
        CAPTURE_RUNNING = -1,
        CAPTURE_STOPPED = 0,            /* SIGTERM/SIGINT or the control fd */
        CAPTURE_ERROR = 1,              /* bad arguments or set-up failure */
        CAPTURE_READER_CLOSED = 10,     /* the output pipe's reader left */
        CAPTURE_SOURCE_VANISHED = 11,   /* the source node was removed */
        CAPTURE_DISCONNECTED = 12,      /* the PipeWire connection died */
};

const char *capture_stop_name(enum capture_stop s);
/* Writes the status line to fd (one write, so it stays whole). */
void capture_report(int fd, enum capture_stop s, const char *detail);
