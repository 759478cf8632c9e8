/* SPDX-License-Identifier: MIT */
/* The ggml-*.bin loader: valid files of every weight type load with the
 * right hyperparameters, vocabulary and special tokens; malformed ones
 * (truncated anywhere, bad header fields, unknown, duplicated, misshapen or
 * missing tensors, bad types) fail with a sentence, never a crash. */
#include <errno.h>

#include "kernels-impl.h"
#include "type-q5_0.h"
#include "whisper-impl.h"
#include "whisper-test-util.h"

static void check_fails(const uint8_t *buf, size_t n, const char *what) {
        char err[256] = "";
        whisper_model *m = NULL;
        int r = whisper_model_load_buffer(buf, n, &m, err, sizeof err);
        CHECK_MSG(r < 0, "%s: loaded a malformed file", what);
        CHECK_MSG(m == NULL, "%s", what);
        CHECK_MSG(err[0] != 0, "%s: no error message", what);
}

static void put32(uint8_t *p, int32_t v) { memcpy(p, &v, 4); }
static int32_t get32(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }

/* Offset of the first tensor record: header, filters, vocabulary. */
static size_t tensors_offset(const uint8_t *b) {
        size_t off = 48;
        int32_t n_mel = get32(b + off), n_fft = get32(b + off + 4);
        off += 8 + (size_t)n_mel * n_fft * 4;
        int32_t n_tok = get32(b + off);
        off += 4;
        for (int32_t i = 0; i < n_tok; i++)
                off += 4 + (size_t)get32(b + off);
        return off;
}

static size_t record_size(const uint8_t *p) {
        int32_t n_dims = get32(p), name_len = get32(p + 4), type = get32(p + 8);
        uint64_t nel = 1;
        for (int i = 0; i < n_dims; i++)
                nel *= (uint64_t)get32(p + 12 + 4 * i);
        size_t data = type == 0 ? nel * 4 : type == 1 ? nel * 2 : type == 8 ? nel / 32 * 34 : nel / 32 * 22;
        return 12 + 4 * (size_t)n_dims + (size_t)name_len + data;
}

static void test_valid(const char *path, const char *type) {
        char err[256] = "";
        whisper_model *m = NULL;
        CHECK_MSG(whisper_model_load_path(path, &m, err, sizeof err) == 0, "%s: %s", type, err);

        const whisper_hparams *hp = whisper_model_hparams(m);
        CHECK_EQ_INT(hp->n_vocab, 51865);
        CHECK_EQ_INT(hp->n_audio_state, 64);
        CHECK_EQ_INT(hp->n_audio_layer, 2);
        CHECK_EQ_INT(hp->n_text_layer, 2);
        CHECK_EQ_INT(hp->n_audio_ctx, 1500);
        CHECK(whisper_model_is_multilingual(m));
        const whisper_special *sp = whisper_model_special(m);
        CHECK_EQ_INT(sp->eot, 50257);
        CHECK_EQ_INT(sp->sot, 50258);
        CHECK_EQ_INT(sp->translate, 50358);
        CHECK_EQ_INT(sp->transcribe, 50359);
        CHECK_EQ_INT(sp->notimestamps, 50363);
        CHECK_EQ_INT(sp->beg, 50364);
        CHECK_EQ_INT(sp->n_langs, 99);
        CHECK_EQ_INT(sp->space, 220);
        CHECK_EQ_INT(whisper_lang_count(m), 99);

        size_t len;
        const char *b = whisper_token_bytes(m, 0, &len);
        CHECK(len == 1 && b[0] == '!');
        b = whisper_token_bytes(m, 50256, &len);
        CHECK(b && len == 0);
        b = whisper_token_bytes(m, sp->sot, &len);
        CHECK(len == 7 && memcmp(b, "[_SOT_]", 7) == 0);
        b = whisper_token_bytes(m, sp->beg + 150, &len);
        CHECK(len == 9 && memcmp(b, "[_TT_150]", 9) == 0);
        b = whisper_token_bytes(m, sp->sot + 1, &len);
        CHECK(len == 10 && memcmp(b, "[_LANG_en]", 10) == 0);
        CHECK(whisper_token_bytes(m, hp->n_vocab, &len) == NULL);
        CHECK(whisper_token_bytes(m, -1, &len) == NULL);
        CHECK_EQ_INT(whisper_token_lookup(m, "[_SOT_]", 7), sp->sot);
        CHECK_EQ_INT(whisper_token_lookup(m, "no such piece", 13), -1);
        CHECK(strcmp(whisper_model_size_name(m), "unknown") == 0);
        whisper_model_free(m);
}

