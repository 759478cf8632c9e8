/* SPDX-License-Identifier: MIT */
/* Shared between tokenizer.c (loading, special tokens, decoding),
 * tokenizer-spm.c, tokenizer-bpe.c and pretokenizer.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* Token attributes, as bit flags like the reference's llama_token_attr;
 * GGUF token_type values map onto them one to one. */
enum {
        TOK_UNDEFINED = 0,
        TOK_UNKNOWN = 1 << 0,
        TOK_UNUSED = 1 << 1,
        TOK_NORMAL = 1 << 2,
        TOK_CONTROL = 1 << 3,
        TOK_USER_DEFINED = 1 << 4,
        TOK_BYTE = 1 << 5,
};

typedef enum tokenizer_kind {
        TOKENIZER_SPM, /* "llama" */
        TOKENIZER_BPE, /* "gpt2" */
} tokenizer_kind;

/* Byte-level BPE pre-tokenizers (the regexes the reference selects from
 * tokenizer.ggml.pre), each implemented as a hand-written matcher. */
typedef enum pretok_kind {
        PRETOK_DEFAULT, /* four passes: punctuation runs, GPT-2, \p{N}+, [0-9]{3} */
        PRETOK_GPT2,    /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
        PRETOK_LLAMA3,  /* contractions|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
        PRETOK_QWEN2,   /* the same with \p{N} one digit at a time */
} pretok_kind;

typedef struct tok_entry {
        uint32_t off; /* into tokenizer.text */
        uint32_t len;
        float score;
        uint8_t attr;
        bool eog;
} tok_entry;

typedef struct tok_merge {
        uint32_t l_off, l_len; /* into tokenizer.merge_text */
        uint32_t r_off, r_len;
} tok_merge;

struct tokenizer {
        tokenizer_kind kind;
        pretok_kind pre;
        int32_t n_vocab;
        uint32_t max_token_len;

        char *text; /* all token texts, back to back */
        tok_entry *tokens;
        uint64_t *tok_slots; /* open addressing: hash tag << 32 | (id + 1), 0 = empty */
        uint64_t tok_mask;

        /* BPE merges: rank = index */
        char *merge_text;
        tok_merge *merges;
        int32_t n_merges;
        uint64_t *merge_slots; /* like tok_slots, with rank + 1 */
        uint64_t merge_mask;

        int32_t bos, eos, unk, pad, eot, eom; /* -1 when none */
        bool add_bos, add_eos, add_space_prefix, ignore_merges;

        int32_t byte_token[256]; /* SPM byte fallback, -1 if missing */
        char byte_enc[256][2];   /* BPE: the UTF-8 of the codepoint standing for each byte */
        uint8_t byte_enc_len[256];

        /* Control / user-defined / unknown tokens, longest text first, and a
         * trie over their texts for finding them in input. */
        int32_t *special;
        int32_t n_special;
        int32_t *trie_token; /* per node: special rank ending here, or -1 */
        int32_t n_trie;
        uint64_t *edge_keys; /* (node << 8 | byte) + 1, 0 = empty */
        int32_t *edge_child;
        uint64_t edge_mask;
};

/* A growing array of ids. */
typedef struct tok_vec {
        int32_t *v;
        size_t n, cap;
} tok_vec;

int tok_vec_push(tok_vec *v, int32_t id);

static inline uint64_t tok_hash(const char *s, size_t n) {
        uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
        for (size_t i = 0; i < n; i++) {
                h ^= (uint8_t)s[i];
                h *= 0x100000001b3ull;
        }
        return h ^ (h >> 29);
}

/* Id of the token whose text is exactly s[0..n), or -1. */
int32_t tok_lookup(const tokenizer *t, const char *s, size_t n);
/* Merge rank of (left, right), or -1. */
int32_t tok_merge_rank(const tokenizer *t, const char *l, size_t ln, const char *r, size_t rn);

/* Special-token trie: the child of node for byte, or -1 (root is 0). */
int32_t tok_trie_step(const tokenizer *t, int32_t node, uint8_t byte);

/* How the special-token partition is computed: 0 chooses, 1 always from
 * the list of occurrences, 2 always by scanning.  Tests only: both must
 * give the same result. */
extern int tok_partition_mode;

/* Encode one raw-text fragment (no special tokens in it), appending ids. */
int tokenizer_spm_encode(const tokenizer *t, const char *text, size_t len, bool space_prefix, tok_vec *out);
int tokenizer_bpe_encode(const tokenizer *t, const char *text, size_t len, tok_vec *out);

/* Split codepoints cpts[0..n) into words per the pre-tokenizer; *ret gets
 * the word lengths (in codepoints), malloc'ed. */
int pretokenize(pretok_kind kind, const uint32_t *cpts, size_t n, size_t **ret, size_t *n_ret);
