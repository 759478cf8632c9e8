/* SPDX-License-Identifier: MIT */
/* Continuous batching (engine_session_eval_batch): n sessions with prompts
 * of different lengths advanced together give, step after step, the same
 * logits as each session evaluated on its own, for 1..4 sessions and
 * several weight types (../shared golden llama, gemma3 and gemma3n files;
 * gemma bit for bit, also past a sliding-window ring's wrap); the KV caches stay
 * apart (a later one-by-one step still matches), and bad calls are
 * refused. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "engine.h"
#include "macro.h"
#include "engine-test.h"
#include "test.h"

static const char *shared;

static engine_model *load(const char *rel) {
        char path[4096];

        snprintf(path, sizeof path, "%s/%s", shared, rel);
        return test_load_model(path, 2);
}

static uint32_t seed = 12345;
static int32_t rnd_token(int32_t n_vocab) {
        seed = seed * 1664525u + 1013904223u;
        return 3 + (int32_t)((seed >> 8) % (uint32_t)(n_vocab - 3));
}

static void test_model(const char *rel) {
        enum { NS = 4, STEPS = 5 };
        engine_model *m = load(rel);
        int32_t V = engine_model_n_vocab(m);
        float *lb = malloc(sizeof(float) * V * NS), *l1 = malloc(sizeof(float) * V);
        float worst = 0;
        CHECK(lb && l1);

        for (int n = 1; n <= NS; n++) {
                engine_session *bs[NS], *os[NS];
                for (int i = 0; i < n; i++) {
                        /* contexts of different sizes: the scratch owner varies */
                        bs[i] = test_new_session(m, 64 + 32 * i);
                        os[i] = test_new_session(m, 64 + 32 * i);
                        int32_t prompt[16];
                        int32_t len = 1 + 3 * i + n;
                        prompt[0] = 1;
                        for (int32_t k = 1; k < len; k++)
                                prompt[k] = rnd_token(V);
                        CHECK_OK(engine_session_eval(bs[i], prompt, len, false, NULL));
                        CHECK_OK(engine_session_eval(os[i], prompt, len, false, NULL));
                }
                for (int step = 0; step < STEPS; step++) {
                        int32_t tok[NS];
                        for (int i = 0; i < n; i++)
                                tok[i] = rnd_token(V);
                        CHECK_OK(engine_session_eval_batch(bs, tok, n, lb));
                        for (int i = 0; i < n; i++) {
                                CHECK_OK(engine_session_eval(os[i], &tok[i], 1, false, l1));
                                CHECK(engine_session_n_past(bs[i]) == engine_session_n_past(os[i]));
                                float amax = 0, d = 0;
                                for (int32_t v = 0; v < V; v++) {
                                        amax = fmaxf(amax, fabsf(l1[v]));
                                        float e = fabsf(l1[v] - lb[(size_t)i * V + v]);
                                        d = isnan(e) || e > d ? (isnan(e) ? INFINITY : e) : d;
                                }
                                worst = fmaxf(worst, d);
                                /* same kernels per row: equal up to float rounding
                                 * (gemma: bit for bit) */
                                CHECK_MSG(strstr(rel, "gemma") ? d == 0 : d <= 1e-5f * amax, "%s n=%d step %d session %d: max diff %g (max |logit| %g)",
                                          rel, n, step, i, d, amax);
                        }
                }
                /* the caches stayed apart: one more step alone still matches */
                int32_t t = rnd_token(V);
                CHECK_OK(engine_session_eval(bs[n - 1], &t, 1, false, lb));
                CHECK_OK(engine_session_eval(os[n - 1], &t, 1, false, l1));
                CHECK(memcmp(lb, l1, sizeof(float) * V) == 0);
                for (int i = 0; i < n; i++) {
                        engine_session_free(bs[i]);
                        engine_session_free(os[i]);
                }
        }

        /* bad calls */
        engine_session *a = test_new_session(m, 8), *b = test_new_session(m, 8);
        engine_session *two[2] = { a, a }, *ab[2] = { a, b };
        int32_t tk[2] = { 5, 6 }, bad[2] = { 5, -1 };
        CHECK(engine_session_eval_batch(two, tk, 2, lb) == -EINVAL);
        CHECK(engine_session_eval_batch(ab, bad, 2, lb) == -EINVAL);
        CHECK(engine_session_eval_batch(ab, tk, 0, lb) == -EINVAL);
        CHECK(engine_session_eval_batch(ab, tk, ENGINE_BATCH_MAX + 1, lb) == -EINVAL);
        int32_t fill[8] = { 1, 5, 6, 7, 8, 9, 10, 11 };
        CHECK_OK(engine_session_eval(b, fill, 8, false, NULL));
        CHECK(engine_session_eval_batch(ab, tk, 2, lb) == -ENOSPC);
        CHECK(engine_session_n_past(a) == 0);
        engine_session_free(a);
        engine_session_free(b);

        printf("%s: batched = one by one (max diff %g)\n", rel, worst);
        free(lb);
        free(l1);
        engine_model_free(m);
}

