/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/capture/capture-connect.h"
#include "macro.h"

int capture_connect_pipewire(const char *runtime_dir, char *err, size_t errlen) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *name = getenv("PIPEWIRE_REMOTE");
        _cleanup_close_ int fd = -1;
        int n;

        if (!name || !*name)
                name = "pipewire-0";
        if (name[0] == '/')
                n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", name);
        else {
                if (!runtime_dir)
                        runtime_dir = getenv("PIPEWIRE_RUNTIME_DIR");
                if (!runtime_dir || !*runtime_dir)
                        runtime_dir = getenv("XDG_RUNTIME_DIR");
                if (!runtime_dir || !*runtime_dir)
                        return set_error(err, errlen, -ENOENT, "no XDG_RUNTIME_DIR: cannot find the PipeWire socket");
                n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", runtime_dir, name);
        }
        if (n < 0 || (size_t) n >= sizeof(sa.sun_path))
                return set_error(err, errlen, -ENAMETOOLONG, "PipeWire socket path too long");
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return set_error(err, errlen, -errno, "socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return set_error(err, errlen, -errno, "cannot connect to PipeWire at %s: %s", sa.sun_path,
                                 strerror(errno));
        return TAKE_FD(fd);
}
