/* SPDX-License-Identifier: MIT */
/* The tokenizer on small vocabularies built in memory: metadata
 * validation (every error names its key), the special-token partition,
 * score and rank order of merges, byte fallback, BOS/EOS, decoding, and the
 * pre-tokenizer matchers against hand-derived splits of their regexes.
 * Needs no shared data. */
#include <errno.h>

#include "gguf-builder.h"
#include "gguf.h"
#include "macro.h"
#include "test.h"
#include "tokenizer-internal.h"
#include "tokenizer.h"
#include "unicode.h"

/* --- building vocabularies ---------------------------------------------------- */

typedef struct kv_u32 {
        const char *key;
        uint32_t v;
} kv_u32;

typedef struct kv_bool {
        const char *key;
        bool v;
} kv_bool;

typedef struct vspec {
        const char *model, *pre, *arch;
        const char *const *tokens;
        int n_tokens;
        const float *scores; /* NULL: no key */
        int n_scores;
        const int32_t *types; /* NULL: no key */
        int n_types;
        const char *const *merges; /* NULL: no key */
        int n_merges;
        kv_u32 u32[4];
        kv_bool bools[4];
        bool tokens_as_i32; /* write tokenizer.ggml.tokens with the wrong type */
} vspec;

static int load_spec(const vspec *s, tokenizer **ret, char *err, size_t errlen) {
        gb b = { 0 };
        uint64_t n_kv = 1 + !!s->pre + !!s->arch + 1 + !!s->scores + !!s->types + !!s->merges;
        for (int i = 0; i < 4; i++)
                n_kv += !!s->u32[i].key + !!s->bools[i].key;

        gb_header(&b, 3, 0, n_kv);
        gb_kv_str(&b, "tokenizer.ggml.model", s->model);
        if (s->pre)
                gb_kv_str(&b, "tokenizer.ggml.pre", s->pre);
        if (s->arch)
                gb_kv_str(&b, "general.architecture", s->arch);
        if (s->tokens_as_i32) {
                gb_kv_arr(&b, "tokenizer.ggml.tokens", GGUF_TYPE_INT32, s->n_tokens);
                for (int i = 0; i < s->n_tokens; i++)
                        gb_u32(&b, (uint32_t)i);
        } else {
                gb_kv_arr(&b, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, s->n_tokens);
                for (int i = 0; i < s->n_tokens; i++)
                        gb_str(&b, s->tokens[i]);
        }
        if (s->scores) {
                gb_kv_arr(&b, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, s->n_scores);
                for (int i = 0; i < s->n_scores; i++)
                        gb_f32(&b, s->scores[i]);
        }
        if (s->types) {
                gb_kv_arr(&b, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, s->n_types);
                for (int i = 0; i < s->n_types; i++)
                        gb_u32(&b, (uint32_t)s->types[i]);
        }
        if (s->merges) {
                gb_kv_arr(&b, "tokenizer.ggml.merges", GGUF_TYPE_STRING, s->n_merges);
                for (int i = 0; i < s->n_merges; i++)
                        gb_str(&b, s->merges[i]);
        }
        for (int i = 0; i < 4; i++) {
                if (s->u32[i].key)
                        gb_kv_u32(&b, s->u32[i].key, s->u32[i].v);
                if (s->bools[i].key) {
                        gb_key(&b, s->bools[i].key, GGUF_TYPE_BOOL);
                        gb_u8(&b, s->bools[i].v);
                }
        }
        gb_pad(&b, 32);

        gguf_file *f = NULL;
        int r = gguf_open_memory(b.p, b.n, &f, err, errlen);
        CHECK_MSG(r >= 0, "test vocabulary does not parse as GGUF: %s", err);
        r = tokenizer_load(f, ret, err, errlen);
        /* The tokenizer must not keep pointers into the file. */
        gguf_close(f);
        memset(b.p, 0xAA, b.n);
        gb_free(&b);
        return r;
}

