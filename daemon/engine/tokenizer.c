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
 * The same result, without rescanning the text once per special token:
 *   1. find every occurrence of every special text with one trie walk per
 *      input position;
 *   2. order the occurrences by (token rank, position) with a counting sort;
 *   3. accept an occurrence when none of its bytes is taken yet (a taken
 *      byte belongs to a token accepted earlier, i.e. longer or of lower
 *      rank, or to an earlier occurrence of the same token); accepted ones
 *      take their bytes.
 * An occurrence whose bytes are all free lies inside a single raw fragment
 * of the reference's partition at that point, and vice versa. */

typedef struct occurrence {
        int32_t rank;
        uint32_t pos;
} occurrence;

static int partition(const tokenizer *t, const char *text, size_t len, bool parse_special, int32_t **ret_at) {
        _cleanup_free_ occurrence *occ = NULL, *sorted = NULL;
        _cleanup_free_ int32_t *count = NULL;
        _cleanup_free_ int32_t *at = NULL;
        size_t n_occ = 0, cap = 0;

        *ret_at = NULL;
        if (t->n_special == 0 || len == 0)
                return 0;

        for (size_t pos = 0; pos < len; pos++) {
                int32_t node = 0;
                for (size_t j = pos; j < len; j++) {
                        node = tok_trie_step(t, node, (uint8_t)text[j]);
                        if (node < 0)
                                break;
                        int32_t rank = t->trie_token[node];
                        if (rank < 0)
                                continue;
                        uint8_t attr = t->tokens[t->special[rank]].attr;
                        /* Without parse_special only user-defined tokens are
                         * matched. */
                        if (!parse_special && (attr & (TOK_CONTROL | TOK_UNKNOWN)))
                                continue;
                        if (n_occ == cap) {
                                size_t c = cap ? cap * 2 : 64;
                                occurrence *p = realloc(occ, c * sizeof(occurrence));
                                if (!p)
                                        return -ENOMEM;
                                occ = p;
                                cap = c;
                        }
                        occ[n_occ++] = (occurrence){ rank, (uint32_t)pos };
                }
        }
        if (n_occ == 0)
                return 0;

        /* Counting sort by rank; positions stay increasing within a rank. */
        count = calloc((size_t)t->n_special + 1, sizeof(int32_t));
        sorted = malloc(n_occ * sizeof(occurrence));
        at = malloc(len * sizeof(int32_t));
        if (!count || !sorted || !at)
                return -ENOMEM;
        for (size_t i = 0; i < n_occ; i++)
                count[occ[i].rank + 1]++;
        for (int32_t k = 0; k < t->n_special; k++)
                count[k + 1] += count[k];
        for (size_t i = 0; i < n_occ; i++)
                sorted[count[occ[i].rank]++] = occ[i];

        /* at[i]: -1 free, -2 inside an accepted token, else the token id
         * starting at i. */
        for (size_t i = 0; i < len; i++)
                at[i] = -1;
        for (size_t i = 0; i < n_occ; i++) {
                int32_t id = t->special[sorted[i].rank];
                uint32_t p = sorted[i].pos, l = t->tokens[id].len;
                bool free_ = true;
                for (uint32_t k = 0; k < l; k++)
                        if (at[p + k] != -1) {
                                free_ = false;
                                break;
                        }
                if (!free_)
                        continue;
                at[p] = id;
                for (uint32_t k = 1; k < l; k++)
                        at[p + k] = -2;
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
