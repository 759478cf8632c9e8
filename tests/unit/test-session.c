/* SPDX-License-Identifier: MIT */
/* Sessions: rewinding, evaluating in chunks, thread counts, a full
 * context, the abort callback and bad input, on real GGUF files from
 * ../shared (stories260K and the random-weight llama cases). */
#include <errno.h>

#include "engine.h"
#include "macro.h"
#include "test.h"

static const char *shared;

static engine_model *load(const char *rel, int n_threads) {
        char path[4096], err[512] = "";
        engine_model_params mp;
        engine_model *m = NULL;

        snprintf(path, sizeof path, "%s/%s", shared, rel);
        engine_model_default_params(&mp);
        mp.n_threads = n_threads;
        int r = engine_model_load_path(path, &mp, &m, err, sizeof err);
        CHECK_MSG(r >= 0, "%s: %s", path, err);
        return m;
}

static engine_session *session_full(const engine_model *m, int32_t n_ctx, engine_abort_fn cb, void *ud) {
        engine_session_params sp;
        engine_session *s = NULL;
        char err[512] = "";

        engine_session_default_params(&sp);
        sp.n_ctx = n_ctx;
        sp.abort_cb = cb;
        sp.abort_userdata = ud;
        int r = engine_session_new(m, &sp, &s, err, sizeof err);
        CHECK_MSG(r >= 0, "session: %s", err);
        return s;
}

static engine_session *session(const engine_model *m, int32_t n_ctx) {
        return session_full(m, n_ctx, NULL, NULL);
}

static float max_diff(const float *a, const float *b, size_t n) {
        float d = 0.0f;
        for (size_t i = 0; i < n; i++) {
                float x = fabsf(a[i] - b[i]);
                if (!(x <= d))
                        d = isnan(x) ? INFINITY : x;
        }
        return d;
}

/* Deterministic pseudo-random token ids in [3, n_vocab). */
static void make_tokens(int32_t *t, int32_t n, int32_t n_vocab, uint32_t seed) {
        t[0] = 1; /* BOS */
        for (int32_t i = 1; i < n; i++) {
                seed = seed * 1664525u + 1013904223u;
                t[i] = 3 + (int32_t)((seed >> 8) % (uint32_t)(n_vocab - 3));
        }
}

/* ---- rewinding gives exactly what a fresh session gives ---- */

static void test_rewind(const char *model) {
        engine_model *m = load(model, 2);
        int32_t V = engine_model_n_vocab(m), P = 20, X = 13, Y = 17;
        int32_t p[20], x[13], y[17];
        float *a = malloc((size_t)Y * V * sizeof(float)), *b = malloc((size_t)Y * V * sizeof(float));

        make_tokens(p, P, V, 1);
        make_tokens(x, X, V, 2);
        make_tokens(y, Y, V, 3);
        x[0] = y[0] = 7;

        /* A: P, X, rewind to P, Y.  B (fresh): P, Y.  Same chunks, so the
         * same arithmetic: the logits must be bit for bit equal. */
        engine_session *sa = session(m, 64), *sb = session(m, 64);
        CHECK_OK(engine_session_eval(sa, p, P, false, NULL));
        CHECK_OK(engine_session_eval(sa, x, X, true, a));
        CHECK_EQ_INT(engine_session_n_past(sa), P + X);
        CHECK_EQ_INT(engine_session_rewind(sa, P + X + 1), -EINVAL);
        CHECK_EQ_INT(engine_session_rewind(sa, -1), -EINVAL);
        CHECK_OK(engine_session_rewind(sa, P));
        CHECK_EQ_INT(engine_session_n_past(sa), P);
        CHECK_OK(engine_session_eval(sa, y, Y, true, a));

        CHECK_OK(engine_session_eval(sb, p, P, false, NULL));
        CHECK_OK(engine_session_eval(sb, y, Y, true, b));
        CHECK_MSG(memcmp(a, b, (size_t)Y * V * sizeof(float)) == 0, "%s: rewound session differs from a fresh one (%g)",
                  model, max_diff(a, b, (size_t)Y * V));

        /* rewinding into the middle of a chunk, then single tokens */
        CHECK_OK(engine_session_rewind(sa, P + 5));
        CHECK_OK(engine_session_rewind(sb, P + 5));
        for (int32_t i = 0; i < 4; i++) {
                CHECK_OK(engine_session_eval(sa, &x[i], 1, false, a));
                CHECK_OK(engine_session_eval(sb, &x[i], 1, false, b));
                CHECK(memcmp(a, b, (size_t)V * sizeof(float)) == 0);
        }
        printf("%s: rewind gives bit-identical logits\n", model);

        engine_session_free(sa);
        engine_session_free(sb);
        engine_model_free(m);
        free(a);
        free(b);
}