static void expect_ids(const tokenizer *t, const char *text, bool add_special, bool parse_special, const int32_t *want,
                       size_t n_want) {
        int32_t *ids;
        size_t n;
        CHECK_OK(tokenizer_encode(t, text, strlen(text), add_special, parse_special, &ids, &n));
        bool ok = n == n_want && (n == 0 || memcmp(ids, want, n * sizeof(int32_t)) == 0);
        if (!ok) {
                fprintf(stderr, "'%s' (add_special=%d parse_special=%d):\n  want", text, add_special, parse_special);
                for (size_t i = 0; i < n_want; i++)
                        fprintf(stderr, " %d", want[i]);
                fprintf(stderr, "\n  got ");
                for (size_t i = 0; i < n; i++)
                        fprintf(stderr, " %d", ids[i]);
                fputc('\n', stderr);
        }
        free(ids);
        CHECK(ok);
}

#define IDS(...) ((const int32_t[]){ __VA_ARGS__ }), ELEMENTSOF(((const int32_t[]){ __VA_ARGS__ }))

static void expect_error(const vspec *s, const char *key) {
        tokenizer *t = NULL;
        char err[512] = "";
        int r = tokenizer_load(NULL, &t, err, sizeof err);
        CHECK_EQ_INT(r, -EINVAL);
        r = load_spec(s, &t, err, sizeof err);
        CHECK_MSG(r < 0, "loaded, but expected an error about %s", key);
        CHECK(t == NULL);
        CHECK_MSG(strstr(err, key), "error '%s' does not name %s", err, key);
        printf("  rejected: %s\n", err);
}

/* --- a small SentencePiece vocabulary ------------------------------------------ */

enum {
        SPM_UNK = 0,
        SPM_BOS = 1,
        SPM_EOS = 2,
        SPM_BYTE0 = 3, /* <0x00> .. <0xFF> = 3 .. 258 */
        SPM_SPACE = 259,
        SPM_A,
        SPM_B,
        SPM_C,
        SPM_D,
        SPM_BC,
        SPM_CD,
        SPM_SPACE_A,
        SPM_CTL,      /* <ctl>, control */
        SPM_US,       /* <us>, user-defined */
        SPM_AB,       /* ab, user-defined */
        SPM_BDD,      /* bdd, user-defined */
        SPM_EOT,      /* <end_of_turn>, typed NORMAL: the loader makes it control */
        SPM_N,
};

static char spm_text[SPM_N][16];
static const char *spm_tokens[SPM_N];
static float spm_scores[SPM_N];
static int32_t spm_types[SPM_N];

static void spm_init(void) {
        static const struct {
                const char *text;
                float score;
                int32_t type;
        } rest[] = {
                { "\xe2\x96\x81", -1, 1 }, { "a", -2, 1 },  { "b", -3, 1 },      { "c", -4, 1 },
                { "d", -5, 1 },            { "bc", -11, 1 }, { "cd", -12, 1 },    { "\xe2\x96\x81" "a", -6, 1 },
                { "<ctl>", 0, 3 },         { "<us>", 0, 4 }, { "ab", 0, 4 },      { "bdd", 0, 4 },
                { "<end_of_turn>", 0, 1 },
        };
        snprintf(spm_text[0], 16, "<unk>");
        snprintf(spm_text[1], 16, "<s>");
        snprintf(spm_text[2], 16, "</s>");
        spm_types[0] = 2;
        spm_types[1] = spm_types[2] = 3;
        for (int b = 0; b < 256; b++) {
                snprintf(spm_text[SPM_BYTE0 + b], 16, "<0x%02X>", b);
                spm_types[SPM_BYTE0 + b] = 6;
        }
        for (size_t i = 0; i < ELEMENTSOF(rest); i++) {
                snprintf(spm_text[SPM_SPACE + i], 16, "%s", rest[i].text);
                spm_scores[SPM_SPACE + i] = rest[i].score;
                spm_types[SPM_SPACE + i] = rest[i].type;
        }
        for (int i = 0; i < SPM_N; i++)
                spm_tokens[i] = spm_text[i];
}

