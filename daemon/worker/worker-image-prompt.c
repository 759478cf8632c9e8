/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/worker/worker-image-prompt.h"
#include "macro.h"

int worker_image_prompt(const tokenizer *tok, const char *question, size_t question_len, const worker_chat_turn *t,
                        size_t n_images, size_t n_soft, int32_t **tokens, size_t *n_tokens, size_t **image_pos,
                        char *why, size_t whylen) {
        _cleanup_free_ int32_t *turn = NULL, *nl2 = NULL, *user = NULL, *out = NULL;
        _cleanup_free_ size_t *pos = NULL;
        size_t n_turn = 0, n_nl2 = 0, n_user = 0, split = 0;
        int32_t boi = tokenizer_find(tok, "<start_of_image>"), eoi = tokenizer_find(tok, "<end_of_image>");
        int r;

        if (question_len == 0) {
                question = "Describe this image.";
                question_len = strlen(question);
        }
        r = worker_chat_prompt(tok, question, question_len, t, &turn, &n_turn, why, whylen);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        if (tokenizer_encode(tok, "\n\n", 2, false, false, &nl2, &n_nl2) < 0 ||
            tokenizer_encode(tok, "user\n", 5, false, false, &user, &n_user) < 0) {
                snprintf(why, whylen, "cannot tokenize the image markers");
                return -EPROTO;
        }
        if (worker_chat_has_template(tok) && !t->raw) {
                /* After the first "<start_of_turn>user\n": what comes before
                 * (BOS, or the close of the previous answer) stays first. */
                int32_t sot = tokenizer_find(tok, "<start_of_turn>");
                size_t i = 0;
                while (i < n_turn && turn[i] != sot)
                        i++;
                if (i == n_turn || i + 1 + n_user > n_turn ||
                    memcmp(turn + i + 1, user, n_user * sizeof(int32_t)) != 0) {
                        snprintf(why, whylen, "the chat template has no user turn to put the image in");
                        return -EPROTO;
                }
                split = i + 1 + n_user;
        } else
                split = t->first && n_turn > 0 && turn[0] == tokenizer_bos(tok) ? 1 : 0;

        size_t per_image = 2 * n_nl2 + (boi >= 0) + n_soft + (eoi >= 0), n;
        if (MUL_OVERFLOW(n_images, per_image, &n) || ADD_OVERFLOW(n, n_turn, &n)) {
                snprintf(why, whylen, "too many image tokens");
                return -EINVAL;
        }
        out = malloc(MAX(n, (size_t)1) * sizeof(int32_t));
        pos = calloc(MAX(n_images, (size_t)1), sizeof(size_t));
        if (!out || !pos) {
                snprintf(why, whylen, "out of memory");
                return -ENOMEM;
        }
        size_t at = split;
        memcpy(out, turn, split * sizeof(int32_t));
        for (size_t k = 0; k < n_images; k++) {
                memcpy(out + at, nl2, n_nl2 * sizeof(int32_t));
                at += n_nl2;
                if (boi >= 0)
                        out[at++] = boi;
                pos[k] = at;
                for (size_t j = 0; j < n_soft; j++)
                        out[at++] = -1;
                if (eoi >= 0)
                        out[at++] = eoi;
                memcpy(out + at, nl2, n_nl2 * sizeof(int32_t));
                at += n_nl2;
        }
        memcpy(out + at, turn + split, (n_turn - split) * sizeof(int32_t));
        at += n_turn - split;
        *tokens = TAKE_PTR(out);
        *n_tokens = at;
        *image_pos = TAKE_PTR(pos);
        return 0;
}
