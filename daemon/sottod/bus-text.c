/* SPDX-License-Identifier: MIT */
/* org.sotto.Sotto1.Text: one-shot prompts and opening chats. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon/sottod/authorize.h"
#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/manager.h"
#include "daemon/sottod/options.h"

static int method_ask(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *prompt;
        _cleanup_(gen_params_done) gen_params p = {};
        int fd, r;

        r = authorize(m, msg, SOTTO_ACTION_GENERATE, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* refused, or asked polkit: back here with the answer */
        r = sd_bus_message_read(msg, "s", &prompt);
        if (r < 0)
                return r;
        r = options_read(msg, NULL, &p, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "h", &fd);
        if (r < 0)
                return r;
        return submit_request(m, msg, NULL, prompt, &p, fd, error);
}

static int method_open_chat(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        gen_params p;
        Caller *c;
        int r;

        r = authorize(m, msg, SOTTO_ACTION_GENERATE, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = options_read(msg, NULL, &p, error);
        if (r < 0)
                return r;
        if (m->stopping) {
                gen_params_done(&p);
                return sd_bus_error_setf(error, SOTTO_ERROR_SHUTTING_DOWN, "sottod is stopping; try again later.");
        }
        r = caller_get(m, sd_bus_message_get_sender(msg) ?: ":unknown", &c);
        if (r < 0) {
                gen_params_done(&p);
                return r;
        }
        if (c->n_chats >= m->config.max_chats_per_caller || m->n_chats >= m->config.max_chats) {
                gen_params_done(&p);
                return sd_bus_error_setf(error, SOTTO_ERROR_BUSY,
                                         "Too many chats are open (%u of yours, %u in all); close one first.",
                                         c->n_chats, m->n_chats);
        }
        Chat *ch = calloc(1, sizeof *ch);
        if (!ch) {
                gen_params_done(&p);
                return -ENOMEM;
        }
        ch->manager = m;
        ch->id = m->next_chat_id++;
        ch->owner = c;
        ch->defaults = p;
        ch->n_ctx = m->worker && m->worker->ready ? m->worker->info.n_ctx : m->config.n_ctx;
        if (asprintf(&ch->path, SOTTO_CHAT_PREFIX "/%llu", (unsigned long long)ch->id) < 0) {
                gen_params_done(&ch->defaults);
                free(ch);
                return -ENOMEM;
        }
        ch->next = m->chats;
        if (m->chats)
                m->chats->prev = ch;
        m->chats = ch;
        m->n_chats++;
        c->n_chats++;
        m->stats.chats_opened++;
        return sd_bus_reply_method_return(msg, "o", ch->path);
}

const sd_bus_vtable text_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("Ask", "sa{sv}h", SD_BUS_PARAM(prompt) SD_BUS_PARAM(options) SD_BUS_PARAM(output),
                                 "a{sv}", SD_BUS_PARAM(statistics), method_ask, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("OpenChat", "a{sv}", SD_BUS_PARAM(options), "o", SD_BUS_PARAM(chat),
                                 method_open_chat, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};
