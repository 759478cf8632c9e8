/* SPDX-License-Identifier: MIT */
/* The tokenizers against the reference runtime's ids on the shared golden
 * data (../shared/golden/tokenizer, ../shared/models), plus round trips,
 * streaming decoding and timings on the real vocabularies. */
#include <errno.h>
#include <time.h>

#include "gguf.h"
#include "macro.h"
#include "test.h"
#include "tokenizer-internal.h"
#include "tokenizer.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

static const char *shared;

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of this thread: what the work costs when the machine is shared. */
static double cpu_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct vocab {
        gguf_file *f;
        tokenizer *t;
        double load_ms, load_cpu_ms;
} vocab;

static vocab load_vocab(const char *name) {
        char path[4096], err[512] = "";
        vocab v = { 0 };
        snprintf(path, sizeof path, "%s/models/%s", shared, name);
        int r = gguf_open_path(path, &v.f, err, sizeof err);
        CHECK_MSG(r >= 0, "%s: %s", path, err);
        double t0 = now_ms(), c0 = cpu_ms();
        r = tokenizer_load(v.f, &v.t, err, sizeof err);
        v.load_ms = now_ms() - t0;
        v.load_cpu_ms = cpu_ms() - c0;
        CHECK_MSG(r >= 0, "%s: %s", path, err);
        return v;
}

static void free_vocab(vocab *v) {
        tokenizer_free(v->t);
        gguf_close(v->f);
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
        fprintf(stderr, "  %s:", what);
        for (size_t i = 0; i < n; i++)
                fprintf(stderr, " %d", ids[i]);
        fputc('\n', stderr);
}

/* Encode and compare; returns true when equal. */
static bool check_ids(const tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                      const int32_t *want, size_t n_want, const char *label) {
        int32_t *ids = NULL;
        size_t n = 0;
        int r = tokenizer_encode(t, text, len, add_special, parse_special, &ids, &n);
        CHECK_OK(r);
        bool ok = n == n_want && (n == 0 || memcmp(ids, want, n * sizeof(int32_t)) == 0);
        if (!ok) {
                fprintf(stderr, "%s: mismatch for \"%.*s\"\n", label, (int)len, text);
                print_ids("want", want, n_want);
                print_ids("got ", ids, n);
        }
        free(ids);
        return ok;
}

/* --- the reference's test vectors: <name>.inp / <name>.out ------------------- */

static void test_inp_out(const char *name, const char *vocab_file) {
        char path[4096];
        size_t inp_size, out_size;
        snprintf(path, sizeof path, "%s/golden/tokenizer/%s.inp", shared, name);
        char *inp = test_read_file(path, &inp_size);
        CHECK_MSG(inp, "cannot read %s", path);
        snprintf(path, sizeof path, "%s/golden/tokenizer/%s.out", shared, name);
        char *out = test_read_file(path, &out_size);
        CHECK_MSG(out, "cannot read %s", path);
        out = realloc(out, out_size + 1);
        out[out_size] = 0;

        vocab v = load_vocab(vocab_file);
        static const char sep[] = "\n__ggml_vocab_test__\n";
        size_t pos = 0, n_cases = 0, n_pass = 0;
        char *line = out;
        while (pos < inp_size) {
                char *s = memmem(inp + pos, inp_size - pos, sep, sizeof sep - 1);
                CHECK_MSG(s, "%s.inp: no separator after offset %zu", name, pos);
                size_t len = (size_t)(s - (inp + pos));

                /* the expected ids: one line of the .out file */
                CHECK_MSG(*line, "%s.out: fewer lines than strings", name);
                char *eol = strchr(line, '\n');
                if (eol)
                        *eol = 0;
                int32_t want[4096];
                size_t n_want = 0;
                for (char *p = line; *p;) {
                        char *end;
                        long id = strtol(p, &end, 10);
                        if (end == p)
                                break;
                        CHECK(n_want < ELEMENTSOF(want));
                        want[n_want++] = (int32_t)id;
                        p = end;
                }
                line = eol ? eol + 1 : line + strlen(line);

                n_cases++;
                n_pass += check_ids(v.t, inp + pos, len, false, false, want, n_want, name);
                pos += len + sizeof sep - 1;
        }
        printf("%s.inp/.out (%s): %zu/%zu equal, vocabulary loaded in %.1f ms\n", name, vocab_file, n_pass, n_cases,
               v.load_ms);
        CHECK_EQ_INT(n_pass, n_cases);
        CHECK(n_cases > 0);
        free_vocab(&v);
        free(inp);
        free(out);
}

