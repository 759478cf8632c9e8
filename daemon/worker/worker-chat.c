/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat-template.h"
#include "daemon/worker/worker-chat.h"
#include "macro.h"

#define START_OF_TURN "<start_of_turn>"
#define END_OF_TURN "<end_of_turn>"

bool worker_chat_has_template(const tokenizer *tok) {
        return tokenizer_find(tok, START_OF_TURN) >= 0 && tokenizer_find(tok, END_OF_TURN) >= 0;
}

bool worker_chat_is_end(const tokenizer *tok, int32_t id) {
        if (tokenizer_is_eog(tok, id))
                return true;
        return worker_chat_has_template(tok) && chat_is_end_of_turn(tok, id);
}

/* Without a template: BOS on an empty session, then the text, never special. */
static int raw_prompt(const tokenizer *tok, const char *text, size_t len, bool first, int32_t **ret, size_t *n_ret,
                      char *err, size_t errlen) {
        int r = tokenizer_encode(tok, text, len, first, false, ret, n_ret);
        if (r < 0)
                return set_error(err, errlen, r, "the prompt could not be tokenized: %s", strerror(-r));
        return 0;
}

int worker_chat_prompt(const tokenizer *tok, const char *text, size_t len, const worker_chat_turn *t, int32_t **ret,
                       size_t *n_ret, char *err, size_t errlen) {
        _cleanup_free_ char *s = NULL;
        _cleanup_free_ int32_t *ids = NULL, *nl = NULL;
        size_t n = 0, n_nl = 0, skip = 0, lead;
        int32_t eot;
        int r;

        if (t->raw || !worker_chat_has_template(tok))
                return raw_prompt(tok, text, len, t->first, ret, n_ret, err, errlen);
        if (memchr(text, 0, len))
                return set_error(err, errlen, -EINVAL, "the prompt contains a NUL byte");
        s = strndup(text, len);
        if (!s)
                return set_error(err, errlen, -ENOMEM, "out of memory");

        /* The whole one-turn conversation, BOS included. */
        chat_turn turn = { .role = "user", .text = s };
        r = chat_tokenize(tok, &turn, 1, true, &ids, &n, err, errlen);
        if (r < 0)
                return r;
        if (t->first) {
                *ret = TAKE_PTR(ids);
                *n_ret = n;
                return 0;
        }

        /* A later turn: drop the BOS, close the model's answer, then the
         * newline that follows every <end_of_turn> in the rendering. */
        if (n > 0 && tokenizer_add_bos(tok) && ids[0] == tokenizer_bos(tok))
                skip = 1;
        r = tokenizer_encode(tok, "\n", 1, false, false, &nl, &n_nl);
        if (r < 0)
                return set_error(err, errlen, r, "the prompt could not be tokenized: %s", strerror(-r));
        eot = tokenizer_find(tok, END_OF_TURN);
        lead = (t->turn_open ? 1 : 0) + n_nl;
        int32_t *out = malloc((lead + n - skip) * sizeof(int32_t));
        if (!out)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        size_t at = 0;
        if (t->turn_open)
                out[at++] = eot;
        memcpy(out + at, nl, n_nl * sizeof(int32_t));
        at += n_nl;
        memcpy(out + at, ids + skip, (n - skip) * sizeof(int32_t));
        *ret = out;
        *n_ret = at + n - skip;
        return 0;
}
