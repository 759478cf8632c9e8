/* SPDX-License-Identifier: MIT */
/* The Gemma (3 / 3n) chat format (specs/gemma-tokenizer-and-chat.md §4):
 *
 *   <bos><start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n
 *   <start_of_turn>model\n{assistant}<end_of_turn>\n
 *   <start_of_turn>user\n{user}<end_of_turn>\n
 *   <start_of_turn>model\n                          (generation prompt)
 *
 * A leading system message becomes a prefix of the first turn's text; the
 * other turns must alternate user, assistant, user, ... ("model" is taken
 * for "assistant"); every text is trimmed of surrounding whitespace.
 *
 * Two renderings: as text (for display and for tools that tokenize it with
 * special parsing), and as token ids, where the markers are spliced in by
 * id and the turn texts are tokenized with special parsing off, so text
 * from a user that spells "<end_of_turn>" stays text.  The daemon uses the
 * second. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

typedef struct chat_turn {
        const char *role; /* "system" (first only), "user", "assistant" or "model" */
        const char *text; /* UTF-8, NUL-terminated */
} chat_turn;

/* The prompt as text, beginning with "<bos>" (tokenize it without adding
 * another BOS), ending with "<start_of_turn>model\n" when
 * add_generation_prompt.  -EINVAL (with a sentence in err) when the roles
 * do not alternate or are unknown.  *ret is malloc'ed. */
int chat_render(const chat_turn *turns, size_t n, bool add_generation_prompt, char **ret, char *err,
                size_t errlen);

/* The same prompt as token ids: BOS when the vocabulary adds one, the turn
 * markers by id, the texts tokenized with parse_special off.  -EOPNOTSUPP
 * when the vocabulary has no <start_of_turn>/<end_of_turn>.  *ret is
 * malloc'ed. */
int chat_tokenize(const tokenizer *tok, const chat_turn *turns, size_t n, bool add_generation_prompt,
                  int32_t **ret, size_t *n_ret, char *err, size_t errlen);

/* Whether a generated token ends the model's turn (<end_of_turn> or EOS). */
bool chat_is_end_of_turn(const tokenizer *tok, int32_t id);
