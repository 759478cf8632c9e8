/* SPDX-License-Identifier: MIT */
/* Decoding: the bytes of a token, and a streaming decoder that only hands
 * out whole, valid UTF-8 characters. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "tokenizer-internal.h"
#include "unicode.h"

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return 0;
}

/* The piece into buf (which the caller sized to at least the token's text
 * length: a piece is never longer than its token's text). */
static size_t piece_of(const tokenizer *t, int32_t id, bool render_special, char *buf) {
        const tok_entry *e = &t->tokens[id];
        const char *s = t->text + e->off;
        size_t n = 0;

        if (e->attr & (TOK_UNKNOWN | TOK_CONTROL)) {
                if (!render_special)
                        return 0;
                memcpy(buf, s, e->len);
                return e->len;
        }
        if ((e->attr & TOK_USER_DEFINED) && t->kind == TOKENIZER_BPE) {
                memcpy(buf, s, e->len);
                return e->len;
        }

        if (t->kind == TOKENIZER_SPM) {
                /* User-defined pieces are text too.  The reference copies
                 * them verbatim; its converter has already turned their ▁
                 * back into spaces, but other converters (the Gemma vocab
                 * in the golden data) keep "▁▁" for two spaces, which must
                 * not reach the user as ▁. */
                if (e->attr & (TOK_NORMAL | TOK_USER_DEFINED)) {
                        /* ▁ (E2 96 81) back to a space */
                        for (uint32_t i = 0; i < e->len;) {
                                if (i + 3 <= e->len && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                                        buf[n++] = ' ';
                                        i += 3;
                                } else
                                        buf[n++] = s[i++];
                        }
                        return n;
                }
                if (e->attr & TOK_BYTE) { /* "<0xHH>", checked at load */
                        buf[0] = (char)(hexval(s[3]) << 4 | hexval(s[4]));
                        return 1;
                }
                return 0; /* unused, undefined: nothing */
        }

        if (e->attr & TOK_NORMAL) {
                /* each codepoint stands for one byte */
                for (size_t i = 0; i < e->len;) {
                        size_t start = i;
                        uint32_t c = unicode_decode_utf8(s, e->len, &i);
                        int b = unicode_cpt_to_byte(c);
                        if (b >= 0)
                                buf[n++] = (char)b;
                        else {
                                /* Not one of the 256: keep it as it is (the
                                 * reference writes an [UNK_BYTE_..] marker). */
                                memcpy(buf + n, s + start, i - start);
                                n += i - start;
                        }
                }
                return n;
        }
        return 0;
}

int tokenizer_token_to_piece(const tokenizer *t, int32_t id, bool render_special, char *buf, size_t buflen) {
        if (!t || id < 0 || id >= t->n_vocab)
                return -EINVAL;
        const tok_entry *e = &t->tokens[id];
        char stack[256];
        _cleanup_free_ char *heap = NULL;
        char *tmp = stack;
        if (e->len > sizeof(stack)) {
                tmp = heap = malloc(e->len);
                if (!heap)
                        return -ENOMEM;
        }
        size_t n = piece_of(t, id, render_special, tmp);
        if (n > buflen)
                return -ENOBUFS;
        if (n)
                memcpy(buf, tmp, n);
        return (int)n;
}

/* --- streaming ------------------------------------------------------------------- */

size_t detok_stream_max_output(const tokenizer *t) {
        return 3 * ((size_t)t->max_token_len + 3);
}

void detok_stream_init(detok_stream *s) {
        memset(s, 0, sizeof(*s));
        s->first = true;
}

/* Length of the valid UTF-8 sequence starting at p[0..n): > 0 complete,
 * 0 a valid but incomplete prefix, -1 invalid lead or continuation. */
static int utf8_seq(const uint8_t *p, size_t n) {
        uint8_t c = p[0];
        int need;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

        if (c < 0x80)
                return 1;
        if (c >= 0xC2 && c <= 0xDF)
                need = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
                need = 3;
                if (c == 0xE0)
                        lo = 0xA0; /* no overlong forms */
                if (c == 0xED)
                        hi = 0x9F; /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
                need = 4;
                if (c == 0xF0)
                        lo = 0x90;
                if (c == 0xF4)
                        hi = 0x8F; /* nothing past U+10FFFF */
        } else
                return -1;

        for (int k = 1; k < need; k++) {
                if ((size_t)k >= n)
                        return 0;
                uint8_t lo_k = k == 1 ? lo : 0x80, hi_k = k == 1 ? hi : 0xBF;
                if (p[k] < lo_k || p[k] > hi_k)
                        return -1;
        }
        return need;
}

static const char replacement[3] = { (char)0xEF, (char)0xBF, (char)0xBD }; /* U+FFFD */

int detok_stream_push(const tokenizer *t, detok_stream *s, int32_t id, char *out, size_t outlen) {
        if (!t || !s || id < 0 || id >= t->n_vocab || s->n_pending < 0 || s->n_pending > 3)
                return -EINVAL;

        const tok_entry *e = &t->tokens[id];
        size_t cap = (size_t)s->n_pending + e->len;
        char stack[256];
        _cleanup_free_ char *heap = NULL;
        char *buf = stack;
        if (cap > sizeof(stack)) {
                buf = heap = malloc(cap);
                if (!buf)
                        return -ENOMEM;
        }

        memcpy(buf, s->pending, s->n_pending);
        size_t n = s->n_pending;
        size_t pn = piece_of(t, id, false, buf + n);
        const char *piece = buf + n;
        /* SentencePiece with add_space_prefix: the space the encoder put in
         * front of the first word is not part of the text. */
        if (s->first && t->add_space_prefix && pn > 0 && piece[0] == ' ') {
                memmove(buf + n, buf + n + 1, pn - 1);
                pn--;
        }
        n += pn;

        /* Copy out whole characters; an invalid byte becomes U+FFFD; an
         * incomplete tail waits for the next token. */
        size_t w = 0, i = 0;
        while (i < n) {
                int l = utf8_seq((const uint8_t *)buf + i, n - i);
                if (l == 0)
                        break;
                const char *src = l > 0 ? buf + i : replacement;
                size_t len = l > 0 ? (size_t)l : sizeof(replacement);
                if (w + len > outlen)
                        return -ENOBUFS;
                memcpy(out + w, src, len);
                w += len;
                i += l > 0 ? (size_t)l : 1;
        }

        /* Commit the state only once the output fitted. */
        s->n_pending = (int)(n - i);
        memcpy(s->pending, buf + i, n - i);
        s->first = false;
        return (int)w;
}

int detok_stream_flush(detok_stream *s, char *out, size_t outlen) {
        if (!s || s->n_pending < 0 || s->n_pending > 3)
                return -EINVAL;
        if (s->n_pending == 0)
                return 0;
        /* An incomplete sequence is one replacement character. */
        if (outlen < sizeof(replacement))
                return -ENOBUFS;
        memcpy(out, replacement, sizeof(replacement));
        s->n_pending = 0;
        return sizeof(replacement);
}
