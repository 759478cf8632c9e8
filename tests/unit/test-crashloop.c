/* SPDX-License-Identifier: MIT */
/* The worker crash-loop limit: 5 crashes within 60 s stop the restarts;
 * crashes spread out do not.  The clock is injected. */
#include "daemon/sottod/crashloop.h"
#include "test.h"

#define S 1000000ull

int main(void) {
        crashloop c;
        crashloop_reset(&c);
        /* Four quick crashes are tolerated, the fifth within a minute is not. */
        CHECK(!crashloop_record(&c, 100 * S));
        CHECK(!crashloop_record(&c, 101 * S));
        CHECK(!crashloop_record(&c, 102 * S));
        CHECK(!crashloop_record(&c, 103 * S));
        CHECK(crashloop_record(&c, 159 * S));

        /* One every 15 s: the last five span 60 s, not less: keep going. */
        crashloop_reset(&c);
        for (int i = 0; i < 20; i++)
                CHECK(!crashloop_record(&c, (uint64_t)i * 15 * S));

        /* A burst after a long quiet time counts only the burst. */
        crashloop_reset(&c);
        CHECK(!crashloop_record(&c, 0));
        CHECK(!crashloop_record(&c, 1 * S));
        CHECK(!crashloop_record(&c, 1000 * S));
        CHECK(!crashloop_record(&c, 1001 * S));
        CHECK(!crashloop_record(&c, 1002 * S));
        CHECK(!crashloop_record(&c, 1003 * S)); /* only 4 in the last minute + 1 at 1 s */
        CHECK(crashloop_record(&c, 1004 * S));
        return 0;
}
