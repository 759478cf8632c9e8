/* SPDX-License-Identifier: MIT */
/* The child side of sottod's helpers (sotto-worker, sotto-capture), after
 * fork(). */
#pragma once

#include <stddef.h>

/* In a freshly forked child: default signal mask and SIGPIPE, killed when
 * sottod dies, fds[i] placed on fd 3 + i (-1: that fd stays closed), every
 * other fd from 3 up closed, then path executed.  Never returns: exit
 * status 126 when the fds cannot be placed, 127 when exec fails. */
_Noreturn void spawn_exec_child(const int *fds, size_t n_fds, const char *path, char *const argv[]);
