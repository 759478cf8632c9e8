/* SPDX-License-Identifier: MIT */
#pragma once
/* Is a well-known name on this bus, owned now or activatable?  Shared by
 * libsotto (is sottod there?) and the CLI (is a screenshot portal there?). */
#include <stdbool.h>
#include <systemd/sd-bus.h>

bool bus_name_available(sd_bus *bus, const char *name);
