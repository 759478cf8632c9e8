/* SPDX-License-Identifier: MIT */
/* The worker's seccomp filter, installed once the model is mapped: from then
 * on the process can compute, allocate, map anonymous memory, run threads
 * and talk over the fds it already has, and nothing else of note.  It cannot
 * open a path, create or connect a socket, execute a program, trace another
 * process or change the file system.  The filter covers every thread
 * (TSYNC), including the engine's thread pool started during set-up. */
#pragma once

#include <stddef.h>

int sandbox_apply(char *err, size_t errlen);
