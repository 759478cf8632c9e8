/* SPDX-License-Identifier: MIT */
/* libFuzzer harness for the tokenizers.
 *
 * First byte < 0x80: the rest is text, encoded with one of five small
 * vocabularies (SentencePiece; byte-level BPE with the gpt2, llama3, qwen2
 * and default pre-tokenizers) and decoded again.  Every id must be in range,
 * the streamed output must be valid UTF-8, and for strictly valid UTF-8
 * input without special-token parsing the decoded text must equal the input.
 *
 * First byte >= 0x80: the rest is a vocabulary, one token per line (first
 * byte of a line: its token type), loaded as SentencePiece or BPE; when the
 * loader accepts it, the input is encoded and decoded with it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tests/unit/gguf-builder.h"
#include "tokenizer.h"

#define CHECK(x)                                                                                 \
        do {                                                                                     \
                if (!(x)) {                                                                      \
                        fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);                 \
                        abort();                                                                 \
                }                                                                                \
        } while (0)

static tokenizer *load(gb *b, bool verbose) {
        gguf_file *f = NULL;
        tokenizer *t = NULL;
        char err[256] = "";
        gb_pad(b, 32);
        if (gguf_open_memory(b->p, b->n, &f, err, sizeof err) >= 0) {
                (void)tokenizer_load(f, &t, err, sizeof err);
                gguf_close(f);
        }
        if (!t && verbose)
                fprintf(stderr, "fixed vocabulary refused: %s\n", err);
        return t;
}

/* --- the fixed vocabularies ------------------------------------------------- */

static tokenizer *fixed[5];

static void put_bool(gb *b, const char *key, bool v) {
        gb_key(b, key, GGUF_TYPE_BOOL);
        gb_u8(b, v);
}

static tokenizer *make_spm(void) {
        static const char *const extra[] = { "\xe2\x96\x81", "a", "b", "ab", "\xe2\x96\x81\x61", "th", "the",
                                             "\xe2\x96\x81the", "<ctl>", "<us>", "bdd" };
        static const int32_t extra_type[] = { 1, 1, 1, 1, 1, 1, 1, 1, 3, 4, 4 };
        int n = 3 + 256 + (int)(sizeof extra / sizeof extra[0]);
        gb b = { 0 };
        char tok[16];

        gb_header(&b, 3, 0, 5);
        gb_kv_str(&b, "tokenizer.ggml.model", "llama");
        put_bool(&b, "tokenizer.ggml.add_space_prefix", false);
        gb_kv_arr(&b, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, n);
        gb_str(&b, "<unk>");
        gb_str(&b, "<s>");
        gb_str(&b, "</s>");
        for (int i = 0; i < 256; i++) {
                snprintf(tok, sizeof tok, "<0x%02X>", i);
                gb_str(&b, tok);
        }
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
                gb_str(&b, extra[i]);
        gb_kv_arr(&b, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, n);
        for (int i = 0; i < n; i++)
                gb_f32(&b, (float)-(i % 7));
        gb_kv_arr(&b, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, n);
        gb_u32(&b, 2);
        gb_u32(&b, 3);
        gb_u32(&b, 3);
        for (int i = 0; i < 256; i++)
                gb_u32(&b, 6);
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
                gb_u32(&b, (uint32_t)extra_type[i]);
        tokenizer *t = load(&b, true);
        gb_free(&b);
        return t;
}

