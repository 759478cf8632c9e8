/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

#include "daemon/sottod/manager.h"

int parse_u32(const char *s, uint32_t max, uint32_t *ret);
/* Applies FILE's settings to *c; on any error *c may be partly changed,
 * so callers load into a copy. */
int config_load(ManagerConfig *c, const char *path);
