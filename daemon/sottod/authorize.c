/* SPDX-License-Identifier: MIT */
/* Asynchronous polkit checks with a per-connection cache (see authorize.h).
 *
 * One Peer per unique bus name that has asked for something, tracked with
 * sd_bus_track: when the name leaves the bus, its answers, waiting calls and
 * any check under way go with it.  One Entry per (peer, action): the cached
 * answer, the CheckAuthorization call in flight and the calls waiting for
 * it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/sottod/authorize.h"
#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/log.h"
#include "daemon/sottod/manager.h"

#define POLKIT_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_IFACE "org.freedesktop.PolicyKit1.Authority"
#define POLKIT_FLAG_ALLOW_USER_INTERACTION 1u

/* How long polkitd may take: a rule may run a helper; a person may be typing
 * a password.  A check that times out is refused (fail closed). */
#define CHECK_TIMEOUT_USEC (25 * 1000000ull)
#define CHECK_TIMEOUT_INTERACTIVE_USEC (300 * 1000000ull)
/* Calls of one connection waiting for the same check, and calls let
 * through once after an answer that is not kept. */
#define WAIT_MAX 16

typedef enum Answer {
        ANSWER_NONE,
        ANSWER_YES,
        ANSWER_NO,
        ANSWER_CHALLENGE, /* polkit would have to ask the user */
} Answer;

typedef struct Peer Peer;
typedef struct Entry Entry;

struct Entry {
        Peer *peer;
        const char *action; /* one of the static action names */
        Answer cached;
        sd_bus_slot *slot;  /* CheckAuthorization in flight */
        bool interactive;   /* ... with AllowUserInteraction */
        sd_bus_message *waiting[WAIT_MAX];
        size_t n_waiting;
        /* Re-dispatched calls that are authorized once (the answer came
         * from an interactive check and polkit does not keep it). */
        sd_bus_message *granted[WAIT_MAX];
        size_t n_granted;
        Entry *next;
};

struct Peer {
        Authority *authority;
        char *name;
        sd_bus_track *track;
        Entry *entries;
        Peer *next, *prev;
};

struct Authority {
        Manager *manager;
        sd_bus_slot *changed_slot;
        Peer *peers;
};

static const struct {
        const char *id;
        const char *what; /* "You are not authorized to ..." */
} actions[] = {
        { SOTTO_ACTION_GENERATE, "generate text with sotto" },
        { SOTTO_ACTION_DICTATE, "dictate with sotto (use the microphone)" },
        { SOTTO_ACTION_MANAGE_MODELS, "manage sotto's models" },
        { SOTTO_ACTION_CONFIGURE, "configure sotto" },
};

static const char *action_find(const char *id) {
        for (size_t i = 0; i < ELEMENTSOF(actions); i++)
                if (STREQ(actions[i].id, id))
                        return actions[i].id;
        return NULL;
}

static const char *action_what(const char *id) {
        for (size_t i = 0; i < ELEMENTSOF(actions); i++)
                if (STREQ(actions[i].id, id))
                        return actions[i].what;
        return id;
}

bool authorize_action_known(const char *action) {
        return action && action_find(action);
}

/* ---- peers and entries ---- */

static void entry_free(Entry *e) {
        sd_bus_slot_unref(e->slot);
        /* The caller is gone (or the daemon stops): no replies. */
        for (size_t i = 0; i < e->n_waiting; i++)
                sd_bus_message_unref(e->waiting[i]);
        for (size_t i = 0; i < e->n_granted; i++)
                sd_bus_message_unref(e->granted[i]);
        free(e);
}

static void peer_free(Peer *p) {
        Authority *a = p->authority;
        while (p->entries) {
                Entry *e = p->entries;
                p->entries = e->next;
                entry_free(e);
        }
        if (p->prev)
                p->prev->next = p->next;
        else
                a->peers = p->next;
        if (p->next)
                p->next->prev = p->prev;
        sd_bus_track_unref(p->track);
        free(p->name);
        free(p);
}

static int on_peer_gone(sd_bus_track *t, void *userdata) {
        Peer *p = userdata;
        log_debug("authorization: %s left the bus, forgetting its answers", p->name);
        peer_free(p);
        return 0;
}

