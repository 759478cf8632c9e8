/* SPDX-License-Identifier: MIT */
/* Soft tokens in the prompt (engine.h: engine_session_eval_embd):
 *  - the attention mask of a bidirectional block (model-ops.c) against a
 *    naive double-precision attention: rows of the block see every position
 *    up to the block's end, rows outside it stay causal;
 *  - on the shared random-weight gemma3 model: embeddings equal to the
 *    tokens' own (token_embd * sqrt(n_embd)) give bit-identical logits to the
 *    tokens, a bidirectional block of one row is causal, a longer one
 *    changes what its first rows see, text after the block reads it, and the
 *    errors (-E2BIG, -EOPNOTSUPP, -EINVAL, -ENOSPC) leave the session as it
 *    was. */
#include "engine.h"
#include "gguf.h"
#include "kv-cache.h"
#include "macro.h"
#include "matmul.h"
#include "model-ops.h"
#include "tensor-type.h"
#include "engine-test.h"
#include "test.h"

/* ---- the mask ---- */

static float frand(uint64_t *s) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        return (float)((*s >> 40) & 0xffffff) / (float)(1 << 24) * 2.0f - 1.0f;
}

static void check_mask(int32_t pos0, int32_t n, bool bidirectional, int32_t window, threadpool *tp) {
        const int32_t n_head = 4, n_head_kv = 2, hd = 8, n_ctx = 256, n_rep = n_head / n_head_kv;
        const int32_t kvh[1] = { n_head_kv }, hdim[1] = { hd };
        kv_cache kv;
        uint64_t seed = 42;

        CHECK_OK(kv_cache_init(&kv, n_ctx, 1, kvh, hdim));
        const int32_t n_pos = pos0 + n;
        _cleanup_free_ float *k = malloc((size_t)n_pos * n_head_kv * hd * sizeof(float));
        _cleanup_free_ float *v = malloc((size_t)n_pos * n_head_kv * hd * sizeof(float));
        _cleanup_free_ float *q = malloc((size_t)n * n_head * hd * sizeof(float));
        _cleanup_free_ float *out = malloc((size_t)n * n_head * hd * sizeof(float));
        _cleanup_free_ float *scratch =
                malloc(ops_attention_scratch_floats(n_ctx, n_head_kv, n_head) * 2 * sizeof(float));
        CHECK(k && v && q && out && scratch);
        for (int32_t i = 0; i < n_pos * n_head_kv * hd; i++) {
                k[i] = frand(&seed) * 2;
                v[i] = frand(&seed);
        }
        for (int32_t i = 0; i < n * n_head * hd; i++)
                q[i] = frand(&seed) * 2;
        kv_cache_store(&kv, 0, 0, n_pos, k, v, (size_t)n_head_kv * hd);

        attn_params ap = { .kv = &kv, .il = 0, .n_head = n_head, .n_head_kv = n_head_kv, .head_dim = hd,
                           .scale = 0.35f, .window = window, .bidirectional = bidirectional };
        ops_attention(tp, &ap, q, (size_t)n_head * hd, pos0, n, out, (size_t)n_head * hd, scratch);

        double worst = 0;
        for (int32_t t = 0; t < n; t++) {
                int32_t p = pos0 + t, hi = bidirectional ? pos0 + n - 1 : p;
                int32_t lo = window > 0 ? MAX(0, p - window + 1) : 0;
                for (int32_t h = 0; h < n_head; h++) {
                        const float *qr = q + ((size_t)t * n_head + h) * hd;
                        int32_t g = h / n_rep;
                        double w[256], mx = -INFINITY, sum = 0;
                        for (int32_t j = lo; j <= hi; j++) {
                                const float *kr = k + ((size_t)j * n_head_kv + g) * hd;
                                double d = 0;
                                for (int32_t i = 0; i < hd; i++)
                                        d += (double)qr[i] * kr[i];
                                w[j] = d * 0.35;
                                mx = fmax(mx, w[j]);
                        }
                        for (int32_t j = lo; j <= hi; j++)
                                sum += (w[j] = exp(w[j] - mx));
                        for (int32_t i = 0; i < hd; i++) {
                                double o = 0;
                                for (int32_t j = lo; j <= hi; j++)
                                        o += w[j] / sum * v[((size_t)j * n_head_kv + g) * hd + i];
                                worst = fmax(worst, fabs(o - out[((size_t)t * n_head + h) * hd + i]));
                        }
                }
        }
        printf("attention pos0 %d n %d %s window %d: max err %.3g\n", pos0, n,
               bidirectional ? "bidirectional" : "causal", window, worst);
        CHECK_MSG(worst < 1e-5, "attention differs from the naive one by %g", worst);
        kv_cache_done(&kv);
}

