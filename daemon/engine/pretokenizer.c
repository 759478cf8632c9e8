/* SPDX-License-Identifier: MIT */
/* Byte-level BPE pre-tokenizers: hand-written matchers equivalent to the
 * regular expressions the reference applies (leftmost-first alternation, as
 * in PCRE/ECMAScript), over codepoints classified by the Unicode tables.
 *
 * A pre-tokenizer is one or more passes; each pass cuts every piece left by
 * the previous one into matches and the gaps between them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "tokenizer-internal.h"
#include "unicode.h"

#define OUT_OF_RANGE 0xFFFFFFFFu
#define FL_NONE 0xFF /* flags of a position outside the piece */

typedef struct len_vec {
        size_t *v;
        size_t n, cap;
} len_vec;

static int len_push(len_vec *v, size_t len) {
        if (v->n == v->cap) {
                size_t cap = v->cap ? v->cap * 2 : 64;
                size_t *p = realloc(v->v, cap * sizeof(size_t));
                if (!p)
                        return -ENOMEM;
                v->v = p;
                v->cap = cap;
        }
        v->v[v->n++] = len;
        return 0;
}

/* One piece [ini, end) being cut. */
typedef struct piece {
        const uint32_t *cpt;
        const uint8_t *fl;
        size_t ini, end;
        size_t prev_end;
        len_vec *out;
        int err;
} piece;

static uint32_t at(const piece *p, size_t pos) {
        return pos >= p->ini && pos < p->end ? p->cpt[pos] : OUT_OF_RANGE;
}

static uint8_t fl(const piece *p, size_t pos) {
        return pos >= p->ini && pos < p->end ? p->fl[pos] : FL_NONE;
}

static bool is_letter(uint8_t f) {
        return f != FL_NONE && (f & UNICODE_CLASS_MASK) == UNICODE_LETTER;
}

static bool is_number(uint8_t f) {
        return f != FL_NONE && (f & UNICODE_CLASS_MASK) == UNICODE_NUMBER;
}

static bool is_space(uint8_t f) {
        return f != FL_NONE && (f & UNICODE_WHITESPACE);
}

/* [^\s\p{L}\p{N}] */
static bool is_other(uint8_t f) {
        return f != FL_NONE && !is_space(f) && !is_letter(f) && !is_number(f);
}

/* End the current word at end; returns its length. */
static size_t add_word(piece *p, size_t end) {
        size_t len = end - p->prev_end;
        if (len > 0 && p->err == 0)
                p->err = len_push(p->out, len);
        p->prev_end = end;
        return len;
}

