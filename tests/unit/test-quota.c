/* SPDX-License-Identifier: MIT */
/* Token buckets and limits on a fake clock: full at start, refill at the
 * configured rate, debt from streamed charges, retry times exact to the
 * microsecond, merging of [Defaults] and [App] limits. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "daemon/sottod/quota.h"
#include "test.h"

#define SEC 1000000ull
#define MIN_USEC (60 * SEC)

static void test_bucket(void) {
        TokenBucket b = {};
        uint64_t t = 1000 * SEC; /* any start */

        /* 60 tokens a minute: one a second */
        CHECK_EQ_INT(bucket_retry_usec(&b, 60, MIN_USEC, t), 0);
        CHECK(fabs(bucket_level(&b, 60, MIN_USEC, t) - 60.0) < 1e-9);
        bucket_charge(&b, 60, MIN_USEC, 60, t);
        CHECK_EQ_INT(bucket_retry_usec(&b, 60, MIN_USEC, t), 0); /* empty, not in debt */
        bucket_charge(&b, 60, MIN_USEC, 12, t);
        /* 12 tokens of debt at 1/s: 12 s exactly */
        CHECK_EQ_INT(bucket_retry_usec(&b, 60, MIN_USEC, t), 12 * SEC);
        CHECK_EQ_INT(bucket_retry_usec(&b, 60, MIN_USEC, t + 5 * SEC), 7 * SEC);
        CHECK_EQ_INT(bucket_retry_usec(&b, 60, MIN_USEC, t + 12 * SEC - 1), 1);
        CHECK_EQ_INT(bucket_retry_usec(&b, 60, MIN_USEC, t + 12 * SEC), 0);
        /* refills to capacity, not beyond */
        CHECK(fabs(bucket_level(&b, 60, MIN_USEC, t + 3600 * SEC) - 60.0) < 1e-9);
        /* time going backwards changes nothing */
        CHECK(fabs(bucket_level(&b, 60, MIN_USEC, t) - 60.0) < 1e-9);

        /* fractional charges (audio seconds) */
        TokenBucket a = {};
        uint64_t hour = 3600 * SEC;
        bucket_charge(&a, 10, hour, 10.5, t); /* 0.5 s in debt at 10 per hour */
        CHECK_EQ_INT(bucket_retry_usec(&a, 10, hour, t), 180 * SEC);

        /* debt is bounded at one full bucket */
        TokenBucket d = {};
        bucket_charge(&d, 100, MIN_USEC, 1e12, t);
        CHECK_EQ_INT(bucket_retry_usec(&d, 100, MIN_USEC, t), MIN_USEC);
        CHECK(fabs(bucket_level(&d, 100, MIN_USEC, t) + 100.0) < 1e-9);

        /* unlimited */
        TokenBucket u = {};
        bucket_charge(&u, 0, MIN_USEC, 1e9, t);
        CHECK_EQ_INT(bucket_retry_usec(&u, 0, MIN_USEC, t), 0);
        CHECK(isinf(bucket_level(&u, 0, MIN_USEC, t)));

        /* the largest rate does not overflow over a long idle time */
        TokenBucket big = {};
        bucket_charge(&big, QUOTA_RATE_MAX, hour, 2.0 * QUOTA_RATE_MAX, t);
        CHECK(bucket_retry_usec(&big, QUOTA_RATE_MAX, hour, t) == hour);
        CHECK(bucket_retry_usec(&big, QUOTA_RATE_MAX, hour, t + 1000 * hour) == 0);
        CHECK(fabs(bucket_level(&big, QUOTA_RATE_MAX, hour, t + 2000 * hour) - QUOTA_RATE_MAX) < 1);

        /* a lowered limit caps the level at the new capacity */
        TokenBucket l = {};
        bucket_refill(&l, 1000, MIN_USEC, t);
        CHECK(fabs(bucket_level(&l, 10, MIN_USEC, t + 1) - 10.0) < 1e-9);
}

