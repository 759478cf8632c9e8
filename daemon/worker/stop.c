/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "daemon/worker/stop.h"
#include "macro.h"

size_t stop_scan(const char *text, size_t len, size_t emitted, char *const *stop, uint32_t n_stop, bool *hit) {
        size_t maxlen = 0, first = SIZE_MAX, hold = 0;

        *hit = false;
        if (emitted >= len)
                return 0;
        for (uint32_t i = 0; i < n_stop; i++)
                maxlen = MAX(maxlen, strlen(stop[i]));
        if (maxlen == 0)
                return len - emitted;
        /* Only a stop string overlapping the new text can be new. */
        size_t from = emitted >= maxlen - 1 ? emitted - (maxlen - 1) : 0;
        for (uint32_t i = 0; i < n_stop; i++) {
                size_t n = strlen(stop[i]);
                const char *p = n ? memmem(text + from, len - from, stop[i], n) : NULL;
                if (p && (size_t)(p - text) < first)
                        first = (size_t)(p - text);
        }
        if (first != SIZE_MAX) {
                *hit = true;
                return first > emitted ? first - emitted : 0;
        }
        /* Hold back the longest tail that is a proper prefix of a stop string. */
        for (uint32_t i = 0; i < n_stop; i++) {
                size_t n = strlen(stop[i]);
                for (size_t k = MIN(n - 1, len - emitted); k > hold; k--)
                        if (memcmp(text + len - k, stop[i], k) == 0) {
                                hold = k;
                                break;
                        }
        }
        return len - emitted - hold;
}