static bool printable(int c) {
        return (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
}

static void put_byte_char(char *w, int byte) {
        int c = byte, n = 0;
        if (!printable(byte)) {
                for (int k = 0; k < byte; k++)
                        n += !printable(k);
                c = 256 + n;
        }
        if (c < 0x80) {
                w[0] = (char)c;
                w[1] = 0;
        } else {
                w[0] = (char)(0xC0 | c >> 6);
                w[1] = (char)(0x80 | (c & 0x3F));
                w[2] = 0;
        }
}

static tokenizer *make_bpe(const char *pre) {
        static const char *const extra[] = { "\xc4\xa0t", "he", "\xc4\xa0the", "in", "\xc4\xa0in", "<|endoftext|>",
                                             "<|im_end|>" };
        static const char *const merges[] = { "\xc4\xa0 t", "h e", "\xc4\xa0t he", "i n", "\xc4\xa0 in" };
        int n = 256 + (int)(sizeof extra / sizeof extra[0]);
        gb b = { 0 };
        char tok[4];

        gb_header(&b, 3, 0, 6);
        gb_kv_str(&b, "tokenizer.ggml.model", "gpt2");
        gb_kv_str(&b, "tokenizer.ggml.pre", pre);
        gb_kv_u32(&b, "tokenizer.ggml.bos_token_id", (uint32_t)n - 2); /* <|endoftext|> */
        gb_kv_arr(&b, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, n);
        for (int i = 0; i < 256; i++) {
                put_byte_char(tok, i);
                gb_str(&b, tok);
        }
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
                gb_str(&b, extra[i]);
        gb_kv_arr(&b, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, n);
        for (int i = 0; i < n; i++)
                gb_u32(&b, i >= n - 2 ? 3 : 1);
        gb_kv_arr(&b, "tokenizer.ggml.merges", GGUF_TYPE_STRING, sizeof merges / sizeof merges[0]);
        for (size_t i = 0; i < sizeof merges / sizeof merges[0]; i++)
                gb_str(&b, merges[i]);
        tokenizer *t = load(&b, true);
        gb_free(&b);
        return t;
}

/* --- checks --------------------------------------------------------------------- */

/* Strict UTF-8 (no overlong forms, surrogates or values past U+10FFFF). */
static bool valid_utf8(const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n;) {
                uint8_t c = p[i];
                size_t l;
                uint8_t lo = 0x80, hi = 0xBF;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xC2 && c <= 0xDF)
                        l = 2;
                else if (c >= 0xE0 && c <= 0xEF) {
                        l = 3;
                        lo = c == 0xE0 ? 0xA0 : 0x80;
                        hi = c == 0xED ? 0x9F : 0xBF;
                } else if (c >= 0xF0 && c <= 0xF4) {
                        l = 4;
                        lo = c == 0xF0 ? 0x90 : 0x80;
                        hi = c == 0xF4 ? 0x8F : 0xBF;
                } else
                        return false;
                if (i + l > n || p[i + 1] < lo || p[i + 1] > hi)
                        return false;
                for (size_t k = 2; k < l; k++)
                        if ((p[i + k] & 0xC0) != 0x80)
                                return false;
                i += l;
        }
        return true;
}

/* Encode, check ids, stream-decode; returns the decoded text (malloc'ed). */
static char *roundtrip(const tokenizer *t, const uint8_t *text, size_t len, bool add_special, bool parse_special,
                       size_t *out_len) {
        int32_t *ids = NULL;
        size_t n = 0;
        int r = tokenizer_encode(t, (const char *)text, len, add_special, parse_special, &ids, &n);
        CHECK(r == 0);
        int32_t nv = tokenizer_n_vocab(t);
        for (size_t i = 0; i < n; i++)
                CHECK(ids[i] >= 0 && ids[i] < nv);

        /* Output bound: each piece byte at most one U+FFFD (3 bytes). */
        size_t cap = 16;
        for (size_t i = 0; i < n; i++) {
                char piece[4096];
                int k = tokenizer_token_to_piece(t, ids[i], false, piece, sizeof piece);
                CHECK(k >= 0);
                CHECK(tokenizer_token_to_piece(t, ids[i], true, piece, sizeof piece) >= 0);
                cap += 3 * (size_t)k + 3;
        }
        char *out = malloc(cap);
        size_t w = 0;
        detok_stream s;
        detok_stream_init(&s);
        for (size_t i = 0; i < n; i++) {
                int k = detok_stream_push(t, &s, ids[i], out + w, cap - w);
                CHECK(k >= 0);
                w += (size_t)k;
        }
        int k = detok_stream_flush(&s, out + w, cap - w);
        CHECK(k >= 0);
        w += (size_t)k;
        CHECK(valid_utf8((const uint8_t *)out, w));
        free(ids);
        *out_len = w;
        return out;
}