static vspec spm_spec(void) {
        return (vspec){
                .model = "llama",
                .tokens = spm_tokens,
                .n_tokens = SPM_N,
                .scores = spm_scores,
                .n_scores = SPM_N,
                .types = spm_types,
                .n_types = SPM_N,
                .bools = { { "tokenizer.ggml.add_space_prefix", false } },
        };
}

static void test_spm(void) {
        tokenizer *t;
        char err[512] = "";
        vspec s = spm_spec();

        CHECK_MSG(load_spec(&s, &t, err, sizeof err) >= 0, "%s", err);
        CHECK_EQ_INT(tokenizer_n_vocab(t), SPM_N);
        CHECK_EQ_INT(tokenizer_bos(t), SPM_BOS); /* Llama defaults */
        CHECK_EQ_INT(tokenizer_eos(t), SPM_EOS);
        CHECK(tokenizer_add_bos(t));

        /* score order: bc (-11) beats cd (-12) */
        expect_ids(t, "bcd", false, false, IDS(SPM_BC, SPM_D));
        /* byte fallback for what no token covers: é = C3 A9 */
        expect_ids(t, "\xc3\xa9", false, false, IDS(SPM_BYTE0 + 0xC3, SPM_BYTE0 + 0xA9));
        /* a space is ▁ */
        expect_ids(t, " a", false, false, IDS(SPM_SPACE_A));
        /* BOS only with add_special */
        expect_ids(t, "", true, false, IDS(SPM_BOS));
        expect_ids(t, "", false, false, NULL, 0);
        expect_ids(t, "a", true, false, IDS(SPM_BOS, SPM_A));

        /* special tokens, longest first: bdd (3) is split out before ab (2),
         * although ab starts earlier */
        expect_ids(t, "abdd", false, false, IDS(SPM_A, SPM_BDD));
        expect_ids(t, "abab", false, false, IDS(SPM_AB, SPM_AB));
        /* user-defined always, control only with parse_special */
        expect_ids(t, "a<us>", false, false, IDS(SPM_A, SPM_US));
        expect_ids(t, "<ctl>a", false, true, IDS(SPM_CTL, SPM_A));
        expect_ids(t, "<ctl>a", false, false,
                   IDS(SPM_BYTE0 + '<', SPM_C, SPM_BYTE0 + 't', SPM_BYTE0 + 'l', SPM_BYTE0 + '>', SPM_A));
        /* text-detected end of turn: control, end of generation */
        CHECK(tokenizer_is_eog(t, SPM_EOT));
        CHECK_EQ_INT(tokenizer_eot(t), SPM_EOT);
        CHECK_EQ_INT(tokenizer_token_type(t, SPM_EOT), 3); /* typed normal in the file */
        CHECK_EQ_INT(tokenizer_token_type(t, SPM_UNK), 2);
        CHECK_EQ_INT(tokenizer_token_type(t, SPM_N), -EINVAL);
        CHECK(tokenizer_is_eog(t, SPM_EOS));
        CHECK(!tokenizer_is_eog(t, SPM_BOS));
        expect_ids(t, "<end_of_turn>", false, true, IDS(SPM_EOT));
        CHECK_EQ_INT(tokenizer_find(t, "<end_of_turn>"), SPM_EOT);
        CHECK_EQ_INT(tokenizer_find(t, "nope"), -1);

        /* pieces */
        char buf[32];
        CHECK_EQ_INT(tokenizer_token_to_piece(t, SPM_SPACE_A, false, buf, sizeof buf), 2);
        CHECK(memcmp(buf, " a", 2) == 0);
        CHECK_EQ_INT(tokenizer_token_to_piece(t, SPM_BYTE0 + 0xC3, false, buf, sizeof buf), 1);
        CHECK_EQ_INT((uint8_t)buf[0], 0xC3);
        CHECK_EQ_INT(tokenizer_token_to_piece(t, SPM_CTL, false, buf, sizeof buf), 0);
        CHECK_EQ_INT(tokenizer_token_to_piece(t, SPM_CTL, true, buf, sizeof buf), 5);
        CHECK_EQ_INT(tokenizer_token_to_piece(t, SPM_US, false, buf, sizeof buf), 4);
        CHECK_EQ_INT(tokenizer_token_to_piece(t, SPM_UNK, false, buf, sizeof buf), 0);
        CHECK_EQ_INT(tokenizer_token_to_piece(t, SPM_N, false, buf, sizeof buf), -EINVAL);
        tokenizer_free(t);

        /* the other score order: cd first */
        spm_scores[SPM_BC] = -13;
        CHECK_MSG(load_spec(&s, &t, err, sizeof err) >= 0, "%s", err);
        expect_ids(t, "bcd", false, false, IDS(SPM_B, SPM_CD));
        tokenizer_free(t);
        spm_scores[SPM_BC] = -11;

        /* add_space_prefix (the default), add_eos_token */
        s.bools[0] = (kv_bool){ "tokenizer.ggml.add_eos_token", true };
        CHECK_MSG(load_spec(&s, &t, err, sizeof err) >= 0, "%s", err);
        expect_ids(t, "a", false, false, IDS(SPM_SPACE_A));
        /* the prefix comes back after each special token */
        expect_ids(t, "a<ctl>a", true, true, IDS(SPM_BOS, SPM_SPACE_A, SPM_CTL, SPM_SPACE_A, SPM_EOS));
        /* streaming drops the prefix space of the first piece only */
        detok_stream ds;
        detok_stream_init(&ds);
        char out[64];
        size_t n = 0;
        for (int k = 0; k < 2; k++) {
                int r = detok_stream_push(t, &ds, SPM_SPACE_A, out + n, sizeof out - n);
                CHECK_OK(r);
                n += (size_t)r;
        }
        CHECK_MSG(n == 3 && memcmp(out, "a a", 3) == 0, "'%.*s'", (int)n, out);
        tokenizer_free(t);

        /* Gemma's ids are the defaults for a gemma architecture */
        s = spm_spec();
        s.arch = "gemma3";
        CHECK_MSG(load_spec(&s, &t, err, sizeof err) >= 0, "%s", err);
        CHECK_EQ_INT(tokenizer_bos(t), 2);
        CHECK_EQ_INT(tokenizer_eos(t), 1);
        tokenizer_free(t);
}

