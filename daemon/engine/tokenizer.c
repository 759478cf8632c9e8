/* SPDX-License-Identifier: MIT */
/* Encoding: split the input at special tokens the way the reference does,
 * then hand each stretch of raw text to the SentencePiece or byte-level BPE
 * encoder. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "tokenizer-internal.h"

int tok_vec_push(tok_vec *v, int32_t id) {
        if (v->n == v->cap) {
                size_t cap = v->cap ? v->cap * 2 : 64;
                int32_t *p = realloc(v->v, cap * sizeof(int32_t));
                if (!p)
                        return -ENOMEM;
                v->v = p;
                v->cap = cap;
        }
        v->v[v->n++] = id;
        return 0;
}

int32_t tokenizer_n_vocab(const tokenizer *t) {
        return t->n_vocab;
}

int32_t tokenizer_bos(const tokenizer *t) {
        return t->bos;
}

int32_t tokenizer_eos(const tokenizer *t) {
        return t->eos;
}

int32_t tokenizer_eot(const tokenizer *t) {
        return t->eot;
}

int tokenizer_token_type(const tokenizer *t, int32_t id) {
        if (id < 0 || id >= t->n_vocab)
                return -EINVAL;
        switch (t->tokens[id].attr) {
        case TOK_NORMAL:
                return 1;
        case TOK_UNKNOWN:
                return 2;
        case TOK_CONTROL:
                return 3;
        case TOK_USER_DEFINED:
                return 4;
        case TOK_UNUSED:
                return 5;
        case TOK_BYTE:
                return 6;
        default:
                return 0;
        }
}

bool tokenizer_add_bos(const tokenizer *t) {
        return t->add_bos;
}

bool tokenizer_is_eog(const tokenizer *t, int32_t id) {
        return id >= 0 && id < t->n_vocab && t->tokens[id].eog;
}

int32_t tokenizer_find(const tokenizer *t, const char *text) {
        if (!text)
                return -1;
        return tok_lookup(t, text, strlen(text));
}

/* --- special-token partition ------------------------------------------------
 *
 * The reference takes the special tokens longest first and, for each, splits
 * every remaining raw fragment at each of its occurrences, left to right.
 * An occurrence whose bytes are all still free lies inside a single raw
 * fragment at that point, and vice versa; so, with one trie walk per input
 * position to find the special tokens present:
 *   - occurrences: record every occurrence, bucketed by token rank (a
 *     counting sort; positions stay increasing within a rank), and accept
 *     each whose bytes are all free;
 *   - scan: when nested matches would make that list large (runs of spaces
 *     against Gemma's whitespace tokens), search the text once per token
 *     present instead, which needs no memory beyond the text's.
 * Both accept exactly the reference's occurrences. */

int tok_partition_mode = 0;

/* The rank of the special token at each position's match, filtered by
 * parse_special (without it only user-defined tokens are matched). */
static bool special_allowed(const tokenizer *t, int32_t rank, bool parse_special) {
        return parse_special || !(t->tokens[t->special[rank]].attr & (TOK_CONTROL | TOK_UNKNOWN));
}

/* Accept the occurrence of special rank at p if its bytes are free:
 * at[i] is -1 for a free byte, -2 inside an accepted token, else the id of
 * the token starting there. */
static bool try_accept(const tokenizer *t, int32_t *at, int32_t rank, size_t p) {
        int32_t id = t->special[rank];
        uint32_t l = t->tokens[id].len;
        for (uint32_t k = 0; k < l; k++)
                if (at[p + k] != -1)
                        return false;
        at[p] = id;
        for (uint32_t k = 1; k < l; k++)
                at[p + k] = -2;
        return true;
}

