/* SPDX-License-Identifier: MIT */
/* The sliding-window ring of the gemma3 / gemma3n KV cache (kv-cache.h):
 * on the golden models (window 8), a session whose local layers keep a
 * ring of window + 512 slots gives bit for bit the logits of a session
 * that keeps every position (kv_full), over a 600-token prompt in two
 * chunks and 60 single steps well past the point where the ring wraps;
 * the ring takes less memory; a rewind of a few hundred positions works
 * and continues identically, a rewind into overwritten keys is refused
 * with -ESTALE and leaves the session as it was; a prompt aborted after
 * it overwrote the window before it leaves the session empty. */
#include <errno.h>
#include <string.h>

#include "engine.h"
#include "model.h"
#include "engine-test.h"
#include "test.h"

enum { N_CTX = 2048, PROMPT = 600, STEPS = 60 };

static uint32_t seed = 777;
static int32_t rnd_token(int32_t n_vocab) {
        seed = seed * 1664525u + 1013904223u;
        return 7 + (int32_t)((seed >> 8) % (uint32_t)(n_vocab - 7));
}

static engine_session *new_session(const engine_model *m, bool full, engine_abort_fn cb, void *ud) {
        engine_session_params sp;
        engine_session *s = NULL;
        char err[512] = "";

        engine_session_default_params(&sp);
        sp.n_ctx = N_CTX;
        sp.kv_full = full;
        sp.abort_cb = cb;
        sp.abort_userdata = ud;
        CHECK_MSG(engine_session_new(m, &sp, &s, err, sizeof err) >= 0, "session: %s", err);
        return s;
}

static bool abort_after(void *ud) {
        int *left = ud;
        return --*left < 0;
}

static void step_both(engine_session *a, engine_session *b, int32_t tok, float *la, float *lb, int32_t V) {
        CHECK_OK(engine_session_eval(a, &tok, 1, false, la));
        CHECK_OK(engine_session_eval(b, &tok, 1, false, lb));
        CHECK_MSG(memcmp(la, lb, sizeof(float) * (size_t)V) == 0, "logits differ at position %d",
                  engine_session_n_past(a) - 1);
}

static void test_model(const char *shared, const char *name) {
        char path[4096];
        snprintf(path, sizeof path, "%s/golden/%s.gguf", shared, name);
        engine_model *m = test_load_model(path, 2);
        int32_t V = engine_model_n_vocab(m);
        engine_session *ring = new_session(m, false, NULL, NULL), *full = new_session(m, true, NULL, NULL);
        float *la = malloc(sizeof(float) * (size_t)V * PROMPT), *lb = malloc(sizeof(float) * (size_t)V * PROMPT);
        int32_t prompt[PROMPT];
        CHECK(la && lb);

        CHECK_MSG(ring->kv.n_ring > 0 && ring->kv.n_ring < N_CTX && full->kv.n_ring == 0, "%s: n_ring %d / %d",
                  name, ring->kv.n_ring, full->kv.n_ring);
        CHECK(ring->kv.mem_size < full->kv.mem_size);
        int32_t R = ring->kv.n_ring;
        CHECK(PROMPT > R); /* the second chunk wraps */

        /* a prompt in two chunks (512 + 88), every position's logits */
        prompt[0] = 2;
        for (int i = 1; i < PROMPT; i++)
                prompt[i] = rnd_token(V);
        CHECK_OK(engine_session_eval(ring, prompt, PROMPT, true, la));
        CHECK_OK(engine_session_eval(full, prompt, PROMPT, true, lb));
        CHECK_MSG(memcmp(la, lb, sizeof(float) * (size_t)V * PROMPT) == 0, "%s: prompt logits differ", name);

        /* single steps: every one reads a wrapped window */
        for (int i = 0; i < STEPS; i++)
                step_both(ring, full, rnd_token(V), la, lb, V);

        /* a rewind within the ring's slack continues identically */
        int32_t hi = engine_session_n_past(ring), p = hi - 100;
        CHECK_OK(engine_session_rewind(ring, p));
        CHECK_OK(engine_session_rewind(full, p));
        for (int i = 0; i < 5; i++)
                step_both(ring, full, rnd_token(V), la, lb, V);

        /* into overwritten keys: refused, nothing changes; kv_full allows it */
        int32_t now = engine_session_n_past(ring);
        CHECK_EQ_INT(engine_session_rewind(ring, hi - R), -ESTALE);
        CHECK_EQ_INT(engine_session_n_past(ring), now);
        step_both(ring, full, rnd_token(V), la, lb, V);
        CHECK_OK(engine_session_rewind(full, 100));
        CHECK_OK(engine_session_rewind(ring, 0));
        CHECK_OK(engine_session_rewind(full, 0));

        /* after a rewind to 0 the ring is as good as new */
        CHECK_OK(engine_session_eval(ring, prompt, 40, true, la));
        CHECK_OK(engine_session_eval(full, prompt, 40, true, lb));
        CHECK_MSG(memcmp(la, lb, sizeof(float) * (size_t)V * 40) == 0, "%s: logits after rewind to 0", name);

        /* an abort in the second chunk of a long prompt: the first chunk
         * overwrote the window before position 40, so the session empties */
        engine_session_free(ring);
        int left = 1 << 30;
        ring = new_session(m, false, abort_after, &left);
        CHECK_OK(engine_session_eval(ring, prompt, 40, false, NULL));
        left = m->hp.n_layer + 2;
        CHECK_EQ_INT(engine_session_eval(ring, prompt, PROMPT, false, NULL), -ECANCELED);
        CHECK_EQ_INT(engine_session_n_past(ring), 0);
        /* an abort within the slack rewinds to where it was */
        left = 1 << 30;
        CHECK_OK(engine_session_eval(ring, prompt, 40, false, NULL));
        left = 2;
        CHECK_EQ_INT(engine_session_eval(ring, prompt, 100, false, NULL), -ECANCELED);
        CHECK_EQ_INT(engine_session_n_past(ring), 40);

        printf("%s: ring of %d slots (window %d), KV %zu -> %zu bytes, logits bit-equal\n", name, R,
               ring->kv.window, full->kv.mem_size, ring->kv.mem_size);
        free(la);
        free(lb);
        engine_session_free(ring);
        engine_session_free(full);
        engine_model_free(m);
}

int main(void) {
        const char *shared = test_shared_dir();

        test_model(shared, "gemma3-f32");
        test_model(shared, "gemma3-q8_0");
        test_model(shared, "gemma3n-f32");
        test_model(shared, "gemma3n-f16");
        return 0;
}
