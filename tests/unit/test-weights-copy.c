/* SPDX-License-Identifier: MIT */
/* The load-time copy of the weights (weights-copy.h) serves the same bytes
 * as the file mapping: for the gemma3 and gemma3n golden models and a
 * generated gemma3n-tiny (whose per-layer-embedding table spans many
 * pages), the logits of a batch and of single steps are bit-equal between
 * SOTTO_WEIGHTS=map, a private copy, an arena block being built, and the
 * same block mapped by a second opener of the sealed memfd.
 *
 * Gemma 3n's per-layer-embedding table is left out of the copy (and with
 * a MatFormer selection, the layers it skips, and the rows of gate and up
 * past the width it keeps): its weight must point into the file mapping,
 * every other tensor into the image, and the whole pages of what is left
 * out of the image must never have been touched (not resident, mincore).
 * Were the table read through the image, the private copy would fault
 * (PROT_NONE there) and the arena would give zero rows: logits unequal. */
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine.h"
#include "model.h"
#include "weights-arena.h"
#include "tests/tools/mkmodel-model.h"
#include "tests/tools/mkmodel-write.h"
#include "engine-test.h"
#include "test.h"

#define PLE "per_layer_token_embd.weight"
#define N_STEP 4
#define FF_KEPT 64 /* the selection's width, below */

typedef struct run {
        int32_t n, V;
        float *batch; /* [n][V] */
        float *steps; /* [N_STEP][V], single tokens after the batch */
} run;

static const char *matformer; /* the selection of the file being tested, or NULL */

static engine_model *load_fd(int fd) {
        engine_model_params mp;
        engine_model *m = NULL;
        char err[512] = "";

        engine_model_default_params(&mp);
        mp.n_threads = 1;
        mp.matformer = matformer;
        int r = engine_model_load_fd(fd, &mp, &m, err, sizeof err);
        CHECK_MSG(r >= 0, "load: %s", err);
        return m;
}

static run evaluate(const engine_model *m, const int32_t *tok, int32_t n) {
        run r = { .n = n, .V = engine_model_n_vocab(m) };
        r.batch = malloc(sizeof(float) * (size_t)n * r.V);
        r.steps = malloc(sizeof(float) * N_STEP * r.V);
        CHECK(r.batch && r.steps);
        engine_session *s = test_new_session(m, n + N_STEP);
        CHECK_OK(engine_session_eval(s, tok, n, true, r.batch));
        for (int i = 0; i < N_STEP; i++)
                CHECK_OK(engine_session_eval(s, &tok[i], 1, false, r.steps + (size_t)i * r.V));
        engine_session_free(s);
        return r;
}

static void same(const char *what, const run *a, const run *b) {
        CHECK_EQ_INT(a->V, b->V);
        CHECK_MSG(memcmp(a->batch, b->batch, sizeof(float) * (size_t)a->n * a->V) == 0, "%s: batch logits differ",
                  what);
        CHECK_MSG(memcmp(a->steps, b->steps, sizeof(float) * N_STEP * a->V) == 0, "%s: step logits differ", what);
}

static void run_free(run *r) {
        free(r->batch);
        free(r->steps);
}

static bool inside(const void *p, const void *base, size_t len) {
        return (const uint8_t *)p >= (const uint8_t *)base && (const uint8_t *)p < (const uint8_t *)base + len;
}

/* Resident pages of the whole pages in [p, p + len). */
static size_t resident_inner(const void *p, size_t len) {
        uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t a = ((uintptr_t)p + ps - 1) & ~(ps - 1), b = ((uintptr_t)p + len) & ~(ps - 1);
        if (b <= a)
                return 0;
        size_t n = (b - a) / ps, k = 0;
        unsigned char *v = malloc(n);
        CHECK(v);
        CHECK_OK(mincore((void *)a, b - a, v));
        for (size_t i = 0; i < n; i++)
                k += v[i] & 1;
        free(v);
        return k;
}