static int peer_get(Authority *a, const char *name, Peer **ret) {
        int r;
        for (Peer *p = a->peers; p; p = p->next)
                if (STREQ(p->name, name)) {
                        *ret = p;
                        return 0;
                }
        Peer *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->authority = a;
        p->name = strdup(name);
        if (!p->name) {
                free(p);
                return -ENOMEM;
        }
        r = sd_bus_track_new(a->manager->bus, &p->track, on_peer_gone, p);
        if (r >= 0)
                r = sd_bus_track_add_name(p->track, name);
        if (r < 0) {
                sd_bus_track_unref(p->track);
                free(p->name);
                free(p);
                return r;
        }
        p->next = a->peers;
        if (a->peers)
                a->peers->prev = p;
        a->peers = p;
        *ret = p;
        return 0;
}

static int entry_get(Peer *p, const char *action, Entry **ret) {
        for (Entry *e = p->entries; e; e = e->next)
                if (e->action == action) {
                        *ret = e;
                        return 0;
                }
        Entry *e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        e->peer = p;
        e->action = action;
        e->next = p->entries;
        p->entries = e;
        *ret = e;
        return 0;
}

static bool grant_take(Entry *e, sd_bus_message *call) {
        for (size_t i = 0; i < e->n_granted; i++)
                if (e->granted[i] == call) {
                        sd_bus_message_unref(e->granted[i]);
                        memmove(e->granted + i, e->granted + i + 1, (e->n_granted - i - 1) * sizeof e->granted[0]);
                        e->n_granted--;
                        return true;
                }
        return false;
}

static void grant_add(Entry *e, sd_bus_message *call) {
        if (e->n_granted == WAIT_MAX) {
                /* The oldest was never dispatched again (its object went
                 * away meanwhile): drop it. */
                sd_bus_message_unref(e->granted[0]);
                memmove(e->granted, e->granted + 1, (WAIT_MAX - 1) * sizeof e->granted[0]);
                e->n_granted--;
        }
        e->granted[e->n_granted++] = sd_bus_message_ref(call);
}

/* ---- polkit's Changed signal: rules or actions changed ---- */

static int on_polkit_changed(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Authority *a = userdata;
        log_debug("polkit's rules or actions changed: forgetting cached answers");
        for (Peer *p = a->peers; p; p = p->next)
                for (Entry *e = p->entries; e; e = e->next)
                        e->cached = ANSWER_NONE;
        return 0;
}

static int authority_get(Manager *m, Authority **ret) {
        if (m->authority) {
                *ret = m->authority;
                return 0;
        }
        Authority *a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        a->manager = m;
        int r = sd_bus_match_signal_async(m->bus, &a->changed_slot, POLKIT_NAME, POLKIT_PATH, POLKIT_IFACE,
                                          "Changed", on_polkit_changed, NULL, a);
        if (r < 0)
                log_warning_errno(r, "cannot subscribe to polkit's Changed signal; cached answers stay until "
                                     "the caller leaves: %m");
        m->authority = a;
        *ret = a;
        return 0;
}

Authority *authority_free(Authority *a) {
        if (!a)
                return NULL;
        while (a->peers)
                peer_free(a->peers);
        sd_bus_slot_unref(a->changed_slot);
        free(a);
        return NULL;
}

/* ---- refusals ---- */

static int refuse(sd_bus_error *error, Answer answer, bool interactive, const char *action) {
        if (answer == ANSWER_CHALLENGE && !interactive)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                         "Authentication is required to %s (polkit action %s); call again with "
                                         "interactive authorization allowed.",
                                         action_what(action), action);
        if (answer == ANSWER_CHALLENGE)
                return sd_bus_error_setf(error, SOTTO_ERROR_NOT_AUTHORIZED,
                                         "Authentication is required to %s (polkit action %s) and was not given.",
                                         action_what(action), action);
        return sd_bus_error_setf(error, SOTTO_ERROR_NOT_AUTHORIZED, "You are not authorized to %s (polkit action %s).",
                                 action_what(action), action);
}

static void reply_error(sd_bus_message *call, const sd_bus_error *e) {
        int r = sd_bus_reply_method_error(call, e);
        if (r < 0)
                log_debug("cannot send the refusal to %s: %s", sd_bus_message_get_sender(call) ?: "?", strerror(-r));
}

static void reply_refusal(sd_bus_message *call, Answer answer, const char *action) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        refuse(&e, answer, sd_bus_message_get_allow_interactive_authorization(call) > 0, action);
        reply_error(call, &e);
}

