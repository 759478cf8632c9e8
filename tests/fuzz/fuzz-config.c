/* SPDX-License-Identifier: MIT */
/* libFuzzer harness for the sotto.conf reader: any bytes either parse or
 * are refused with a "name:line: reason" message; a file that parses gives
 * limits within their documented ranges and can be looked up and changed
 * with SetQuota's function.  Seeds: tests/fuzz/corpus/config/. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/sottod/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ManagerConfig c = { .max_active = 8 };
        QuotaConfig q;
        char err[1024] = "";

        quota_config_init(&q);
        int r = config_parse((const char *)data, size, "f.conf", &c, &q, err, sizeof err);
        if (r < 0) {
                if (r != -ENOMEM && strncmp(err, "f.conf:", 7) != 0)
                        abort(); /* every refusal names file:line */
        } else {
                if (c.max_active > 256 || c.n_threads > 1024 || c.n_ctx > (1u << 20))
                        abort();
                for (size_t i = 0; i <= q.n_apps; i++) {
                        QuotaLimits l;
                        quota_config_lookup(&q, i < q.n_apps ? q.apps[i].app_id : NULL, &l);
                        for (int k = 0; k < _QUOTA_KIND_MAX; k++)
                                if (l.rate[k] > QUOTA_RATE_MAX)
                                        abort();
                        if (l.priority < 0 || l.priority >= _PRIORITY_MAX)
                                abort();
                }
                if (q.n_apps > 0 &&
                    quota_config_set(&q, q.apps[0].app_id, "GeneratedTokensPerMinute", "5", err, sizeof err) < 0)
                        abort();
        }
        /* What ReloadConfig does with the result: a deep copy, both freed
         * (ASan finds a string shared or lost). */
        ManagerConfig copy;
        if (manager_config_copy(&copy, &c) >= 0) {
                if ((c.model_path && (copy.model_path == c.model_path || strcmp(copy.model_path, c.model_path))) ||
                    copy.max_active != c.max_active)
                        abort();
                manager_config_done(&copy);
        }
        manager_config_done(&c);
        quota_config_done(&q);
        return 0;
}
