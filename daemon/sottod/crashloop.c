/* SPDX-License-Identifier: MIT */
#include "daemon/sottod/crashloop.h"

void crashloop_reset(crashloop *c) {
        *c = (crashloop){};
}

bool crashloop_record(crashloop *c, uint64_t now_usec) {
        c->times[c->head] = now_usec;
        c->head = (c->head + 1) % CRASHLOOP_BURST;
        if (c->n < CRASHLOOP_BURST)
                c->n++;
        if (c->n < CRASHLOOP_BURST)
                return false;
        /* head now points at the oldest of the last BURST crashes. */
        uint64_t oldest = c->times[c->head];
        return now_usec - oldest < CRASHLOOP_INTERVAL_USEC;
}
