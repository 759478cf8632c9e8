/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/options.h"
#include "macro.h"

enum { OPT_TEMPERATURE, OPT_TOP_K, OPT_TOP_P, OPT_MIN_P, OPT_REPEAT, OPT_SEED, OPT_MAX_TOKENS, OPT_STOP, OPT_RAW, _OPT_MAX };

static const char *const option_names[_OPT_MAX] = {
        [OPT_TEMPERATURE] = "temperature", [OPT_TOP_K] = "top-k",         [OPT_TOP_P] = "top-p",
        [OPT_MIN_P] = "min-p",             [OPT_REPEAT] = "repeat-penalty", [OPT_SEED] = "seed",
        [OPT_MAX_TOKENS] = "max-tokens",   [OPT_STOP] = "stop",             [OPT_RAW] = "raw",
};

static int invalid(sd_bus_error *error, const char *fmt, const char *key) {
        return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, fmt, key);
}

/* Any integer type, as a signed 128-bit-safe pair: value and whether it is
 * negative.  Returns 0, or -EMEDIUMTYPE when the variant holds no integer. */
static int read_integer(sd_bus_message *m, char type, uint64_t *mag, bool *neg) {
        union {
                uint8_t y;
                int16_t n;
                uint16_t q;
                int32_t i;
                uint32_t u;
                int64_t x;
                uint64_t t;
        } v;
        int r = sd_bus_message_read_basic(m, type, &v);
        if (r < 0)
                return r;
        int64_t s;
        *neg = false;
        switch (type) {
        case 'y': *mag = v.y; return 0;
        case 'q': *mag = v.q; return 0;
        case 'u': *mag = v.u; return 0;
        case 't': *mag = v.t; return 0;
        case 'n': s = v.n; break;
        case 'i': s = v.i; break;
        case 'x': s = v.x; break;
        default: return -EMEDIUMTYPE;
        }
        *neg = s < 0;
        *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
        return 0;
}

static bool is_integer_type(char c) {
        return c && strchr("yqutnix", c);
}

int options_read(sd_bus_message *m, const gen_params *defaults, gen_params *ret, sd_bus_error *error) {
        gen_params p;
        int r;

        if (defaults) {
                r = gen_params_copy(&p, defaults);
                if (r < 0)
                        return r;
        } else
                gen_params_default(&p);
        r = options_parse(m, &p, error);
        if (r < 0) {
                gen_params_done(&p);
                return r;
        }
        *ret = p;
        return 0;
}

