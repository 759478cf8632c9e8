/* SPDX-License-Identifier: MIT */
/* Reading a tokenizer from GGUF metadata (tokenizer.ggml.*), checking every
 * array length, token type, special-token id and merge before use, and
 * building the lookup structures: a hash of token texts, a hash of merge
 * pairs, and a trie over the special tokens' texts. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "tokenizer-internal.h"
#include "unicode.h"

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_PRE "tokenizer.ggml.pre"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_MERGES "tokenizer.ggml.merges"

/* The reference's limit is int32 ids; keep well inside it. */
#define MAX_VOCAB (1 << 24)

static uint64_t table_size_for(uint64_t n) {
        uint64_t s = 16;
        while (s < n + n / 2) /* load factor at most 2/3 */
                s <<= 1;
        return s;
}

/* --- pre-tokenizer names ------------------------------------------------ */

static const struct {
        const char *name;
        pretok_kind kind;
} pre_names[] = {
        { "default", PRETOK_DEFAULT },
        { "llama3", PRETOK_LLAMA3 },     { "llama-v3", PRETOK_LLAMA3 },    { "llama-bpe", PRETOK_LLAMA3 },
        { "falcon3", PRETOK_LLAMA3 },    { "falcon-h1", PRETOK_LLAMA3 },   { "pixtral", PRETOK_LLAMA3 },
        { "midm-2.0", PRETOK_LLAMA3 },   { "lfm2", PRETOK_LLAMA3 },
        { "qwen2", PRETOK_QWEN2 },       { "deepseek-r1-qwen", PRETOK_QWEN2 }, { "kormo", PRETOK_QWEN2 },
        { "gpt-2", PRETOK_GPT2 },        { "phi-2", PRETOK_GPT2 },         { "mpt", PRETOK_GPT2 },
        { "olmo", PRETOK_GPT2 },         { "gigachat", PRETOK_GPT2 },      { "mellum", PRETOK_GPT2 },
        { "a.x-4.0", PRETOK_GPT2 },      { "exaone4", PRETOK_GPT2 },
};

/* --- hash indexes ------------------------------------------------------------
 * Open addressing with linear probing; a slot holds the high half of the
 * hash as a tag next to id + 1, so that probing rarely touches the tokens
 * themselves.  Built with the slots prefetched a few entries ahead: the
 * tables are larger than the caches and insertion is otherwise one miss
 * per entry. */

#define SLOT_ID(v) ((int32_t)((v) & 0xFFFFFFFFu) - 1)
#define SLOT_TAG(h) ((h) >> 32)
#define PREFETCH_AHEAD 16

static uint64_t make_slot(uint64_t h, int32_t id) {
        return SLOT_TAG(h) << 32 | (uint32_t)(id + 1);
}

int32_t tok_lookup(const tokenizer *t, const char *s, size_t n) {
        uint64_t h = tok_hash(s, n);
        for (uint64_t i = h & t->tok_mask;; i = (i + 1) & t->tok_mask) {
                uint64_t v = t->tok_slots[i];
                if (v == 0)
                        return -1;
                if (v >> 32 != SLOT_TAG(h))
                        continue;
                const tok_entry *e = &t->tokens[SLOT_ID(v)];
                if (e->len == n && memcmp(t->text + e->off, s, n) == 0)
                        return SLOT_ID(v);
        }
}

static uint64_t merge_hash(const char *l, size_t ln, const char *r, size_t rn) {
        uint64_t h = tok_hash(l, ln) * 0x9E3779B97F4A7C15ull ^ tok_hash(r, rn);
        return h ^ (h >> 31);
}

static bool merge_eq(const tokenizer *t, const tok_merge *m, const char *l, size_t ln, const char *r, size_t rn) {
        return m->l_len == ln && m->r_len == rn && memcmp(t->merge_text + m->l_off, l, ln) == 0 &&
               memcmp(t->merge_text + m->r_off, r, rn) == 0;
}

int32_t tok_merge_rank(const tokenizer *t, const char *l, size_t ln, const char *r, size_t rn) {
        if (!t->merge_slots)
                return -1;
        uint64_t h = merge_hash(l, ln, r, rn);
        for (uint64_t i = h & t->merge_mask;; i = (i + 1) & t->merge_mask) {
                uint64_t v = t->merge_slots[i];
                if (v == 0)
                        return -1;
                if (v >> 32 == SLOT_TAG(h) && merge_eq(t, &t->merges[SLOT_ID(v)], l, ln, r, rn))
                        return SLOT_ID(v);
        }
}

