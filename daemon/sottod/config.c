/* SPDX-License-Identifier: MIT */
/* sotto.conf(5) reader.  Format (strict on purpose: a typo in a quota must
 * not silently mean "no quota"):
 *   - lines end in \n (a \r before it is dropped); leading and trailing
 *     blanks are ignored; empty lines and lines starting with # or ; are
 *     comments (there are no comments after a value);
 *   - [Daemon], [Defaults], [App <AppID>] open a section; keys before any
 *     section belong to [Daemon] (files written before sections existed);
 *   - Key = Value, Key made of letters and digits; a later value wins.
 * Not inih: its continuation lines (any indented line continues the last
 * value) and its fixed line buffer (a long line is split silently) do not
 * give the "error at file:line, nothing applied" behaviour wanted here. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/config.h"
#include "daemon/sottod/log.h"

#define CONFIG_MAX_FILE (1u << 20)
#define CONFIG_MAX_APPS 4096u

static int parse_u64(const char *s, uint64_t max, uint64_t *ret) {
        char *end;
        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || *end || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_u32(const char *s, uint32_t max, uint32_t *ret) {
        uint64_t v;
        int r = parse_u64(s, max, &v);
        if (r < 0)
                return r;
        *ret = (uint32_t)v;
        return 0;
}

/* ---- the manager's settings ---- */

/* The owned strings of a ManagerConfig: a new one goes here, and copy and
 * done follow. */
#define CONFIG_STRINGS(c) \
        { &(c)->model_path, &(c)->config_path, &(c)->config_dir, &(c)->worker_path, &(c)->whisper_model_path, \
          &(c)->user, &(c)->mmproj_path }

void manager_config_done(ManagerConfig *c) {
        char **strs[] = CONFIG_STRINGS(c);
        for (size_t i = 0; i < ELEMENTSOF(strs); i++)
                free(*strs[i]);
        *c = (ManagerConfig) {};
}

int manager_config_copy(ManagerConfig *dst, const ManagerConfig *src) {
        *dst = *src;
        char **strs[] = CONFIG_STRINGS(dst);
        for (size_t i = 0; i < ELEMENTSOF(strs); i++)
                *strs[i] = NULL;
        /* The same strings in src, in the same order. */
        char *const *from[] = CONFIG_STRINGS(src);
        for (size_t i = 0; i < ELEMENTSOF(strs); i++)
                if (*from[i] && !(*strs[i] = strdup(*from[i]))) {
                        manager_config_done(dst);
                        return -ENOMEM;
                }
        return 0;
}

/* ---- quota configuration ---- */

void quota_config_init(QuotaConfig *q) {
        *q = (QuotaConfig){ .defaults = { .priority = PRIORITY_INTERACTIVE } };
}

void quota_config_done(QuotaConfig *q) {
        for (size_t i = 0; i < q->n_apps; i++)
                free(q->apps[i].app_id);
        free(q->apps);
        quota_config_init(q);
}

static AppLimits *find_app(const QuotaConfig *q, const char *app_id) {
        for (size_t i = 0; i < q->n_apps; i++)
                if (STREQ(q->apps[i].app_id, app_id))
                        return &q->apps[i];
        return NULL;
}

static int get_app(QuotaConfig *q, const char *app_id, QuotaLimits **ret) {
        AppLimits *a = find_app(q, app_id);
        if (!a) {
                if (q->n_apps >= CONFIG_MAX_APPS)
                        return -E2BIG;
                AppLimits *n = realloc(q->apps, (q->n_apps + 1) * sizeof *n);
                if (!n)
                        return -ENOMEM;
                q->apps = n;
                a = &q->apps[q->n_apps];
                *a = (AppLimits){ .app_id = strdup(app_id) };
                if (!a->app_id)
                        return -ENOMEM;
                q->n_apps++;
        }
        *ret = &a->limits;
        return 0;
}

void quota_config_lookup(const QuotaConfig *q, const char *app_id, QuotaLimits *ret) {
        *ret = q->defaults;
        AppLimits *a = app_id ? find_app(q, app_id) : NULL;
        if (a)
                quota_limits_merge(ret, &a->limits);
}

