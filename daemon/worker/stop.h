/* SPDX-License-Identifier: MIT */
/* Stop strings over streamed text: what may be handed out now, and what must
 * be held back because it could be the start of a stop string. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* text[0..len) is everything generated so far, text[0..emitted) was already
 * handed out.  Returns how many bytes after emitted can be handed out now;
 * *hit is set when a stop string occurs, and the count then ends right
 * before its first occurrence. */
size_t stop_scan(const char *text, size_t len, size_t emitted, char *const *stop, uint32_t n_stop, bool *hit);