/* Gemma sessions past their sliding-window ring's wrap, one with a ring
 * and one keeping every position (kv_full: no gather buffer, a larger
 * context), batched: bit-equal to one by one. */
static void test_ring(const char *rel) {
        enum { NS = 2, PROMPT = 600, STEPS = 5 };
        engine_model *m = load(rel);
        int32_t V = engine_model_n_vocab(m);
        float *lb = malloc(sizeof(float) * V * NS), *l1 = malloc(sizeof(float) * V);
        engine_session *bs[NS], *os[NS];
        int32_t *prompt = malloc(sizeof(int32_t) * PROMPT);
        CHECK(lb && l1 && prompt);

        for (int i = 0; i < NS; i++) {
                engine_session_params sp;
                char err[256] = "";
                engine_session_default_params(&sp);
                sp.n_ctx = 1024 + 1024 * i;
                sp.kv_full = i == 1;
                CHECK_MSG(engine_session_new(m, &sp, &bs[i], err, sizeof err) >= 0, "%s", err);
                CHECK_MSG(engine_session_new(m, &sp, &os[i], err, sizeof err) >= 0, "%s", err);
                prompt[0] = 2;
                for (int k = 1; k < PROMPT - i; k++)
                        prompt[k] = rnd_token(V);
                CHECK_OK(engine_session_eval(bs[i], prompt, PROMPT - i, false, NULL));
                CHECK_OK(engine_session_eval(os[i], prompt, PROMPT - i, false, NULL));
        }
        for (int step = 0; step < STEPS; step++) {
                int32_t tok[NS];
                for (int i = 0; i < NS; i++)
                        tok[i] = rnd_token(V);
                CHECK_OK(engine_session_eval_batch(bs, tok, NS, lb));
                for (int i = 0; i < NS; i++) {
                        CHECK_OK(engine_session_eval(os[i], &tok[i], 1, false, l1));
                        CHECK_MSG(memcmp(l1, lb + (size_t)i * V, sizeof(float) * V) == 0,
                                  "%s: ring step %d session %d differs", rel, step, i);
                }
        }
        for (int i = 0; i < NS; i++) {
                engine_session_free(bs[i]);
                engine_session_free(os[i]);
        }
        printf("%s: batched past the ring's wrap = one by one\n", rel);
        free(prompt);
        free(lb);
        free(l1);
        engine_model_free(m);
}

int main(void) {
        shared = test_shared_dir();
        if (!shared)
                return 77;
        test_model("golden/llama-f32.gguf");
        test_model("golden/llama-q4_0.gguf");
        test_model("golden/llama-q8_0.gguf");
        test_model("golden/llama-q4_k.gguf");
        test_model("golden/llama-q6_k.gguf");
        /* gemma3 / gemma3n (forward_batch of arch-gemma3.c, arch-gemma3n.c) */
        test_model("golden/gemma3-f32.gguf");
        test_model("golden/gemma3-q8_0.gguf");
        test_model("golden/gemma3n-f32.gguf");
        test_model("golden/gemma3n-f16.gguf");
        test_ring("golden/gemma3-q8_0.gguf");
        test_ring("golden/gemma3n-f32.gguf");
        return 0;
}