/* ---- the session API ---- */

static const char *shared;

static engine_model *load(const char *name) {
        char path[4096];

        snprintf(path, sizeof path, "%s/golden/%s.gguf", shared, name);
        return test_load_model(path, 2);
}

/* token_embd[id] * sqrt(E), read from the file independently of the model */
static void token_rows(const char *name, const int32_t *ids, int32_t n, int32_t E, float *out) {
        char path[4096], err[256];
        gguf_file *f;
        snprintf(path, sizeof path, "%s/golden/%s.gguf", shared, name);
        CHECK_OK(gguf_open_path(path, &f, err, sizeof err));
        const gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
        CHECK(t && t->ne[0] == E);
        size_t row;
        CHECK_OK(type_row_size(t->type, E, &row));
        weight w = { .name = "token_embd", .type = t->type, .n_in = E, .n_out = t->ne[1], .row_bytes = row,
                     .data = t->data };
        for (int32_t i = 0; i < n; i++) {
                CHECK_OK(weight_get_row(&w, ids[i], out + (size_t)i * E));
                for (int32_t e = 0; e < E; e++)
                        out[(size_t)i * E + e] *= sqrtf((float)E);
        }
        gguf_close(f);
}

static double max_diff(const float *a, const float *b, size_t n) {
        double d = 0;
        for (size_t i = 0; i < n; i++)
                d = fmax(d, fabs((double)a[i] - b[i]));
        return d;
}