/* One quota key into l; -ENOENT unknown key, -EINVAL bad value (err says why). */
static int quota_apply(QuotaLimits *l, const char *key, const char *value, char *err, size_t errlen) {
        static const struct {
                const char *key;
                QuotaKind kind;
        } rates[] = {
                { "PromptTokensPerMinute", QUOTA_PROMPT_TOKENS },
                { "GeneratedTokensPerMinute", QUOTA_GENERATED_TOKENS },
                { "AudioSecondsPerHour", QUOTA_AUDIO_SECONDS },
                { "ImagesPerHour", QUOTA_IMAGES },
        };
        const char *v = STREQ(value, "unlimited") ? "0" : value;

        for (size_t i = 0; i < ELEMENTSOF(rates); i++)
                if (STREQ(key, rates[i].key)) {
                        if (parse_u64(v, QUOTA_RATE_MAX, &l->rate[rates[i].kind]) < 0)
                                goto bad_number;
                        l->set |= QUOTA_SET_RATE0 << rates[i].kind;
                        return 0;
                }
        if (STREQ(key, "MaxConcurrentRequests")) {
                if (parse_u32(v, 100000, &l->max_concurrent) < 0)
                        goto bad_number;
                l->set |= QUOTA_SET_MAX_CONCURRENT;
                return 0;
        }
        if (STREQ(key, "MaxPromptTokens")) {
                if (parse_u32(v, 1u << 24, &l->max_prompt_tokens) < 0)
                        goto bad_number;
                l->set |= QUOTA_SET_MAX_PROMPT;
                return 0;
        }
        if (STREQ(key, "MaxAnswerTokens")) {
                if (parse_u32(v, 1u << 24, &l->max_answer_tokens) < 0)
                        goto bad_number;
                l->set |= QUOTA_SET_MAX_ANSWER;
                return 0;
        }
        if (STREQ(key, "Priority")) {
                if (priority_from_string(value, &l->priority) < 0) {
                        snprintf(err, errlen, "Priority must be interactive, background or idle, not '%s'", value);
                        return -EINVAL;
                }
                l->set |= QUOTA_SET_PRIORITY;
                return 0;
        }
        snprintf(err, errlen, "unknown key '%s'", key);
        return -ENOENT;

bad_number:
        snprintf(err, errlen, "%s must be a whole number (0 or \"unlimited\": no limit), not '%s'", key, value);
        return -EINVAL;
}

int quota_config_set(QuotaConfig *q, const char *app_id, const char *key, const char *value, char *err,
                     size_t errlen) {
        QuotaLimits *l = &q->defaults, tmp;
        int r;
        if (app_id) {
                r = get_app(q, app_id, &l);
                if (r < 0) {
                        snprintf(err, errlen, "too many applications");
                        return r;
                }
        }
        tmp = *l;
        r = quota_apply(&tmp, key, value, err, errlen);
        if (r < 0)
                return -EINVAL;
        *l = tmp;
        return 0;
}

/* ---- [Daemon] ---- */

/* An optional file: empty means none. */
static int set_optional_path(char **dst, const char *value) {
        char *p = NULL;
        if (*value) {
                p = strdup(value);
                if (!p)
                        return -ENOMEM;
        }
        free(*dst);
        *dst = p;
        return 0;
}