/* Where the weights of a model loaded from a copy come from. */
static void check_layout(const engine_model *m, bool gemma3n, bool in_arena) {
        const weights_copy *c = &m->copy;
        CHECK_MSG(c->image, "no copy made");
        CHECK_EQ_INT(c->in_arena, in_arena);
        const gguf_tensor *emb = gguf_find_tensor(m->gguf, "token_embd.weight");
        CHECK(emb && inside(emb->data, c->image, c->size) && model_tensor_data(m, emb) == emb->data);
        if (!gemma3n) {
                CHECK_EQ_INT(c->n_left_out, 0);
                CHECK(!c->file);
                return;
        }
        CHECK(c->file && c->file_len == c->size);
        /* the per-layer table, and with a MatFormer selection every tensor
         * of the layers it skips and the tails of the gate and up it
         * narrows; the other tensors are in the image */
        uint32_t n_out = 0, n_narrowed = 0;
        for (int64_t i = 0; i < gguf_n_tensors(m->gguf); i++) {
                const gguf_tensor *t = gguf_tensor_at(m->gguf, i);
                unsigned layer;
                char name[80];
                snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.p);
                bool skipped = matformer && sscanf(name, "blk.%u.", &layer) == 1 && strstr(matformer, "skip=7,20-21") &&
                               (layer == 7 || layer == 20 || layer == 21);
                bool left_out = strcmp(name, PLE) == 0 || skipped;
                CHECK(inside(t->data, c->image, c->size));
                const uint8_t *f = model_tensor_data(m, t);
                bool narrowed = matformer && !left_out && (strstr(name, ".ffn_gate.") || strstr(name, ".ffn_up.")) &&
                                t->ne[1] > FF_KEPT;
                if (narrowed) {
                        /* the first rows in the copy, the others never touched */
                        size_t kept = (size_t)(t->nbytes / (uint64_t)t->ne[1] * FF_KEPT);
                        CHECK_MSG(f == t->data, "%s is not read from the copy", name);
                        CHECK(memcmp(f, c->file + (f - c->image), kept) == 0);
                        size_t k = resident_inner(f + kept, t->nbytes - kept);
                        CHECK_MSG(k == 0, "%zu pages of %s past its %d rows are resident in the copy", k, name,
                                  FF_KEPT);
                        n_out++;
                        n_narrowed++;
                        continue;
                }
                if (!left_out) {
                        CHECK_MSG(f == t->data, "%s is not read from the copy", name);
                        continue;
                }
                n_out++;
                CHECK_MSG(inside(f, c->file, c->file_len), "%s is not read from the file mapping", name);
                CHECK(f - c->file == (const uint8_t *)t->data - c->image);
                /* pread gives the mapping's bytes, the last ones included;
                 * nothing outside the mapping */
                uint8_t head[256], tail[256];
                size_t n = MIN(sizeof head, (size_t)t->nbytes);
                CHECK_OK(weights_copy_read(c, f, n, head));
                CHECK(memcmp(head, f, n) == 0);
                CHECK_OK(weights_copy_read(c, f + t->nbytes - n, n, tail));
                CHECK(memcmp(tail, f + t->nbytes - n, n) == 0);
                CHECK_EQ_INT(weights_copy_read(c, t->data, n, head), -ENOENT);
                CHECK_EQ_INT(weights_copy_read(c, c->file + c->file_len - n + 1, n, head), -ENOENT);
                /* never written, never read: no page of it in the image */
                size_t k = resident_inner(t->data, t->nbytes);
                CHECK_MSG(k == 0, "%zu pages of %s are resident in the copy", k, name);
        }
        CHECK_EQ_INT(c->n_left_out, n_out);
        CHECK(n_out >= (matformer ? 2u : 1u));
        if (matformer)
                CHECK_MSG(n_narrowed > 0, "no gate or up wider than %d: the selection narrows nothing", FF_KEPT);
}