/* Weights of the same seed in different types dequantize close together. */
static void test_types_agree(char **paths) {
        char err[256];
        whisper_model *m[4];
        for (int i = 0; i < 4; i++)
                CHECK_MSG(whisper_model_load_path(paths[i], &m[i], err, sizeof err) == 0, "%s", err);
        int64_t S = 64;
        float ref[64 * 4], row[64 * 4];
        for (size_t k = 0; k < 4; k++) {
#define PICK(mm) (k == 0 ? &(mm)->d_tok : k == 1 ? &(mm)->e_blocks[1].mlp_0 : k == 2 ? &(mm)->e_blocks[0].mlp_2 : &(mm)->d_blocks[0].cross_v)
                const weight *w0 = PICK(m[0]);
                for (int64_t r = 0; r < 7; r++) {
                        int64_t rr = r * 997 % w0->n_out;
                        whisper_weight_row(w0, rr, ref); /* f32 */
                        for (int t = 1; t < 4; t++) {
                                const weight *w = PICK(m[t]);
                                whisper_weight_row(w, rr, row);
                                double amax = 0, dmax = 0;
                                for (int64_t i = 0; i < w->n_in; i++) {
                                        amax = fmax(amax, fabs(ref[i]));
                                        dmax = fmax(dmax, fabs(ref[i] - row[i]));
                                }
                                /* f16: 2^-11 relative; q8_0: half a step of amax/127;
                                 * q5_0: half a step of amax/16 */
                                double tol = t == 1 ? amax * 1e-3 : t == 2 ? amax / 127 : amax / 16;
                                CHECK_MSG(dmax <= tol, "type %d weight %zu row %" PRId64 ": %g > %g", t, k, rr, dmax, tol);
                        }
                }
        }
#undef PICK
        (void)S;
        for (int i = 0; i < 4; i++)
                whisper_model_free(m[i]);
}

/* Q5_0 kernels: round trip and dot product against Q8_0 activations. */
static void test_q5_0(void) {
        float x[256], y[256], a[256];
        block_q5_0 q[8];
        uint8_t q8[8 * 34];
        for (int i = 0; i < 256; i++) {
                x[i] = sinf((float)i * 0.37f) * (1 + i % 7);
                a[i] = cosf((float)i * 0.11f);
        }
        q5_0_from_float(x, q, 256);
        q5_0_to_float(q, y, 256);
        for (int b = 0; b < 8; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++)
                        amax = fmaxf(amax, fabsf(x[b * 32 + j]));
                for (int j = 0; j < 32; j++)
                        CHECK(fabsf(x[b * 32 + j] - y[b * 32 + j]) <= amax / 16 * 0.5f + 1e-3f * amax);
        }
        /* activations to Q8_0 (amax/127 scale, round to nearest) */
        for (int b = 0; b < 8; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++)
                        amax = fmaxf(amax, fabsf(a[b * 32 + j]));
                float d = amax / 127;
                uint16_t d16 = fp32_to_fp16(d);
                memcpy(q8 + b * 34, &d16, 2);
                for (int j = 0; j < 32; j++)
                        q8[b * 34 + 2 + j] = (uint8_t)(int8_t)roundf(a[b * 32 + j] / d);
        }
        float s, ref = 0, aq[256];
        for (int b = 0; b < 8; b++) {
                uint16_t d16;
                memcpy(&d16, q8 + b * 34, 2);
                for (int j = 0; j < 32; j++)
                        aq[b * 32 + j] = (float)(int8_t)q8[b * 34 + 2 + j] * fp16_to_fp32(d16);
        }
        for (int i = 0; i < 256; i++)
                ref += y[i] * aq[i];
        q5_0_vec_dot(256, &s, q, q8);
        CHECK_MSG(fabsf(s - ref) <= 1e-3f * fabsf(ref) + 1e-3f, "%g vs %g", s, ref);
}

