/* SPDX-License-Identifier: MIT */
/* SentencePiece-style encoding as the reference does it ("llama" vocab):
 * spaces become U+2581, the text is cut into UTF-8 characters, and the
 * adjacent pair whose concatenation is the highest-scoring token is merged
 * until no pair forms a token; what is left and is not a token falls back to
 * <0xNN> byte tokens.
 *
 * Complexity: O(n log n) for n characters (a binary heap of candidate
 * pairs, a hash lookup per candidate). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "merge-heap.h"
#include "tokenizer-internal.h"
#include "unicode.h"

typedef struct spm_sym {
        int32_t prev, next;
        uint32_t off, n; /* n == 0: merged away */
} spm_sym;

typedef struct spm_state {
        const tokenizer *t;
        const char *text;
        spm_sym *sym;
        merge_pair *heap;
        size_t n_heap;
} spm_state;

static void try_pair(spm_state *s, int32_t l, int32_t r) {
        if (l < 0 || r < 0)
                return;
        /* The right symbol follows the left one in the text. */
        uint32_t size = s->sym[l].n + s->sym[r].n;
        int32_t id = tok_lookup(s->t, s->text + s->sym[l].off, size);
        if (id < 0)
                return;
        merge_heap_push(s->heap, &s->n_heap, (merge_pair){ s->t->tokens[id].score, l, r, size });
}

int tokenizer_spm_encode(const tokenizer *t, const char *text, size_t len, bool space_prefix, tok_vec *out) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_free_ spm_sym *sym = NULL;
        _cleanup_free_ merge_pair *heap = NULL;
        size_t n = 0, n_sym = 0;
        int r;

        /* Escape: each space (and the optional prefix space) becomes ▁. */
        size_t n_spaces = space_prefix;
        for (size_t i = 0; i < len; i++)
                n_spaces += text[i] == ' ';
        buf = malloc(len + 2 * n_spaces + 1);
        if (!buf)
                return -ENOMEM;
        if (space_prefix) {
                memcpy(buf, "\xe2\x96\x81", 3);
                n = 3;
        }
        for (size_t i = 0; i < len; i++) {
                if (text[i] == ' ') {
                        memcpy(buf + n, "\xe2\x96\x81", 3);
                        n += 3;
                } else
                        buf[n++] = text[i];
        }
        if (n == 0)
                return 0;

        /* One symbol per UTF-8 character (by the lead byte only). */
        sym = malloc(n * sizeof(spm_sym));
        heap = malloc(3 * n * sizeof(merge_pair)); /* n-1 seeds + 2 per merge */
        if (!sym || !heap)
                return -ENOMEM;
        for (size_t off = 0; off < n;) {
                size_t l = MIN(unicode_len_utf8((uint8_t)buf[off]), n - off);
                sym[n_sym] = (spm_sym){ (int32_t)n_sym - 1, off + l == n ? -1 : (int32_t)n_sym + 1, (uint32_t)off,
                                        (uint32_t)l };
                n_sym++;
                off += l;
        }

        spm_state s = { t, buf, sym, heap, 0 };
        for (size_t i = 1; i < n_sym; i++)
                try_pair(&s, (int32_t)i - 1, (int32_t)i);

        while (s.n_heap > 0) {
                merge_pair p = merge_heap_pop(heap, &s.n_heap);
                spm_sym *left = &sym[p.left], *right = &sym[p.right];
                if (left->n == 0 || right->n == 0 || left->n + right->n != p.size)
                        continue; /* one side changed since the pair was pushed */
                left->n += right->n;
                right->n = 0;
                left->next = right->next;
                if (right->next >= 0)
                        sym[right->next].prev = p.left;
                try_pair(&s, left->prev, p.left);
                try_pair(&s, p.left, left->next);
        }

        /* Every merged symbol is a token; the rest are single characters,
         * emitted as themselves when they are tokens, else byte by byte. */
        for (int32_t i = 0; i >= 0; i = sym[i].next) {
                int32_t id = tok_lookup(t, buf + sym[i].off, sym[i].n);
                if (id >= 0) {
                        if ((r = tok_vec_push(out, id)) < 0)
                                return r;
                        continue;
                }
                for (uint32_t k = 0; k < sym[i].n; k++) {
                        id = t->byte_token[(uint8_t)buf[sym[i].off + k]];
                        /* The reference throws here; without byte tokens
                         * the unknown token is the SentencePiece answer. */
                        if (id < 0)
                                id = t->unk;
                        if (id < 0)
                                return -EILSEQ;
                        if ((r = tok_vec_push(out, id)) < 0)
                                return r;
                }
        }
        return 0;
}
