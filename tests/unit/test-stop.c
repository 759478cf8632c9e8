/* SPDX-License-Identifier: MIT */
/* Stop strings over streamed text: nothing after a stop string is handed
 * out, and a possible beginning of one is held back until it is decided. */
#include <string.h>

#include "daemon/worker/stop.h"
#include "test.h"

/* Feeds text one byte at a time, as tokens would come, and returns what is
 * handed out. */
static const char *stream(const char *text, char *const *stop, uint32_t n, bool *hit) {
        static char out[256];
        size_t emitted = 0, len = strlen(text);
        *hit = false;
        for (size_t i = 1; i <= len && !*hit; i++) {
                size_t k = stop_scan(text, i, emitted, stop, n, hit);
                CHECK(emitted + k <= i);
                emitted += k;
        }
        if (!*hit)
                emitted = len; /* the end: what was held back is given out */
        memcpy(out, text, emitted);
        out[emitted] = 0;
        return out;
}

int main(void) {
        char *stops[] = { "\n\n", "The end" };
        bool hit;
        CHECK(!strcmp(stream("Once upon a time.\n\nNext", stops, 2, &hit), "Once upon a time.") && hit);
        CHECK(!strcmp(stream("They lived. The end. Really", stops, 2, &hit), "They lived. ") && hit);
        CHECK(!strcmp(stream("The en", stops, 2, &hit), "The en") && !hit);
        CHECK(!strcmp(stream("no stop here\n", stops, 2, &hit), "no stop here\n") && !hit);
        CHECK(!strcmp(stream("abc", NULL, 0, &hit), "abc") && !hit);
        /* Held back while undecided. */
        size_t k = stop_scan("Hello The e", 11, 0, stops, 2, &hit);
        CHECK_EQ_INT(k, 6);
        CHECK(!hit);
        /* A stop string right at the start. */
        k = stop_scan("The end", 7, 0, stops, 2, &hit);
        CHECK(hit && k == 0);
        return 0;
}
