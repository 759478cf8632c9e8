/* SPDX-License-Identifier: MIT */
/* sottod's settings file: "Key = value" lines, '#' and ';' comments,
 * [Section] headers ignored.  Issue 4 replaces this with the full
 * sotto.conf (inih, drop-ins, quotas); these keys stay valid there.  A file
 * with an error is refused as a whole, with file:line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/config.h"
#include "daemon/sottod/log.h"

int parse_u32(const char *s, uint32_t max, uint32_t *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || end == s || *end || *s == '-' || v > max)
                return -EINVAL;
        *ret = (uint32_t)v;
        return 0;
}

static int config_apply(ManagerConfig *c, const char *key, const char *value) {
        if (STREQ(key, "Model")) {
                char *p = strdup(value);
                if (!p)
                        return -ENOMEM;
                free(c->model_path);
                c->model_path = p;
                return 0;
        }
        if (STREQ(key, "ContextSize"))
                return parse_u32(value, 1u << 20, &c->n_ctx);
        if (STREQ(key, "Threads"))
                return parse_u32(value, 1024, &c->n_threads);
        if (STREQ(key, "MaxActive"))
                return parse_u32(value, 256, &c->max_active);
        if (STREQ(key, "MaxRequestsPerCaller"))
                return parse_u32(value, 100000, &c->max_per_caller);
        return -ENOENT;
}

int config_load(ManagerConfig *c, const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char line[4096];
        unsigned n = 0;
        if (!f)
                return log_error_errno(-errno, "cannot read %s: %m", path);
        while (fgets(line, sizeof line, f)) {
                n++;
                char *s = line + strspn(line, " \t");
                s[strcspn(s, "\r\n")] = 0;
                if (!*s || *s == '#' || *s == ';' || *s == '[')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq)
                        return log_error_errno(-EINVAL, "%s:%u: expected key = value", path, n);
                char *k = s, *v = eq + 1, *e = eq;
                while (e > k && (e[-1] == ' ' || e[-1] == '\t'))
                        e--;
                *e = 0;
                v += strspn(v, " \t");
                int r = config_apply(c, k, v);
                if (r == -ENOENT)
                        log_warning("%s:%u: unknown key '%s', ignored", path, n, k);
                else if (r < 0)
                        return log_error_errno(r, "%s:%u: bad value for %s", path, n, k);
        }
        return 0;
}