int options_parse(sd_bus_message *m, gen_params *p, sd_bus_error *error) {
        bool seen[_OPT_MAX] = {};
        gen_params new = *p;
        char *stop[WIRE_MAX_STOP] = {};
        uint32_t n_stop = 0;
        bool stop_given = false;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *key, *contents;
                char type;
                int k;

                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r < 0)
                        goto fail;
                if (r == 0)
                        break;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        goto fail;
                for (k = 0; k < _OPT_MAX; k++)
                        if (STREQ(key, option_names[k]))
                                break;
                if (k == _OPT_MAX) {
                        r = sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                              "Unknown option '%.64s'. Known options: temperature, top-k, top-p, "
                                              "min-p, repeat-penalty, seed, max-tokens, stop, raw.",
                                              key);
                        goto fail;
                }
                if (seen[k]) {
                        r = invalid(error, "Option '%s' is given twice.", option_names[k]);
                        goto fail;
                }
                seen[k] = true;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        goto fail;
                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r < 0)
                        goto fail;
                char t = contents[0] && !contents[1] ? contents[0] : 0;

                if (k == OPT_STOP) {
                        if (!STREQ(contents, "as")) {
                                r = invalid(error, "Option '%s' must be an array of strings (as).", option_names[k]);
                                goto fail;
                        }
                        r = sd_bus_message_enter_container(m, 'a', "s");
                        if (r < 0)
                                goto fail;
                        const char *s;
                        while ((r = sd_bus_message_read_basic(m, 's', &s)) > 0) {
                                size_t n = strlen(s);
                                if (n_stop >= WIRE_MAX_STOP || n < 1 || n > WIRE_MAX_STOP_LEN) {
                                        r = sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                                              "Option 'stop' takes at most %u strings of 1 to %u bytes.",
                                                              WIRE_MAX_STOP, WIRE_MAX_STOP_LEN);
                                        goto fail;
                                }
                                stop[n_stop] = strdup(s);
                                if (!stop[n_stop]) {
                                        r = -ENOMEM;
                                        goto fail;
                                }
                                n_stop++;
                        }
                        if (r < 0)
                                goto fail;
                        r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                goto fail;
                        stop_given = true;
                } else if (k == OPT_RAW) {
                        int b;
                        if (t != 'b') {
                                r = invalid(error, "Option '%s' must be a boolean (b).", option_names[k]);
                                goto fail;
                        }
                        r = sd_bus_message_read_basic(m, 'b', &b);
                        if (r < 0)
                                goto fail;
                        new.raw = b;
                } else if (k == OPT_TEMPERATURE || k == OPT_TOP_P || k == OPT_MIN_P || k == OPT_REPEAT) {
                        double d;
                        if (t == 'd') {
                                r = sd_bus_message_read_basic(m, 'd', &d);
                                if (r < 0)
                                        goto fail;
                        } else if (is_integer_type(t)) {
                                uint64_t mag;
                                bool neg;
                                r = read_integer(m, t, &mag, &neg);
                                if (r < 0)
                                        goto fail;
                                d = neg ? -(double)mag : (double)mag;
                        } else {
                                r = invalid(error, "Option '%s' must be a number (d).", option_names[k]);
                                goto fail;
                        }
                        if (!isfinite(d) || d < -1e6 || d > 1e6) {
                                r = invalid(error, "Option '%s' must be a finite number in its range.",
                                            option_names[k]);
                                goto fail;
                        }
                        float *dst = k == OPT_TEMPERATURE ? &new.temperature
                                   : k == OPT_TOP_P       ? &new.top_p
                                   : k == OPT_MIN_P       ? &new.min_p
                                                          : &new.repeat_penalty;
                        *dst = (float)d;
                } else {
                        uint64_t mag;
                        bool neg;
                        if (!is_integer_type(t)) {
                                r = invalid(error, "Option '%s' must be an integer.", option_names[k]);
                                goto fail;
                        }
                        r = read_integer(m, t, &mag, &neg);
                        if (r < 0)
                                goto fail;
                        if (k == OPT_SEED) {
                                if (neg) {
                                        r = invalid(error, "Option '%s' must not be negative.", option_names[k]);
                                        goto fail;
                                }
                                new.seed = mag;
                        } else {
                                /* Out of range values must not wrap into range. */
                                if (neg || mag > 1000000) {
                                        r = sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                                              "Option '%s' is out of range (%s%" PRIu64 ").",
                                                              option_names[k], neg ? "-" : "", mag);
                                        goto fail;
                                }
                                if (k == OPT_TOP_K)
                                        new.top_k = (int32_t)mag;
                                else
                                        new.max_tokens = (uint32_t)mag;
                        }
                }
                r = sd_bus_message_exit_container(m); /* v */
                if (r < 0)
                        goto fail;
                r = sd_bus_message_exit_container(m); /* e */
                if (r < 0)
                        goto fail;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                goto fail;

        if (stop_given) {
                new.n_stop = n_stop;
                memcpy(new.stop, stop, sizeof stop);
        } else {
                /* Keep the stop strings of *p, as copies, so that *p and the
                 * result own theirs separately. */
                new.n_stop = 0;
                for (uint32_t i = 0; i < p->n_stop; i++) {
                        new.stop[i] = strdup(p->stop[i]);
                        if (!new.stop[i]) {
                                gen_params_done(&new);
                                return -ENOMEM;
                        }
                        new.n_stop = i + 1;
                }
        }
        char msg[160];
        r = gen_params_check(&new, msg, sizeof msg);
        if (r < 0) {
                gen_params_done(&new);
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "Invalid options: %s.", msg);
        }
        gen_params_done(p);
        *p = new;
        return 0;
fail:
        for (uint32_t i = 0; i < n_stop; i++)
                free(stop[i]);
        if (sd_bus_error_is_set(error) || r == -ENOMEM)
                return r;
        return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "The options are not a valid a{sv}.");
}