static uint32_t ascii_lower(uint32_t c) {
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* 's 't 're 've 'm 'll 'd at pos: the length matched, or 0. */
static size_t contraction(const piece *p, size_t pos, bool any_case) {
        if (at(p, pos) != '\'' || pos + 1 >= p->end)
                return 0;
        uint32_t c1 = at(p, pos + 1);
        if (any_case)
                c1 = ascii_lower(c1);
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
                return 2;
        if (pos + 2 >= p->end)
                return 0;
        uint32_t c2 = at(p, pos + 2);
        if (any_case)
                c2 = ascii_lower(c2);
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
                return 3;
        return 0;
}

/* Whitespace at pos: \s+(?!\S) leaves the last space for the next word
 * unless the run reaches the end; else \s+.  Returns false if no space. */
static bool match_spaces(piece *p, size_t *pos) {
        size_t n = 0;
        while (is_space(fl(p, *pos + n)))
                n++;
        if (n > 1 && at(p, *pos + n) != OUT_OF_RANGE) {
                *pos += n - 1;
                add_word(p, *pos);
                return true;
        }
        if (n > 0) {
                *pos += n;
                add_word(p, *pos);
                return true;
        }
        return false;
}

/* --- GPT-2 -------------------------------------------------------------------
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */

static void split_gpt2(piece *p) {
        for (size_t pos = p->ini; pos < p->end;) {
                uint32_t c = at(p, pos);
                size_t k = contraction(p, pos, false);
                if (k) {
                        pos += add_word(p, pos + k);
                        continue;
                }
                uint8_t f2 = c == ' ' ? fl(p, pos + 1) : fl(p, pos);
                if (is_letter(f2) || is_number(f2) || is_other(f2)) {
                        bool (*same)(uint8_t) = is_letter(f2) ? is_letter : is_number(f2) ? is_number : is_other;
                        pos += c == ' ';
                        while (same(fl(p, pos)))
                                pos++;
                        add_word(p, pos);
                        continue;
                }
                if (match_spaces(p, &pos))
                        continue;
                add_word(p, ++pos);
        }
        add_word(p, p->end);
}

/* --- Llama 3 and Qwen 2 ----------------------------------------------------------
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Llama 3 takes digits three at a time, Qwen 2 one at a time. */

static void split_llama3(piece *p, size_t max_digits) {
        for (size_t pos = p->ini; pos < p->end;) {
                uint32_t c = at(p, pos);
                uint8_t f = fl(p, pos);
                size_t k = contraction(p, pos, true);
                if (k) {
                        pos += add_word(p, pos + k);
                        continue;
                }

                /* [^\r\n\p{L}\p{N}]?\p{L}+ */
                if (c != '\r' && c != '\n' && !is_number(f) && (is_letter(f) || is_letter(fl(p, pos + 1)))) {
                        pos++;
                        while (is_letter(fl(p, pos)))
                                pos++;
                        add_word(p, pos);
                        continue;
                }

                /* \p{N}{1,max} */
                if (is_number(f)) {
                        size_t start = pos;
                        while (is_number(fl(p, pos))) {
                                if (++pos - start >= max_digits) {
                                        add_word(p, pos);
                                        start = pos;
                                }
                        }
                        add_word(p, pos);
                        continue;
                }

                /*  ?[^\s\p{L}\p{N}]+[\r\n]* (a lone space at the end of the
                 * piece also ends up here, as a one-space word) */
                uint8_t f2 = c == ' ' ? fl(p, pos + 1) : f;
                if (!is_space(f2) && !is_letter(f2) && !is_number(f2)) {
                        pos += c == ' ';
                        while (is_other(fl(p, pos)))
                                pos++;
                        while (at(p, pos) == '\r' || at(p, pos) == '\n')
                                pos++;
                        add_word(p, pos);
                        continue;
                }

                /* \s*[\r\n]+: up to the last line break of the space run */
                size_t n = 0, last_nl = 0;
                while (is_space(fl(p, pos + n))) {
                        uint32_t c2 = at(p, pos + n);
                        if (c2 == '\r' || c2 == '\n')
                                last_nl = pos + n + 1;
                        n++;
                }
                if (last_nl > 0) {
                        pos = last_nl;
                        add_word(p, pos);
                        continue;
                }

                if (match_spaces(p, &pos))
                        continue;
                add_word(p, ++pos);
        }
        add_word(p, p->end);
}

/* --- the default pre-tokenizer's other passes -------------------------------------
 * The reference runs these through std::regex on text where each non-ASCII
 * codepoint is collapsed to one byte standing for its class, so \p{P} and
 * \p{N} there mean exactly the class; ASCII keeps its own bytes. */

/* [\p{P}\$\+<=>\^~\|]+ */
static bool is_punct_run(uint32_t c, uint8_t f) {
        if (f == FL_NONE)
                return false;
        if ((f & UNICODE_CLASS_MASK) == UNICODE_PUNCT)
                return true;
        return c < 128 && c && strchr("$+<=>^~|", (int)c);
}

/* \p{N}+ */
static bool is_number_run(uint32_t c, uint8_t f) {
        return is_number(f);
}

static void split_runs(piece *p, bool (*in_run)(uint32_t c, uint8_t f)) {
        for (size_t pos = p->ini; pos < p->end;) {
                if (!in_run(at(p, pos), fl(p, pos))) {
                        pos++;
                        continue;
                }
                add_word(p, pos); /* the gap before */
                while (in_run(at(p, pos), fl(p, pos)))
                        pos++;
                add_word(p, pos);
        }
        add_word(p, p->end);
}

static bool is_ascii_digit(uint32_t c) {
        return c >= '0' && c <= '9';
}

/* [0-9][0-9][0-9] */
static void split_digit_triples(piece *p) {
        for (size_t pos = p->ini; pos < p->end;) {
                if (is_ascii_digit(at(p, pos)) && is_ascii_digit(at(p, pos + 1)) && is_ascii_digit(at(p, pos + 2))) {
                        add_word(p, pos);
                        pos += 3;
                        add_word(p, pos);
                } else
                        pos++;
        }
        add_word(p, p->end);
}

/* --- driver --------------------------------------------------------------------- */

typedef enum pass {
        PASS_GPT2,
        PASS_LLAMA3,
        PASS_QWEN2,
        PASS_PUNCT,
        PASS_NUMBERS,
        PASS_DIGITS3,
} pass;

static int run_pass(pass kind, const uint32_t *cpts, const uint8_t *flags, const len_vec *in, len_vec *out) {
        size_t start = 0;
        for (size_t i = 0; i < in->n; i++) {
                piece p = { cpts, flags, start, start + in->v[i], start, out, 0 };
                switch (kind) {
                case PASS_GPT2:
                        split_gpt2(&p);
                        break;
                case PASS_LLAMA3:
                        split_llama3(&p, 3);
                        break;
                case PASS_QWEN2:
                        split_llama3(&p, 1);
                        break;
                case PASS_PUNCT:
                        split_runs(&p, is_punct_run);
                        break;
                case PASS_NUMBERS:
                        split_runs(&p, is_number_run);
                        break;
                case PASS_DIGITS3:
                        split_digit_triples(&p);
                        break;
                }
                if (p.err < 0)
                        return p.err;
                start += in->v[i];
        }
        return 0;
}

int pretokenize(pretok_kind kind, const uint32_t *cpts, size_t n, size_t **ret, size_t *n_ret) {
        static const pass passes_default[] = { PASS_PUNCT, PASS_GPT2, PASS_NUMBERS, PASS_DIGITS3 };
        static const pass passes_gpt2[] = { PASS_GPT2 };
        static const pass passes_llama3[] = { PASS_LLAMA3 };
        static const pass passes_qwen2[] = { PASS_QWEN2 };
        const pass *passes;
        size_t n_passes;
        _cleanup_free_ uint8_t *flags = NULL;
        len_vec cur = { 0 }, next = { 0 };
        int r;

        switch (kind) {
        case PRETOK_GPT2:
                passes = passes_gpt2, n_passes = ELEMENTSOF(passes_gpt2);
                break;
        case PRETOK_LLAMA3:
                passes = passes_llama3, n_passes = ELEMENTSOF(passes_llama3);
                break;
        case PRETOK_QWEN2:
                passes = passes_qwen2, n_passes = ELEMENTSOF(passes_qwen2);
                break;
        default:
                passes = passes_default, n_passes = ELEMENTSOF(passes_default);
                break;
        }

        *ret = NULL;
        *n_ret = 0;
        if (n == 0)
                return 0;

        flags = malloc(n);
        if (!flags)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                flags[i] = unicode_flags(cpts[i]);

        if ((r = len_push(&cur, n)) < 0)
                return r;
        for (size_t k = 0; k < n_passes; k++) {
                next.n = 0;
                r = run_pass(passes[k], cpts, flags, &cur, &next);
                if (r < 0) {
                        free(cur.v);
                        free(next.v);
                        return r;
                }
                len_vec tmp = cur;
                cur = next;
                next = tmp;
        }
        free(next.v);
        *ret = cur.v;
        *n_ret = cur.n;
        return 0;
}