/* --- a small byte-level BPE vocabulary --------------------------------------------- */

static char bpe_text[300][16];
static const char *bpe_tokens[300];
static int32_t bpe_types[300];
static int bpe_n;

/* GPT-2's byte map, written out independently of the engine's. */
static uint32_t gpt2_cpt(int b) {
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
                return (uint32_t)b;
        int n = 0;
        for (int c = 0; c < b; c++)
                n += !((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF));
        return 256 + n;
}

enum { BPE_G_A = 256, BPE_A_B, BPE_G_AB, BPE_EOT, BPE_N };

static void bpe_init(void) {
        for (int b = 0; b < 256; b++) {
                uint32_t c = gpt2_cpt(b);
                char *w = bpe_text[b];
                if (c < 0x80)
                        w[0] = (char)c;
                else {
                        w[0] = (char)(0xC0 | c >> 6);
                        w[1] = (char)(0x80 | (c & 0x3F));
                }
                bpe_types[b] = 1;
        }
        snprintf(bpe_text[BPE_G_A], 16, "\xc4\xa0" "a"); /* Ġa */
        snprintf(bpe_text[BPE_A_B], 16, "ab");
        snprintf(bpe_text[BPE_G_AB], 16, "\xc4\xa0" "ab");
        snprintf(bpe_text[BPE_EOT], 16, "<|endoftext|>");
        bpe_types[BPE_G_A] = bpe_types[BPE_A_B] = bpe_types[BPE_G_AB] = 1;
        bpe_types[BPE_EOT] = 3;
        bpe_n = BPE_N;
        for (int i = 0; i < bpe_n; i++)
                bpe_tokens[i] = bpe_text[i];
}

