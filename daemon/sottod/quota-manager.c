/* SPDX-License-Identifier: MIT */
/* Applications at run time: identification of callers, admission against
 * the limits, charging as the worker reports, and usage written to the
 * state directory within a second of any change. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/log.h"
#include "daemon/sottod/manager.h"
#include "daemon/sottod/quota-manager.h"

#define APPS_MAX 65536u /* distinct (uid, app) records; beyond, new ones share "overflow" */
#define SAVE_ACCURACY_USEC (10 * 1000)
#define SAVE_INTERVAL_USEC 1000000ull

/* ---- applications ---- */

static App *app_find(Quotas *qs, uid_t uid, const char *app_id) {
        for (App *a = qs->apps; a; a = a->next)
                if (a->uid == uid && STREQ(a->app_id, app_id))
                        return a;
        return NULL;
}

static App *app_new(Quotas *qs, uid_t uid, const char *app_id, IdentityKind kind) {
        App *a = calloc(1, sizeof *a);
        if (!a)
                return NULL;
        a->app_id = strdup(app_id);
        if (!a->app_id) {
                free(a);
                return NULL;
        }
        a->uid = uid;
        a->kind = kind;
        quota_config_lookup(&qs->config, app_id, &a->limits);
        a->next = qs->apps;
        qs->apps = a;
        qs->n_apps++;
        return a;
}

App *app_get(Manager *m, uid_t uid, const char *app_id, IdentityKind kind) {
        Quotas *qs = m->quotas;
        App *a = app_find(qs, uid, app_id);
        if (a) {
                a->kind = kind;
                return a;
        }
        if (qs->n_apps >= APPS_MAX) {
                /* Bounded memory: a flood of distinct executables shares one record. */
                log_warning("more than %u applications; uid %u %s is counted as \"overflow\"", APPS_MAX,
                            (unsigned)uid, app_id);
                a = app_find(qs, uid, "overflow");
                return a ? a : app_new(qs, uid, "overflow", IDENTITY_UNCONFINED);
        }
        return app_new(qs, uid, app_id, kind);
}

void quotas_refresh_limits(Manager *m) {
        Quotas *qs = m->quotas;
        for (App *a = qs->apps; a; a = a->next)
                quota_config_lookup(&qs->config, a->app_id, &a->limits);
}

void quotas_set_config(Manager *m, QuotaConfig *config) {
        Quotas *qs = m->quotas;
        quota_config_done(&qs->config);
        qs->config = *config;
        quota_config_init(config);
        quotas_refresh_limits(m);
}

/* ---- usage on disk ---- */

static int on_load(void *userdata, uid_t uid, const char *kind, const char *app_id, const UsageCounters *c) {
        Manager *m = userdata;
        IdentityKind k = IDENTITY_UNCONFINED;
        for (IdentityKind i = 0; i < _IDENTITY_KIND_MAX; i++)
                if (STREQ(kind, identity_kind_to_string(i)))
                        k = i;
        App *a = app_get(m, uid, app_id, k);
        if (!a)
                return -ENOMEM;
        a->usage = *c;
        return 0;
}

int usage_save_now(Manager *m) {
        Quotas *qs = m->quotas;
        if (!qs || !qs->state_dir || !qs->dirty)
                return 0;
        UsageEntry *e = calloc(qs->n_apps ? qs->n_apps : 1, sizeof *e);
        if (!e)
                return -ENOMEM;
        size_t n = 0;
        for (App *a = qs->apps; a; a = a->next)
                if (a->usage.requests || a->usage.prompt_tokens || a->usage.generated_tokens ||
                    a->usage.audio_seconds > 0 || a->usage.images)
                        e[n++] = (UsageEntry){ .uid = a->uid,
                                               .app_id = a->app_id,
                                               .kind = identity_kind_to_string(a->kind),
                                               .c = &a->usage };
        int r = usage_save(qs->state_dir, e, n);
        free(e);
        qs->last_save = now_usec();
        if (r < 0)
                return log_warning_errno(r, "cannot write the usage file in %s: %m", qs->state_dir);
        qs->dirty = false;
        return 0;
}