/* --- <name>-strings.json: [{"text": "...", "ids": [...]}, ...] -------------------
 * A small reader for exactly this shape. */

typedef struct json {
        const char *p, *end;
} json;

static void ws(json *j) {
        while (j->p < j->end && strchr(" \t\r\n", *j->p))
                j->p++;
}

static void expect(json *j, char c) {
        ws(j);
        CHECK_MSG(j->p < j->end && *j->p == c, "JSON: expected '%c' at '%.20s'", c, j->p);
        j->p++;
}

static bool peek(json *j, char c) {
        ws(j);
        return j->p < j->end && *j->p == c;
}

static void put_utf8(char **o, uint32_t c) {
        char *w = *o;
        if (c < 0x80)
                *w++ = (char)c;
        else if (c < 0x800) {
                *w++ = (char)(0xC0 | c >> 6);
                *w++ = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
                *w++ = (char)(0xE0 | c >> 12);
                *w++ = (char)(0x80 | ((c >> 6) & 0x3F));
                *w++ = (char)(0x80 | (c & 0x3F));
        } else {
                *w++ = (char)(0xF0 | c >> 18);
                *w++ = (char)(0x80 | ((c >> 12) & 0x3F));
                *w++ = (char)(0x80 | ((c >> 6) & 0x3F));
                *w++ = (char)(0x80 | (c & 0x3F));
        }
        *o = w;
}

static uint32_t hex4(json *j) {
        CHECK(j->end - j->p >= 4);
        char buf[5] = { j->p[0], j->p[1], j->p[2], j->p[3], 0 };
        j->p += 4;
        return (uint32_t)strtoul(buf, NULL, 16);
}

/* Returns a malloc'ed string and its length. */
static char *string(json *j, size_t *len) {
        expect(j, '"');
        char *s = malloc((size_t)(j->end - j->p) + 1), *o = s;
        while (j->p < j->end && *j->p != '"') {
                char c = *j->p++;
                if (c != '\\') {
                        *o++ = c;
                        continue;
                }
                CHECK(j->p < j->end);
                c = *j->p++;
                switch (c) {
                case 'n': *o++ = '\n'; break;
                case 't': *o++ = '\t'; break;
                case 'r': *o++ = '\r'; break;
                case 'b': *o++ = '\b'; break;
                case 'f': *o++ = '\f'; break;
                case 'u': {
                        uint32_t u = hex4(j);
                        if (u >= 0xD800 && u < 0xDC00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
                                j->p += 2;
                                uint32_t lo = hex4(j);
                                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                        }
                        put_utf8(&o, u);
                        break;
                }
                default: *o++ = c; break; /* \" \\ \/ */
                }
        }
        expect(j, '"');
        *len = (size_t)(o - s);
        *o = 0;
        return s;
}

