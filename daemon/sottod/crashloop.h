/* SPDX-License-Identifier: MIT */
/* When to stop restarting a crashing worker: CRASHLOOP_BURST crashes within
 * CRASHLOOP_INTERVAL.  A pure function of the recorded times and the clock
 * (injected), so tests drive time. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define CRASHLOOP_BURST 5
#define CRASHLOOP_INTERVAL_USEC (60u * 1000000u)

typedef struct crashloop {
        uint64_t times[CRASHLOOP_BURST]; /* ring of the last crash times */
        unsigned n;                      /* crashes recorded, saturating at BURST */
        unsigned head;
} crashloop;

/* Records a crash at now; true when it is the BURST-th within the interval,
 * i.e. the worker must not be restarted again. */
bool crashloop_record(crashloop *c, uint64_t now_usec);
void crashloop_reset(crashloop *c);
