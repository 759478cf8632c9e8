/* SPDX-License-Identifier: MIT */
/* The a{sv} options of Ask, OpenChat and Chat.Send (see the XML for the
 * keys).  Every value is checked for type and range; an unknown key, a
 * duplicate key or a wrongly typed value is InvalidInput with a sentence. */
#pragma once

#include <systemd/sd-bus.h>

#include "daemon/common/wire.h"

/* Reads one a{sv} from m, applying it on top of *p (which the caller has
 * filled with the defaults).  On error *p is left with its stop strings
 * freed or intact as before, and error is set. */
int options_parse(sd_bus_message *m, gen_params *p, sd_bus_error *error);

/* The parameters of one call: defaults (NULL: gen_params_default()) with
 * the a{sv} read from m on top, in *ret (owning copies).  On error *ret is
 * untouched and error may be set. */
int options_read(sd_bus_message *m, const gen_params *defaults, gen_params *ret, sd_bus_error *error);