static int daemon_apply(ManagerConfig *c, const char *key, const char *value, char *err, size_t errlen) {
        int r;
        if (STREQ(key, "Model")) {
                if (!*value) {
                        snprintf(err, errlen, "Model= needs a path");
                        return -EINVAL;
                }
                char *p = strdup(value);
                if (!p)
                        return -ENOMEM;
                free(c->model_path);
                c->model_path = p;
                return 0;
        }
        if (STREQ(key, "WhisperModel"))
                /* Speech recognition (bus-dictation.c); read at start. */
                return set_optional_path(&c->whisper_model_path, value);
        if (STREQ(key, "VisionModel"))
                /* Empty: no vision projector. */
                return set_optional_path(&c->mmproj_path, value);
        uint32_t secs;
        if (STREQ(key, "MaxImageBytes"))
                r = parse_u32(value, WIRE_MAX_IMAGE, &c->max_image_bytes);
        else if (STREQ(key, "ImageTimeoutSec")) {
                r = parse_u32(value, 3600, &secs);
                if (r >= 0)
                        c->image_timeout_usec = (uint64_t)MAX(secs, 1u) * 1000000u;
        } else if (STREQ(key, "ContextSize"))
                r = parse_u32(value, 1u << 20, &c->n_ctx);
        else if (STREQ(key, "Threads"))
                r = parse_u32(value, 1024, &c->n_threads);
        else if (STREQ(key, "MaxActive"))
                r = parse_u32(value, 256, &c->max_active);
        else if (STREQ(key, "MaxRequestsPerCaller"))
                r = parse_u32(value, 100000, &c->max_per_caller);
        else {
                snprintf(err, errlen, "unknown key '%s' in [Daemon]", key);
                return -ENOENT;
        }
        if (r < 0)
                snprintf(err, errlen, "bad value for %s: '%s' (a whole number)", key, value);
        return r;
}

/* ---- the reader ---- */

typedef enum Section { SECTION_DAEMON, SECTION_DEFAULTS, SECTION_APP } Section;

static bool blank(char ch) {
        return ch == ' ' || ch == '\t';
}

static int fail(char *err, size_t errlen, const char *name, unsigned line, int r, const char *fmt, ...) {
        char why[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        snprintf(err, errlen, "%s:%u: %s", name, line, why);
        return r;
}

int config_parse(const char *text, size_t len, const char *name, ManagerConfig *c, QuotaConfig *q, char *err,
                 size_t errlen) {
        Section section = SECTION_DAEMON;
        QuotaLimits *limits = NULL;
        _cleanup_free_ char *buf = NULL;
        unsigned line = 0;
        int r;

        if (len > CONFIG_MAX_FILE)
                return fail(err, errlen, name, 0, -EFBIG, "the file is larger than %u bytes", CONFIG_MAX_FILE);
        if (memchr(text, 0, len)) {
                const char *nul = memchr(text, 0, len);
                unsigned l = 1;
                for (const char *p = text; p < nul; p++)
                        l += *p == '\n';
                return fail(err, errlen, name, l, -EINVAL, "a NUL byte (not a text file?)");
        }
        buf = strndup(text, len);
        if (!buf)
                return -ENOMEM;
        if (!utf8_is_valid(buf, len))
                return fail(err, errlen, name, 0, -EINVAL, "not valid UTF-8");

        for (char *s = buf, *next; s; s = next) {
                char *nl = strchr(s, '\n');
                next = nl ? nl + 1 : NULL;
                if (nl)
                        *nl = 0;
                line++;
                /* trim */
                size_t n = strlen(s);
                if (n > 0 && s[n - 1] == '\r')
                        s[--n] = 0;
                while (blank(*s))
                        s++, n--;
                while (n > 0 && blank(s[n - 1]))
                        s[--n] = 0;
                if (n == 0 || *s == '#' || *s == ';')
                        continue;
                if (line == 1 && n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
                        return fail(err, errlen, name, line, -EINVAL, "a byte-order mark; save the file without one");

                if (*s == '[') {
                        if (s[n - 1] != ']')
                                return fail(err, errlen, name, line, -EINVAL, "a section header must end with ']'");
                        s[n - 1] = 0;
                        s++;
                        if (STREQ(s, "Daemon")) {
                                section = SECTION_DAEMON;
                                limits = NULL;
                        } else if (STREQ(s, "Defaults")) {
                                section = SECTION_DEFAULTS;
                                limits = &q->defaults;
                        } else if (!strncmp(s, "App", 3) && blank(s[3])) {
                                const char *app = s + 4;
                                while (blank(*app))
                                        app++;
                                if (!*app || strpbrk(app, " \t[]") || strlen(app) >= 4096)
                                        return fail(err, errlen, name, line, -EINVAL,
                                                    "[App <AppID>] needs one application ID (or executable path) "
                                                    "without blanks or brackets");
                                section = SECTION_APP;
                                r = get_app(q, app, &limits);
                                if (r < 0)
                                        return fail(err, errlen, name, line, r, "too many [App] sections");
                        } else
                                return fail(err, errlen, name, line, -EINVAL,
                                            "unknown section [%s] (known: [Daemon], [Defaults], [App <AppID>])", s);
                        continue;
                }

                char *eq = strchr(s, '=');
                if (!eq)
                        return fail(err, errlen, name, line, -EINVAL, "expected key = value or a [Section]");
                char *k = s, *v = eq + 1, *e = eq;
                while (e > k && blank(e[-1]))
                        e--;
                *e = 0;
                while (blank(*v))
                        v++;
                if (!*k)
                        return fail(err, errlen, name, line, -EINVAL, "expected key = value: the key is missing");
                for (const char *p = k; *p; p++)
                        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
                                return fail(err, errlen, name, line, -EINVAL,
                                            "expected key = value: '%.64s' is not a key (letters and digits)", k);
                char why[600] = "";
                if (section == SECTION_DAEMON)
                        r = daemon_apply(c, k, v, why, sizeof why);
                else
                        r = quota_apply(limits, k, v, why, sizeof why);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return fail(err, errlen, name, line, -EINVAL, "%s", why);
        }
        return 0;
}

static int read_file(const char *path, char **ret, size_t *ret_len) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        struct stat st;
        if (fstat(fileno(f), &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        if (st.st_size > CONFIG_MAX_FILE)
                return -EFBIG;
        char *b = malloc((size_t)st.st_size + 1);
        if (!b)
                return -ENOMEM;
        size_t n = fread(b, 1, (size_t)st.st_size + 1, f);
        if (ferror(f) || n > (size_t)st.st_size) {
                free(b);
                return ferror(f) ? -EIO : -EFBIG;
        }
        b[n] = 0;
        *ret = b;
        *ret_len = n;
        return 0;
}

static int load_one(const char *path, ManagerConfig *c, QuotaConfig *q, char *err, size_t errlen) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_file(path, &text, &len);
        if (r < 0) {
                snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-r));
                return r;
        }
        return config_parse(text, len, path, c, q, err, errlen);
}

