/* SPDX-License-Identifier: MIT */
/* sotto-mkmodel: its quantizers against dequantizers written here from
 * specs/gguf.md §3 (an independent reading of the layouts), the f16/bf16
 * rounding, the Q4_K_M mix rule, and the files it writes (deterministic,
 * independent of the thread count, packed as llama.cpp requires, read back
 * by the engine's GGUF reader, decoded alike by its dequantizers). */
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "gguf.h"
#include "macro.h"
#include "test.h"
#include "tensor-type.h"
#include "tests/tools/mkmodel-model.h"
#include "tests/tools/mkmodel-quant.h"
#include "tests/tools/mkmodel-rng.h"
#include "tests/tools/mkmodel-write.h"

/* ---- reference dequantizers, from the spec text ---- */

static float h2f(uint16_t h) {
        int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
        float v;
        if (e == 0)
                v = ldexpf((float)m, -24);
        else if (e == 31)
                v = m ? NAN : INFINITY;
        else
                v = ldexpf((float)(1024 + m), e - 25);
        return s ? -v : v;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static void unpack_k4(const uint8_t *s, int j, int *sc, int *m) {
        if (j < 4) {
                *sc = s[j] & 63;
                *m = s[j + 4] & 63;
        } else {
                *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
                *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
        }
}

static void dequant(uint32_t type, const uint8_t *b, float *y, int64_t n) {
        switch (type) {
        case TYPE_F32:
                memcpy(y, b, n * 4);
                return;
        case TYPE_F16:
                for (int64_t i = 0; i < n; i++)
                        y[i] = h2f(rd16(b + 2 * i));
                return;
        case TYPE_BF16:
                for (int64_t i = 0; i < n; i++) {
                        uint32_t u = (uint32_t)rd16(b + 2 * i) << 16;
                        memcpy(&y[i], &u, 4);
                }
                return;
        case TYPE_Q8_0:
                for (int64_t k = 0; k < n / 32; k++, b += 34, y += 32)
                        for (int j = 0; j < 32; j++)
                                y[j] = (int8_t)b[2 + j] * h2f(rd16(b));
                return;
        case TYPE_Q4_0:
                for (int64_t k = 0; k < n / 32; k++, b += 18, y += 32) {
                        float d = h2f(rd16(b));
                        for (int j = 0; j < 16; j++) {
                                y[j] = ((b[2 + j] & 0x0f) - 8) * d;
                                y[j + 16] = ((b[2 + j] >> 4) - 8) * d;
                        }
                }
                return;
        case TYPE_Q4_K:
        case TYPE_Q5_K: {
                bool five = type == TYPE_Q5_K;
                for (int64_t k = 0; k < n / 256; k++, b += five ? 176 : 144) {
                        float d = h2f(rd16(b)), dmin = h2f(rd16(b + 2));
                        const uint8_t *sc = b + 4, *qh = b + 16, *ql = b + (five ? 48 : 16);
                        int u1 = 1, u2 = 2;
                        for (int c = 0; c < 4; c++, ql += 32, y += 64, u1 <<= 2, u2 <<= 2) {
                                int s1, m1, s2, m2;
                                unpack_k4(sc, 2 * c, &s1, &m1);
                                unpack_k4(sc, 2 * c + 1, &s2, &m2);
                                for (int l = 0; l < 32; l++) {
                                        int h1 = five && (qh[l] & u1) ? 16 : 0, h2 = five && (qh[l] & u2) ? 16 : 0;
                                        y[l] = d * s1 * ((ql[l] & 0x0f) + h1) - dmin * m1;
                                        y[l + 32] = d * s2 * ((ql[l] >> 4) + h2) - dmin * m2;
                                }
                        }
                }
                return;
        }
        case TYPE_Q6_K:
                for (int64_t k = 0; k < n / 256; k++, b += 210) {
                        const uint8_t *pl = b, *ph = b + 128;
                        const int8_t *sc = (const int8_t *)(b + 192);
                        float d = h2f(rd16(b + 208));
                        for (int half = 0; half < 2; half++, y += 128, pl += 64, ph += 32, sc += 8)
                                for (int l = 0; l < 32; l++) {
                                        int is = l / 16;
                                        int q1 = ((pl[l] & 0x0f) | (((ph[l] >> 0) & 3) << 4)) - 32;
                                        int q2 = ((pl[l + 32] & 0x0f) | (((ph[l] >> 2) & 3) << 4)) - 32;
                                        int q3 = ((pl[l] >> 4) | (((ph[l] >> 4) & 3) << 4)) - 32;
                                        int q4 = ((pl[l + 32] >> 4) | (((ph[l] >> 6) & 3) << 4)) - 32;
                                        y[l] = d * sc[is] * q1;
                                        y[l + 32] = d * sc[is + 2] * q2;
                                        y[l + 64] = d * sc[is + 4] * q3;
                                        y[l + 96] = d * sc[is + 6] * q4;
                                }
                }
                return;
        }
        CHECK_MSG(false, "no reference dequantizer for type %u", type);
}

/* ---- quantizers: error of a round trip ---- */

static void test_roundtrip(uint32_t type, double max_rel_rms, double min_rel_rms) {
        enum { N = 8192 };
        float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
        uint8_t *q = malloc(N * 4);
        CHECK(x && y && q);
        mk_rng r;
        mk_rng_init(&r, 7, type, 0);
        for (int i = 0; i < N; i++)
                x[i] = 0.02f * mk_rng_normal(&r);
        /* awkward blocks: all zero, constant, all positive, one outlier */
        for (int i = 0; i < 256; i++) {
                x[i] = 0;
                x[256 + i] = 0.5f;
                x[512 + i] = 0.01f + fabsf(x[512 + i]);
        }
        x[1000] = 3.0f;

        CHECK(mk_row_size(type, N) > 0);
        mk_quantize_row(type, x, q, N);
        dequant(type, q, y, N);

        double se = 0, sx = 0;
        for (int i = 0; i < N; i++) {
                CHECK_MSG(isfinite(y[i]), "%s: element %d not finite", mk_type_name(type), i);
                if (i < 1024)
                        continue; /* the error of plain N(0, 0.02) weights */
                se += (double)(y[i] - x[i]) * (y[i] - x[i]);
                sx += (double)x[i] * x[i];
        }
        for (int i = 0; i < 256; i++)
                CHECK_MSG(y[i] == 0, "%s: a zero block must stay zero (element %d = %g)", mk_type_name(type), i, y[i]);
        for (int i = 256; i < 512; i++)
                CHECK_MSG(fabsf(y[i] - 0.5f) < 0.5f * 0.01f, "%s: constant block: element %d = %g",
                          mk_type_name(type), i, y[i]);
        CHECK_MSG(fabsf(y[1000] - 3.0f) < 3.0f * 0.02f, "%s: outlier 3.0 came back as %g", mk_type_name(type),
                  y[1000]);
        double rel = sqrt(se / sx);
        printf("%-5s relative rms error %.5f\n", mk_type_name(type), rel);
        CHECK_MSG(rel <= max_rel_rms && rel >= min_rel_rms, "%s: relative rms error %g not in [%g, %g]",
                  mk_type_name(type), rel, min_rel_rms, max_rel_rms);
        free(x);
        free(y);
        free(q);
}

static void test_half(void) {
        CHECK_EQ_INT(mk_fp32_to_fp16(1.0f), 0x3c00);
        CHECK_EQ_INT(mk_fp32_to_fp16(-2.0f), 0xc000);
        CHECK_EQ_INT(mk_fp32_to_fp16(65504.0f), 0x7bff);
        CHECK_EQ_INT(mk_fp32_to_fp16(65519.0f), 0x7bff);
        CHECK_EQ_INT(mk_fp32_to_fp16(65520.0f), 0x7c00);
        CHECK_EQ_INT(mk_fp32_to_fp16(-INFINITY), 0xfc00);
        CHECK_EQ_INT(mk_fp32_to_fp16(NAN) & 0x7e00, 0x7e00);
        CHECK_EQ_INT(mk_fp32_to_fp16(-0.0f), 0x8000);
        CHECK_EQ_INT(mk_fp32_to_fp16(ldexpf(1, -24)), 0x0001);
        CHECK_EQ_INT(mk_fp32_to_fp16(ldexpf(1, -25)), 0x0000);     /* tie to even */
        CHECK_EQ_INT(mk_fp32_to_fp16(ldexpf(3, -25)), 0x0002);     /* tie to even */
        CHECK_EQ_INT(mk_fp32_to_fp16(ldexpf(1023, -24)), 0x03ff);  /* largest subnormal */
        CHECK_EQ_INT(mk_fp32_to_fp16(ldexpf(1, -14)), 0x0400);
        CHECK_EQ_INT(mk_fp32_to_fp16(1.0f + ldexpf(1, -11)), 0x3c00); /* tie to even */
        CHECK_EQ_INT(mk_fp32_to_fp16(1.0f + ldexpf(3, -11)), 0x3c02);
        CHECK_EQ_INT(mk_fp32_to_fp16(4095.0f / 2048), 0x4000);         /* carry into the exponent */
        /* every half value converts back to itself */
        for (uint32_t h = 0; h < 0x10000; h++) {
                if (((h >> 10) & 0x1f) == 31 && (h & 0x3ff))
                        continue;
                CHECK_EQ_INT(mk_fp32_to_fp16(h2f((uint16_t)h)), h);
        }
        CHECK_EQ_INT(mk_fp32_to_bf16(1.0f), 0x3f80);
        CHECK_EQ_INT(mk_fp32_to_bf16(1.0f + ldexpf(1, -8)), 0x3f80);     /* tie to even */
        CHECK_EQ_INT(mk_fp32_to_bf16(1.0f + ldexpf(3, -8)), 0x3f82);
        CHECK_EQ_INT(mk_fp32_to_bf16(NAN) & 0x7fc0, 0x7fc0);
}

/* ---- the plan: Q4_K_M as llama.cpp mixes it ---- */

static const mk_tensor *find(const mk_model *m, const char *name) {
        for (size_t i = 0; i < m->n_tensors; i++)
                if (strcmp(m->tensors[i].name, name) == 0)
                        return &m->tensors[i];
        return NULL;
}

static void test_q4_k_m_plan(void) {
        mk_model m;
        char err[256], name[64];
        CHECK_OK(mk_model_plan(&m, mk_preset_find("llama-1b"), mk_ftype_find("q4_k_m"), err, sizeof err));
        CHECK_EQ_INT(m.n_tensors, 1 + 16 * 9 + 1); /* tied: no output.weight */
        CHECK(find(&m, "output.weight") == NULL);
        CHECK_EQ_INT(find(&m, "token_embd.weight")->type, TYPE_Q6_K);
        CHECK_EQ_INT(find(&m, "output_norm.weight")->type, TYPE_F32);
        /* llama.cpp gives 16 layers more bits in layers 0 1 4 7 10 13 14 15 */
        static const bool more[16] = { 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1 };
        for (int i = 0; i < 16; i++) {
                uint32_t want = more[i] ? TYPE_Q6_K : TYPE_Q4_K;
                snprintf(name, sizeof name, "blk.%d.attn_v.weight", i);
                CHECK_EQ_INT(find(&m, name)->type, want);
                snprintf(name, sizeof name, "blk.%d.ffn_down.weight", i);
                CHECK_EQ_INT(find(&m, name)->type, want);
                snprintf(name, sizeof name, "blk.%d.attn_q.weight", i);
                CHECK_EQ_INT(find(&m, name)->type, TYPE_Q4_K);
                snprintf(name, sizeof name, "blk.%d.attn_norm.weight", i);
                CHECK_EQ_INT(find(&m, name)->type, TYPE_F32);
        }
        const mk_tensor *t = find(&m, "blk.3.ffn_gate.weight");
        CHECK_EQ_INT(t->ne[0], 2048);
        CHECK_EQ_INT(t->ne[1], 8192);
        t = find(&m, "blk.3.attn_k.weight");
        CHECK_EQ_INT(t->ne[1], 8 * 64);
        /* packed in info order, 32-aligned */
        uint64_t off = 0;
        for (size_t i = 0; i < m.n_tensors; i++) {
                CHECK_EQ_INT(m.tensors[i].offset, off);
                off += (m.tensors[i].nbytes + 31) & ~(uint64_t)31;
        }
        mk_model_done(&m);

        CHECK_OK(mk_model_plan(&m, mk_preset_find("llama-tiny"), mk_ftype_find("Q4_K_M"), err, sizeof err));
        CHECK_EQ_INT(find(&m, "output.weight")->type, TYPE_Q6_K);
        CHECK_EQ_INT(find(&m, "token_embd.weight")->type, TYPE_Q4_K); /* untied */
        CHECK_EQ_INT(find(&m, "blk.0.attn_v.weight")->type, TYPE_Q4_K);
        CHECK_EQ_INT(find(&m, "blk.1.attn_v.weight")->type, TYPE_Q6_K);
        mk_model_done(&m);
}

/* ---- files: what the engine's GGUF reader and dequantizers see ---- */

static void check_with_reader(const char *path, const mk_model *m) {
        gguf_file *f;
        char err[256];
        int r = gguf_open_path(path, &f, err, sizeof err);
        CHECK_MSG(r >= 0, "%s: %s", path, err);
        gguf_str s;
        uint32_t u;
        CHECK_OK(gguf_get_str(f, "general.architecture", &s));
        CHECK(gguf_str_eq(s, "llama"));
        CHECK_OK(gguf_get_u32(f, "general.file_type", &u));
        CHECK_EQ_INT(u, m->ftype->file_type);
        CHECK_OK(gguf_get_u32(f, "llama.embedding_length", &u));
        CHECK_EQ_INT(u, 256);
        CHECK_OK(gguf_get_u32(f, "llama.block_count", &u));
        CHECK_EQ_INT(u, 2);
        CHECK_OK(gguf_get_u32(f, "llama.attention.head_count_kv", &u));
        CHECK_EQ_INT(u, 2);
        CHECK_OK(gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &u));
        CHECK_EQ_INT(u, 1);
        gguf_type et;
        uint64_t n;
        const void *data;
        CHECK_OK(gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n, &data));
        CHECK_EQ_INT(et, GGUF_TYPE_STRING);
        CHECK_EQ_INT(n, 512);
        CHECK_OK(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 3 + 0x41, &s));
        CHECK(gguf_str_eq(s, "<0x41>"));
        CHECK_OK(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 511, &s));
        CHECK(gguf_str_eq(s, "\xe2\x96\x81w252"));
        int64_t tt;
        CHECK_OK(gguf_get_arr_i64(f, "tokenizer.ggml.token_type", 1, &tt));
        CHECK_EQ_INT(tt, 3);
        CHECK_EQ_INT(gguf_alignment(f), 32);

        CHECK_EQ_INT(gguf_n_tensors(f), (int64_t)m->n_tensors);
        for (size_t i = 0; i < m->n_tensors; i++) {
                const mk_tensor *t = &m->tensors[i];
                const gguf_tensor *g = gguf_find_tensor(f, t->name);
                CHECK_MSG(g, "tensor %s missing", t->name);
                CHECK_EQ_INT(g->type, t->type);
                CHECK_EQ_INT(g->n_dims, t->n_dims);
                CHECK_EQ_INT(g->ne[0], t->ne[0]);
                CHECK_EQ_INT(g->ne[1], t->ne[1]);
                CHECK_EQ_INT(g->offset, t->offset);
                CHECK_EQ_INT(g->nbytes, t->nbytes);

                /* the engine's dequantizer and the one above agree on the
                 * first and last rows */
                const type_traits *tr = type_traits_get(g->type);
                CHECK(tr && tr->to_float);
                size_t row = mk_row_size(g->type, g->ne[0]);
                float *y1 = malloc(g->ne[0] * sizeof *y1), *y2 = malloc(g->ne[0] * sizeof *y2);
                CHECK(y1 && y2);
                for (int64_t rr = 0; rr < g->ne[1]; rr += MAX(1, g->ne[1] - 1)) {
                        const uint8_t *p = (const uint8_t *)g->data + rr * row;
                        tr->to_float(p, y1, g->ne[0]);
                        dequant(g->type, p, y2, g->ne[0]);
                        for (int64_t k = 0; k < g->ne[0]; k++)
                                CHECK_MSG(fabsf(y1[k] - y2[k]) <= 1e-6f * fabsf(y2[k]) + 1e-9f,
                                          "%s row %" PRId64 " [%" PRId64 "]: engine %g, spec %g", t->name, rr, k, y1[k], y2[k]);
                }
                free(y1);
                free(y2);
        }
        gguf_close(f);
}

