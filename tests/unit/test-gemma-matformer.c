/* SPDX-License-Identifier: MIT */
/* MatFormer selection: a sub-model taken in place out of a gemma3n file
 * (engine_model_params.matformer) computes what a file holding that
 * sub-model explicitly computes.  The explicit file is written here from
 * the golden gemma3n-f32 model (../shared/golden): the kept layers
 * renumbered, the first F' rows of ffn_gate/ffn_up and the first F'
 * columns of ffn_down, the kept slices of the per-layer embeddings and of
 * their projection, and the per-layer metadata (widths, window pattern,
 * sparsity, shared-KV count) of the kept layers.
 *
 * The selection skips an own-KV layer (7) and two KV-sharing ones (20, 21),
 * so renumbering and the choice of the shared caches are exercised, and
 * halves the feed-forward widths. */
#include <fcntl.h>
#include <unistd.h>

#include "engine.h"
#include "tests/tools/gguf-writer.h"
#include "gguf.h"
#include "macro.h"
#include "tensor-type.h"
#include "test.h"

#define SPEC "skip=7,20-21;ff=64"
static const int32_t skipped[] = { 7, 20, 21 };
#define FF_SUB 64
#define PLE 256

static bool is_skipped(int32_t l) {
        for (size_t i = 0; i < ELEMENTSOF(skipped); i++)
                if (skipped[i] == l)
                        return true;
        return false;
}

static char *dup_str(gguf_str s) {
        char *p = strndup(s.p, (size_t)s.len);
        CHECK(p);
        return p;
}

/* Copy one metadata record (scalars and the array types the golden files use). */
static void copy_kv(const gguf_file *g, int64_t i, mk_gguf *w, const char *key) {
        gguf_type t = gguf_key_type(g, i), et;
        uint64_t n;
        const void *data;
        gguf_str s;

        switch (t) {
        case GGUF_TYPE_UINT32: {
                uint32_t v;
                CHECK_OK(gguf_get_u32(g, key, &v));
                mk_gguf_kv_u32(w, key, v);
                break;
        }
        case GGUF_TYPE_FLOAT32: {
                float v;
                CHECK_OK(gguf_get_f32(g, key, &v));
                mk_gguf_kv_f32(w, key, v);
                break;
        }
        case GGUF_TYPE_BOOL: {
                bool v;
                CHECK_OK(gguf_get_bool(g, key, &v));
                mk_gguf_kv_bool(w, key, v);
                break;
        }
        case GGUF_TYPE_STRING: {
                CHECK_OK(gguf_get_str(g, key, &s));
                char *v = dup_str(s);
                mk_gguf_kv_str(w, key, v);
                free(v);
                break;
        }
        case GGUF_TYPE_ARRAY:
                CHECK_OK(gguf_kv_arr(g, i, &et, &n, &data));
                mk_gguf_arr_begin(w, key, et, n);
                for (uint64_t k = 0; k < n; k++) {
                        if (et == GGUF_TYPE_STRING) {
                                CHECK_OK(gguf_kv_arr_str(g, i, k, &s));
                                char *v = dup_str(s);
                                mk_gguf_arr_str(w, v);
                                free(v);
                        } else if (et == GGUF_TYPE_FLOAT32) {
                                float v;
                                CHECK_OK(gguf_kv_arr_f32(g, i, k, &v));
                                mk_gguf_arr_f32(w, v);
                        } else if (et == GGUF_TYPE_INT32 || et == GGUF_TYPE_BOOL) {
                                int64_t v;
                                CHECK_OK(gguf_kv_arr_i64(g, i, k, &v));
                                if (et == GGUF_TYPE_BOOL)
                                        mk_gguf_arr_bool(w, v != 0);
                                else
                                        mk_gguf_arr_i32(w, (int32_t)v);
                        } else
                                CHECK_MSG(false, "array %s of type %d", key, et);
                }
                break;
        default:
                CHECK_MSG(false, "key %s of type %d", key, t);
        }
}

/* One tensor of the explicit file: where its rows come from. */
typedef struct plan {
        char name[96];
        const gguf_tensor *src;
        int n_dims;
        int64_t ne[4];
        uint64_t offset, nbytes;
} plan;

