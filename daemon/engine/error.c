/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include "macro.h"

int set_error(char *err, size_t errlen, int r, const char *fmt, ...) {
        if (err && errlen > 0) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return r < 0 ? r : -r;
}
