/* SPDX-License-Identifier: MIT */
/* Token buckets and limits: pure functions of (limits, state, clock). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "daemon/sottod/quota.h"
#include "macro.h"

static const char *const kind_names[_QUOTA_KIND_MAX] = {
        [QUOTA_PROMPT_TOKENS] = "PromptTokensPerMinute",
        [QUOTA_GENERATED_TOKENS] = "GeneratedTokensPerMinute",
        [QUOTA_AUDIO_SECONDS] = "AudioSecondsPerHour",
        [QUOTA_IMAGES] = "ImagesPerHour",
};

static const char *const priority_names[_PRIORITY_MAX] = {
        [PRIORITY_INTERACTIVE] = "interactive",
        [PRIORITY_BACKGROUND] = "background",
        [PRIORITY_IDLE] = "idle",
};

const char *quota_kind_to_string(QuotaKind k) {
        return k >= 0 && k < _QUOTA_KIND_MAX ? kind_names[k] : "?";
}

uint64_t quota_kind_period_usec(QuotaKind k) {
        return k == QUOTA_AUDIO_SECONDS || k == QUOTA_IMAGES ? 3600ull * 1000000 : 60ull * 1000000;
}

const char *priority_to_string(Priority p) {
        return p >= 0 && p < _PRIORITY_MAX ? priority_names[p] : "?";
}

int priority_from_string(const char *s, Priority *ret) {
        for (Priority p = 0; p < _PRIORITY_MAX; p++)
                if (!strcmp(s, priority_names[p])) {
                        *ret = p;
                        return 0;
                }
        return -EINVAL;
}

void quota_limits_merge(QuotaLimits *base, const QuotaLimits *over) {
        for (QuotaKind k = 0; k < _QUOTA_KIND_MAX; k++)
                if (over->set & (QUOTA_SET_RATE0 << k))
                        base->rate[k] = over->rate[k];
        if (over->set & QUOTA_SET_MAX_CONCURRENT)
                base->max_concurrent = over->max_concurrent;
        if (over->set & QUOTA_SET_MAX_PROMPT)
                base->max_prompt_tokens = over->max_prompt_tokens;
        if (over->set & QUOTA_SET_MAX_ANSWER)
                base->max_answer_tokens = over->max_answer_tokens;
        if (over->set & QUOTA_SET_PRIORITY)
                base->priority = over->priority;
        base->set |= over->set;
}

/* ---- buckets ---- */

void bucket_refill(TokenBucket *b, uint64_t rate, uint64_t period_usec, uint64_t now) {
        int64_t cap = (int64_t)(MIN(rate, QUOTA_RATE_MAX) * period_usec);
        if (!b->primed) {
                /* A new application starts with a full bucket. */
                b->primed = true;
                b->level = cap;
                b->t = now;
                return;
        }
        if (now <= b->t)
                return;
        uint64_t dt = now - b->t;
        b->t = now;
        if (dt > period_usec * 2) /* long idle: full, and no overflow below */
                dt = period_usec * 2;
        int64_t add = (int64_t)(MIN(rate, QUOTA_RATE_MAX) * dt);
        b->level = b->level > cap - add ? cap : b->level + add;
        /* A lowered limit: never more than the new capacity. */
        if (b->level > cap)
                b->level = cap;
}

uint64_t bucket_retry_usec(TokenBucket *b, uint64_t rate, uint64_t period_usec, uint64_t now) {
        if (rate == 0)
                return 0;
        bucket_refill(b, rate, period_usec, now);
        if (b->level >= 0)
                return 0;
        uint64_t debt = (uint64_t)-b->level, r = MIN(rate, QUOTA_RATE_MAX);
        return (debt + r - 1) / r; /* exact: level grows by rate per us */
}

void bucket_charge(TokenBucket *b, uint64_t rate, uint64_t period_usec, double amount, uint64_t now) {
        if (rate == 0 || !(amount > 0))
                return;
        bucket_refill(b, rate, period_usec, now);
        /* Debt is bounded at one full bucket: nobody waits more than one
         * period, and the arithmetic stays within int64. */
        double cap = (double)MIN(rate, QUOTA_RATE_MAX) * (double)period_usec;
        double v = (double)b->level - amount * (double)period_usec;
        if (v < -cap)
                v = -cap;
        int64_t iv = (int64_t)v; /* floor, without libm */
        if ((double)iv > v)
                iv--;
        b->level = iv;
}

double bucket_level(TokenBucket *b, uint64_t rate, uint64_t period_usec, uint64_t now) {
        if (rate == 0)
                return INFINITY;
        bucket_refill(b, rate, period_usec, now);
        return (double)b->level / (double)period_usec;
}

/* ---- state ---- */

uint64_t quota_state_check(QuotaState *s, const QuotaLimits *l, unsigned mask, uint64_t now, QuotaKind *which) {
        uint64_t worst = 0;
        for (QuotaKind k = 0; k < _QUOTA_KIND_MAX; k++) {
                if (!(mask & (1u << k)) || l->rate[k] == 0)
                        continue;
                uint64_t w = bucket_retry_usec(&s->bucket[k], l->rate[k], quota_kind_period_usec(k), now);
                if (w > worst) {
                        worst = w;
                        if (which)
                                *which = k;
                }
        }
        return worst;
}

void quota_state_charge(QuotaState *s, const QuotaLimits *l, QuotaKind k, double amount, uint64_t now) {
        if (k < 0 || k >= _QUOTA_KIND_MAX)
                return;
        bucket_charge(&s->bucket[k], l->rate[k], quota_kind_period_usec(k), amount, now);
}

uint64_t quota_retry_seconds(uint64_t retry_usec) {
        uint64_t s = (retry_usec + 999999) / 1000000;
        return s ? s : 1;
}

void quota_format_error(char *buf, size_t size, const char *limit, uint64_t retry_usec) {
        snprintf(buf, size, "limit=%s retry-after=%llu", limit, (unsigned long long)quota_retry_seconds(retry_usec));
}
