/* SPDX-License-Identifier: MIT */
/* Per-application quotas: token buckets and limits (pure logic, the clock is
 * passed in), and the per-application records sottod keeps at run time.
 *
 * A bucket holds at most Rate units and refills continuously at Rate per
 * period (a minute for tokens, an hour for audio and images).  Use may run
 * it into debt (tokens are charged as they stream, after the fact); while a
 * bucket is in debt new work of that kind is refused with the time it takes
 * to climb back to zero.  Levels are kept in integer "unit-microseconds"
 * (units x period in us), so retry times are exact, not rounded floats. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum QuotaKind {
        QUOTA_PROMPT_TOKENS,    /* PromptTokensPerMinute */
        QUOTA_GENERATED_TOKENS, /* GeneratedTokensPerMinute */
        QUOTA_AUDIO_SECONDS,    /* AudioSecondsPerHour */
        QUOTA_IMAGES,           /* ImagesPerHour */
        _QUOTA_KIND_MAX,
} QuotaKind;

typedef enum Priority {
        PRIORITY_INTERACTIVE,
        PRIORITY_BACKGROUND,
        PRIORITY_IDLE,
        _PRIORITY_MAX,
} Priority;

/* Which fields a configuration section (or SetQuota) gave. */
enum {
        QUOTA_SET_RATE0 = 1u << 0, /* << kind */
        QUOTA_SET_MAX_CONCURRENT = 1u << 8,
        QUOTA_SET_MAX_PROMPT = 1u << 9,
        QUOTA_SET_MAX_ANSWER = 1u << 10,
        QUOTA_SET_PRIORITY = 1u << 11,
};

#define QUOTA_RATE_MAX 1000000000ull /* per period; keeps rate x period in int64 */

typedef struct QuotaLimits {
        uint64_t rate[_QUOTA_KIND_MAX]; /* per period; 0: unlimited */
        uint32_t max_concurrent;        /* requests queued or running; 0: unlimited */
        uint32_t max_prompt_tokens;     /* 0: unlimited */
        uint32_t max_answer_tokens;     /* 0: unlimited */
        Priority priority;
        unsigned set; /* QUOTA_SET_* */
} QuotaLimits;

typedef struct TokenBucket {
        int64_t level; /* units x period_usec; <= rate x period_usec */
        uint64_t t;    /* last refill */
        bool primed;
} TokenBucket;

const char *quota_kind_to_string(QuotaKind k); /* the configuration key */
uint64_t quota_kind_period_usec(QuotaKind k);
const char *priority_to_string(Priority p);
int priority_from_string(const char *s, Priority *ret);

/* over overlaid onto base: the fields over sets win. */
void quota_limits_merge(QuotaLimits *base, const QuotaLimits *over);

/* ---- buckets ---- */
void bucket_refill(TokenBucket *b, uint64_t rate, uint64_t period_usec, uint64_t now);
/* Refills, then: 0 if the bucket is not in debt, else the microseconds
 * until it is back at zero. */
uint64_t bucket_retry_usec(TokenBucket *b, uint64_t rate, uint64_t period_usec, uint64_t now);
void bucket_charge(TokenBucket *b, uint64_t rate, uint64_t period_usec, double amount, uint64_t now);
/* Units in the bucket now (negative: debt). */
double bucket_level(TokenBucket *b, uint64_t rate, uint64_t period_usec, uint64_t now);

/* ---- what an application has used of its limits ---- */
typedef struct QuotaState {
        TokenBucket bucket[_QUOTA_KIND_MAX];
} QuotaState;

/* 0 when a request may start now; else the microseconds to wait, with the
 * limit that refused it in *which.  Checks the kinds in mask (1 << kind). */
uint64_t quota_state_check(QuotaState *s, const QuotaLimits *l, unsigned mask, uint64_t now, QuotaKind *which);
void quota_state_charge(QuotaState *s, const QuotaLimits *l, QuotaKind k, double amount, uint64_t now);

/* "limit=PromptTokensPerMinute retry-after=12": the fixed, parsable part
 * of a QuotaExceeded message (see dbus/org.sotto.Sotto1.xml). */
void quota_format_error(char *buf, size_t size, const char *limit, uint64_t retry_usec);
uint64_t quota_retry_seconds(uint64_t retry_usec); /* rounded up, at least 1 */

/* ---- sottod's hooks (quota-manager.c) ---- */
typedef struct Manager Manager;
typedef struct Caller Caller;

/* For audio seconds and images (other modules): refuses with -EDQUOT and the
 * wait in *ret_retry_usec when the application's bucket of that kind is in
 * debt; otherwise charges amount (which may run it into debt) and returns 0. */
int quota_charge(Manager *m, Caller *c, QuotaKind kind, double amount, uint64_t *ret_retry_usec);