static void test_json(const char *name, const char *vocab_file, bool add_special, bool parse_special) {
        char path[4096];
        size_t size;
        snprintf(path, sizeof path, "%s/golden/tokenizer/%s", shared, name);
        char *data = test_read_file(path, &size);
        CHECK_MSG(data, "cannot read %s", path);

        vocab v = load_vocab(vocab_file);
        json j = { data, data + size };
        size_t n_cases = 0, n_pass = 0;
        expect(&j, '[');
        while (!peek(&j, ']')) {
                char *text = NULL;
                size_t text_len = 0;
                int32_t want[4096];
                size_t n_want = 0;
                bool have_ids = false;

                expect(&j, '{');
                while (!peek(&j, '}')) {
                        size_t kl;
                        char *key = string(&j, &kl);
                        expect(&j, ':');
                        if (strcmp(key, "text") == 0)
                                text = string(&j, &text_len);
                        else if (strcmp(key, "ids") == 0) {
                                have_ids = true;
                                expect(&j, '[');
                                while (!peek(&j, ']')) {
                                        char *endp;
                                        long id = strtol(j.p, &endp, 10);
                                        CHECK_MSG(endp != j.p, "JSON: bad id at '%.20s'", j.p);
                                        CHECK(n_want < ELEMENTSOF(want));
                                        want[n_want++] = (int32_t)id;
                                        j.p = endp;
                                        if (peek(&j, ','))
                                                j.p++;
                                }
                                expect(&j, ']');
                        } else
                                CHECK_MSG(false, "JSON: unexpected key %s", key);
                        free(key);
                        if (peek(&j, ','))
                                j.p++;
                }
                expect(&j, '}');
                if (peek(&j, ','))
                        j.p++;
                CHECK_MSG(text && have_ids, "%s: an entry without text or ids", name);

                n_cases++;
                n_pass += check_ids(v.t, text, text_len, add_special, parse_special, want, n_want, name);
                free(text);
        }
        printf("%s (%s, add_special=%d parse_special=%d): %zu/%zu equal, vocabulary loaded in %.1f ms\n", name,
               vocab_file, add_special, parse_special, n_pass, n_cases, v.load_ms);
        CHECK_EQ_INT(n_pass, n_cases);
        CHECK(n_cases > 0);
        free_vocab(&v);
        free(data);
}

/* --- stories260K: "Once upon a time" with BOS ---------------------------------- */

static void test_stories(void) {
        char path[4096];
        size_t size;
        snprintf(path, sizeof path, "%s/golden/stories260K.prompt.i32", shared);
        int32_t *want = test_read_file(path, &size);
        CHECK_MSG(want, "cannot read %s", path);
        CHECK(size % 4 == 0);

        vocab v = load_vocab("stories260K.gguf");
        static const char text[] = "Once upon a time";
        bool ok = check_ids(v.t, text, strlen(text), true, false, want, size / 4, "stories260K");
        CHECK(ok);
        CHECK_EQ_INT(tokenizer_bos(v.t), 1);
        CHECK_EQ_INT(tokenizer_eos(v.t), 2);
        CHECK(tokenizer_is_eog(v.t, 2));
        printf("stories260K: \"%s\" -> %zu ids equal to stories260K.prompt.i32\n", text, size / 4);

        /* Decoding the prompt: SentencePiece drops the prefix space of the
         * first piece when streaming. */
        detok_stream s;
        char buf[256];
        size_t n = 0;
        detok_stream_init(&s);
        for (size_t i = 1; i < size / 4; i++) {
                int r = detok_stream_push(v.t, &s, want[i], buf + n, sizeof buf - n);
                CHECK_OK(r);
                n += (size_t)r;
        }
        CHECK_EQ_INT(detok_stream_flush(&s, buf + n, sizeof buf - n), 0);
        CHECK_MSG(n == strlen(text) && memcmp(buf, text, n) == 0, "decoded '%.*s'", (int)n, buf);
        free_vocab(&v);
        free(want);
}

/* --- round trips, streaming, specials on Gemma ------------------------------------ */

static const char *const samples[] = {
        "Hello world",
        "  leading and trailing  ",
        "\n\nnewlines\n\n\nand\ttabs\t\t",
        "Ünïcödé: 日本語のテキスト, ελληνικά, русский, עברית, العربية",
        "emoji 😀👍🏽 and a rare ideograph \xf0\xaa\x9c\x80 and \xe2\x80\x8b",
        "<start_of_turn>user\nHi<end_of_turn>\n",
        "code: for (int i = 0; i < n; i++) { x[i] += 1; }",
};