/* ---- chunks, last-only logits and threads agree ---- */

static void test_chunks_threads(const char *model, float tol, float tol_threads, int want_threads) {
        engine_model *m1 = load(model, 1), *m2 = load(model, 2);
        int nt2 = engine_model_n_threads(m2);
        CHECK_EQ_INT(nt2, want_threads);
        int32_t V = engine_model_n_vocab(m1), N = 70;
        int32_t t[70];
        size_t n = (size_t)N * V;
        float *once = malloc(n * sizeof(float)), *chunked = malloc(n * sizeof(float));
        float *two = malloc(n * sizeof(float)), *last = malloc((size_t)V * sizeof(float));
        static const int32_t chunks[] = { 1, 9, 2, 31, 1, 26 };

        make_tokens(t, N, V, 42);

        engine_session *s = session(m1, N);
        CHECK_OK(engine_session_eval(s, t, N, true, once));
        engine_session_free(s);

        /* in chunks of several sizes (one-token and batched products mixed) */
        s = session(m1, N);
        int32_t at = 0;
        for (size_t i = 0; i < ELEMENTSOF(chunks); i++) {
                CHECK_OK(engine_session_eval(s, t + at, chunks[i], true, chunked + (size_t)at * V));
                at += chunks[i];
        }
        CHECK_EQ_INT(at, N);
        engine_session_free(s);
        float d_chunks = max_diff(once, chunked, n);

        /* only the last logits: the last layer runs on one row */
        s = session(m1, N);
        CHECK_OK(engine_session_eval(s, t, N, false, last));
        engine_session_free(s);
        float d_last = max_diff(once + (size_t)(N - 1) * V, last, (size_t)V);

        /* two threads: the same arithmetic, split differently */
        s = session(m2, N);
        CHECK_OK(engine_session_eval(s, t, N, true, two));
        engine_session_free(s);
        float d_threads = max_diff(once, two, n);

        printf("%s: max|diff| chunks %.3g, last-only %.3g, 1 vs %d threads %.3g\n", model, d_chunks, d_last, nt2,
               d_threads);
        CHECK_EQ_INT(engine_model_n_threads(m1), 1);
        CHECK_MSG(d_chunks <= tol, "%s: chunked evaluation differs by %g", model, d_chunks);
        CHECK_MSG(d_last <= tol, "%s: last-only logits differ by %g", model, d_last);
        CHECK_MSG(d_threads <= tol_threads, "%s: 1 and 2 threads differ by %g", model, d_threads);

        engine_model_free(m1);
        engine_model_free(m2);
        free(once);
        free(chunked);
        free(two);
        free(last);
}

/* ---- more tokens than one forward chunk (n_batch 512) ---- */

static void test_long(void) {
        engine_model *m = load("golden/llama-f32.gguf", 2);
        int32_t V = engine_model_n_vocab(m), N = 600;
        int32_t *t = malloc((size_t)N * sizeof(int32_t));
        size_t n = (size_t)N * V;
        float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)), *last = malloc((size_t)V * 4);

        make_tokens(t, N, V, 77);
        engine_session *s = session(m, N); /* beyond the model's 256: allowed */
        CHECK_OK(engine_session_eval(s, t, N, true, a)); /* chunks 512 + 88 */
        CHECK_EQ_INT(engine_session_n_past(s), N);
        engine_session_free(s);

        s = session(m, N);
        CHECK_OK(engine_session_eval(s, t, 300, true, b));
        CHECK_OK(engine_session_eval(s, t + 300, 300, true, b + (size_t)300 * V));
        engine_session_free(s);

        s = session(m, N);
        CHECK_OK(engine_session_eval(s, t, N, false, last));
        engine_session_free(s);

        float d = max_diff(a, b, n), dl = max_diff(a + n - V, last, (size_t)V);
        printf("600 tokens: max|diff| 512+88 vs 300+300 %.3g, last-only %.3g\n", d, dl);
        CHECK(d <= 1e-4f && dl <= 1e-4f);
        engine_model_free(m);
        free(t);
        free(a);
        free(b);
        free(last);
}

