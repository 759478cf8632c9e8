/* SPDX-License-Identifier: MIT */
/* org.sotto.Sotto1.Service: state, the loaded model, load, statistics. */
#include "daemon/sottod/authorize.h"
#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/manager.h"

#ifndef SOTTO_VERSION
#define SOTTO_VERSION "0.1"
#endif

static const wire_ready *model_info(Manager *m) {
        return m->worker && m->worker->ready ? &m->worker->info : NULL;
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const wire_ready *info = model_info(m);

        if (STREQ(property, "State"))
                return sd_bus_message_append(reply, "s", m->state);
        if (STREQ(property, "StateReason"))
                return sd_bus_message_append(reply, "s", m->state_reason);
        if (STREQ(property, "Version"))
                return sd_bus_message_append(reply, "s", SOTTO_VERSION);
        if (STREQ(property, "ModelName"))
                return sd_bus_message_append(reply, "s", info ? info->name : "");
        if (STREQ(property, "ModelArchitecture"))
                return sd_bus_message_append(reply, "s", info ? info->arch : "");
        if (STREQ(property, "ModelFile"))
                return sd_bus_message_append(reply, "s", m->model_file ? m->model_file : "");
        if (STREQ(property, "ContextSize"))
                return sd_bus_message_append(reply, "u", info ? info->n_ctx : 0u);
        if (STREQ(property, "Capabilities")) {
                /* "image": a vision projector; "audio": a speech model (bus-dictation.c). */
                const char *caps[3];
                size_t n = 0;
                if (!info)
                        return sd_bus_message_append(reply, "as", 0);
                caps[n++] = "text";
                if (info->caps & WIRE_CAP_IMAGE)
                        caps[n++] = "image";
                if (m->whisper_fd >= 0)
                        caps[n++] = "audio";
                return n == 3 ? sd_bus_message_append(reply, "as", 3, caps[0], caps[1], caps[2])
                       : n == 2 ? sd_bus_message_append(reply, "as", 2, caps[0], caps[1])
                                : sd_bus_message_append(reply, "as", 1, caps[0]);
        }
        if (STREQ(property, "QueueLength"))
                return sd_bus_message_append(reply, "u", m->n_queued);
        if (STREQ(property, "ActiveRequests"))
                return sd_bus_message_append(reply, "u", m->n_active);
        return -ENOENT;
}

int manager_statistics(Manager *m, sd_bus_message *reply) {
        const Statistics *s = &m->stats;
        wire_stats d;
        decode_stats_total(m, &d);
        return sd_bus_message_append(
                reply, "a{sv}", 21, "requests", "t", s->requests, "completed", "t", s->completed, "failed", "t",
                s->failed, "cancelled", "t", s->cancelled, "rejected", "t", s->rejected, "tokens-generated", "t",
                s->tokens_generated, "prompt-tokens", "t", s->prompt_tokens, "worker-starts", "t", s->worker_starts,
                "worker-crashes", "t", s->worker_crashes, "worker-pid", "u",
                (uint32_t)(m->worker ? m->worker->pid : 0), "cancel-max-extra-tokens", "t",
                s->cancel_max_extra_tokens, "cancel-max-usec", "t", s->cancel_max_usec, "chats-open", "u",
                m->n_chats, "callers", "u", (uint32_t)({
                        uint32_t n = 0;
                        for (Caller *c = m->callers; c; c = c->next)
                                n++;
                        n;
                }), "decode-steps", "t", d.decode_steps, "batched-steps", "t", d.batched_steps, "batched-tokens", "t",
                d.batched_tokens, "max-batch", "u", d.max_batch, "weights-shared-bytes", "t",
                weights_shared_memory(m),
                "weights-builds", "t", s->weights_builds, "weights-handed", "t", s->weights_handed);
}

static int method_get_statistics(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = manager_statistics(userdata, reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

const sd_bus_vtable service_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("State", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StateReason", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Version", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ModelName", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ModelArchitecture", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ModelFile", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ContextSize", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Capabilities", "as", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("QueueLength", "u", property_get, 0, 0),
        SD_BUS_PROPERTY("ActiveRequests", "u", property_get, 0, 0),
        SD_BUS_METHOD_WITH_NAMES("GetStatistics", "", , "a{sv}", SD_BUS_PARAM(statistics), method_get_statistics,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Authorize", "s", SD_BUS_PARAM(action), "", , method_authorize,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};
