/* SPDX-License-Identifier: MIT */
/* org.sotto.Sotto1.Chat at /org/sotto/Sotto1/chat/N.  A chat exists only
 * for its owner: to anyone else the object does not exist at all. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/sottod/authorize.h"
#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/manager.h"
#include "daemon/sottod/options.h"

int chat_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                     sd_bus_error *error) {
        Manager *m = userdata;
        const char *prefix = SOTTO_CHAT_PREFIX "/";
        size_t n = strlen(prefix);

        if (strncmp(path, prefix, n) != 0)
                return 0;
        sd_bus_message *msg = sd_bus_get_current_message(bus);
        const char *sender = msg ? sd_bus_message_get_sender(msg) : NULL;
        if (!sender)
                return 0;
        for (Chat *c = m->chats; c; c = c->next)
                if (STREQ(c->path, path) && STREQ(c->owner->name, sender)) {
                        *found = c;
                        return 1;
                }
        return 0;
}

int chat_node_enumerator(sd_bus *bus, const char *prefix, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        sd_bus_message *msg = sd_bus_get_current_message(bus);
        const char *sender = msg ? sd_bus_message_get_sender(msg) : NULL;
        size_t k = 0;
        char **l = calloc(m->n_chats + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (Chat *c = m->chats; c && sender; c = c->next)
                if (STREQ(c->owner->name, sender) && (l[k] = strdup(c->path)))
                        k++;
        *nodes = l;
        return 0;
}

static int method_send(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Chat *c = userdata;
        const char *text;
        _cleanup_(gen_params_done) gen_params p = {};
        int fd, r;

        r = authorize(c->manager, msg, SOTTO_ACTION_GENERATE, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* refused, or asked polkit: back here with the answer */
        r = sd_bus_message_read(msg, "s", &text);
        if (r < 0)
                return r;
        r = options_read(msg, &c->defaults, &p, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "h", &fd);
        if (r < 0)
                return r;
        return submit_request(c->manager, msg, c, text, &p, fd, error);
}

static int method_close(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        chat_free(userdata);
        return sd_bus_reply_method_return(msg, "");
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Chat *c = userdata;
        Manager *m = c->manager;
        if (STREQ(property, "ContextUsed"))
                return sd_bus_message_append(reply, "u", c->n_past);
        (void)m;
        return sd_bus_message_append(reply, "u", c->n_ctx);
}

const sd_bus_vtable chat_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("Send", "sa{sv}h", SD_BUS_PARAM(text) SD_BUS_PARAM(options) SD_BUS_PARAM(output),
                                 "a{sv}", SD_BUS_PARAM(statistics), method_send, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SendImage", "hsa{sv}h",
                                 SD_BUS_PARAM(image) SD_BUS_PARAM(text) SD_BUS_PARAM(options) SD_BUS_PARAM(output),
                                 "a{sv}", SD_BUS_PARAM(statistics), method_chat_send_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Close", "", "", method_close, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("ContextUsed", "u", property_get, 0, 0),
        SD_BUS_PROPERTY("ContextSize", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};