static void roundtrip(const tokenizer *t, const char *label) {
        for (size_t k = 0; k < ELEMENTSOF(samples); k++) {
                const char *text = samples[k];
                int32_t *ids;
                size_t n;
                CHECK_OK(tokenizer_encode(t, text, strlen(text), false, false, &ids, &n));

                /* whole pieces */
                char buf[4096];
                size_t len = 0;
                for (size_t i = 0; i < n; i++) {
                        int r = tokenizer_token_to_piece(t, ids[i], false, buf + len, sizeof buf - len);
                        CHECK_OK(r);
                        len += (size_t)r;
                }
                CHECK_MSG(len == strlen(text) && memcmp(buf, text, len) == 0, "%s: '%s' decoded as '%.*s'", label,
                          text, (int)len, buf);

                /* streaming: the same text, and every chunk whole UTF-8 */
                detok_stream s;
                detok_stream_init(&s);
                len = 0;
                for (size_t i = 0; i < n; i++) {
                        char chunk[512];
                        int r = detok_stream_push(t, &s, ids[i], chunk, sizeof chunk);
                        CHECK_OK(r);
                        for (int c = 0; c < r;) { /* each chunk starts and ends on a character */
                                uint8_t b = (uint8_t)chunk[c];
                                int l = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
                                CHECK_MSG(l > 0 && c + l <= r, "%s: chunk of token %d cuts a character", label, ids[i]);
                                c += l;
                        }
                        memcpy(buf + len, chunk, (size_t)r);
                        len += (size_t)r;
                }
                int r = detok_stream_flush(&s, buf + len, sizeof buf - len);
                CHECK_EQ_INT(r, 0);
                CHECK_MSG(len == strlen(text) && memcmp(buf, text, len) == 0, "%s: '%s' streamed as '%.*s'", label, text,
                          (int)len, buf);
                free(ids);
        }
}

/* Every token streams into a buffer of detok_stream_max_output() bytes,
 * even after a held-back partial character. */
static void check_max_output(const tokenizer *t, const char *label) {
        size_t cap = detok_stream_max_output(t);
        char *out = malloc(cap);
        int32_t lead = tokenizer_find(t, "<0xF0>");
        if (lead < 0)
                lead = tokenizer_find(t, "\xc3\xb0"); /* ð: byte F0 in byte-level BPE */
        CHECK(lead >= 0);
        size_t longest = 0;
        for (int32_t id = 0; id < tokenizer_n_vocab(t); id++) {
                detok_stream s;
                detok_stream_init(&s);
                CHECK_OK(detok_stream_push(t, &s, lead, out, cap));
                int r = detok_stream_push(t, &s, id, out, cap);
                CHECK_MSG(r >= 0, "%s: token %d does not fit in %zu bytes", label, id, cap);
                longest = MAX(longest, (size_t)r);
        }
        printf("%s: detok_stream_max_output %zu, longest streamed output %zu\n", label, cap, longest);
        free(out);
}

