/* SPDX-License-Identifier: MIT */
/* The sampler: greedy ties, seeds, each filter of the chain against
 * hand-computed expectations, the repetition penalty, and the shape of the
 * distribution it draws from. */
#include <errno.h>

#include "engine.h"
#include "test.h"

#define V 16

static engine_sampler *make(float temp, int32_t top_k, float top_p, float min_p, float rep, int32_t last_n,
                            uint64_t seed) {
        engine_sampler_params p;
        engine_sampler *s = NULL;

        engine_sampler_default_params(&p);
        p.temperature = temp;
        p.top_k = top_k;
        p.top_p = top_p;
        p.min_p = min_p;
        p.repeat_penalty = rep;
        p.repeat_last_n = last_n;
        p.seed = seed;
        CHECK_OK(engine_sampler_new(&p, V, &s));
        return s;
}

/* logits whose softmax is probs (up to a constant) */
static void from_probs(float *l, const double *probs) {
        for (int i = 0; i < V; i++)
                l[i] = probs[i] > 0 ? (float)log(probs[i]) : -1e30f;
}

/* Draw n times; counts[id]++. */
static void draw(engine_sampler *s, const float *logits, int n, int *counts) {
        float l[V];
        memset(counts, 0, V * sizeof(int));
        for (int i = 0; i < n; i++) {
                memcpy(l, logits, sizeof l);
                int32_t id = engine_sampler_sample(s, l);
                CHECK(id >= 0 && id < V);
                counts[id]++;
        }
}

static void test_greedy(void) {
        engine_sampler *s = make(0.0f, 40, 0.9f, 0.1f, 1.0f, 64, 1);
        float l[V] = { 0 };
        l[5] = 3.0f;
        l[9] = 3.0f; /* tie: the lowest id wins */
        l[2] = 2.9f;
        CHECK_EQ_INT(engine_sampler_sample(s, l), 5);
        memset(l, 0, sizeof l);
        CHECK_EQ_INT(engine_sampler_sample(s, l), 0);
        l[V - 1] = -0.5f;
        l[3] = 1e-6f;
        CHECK_EQ_INT(engine_sampler_sample(s, l), 3);
        engine_sampler_free(s);
}

static void test_seed(void) {
        float logits[V];
        for (int i = 0; i < V; i++)
                logits[i] = (float)(i % 5) * 0.3f;
        int32_t a[64], b[64], c[64];
        engine_sampler *sa = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 0, 1234);
        engine_sampler *sb = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 0, 1234);
        engine_sampler *sc = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 0, 1235);
        for (int i = 0; i < 64; i++) {
                float l[V];
                memcpy(l, logits, sizeof l);
                a[i] = engine_sampler_sample(sa, l);
                memcpy(l, logits, sizeof l);
                b[i] = engine_sampler_sample(sb, l);
                memcpy(l, logits, sizeof l);
                c[i] = engine_sampler_sample(sc, l);
        }
        CHECK(memcmp(a, b, sizeof a) == 0);
        CHECK(memcmp(a, c, sizeof a) != 0);
        engine_sampler_free(sa);
        engine_sampler_free(sb);
        engine_sampler_free(sc);
}

