/* SPDX-License-Identifier: MIT */
/* sotto.conf(5): the main file, then FILE.d/ *.conf drop-ins in lexical
 * order.  A small strict ini reader: every error names file:line and a
 * reason, unknown sections and keys are errors, and a set that has any error
 * is refused as a whole (at start sottod stops; on reload the last good
 * configuration stays). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "daemon/sottod/manager.h"
#include "daemon/sottod/quota.h"

typedef struct AppLimits {
        char *app_id;
        QuotaLimits limits;
} AppLimits;

/* [Defaults] and [App <AppID>] */
typedef struct QuotaConfig {
        QuotaLimits defaults;
        AppLimits *apps;
        size_t n_apps;
} QuotaConfig;

void quota_config_init(QuotaConfig *q); /* the built-in defaults: no limits, interactive */
void quota_config_done(QuotaConfig *q);
/* The limits for app_id: [Defaults] with its [App] section on top. */
void quota_config_lookup(const QuotaConfig *q, const char *app_id, QuotaLimits *ret);
/* Sets one key for one application (or the defaults, app_id NULL), as
 * SetQuota does; -EINVAL with a sentence in err for a bad key or value. */
int quota_config_set(QuotaConfig *q, const char *app_id, const char *key, const char *value, char *err,
                     size_t errlen);

int parse_u32(const char *s, uint32_t max, uint32_t *ret);

/* A deep copy: dst gets src's values and its own copy of every owned string
 * (dst is overwritten, not freed; on -ENOMEM it is left empty). */
int manager_config_copy(ManagerConfig *dst, const ManagerConfig *src);
/* Frees the owned strings and empties c. */
void manager_config_done(ManagerConfig *c);

/* One file's text.  name is used in messages ("name:line: reason").  On
 * error err holds that message and *c / *q may be partly changed: callers
 * parse into copies. */
int config_parse(const char *text, size_t len, const char *name, ManagerConfig *c, QuotaConfig *q, char *err,
                 size_t errlen);
/* file (must exist), then dir (default: "<file>.d"; may be missing). */
int config_load_all(const char *file, const char *dir, ManagerConfig *c, QuotaConfig *q, char *err, size_t errlen);

/* Start-up compatibility: file plus its drop-ins into c and, if q, q. */
int config_load(ManagerConfig *c, const char *path);