static void write_submodel(const char *src_path, const char *out_path) {
        char err[512] = "";
        gguf_file *g = NULL;
        mk_gguf *w = NULL;
        int32_t L, L_sub = 0, n_shared = 0;
        uint32_t u;

        CHECK_MSG(gguf_open_path(src_path, &g, err, sizeof err) >= 0, "%s", err);
        CHECK_OK(gguf_get_u32(g, "gemma3n.block_count", &u));
        L = (int32_t)u;
        CHECK_OK(mk_gguf_new(&w));
        for (int32_t l = 0; l < L; l++)
                if (!is_skipped(l)) {
                        L_sub++;
                        n_shared += l >= 20;
                }

        /* metadata: per-layer records of the kept layers */
        for (int64_t i = 0; i < gguf_n_kv(g); i++) {
                char *key = dup_str(gguf_key_name(g, i));
                if (strcmp(key, "gemma3n.block_count") == 0)
                        mk_gguf_kv_u32(w, key, (uint32_t)L_sub);
                else if (strcmp(key, "gemma3n.attention.shared_kv_layers") == 0)
                        mk_gguf_kv_u32(w, key, (uint32_t)n_shared);
                else if (strcmp(key, "gemma3n.feed_forward_length") == 0) {
                        mk_gguf_arr_begin(w, key, GGUF_TYPE_INT32, (uint64_t)L_sub);
                        for (int32_t l = 0; l < L_sub; l++)
                                mk_gguf_arr_i32(w, FF_SUB);
                } else if (strcmp(key, "gemma3n.activation_sparsity_scale") == 0) {
                        mk_gguf_arr_begin(w, key, GGUF_TYPE_FLOAT32, (uint64_t)L_sub);
                        for (int32_t l = 0; l < L; l++) {
                                float f;
                                CHECK_OK(gguf_get_arr_f32(g, key, (uint64_t)l, &f));
                                if (!is_skipped(l))
                                        mk_gguf_arr_f32(w, f);
                        }
                } else if (strcmp(key, "gemma3n.attention.sliding_window_pattern") == 0) {
                        mk_gguf_arr_begin(w, key, GGUF_TYPE_BOOL, (uint64_t)L_sub);
                        for (int32_t l = 0; l < L; l++) {
                                int64_t v;
                                CHECK_OK(gguf_get_arr_i64(g, key, (uint64_t)l, &v));
                                if (!is_skipped(l))
                                        mk_gguf_arr_bool(w, v != 0);
                        }
                } else if (strcmp(key, "general.alignment") != 0)
                        copy_kv(g, i, w, key);
                free(key);
        }
        mk_gguf_kv_u32(w, "general.alignment", MK_GGUF_ALIGN);

        /* tensors, in the source's order, renumbered and sliced */
        plan *p = calloc((size_t)gguf_n_tensors(g), sizeof *p);
        size_t n_plan = 0;
        CHECK(p);
        for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
                const gguf_tensor *t = gguf_tensor_at(g, i);
                char name[96];
                int layer = -1, off = 0;
                snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.p);
                plan *q = &p[n_plan];
                *q = (plan){ .src = t, .n_dims = (int)t->n_dims, .ne = { t->ne[0], t->ne[1], t->ne[2], t->ne[3] } };
                if (sscanf(name, "blk.%d.%n", &layer, &off) == 1 && off > 0) {
                        if (is_skipped(layer))
                                continue;
                        int32_t nl = layer;
                        for (size_t k = 0; k < ELEMENTSOF(skipped); k++)
                                nl -= skipped[k] < layer;
                        snprintf(q->name, sizeof q->name, "blk.%d.%s", nl, name + off);
                        if (strcmp(name + off, "ffn_gate.weight") == 0 || strcmp(name + off, "ffn_up.weight") == 0)
                                q->ne[1] = FF_SUB;
                        else if (strcmp(name + off, "ffn_down.weight") == 0)
                                q->ne[0] = FF_SUB;
                } else {
                        snprintf(q->name, sizeof q->name, "%s", name);
                        if (strcmp(name, "per_layer_token_embd.weight") == 0)
                                q->ne[0] = (int64_t)L_sub * PLE;
                        else if (strcmp(name, "per_layer_model_proj.weight") == 0)
                                q->ne[1] = (int64_t)L_sub * PLE;
                }
                CHECK_OK(mk_gguf_add_tensor(w, q->name, q->n_dims, q->ne, t->type, &q->offset, &q->nbytes));
                n_plan++;
        }

        int fd = open(out_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        uint64_t data_start;
        CHECK(fd >= 0);
        CHECK_OK(mk_gguf_write_header(w, fd, &data_start));
        for (size_t i = 0; i < n_plan; i++) {
                const gguf_tensor *t = p[i].src;
                size_t src_row, dst_row;
                CHECK_OK(type_row_size(t->type, t->ne[0], &src_row));
                CHECK_OK(type_row_size(t->type, p[i].ne[0], &dst_row));
                int64_t n_rows = p[i].ne[1] * p[i].ne[2] * p[i].ne[3];
                uint8_t *buf = malloc(p[i].nbytes);
                CHECK(buf);
                bool ple = strcmp(p[i].name, "per_layer_token_embd.weight") == 0;
                bool proj = strcmp(p[i].name, "per_layer_model_proj.weight") == 0;
                for (int64_t r = 0; r < n_rows; r++) {
                        uint8_t *d = buf + (size_t)r * dst_row;
                        const uint8_t *s = (const uint8_t *)t->data;
                        if (ple) {
                                /* the kept layers' slices of each row */
                                size_t slice;
                                CHECK_OK(type_row_size(t->type, PLE, &slice));
                                for (int32_t l = 0, k = 0; l < L; l++)
                                        if (!is_skipped(l))
                                                memcpy(d + (size_t)k++ * slice, s + (size_t)r * src_row + (size_t)l * slice,
                                                       slice);
                        } else if (proj) {
                                /* row r of the output: kept slice r / PLE */
                                int64_t k = r / PLE, l = 0;
                                for (int64_t c = -1; l < L; l++)
                                        if (!is_skipped((int32_t)l) && ++c == k)
                                                break;
                                memcpy(d, s + (size_t)(l * PLE + r % PLE) * src_row, dst_row);
                        } else
                                memcpy(d, s + (size_t)r * src_row, dst_row); /* first rows / first columns */
                }
                CHECK(pwrite(fd, buf, p[i].nbytes, (off_t)(data_start + p[i].offset)) == (ssize_t)p[i].nbytes);
                free(buf);
        }
        close(fd);
        free(p);
        mk_gguf_free(w);
        gguf_close(g);
}