static void test_distribution(void) {
        double probs[V] = { 0.5, 0.25, 0.125, 0.0625, 0.0625 };
        float l[V];
        int counts[V], n = 40000;

        from_probs(l, probs);

        /* temperature 1, no filter: the softmax itself */
        engine_sampler *s = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 0, 7);
        draw(s, l, n, counts);
        for (int i = 0; i < 5; i++)
                CHECK_MSG(fabs(counts[i] / (double)n - probs[i]) < 0.015, "token %d drawn %d times of %d", i,
                          counts[i], n);
        engine_sampler_free(s);

        /* temperature 0.5 squares the probabilities: 16:4:1:0.25:0.25 */
        s = make(0.5f, 0, 1.0f, 0.0f, 1.0f, 0, 8);
        draw(s, l, n, counts);
        double z = 16 + 4 + 1 + 0.25 + 0.25;
        CHECK(fabs(counts[0] / (double)n - 16 / z) < 0.015);
        CHECK(fabs(counts[1] / (double)n - 4 / z) < 0.015);
        engine_sampler_free(s);

        /* top-k 2: only the two best, renormalized 2:1 */
        s = make(1.0f, 2, 1.0f, 0.0f, 1.0f, 0, 9);
        draw(s, l, n, counts);
        CHECK_EQ_INT(counts[0] + counts[1], n);
        CHECK(fabs(counts[0] / (double)n - 2.0 / 3) < 0.015);
        engine_sampler_free(s);

        /* top-k 1 is greedy at any temperature */
        s = make(5.0f, 1, 1.0f, 0.0f, 1.0f, 0, 10);
        draw(s, l, 1000, counts);
        CHECK_EQ_INT(counts[0], 1000);
        engine_sampler_free(s);

        /* top-p 0.7: 0.5 < 0.7 <= 0.75, so tokens 0 and 1 */
        s = make(1.0f, 0, 0.7f, 0.0f, 1.0f, 0, 11);
        draw(s, l, n, counts);
        CHECK_EQ_INT(counts[0] + counts[1], n);
        CHECK(counts[1] > n / 5);
        engine_sampler_free(s);

        /* top-p 0.8: 0.75 < 0.8 <= 0.875, tokens 0..2 */
        s = make(1.0f, 0, 0.8f, 0.0f, 1.0f, 0, 12);
        draw(s, l, n, counts);
        CHECK_EQ_INT(counts[0] + counts[1] + counts[2], n);
        CHECK(counts[2] > n / 20);
        engine_sampler_free(s);

        /* min-p 0.2: p >= 0.1 passes, so tokens 0..2 (0.125); 0.0625 fails */
        s = make(1.0f, 0, 1.0f, 0.2f, 1.0f, 0, 13);
        draw(s, l, n, counts);
        CHECK_EQ_INT(counts[0] + counts[1] + counts[2], n);
        CHECK(counts[2] > n / 20);
        engine_sampler_free(s);

        /* the chain: top-k 4, then min-p 0.3 (p >= 0.15): tokens 0, 1 */
        s = make(1.0f, 4, 1.0f, 0.3f, 1.0f, 0, 14);
        draw(s, l, n, counts);
        CHECK_EQ_INT(counts[0] + counts[1], n);
        engine_sampler_free(s);
}

static void test_penalty(void) {
        engine_sampler *s = make(0.0f, 0, 1.0f, 0.0f, 2.0f, 3, 1);
        float l[V] = { 0 };

        l[4] = 2.0f;
        l[6] = 1.5f;
        l[8] = -1.0f;
        l[9] = -1.5f;
        /* nothing accepted yet: no penalty */
        CHECK_EQ_INT(engine_sampler_sample(s, l), 4);
        CHECK(l[4] == 2.0f);

        /* 4 accepted (twice: still divided once, as llama.cpp) */
        engine_sampler_accept(s, 4);
        engine_sampler_accept(s, 4);
        engine_sampler_accept(s, 8);
        l[4] = 2.0f;
        CHECK_EQ_INT(engine_sampler_sample(s, l), 6);
        CHECK(l[4] == 1.0f);  /* positive: divided */
        CHECK(l[8] == -2.0f); /* negative: multiplied */
        CHECK(l[9] == -1.5f); /* never seen */

        /* the window is 3: after three more tokens 4 and 8 are forgotten */
        engine_sampler_accept(s, 1);
        engine_sampler_accept(s, 2);
        engine_sampler_accept(s, 3);
        memset(l, 0, sizeof l);
        l[4] = 2.0f;
        l[8] = -1.0f;
        CHECK_EQ_INT(engine_sampler_sample(s, l), 4);
        CHECK(l[4] == 2.0f && l[8] == -1.0f);
        engine_sampler_free(s);
}

static void test_params(void) {
        engine_sampler_params p;
        engine_sampler *s = NULL;

        engine_sampler_default_params(&p);
        CHECK(p.temperature > 0 && p.top_k > 0 && p.top_p <= 1 && p.repeat_penalty == 1.0f);
        CHECK_EQ_INT(engine_sampler_new(&p, 0, &s), -EINVAL);
        p.repeat_last_n = -1;
        CHECK_EQ_INT(engine_sampler_new(&p, V, &s), -EINVAL);
        engine_sampler_default_params(&p);
        p.repeat_penalty = 0.0f;
        CHECK_EQ_INT(engine_sampler_new(&p, V, &s), -EINVAL);
        p.repeat_penalty = NAN;
        CHECK_EQ_INT(engine_sampler_new(&p, V, &s), -EINVAL);

        /* the defaults with a random seed sample something valid */
        engine_sampler_default_params(&p);
        CHECK_OK(engine_sampler_new(&p, V, &s));
        float l[V];
        for (int i = 0; i < V; i++)
                l[i] = (float)i;
        int32_t id = engine_sampler_sample(s, l);
        CHECK(id >= 0 && id < V);
        engine_sampler_free(s);
}

int main(void) {
        test_greedy();
        test_seed();
        test_distribution();
        test_penalty();
        test_params();
        return 0;
}
