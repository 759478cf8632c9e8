/* SPDX-License-Identifier: MIT */
/* Authorization: may the sender of a method call do an action?  polkitd is
 * asked asynchronously (CheckAuthorization on org.freedesktop.PolicyKit1,
 * subject "system-bus-name" = the sender's unique name, never a pid), the
 * event loop goes on serving everyone else meanwhile, and the call is
 * dispatched again once the answer is there, like systemd's bus-polkit.c.
 *
 * How a method handler uses it, before it reads or changes any state:
 *
 *     static int method_x(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
 *             Manager *m = userdata;
 *             int r = authorize(m, msg, SOTTO_ACTION_CONFIGURE, error);
 *             if (r < 0)
 *                     return r;  // refused: *error is set (see below)
 *             if (r == 0)
 *                     return 1;  // polkit is being asked; msg comes back later
 *             ...                // authorized: do the work and reply
 *     }
 *
 * On r == 0 the handler must not reply and must not change anything: the
 * same message is dispatched again (from the start, arguments rewound,
 * through the vtable) when polkit has answered; authorize() then returns 1
 * for it, or the caller has already been sent the refusal and the handler
 * is not run again.  A handler therefore runs at most twice per call and
 * the second run sees the same arguments.
 *
 * Refusals (r < 0, *error set):
 *   org.sotto.Sotto1.Error.NotAuthorized: polkit said no (or the user did
 *     not authenticate when asked);
 *   org.freedesktop.DBus.Error.InteractiveAuthorizationRequired: polkit
 *     would ask for a password, but the call did not carry the
 *     ALLOW_INTERACTIVE_AUTHORIZATION flag (sd_bus_message_set_allow_
 *     interactive_authorization(), busctl --allow-interactive-authorization);
 *   org.sotto.Sotto1.Error.AuthorizationUnavailable: polkitd is not running
 *     or failed; sottod fails closed.
 *   org.sotto.Sotto1.Error.Busy: too many calls of one connection wait for
 *     the same check.
 *
 * Answers are cached per (unique bus name, action) for as long as that
 * connection is on the bus: unique names are never reused, so a new
 * process (even one with a recycled pid) is always checked afresh.  "yes"
 * after an interactive authentication is cached only when polkit says it
 * retains it (auth_admin_keep); the cache is emptied when polkit signals
 * that its rules or actions changed.
 *
 * When polkit is not in use (a session bus or a private --address bus,
 * see sottod(8) and --polkit), authorize() returns 1 at once: the caller is
 * the daemon's own user, or the bus is private to a test. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

typedef struct Manager Manager;
typedef struct Authority Authority;

/* The actions of polkit/org.sotto.policy. */
#define SOTTO_ACTION_GENERATE "org.sotto.generate"           /* Text.Ask, Text.OpenChat, Chat.Send */
#define SOTTO_ACTION_DICTATE "org.sotto.dictate"             /* microphone: the dictation methods */
#define SOTTO_ACTION_MANAGE_MODELS "org.sotto.manage-models" /* loading, adding, removing models */
#define SOTTO_ACTION_CONFIGURE "org.sotto.configure"         /* reload, quotas, everyone's usage */

/* 1: authorized; 0: asked polkit, return 1 from the handler; < 0 refused
 * (error set) or failed. */
int authorize(Manager *m, sd_bus_message *call, const char *action, sd_bus_error *error);

/* Whether ACTION is one of the four above. */
bool authorize_action_known(const char *action);

Authority *authority_free(Authority *a);

/* Service.Authorize(s action): lets a client learn (and, with the
 * interactive flag, obtain) an authorization ahead of the real call, e.g.
 * to grey out a dictation button.  Registered in bus-service.c. */
int method_authorize(sd_bus_message *msg, void *userdata, sd_bus_error *error);