/* ---- a full context, aborts, bad input ---- */

static int polls;
static bool abort_after(void *ud) {
        return ++polls > *(int *)ud;
}

static void test_limits(void) {
        engine_model *m = load("golden/llama-f32.gguf", 2);
        int32_t V = engine_model_n_vocab(m), t[16];
        float *a = malloc((size_t)V * sizeof(float)), *b = malloc((size_t)V * sizeof(float));
        char err[256];
        engine_session *s;

        make_tokens(t, 16, V, 5);

        /* -ENOSPC: nothing is appended */
        s = session(m, 12);
        CHECK_EQ_INT(engine_session_n_ctx(s), 12);
        CHECK_OK(engine_session_eval(s, t, 10, false, a));
        CHECK_EQ_INT(engine_session_eval(s, t + 10, 3, false, a), -ENOSPC);
        CHECK_EQ_INT(engine_session_n_past(s), 10);
        CHECK_OK(engine_session_eval(s, t + 10, 2, false, a));
        CHECK_EQ_INT(engine_session_eval(s, t, 1, false, a), -ENOSPC);

        /* bad tokens and counts */
        CHECK_OK(engine_session_rewind(s, 0));
        int32_t bad[2] = { 1, V };
        CHECK_EQ_INT(engine_session_eval(s, bad, 2, false, a), -EINVAL);
        bad[1] = -1;
        CHECK_EQ_INT(engine_session_eval(s, bad, 2, false, a), -EINVAL);
        CHECK_EQ_INT(engine_session_eval(s, t, -1, false, a), -EINVAL);
        CHECK_EQ_INT(engine_session_n_past(s), 0);
        CHECK_OK(engine_session_eval(s, t, 0, false, a));
        engine_session_free(s);

        /* abort after the first layer: -ECANCELED, and the session is as before */
        int after = 1;
        s = session_full(m, 16, abort_after, &after);
        polls = -1000000; /* never while the prefix runs */
        CHECK_OK(engine_session_eval(s, t, 4, false, NULL));
        polls = 0;
        CHECK_EQ_INT(engine_session_eval(s, t + 4, 5, false, a), -ECANCELED);
        CHECK_MSG(polls == 2, "abort callback polled %d times", polls);
        CHECK_EQ_INT(engine_session_n_past(s), 4);
        polls = -1000000;
        CHECK_OK(engine_session_eval(s, t + 4, 5, false, a));
        engine_session_free(s);

        s = session(m, 16);
        CHECK_OK(engine_session_eval(s, t, 4, false, NULL));
        CHECK_OK(engine_session_eval(s, t + 4, 5, false, b));
        CHECK_MSG(memcmp(a, b, (size_t)V * sizeof(float)) == 0, "after an abort the logits differ by %g",
                  max_diff(a, b, (size_t)V));
        engine_session_free(s);

        /* session parameters */
        engine_session_params sp;
        engine_session_default_params(&sp);
        sp.n_ctx = -1;
        CHECK_EQ_INT(engine_session_new(m, &sp, &s, err, sizeof err), -EINVAL);
        sp.n_ctx = 0; /* the model's context (256 here) */
        CHECK_OK(engine_session_new(m, &sp, &s, err, sizeof err));
        CHECK_EQ_INT(engine_session_n_ctx(s), engine_model_n_ctx_train(m));
        engine_session_free(s);

        engine_model_free(m);
        free(a);
        free(b);
}

/* ---- loading: metadata and refusals ---- */