static void test_gemma_behaviour(void) {
        vocab v = load_vocab("gemma3-vocab.gguf");
        const tokenizer *t = v.t;
        int32_t *ids;
        size_t n;

        CHECK_EQ_INT(tokenizer_n_vocab(t), 262144);
        CHECK_EQ_INT(tokenizer_bos(t), 2);
        CHECK_EQ_INT(tokenizer_eos(t), 1);
        CHECK(tokenizer_add_bos(t));
        CHECK_EQ_INT(tokenizer_find(t, "<start_of_turn>"), 105);
        CHECK_EQ_INT(tokenizer_find(t, "<end_of_turn>"), 106);
        CHECK(tokenizer_is_eog(t, 1));
        CHECK(tokenizer_is_eog(t, 106));
        CHECK_EQ_INT(tokenizer_eot(t), 106);
        CHECK_EQ_INT(tokenizer_token_type(t, 106), 3);
        CHECK_EQ_INT(tokenizer_token_type(t, 2), 3);
        CHECK_EQ_INT(tokenizer_token_type(t, 138), 4); /* user-defined "▁▁" */
        CHECK_EQ_INT(tokenizer_token_type(t, 236761), 1);
        CHECK_EQ_INT(tokenizer_token_type(t, tokenizer_find(t, "<0x41>")), 6);
        CHECK_EQ_INT(tokenizer_token_type(t, 262144), -EINVAL);
        CHECK(!tokenizer_is_eog(t, 105));
        CHECK(!tokenizer_is_eog(t, -1));
        CHECK(!tokenizer_is_eog(t, 262144));

        /* "" with add_special is just BOS */
        CHECK_OK(tokenizer_encode(t, "", 0, true, true, &ids, &n));
        CHECK_EQ_INT(n, 1);
        CHECK_EQ_INT(ids[0], 2);
        free(ids);

        /* control tokens only with parse_special */
        CHECK_OK(tokenizer_encode(t, "<start_of_turn>", 15, false, true, &ids, &n));
        CHECK_EQ_INT(n, 1);
        CHECK_EQ_INT(ids[0], 105);
        free(ids);
        CHECK_OK(tokenizer_encode(t, "<start_of_turn>", 15, false, false, &ids, &n));
        CHECK(n > 1);
        for (size_t i = 0; i < n; i++)
                CHECK(ids[i] != 105);
        free(ids);

        /* control tokens render only on request */
        char buf[64];
        CHECK_EQ_INT(tokenizer_token_to_piece(t, 105, false, buf, sizeof buf), 0);
        CHECK_EQ_INT(tokenizer_token_to_piece(t, 105, true, buf, sizeof buf), 15);
        CHECK(memcmp(buf, "<start_of_turn>", 15) == 0);
        CHECK_EQ_INT(tokenizer_token_to_piece(t, 105, true, buf, 4), -ENOBUFS);
        CHECK_EQ_INT(tokenizer_token_to_piece(t, 262144, true, buf, sizeof buf), -EINVAL);
        CHECK_EQ_INT(tokenizer_token_to_piece(t, -1, true, buf, sizeof buf), -EINVAL);

        /* a character outside the vocabulary falls back to its bytes */
        static const char rare[] = "\xf0\xaa\x9c\x80"; /* U+2A700 */
        CHECK_OK(tokenizer_encode(t, rare, 4, false, false, &ids, &n));
        CHECK_EQ_INT(n, 4);
        for (size_t i = 0; i < 4; i++) {
                char want[8];
                snprintf(want, sizeof want, "<0x%02X>", (uint8_t)rare[i]);
                CHECK_EQ_INT(ids[i], tokenizer_find(t, want));
        }
        /* streaming holds the bytes back until the character is whole */
        detok_stream s;
        detok_stream_init(&s);
        char out[16];
        for (size_t i = 0; i < 3; i++)
                CHECK_EQ_INT(detok_stream_push(t, &s, ids[i], out, sizeof out), 0);
        CHECK_EQ_INT(detok_stream_push(t, &s, ids[3], out, 3), -ENOBUFS); /* state kept on failure */
        CHECK_EQ_INT(detok_stream_push(t, &s, ids[3], out, sizeof out), 4);
        CHECK(memcmp(out, rare, 4) == 0);
        /* a cut-off sequence becomes U+FFFD at the end */
        detok_stream_init(&s);
        CHECK_EQ_INT(detok_stream_push(t, &s, ids[0], out, sizeof out), 0);
        CHECK_EQ_INT(detok_stream_flush(&s, out, sizeof out), 3);
        CHECK(memcmp(out, "\xef\xbf\xbd", 3) == 0);
        /* a lone continuation byte becomes U+FFFD at once */
        detok_stream_init(&s);
        CHECK_EQ_INT(detok_stream_push(t, &s, ids[1], out, sizeof out), 3);
        CHECK(memcmp(out, "\xef\xbf\xbd", 3) == 0);
        free(ids);

        roundtrip(t, "gemma3");
        check_max_output(t, "gemma3");

        /* The two ways of finding special tokens agree, also where nested
         * matches (whitespace runs) make the scan the automatic choice. */
        {
                static const char *const pieces[] = { " ", "\n", "\t", "<start_of_turn>", "<end_of_turn>", "a", "<", "\n\n" };
                char *text = malloc(20000);
                size_t tl = 0;
                unsigned seed = 1;
                while (tl < 19000) {
                        seed = seed * 1103515245 + 12345;
                        const char *p = pieces[(seed >> 16) % ELEMENTSOF(pieces)];
                        size_t rep = 1 + (seed >> 8) % 40;
                        for (size_t k = 0; k < rep && tl + strlen(p) < 20000; k++) {
                                memcpy(text + tl, p, strlen(p));
                                tl += strlen(p);
                        }
                }
                for (int ps = 0; ps < 2; ps++) {
                        int32_t *a, *b;
                        size_t na, nb;
                        tok_partition_mode = 1;
                        CHECK_OK(tokenizer_encode(t, text, tl, true, ps, &a, &na));
                        tok_partition_mode = 2;
                        CHECK_OK(tokenizer_encode(t, text, tl, true, ps, &b, &nb));
                        tok_partition_mode = 0;
                        CHECK_EQ_INT(na, nb);
                        CHECK(memcmp(a, b, na * sizeof(int32_t)) == 0);
                        free(a);
                        free(b);
                }
                free(text);
        }

        /* Timing: about 10 KB of mixed text. */
        char *big = malloc(16384);
        size_t len = 0;
        for (size_t k = 0; len < 10000; k = (k + 1) % ELEMENTSOF(samples)) {
                size_t l = strlen(samples[k]);
                memcpy(big + len, samples[k], l);
                len += l;
                big[len++] = ' ';
        }
        double best = 1e9;
        for (int rep = 0; rep < 5; rep++) {
                double t0 = now_ms();
                CHECK_OK(tokenizer_encode(t, big, len, true, true, &ids, &n));
                best = MIN(best, now_ms() - t0);
                free(ids);
        }
        printf("gemma3: encoding %zu bytes -> %zu tokens takes %.2f ms (best of 5); loading the 262144-token "
               "vocabulary %.1f ms (%.1f ms CPU)\n",
               len, n, best, v.load_ms, v.load_cpu_ms);
#ifndef UNDER_SANITIZER
        CHECK_MSG(best < 250, "encoding 10 KB took %.1f ms", best);
        CHECK_MSG(v.load_ms < 1000, "loading took %.1f ms", v.load_ms);
#endif
        free(big);
        free_vocab(&v);
}

