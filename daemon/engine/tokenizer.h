/* SPDX-License-Identifier: MIT */
/* Tokenizers read from GGUF metadata: SentencePiece-style ("llama": Llama 2,
 * Gemma) with byte fallback, and byte-level BPE ("gpt2": Llama 3, Qwen)
 * with its pre-tokenizer.  Ids equal llama.cpp's.
 *
 * Pre-tokenizers (tokenizer.ggml.pre): the llama3 family ("llama-bpe", ...),
 * the qwen2 family, the gpt-2 family and "default" (also when the key is
 * absent); other names are refused rather than tokenized differently.
 *
 * Where the reference throws, asserts or only warns, this code differs on
 * purpose: codepoints past U+10FFFF (F5..F7 lead bytes) in BPE input become
 * U+FFFD; a SentencePiece vocabulary without byte tokens falls back to the
 * unknown token; special-token ids out of range, repeated token texts,
 * invalid token types, malformed merges and add_bos without a BOS id are
 * load errors.  Decoding turns ▁ into spaces in user-defined SentencePiece
 * pieces too, and leaves codepoints outside GPT-2's byte map as they are.
 * Special tokens of equal length are tried in id order (unspecified in the
 * reference); the lstrip/rstrip attributes it sets by model name (phi-3,
 * jina) are not implemented. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef struct tokenizer tokenizer;

/* Reads tokenizer.ggml.* and checks it; on failure returns -errno and names
 * the key at fault in err.  The tokenizer copies what it needs: f may be
 * closed afterwards.  A loaded tokenizer is read-only and may be used from
 * several threads at once. */
int tokenizer_load(const gguf_file *f, tokenizer **ret, char *err, size_t errlen);
void tokenizer_free(tokenizer *t);

int32_t tokenizer_n_vocab(const tokenizer *t);
int32_t tokenizer_bos(const tokenizer *t); /* -1 when none */
int32_t tokenizer_eos(const tokenizer *t);
bool tokenizer_add_bos(const tokenizer *t);
/* End of turn (<end_of_turn>, <|eot_id|>, <|im_end|>, ...), -1 when none. */
int32_t tokenizer_eot(const tokenizer *t);
/* The token's type as in tokenizer.ggml.token_type (0 undefined, 1 normal,
 * 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), after the
 * adjustments the reference makes at load time (end-of-turn and similar
 * markers become control tokens); -EINVAL for an id out of range.  For
 * masking ids that can never be produced (unused, control) when sampling. */
int tokenizer_token_type(const tokenizer *t, int32_t id);
/* End of generation: EOS, EOT (<end_of_turn>, <|eot_id|>, <|im_end|>), ... */
bool tokenizer_is_eog(const tokenizer *t, int32_t id);
/* Id of a token by its exact text (for control tokens such as
 * "<start_of_turn>"), or -1. */
int32_t tokenizer_find(const tokenizer *t, const char *text);

/* Encode UTF-8 text.  add_special: BOS (and EOS where the vocabulary asks
 * for it); parse_special: text that spells a control token becomes that
 * token.  *ret is malloc'ed. */
int tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                     int32_t **ret, size_t *n_ret);

/* The bytes of one token (byte tokens decoded, ▁ turned into a space, BPE
 * bytes unmapped).  Control tokens give "" unless render_special.  Returns
 * the number of bytes, -ENOBUFS if buflen is too small, -EINVAL for an id
 * out of range. */
int tokenizer_token_to_piece(const tokenizer *t, int32_t id, bool render_special, char *buf, size_t buflen);

/* Streaming detokenization: hands out only whole UTF-8 characters, keeping
 * an incomplete tail for the next token. */
typedef struct detok_stream {
        char pending[8];
        int n_pending;
        bool first; /* SentencePiece: drop the leading space of the first piece */
} detok_stream;

void detok_stream_init(detok_stream *s);
/* The most bytes one detok_stream_push() or tokenizer_token_to_piece() can
 * write with this vocabulary (its longest token, every byte of it and of a
 * held-back tail possibly turned into U+FFFD).  Llama 3 and Qwen have
 * tokens of 256 bytes: size output buffers with this. */
size_t detok_stream_max_output(const tokenizer *t);
/* Appends the complete characters now available to out; returns bytes
 * written or -ENOBUFS. */
int detok_stream_push(const tokenizer *t, detok_stream *s, int32_t id, char *out, size_t outlen);
/* Whatever is left at the end (invalid bytes become U+FFFD). */
int detok_stream_flush(detok_stream *s, char *out, size_t outlen);