/* Dispatches CALL again from the start: the handler finds the answer. */
static void redispatch(Entry *e, sd_bus_message *call, bool grant) {
        int r = sd_bus_message_rewind(call, true);
        if (r >= 0) {
                if (grant)
                        grant_add(e, call);
                r = sd_bus_enqueue_for_read(e->peer->authority->manager->bus, call);
                if (r < 0 && grant)
                        (void)grant_take(e, call);
        }
        if (r < 0) {
                log_warning_errno(r, "cannot dispatch an authorized call again: %m");
                (void)sd_bus_reply_method_errno(call, r, NULL);
        }
}

/* ---- the check ---- */

static int parse_result(sd_bus_message *reply, int *authorized, int *challenge, bool *retains, bool *dismissed) {
        int r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;
        r = sd_bus_message_read(reply, "bb", authorized, challenge);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "{ss}");
        if (r < 0)
                return r;
        const char *k, *v;
        while ((r = sd_bus_message_read(reply, "{ss}", &k, &v)) > 0) {
                /* polkit writes "1" or "true" depending on the path taken. */
                if ((STREQ(k, "polkit.retains_authorization_after_challenge") ||
                     STREQ(k, "polkit.temporary_authorization_id")) && *v)
                        *retains = true;
                if (STREQ(k, "polkit.dismissed") && *v)
                        *dismissed = true;
        }
        return r;
}

static int on_check_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Entry *e = userdata;
        sd_bus_message *waiting[WAIT_MAX];
        size_t n = e->n_waiting;
        bool interactive = e->interactive;
        int authorized = 0, challenge = 0, r;
        bool retains = false, dismissed = false;

        e->slot = sd_bus_slot_unref(e->slot);
        memcpy(waiting, e->waiting, n * sizeof waiting[0]);
        e->n_waiting = 0;

        const sd_bus_error *err = sd_bus_message_get_error(reply);
        if (err) {
                r = -EIO;
        } else {
                r = parse_result(reply, &authorized, &challenge, &retains, &dismissed);
                if (r < 0)
                        log_warning_errno(r, "polkit's answer to CheckAuthorization cannot be read: %m");
        }
        if (r < 0) {
                /* Fail closed, and cache nothing: the next call asks again. */
                _cleanup_(sd_bus_error_free) sd_bus_error e2 = SD_BUS_ERROR_NULL;
                bool absent = err && (sd_bus_error_has_names(err, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                                             SD_BUS_ERROR_NAME_HAS_NO_OWNER, SD_BUS_ERROR_NO_REPLY,
                                                             SD_BUS_ERROR_TIMEOUT, SD_BUS_ERROR_DISCONNECTED));
                if (absent)
                        sd_bus_error_setf(&e2, SOTTO_ERROR_AUTHORIZATION_UNAVAILABLE,
                                          "Cannot check whether you may %s: polkit (%s) is not running or does not "
                                          "answer (%s); sottod refuses what it cannot check.",
                                          action_what(e->action), POLKIT_NAME, err->message ?: err->name);
                else
                        sd_bus_error_setf(&e2, SOTTO_ERROR_AUTHORIZATION_UNAVAILABLE,
                                          "Cannot check whether you may %s: polkit failed: %s; sottod refuses what "
                                          "it cannot check.",
                                          action_what(e->action),
                                          err ? (err->message ?: err->name) : "its answer cannot be read");
                log_warning("authorization of %s for %s: %s", e->action, e->peer->name, e2.message);
                for (size_t i = 0; i < n; i++) {
                        reply_error(waiting[i], &e2);
                        sd_bus_message_unref(waiting[i]);
                }
                return 0;
        }

        log_debug("polkit: %s %s for %s%s%s", e->action,
                  authorized ? "authorized" : challenge ? "needs authentication" : "not authorized", e->peer->name,
                  interactive ? " (interactive)" : "", dismissed ? " (dismissed)" : "");
        if (authorized) {
                /* An answer that needed a password is kept only as long as
                 * polkit keeps it (auth_admin_keep). */
                e->cached = !interactive || retains ? ANSWER_YES : ANSWER_NONE;
                for (size_t i = 0; i < n; i++) {
                        redispatch(e, waiting[i], e->cached != ANSWER_YES);
                        sd_bus_message_unref(waiting[i]);
                }
                return 0;
        }
        e->cached = challenge ? ANSWER_CHALLENGE : ANSWER_NO;
        for (size_t i = 0; i < n; i++) {
                bool wants = sd_bus_message_get_allow_interactive_authorization(waiting[i]) > 0;
                if (challenge && wants && !interactive)
                        /* It may authenticate: its turn to ask, interactively. */
                        redispatch(e, waiting[i], false);
                else
                        reply_refusal(waiting[i], e->cached, e->action);
                sd_bus_message_unref(waiting[i]);
        }
        return 0;
}