static void test_bpe_behaviour(const char *vocab_file) {
        vocab v = load_vocab(vocab_file);
        roundtrip(v.t, vocab_file);
        check_max_output(v.t, vocab_file);

        char *big = malloc(16384);
        size_t len = 0;
        for (size_t k = 0; len < 10000; k = (k + 1) % ELEMENTSOF(samples)) {
                size_t l = strlen(samples[k]);
                memcpy(big + len, samples[k], l);
                len += l;
                big[len++] = ' ';
        }
        int32_t *ids;
        size_t n;
        double best = 1e9;
        for (int rep = 0; rep < 5; rep++) {
                double t0 = now_ms();
                CHECK_OK(tokenizer_encode(v.t, big, len, false, true, &ids, &n));
                best = MIN(best, now_ms() - t0);
                free(ids);
        }
        printf("%s: encoding %zu bytes -> %zu tokens takes %.2f ms (best of 5); loading %.1f ms (%.1f ms CPU)\n",
               vocab_file, len, n, best, v.load_ms, v.load_cpu_ms);
        free(big);
        free_vocab(&v);
}

int main(void) {
        shared = test_shared_dir();

        test_inp_out("llama-spm", "llama-spm-vocab.gguf");
        test_inp_out("llama-bpe", "llama-bpe-vocab.gguf");
        test_inp_out("qwen2", "qwen2-vocab.gguf");
        test_json("gemma3-strings.json", "gemma3-vocab.gguf", true, true);
        tok_partition_mode = 2; /* the same through the scanning partition */
        test_json("gemma3-strings.json", "gemma3-vocab.gguf", true, true);
        tok_partition_mode = 0;
        test_json("llama-bpe-strings.json", "llama-bpe-vocab.gguf", false, true);
        test_json("qwen2-strings.json", "qwen2-vocab.gguf", false, true);
        test_stories();
        test_gemma_behaviour();
        test_bpe_behaviour("llama-bpe-vocab.gguf");
        test_bpe_behaviour("qwen2-vocab.gguf");
        return 0;
}
