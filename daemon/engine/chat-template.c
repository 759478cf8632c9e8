/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat-template.h"
#include "macro.h"

#define START_OF_TURN "<start_of_turn>"
#define END_OF_TURN "<end_of_turn>"

/* ---- the turn structure, shared by both renderings ---- */

/* One rendered turn: "<start_of_turn>" role "\n" [prefix] text "<end_of_turn>\n". */
typedef struct turn_view {
        const char *role; /* "user" or "model" */
        const char *prefix;
        size_t prefix_len; /* the system text, trimmed, or 0 */
        const char *text;
        size_t text_len; /* trimmed */
} turn_view;

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void trim(const char *s, const char **ret, size_t *len) {
        size_t n = strlen(s);
        while (n > 0 && is_space(*s)) {
                s++;
                n--;
        }
        while (n > 0 && is_space(s[n - 1]))
                n--;
        *ret = s;
        *len = n;
}

/* Check roles and build the views (n_views <= n). */
static int plan(const chat_turn *turns, size_t n, turn_view *views, size_t *n_views, char *err, size_t errlen) {
        const char *sys = NULL;
        size_t sys_len = 0, k = 0, i = 0;

        if (n > 0 && turns[0].role && strcmp(turns[0].role, "system") == 0) {
                trim(turns[0].text ? turns[0].text : "", &sys, &sys_len);
                i = 1;
        }
        for (; i < n; i++) {
                const char *role = turns[i].role;
                bool user = role && strcmp(role, "user") == 0;
                bool model = role && (strcmp(role, "assistant") == 0 || strcmp(role, "model") == 0);

                if (!user && !model)
                        return set_error(err, errlen, -EINVAL, "turn %zu: role '%s' is not user or assistant%s", i,
                                         role ? role : "(none)",
                                         role && strcmp(role, "system") == 0 ? " (a system message must come first)" : "");
                if (user != (k % 2 == 0))
                        return set_error(err, errlen, -EINVAL,
                                         "turn %zu: roles must alternate user, assistant, user, ... starting with user",
                                         i);
                views[k] = (turn_view){ .role = user ? "user" : "model" };
                trim(turns[i].text ? turns[i].text : "", &views[k].text, &views[k].text_len);
                if (k == 0 && sys) {
                        views[k].prefix = sys;
                        views[k].prefix_len = sys_len;
                }
                k++;
        }
        *n_views = k;
        return 0;
}

/* ---- as text ---- */

int chat_render(const chat_turn *turns, size_t n, bool add_generation_prompt, char **ret, char *err,
                size_t errlen) {
        _cleanup_free_ turn_view *views = NULL;
        size_t n_views, size = 0, at = 0;
        char *out;
        int r;

        views = calloc(MAX(n, (size_t)1), sizeof *views);
        if (!views)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        r = plan(turns, n, views, &n_views, err, errlen);
        if (r < 0)
                return r;

        /* sizes first, overflow-checked */
        size = strlen("<bos>") + 1;
        for (size_t i = 0; i < n_views; i++) {
                size_t t = strlen(START_OF_TURN) + strlen(views[i].role) + 1 + strlen(END_OF_TURN) + 1 + 2;
                if (ADD_OVERFLOW(size, t, &size) || ADD_OVERFLOW(size, views[i].prefix_len, &size) ||
                    ADD_OVERFLOW(size, views[i].text_len, &size))
                        return set_error(err, errlen, -EOVERFLOW, "prompt too long");
        }
        size += strlen(START_OF_TURN "model\n");

        out = malloc(size);
        if (!out)
                return set_error(err, errlen, -ENOMEM, "out of memory");
#define PUT(p, len)                           \
        do {                                  \
                memcpy(out + at, (p), (len)); \
                at += (len);                  \
        } while (0)
#define PUTS(s) PUT(s, strlen(s))
        PUTS("<bos>");
        for (size_t i = 0; i < n_views; i++) {
                PUTS(START_OF_TURN);
                PUTS(views[i].role);
                PUTS("\n");
                if (views[i].prefix) {
                        PUT(views[i].prefix, views[i].prefix_len);
                        PUTS("\n\n");
                }
                PUT(views[i].text, views[i].text_len);
                PUTS(END_OF_TURN "\n");
        }
        if (add_generation_prompt)
                PUTS(START_OF_TURN "model\n");
#undef PUTS
#undef PUT
        out[at] = '\0';
        *ret = out;
        return 0;
}