static engine_model *load(const char *path, const char *matformer) {
        char err[512] = "";
        engine_model_params mp;
        engine_model *m = NULL;

        engine_model_default_params(&mp);
        mp.n_threads = 2;
        mp.matformer = matformer;
        int r = engine_model_load_path(path, &mp, &m, err, sizeof err);
        CHECK_MSG(r >= 0, "%s (%s): %s", path, matformer ? matformer : "full", err);
        return m;
}

static void eval(const engine_model *m, const int32_t *tok, int32_t n, bool one_by_one, float *logits) {
        engine_session_params sp;
        engine_session *s = NULL;
        char err[512] = "";
        int32_t V = engine_model_n_vocab(m);

        engine_session_default_params(&sp);
        sp.n_ctx = n;
        CHECK_MSG(engine_session_new(m, &sp, &s, err, sizeof err) >= 0, "%s", err);
        if (one_by_one)
                for (int32_t t = 0; t < n; t++)
                        CHECK_OK(engine_session_eval(s, &tok[t], 1, false, logits + (size_t)t * V));
        else
                CHECK_OK(engine_session_eval(s, tok, n, true, logits));
        engine_session_free(s);
}

int main(void) {
        const char *shared = test_shared_dir();
        char src[8192], tokp[8192], out[] = "/tmp/test-gemma-matformer-XXXXXX";
        size_t sz;

        snprintf(src, sizeof src, "%s/golden/gemma3n-f32.gguf", shared);
        snprintf(tokp, sizeof tokp, "%s/golden/gemma3n-f32.tokens2.i32", shared);
        int32_t *tok = test_read_file(tokp, &sz);
        CHECK(tok);
        int32_t n = (int32_t)(sz / 4);
        int fd = mkstemp(out);
        CHECK(fd >= 0);
        close(fd);
        write_submodel(src, out);

        engine_model *sub = load(src, SPEC), *explicit_ = load(out, NULL), *full = load(src, NULL);
        int32_t V = engine_model_n_vocab(sub);
        float *a = malloc((size_t)n * V * sizeof(float)), *b = malloc((size_t)n * V * sizeof(float));
        CHECK(a && b);

        /* token by token both run every product on the same dot kernels:
         * equal to the bit */
        eval(sub, tok, n, true, a);
        eval(explicit_, tok, n, true, b);
        CHECK_MSG(memcmp(a, b, (size_t)n * V * sizeof(float)) == 0, "one by one: logits differ");
        /* in one batch the explicit file's down products run on sgemm,
         * the in-place slice on dot kernels: float noise, which this random
         * model amplifies like any 1-ulp change (README: 9.2e-3) */
        eval(sub, tok, n, false, a);
        eval(explicit_, tok, n, false, b);
        float d = 0.0f;
        for (size_t i = 0; i < (size_t)n * V; i++)
                d = fmaxf(d, fabsf(a[i] - b[i]));
        printf("matformer '%s': one by one equal to the explicit sub-model; batch max|diff| %.3g\n", SPEC, d);
        CHECK_MSG(d <= 5e-2f, "batch logits differ by %g", d);

        /* and the selection matters: the full model is another function */
        eval(full, tok, n, true, b);
        eval(sub, tok, n, true, a);
        d = 0.0f;
        for (size_t i = 0; i < (size_t)n * V; i++)
                d = fmaxf(d, fabsf(a[i] - b[i]));
        CHECK_MSG(d > 1.0f, "the sub-model equals the full model (%g)", d);

        /* bad selections are refused with a reason */
        char err[512];
        engine_model_params mp;
        engine_model *m = NULL;
        engine_model_default_params(&mp);
        static const char *const bad[] = { "skip=0-24", "ff=1000", "ff=0", "skip=25", "depth=3", "ff=64,64", "skip=3-1" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                mp.matformer = bad[i];
                CHECK_MSG(engine_model_load_path(src, &mp, &m, err, sizeof err) < 0, "'%s' accepted", bad[i]);
                CHECK(strstr(err, "matformer"));
        }
        /* not for other architectures */
        snprintf(tokp, sizeof tokp, "%s/golden/gemma3-f32.gguf", shared);
        mp.matformer = "ff=64";
        CHECK_EQ_INT(engine_model_load_path(tokp, &mp, &m, err, sizeof err), -EOPNOTSUPP);

        engine_model_free(sub);
        engine_model_free(explicit_);
        engine_model_free(full);
        unlink(out);
        free(a);
        free(b);
        free(tok);
        return 0;
}
