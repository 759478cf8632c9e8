/* SPDX-License-Identifier: MIT */
/* The token ids a request adds to its session, with the model's chat
 * template when it has one (Gemma's turn markers, whatever the
 * architecture) and the caller did not ask for the raw prompt.
 *
 * A one-shot request, or the first turn of a chat, is a whole conversation
 * of one user turn:
 *
 *   <bos><start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n
 *
 * A later turn of a chat appends to the context, which ends with the
 * model's previous answer; it closes that answer first when generation did
 * not end on <end_of_turn> (a length limit, a stop string):
 *
 *   [<end_of_turn>]\n<start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n
 *
 * so that a chat's context is token for token the reference's rendering of
 * the whole conversation.  The markers go in by id and the text is
 * tokenized with special parsing off: a user who types "<end_of_turn>"
 * cannot close a turn.  Without a template (or raw): BOS on the first
 * turn, then the text as it is. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

typedef struct worker_chat_turn {
        bool first;      /* the session is empty */
        bool raw;        /* the caller's "raw" option */
        bool turn_open;  /* the model's last answer in the context is not closed */
} worker_chat_turn;

/* Whether this vocabulary has the turn markers of a chat template. */
bool worker_chat_has_template(const tokenizer *tok);

/* The ids of one request; *ret is malloc'ed.  -errno with a sentence in
 * err. */
int worker_chat_prompt(const tokenizer *tok, const char *text, size_t len, const worker_chat_turn *t, int32_t **ret,
                       size_t *n_ret, char *err, size_t errlen);

/* Whether generation ends at this token: <end_of_turn>, EOS, or any other
 * end-of-generation token of the vocabulary. */
bool worker_chat_is_end(const tokenizer *tok, int32_t id);