static void test_bpe(void) {
        tokenizer *t;
        char err[512] = "";
        static const char *const merges1[] = { "\xc4\xa0 a", "a b", "\xc4\xa0\x61 b" };
        static const char *const merges2[] = { "a b", "\xc4\xa0 a", "\xc4\xa0\x61 b" };
        vspec s = { .model = "gpt2", .pre = "gpt-2", .tokens = bpe_tokens, .n_tokens = bpe_n, .types = bpe_types,
                    .n_types = bpe_n, .merges = merges1, .n_merges = 3,
                    .u32 = { { "tokenizer.ggml.eos_token_id", BPE_EOT } } };

        CHECK_MSG(load_spec(&s, &t, err, sizeof err) >= 0, "%s", err);
        CHECK_EQ_INT(tokenizer_bos(t), -1);
        CHECK(!tokenizer_add_bos(t));
        /* rank order: "Ġ a" (0) first, then "Ġa b" (2) */
        expect_ids(t, " ab", false, false, IDS(BPE_G_AB));
        expect_ids(t, "ab", false, false, IDS(BPE_A_B));
        /* invalid UTF-8 is U+FFFD (EF BF BD), shown as bytes */
        expect_ids(t, "\xff", false, false, IDS(0xEF, 0xBF, 0xBD));
        expect_ids(t, "x<|endoftext|>", true, true, IDS('x', BPE_EOT));
        CHECK(tokenizer_is_eog(t, BPE_EOT));

        char buf[32];
        CHECK_EQ_INT(tokenizer_token_to_piece(t, BPE_G_AB, false, buf, sizeof buf), 3);
        CHECK(memcmp(buf, " ab", 3) == 0);
        CHECK_EQ_INT(tokenizer_token_to_piece(t, 0x0A, false, buf, sizeof buf), 1); /* Ċ is '\n' */
        CHECK_EQ_INT(buf[0], '\n');
        tokenizer_free(t);

        /* "a b" first: Ġ + ab, and no merge for that pair */
        s.merges = merges2;
        CHECK_MSG(load_spec(&s, &t, err, sizeof err) >= 0, "%s", err);
        expect_ids(t, " ab", false, false, IDS(0x20 /* Ġ */, BPE_A_B));
        tokenizer_free(t);
}

/* --- metadata that must be refused ---------------------------------------------------- */

static void test_errors(void) {
        vspec s;
        static const char *const bad_merge[] = { "\xc4\xa0 a", "ab" };
        static const char *const dup_tokens[] = { "a", "b", "a" };
        float few_scores[3] = { 0 };
        int32_t bad_types[SPM_N];

        printf("errors:\n");
        s = spm_spec();
        s.n_scores = SPM_N - 1;
        expect_error(&s, "tokenizer.ggml.scores");

        s = spm_spec();
        s.n_types = 3;
        expect_error(&s, "tokenizer.ggml.token_type");

        memcpy(bad_types, spm_types, sizeof bad_types);
        bad_types[SPM_A] = 9;
        s = spm_spec();
        s.types = bad_types;
        expect_error(&s, "tokenizer.ggml.token_type");

        /* a BYTE token that does not spell a byte */
        memcpy(bad_types, spm_types, sizeof bad_types);
        bad_types[SPM_A] = 6;
        s.types = bad_types;
        expect_error(&s, "tokenizer.ggml.token_type");

        static const char *const ids[] = { "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                           "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                                           "tokenizer.ggml.eot_token_id" };
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                s = spm_spec();
                s.u32[0] = (kv_u32){ ids[i], SPM_N };
                expect_error(&s, ids[i]);
        }

        s = spm_spec();
        s.model = "t5";
        expect_error(&s, "tokenizer.ggml.model");

        s = spm_spec();
        s.tokens_as_i32 = true;
        expect_error(&s, "tokenizer.ggml.tokens");

        s = spm_spec();
        s.tokens = dup_tokens;
        s.n_tokens = 3;
        s.scores = few_scores;
        s.n_scores = 3;
        s.types = NULL;
        expect_error(&s, "tokenizer.ggml.tokens");

        s = (vspec){ .model = "gpt2", .pre = "gpt-2", .tokens = bpe_tokens, .n_tokens = bpe_n };
        expect_error(&s, "tokenizer.ggml.merges"); /* missing */
        s.merges = bad_merge;
        s.n_merges = 2;
        expect_error(&s, "tokenizer.ggml.merges"); /* no space */
        s.merges = NULL;
        s.pre = "deepseek-llm";
        s.merges = bad_merge;
        s.n_merges = 1;
        expect_error(&s, "tokenizer.ggml.pre");

        /* add_bos without a BOS id */
        s = (vspec){ .model = "gpt2", .pre = "gpt-2", .tokens = bpe_tokens, .n_tokens = bpe_n, .merges = bad_merge,
                     .n_merges = 1, .bools = { { "tokenizer.ggml.add_bos_token", true } } };
        expect_error(&s, "add_bos_token");
}

