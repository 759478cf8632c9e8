/* SPDX-License-Identifier: MIT */
/* Stands in for libsotto in the capture tests: opens the caller's PipeWire
 * connection with capture_connect_pipewire() and runs sotto-capture on it.
 *
 * usage: capture-run RUNTIME_DIR SOTTO-CAPTURE [ARGS...]
 * (--pipewire-fd N is appended; RUNTIME_DIR "" means the environment's). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/capture/capture-connect.h"

int main(int argc, char **argv) {
        char err[256], fdarg[16];
        char *args[64];
        int fd, n = 0;

        if (argc < 3 || argc > 60) {
                fprintf(stderr, "usage: capture-run RUNTIME_DIR SOTTO-CAPTURE [ARGS...]\n");
                return 2;
        }
        fd = capture_connect_pipewire(argv[1][0] ? argv[1] : NULL, err, sizeof(err));
        if (fd < 0) {
                fprintf(stderr, "capture-run: %s\n", err);
                return 2;
        }
        /* The fd is handed on, as sottod will hand it on from the bus. */
        fd = dup(fd);
        snprintf(fdarg, sizeof(fdarg), "%d", fd);
        for (int i = 2; i < argc; i++)
                args[n++] = argv[i];
        args[n++] = (char *) "--pipewire-fd";
        args[n++] = fdarg;
        args[n] = NULL;
        execv(args[0], args);
        perror("capture-run: execv");
        return 2;
}