static void test_model_info(void) {
        engine_model *m = load("models/stories260K.gguf", 1);
        CHECK(strcmp(engine_model_arch(m), "llama") == 0);
        CHECK_EQ_INT(engine_model_n_vocab(m), 512);
        CHECK_EQ_INT(engine_model_n_ctx_train(m), 512);
        CHECK(engine_model_bytes_per_token(m) > 0);
        CHECK(engine_model_tokenizer(m) != NULL);
        engine_model_free(m);

        char err[512] = "";
        engine_model *bad = NULL;
        CHECK(engine_model_load_path("/nonexistent.gguf", NULL, &bad, err, sizeof err) < 0 && err[0]);
        /* a vocabulary-only file: no tensors, so a clear refusal */
        char path[4096];
        snprintf(path, sizeof path, "%s/models/llama-spm-vocab.gguf", shared);
        err[0] = 0;
        int r = engine_model_load_path(path, NULL, &bad, err, sizeof err);
        printf("vocab-only file: %s\n", err);
        CHECK(r < 0 && err[0] && !bad);
}

/* engine_session_kv_bytes_read counts what attention reads: one token at
 * position p every KV head's p + 1 keys and values in every layer, a block
 * of rows each query head's keys up to the block's last position. */
static void test_kv_bytes(const char *rel) {
        char path[4096], err[512] = "";
        gguf_file *g = NULL;
        uint32_t L, n_head, n_kv, E;

        snprintf(path, sizeof path, "%s/%s", shared, rel);
        CHECK_MSG(gguf_open_path(path, &g, err, sizeof err) >= 0, "%s: %s", path, err);
        CHECK_OK(gguf_get_u32(g, "llama.block_count", &L));
        CHECK_OK(gguf_get_u32(g, "llama.attention.head_count", &n_head));
        CHECK_OK(gguf_get_u32(g, "llama.attention.head_count_kv", &n_kv));
        CHECK_OK(gguf_get_u32(g, "llama.embedding_length", &E));
        gguf_close(g);
        uint64_t row = (uint64_t)(E / n_head) * 2 * sizeof(float) * L; /* K and V of one position, all layers */

        engine_model *m = load(rel, 1);
        engine_session *s = session(m, 64);
        /* logits of every row: no layer leaves its attention out */
        float *logits = malloc(5 * (size_t)engine_model_n_vocab(m) * sizeof(float));
        int32_t t[8];
        uint64_t want = 0;
        make_tokens(t, 8, engine_model_n_vocab(m), 7);
        CHECK(logits);
        CHECK(engine_session_kv_bytes_read(s) == 0);
        for (int32_t p = 0; p < 3; p++) {
                CHECK_OK(engine_session_eval(s, &t[p], 1, false, logits));
                want += (uint64_t)(p + 1) * n_kv * row;
                CHECK_MSG(engine_session_kv_bytes_read(s) == want, "%s: after position %d: %llu bytes, want %llu",
                          rel, p, (unsigned long long)engine_session_kv_bytes_read(s), (unsigned long long)want);
        }
        CHECK_OK(engine_session_eval(s, t + 3, 5, true, logits));
        want += 8ull * n_head * row;
        CHECK_MSG(engine_session_kv_bytes_read(s) == want, "%s: after a block: %llu bytes, want %llu", rel,
                  (unsigned long long)engine_session_kv_bytes_read(s), (unsigned long long)want);
        printf("%s: %llu bytes of keys and values read, as counted\n", rel, (unsigned long long)want);
        free(logits);
        engine_session_free(s);
        engine_model_free(m);
}

int main(void) {
        shared = test_shared_dir();
        test_model_info();
        test_rewind("models/stories260K.gguf");
        test_rewind("golden/llama-q4_k.gguf");
        /* The forward pass splits nothing by thread count, so results are
         * bit-identical when matmul()'s are.  The model caps its threads at
         * one per MiB of weights per token: the F32 and F16 files (7 and
         * 3.6 MiB) run on 2, the others on 1. */
        test_chunks_threads("golden/llama-f32.gguf", 1e-4f, 0.0f, 2);
        /* F16: the one-token kernels round activations to F16, the batched
         * sgemm path keeps them F32 */
        test_chunks_threads("golden/llama-f16.gguf", 2e-3f, 0.0f, 2);
        test_chunks_threads("golden/llama-q8_0.gguf", 3e-2f, 0.0f, 1);
        test_chunks_threads("models/stories260K.gguf", 1e-4f, 0.0f, 1);
        test_long();
        test_limits();
        test_kv_bytes("golden/llama-q8_0.gguf");
        return 0;
}
