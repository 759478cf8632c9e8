/* SPDX-License-Identifier: MIT */
/* org.sotto.Sotto1.Admin: usage and quotas.  One's own usage and quota
 * state: anyone.  Everyone's usage, reloading the configuration and setting
 * a quota at run time: org.sotto.configure (polkit, authorize.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/sottod/authorize.h"
#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/log.h"
#include "daemon/sottod/manager.h"
#include "daemon/sottod/quota-manager.h"

static int append_usage(sd_bus_message *reply, const App *a) {
        const UsageCounters *u = &a->usage;
        return sd_bus_message_append(reply, "a{sv}", 5, "requests", "t", u->requests, "prompt-tokens", "t",
                                     u->prompt_tokens, "generated-tokens", "t", u->generated_tokens,
                                     "audio-seconds", "d", u->audio_seconds, "images", "t", u->images);
}

/* The calling application, or NotAuthorized set in error. */
static int caller_app(Manager *m, sd_bus_message *msg, App **ret, sd_bus_error *error) {
        Caller *c;
        int r = caller_get(m, sd_bus_message_get_sender(msg) ?: ":unknown", &c);
        if (r >= 0 && !c->app)
                r = -ESRCH;
        if (r < 0)
                return sd_bus_error_setf(error, SOTTO_ERROR_NOT_AUTHORIZED, "Cannot identify the caller: %s.",
                                         strerror(-r));
        *ret = c->app;
        return 0;
}

static int method_get_usage(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        App *a;
        int r = caller_app(m, msg, &a, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "uss", (uint32_t)a->uid, identity_kind_to_string(a->kind), a->app_id);
        if (r >= 0)
                r = append_usage(reply, a);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_quota_state(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        uint64_t now = now_usec();
        App *a;
        int r = caller_app(m, msg, &a, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "ss", a->app_id, priority_to_string(a->limits.priority));
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(stdt)");
        for (QuotaKind k = 0; r >= 0 && k < _QUOTA_KIND_MAX; k++) {
                uint64_t rate = a->limits.rate[k], period = quota_kind_period_usec(k);
                double level = rate ? bucket_level(&a->state.bucket[k], rate, period, now) : 0;
                uint64_t wait = rate ? bucket_retry_usec(&a->state.bucket[k], rate, period, now) : 0;
                r = sd_bus_message_append(reply, "(stdt)", quota_kind_to_string(k), rate, level,
                                          wait ? quota_retry_seconds(wait) : (uint64_t)0);
        }
        if (r >= 0) {
                uint32_t max = a->limits.max_concurrent;
                r = sd_bus_message_append(reply, "(stdt)", "MaxConcurrentRequests", (uint64_t)max,
                                          max ? (double)max - a->n_requests : 0.0, (uint64_t)0);
        }
        if (r >= 0)
                r = sd_bus_message_append(reply, "(stdt)", "MaxPromptTokens", (uint64_t)a->limits.max_prompt_tokens,
                                          (double)a->limits.max_prompt_tokens, (uint64_t)0);
        if (r >= 0)
                r = sd_bus_message_append(reply, "(stdt)", "MaxAnswerTokens", (uint64_t)a->limits.max_answer_tokens,
                                          (double)a->limits.max_answer_tokens, (uint64_t)0);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_all_usage(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r = authorize(m, msg, SOTTO_ACTION_CONFIGURE, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ussa{sv})");
        for (App *a = m->quotas->apps; r >= 0 && a; a = a->next) {
                r = sd_bus_message_open_container(reply, 'r', "ussa{sv}");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "uss", (uint32_t)a->uid, identity_kind_to_string(a->kind),
                                                  a->app_id);
                if (r >= 0)
                        r = append_usage(reply, a);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_reload_config(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        char err[1024] = "";
        bool model_changed;
        int r = authorize(m, msg, SOTTO_ACTION_CONFIGURE, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_reload_config(m, &model_changed, err, sizeof err);
        if (r < 0)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                         "The configuration was not changed: %s.", *err ? err : strerror(-r));
        if (model_changed) {
                /* Model= changed: load it as SIGHUP would (the settings are read
                 * again there, unchanged by now). */
                (void)manager_reload(m);
        }
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_set_quota(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *app, *key, *value;
        char err[512] = "";
        int r = sd_bus_message_read(msg, "sss", &app, &key, &value);
        if (r < 0)
                return r;
        r = authorize(m, msg, SOTTO_ACTION_CONFIGURE, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (*app && (strlen(app) >= IDENTITY_APP_MAX || strpbrk(app, " \t\n[]")))
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                         "'%s' is not an application ID or executable path.", app);
        r = quota_config_set(&m->quotas->config, *app ? app : NULL, key, value, err, sizeof err);
        if (r < 0)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "%s.", err);
        quotas_refresh_limits(m);
        log_info("quota set at run time: %s%s%s %s=%s", *app ? "[App " : "[Defaults", app, "]", key, value);
        manager_schedule(m); /* a priority may have changed */
        return sd_bus_reply_method_return(msg, NULL);
}

const sd_bus_vtable admin_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("GetUsage", "", , "ussa{sv}",
                                 SD_BUS_PARAM(uid) SD_BUS_PARAM(kind) SD_BUS_PARAM(application) SD_BUS_PARAM(usage),
                                 method_get_usage, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetQuotaState", "", , "ssa(stdt)",
                                 SD_BUS_PARAM(application) SD_BUS_PARAM(priority) SD_BUS_PARAM(limits),
                                 method_get_quota_state, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetAllUsage", "", , "a(ussa{sv})", SD_BUS_PARAM(usage), method_get_all_usage,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("ReloadConfig", "", "", method_reload_config, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SetQuota", "sss", SD_BUS_PARAM(application) SD_BUS_PARAM(key) SD_BUS_PARAM(value),
                                 "", , method_set_quota, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};
