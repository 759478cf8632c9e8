/* SPDX-License-Identifier: MIT */
/* Byte-level BPE as the reference does it ("gpt2" vocab): the text is
 * decoded to codepoints (invalid UTF-8 becomes U+FFFD), cut into words by
 * the pre-tokenizer, each word's UTF-8 bytes are shown as GPT-2's printable
 * codepoints, and within a word the adjacent pair with the lowest merge rank
 * is merged until no pair has a rank.
 *
 * Complexity: O(n log n) per word (a binary heap of candidate pairs, a hash
 * lookup per candidate). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "merge-heap.h"
#include "tokenizer-internal.h"
#include "unicode.h"

typedef struct bpe_sym {
        int32_t prev, next;
        uint32_t off, n; /* n == 0: merged away */
} bpe_sym;

typedef struct bpe_state {
        const tokenizer *t;
        const char *word;
        bpe_sym *sym;
        merge_pair *heap;
        size_t n_heap;
} bpe_state;

static void try_pair(bpe_state *s, int32_t l, int32_t r) {
        if (l < 0 || r < 0)
                return;
        const bpe_sym *a = &s->sym[l], *b = &s->sym[r];
        int32_t rank = tok_merge_rank(s->t, s->word + a->off, a->n, s->word + b->off, b->n);
        if (rank < 0)
                return;
        merge_heap_push(s->heap, &s->n_heap, (merge_pair){ -(double)rank, l, r, a->n + b->n });
}

static int emit(const tokenizer *t, const char *s, size_t n, tok_vec *out) {
        int32_t id = tok_lookup(t, s, n);
        if (id >= 0)
                return tok_vec_push(out, id);
        /* Not a token: the reference then tries each byte on its own and
         * drops those that are not tokens either. */
        for (size_t k = 0; k < n; k++) {
                id = tok_lookup(t, s + k, 1);
                if (id >= 0) {
                        int r = tok_vec_push(out, id);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int encode_word(const tokenizer *t, const char *word, size_t n, bpe_sym *sym, merge_pair *heap, tok_vec *out) {
        size_t n_sym = 0;
        int r;

        if (t->ignore_merges && tok_lookup(t, word, n) >= 0)
                return emit(t, word, n, out);

        for (size_t off = 0; off < n;) {
                size_t l = MIN(unicode_len_utf8((uint8_t)word[off]), n - off);
                sym[n_sym] = (bpe_sym){ (int32_t)n_sym - 1, off + l == n ? -1 : (int32_t)n_sym + 1, (uint32_t)off,
                                        (uint32_t)l };
                n_sym++;
                off += l;
        }

        bpe_state s = { t, word, sym, heap, 0 };
        for (size_t i = 1; i < n_sym; i++)
                try_pair(&s, (int32_t)i - 1, (int32_t)i);

        while (s.n_heap > 0) {
                merge_pair p = merge_heap_pop(heap, &s.n_heap);
                bpe_sym *left = &sym[p.left], *right = &sym[p.right];
                /* Symbols only grow, and the left one can only grow by
                 * taking the right one: equal sizes mean the same pair. */
                if (left->n == 0 || right->n == 0 || left->n + right->n != p.size)
                        continue;
                left->n += right->n;
                right->n = 0;
                left->next = right->next;
                if (right->next >= 0)
                        sym[right->next].prev = p.left;
                try_pair(&s, left->prev, p.left);
                try_pair(&s, p.left, left->next);
        }

        for (int32_t i = n_sym ? 0 : -1; i >= 0; i = sym[i].next)
                if ((r = emit(t, word + sym[i].off, sym[i].n, out)) < 0)
                        return r;
        return 0;
}

int tokenizer_bpe_encode(const tokenizer *t, const char *text, size_t len, tok_vec *out) {
        _cleanup_free_ uint32_t *cpts = NULL;
        _cleanup_free_ size_t *words = NULL;
        _cleanup_free_ char *enc = NULL;
        _cleanup_free_ bpe_sym *sym = NULL;
        _cleanup_free_ merge_pair *heap = NULL;
        size_t n_cpts = 0, n_words = 0;
        int r;

        if (len == 0)
                return 0;
        cpts = malloc(len * sizeof(uint32_t));
        if (!cpts)
                return -ENOMEM;
        for (size_t i = 0; i < len;)
                cpts[n_cpts++] = unicode_decode_utf8(text, len, &i);

        r = pretokenize(t->pre, cpts, n_cpts, &words, &n_words);
        if (r < 0)
                return r;

        /* A codepoint is at most 4 bytes, each shown as at most 2. */
        size_t max_word = 0;
        for (size_t w = 0; w < n_words; w++)
                max_word = MAX(max_word, words[w]);
        enc = malloc(8 * max_word + 1);
        sym = malloc(8 * max_word * sizeof(bpe_sym) + 1);
        heap = malloc(3 * 8 * max_word * sizeof(merge_pair) + 1);
        if (!enc || !sym || !heap)
                return -ENOMEM;

        size_t c = 0;
        for (size_t w = 0; w < n_words; w++) {
                size_t n = 0;
                for (size_t k = 0; k < words[w]; k++) {
                        char u[4];
                        size_t ul = unicode_encode_utf8(cpts[c + k], u);
                        for (size_t b = 0; b < ul; b++) {
                                uint8_t byte = (uint8_t)u[b];
                                memcpy(enc + n, t->byte_enc[byte], t->byte_enc_len[byte]);
                                n += t->byte_enc_len[byte];
                        }
                }
                c += words[w];
                if ((r = encode_word(t, enc, n, sym, heap, out)) < 0)
                        return r;
        }
        return 0;
}