static int check_start(Entry *e, sd_bus_message *call, bool interactive, sd_bus_error *error) {
        Manager *m = e->peer->authority->manager;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *req = NULL;
        int r;

        r = sd_bus_message_new_method_call(m->bus, &req, POLKIT_NAME, POLKIT_PATH, POLKIT_IFACE,
                                           "CheckAuthorization");
        if (r >= 0)
                r = sd_bus_message_append(req, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name", "s", e->peer->name,
                                          e->action, 0, interactive ? POLKIT_FLAG_ALLOW_USER_INTERACTION : 0u, "");
        /* polkit's own agent talks to the user, not the bus message. */
        if (r >= 0)
                r = sd_bus_call_async(m->bus, &e->slot, req, on_check_reply, e,
                                      interactive ? CHECK_TIMEOUT_INTERACTIVE_USEC : CHECK_TIMEOUT_USEC);
        if (r < 0) {
                log_warning_errno(r, "cannot ask polkit about %s: %m", e->action);
                return sd_bus_error_setf(error, SOTTO_ERROR_AUTHORIZATION_UNAVAILABLE,
                                         "Cannot check whether you may %s: cannot ask polkit (%s).",
                                         action_what(e->action), strerror(-r));
        }
        e->interactive = interactive;
        e->waiting[e->n_waiting++] = sd_bus_message_ref(call);
        log_debug("asking polkit whether %s may %s%s", e->peer->name, e->action, interactive ? " (interactive)" : "");
        return 0;
}

int authorize(Manager *m, sd_bus_message *call, const char *action, sd_bus_error *error) {
        Authority *a;
        Peer *p;
        Entry *e;
        int r;

        if (!m->config.polkit)
                return 1;
        const char *id = action_find(action);
        if (!id)
                return log_error_errno(-EINVAL, "authorize(): unknown action %s", action);
        const char *sender = sd_bus_message_get_sender(call);
        if (!sender)
                /* Peer-to-peer: nobody to ask polkit about. */
                return sd_bus_error_setf(error, SOTTO_ERROR_NOT_AUTHORIZED,
                                         "The call has no sender; cannot check whether you may %s.",
                                         action_what(id));
        r = authority_get(m, &a);
        if (r >= 0)
                r = peer_get(a, sender, &p);
        if (r >= 0)
                r = entry_get(p, id, &e);
        if (r < 0)
                return r;

        if (grant_take(e, call))
                return 1;
        bool interactive = sd_bus_message_get_allow_interactive_authorization(call) > 0;
        if (e->slot) {
                /* A check is under way: wait for its answer. */
                if (e->n_waiting == WAIT_MAX)
                        return sd_bus_error_setf(error, SOTTO_ERROR_BUSY,
                                                 "%u of your calls wait for the same authorization already.",
                                                 WAIT_MAX);
                e->waiting[e->n_waiting++] = sd_bus_message_ref(call);
                return 0;
        }
        switch (e->cached) {
        case ANSWER_YES:
                return 1;
        case ANSWER_NO:
                return refuse(error, ANSWER_NO, interactive, id);
        case ANSWER_CHALLENGE:
                if (!interactive)
                        return refuse(error, ANSWER_CHALLENGE, false, id);
                break; /* it may authenticate now: ask again */
        case ANSWER_NONE:
                break;
        }
        r = check_start(e, call, interactive, error);
        return r < 0 ? r : 0;
}

/* ---- Service.Authorize ---- */

int method_authorize(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *action;
        int r;

        r = sd_bus_message_read(msg, "s", &action);
        if (r < 0)
                return r;
        if (!authorize_action_known(action))
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                         "Unknown action '%s'; sotto's actions are org.sotto.generate, "
                                         "org.sotto.dictate, org.sotto.manage-models and org.sotto.configure.",
                                         action);
        r = authorize(m, msg, action, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        return sd_bus_reply_method_return(msg, "");
}
