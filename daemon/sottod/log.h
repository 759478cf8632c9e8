/* SPDX-License-Identifier: MIT */
/* Logging to stderr; under systemd stderr is the journal, and the <N>
 * prefix gives each line its priority.  Prompts and answers are never
 * logged. */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

void log_set_max_level(int level);
_printf_(2, 3) int log_full(int level, const char *fmt, ...);
/* Logs and returns r (a -errno), in one statement. */
_printf_(3, 4) int log_full_errno(int level, int r, const char *fmt, ...);

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_error_errno(r, ...) log_full_errno(LOG_ERR, r, __VA_ARGS__)
#define log_warning_errno(r, ...) log_full_errno(LOG_WARNING, r, __VA_ARGS__)