static int partition(const tokenizer *t, const char *text, size_t len, bool parse_special, int32_t **ret_at) {
        _cleanup_free_ int32_t *start = NULL, *at = NULL;
        _cleanup_free_ uint32_t *pos = NULL;
        size_t n_occ = 0;

        *ret_at = NULL;
        if (t->n_special == 0 || len == 0)
                return 0;

        /* start[rank + 1]: occurrences of each rank, later prefix sums */
        start = calloc((size_t)t->n_special + 1, sizeof(int32_t));
        if (!start)
                return -ENOMEM;
        for (size_t p = 0; p < len; p++) {
                int32_t node = 0;
                for (size_t j = p; j < len && (node = tok_trie_step(t, node, (uint8_t)text[j])) >= 0; j++) {
                        int32_t rank = t->trie_token[node];
                        if (rank >= 0 && special_allowed(t, rank, parse_special) && start[rank + 1] < INT32_MAX) {
                                start[rank + 1]++;
                                n_occ++;
                        }
                }
        }
        if (n_occ == 0)
                return 0;

        at = malloc(len * sizeof(int32_t));
        if (!at)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++)
                at[i] = -1;

        bool scan = tok_partition_mode == 2 || (tok_partition_mode == 0 && n_occ > 4 * len + 1024);
        if (scan) {
                for (int32_t rank = 0; rank < t->n_special; rank++) {
                        if (start[rank + 1] == 0)
                                continue;
                        const tok_entry *e = &t->tokens[t->special[rank]];
                        const char *s = t->text + e->off;
                        for (size_t p = 0; p + e->len <= len;) {
                                const char *m = memmem(text + p, len - p, s, e->len);
                                if (!m)
                                        break;
                                size_t q = (size_t)(m - text);
                                p = try_accept(t, at, rank, q) ? q + e->len : q + 1;
                        }
                }
        } else {
                pos = malloc(n_occ * sizeof(uint32_t));
                if (!pos)
                        return -ENOMEM;
                for (int32_t k = 0; k < t->n_special; k++)
                        start[k + 1] += start[k];
                /* second walk: fill the buckets (start[rank] moves to the
                 * end of its bucket, i.e. the next bucket's start) */
                for (size_t p = 0; p < len; p++) {
                        int32_t node = 0;
                        for (size_t j = p; j < len && (node = tok_trie_step(t, node, (uint8_t)text[j])) >= 0; j++) {
                                int32_t rank = t->trie_token[node];
                                if (rank >= 0 && special_allowed(t, rank, parse_special))
                                        pos[start[rank]++] = (uint32_t)p;
                        }
                }
                size_t i = 0;
                for (int32_t rank = 0; rank < t->n_special; rank++)
                        for (; i < (size_t)start[rank]; i++)
                                (void)try_accept(t, at, rank, pos[i]);
        }
        *ret_at = TAKE_PTR(at);
        return 0;
}

static int encode_raw(const tokenizer *t, const char *text, size_t len, bool *is_prev_special, tok_vec *out) {
        int r;
        if (t->kind == TOKENIZER_SPM)
                r = tokenizer_spm_encode(t, text, len, t->add_space_prefix && *is_prev_special, out);
        else
                r = tokenizer_bpe_encode(t, text, len, out);
        *is_prev_special = false;
        return r;
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                     int32_t **ret, size_t *n_ret) {
        _cleanup_free_ int32_t *at = NULL;
        tok_vec out = { 0 };
        int r;

        if (!t || (!text && len > 0) || !ret || !n_ret)
                return -EINVAL;
        /* Symbol indices are int32 and a byte can grow to three (▁). */
        if (len > (1u << 28))
                return -E2BIG;

        r = partition(t, text, len, parse_special, &at);
        if (r < 0)
                return r;

        /* SentencePiece: a space is prefixed to the first raw fragment and
         * to each one following a special token (when add_space_prefix). */
        bool is_prev_special = true;

        if (add_special && t->add_bos) {
                if (t->bos < 0)
                        return -EINVAL;
                if ((r = tok_vec_push(&out, t->bos)) < 0)
                        goto fail;
        }

        size_t start = 0;
        for (size_t i = 0; at && i < len; i++) {
                if (at[i] < 0)
                        continue;
                if (i > start && (r = encode_raw(t, text + start, i - start, &is_prev_special, &out)) < 0)
                        goto fail;
                if ((r = tok_vec_push(&out, at[i])) < 0)
                        goto fail;
                is_prev_special = true;
                start = i + t->tokens[at[i]].len;
                i = start - 1;
        }
        if (len > start && (r = encode_raw(t, text + start, len - start, &is_prev_special, &out)) < 0)
                goto fail;

        if (add_special && t->add_eos) {
                if (t->eos < 0) {
                        r = -EINVAL;
                        goto fail;
                }
                if ((r = tok_vec_push(&out, t->eos)) < 0)
                        goto fail;
        }

        if (!out.v && !(out.v = malloc(sizeof(int32_t)))) {
                r = -ENOMEM;
                goto fail;
        }
        *ret = out.v;
        *n_ret = out.n;
        return 0;

fail:
        free(out.v);
        return r;
}
