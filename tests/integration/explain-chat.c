/* SPDX-License-Identifier: MIT */
/* Chat.SendImage through libsotto, for explain-e2e.sh:
 *   explain-chat ADDRESS IMAGE QUESTION FOLLOW-UP
 * opens a chat, sends the image with QUESTION, then FOLLOW-UP as text,
 * greedy, 24 tokens each; prints the two answers on lines "image: ..." and
 * "text: ...", and the context used after each turn. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client-lib/sotto.h"

typedef struct collect {
        char text[8192];
        size_t len;
} collect;

static int on_text(const char *t, size_t n, void *userdata) {
        collect *c = userdata;
        if (c->len + n < sizeof c->text) {
                memcpy(c->text + c->len, t, n);
                c->len += n;
                c->text[c->len] = 0;
        }
        return 0;
}

static int context_used(sotto *s, sotto_chat *c, uint32_t *ret) {
        return sd_bus_get_property_trivial(sotto_get_bus(s), SOTTO_BUS_NAME, sotto_chat_get_path(c),
                                           "org.sotto.Sotto1.Chat", "ContextUsed", NULL, 'u', ret);
}

int main(int argc, char **argv) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sotto_options o;
        sotto_stats st;
        sotto *s = NULL;
        sotto_chat *c = NULL;
        collect a = {}, b = {};
        uint32_t used1 = 0, used2 = 0;
        int r;

        if (argc != 5) {
                fprintf(stderr, "usage: explain-chat ADDRESS IMAGE QUESTION FOLLOW-UP\n");
                return 2;
        }
        int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        if (fd < 0 || sotto_connect_address(argv[1], &s) < 0) {
                fprintf(stderr, "explain-chat: cannot open %s or connect\n", argv[2]);
                return 1;
        }
        sotto_options_init(&o);
        o.temperature = 0;
        o.max_tokens = 24;
        r = sotto_chat_open(s, &o, &c, &e);
        if (r >= 0)
                r = sotto_chat_send_image(c, fd, argv[3], &o, on_text, &a, &st, &e);
        close(fd);
        if (r >= 0)
                r = context_used(s, c, &used1);
        if (r >= 0)
                r = sotto_chat_send(c, argv[4], &o, on_text, &b, &st, &e);
        if (r >= 0)
                r = context_used(s, c, &used2);
        if (r < 0) {
                fprintf(stderr, "explain-chat: %s (%s)\n", e.message ? e.message : strerror(-r),
                        e.name ? e.name : "-");
                return 1;
        }
        printf("image: %s\ntext: %s\nused: %u %u\n", a.text, b.text, used1, used2);
        sotto_chat_close(c);
        sotto_unref(s);
        return 0;
}