static void test_file(const char *path, const int32_t *tok, int32_t n) {
        bool gemma3n;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK_MSG(fd >= 0, "cannot open %s", path);

        /* the file mapping */
        CHECK_OK(setenv("SOTTO_WEIGHTS", "map", 1));
        engine_model *m = load_fd(fd);
        CHECK(!m->copy.image);
        gemma3n = strcmp(engine_model_arch(m), "gemma3n") == 0;
        run ref = evaluate(m, tok, n);
        engine_model_free(m);
        CHECK_OK(unsetenv("SOTTO_WEIGHTS"));

        /* a private copy */
        m = load_fd(fd);
        run priv = evaluate(m, tok, n);
        same("private copy", &ref, &priv);
        check_layout(m, gemma3n, false);
        engine_model_free(m);

        /* a block of an arena being built, then sealed */
        weights_source src;
        weights_arena *a, *b;
        char err[256];
        CHECK_OK(weights_source_from_fd(fd, &src));
        CHECK_OK(weights_arena_open(-1, &src, 1, &a, err, sizeof err));
        weights_arena_set_default(a);
        m = load_fd(fd);
        CHECK_OK(weights_arena_seal(a, err, sizeof err));
        run built = evaluate(m, tok, n);
        same("arena (built)", &ref, &built);
        check_layout(m, gemma3n, true);

        /* a second opener maps the sealed block */
        CHECK_OK(weights_arena_open(weights_arena_fd(a), &src, 1, &b, err, sizeof err));
        CHECK_EQ_INT(weights_arena_get_mode(b), WEIGHTS_ARENA_MAPPED);
        weights_arena_set_default(b);
        engine_model *m2 = load_fd(fd);
        CHECK(m2->copy.image != m->copy.image);
        CHECK_EQ_INT(weights_arena_n_private(b), 0);
        run mapped = evaluate(m2, tok, n);
        same("arena (mapped)", &ref, &mapped);
        check_layout(m2, gemma3n, true);
        printf("%s (%s%s%s): copy %s, logits bit-equal to the mapping (private, arena built, arena mapped)\n", path,
               engine_model_arch(m), matformer ? ", matformer " : "", matformer ? matformer : "",
               gemma3n ? "without the per-layer table" : "of the whole file");

        engine_model_free(m2);
        engine_model_free(m);
        weights_arena_set_default(NULL);
        weights_arena_free(b);
        weights_arena_free(a);
        run_free(&ref);
        run_free(&priv);
        run_free(&built);
        run_free(&mapped);
        close(fd);
}

static void test_golden(const char *shared, const char *name) {
        char path[PATH_MAX];
        size_t sz;

        snprintf(path, sizeof path, "%s/golden/%s.tokens0.i32", shared, name);
        int32_t *tok = test_read_file(path, &sz);
        CHECK_MSG(tok && sz >= 4 * N_STEP, "cannot read %s", path);
        snprintf(path, sizeof path, "%s/golden/%s.gguf", shared, name);
        test_file(path, tok, (int32_t)(sz / 4));
        free(tok);
}

int main(void) {
        /* gemma3n-tiny: a table of hundreds of pages, so "untouched" means
         * something (the golden files' tables are a few pages) */
        char dir[] = "/tmp/test-weights-copy-XXXXXX", path[PATH_MAX], err[256] = "";
        CHECK(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/gemma3n-tiny.gguf", dir);
        CHECK_OK(mk_model_write_preset("gemma3n-tiny", "Q8_0", path, 3, err, sizeof err));
        int32_t tok[40];
        for (int i = 0; i < 40; i++)
                tok[i] = 363 + (i * 131) % (1024 - 363);
        tok[0] = 2;
        test_file(path, tok, 40);
        unlink(path);
        rmdir(dir);

        const char *shared = test_shared_dir();
        test_golden(shared, "gemma3-f32");
        test_golden(shared, "gemma3-q8_0");
        test_golden(shared, "gemma3n-f32");
        test_golden(shared, "gemma3n-f16");
        /* a MatFormer selection (tests/unit/test-gemma-matformer.c): the
         * skipped layers stay out of the copy too */
        matformer = "skip=7,20-21;ff=64"; /* FF_KEPT */
        test_golden(shared, "gemma3n-f32");
        return 0;
}
