/* SPDX-License-Identifier: MIT */
/* For libsotto: a connection to the caller's own PipeWire, to be handed to
 * sotto-capture (which attaches with pw_context_connect_fd).  It runs in the
 * caller, with the caller's rights; no PipeWire library is needed. */
#pragma once

#include <stddef.h>

/* Connects to $PIPEWIRE_RUNTIME_DIR or $XDG_RUNTIME_DIR (in that order) /
 * $PIPEWIRE_REMOTE or "pipewire-0"; runtime_dir, when not NULL, overrides
 * the environment.  Returns the connected fd (close-on-exec) or -errno with
 * a sentence in err. */
int capture_connect_pipewire(const char *runtime_dir, char *err, size_t errlen);