static int on_save_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)usage_save_now(userdata);
        return 0;
}

void usage_mark_dirty(Manager *m) {
        Quotas *qs = m->quotas;
        qs->dirty = true;
        if (!qs->state_dir || !m->event)
                return;
        /* At most once a second: the next write is due a second after the
         * last one (or now, if that was longer ago). */
        uint64_t due = MAX(qs->last_save + SAVE_INTERVAL_USEC, now_usec());
        int enabled = SD_EVENT_OFF;
        if (qs->save_timer && sd_event_source_get_enabled(qs->save_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return;
        if (!qs->save_timer) {
                /* accuracy 0 would be sd-event's default, 250 ms late at worst:
                 * more than the promise of at most a second lost */
                if (sd_event_add_time(m->event, &qs->save_timer, CLOCK_MONOTONIC, due, SAVE_ACCURACY_USEC,
                                      on_save_timer, m) < 0)
                        (void)usage_save_now(m);
                return;
        }
        (void)sd_event_source_set_time(qs->save_timer, due);
        (void)sd_event_source_set_enabled(qs->save_timer, SD_EVENT_ONESHOT);
}

int quotas_new(Manager *m) {
        Quotas *qs = calloc(1, sizeof *qs);
        if (!qs)
                return -ENOMEM;
        quota_config_init(&qs->config);
        m->quotas = qs;
        return 0;
}

int quotas_open_state(Manager *m, const char *state_dir) {
        Quotas *qs = m->quotas;
        free(qs->state_dir);
        qs->state_dir = strdup(state_dir);
        if (!qs->state_dir)
                return -ENOMEM;
        int r = usage_load(qs->state_dir, on_load, m);
        if (r < 0)
                return log_error_errno(r, "cannot read the usage file in %s: %m", qs->state_dir);
        log_info("usage of %d application(s) read from %s/usage", r, qs->state_dir);
        return 0;
}

void quotas_free(Manager *m) {
        Quotas *qs = m->quotas;
        if (!qs)
                return;
        (void)usage_save_now(m);
        sd_event_source_disable_unref(qs->save_timer);
        while (qs->apps) {
                App *a = qs->apps;
                qs->apps = a->next;
                free(a->app_id);
                free(a);
        }
        quota_config_done(&qs->config);
        free(qs->state_dir);
        free(qs);
        m->quotas = NULL;
}

/* ---- identity of callers ---- */

int caller_identify(Manager *m, Caller *c) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uint64_t mask = SD_BUS_CREDS_PID | SD_BUS_CREDS_EUID;
        pid_t pid = 0;
        uid_t uid = 0;
        int r;

        /* From the bus daemon (GetConnectionCredentials), not from /proc:
         * without SD_BUS_CREDS_AUGMENT sd-bus reads nothing racy itself.
         * On a peer-to-peer connection the peer is the caller. */
        if (sd_bus_is_bus_client(m->bus) > 0)
                r = sd_bus_get_name_creds(m->bus, c->name, mask, &creds);
        else
                r = sd_bus_get_owner_creds(m->bus, mask, &creds);
        if (r >= 0)
                r = sd_bus_creds_get_pid(creds, &pid);
        if (r >= 0)
                r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return log_warning_errno(r, "cannot get the credentials of %s: %m", c->name);
        r = identity_from_pid("/proc", uid, pid, &c->identity);
        if (r < 0)
                return log_warning_errno(r, "cannot identify %s (pid %d): %m", c->name, (int)pid);
        c->app = app_get(m, c->identity.uid, c->identity.app_id, c->identity.kind);
        if (!c->app)
                return -ENOMEM;
        char desc[512];
        identity_describe(&c->identity, desc, sizeof desc);
        log_debug("caller %s (pid %d) is %s", c->name, (int)pid, desc);
        return 0;
}

/* ---- the request path ---- */

int quota_charge(Manager *m, Caller *c, QuotaKind kind, double amount, uint64_t *ret_retry_usec) {
        App *a = c->app;
        uint64_t now = now_usec();
        if (!a || kind < 0 || kind >= _QUOTA_KIND_MAX)
                return -EINVAL;
        uint64_t wait = quota_state_check(&a->state, &a->limits, 1u << kind, now, NULL);
        if (wait > 0) {
                if (ret_retry_usec)
                        *ret_retry_usec = wait;
                log_info("uid %u %s: %s exceeded, retry in %llu s", (unsigned)a->uid, a->app_id,
                         quota_kind_to_string(kind), (unsigned long long)quota_retry_seconds(wait));
                return -EDQUOT;
        }
        quota_state_charge(&a->state, &a->limits, kind, amount, now);
        if (kind == QUOTA_AUDIO_SECONDS)
                a->usage.audio_seconds += amount;
        else if (kind == QUOTA_IMAGES)
                a->usage.images += (uint64_t)(amount + 0.5);
        else if (kind == QUOTA_PROMPT_TOKENS)
                a->usage.prompt_tokens += (uint64_t)(amount + 0.5);
        else
                a->usage.generated_tokens += (uint64_t)(amount + 0.5);
        usage_mark_dirty(m);
        if (ret_retry_usec)
                *ret_retry_usec = 0;
        return 0;
}

static int refuse(sd_bus_error *error, App *a, const char *limit, uint64_t wait, const char *what) {
        char head[128];
        quota_format_error(head, sizeof head, limit, wait);
        log_info("uid %u %s refused: %s", (unsigned)a->uid, a->app_id, head);
        return sd_bus_error_setf(error, SOTTO_ERROR_QUOTA_EXCEEDED, "%s: %s; try again in %llu s.", head, what,
                                 (unsigned long long)quota_retry_seconds(wait));
}

int quota_admit(Manager *m, Caller *c, gen_params *params, sd_bus_error *error) {
        App *a = c->app;
        const QuotaLimits *l;
        char what[160];
        QuotaKind which = QUOTA_PROMPT_TOKENS;

        if (!a)
                return 0;
        l = &a->limits;
        if (l->max_concurrent && a->n_requests >= l->max_concurrent) {
                snprintf(what, sizeof what, "this application has %u requests in progress, its limit", a->n_requests);
                /* No clock to wait for: the retry time is a guess, retry when one ends. */
                return refuse(error, a, "MaxConcurrentRequests", 1000000, what);
        }
        uint64_t wait = quota_state_check(&a->state, l, 1u << QUOTA_PROMPT_TOKENS | 1u << QUOTA_GENERATED_TOKENS,
                                          now_usec(), &which);
        if (wait > 0) {
                snprintf(what, sizeof what, "this application has used its %llu %s",
                         (unsigned long long)l->rate[which],
                         which == QUOTA_PROMPT_TOKENS ? "prompt tokens per minute" : "generated tokens per minute");
                return refuse(error, a, quota_kind_to_string(which), wait, what);
        }
        /* Prompts are counted by the worker, which refuses longer ones. */
        params->max_prompt_tokens = l->max_prompt_tokens;
        /* Answers are cut at MaxAnswerTokens (stop reason max-tokens). */
        if (l->max_answer_tokens && params->max_tokens > l->max_answer_tokens)
                params->max_tokens = l->max_answer_tokens;
        return 0;
}

void quota_request_added(Request *q) {
        App *a = q->caller->app;
        if (!a)
                return;
        a->n_requests++;
        a->usage.requests++;
        usage_mark_dirty(q->manager);
}

void quota_request_removed(Request *q) {
        App *a = q->caller->app;
        if (a && a->n_requests > 0)
                a->n_requests--;
}

/* Generated tokens are charged as the worker reports them. */
void quota_charge_generated(Request *q, uint32_t n_tokens_now) {
        App *a = q->caller->app;
        if (!a || n_tokens_now <= q->n_tokens)
                return;
        uint32_t delta = n_tokens_now - q->n_tokens;
        quota_state_charge(&a->state, &a->limits, QUOTA_GENERATED_TOKENS, delta, now_usec());
        a->usage.generated_tokens += delta;
        usage_mark_dirty(q->manager);
}

/* The worker's totals: the prompt (known only once the worker has
 * tokenized it) and any generated tokens not yet reported as text. */
void quota_request_done(Request *q, const wire_done *d) {
        App *a = q->caller->app;
        if (!a)
                return;
        uint64_t now = now_usec();
        if (d->n_prompt > 0) {
                quota_state_charge(&a->state, &a->limits, QUOTA_PROMPT_TOKENS, d->n_prompt, now);
                a->usage.prompt_tokens += d->n_prompt;
        }
        if (d->n_generated > q->n_tokens) {
                uint32_t delta = d->n_generated - q->n_tokens;
                quota_state_charge(&a->state, &a->limits, QUOTA_GENERATED_TOKENS, delta, now);
                a->usage.generated_tokens += delta;
        }
        usage_mark_dirty(q->manager);
}

/* ---- reloading the configuration ---- */

int manager_reload_config(Manager *m, bool *ret_model_changed, char *err, size_t errlen) {
        _cleanup_(manager_config_done) ManagerConfig c = {};
        QuotaConfig q;
        bool model_changed = false;
        int r;

        if (ret_model_changed)
                *ret_model_changed = false;
        if (!m->config.config_path) {
                snprintf(err, errlen, "sottod was started without --config");
                return -ENOENT;
        }
        /* Into a deep copy: a broken file leaves the last good settings,
         * and the parser frees only the copy's strings. */
        r = manager_config_copy(&c, &m->config);
        if (r < 0)
                return r;
        quota_config_init(&q);
        r = config_load_all(m->config.config_path, m->config.config_dir, &c, &q, err, errlen);
        if (r < 0) {
                quota_config_done(&q);
                log_error("%s", err);
                log_warning("keeping the last good configuration");
                return r;
        }
        /* Taken from the copy below: the model files, MaxImageBytes=,
         * ImageTimeout=, the worker's settings and the scheduling limits.
         * WhisperModel= is read at start only. */
        if (!m->config.model_from_cli && c.model_path) {
                model_changed = !m->config.model_path || !STREQ(m->config.model_path, c.model_path);
                free(m->config.model_path);
                m->config.model_path = TAKE_PTR(c.model_path);
        }
        /* The vision projector (bus-explain.c): VisionModel= unless --mmproj. */
        if (!m->config.mmproj_from_cli) {
                model_changed = model_changed || !m->config.mmproj_path != !c.mmproj_path ||
                                (c.mmproj_path && !STREQ(m->config.mmproj_path, c.mmproj_path));
                free(m->config.mmproj_path);
                m->config.mmproj_path = TAKE_PTR(c.mmproj_path);
        }
        m->config.max_image_bytes = c.max_image_bytes;
        m->config.image_timeout_usec = c.image_timeout_usec;
        /* These are the worker's: a new one must start for them. */
        model_changed = model_changed || m->config.n_ctx != c.n_ctx || m->config.n_threads != c.n_threads;
        m->config.n_ctx = c.n_ctx;
        m->config.n_threads = c.n_threads;
        m->config.max_active = MAX(c.max_active, 1u);
        m->config.max_per_caller = c.max_per_caller;
        quotas_set_config(m, &q);
        log_info("configuration %s reloaded", m->config.config_path);
        if (ret_model_changed)
                *ret_model_changed = model_changed;
        manager_schedule(m); /* MaxActive or priorities may have changed */
        return 0;
}