void tokenizer_free(tokenizer *t) {
        if (!t)
                return;
        free(t->text);
        free(t->tokens);
        free(t->tok_slots);
        free(t->merge_text);
        free(t->merges);
        free(t->merge_slots);
        free(t->special);
        free(t->trie_token);
        free(t->edge_keys);
        free(t->edge_child);
        free(t);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(tokenizer *, tokenizer_free);

/* Append to a growing buffer (doubling). */
static int arena_append(char **buf, size_t *cap, size_t *off, const char *s, size_t n) {
        if (*off + n + 1 > *cap) {
                size_t c = MAX(*cap * 2, *off + n + 1);
                c = MAX(c, (size_t)4096);
                char *p = realloc(*buf, c);
                if (!p)
                        return -ENOMEM;
                *buf = p;
                *cap = c;
        }
        memcpy(*buf + *off, s, n);
        *off += n;
        return 0;
}

/* --- tokens, scores, types ------------------------------------------------ */

static int load_tokens(tokenizer *t, const gguf_file *f, char *err, size_t errlen) {
        gguf_type et;
        uint64_t n;
        const void *data;
        int r;

        r = gguf_get_arr(f, KEY_TOKENS, &et, &n, &data);
        if (r == -ENOENT)
                return set_error(err, errlen, r, "%s is missing", KEY_TOKENS);
        if (r < 0 || et != GGUF_TYPE_STRING)
                return set_error(err, errlen, r < 0 ? r : -EINVAL, "%s is not an array of strings", KEY_TOKENS);
        if (n == 0 || n > MAX_VOCAB)
                return set_error(err, errlen, -EINVAL, "%s has %llu entries (1..%d allowed)", KEY_TOKENS,
                                 (unsigned long long)n, MAX_VOCAB);
        t->n_vocab = (int32_t)n;

        /* Scores and types are optional, but when present they must be
         * one per token and of the right type. */
        const float *scores = NULL;
        uint64_t n_scores;
        r = gguf_get_arr(f, KEY_SCORES, &et, &n_scores, &data);
        if (r >= 0) {
                if (et != GGUF_TYPE_FLOAT32)
                        return set_error(err, errlen, -EINVAL, "%s is not an array of float32", KEY_SCORES);
                if (n_scores != n)
                        return set_error(err, errlen, -EINVAL, "%s has %llu entries but %s has %llu", KEY_SCORES,
                                         (unsigned long long)n_scores, KEY_TOKENS, (unsigned long long)n);
                scores = data;
        } else if (r != -ENOENT)
                return set_error(err, errlen, r, "%s is not an array", KEY_SCORES);

        const uint8_t *types = NULL;
        uint64_t n_types;
        r = gguf_get_arr(f, KEY_TYPES, &et, &n_types, &data);
        if (r >= 0) {
                if (et != GGUF_TYPE_INT32 && et != GGUF_TYPE_UINT32)
                        return set_error(err, errlen, -EINVAL, "%s is not an array of int32", KEY_TYPES);
                if (n_types != n)
                        return set_error(err, errlen, -EINVAL, "%s has %llu entries but %s has %llu", KEY_TYPES,
                                         (unsigned long long)n_types, KEY_TOKENS, (unsigned long long)n);
                types = data;
        } else if (r != -ENOENT)
                return set_error(err, errlen, r, "%s is not an array", KEY_TYPES);

        static const uint8_t type_to_attr[] = {
                [0] = TOK_UNDEFINED, [1] = TOK_NORMAL,       [2] = TOK_UNKNOWN, [3] = TOK_CONTROL,
                [4] = TOK_USER_DEFINED, [5] = TOK_UNUSED, [6] = TOK_BYTE,
        };

        t->tokens = calloc(n, sizeof(tok_entry));
        if (!t->tokens)
                return -ENOMEM;

        size_t cap = 0, off = 0;
        for (uint64_t i = 0; i < n; i++) {
                tok_entry *e = &t->tokens[i];
                gguf_str s;
                r = gguf_get_arr_str(f, KEY_TOKENS, i, &s);
                if (r < 0)
                        return set_error(err, errlen, r, "%s[%llu] cannot be read", KEY_TOKENS, (unsigned long long)i);
                if (s.len > UINT16_MAX || off + s.len + 32 >= UINT32_MAX)
                        return set_error(err, errlen, -EFBIG, "%s[%llu] is %llu bytes long", KEY_TOKENS,
                                         (unsigned long long)i, (unsigned long long)s.len);
                size_t start = off;
                if (s.len == 0) {
                        /* an empty token becomes "[EMPTY_<id>]", as in the
                         * reference */
                        char buf[32];
                        int l = snprintf(buf, sizeof buf, "[EMPTY_%llu]", (unsigned long long)i);
                        r = arena_append(&t->text, &cap, &off, buf, (size_t)l);
                } else
                        r = arena_append(&t->text, &cap, &off, s.p, s.len);
                if (r < 0)
                        return r;
                e->off = (uint32_t)start;
                e->len = (uint32_t)(off - start);
                t->max_token_len = MAX(t->max_token_len, e->len);
                if (scores)
                        memcpy(&e->score, (const char *)scores + 4 * i, 4);
                else
                        e->score = 0.0f;
                e->attr = TOK_NORMAL;
                if (types) {
                        int32_t ty;
                        memcpy(&ty, types + 4 * i, 4);
                        if (ty < 0 || ty >= (int32_t)ELEMENTSOF(type_to_attr))
                                return set_error(err, errlen, -EINVAL, "%s[%llu] = %d is not a valid token type (0..6)",
                                                 KEY_TYPES, (unsigned long long)i, ty);
                        e->attr = type_to_attr[ty];
                }
        }

        /* The text -> id hash.  Two ids with one text make the mapping
         * ambiguous; the reference refuses such vocabularies too. */
        _cleanup_free_ uint64_t *hashes = malloc(n * sizeof(uint64_t));
        t->tok_mask = table_size_for(n) - 1;
        t->tok_slots = calloc(t->tok_mask + 1, sizeof(uint64_t));
        if (!hashes || !t->tok_slots)
                return -ENOMEM;
        for (uint64_t i = 0; i < n; i++)
                hashes[i] = tok_hash(t->text + t->tokens[i].off, t->tokens[i].len);
        for (uint64_t i = 0; i < n; i++) {
                if (i + PREFETCH_AHEAD < n)
                        __builtin_prefetch(&t->tok_slots[hashes[i + PREFETCH_AHEAD] & t->tok_mask], 1);
                const tok_entry *e = &t->tokens[i];
                const char *s = t->text + e->off;
                uint64_t h = hashes[i];
                for (uint64_t k = h & t->tok_mask;; k = (k + 1) & t->tok_mask) {
                        uint64_t v = t->tok_slots[k];
                        if (v == 0) {
                                t->tok_slots[k] = make_slot(h, (int32_t)i);
                                break;
                        }
                        if (v >> 32 != SLOT_TAG(h))
                                continue;
                        const tok_entry *o = &t->tokens[SLOT_ID(v)];
                        if (o->len == e->len && memcmp(t->text + o->off, s, e->len) == 0)
                                return set_error(err, errlen, -EINVAL, "%s[%llu] repeats the text of token %d ('%.*s')",
                                                 KEY_TOKENS, (unsigned long long)i, SLOT_ID(v), (int)MIN(e->len, 64u), s);
                }
        }
        return 0;
}

/* --- merges --------------------------------------------------------------- */

static int load_merges(tokenizer *t, const gguf_file *f, char *err, size_t errlen) {
        gguf_type et;
        uint64_t n;
        const void *data;
        int r;

        r = gguf_get_arr(f, KEY_MERGES, &et, &n, &data);
        if (r == -ENOENT)
                return set_error(err, errlen, r, "%s is missing (required by a \"gpt2\" tokenizer)", KEY_MERGES);
        if (r < 0 || et != GGUF_TYPE_STRING)
                return set_error(err, errlen, r < 0 ? r : -EINVAL, "%s is not an array of strings", KEY_MERGES);
        if (n > INT32_MAX / 2)
                return set_error(err, errlen, -EINVAL, "%s has %llu entries", KEY_MERGES, (unsigned long long)n);
        if (n == 0)
                return 0;

        t->merges = calloc(n, sizeof(tok_merge));
        if (!t->merges)
                return -ENOMEM;
        t->n_merges = (int32_t)n;

        size_t cap = 0, off = 0;
        for (uint64_t i = 0; i < n; i++) {
                gguf_str s;
                r = gguf_get_arr_str(f, KEY_MERGES, i, &s);
                if (r < 0)
                        return set_error(err, errlen, r, "%s[%llu] cannot be read", KEY_MERGES, (unsigned long long)i);
                /* "left right": split at the first space after the first
                 * byte, so that a left part may itself be a space. */
                const char *sp = s.len > 1 ? memchr(s.p + 1, ' ', s.len - 1) : NULL;
                if (!sp || (uint64_t)(sp - s.p) + 1 >= s.len)
                        return set_error(err, errlen, -EINVAL, "%s[%llu] ('%.*s') is not of the form 'left right'",
                                         KEY_MERGES, (unsigned long long)i, (int)MIN(s.len, 64u), s.p);
                if (s.len > UINT16_MAX || off + s.len >= UINT32_MAX)
                        return set_error(err, errlen, -EFBIG, "%s[%llu]: merges too large", KEY_MERGES,
                                         (unsigned long long)i);
                if ((r = arena_append(&t->merge_text, &cap, &off, s.p, s.len)) < 0)
                        return r;
                tok_merge *m = &t->merges[i];
                m->l_off = (uint32_t)(off - s.len);
                m->l_len = (uint32_t)(sp - s.p);
                m->r_off = m->l_off + m->l_len + 1;
                m->r_len = (uint32_t)(s.len - m->l_len - 1);
        }

        _cleanup_free_ uint64_t *hashes = malloc(n * sizeof(uint64_t));
        t->merge_mask = table_size_for(n) - 1;
        t->merge_slots = calloc(t->merge_mask + 1, sizeof(uint64_t));
        if (!hashes || !t->merge_slots)
                return -ENOMEM;
        for (uint64_t i = 0; i < n; i++) {
                const tok_merge *m = &t->merges[i];
                hashes[i] = merge_hash(t->merge_text + m->l_off, m->l_len, t->merge_text + m->r_off, m->r_len);
        }
        for (uint64_t i = 0; i < n; i++) {
                if (i + PREFETCH_AHEAD < n)
                        __builtin_prefetch(&t->merge_slots[hashes[i + PREFETCH_AHEAD] & t->merge_mask], 1);
                const tok_merge *m = &t->merges[i];
                uint64_t h = hashes[i];
                for (uint64_t k = h & t->merge_mask;; k = (k + 1) & t->merge_mask) {
                        uint64_t v = t->merge_slots[k];
                        if (v == 0) {
                                t->merge_slots[k] = make_slot(h, (int32_t)i);
                                break;
                        }
                        /* A repeated pair keeps its first (lowest) rank. */
                        if (v >> 32 == SLOT_TAG(h) && merge_eq(t, &t->merges[SLOT_ID(v)], t->merge_text + m->l_off,
                                                                m->l_len, t->merge_text + m->r_off, m->r_len))
                                break;
                }
        }
        return 0;
}

/* --- special ids and flags ------------------------------------------------ */

static int read_id(const tokenizer *t, const gguf_file *f, const char *key, int32_t *id, char *err, size_t errlen) {
        int64_t v;
        int r = gguf_get_i64(f, key, &v);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return set_error(err, errlen, r, "%s is not an integer", key);
        if (v < 0 || v >= t->n_vocab)
                return set_error(err, errlen, -EINVAL, "%s = %lld is out of range (vocabulary of %d tokens)", key,
                                 (long long)v, t->n_vocab);
        *id = (int32_t)v;
        return 0;
}

static int read_bool(const gguf_file *f, const char *key, bool *b, char *err, size_t errlen) {
        int r = gguf_get_bool(f, key, b);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return set_error(err, errlen, r, "%s is not a boolean", key);
        return 0;
}

/* The reference recognizes some tokens by their text, forces them to be
 * control tokens (which changes how input text is split) and stops
 * generation on them. */
static const char *const eot_texts[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
        "<EOT>", "_<EOT>", "<\357\275\234end\342\226\201of\342\226\201sentence\357\275\234>", "<end_of_utterance>",
};
static const char *const eog_texts[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
        "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
};
/* fill-in-the-middle markers: prefix/suffix/middle become control tokens;
 * pad/repo/file-separator also end generation */
static const char *const fim_texts[] = {
        "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\357\275\234fim\342\226\201begin\357\275\234>", "<PRE>",
        "\xe2\x96\x81<PRE>", "<|code_prefix|>",
        "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\357\275\234fim\342\226\201hole\357\275\234>", "<SUF>",
        "\xe2\x96\x81<SUF>", "<|code_suffix|>",
        "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\357\275\234fim\342\226\201end\357\275\234>", "<MID>",
        "\xe2\x96\x81<MID>", "<|code_middle|>",
};
static const char *const fim_eog_texts[] = {
        "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
        "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>",
        "<|file_sep|>",
};

static int32_t find_c(const tokenizer *t, const char *s) {
        return tok_lookup(t, s, strlen(s));
}

static void mark_texts(tokenizer *t, const char *const *texts, size_t n, bool eog) {
        for (size_t i = 0; i < n; i++) {
                int32_t id = find_c(t, texts[i]);
                if (id < 0)
                        continue;
                if (!(t->tokens[id].attr & TOK_CONTROL))
                        t->tokens[id].attr = TOK_CONTROL;
                if (eog)
                        t->tokens[id].eog = true;
        }
}

static int load_specials(tokenizer *t, const gguf_file *f, char *err, size_t errlen) {
        int r;

        /* Defaults when the keys are absent: the reference's, except that
         * Gemma's ids differ from Llama's and a missing BPE id means none. */
        if (t->kind == TOKENIZER_SPM) {
                gguf_str arch = { 0 };
                bool gemma = gguf_get_str(f, "general.architecture", &arch) >= 0 && arch.len >= 5 &&
                             memcmp(arch.p, "gemma", 5) == 0;
                t->bos = gemma ? 2 : 1;
                t->eos = gemma ? 1 : 2;
                t->unk = gemma ? 3 : 0;
                t->pad = gemma ? 0 : -1;
                if (t->bos >= t->n_vocab || t->eos >= t->n_vocab || t->unk >= t->n_vocab)
                        t->bos = t->eos = t->unk = t->pad = -1;
        } else
                t->bos = t->eos = t->unk = t->pad = -1;
        t->eot = t->eom = -1;

        if ((r = read_id(t, f, "tokenizer.ggml.bos_token_id", &t->bos, err, errlen)) < 0 ||
            (r = read_id(t, f, "tokenizer.ggml.eos_token_id", &t->eos, err, errlen)) < 0 ||
            (r = read_id(t, f, "tokenizer.ggml.unknown_token_id", &t->unk, err, errlen)) < 0 ||
            (r = read_id(t, f, "tokenizer.ggml.padding_token_id", &t->pad, err, errlen)) < 0 ||
            (r = read_id(t, f, "tokenizer.ggml.eot_token_id", &t->eot, err, errlen)) < 0 ||
            (r = read_id(t, f, "tokenizer.ggml.eom_token_id", &t->eom, err, errlen)) < 0)
                return r;

        t->add_space_prefix = t->kind == TOKENIZER_SPM;
        t->add_bos = t->kind == TOKENIZER_SPM || t->pre == PRETOK_LLAMA3;
        t->add_eos = false;
        if ((r = read_bool(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err, errlen)) < 0 ||
            (r = read_bool(f, "tokenizer.ggml.add_bos_token", &t->add_bos, err, errlen)) < 0 ||
            (r = read_bool(f, "tokenizer.ggml.add_eos_token", &t->add_eos, err, errlen)) < 0)
                return r;
        if (t->add_bos && t->bos < 0)
                return set_error(err, errlen, -EINVAL, "tokenizer.ggml.add_bos_token is set but there is no BOS token");
        if (t->add_eos && t->eos < 0)
                return set_error(err, errlen, -EINVAL, "tokenizer.ggml.add_eos_token is set but there is no EOS token");

        if (t->eot < 0) {
                for (size_t i = 0; i < ELEMENTSOF(eot_texts) && t->eot < 0; i++)
                        t->eot = find_c(t, eot_texts[i]);
                if (t->eot >= 0)
                        t->tokens[t->eot].attr = TOK_CONTROL;
        }
        if (t->eom < 0) {
                t->eom = find_c(t, "<|eom_id|>");
                if (t->eom >= 0)
                        t->tokens[t->eom].attr = TOK_CONTROL;
        }
        mark_texts(t, eog_texts, ELEMENTSOF(eog_texts), true);
        mark_texts(t, fim_texts, ELEMENTSOF(fim_texts), false);
        mark_texts(t, fim_eog_texts, ELEMENTSOF(fim_eog_texts), true);
        if (t->eos >= 0)
                t->tokens[t->eos].eog = true;
        if (t->eot >= 0)
                t->tokens[t->eot].eog = true;
        if (t->eom >= 0)
                t->tokens[t->eom].eog = true;

        /* gpt-oss's channel markers are always rendered, like text. */
        static const char *const user_texts[] = { "<|channel|>", "<|message|>", "<|start|>", "<|constrain|>" };
        for (size_t i = 0; i < ELEMENTSOF(user_texts); i++) {
                int32_t id = find_c(t, user_texts[i]);
                if (id >= 0)
                        t->tokens[id].attr = TOK_USER_DEFINED;
        }
        return 0;
}

/* SPM byte fallback: "<0xAB>", else the byte itself as a token.  BYTE
 * tokens must spell a byte, since decoding reads it back. */
static int load_bytes(tokenizer *t, char *err, size_t errlen) {
        static const char hex[] = "0123456789ABCDEF";

        for (unsigned b = 0; b < 256; b++) {
                if (t->kind == TOKENIZER_SPM) {
                        char buf[6] = { '<', '0', 'x', hex[b >> 4], hex[b & 15], '>' };
                        int32_t id = tok_lookup(t, buf, 6);
                        if (id < 0) {
                                char c = (char)b;
                                id = tok_lookup(t, &c, 1);
                        }
                        t->byte_token[b] = id;
                } else
                        t->byte_token[b] = -1;

                char u[4];
                size_t n = unicode_encode_utf8(unicode_byte_to_cpt((uint8_t)b), u);
                memcpy(t->byte_enc[b], u, 2);
                t->byte_enc_len[b] = (uint8_t)n;
        }

        if (t->kind == TOKENIZER_SPM)
                for (int32_t i = 0; i < t->n_vocab; i++) {
                        const tok_entry *e = &t->tokens[i];
                        const char *s = t->text + e->off;
                        if (!(e->attr & TOK_BYTE))
                                continue;
                        if (e->len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>' || !isxdigit((uint8_t)s[3]) ||
                            !isxdigit((uint8_t)s[4]))
                                return set_error(err, errlen, -EINVAL,
                                                 "%s[%d] is of type BYTE but its text '%.*s' is not <0xHH>", KEY_TYPES, i,
                                                 (int)MIN(e->len, 64u), s);
                }
        return 0;
}

/* --- special-token trie ---------------------------------------------------- */

static int cmp_special(const void *a, const void *b, void *userdata) {
        const tokenizer *t = userdata;
        int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
        uint32_t lx = t->tokens[x].len, ly = t->tokens[y].len;
        if (lx != ly)
                return lx > ly ? -1 : 1;
        return (x > y) - (x < y);
}

int32_t tok_trie_step(const tokenizer *t, int32_t node, uint8_t byte) {
        uint64_t key = ((uint64_t)node << 8 | byte) + 1;
        uint64_t i = (key * 0x9E3779B97F4A7C15ull >> 20) & t->edge_mask;
        for (;;) {
                if (t->edge_keys[i] == 0)
                        return -1;
                if (t->edge_keys[i] == key)
                        return t->edge_child[i];
                i = (i + 1) & t->edge_mask;
        }
}

static void edge_add(tokenizer *t, int32_t node, uint8_t byte, int32_t child) {
        uint64_t key = ((uint64_t)node << 8 | byte) + 1;
        uint64_t i = (key * 0x9E3779B97F4A7C15ull >> 20) & t->edge_mask;
        while (t->edge_keys[i] != 0)
                i = (i + 1) & t->edge_mask;
        t->edge_keys[i] = key;
        t->edge_child[i] = child;
}

static int build_specials(tokenizer *t) {
        int32_t n = 0;
        uint64_t total = 0;

        for (int32_t i = 0; i < t->n_vocab; i++)
                if (t->tokens[i].attr & (TOK_CONTROL | TOK_USER_DEFINED | TOK_UNKNOWN)) {
                        n++;
                        total += t->tokens[i].len;
                }
        t->special = malloc(sizeof(int32_t) * (n + 1));
        if (!t->special)
                return -ENOMEM;
        for (int32_t i = 0; i < t->n_vocab; i++)
                if (t->tokens[i].attr & (TOK_CONTROL | TOK_USER_DEFINED | TOK_UNKNOWN))
                        t->special[t->n_special++] = i;
        /* Longest first; equal lengths by id (the reference's order there is
         * unspecified). */
        qsort_r(t->special, t->n_special, sizeof(int32_t), cmp_special, t);

        t->trie_token = malloc(sizeof(int32_t) * (total + 1));
        t->edge_mask = table_size_for(total + 1) - 1;
        t->edge_keys = calloc(t->edge_mask + 1, sizeof(uint64_t));
        t->edge_child = malloc(sizeof(int32_t) * (t->edge_mask + 1));
        if (!t->trie_token || !t->edge_keys || !t->edge_child)
                return -ENOMEM;
        t->n_trie = 1;
        t->trie_token[0] = -1;
        for (int32_t k = 0; k < t->n_special; k++) {
                const tok_entry *e = &t->tokens[t->special[k]];
                const char *s = t->text + e->off;
                int32_t node = 0;
                for (uint32_t j = 0; j < e->len; j++) {
                        int32_t c = tok_trie_step(t, node, (uint8_t)s[j]);
                        if (c < 0) {
                                c = t->n_trie++;
                                t->trie_token[c] = -1;
                                edge_add(t, node, (uint8_t)s[j], c);
                        }
                        node = c;
                }
                t->trie_token[node] = k; /* texts are unique, so one rank per node */
        }
        return 0;
}

/* --- entry point ------------------------------------------------------------ */

int tokenizer_load(const gguf_file *f, tokenizer **ret, char *err, size_t errlen) {
        _cleanup_(tokenizer_freep) tokenizer *t = NULL;
        gguf_str model, pre;
        int r;

        if (!f || !ret)
                return -EINVAL;

        r = gguf_get_str(f, KEY_MODEL, &model);
        if (r < 0)
                return set_error(err, errlen, r, "%s is %s", KEY_MODEL, r == -ENOENT ? "missing" : "not a string");

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;

        if (gguf_str_eq(model, "llama"))
                t->kind = TOKENIZER_SPM;
        else if (gguf_str_eq(model, "gpt2"))
                t->kind = TOKENIZER_BPE;
        else
                return set_error(err, errlen, -EOPNOTSUPP, "%s = '%.*s' is not supported (\"llama\" or \"gpt2\")",
                                 KEY_MODEL, (int)MIN(model.len, 64u), model.p);

        t->pre = PRETOK_DEFAULT;
        if (t->kind == TOKENIZER_BPE) {
                r = gguf_get_str(f, KEY_PRE, &pre);
                if (r >= 0) {
                        size_t i;
                        for (i = 0; i < ELEMENTSOF(pre_names); i++)
                                if (gguf_str_eq(pre, pre_names[i].name))
                                        break;
                        /* Unknown names would silently give other ids than
                         * the reference: refuse them. */
                        if (i == ELEMENTSOF(pre_names))
                                return set_error(err, errlen, -EOPNOTSUPP, "%s = '%.*s' is not a supported pre-tokenizer",
                                                 KEY_PRE, (int)MIN(pre.len, 64u), pre.p);
                        t->pre = pre_names[i].kind;
                } else if (r != -ENOENT)
                        return set_error(err, errlen, r, "%s is not a string", KEY_PRE);
                t->ignore_merges = t->pre == PRETOK_LLAMA3;
        }

        if ((r = load_tokens(t, f, err, errlen)) < 0)
                return r;
        if (t->kind == TOKENIZER_BPE && (r = load_merges(t, f, err, errlen)) < 0)
                return r;
        if ((r = load_specials(t, f, err, errlen)) < 0)
                return r;
        if ((r = load_bytes(t, err, errlen)) < 0)
                return r;
        if ((r = build_specials(t)) < 0)
                return r;

        *ret = TAKE_PTR(t);
        return 0;
}
