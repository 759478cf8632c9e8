/* SPDX-License-Identifier: MIT */
/* The scheduler on a fake clock, with callers, applications and queued
 * requests built by hand (no bus): priority classes, the slot kept for
 * interactive work, round robin over applications and then callers, aging
 * so that nothing waits for ever. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/sottod/manager.h"
#include "daemon/sottod/quota-manager.h"
#include "test.h"

#define SEC 1000000ull

static Manager m;
static Quotas qs;
static Worker worker = { .ready = true };

static App *app(const char *id, Priority p) {
        App *a = calloc(1, sizeof *a);
        a->app_id = strdup(id);
        a->limits.priority = p;
        return a;
}

static Caller *caller(App *a) {
        Caller *c = calloc(1, sizeof *c);
        c->manager = &m;
        c->app = a;
        c->next = m.callers;
        m.callers = c;
        return c;
}

static Request *all[32]; /* reachable to the end: no leak reports */
static int n_all;

static Request *req(Caller *c, uint64_t t_call) {
        Request *q = calloc(1, sizeof *q);
        all[n_all++] = q;
        q->manager = &m;
        q->caller = c;
        q->t_call = t_call;
        if (c->queue_tail)
                c->queue_tail->queue_next = q;
        else
                c->queue_head = q;
        c->queue_tail = q;
        return q;
}

/* What manager_schedule does with a pick: off the queue, one more active. */
static Request *run(uint64_t now) {
        if (m.n_active >= m.config.max_active) /* manager_schedule asks only then */
                return NULL;
        Request *q = sched_pick_at(&m, now);
        if (!q)
                return NULL;
        Caller *c = q->caller;
        CHECK(c->queue_head == q);
        c->queue_head = q->queue_next;
        if (!c->queue_head)
                c->queue_tail = NULL;
        m.n_active++;
        return q;
}

int main(void) {
        m.quotas = &qs;
        m.worker = &worker;
        m.config.max_active = 3;
        uint64_t t = 100 * SEC;

        App *bg = app("org.example.Batch", PRIORITY_BACKGROUND);
        App *idle = app("org.example.Indexer", PRIORITY_IDLE);
        App *ed = app("org.example.Editor", PRIORITY_INTERACTIVE);
        App *term = app("org.example.Term", PRIORITY_INTERACTIVE);
        Caller *cb = caller(bg), *ci = caller(idle), *ce1 = caller(ed), *ce2 = caller(ed), *ct = caller(term);

        /* Idle and background came first; interactive still goes first. */
        Request *i1 = req(ci, t), *b1 = req(cb, t + 1), *b2 = req(cb, t + 2), *b3 = req(cb, t + 3);
        Request *e1 = req(ce1, t + 10), *e2 = req(ce1, t + 11), *e3 = req(ce1, t + 12), *e4 = req(ce2, t + 13);
        Request *t1 = req(ct, t + 20);
        t += 100;
        /* A worker that is not ready serves nobody: the turns stay. */
        worker.ready = false;
        CHECK(sched_pick_at(&m, t) == e1);
        CHECK(sched_pick_at(&m, t) == e1);
        worker.ready = true;
        /* Round robin over applications: Editor, Term, then Editor again
         * (its second caller, not the first caller's next request). */
        CHECK(run(t) == e1);
        CHECK(run(t) == t1);
        CHECK(run(t) == e4);
        CHECK(run(t) == NULL); /* three active: full */
        m.n_active = 1;
        CHECK(run(t) == e2);
        /* Two active of three: background may not take the last slot while... */
        CHECK(run(t) == e3);
        CHECK(m.n_active == 3);
        m.n_active = 1;
        /* only background and idle are left: one slot stays for interactive */
        CHECK(run(t) == b1);
        CHECK(run(t) == NULL);
        m.n_active = 0;
        CHECK(run(t) == b2); /* background before idle */
        CHECK(run(t) == b3);
        CHECK(run(t) == NULL); /* two of three: the last slot is kept */
        m.n_active = 0;

        /* Aging: after 10 s of waiting, idle counts as background, after 20 s
         * as interactive; the oldest request then wins within its class. */
        Request *b4 = req(cb, t + 9 * SEC);
        CHECK(run(t + 5 * SEC) == b4); /* i1 still idle */
        m.n_active = 0;
        Request *b5 = req(cb, t + 9 * SEC);
        CHECK(run(t + 11 * SEC) == i1); /* aged to background, and older than b5 */
        CHECK(run(t + 11 * SEC) == b5);
        /* two active: only an interactive-aged request may take the kept slot */
        Request *i2 = req(ci, t + 12 * SEC);
        CHECK(run(t + 13 * SEC) == NULL);
        CHECK(run(t + 12 * SEC + 21 * SEC) == i2);

        /* MaxActive = 1: nothing is kept back. */
        m.config.max_active = 1;
        m.n_active = 0;
        Request *b6 = req(cb, t + 40 * SEC);
        CHECK(run(t + 40 * SEC) == b6);

        printf("sched: ok\n");
        (void)e3;
        return 0;
}