static int by_name(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

int config_load_all(const char *file, const char *dir, ManagerConfig *c, QuotaConfig *q, char *err, size_t errlen) {
        _cleanup_free_ char *dflt = NULL;
        int r = 0;

        if (file) {
                r = load_one(file, c, q, err, errlen);
                if (r < 0)
                        return r;
        }
        if (!dir) {
                if (!file || asprintf(&dflt, "%s.d", file) < 0)
                        return file ? -ENOMEM : 0;
                dir = dflt;
        }
        struct dirent **list = NULL;
        int n = scandir(dir, &list, NULL, by_name);
        if (n < 0) {
                if (errno == ENOENT || errno == ENOTDIR)
                        return 0;
                snprintf(err, errlen, "%s: cannot read the directory: %s", dir, strerror(errno));
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                const char *d = list[i]->d_name;
                size_t len = strlen(d);
                if (r >= 0 && d[0] != '.' && len > 5 && STREQ(d + len - 5, ".conf")) {
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, "%s/%s", dir, d) < 0)
                                r = -ENOMEM;
                        else
                                r = load_one(p, c, q, err, errlen);
                }
                free(list[i]);
        }
        free(list);
        return r;
}

int config_load(ManagerConfig *c, const char *path) {
        QuotaConfig q;
        char err[1024] = "";
        quota_config_init(&q);
        int r = config_load_all(path, c->config_dir, c, &q, err, sizeof err);
        quota_config_done(&q);
        if (r < 0)
                return log_error_errno(r, "%s", *err ? err : "cannot read the configuration");
        return 0;
}