/* ---- the engine runs every file, and the quantized ones stay near F32 ---- */

/* Logits after BOS + 15 fixed ids, for the last position. */
static float *engine_logits(const char *path) {
        char err[256];
        engine_model_params mp;
        engine_model_default_params(&mp);
        mp.n_threads = 2;
        engine_model *m;
        int r = engine_model_load_path(path, &mp, &m, err, sizeof err);
        CHECK_MSG(r >= 0, "%s: %s", path, err);
        engine_session_params sp;
        engine_session_default_params(&sp);
        sp.n_ctx = 64;
        engine_session *s;
        r = engine_session_new(m, &sp, &s, err, sizeof err);
        CHECK_MSG(r >= 0, "%s: %s", path, err);
        int32_t n_vocab = engine_model_n_vocab(m), tok[16] = { 1 };
        CHECK_EQ_INT(n_vocab, 512);
        for (int i = 1; i < 16; i++)
                tok[i] = 3 + (i * 7919) % (n_vocab - 3);
        float *logits = malloc(n_vocab * sizeof *logits);
        CHECK(logits);
        CHECK_OK(engine_session_eval(s, tok, 16, false, logits));
        for (int i = 0; i < n_vocab; i++)
                CHECK_MSG(isfinite(logits[i]), "%s: logit %d is %g", path, i, logits[i]);
        engine_session_free(s);
        engine_model_free(m);
        return logits;
}