static void test_state(void) {
        QuotaLimits l = {};
        QuotaState s = {};
        QuotaKind which = _QUOTA_KIND_MAX;
        uint64_t t = 5 * SEC;
        l.rate[QUOTA_PROMPT_TOKENS] = 600;   /* 10/s */
        l.rate[QUOTA_GENERATED_TOKENS] = 60; /* 1/s */
        unsigned tokens = 1u << QUOTA_PROMPT_TOKENS | 1u << QUOTA_GENERATED_TOKENS;

        CHECK_EQ_INT(quota_state_check(&s, &l, tokens, t, &which), 0);
        quota_state_charge(&s, &l, QUOTA_PROMPT_TOKENS, 650, t);  /* 50 over: 5 s */
        quota_state_charge(&s, &l, QUOTA_GENERATED_TOKENS, 63, t); /* 3 over: 3 s */
        CHECK_EQ_INT(quota_state_check(&s, &l, tokens, t, &which), 5 * SEC);
        CHECK_EQ_INT(which, QUOTA_PROMPT_TOKENS);
        /* the generated limit alone */
        CHECK_EQ_INT(quota_state_check(&s, &l, 1u << QUOTA_GENERATED_TOKENS, t, &which), 3 * SEC);
        CHECK_EQ_INT(which, QUOTA_GENERATED_TOKENS);
        CHECK_EQ_INT(quota_state_check(&s, &l, tokens, t + 5 * SEC, &which), 0);
        /* images are unlimited here */
        quota_state_charge(&s, &l, QUOTA_IMAGES, 100, t);
        CHECK_EQ_INT(quota_state_check(&s, &l, 1u << QUOTA_IMAGES, t, &which), 0);
}

static void test_merge_and_names(void) {
        QuotaLimits d = { .rate = { 1000, 2000, 0, 0 }, .max_concurrent = 4, .priority = PRIORITY_INTERACTIVE };
        QuotaLimits app = { .rate = { 0, 50, 0, 0 }, .priority = PRIORITY_BACKGROUND };
        app.set = (QUOTA_SET_RATE0 << QUOTA_GENERATED_TOKENS) | QUOTA_SET_PRIORITY;
        quota_limits_merge(&d, &app);
        CHECK_EQ_INT(d.rate[QUOTA_PROMPT_TOKENS], 1000); /* not set by the app: kept */
        CHECK_EQ_INT(d.rate[QUOTA_GENERATED_TOKENS], 50);
        CHECK_EQ_INT(d.max_concurrent, 4);
        CHECK_EQ_INT(d.priority, PRIORITY_BACKGROUND);

        Priority p;
        CHECK_OK(priority_from_string("idle", &p));
        CHECK_EQ_INT(p, PRIORITY_IDLE);
        CHECK_EQ_INT(priority_from_string("Idle", &p), -EINVAL);
        CHECK_EQ_INT(priority_from_string("", &p), -EINVAL);
        CHECK(!strcmp(quota_kind_to_string(QUOTA_AUDIO_SECONDS), "AudioSecondsPerHour"));
        CHECK_EQ_INT(quota_kind_period_usec(QUOTA_IMAGES), 3600 * SEC);

        char buf[128];
        quota_format_error(buf, sizeof buf, "PromptTokensPerMinute", 12 * SEC);
        CHECK(!strcmp(buf, "limit=PromptTokensPerMinute retry-after=12"));
        quota_format_error(buf, sizeof buf, "GeneratedTokensPerMinute", 11 * SEC + 1);
        CHECK(!strcmp(buf, "limit=GeneratedTokensPerMinute retry-after=12"));
        CHECK_EQ_INT(quota_retry_seconds(0), 1);
        CHECK_EQ_INT(quota_retry_seconds(1), 1);
}

int main(void) {
        test_bucket();
        test_state();
        test_merge_and_names();
        printf("quota: ok\n");
        return 0;
}
