/* SPDX-License-Identifier: MIT */
/* Dropping privileges for real: when running as root, switch to an
 * unprivileged user (groups, gid, uid, all three ids each), empty the
 * capability bounding set, and set no_new_privs so nothing exec'd later can
 * gain privileges back.  As an ordinary user only no_new_privs is set. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* 1: switched to user, 0: not root so nothing to switch (no_new_privs set),
 * -errno with a sentence on failure (the caller must not go on). */
int privs_drop(const char *user, char *err, size_t errlen);