static void test_malformed(const char *path) {
        size_t n;
        uint8_t *good = test_read_file(path, &n);
        CHECK(good);
        uint8_t *b = malloc(2 * n + 4096);
        CHECK(b);
        size_t t0 = tensors_offset(good);

        /* every prefix at interesting points fails */
        size_t cuts[] = { 0, 3, 4, 20, 47, 48, 52, 100, t0 - 1, t0 + 5, t0 + 13, t0 + 40, n / 2, n - 1 };
        for (size_t i = 0; i < ELEMENTSOF(cuts); i++)
                check_fails(good, cuts[i], "truncated");
        /* ... and at every tensor record boundary and middle */
        for (size_t off = t0; off < n; off += record_size(good + off)) {
                if (off > t0)
                        check_fails(good, off, "cut at a record");
                check_fails(good, off + 7, "cut in a record header");
        }

        struct { size_t at; int32_t v; const char *what; } fields[] = {
                { 0, 0x12345678, "magic" },       { 4, 1000, "n_vocab" },         { 4, 60000, "n_vocab" },
                { 8, 0, "n_audio_ctx" },          { 8, 1501, "n_audio_ctx" },     { 12, -64, "n_audio_state" },
                { 16, 0, "n_audio_head" },        { 16, 5, "heads not dividing" }, { 20, 0, "n_audio_layer" },
                { 20, 3, "more layers than tensors" }, { 24, 7, "n_text_ctx" }, { 28, 128, "n_text_state" },
                { 36, 100000, "n_text_layer" },   { 40, 0, "n_mels" },            { 40, 81, "n_mels vs filters" },
                { 44, -1, "ftype" },              { 48, 79, "filter count" },     { 52, 200, "filter bins" },
                { 52, 0x7fffffff, "filter bins" },
        };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                memcpy(b, good, n);
                put32(b + fields[i].at, fields[i].v);
                check_fails(b, n, fields[i].what);
        }

        /* vocabulary: count too large, piece length past the end */
        size_t voc = 48 + 8 + 80 * 201 * 4;
        memcpy(b, good, n);
        put32(b + voc, 51866);
        check_fails(b, n, "vocabulary count");
        memcpy(b, good, n);
        put32(b + voc + 4, 0x7fffffff);
        check_fails(b, n, "piece length");
        memcpy(b, good, n);
        put32(b + voc + 4, -1);
        check_fails(b, n, "negative piece length");

        /* first tensor record: bad n_dims, name length, type, shape, name */
        struct { size_t at; int32_t v; const char *what; } rec[] = {
                { 0, 5, "n_dims" },   { 0, -1, "n_dims" },    { 4, 0, "name length" }, { 4, 100000, "name length" },
                { 8, 99, "type" },    { 8, 2, "q4_0" },       { 8, 1, "f16 for an f32 tensor" },
                { 12, 65, "shape" },  { 12, 0, "zero dim" },  { 12, -3, "negative dim" },
        };
        for (size_t i = 0; i < ELEMENTSOF(rec); i++) {
                memcpy(b, good, n);
                put32(b + t0 + rec[i].at, rec[i].v);
                check_fails(b, n, rec[i].what);
        }
        memcpy(b, good, n);
        b[t0 + 12 + 4 * get32(good + t0)] ^= 0x20; /* first letter of the name */
        check_fails(b, n, "unknown name");

        /* duplicated first record at the end */
        size_t r0 = record_size(good + t0);
        memcpy(b, good, n);
        memcpy(b + n, good + t0, r0);
        check_fails(b, n + r0, "duplicate tensor");
        /* missing: drop the first record */
        memcpy(b, good, t0);
        memcpy(b + t0, good + t0 + r0, n - t0 - r0);
        check_fails(b, n - r0, "missing tensor");
        /* trailing garbage shorter than a record header */
        memcpy(b, good, n);
        memset(b + n, 0, 5);
        check_fails(b, n + 5, "trailing bytes");
        /* a non-finite value in an f32 tensor */
        memcpy(b, good, n);
        {
                size_t data = t0 + 12 + 4 * get32(good + t0) + get32(good + t0 + 4);
                float inf = INFINITY;
                memcpy(b + data + 8, &inf, 4);
                check_fails(b, n, "infinite value");
        }

        /* and the good file still loads from the buffer */
        char err[256];
        whisper_model *m = NULL;
        CHECK_MSG(whisper_model_load_buffer(good, n, &m, err, sizeof err) == 0, "%s", err);
        whisper_model_free(m);
        free(b);
        free(good);
}

int main(void) {
        const char *types[] = { "f32", "f16", "q8_0", "q5_0" };
        char *paths[4];
        for (int i = 0; i < 4; i++) {
                const char *args[] = { "--state", "64", "--heads", "2", "--layers", "2", "--type", types[i], "--seed", "7", NULL };
                char name[32];
                snprintf(name, sizeof name, "small-%s.bin", types[i]);
                paths[i] = wt_make_model(name, args);
                test_valid(paths[i], types[i]);
        }
        test_types_agree(paths);
        test_q5_0();
        test_malformed(paths[1]);
        test_malformed(paths[3]);

        char err[256];
        whisper_model *m = NULL;
        CHECK(whisper_model_load_path("/nonexistent/model.bin", &m, err, sizeof err) == -ENOENT);
        CHECK(whisper_model_load_path("/dev/null", &m, err, sizeof err) < 0);

        for (int i = 0; i < 4; i++)
                free(paths[i]);
        wt_cleanup_tmpdir();
        printf("ok\n");
        return 0;
}