static void fuzz_text(uint8_t mode, const uint8_t *data, size_t size) {
        int which = mode % 5;
        bool parse_special = mode & 0x08, add_special = mode & 0x10;
        const tokenizer *t = fixed[which];
        size_t n;
        char *out = roundtrip(t, data, size, add_special, parse_special, &n);

        /* Lossless for valid UTF-8 when no special token can swallow text
         * (SentencePiece: unless the text holds a literal ▁). */
        bool check = !parse_special && !add_special && valid_utf8(data, size);
        if (which == 0 && memmem(data, size, "\xe2\x96\x81", 3))
                check = false;
        if (check)
                CHECK(n == size && memcmp(out, data, size) == 0);
        free(out);
}

/* --- vocabularies from the input ------------------------------------------------------ */

static void fuzz_vocab(uint8_t mode, const uint8_t *data, size_t size) {
        const uint8_t *lines[512];
        size_t lens[512], n = 0;
        for (size_t i = 0; i < size && n < 512;) {
                const uint8_t *e = memchr(data + i, '\n', size - i);
                size_t l = e ? (size_t)(e - (data + i)) : size - i;
                lines[n] = data + i;
                lens[n++] = l;
                i += l + 1;
        }
        if (n == 0)
                return;

        bool bpe = mode & 1;
        static const char *const pres[] = { "default", "gpt-2", "llama-bpe", "qwen2" };
        gb b = { 0 };
        gb_header(&b, 3, 0, bpe ? 5 : 4);
        gb_kv_str(&b, "tokenizer.ggml.model", bpe ? "gpt2" : "llama");
        gb_kv_arr(&b, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, n);
        for (size_t i = 0; i < n; i++)
                gb_strn(&b, lens[i] ? (const char *)lines[i] + 1 : "", lens[i] ? lens[i] - 1 : 0);
        gb_kv_arr(&b, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, n);
        for (size_t i = 0; i < n; i++)
                gb_f32(&b, (float)-(int)(i * 7 % 13));
        gb_kv_arr(&b, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, n);
        for (size_t i = 0; i < n; i++)
                gb_u32(&b, lens[i] ? lines[i][0] % 8 : 1);
        if (bpe) {
                gb_kv_str(&b, "tokenizer.ggml.pre", pres[(mode >> 1) & 3]);
                /* merges: consecutive token pairs */
                gb_kv_arr(&b, "tokenizer.ggml.merges", GGUF_TYPE_STRING, n - 1);
                for (size_t i = 0; i + 1 < n; i++) {
                        char m[1200];
                        size_t a = lens[i] ? lens[i] - 1 : 0, c = lens[i + 1] ? lens[i + 1] - 1 : 0;
                        a = a > 590 ? 590 : a;
                        c = c > 590 ? 590 : c;
                        memcpy(m, lens[i] ? lines[i] + 1 : (const uint8_t *)"", a);
                        m[a] = ' ';
                        memcpy(m + a + 1, lens[i + 1] ? lines[i + 1] + 1 : (const uint8_t *)"", c);
                        gb_strn(&b, m, a + 1 + c);
                }
        }
        tokenizer *t = load(&b, false);
        gb_free(&b);
        if (!t)
                return;
        for (int k = 0; k < 4; k++) {
                size_t out_len;
                free(roundtrip(t, data, size, k & 1, k & 2, &out_len));
        }
        tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!fixed[0]) {
                fixed[0] = make_spm();
                fixed[1] = make_bpe("gpt-2");
                fixed[2] = make_bpe("llama-bpe");
                fixed[3] = make_bpe("qwen2");
                fixed[4] = make_bpe("default");
                for (int i = 0; i < 5; i++)
                        CHECK(fixed[i]);
        }
        if (size < 1)
                return 0;
        if (data[0] & 0x80)
                fuzz_vocab(data[0], data + 1, size - 1);
        else
                fuzz_text(data[0], data + 1, size - 1);
        return 0;
}
