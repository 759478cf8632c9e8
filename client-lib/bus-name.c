/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "bus-name.h"

bool bus_name_available(sd_bus *bus, const char *name) {
        sd_bus_message *reply = NULL;
        int has = 0, r;

        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "NameHasOwner", NULL, &reply, "s", name);
        if (r >= 0)
                r = sd_bus_message_read(reply, "b", &has);
        reply = sd_bus_message_unref(reply);
        if (r >= 0 && has)
                return true;
        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "ListActivatableNames", NULL, &reply, "");
        if (r >= 0 && sd_bus_message_enter_container(reply, 'a', "s") > 0) {
                const char *n;
                while (sd_bus_message_read_basic(reply, 's', &n) > 0)
                        if (strcmp(n, name) == 0) {
                                has = 1;
                                break;
                        }
        }
        sd_bus_message_unref(reply);
        return has;
}
