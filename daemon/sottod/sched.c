/* SPDX-License-Identifier: MIT */
/* Which queued request runs next.
 *
 *  1. Priority: interactive before background before idle (the
 *     application's Priority=).  Nothing starves: a request that has waited
 *     AGING_USEC counts one class higher, and another class per further
 *     AGING_USEC.
 *  2. While one slot is free, interactive work always gets it: background
 *     and idle requests may fill at most MaxActive - 1 slots (when MaxActive
 *     is 2 or more), so an interactive request never waits for a long
 *     background generation to end; in the worker it then only shares the
 *     decoding steps.
 *  3. Within a class: the application served least recently first (round
 *     robin over applications, whatever the number of callers or requests
 *     each has), then within it the caller served least recently, then the
 *     oldest request. */
#include "daemon/sottod/manager.h"
#include "daemon/sottod/quota-manager.h"

#define AGING_USEC (10 * 1000000ull)

static int effective_class(const Request *q, uint64_t now) {
        App *a = q->caller->app;
        int cls = a ? (int)a->limits.priority : PRIORITY_INTERACTIVE;
        uint64_t waited = now > q->t_call ? now - q->t_call : 0;
        cls -= (int)MIN(waited / AGING_USEC, (uint64_t)_PRIORITY_MAX);
        return cls < 0 ? 0 : cls;
}

/* The first request of c that may run now: a chat turn waits for the
 * worker that holds the chat's cache. */
static Request *caller_head(Caller *c) {
        Request *q = c->queue_head;
        while (q && q->chat && q->chat->worker && !q->chat->worker->ready)
                q = q->queue_next;
        return q;
}

Request *sched_pick(Manager *m) {
        return sched_pick_at(m, now_usec());
}

Request *sched_pick_at(Manager *m, uint64_t now) {
        bool reserve = m->config.max_active >= 2 && m->n_active + 1 >= m->config.max_active;
        Request *best = NULL;
        int best_cls = _PRIORITY_MAX;

        for (Caller *c = m->callers; c; c = c->next) {
                Request *q = caller_head(c);
                if (!q)
                        continue;
                int cls = effective_class(q, now);
                if (reserve && cls > PRIORITY_INTERACTIVE)
                        continue;
                if (best) {
                        if (cls != best_cls) {
                                if (cls > best_cls)
                                        continue;
                        } else {
                                App *a = c->app, *b = best->caller->app;
                                uint64_t as = a ? a->last_served : 0, bs = b ? b->last_served : 0;
                                if (a != b) {
                                        if (as != bs ? as > bs : q->t_call >= best->t_call)
                                                continue;
                                } else if (c->last_served != best->caller->last_served
                                                   ? c->last_served > best->caller->last_served
                                                   : q->t_call >= best->t_call)
                                        continue;
                        }
                }
                best = q;
                best_cls = cls;
        }
        if (best) {
                /* manager_schedule stops here when the worker is not ready:
                 * then nobody was served, and the turns stay as they are. */
                Worker *w = best->chat && best->chat->worker ? best->chat->worker : m->worker;
                if (!w || !w->ready || w->dead)
                        return best;
                uint64_t stamp = m->quotas ? ++m->quotas->serve_clock : now;
                best->caller->last_served = stamp;
                if (best->caller->app)
                        best->caller->app->last_served = stamp;
        }
        return best;
}