/* --- pre-tokenizer matchers ------------------------------------------------------------
 * Expected splits worked out by hand from each regex (leftmost-first
 * alternation), words joined with '|'. */

static void expect_split(pretok_kind kind, const char *text, const char *want) {
        size_t len = strlen(text), n_cpts = 0, n_words;
        uint32_t cpts[256];
        size_t *words;
        for (size_t i = 0; i < len;)
                cpts[n_cpts++] = unicode_decode_utf8(text, len, &i);
        CHECK_OK(pretokenize(kind, cpts, n_cpts, &words, &n_words));

        char got[1024];
        size_t g = 0, c = 0;
        for (size_t w = 0; w < n_words; w++) {
                if (w)
                        got[g++] = '|';
                for (size_t k = 0; k < words[w]; k++)
                        g += unicode_encode_utf8(cpts[c + k], got + g);
                c += words[w];
        }
        got[g] = 0;
        CHECK_EQ_INT(c, n_cpts);
        CHECK_MSG(strcmp(got, want) == 0, "pre-tokenizer %d on '%s':\n  want '%s'\n  got  '%s'", kind, text, want, got);
        free(words);
}

static void test_pretokenizers(void) {
        static const char s1[] = "I'm 12345 abc\n\n  x";
        expect_split(PRETOK_LLAMA3, s1, "I|'m| |123|45| abc|\n\n| | x");
        expect_split(PRETOK_QWEN2, s1, "I|'m| |1|2|3|4|5| abc|\n\n| | x");
        expect_split(PRETOK_GPT2, s1, "I|'m| 12345| abc|\n\n | x");

        /* case-insensitive contractions in Llama 3 only */
        expect_split(PRETOK_LLAMA3, "WE'RE", "WE|'RE");
        expect_split(PRETOK_GPT2, "WE'RE", "WE|'|RE");
        /* punctuation with a leading space, then line breaks */
        expect_split(PRETOK_LLAMA3, "a ...\n\nb", "a| ...\n\n|b");
        /* trailing spaces stay together; a non-letter joins the next word */
        expect_split(PRETOK_LLAMA3, "x  ", "x|  ");
        expect_split(PRETOK_LLAMA3, "\"quoted\"", "\"quoted|\"");
        /* Unicode classes: letters, digits, White_Space (U+3000) */
        expect_split(PRETOK_LLAMA3, "日本語\xe3\x80\x80\xd9\xa1\xd9\xa2", "日本語|\xe3\x80\x80|\xd9\xa1\xd9\xa2");

        /* default: punctuation runs, GPT-2, \p{N}+, digit triples */
        expect_split(PRETOK_DEFAULT, "Hello, world!! 12345 $x", "Hello|,| world|!!| |123|45| |$|x");
        expect_split(PRETOK_DEFAULT, "a+b=1234567", "a|+|b|=|123|456|7");
}

int main(void) {
        spm_init();
        bpe_init();
        test_spm();
        test_bpe();
        test_errors();
        test_pretokenizers();
        printf("ok\n");
        return 0;
}