static void test_session(void) {
        const char *name = "gemma3-f32";
        engine_model *m = load(name);
        const int32_t V = engine_model_n_vocab(m), E = engine_model_n_embd(m);
        const int32_t ids[12] = { 2, 105, 17, 300, 42, 42, 401, 7, 64, 128, 5, 106 };
        const int32_t n = 12, b0 = 3, nb = 6; /* the "image": positions 3..8 */
        CHECK(E > 0);
        for (int32_t i = 0; i < n; i++)
                CHECK(ids[i] < V);

        _cleanup_free_ float *rows = malloc((size_t)n * E * sizeof(float));
        _cleanup_free_ float *ref = malloc((size_t)n * V * sizeof(float));
        _cleanup_free_ float *got = malloc((size_t)n * V * sizeof(float));
        _cleanup_free_ float *bidi = malloc((size_t)n * V * sizeof(float));
        CHECK(rows && ref && got && bidi);
        token_rows(name, ids, n, E, rows);

        /* tokens all the way, in the chunks used below (the product path
         * depends on the number of rows, so the chunks must match) */
        engine_session *s = test_new_session(m, 64);
        CHECK_OK(engine_session_eval(s, ids, b0, true, ref));
        CHECK_OK(engine_session_eval(s, ids + b0, nb, true, ref + (size_t)b0 * V));
        CHECK_OK(engine_session_eval(s, ids + b0 + nb, n - b0 - nb, true, ref + (size_t)(b0 + nb) * V));
        engine_session_free(s);

        /* the same with positions b0.. as embeddings, causal: identical */
        s = test_new_session(m, 64);
        CHECK_OK(engine_session_eval(s, ids, b0, true, got));
        CHECK_OK(engine_session_eval_embd(s, rows + (size_t)b0 * E, nb, false, true, got + (size_t)b0 * V));
        CHECK_EQ_INT(engine_session_n_past(s), b0 + nb);
        CHECK_OK(engine_session_eval(s, ids + b0 + nb, n - b0 - nb, true, got + (size_t)(b0 + nb) * V));
        double d = max_diff(ref, got, (size_t)n * V);
        printf("embeddings of the tokens themselves, causal: max logit diff %g\n", d);
        CHECK(d == 0);
        engine_session_free(s);

        /* bidirectional block of one row = causal (one-row attention both:
         * a block of several rows takes another product, which rounds
         * differently with some of OpenBLAS's kernels) */
        s = test_new_session(m, 64);
        CHECK_OK(engine_session_eval(s, ids, b0, false, NULL));
        CHECK_OK(engine_session_eval_embd(s, rows + (size_t)b0 * E, 1, false, true, bidi));
        CHECK_OK(engine_session_rewind(s, b0));
        CHECK_OK(engine_session_eval_embd(s, rows + (size_t)b0 * E, 1, true, true, got));
        CHECK(max_diff(bidi, got, V) == 0);
        CHECK(max_diff(ref + (size_t)b0 * V, got, V) < 1e-4);
        engine_session_free(s);

        /* bidirectional block of nb rows: its first row sees the later ones */
        s = test_new_session(m, 64);
        CHECK_OK(engine_session_eval(s, ids, b0, true, bidi));
        CHECK_OK(engine_session_eval_embd(s, rows + (size_t)b0 * E, nb, true, true, bidi + (size_t)b0 * V));
        CHECK_OK(engine_session_eval(s, ids + b0 + nb, n - b0 - nb, true, bidi + (size_t)(b0 + nb) * V));
        double before = max_diff(ref, bidi, (size_t)b0 * V);
        double first = max_diff(ref + (size_t)b0 * V, bidi + (size_t)b0 * V, V);
        double after = max_diff(ref + (size_t)(b0 + nb) * V, bidi + (size_t)(b0 + nb) * V, (size_t)(n - b0 - nb) * V);
        printf("bidirectional block of %d: logit diff before %g, first row %g, text after %g\n", nb, before, first,
               after);
        CHECK(before == 0);   /* nothing before the block changes */
        CHECK(first > 1e-3);  /* its first row now sees the whole block */
        CHECK(after > 1e-4);  /* and the text after reads the changed K/V */

        /* errors leave the session where it was */
        int32_t past = engine_session_n_past(s);
        float nan_row[1] = { NAN };
        _cleanup_free_ float *bad = malloc((size_t)E * sizeof(float));
        CHECK(bad);
        memcpy(bad, rows, (size_t)E * sizeof(float));
        bad[E / 2] = nan_row[0];
        CHECK_EQ_INT(engine_session_eval_embd(s, bad, 1, false, false, NULL), -EINVAL);
        CHECK_EQ_INT(engine_session_eval_embd(s, NULL, 1, false, false, NULL), -EINVAL);
        CHECK_EQ_INT(engine_session_eval_embd(s, rows, -1, false, false, NULL), -EINVAL);
        CHECK_EQ_INT(engine_session_eval_embd(s, rows, 0, true, false, NULL), 0);
        CHECK_EQ_INT(engine_session_n_past(s), past);
        engine_session_free(s);

        /* more rows than the context holds; a bidirectional block longer than a chunk */
        s = test_new_session(m, 16);
        CHECK_EQ_INT(engine_session_eval_embd(s, rows, 12, false, false, NULL), 0);
        CHECK_EQ_INT(engine_session_eval_embd(s, rows, 5, false, false, NULL), -ENOSPC);
        CHECK_EQ_INT(engine_session_n_past(s), 12);
        engine_session_free(s);
        s = test_new_session(m, 1024);
        _cleanup_free_ float *many = calloc((size_t)513 * E, sizeof(float));
        CHECK(many);
        CHECK_EQ_INT(engine_session_eval_embd(s, many, 513, true, false, NULL), -E2BIG);
        CHECK_EQ_INT(engine_session_n_past(s), 0);
        engine_session_free(s);
        engine_model_free(m);

        /* gemma3n has no embedding input here (its vision tower is not in
         * the reference's GGUF form) */
        m = load("gemma3n-f32");
        s = test_new_session(m, 64);
        CHECK_EQ_INT(engine_session_eval_embd(s, rows, 1, false, false, NULL), -EOPNOTSUPP);
        engine_session_free(s);
        engine_model_free(m);
}

int main(void) {
        threadpool *tp;
        CHECK_OK(threadpool_new(2, &tp));
        check_mask(37, 70, true, 0, tp);  /* two query blocks, keys past each block's own rows */
        check_mask(37, 70, false, 0, tp); /* causal as before */
        check_mask(37, 70, false, 20, tp);
        check_mask(0, 5, true, 0, tp);
        check_mask(10, 1, true, 0, tp);   /* one row: the one-token path */
        threadpool_free(tp);

        shared = test_shared_dir();
        test_session();
        return 0;
}
