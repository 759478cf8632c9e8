/* SPDX-License-Identifier: MIT */
/* The admin commands of sotto(1): usage and quota (sotto-cli-admin.c). */
#pragma once

#include <stdbool.h>

#include "client-lib/sotto.h"

/* Reports a failed call (as sotto-cli.c does) and returns the exit code. */
typedef int (*cli_report_error_t)(const sd_bus_error *e, int r, const char *what);

int cli_usage(sotto *s, bool all, bool json, cli_report_error_t report);
int cli_quota(sotto *s, int argc, char **argv, bool json, cli_report_error_t report);