static void test_engine(void) {
        /* max |logit - F32 logit| allowed: about twice what llama.cpp shows
         * on these files (F16 1.2e-3, BF16 6.4e-3, Q8_0 0.023, Q6_K 0.064,
         * Q5_K 0.11, Q4_K_M 0.21, Q4_K 0.24, Q4_0 0.31; logit std 0.31) */
        static const struct {
                const char *type;
                float tol;
        } cases[] = {
                { "F16", 5e-3f }, { "BF16", 2e-2f }, { "Q8_0", 0.06f }, { "Q6_K", 0.15f },
                { "Q5_K", 0.25f }, { "Q4_K_M", 0.45f }, { "Q4_K", 0.5f }, { "Q4_0", 0.6f },
        };
        char dir[] = "/tmp/test-mkmodel-XXXXXX", path[128], err[256];
        CHECK(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/m.gguf", dir);

        mk_model m;
        CHECK_OK(mk_model_plan(&m, mk_preset_find("llama-tiny"), mk_ftype_find("F32"), err, sizeof err));
        CHECK_MSG(mk_model_write(&m, path, 1, 2, err, sizeof err) >= 0, "%s", err);
        mk_model_done(&m);
        float *ref = engine_logits(path);
        double s2 = 0;
        for (int i = 0; i < 512; i++)
                s2 += ref[i] * ref[i];
        CHECK_MSG(sqrt(s2 / 512) > 0.1, "F32 logits are degenerate (rms %g)", sqrt(s2 / 512));

        for (size_t k = 0; k < ELEMENTSOF(cases); k++) {
                CHECK_OK(mk_model_plan(&m, mk_preset_find("llama-tiny"), mk_ftype_find(cases[k].type), err, sizeof err));
                CHECK_MSG(mk_model_write(&m, path, 1, 2, err, sizeof err) >= 0, "%s", err);
                mk_model_done(&m);
                float *l = engine_logits(path), d = 0;
                for (int i = 0; i < 512; i++)
                        d = fmaxf(d, fabsf(l[i] - ref[i]));
                printf("%-6s engine max |logit - F32 logit| %.4f\n", cases[k].type, d);
                CHECK_MSG(d <= cases[k].tol, "%s: max |logit diff| %g > %g", cases[k].type, d, cases[k].tol);
                CHECK_MSG(d > 0, "%s: logits identical to F32: not quantized?", cases[k].type);
                free(l);
        }
        free(ref);
        unlink(path);
        rmdir(dir);
}

/* ---- files: identical for any thread count, sized as planned ---- */

static void test_files(void) {
        char dir[] = "/tmp/test-mkmodel-XXXXXX", a[128], b[128], err[256];
        CHECK(mkdtemp(dir));
        snprintf(a, sizeof a, "%s/a.gguf", dir);
        snprintf(b, sizeof b, "%s/b.gguf", dir);

        for (size_t k = 0; k < mk_n_ftypes; k++) {
                mk_model m;
                CHECK_OK(mk_model_plan(&m, mk_preset_find("llama-tiny"), &mk_ftypes[k], err, sizeof err));
                int r = mk_model_write(&m, a, 5, 1, err, sizeof err);
                CHECK_MSG(r >= 0, "%s", err);
                r = mk_model_write(&m, b, 5, 3, err, sizeof err);
                CHECK_MSG(r >= 0, "%s", err);
                size_t na = 0, nb = 0;
                uint8_t *pa = test_read_file(a, &na), *pb = test_read_file(b, &nb);
                CHECK(pa && pb);
                CHECK_EQ_INT(na, nb);
                CHECK_MSG(memcmp(pa, pb, na) == 0, "%s: 1 and 3 threads wrote different files", mk_ftypes[k].name);
                CHECK(memcmp(pa, "GGUF", 4) == 0);
                uint64_t nt, last_end = 0;
                memcpy(&nt, pa + 8, 8);
                CHECK_EQ_INT(nt, m.n_tensors);
                const mk_tensor *t = &m.tensors[m.n_tensors - 1];
                last_end = t->offset + ((t->nbytes + 31) & ~(uint64_t)31);
                CHECK((na - last_end) % 32 == 0); /* data start aligned, file ends with the data */

                check_with_reader(a, &m);

                /* the first tensor's first row decodes to N(0, 0.02)-like values */
                const mk_tensor *e = &m.tensors[0];
                CHECK(strcmp(e->name, "token_embd.weight") == 0);
                float row[256];
                dequant(e->type, pa + (na - last_end) + e->offset, row, 256);
                double s2 = 0;
                for (int i = 0; i < 256; i++)
                        s2 += row[i] * row[i];
                double sd = sqrt(s2 / 256);
                CHECK_MSG(sd > 0.015 && sd < 0.025, "%s: std of the first row %g", mk_ftypes[k].name, sd);
                free(pa);
                free(pb);

                /* another seed, another file */
                r = mk_model_write(&m, b, 6, 2, err, sizeof err);
                CHECK_MSG(r >= 0, "%s", err);
                pa = test_read_file(a, &na);
                pb = test_read_file(b, &nb);
                CHECK(na == nb && memcmp(pa, pb, na) != 0);
                free(pa);
                free(pb);
                mk_model_done(&m);
        }
        unlink(a);
        unlink(b);
        rmdir(dir);
}

int main(void) {
        test_half();
        test_roundtrip(TYPE_F32, 0, 0);
        test_roundtrip(TYPE_F16, 5e-4, 1e-5);
        test_roundtrip(TYPE_BF16, 3e-3, 5e-4);
        test_roundtrip(TYPE_Q8_0, 0.008, 0.002);
        test_roundtrip(TYPE_Q4_0, 0.12, 0.03);
        test_roundtrip(TYPE_Q4_K, 0.11, 0.03);
        test_roundtrip(TYPE_Q5_K, 0.055, 0.015);
        test_roundtrip(TYPE_Q6_K, 0.03, 0.008);
        test_q4_k_m_plan();
        test_files();
        test_engine();
        printf("ok\n");
        return 0;
}