/* ---- as token ids ---- */

typedef struct id_buf {
        int32_t *ids;
        size_t n, cap;
} id_buf;

static int push(id_buf *b, const int32_t *ids, size_t n) {
        if (b->n + n > b->cap) {
                size_t cap = MAX(b->cap * 2, b->n + n + 64);
                int32_t *p = realloc(b->ids, cap * sizeof(int32_t));
                if (!p)
                        return -ENOMEM;
                b->ids = p;
                b->cap = cap;
        }
        memcpy(b->ids + b->n, ids, n * sizeof(int32_t));
        b->n += n;
        return 0;
}

/* Plain text, never special: a user cannot open or close a turn. */
static int push_text(const tokenizer *tok, id_buf *b, const char *text, size_t len) {
        _cleanup_free_ int32_t *ids = NULL;
        size_t n = 0;
        int r;

        if (len == 0)
                return 0;
        r = tokenizer_encode(tok, text, len, false, false, &ids, &n);
        if (r < 0)
                return r;
        return push(b, ids, n);
}

int chat_tokenize(const tokenizer *tok, const chat_turn *turns, size_t n, bool add_generation_prompt,
                  int32_t **ret, size_t *n_ret, char *err, size_t errlen) {
        _cleanup_free_ turn_view *views = NULL;
        id_buf b = {};
        size_t n_views;
        int32_t sot, eot, bos;
        int r;

        sot = tokenizer_find(tok, START_OF_TURN);
        eot = tokenizer_find(tok, END_OF_TURN);
        if (sot < 0 || eot < 0)
                return set_error(err, errlen, -EOPNOTSUPP, "the vocabulary has no Gemma turn markers");
        views = calloc(MAX(n, (size_t)1), sizeof *views);
        if (!views)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        r = plan(turns, n, views, &n_views, err, errlen);
        if (r < 0)
                return r;

        bos = tokenizer_bos(tok);
        if (bos >= 0 && tokenizer_add_bos(tok))
                r = push(&b, &bos, 1);
        /* Between two markers the text is one fragment, tokenized at once as
         * the reference tokenizes the rendered string: role, newline, the
         * system prefix, the turn's text. */
        for (size_t i = 0; r >= 0 && i < n_views; i++) {
                const turn_view *v = &views[i];
                size_t rl = strlen(v->role), len = rl + 1 + v->text_len;
                _cleanup_free_ char *frag = NULL;

                if (v->prefix && ADD_OVERFLOW(len, v->prefix_len + 2, &len)) {
                        r = -EOVERFLOW;
                        break;
                }
                frag = malloc(len);
                if (!frag) {
                        r = -ENOMEM;
                        break;
                }
                size_t at = 0;
                memcpy(frag, v->role, rl);
                at += rl;
                frag[at++] = '\n';
                if (v->prefix) {
                        memcpy(frag + at, v->prefix, v->prefix_len);
                        at += v->prefix_len;
                        frag[at++] = '\n';
                        frag[at++] = '\n';
                }
                memcpy(frag + at, v->text, v->text_len);
                if ((r = push(&b, &sot, 1)) < 0 || (r = push_text(tok, &b, frag, len)) < 0 ||
                    (r = push(&b, &eot, 1)) < 0 || (r = push_text(tok, &b, "\n", 1)) < 0)
                        break;
        }
        if (r >= 0 && add_generation_prompt && ((r = push(&b, &sot, 1)) >= 0))
                r = push_text(tok, &b, "model\n", 6);
        if (r < 0) {
                free(b.ids);
                return set_error(err, errlen, r, "cannot tokenize the prompt: %s", strerror(-r));
        }
        *ret = b.ids;
        *n_ret = b.n;
        return 0;
}

bool chat_is_end_of_turn(const tokenizer *tok, int32_t id) {
        return id >= 0 && (id == tokenizer_find(tok, END_OF_TURN) || id == tokenizer_eos(tok) ||
                           tokenizer_is_eog(tok, id));
}
