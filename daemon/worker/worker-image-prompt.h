/* SPDX-License-Identifier: MIT */
/* The token ids of an image turn, as Gemma 3's processor lays the user turn
 * out (HF Gemma3Processor; specs/vision-siglip.md §7):
 *
 *   [<bos>]<start_of_turn>user\n                          (first turn)
 *   [<end_of_turn>]\n<start_of_turn>user\n                  (later turn; the
 *                                   marker closes a cut-off answer)
 *   \n\n<start_of_image>[n soft tokens]<end_of_image>\n\n  once per image
 *   {question}<end_of_turn>\n<start_of_turn>model\n
 *
 * i.e. worker_chat_prompt()'s turn for the question with the images spliced
 * in after "<start_of_turn>user\n", so text and image turns of one chat
 * render the same template.  Soft-token positions hold -1 (they take the
 * encoder's rows).  A vocabulary without <start_of_image>/<end_of_image>
 * (small test models) gets the soft tokens without them. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "daemon/worker/worker-chat.h"
#include "tokenizer.h"

/* *tokens (n_tokens ids) and *image_pos (n_images offsets) are malloc'ed.
 * An empty question asks for a description.  -EINVAL: the question cannot
 * be tokenized; -EPROTO: the vocabulary's template has no user turn;
 * -ENOMEM.  A sentence in why. */
int worker_image_prompt(const tokenizer *tok, const char *question, size_t question_len, const worker_chat_turn *t,
                        size_t n_images, size_t n_soft, int32_t **tokens, size_t *n_tokens, size_t **image_pos,
                        char *why, size_t whylen);
