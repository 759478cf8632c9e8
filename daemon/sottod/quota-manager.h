/* SPDX-License-Identifier: MIT */
/* sottod's applications: one record per (uid, application ID) with its
 * token buckets, requests in progress, scheduling stamp and usage, and the
 * hooks the request path calls (admission, charging, accounting). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "daemon/common/wire.h"
#include "daemon/sottod/config.h"
#include "daemon/sottod/identity.h"
#include "daemon/sottod/quota.h"
#include "daemon/sottod/usage.h"

typedef struct Request Request;

/* Applications are told apart per user: the same AppID run by two users
 * is two records (one user's program cannot use up another user's quota). */
typedef struct App {
        uid_t uid;
        char *app_id;
        IdentityKind kind;
        QuotaLimits limits; /* [Defaults] + [App] + SetQuota */
        QuotaState state;
        uint32_t n_requests; /* queued or running: MaxConcurrentRequests */
        uint64_t last_served; /* scheduler stamp: least recently served goes first */
        UsageCounters usage;
        struct App *next;
} App;

typedef struct Quotas {
        QuotaConfig config;
        App *apps;
        size_t n_apps;
        uint64_t serve_clock;
        char *state_dir; /* NULL: usage is not kept on disk */
        bool dirty;
        uint64_t last_save;
        sd_event_source *save_timer;
} Quotas;

int quotas_new(Manager *m); /* no limits, no state directory */
/* Reads STATE_DIR/usage (a missing file is no usage yet) and keeps it there. */
int quotas_open_state(Manager *m, const char *state_dir);
void quotas_free(Manager *m); /* saves the usage first */
/* A new configuration (takes *config, leaves it empty): every
 * application's limits again. */
void quotas_set_config(Manager *m, QuotaConfig *config);
void quotas_refresh_limits(Manager *m);

/* Called once per caller, when it first appears: its identity and app. */
int caller_identify(Manager *m, Caller *c);
App *app_get(Manager *m, uid_t uid, const char *app_id, IdentityKind kind);

/* The request path. */
int quota_admit(Manager *m, Caller *c, gen_params *params, sd_bus_error *error);
void quota_request_added(Request *q);
void quota_request_removed(Request *q);
void quota_charge_generated(Request *q, uint32_t n_tokens_now);
void quota_request_done(Request *q, const wire_done *d);

/* Usage changed: written within a second. */
void usage_mark_dirty(Manager *m);
int usage_save_now(Manager *m);

/* The scheduler (sched.c): the next queued request to run, or NULL. */
Request *sched_pick(Manager *m);
Request *sched_pick_at(Manager *m, uint64_t now); /* the same on a given clock (tests) */

/* Reads the configuration files again into copies and, if all is well,
 * applies them, except what needs a new worker: *ret_model_changed says
 * whether Model=, VisionModel=, ContextSize= or Threads= changed.  On
 * error err has file:line and nothing changed. */
int manager_reload_config(Manager *m, bool *ret_model_changed, char *err, size_t errlen);
