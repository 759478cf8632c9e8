/* SPDX-License-Identifier: MIT */
/* The caller of dictate-cancel.sh: transcribes FILE through libsotto and,
 * at the Nth Final, cancels (MODE cancel) or leaves the bus at once (MODE
 * leave: _exit, the connection closes); MODE none runs to the end.
 *
 *   dictate-cancel ADDRESS FILE none|cancel|leave N
 *
 * Prints "final I compute-ms C at-ms T" for each Final, "cancel at-ms T",
 * and "ended REASON ERROR at-ms T after-cancel-ms D" (times from the
 * start, on the monotonic clock). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client-lib/sotto.h"

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double t_start, t_cancel = -1;
static const char *mode;
static int at, n_finals;

static int on_text(sotto_dictation *d, const sotto_hypothesis *h, void *userdata) {
        if (!h->final)
                return 0;
        n_finals++;
        printf("final %d compute-ms %.1f at-ms %.1f\n", n_finals, h->compute_usec / 1e3, now_ms() - t_start);
        fflush(stdout);
        if (n_finals != at)
                return 0;
        if (strcmp(mode, "leave") == 0) {
                printf("leaving at-ms %.1f\n", now_ms() - t_start);
                fflush(stdout);
                _exit(0);
        }
        if (strcmp(mode, "cancel") == 0) {
                t_cancel = now_ms();
                printf("cancel at-ms %.1f\n", t_cancel - t_start);
                fflush(stdout);
                return -1;
        }
        return 0;
}

static void on_ended(sotto_dictation *d, const char *reason, const sd_bus_error *error, void *userdata) {
        double t = now_ms();
        printf("ended %s %s at-ms %.1f after-cancel-ms %.1f\n", reason, error ? error->name : "-", t - t_start,
               t_cancel >= 0 ? t - t_cancel : -1.0);
        fflush(stdout);
}

int main(int argc, char **argv) {
        sotto *s = NULL;
        sotto_dictation *d = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sotto_speech_options o;

        if (argc != 5) {
                fprintf(stderr, "usage: dictate-cancel ADDRESS FILE none|cancel|leave N\n");
                return 2;
        }
        mode = argv[3];
        at = atoi(argv[4]);
        int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        if (fd < 0 || sotto_connect_address(argv[1], &s) < 0) {
                fprintf(stderr, "dictate-cancel: cannot open %s or connect\n", argv[2]);
                return 1;
        }
        sotto_speech_options_init(&o);
        t_start = now_ms();
        if (sotto_transcribe_start(s, fd, &o, on_text, on_ended, NULL, &d, &error) < 0) {
                fprintf(stderr, "dictate-cancel: %s\n", error.message ? error.message : "cannot start");
                return 1;
        }
        close(fd);
        (void)sotto_dictation_wait(d, NULL, &error);
        sd_bus_error_free(&error);
        sotto_dictation_free(d);
        sotto_unref(s);
        return 0;
}
