/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gemma-matformer.h"
#include "macro.h"

void gemma_matformer_done(gemma_matformer *mf) {
        free(mf->layer);
        free(mf->n_ff);
        *mf = (gemma_matformer){};
}

/* A decimal number in [0, max]; advances *p. */
static int number(const char **p, long max, long *ret) {
        const char *s = *p;
        long v = 0;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        for (; *s >= '0' && *s <= '9'; s++) {
                v = v * 10 + (*s - '0');
                if (v > max)
                        return -ERANGE;
        }
        *p = s;
        *ret = v;
        return 0;
}

int gemma_matformer_parse(const char *spec, int32_t n_layer_file, gemma_matformer *ret, char *err, size_t errlen) {
        _cleanup_free_ bool *skip = NULL;
        _cleanup_free_ int32_t *ff = NULL;
        int32_t n_ff = 0, n_keep = 0;
        const char *p = spec ? spec : "";
        long a, b;

        *ret = (gemma_matformer){};
        skip = calloc((size_t)n_layer_file, sizeof(bool));
        ff = calloc((size_t)n_layer_file, sizeof(int32_t));
        if (!skip || !ff)
                return set_error(err, errlen, -ENOMEM, "out of memory");

        while (*p) {
                if (strncmp(p, "skip=", 5) == 0) {
                        p += 5;
                        for (;;) {
                                if (number(&p, n_layer_file - 1, &a) < 0)
                                        return set_error(err, errlen, -EINVAL,
                                                         "matformer: skip= wants layer indices below %d",
                                                         n_layer_file);
                                b = a;
                                if (*p == '-') {
                                        p++;
                                        if (number(&p, n_layer_file - 1, &b) < 0 || b < a)
                                                return set_error(err, errlen, -EINVAL,
                                                                 "matformer: bad layer range in skip=");
                                }
                                for (long i = a; i <= b; i++)
                                        skip[i] = true;
                                if (*p != ',')
                                        break;
                                p++;
                        }
                } else if (strncmp(p, "ff=", 3) == 0) {
                        p += 3;
                        for (n_ff = 0;; n_ff++) {
                                if (n_ff >= n_layer_file || number(&p, 1L << 24, &a) < 0 || a == 0)
                                        return set_error(err, errlen, -EINVAL,
                                                         "matformer: ff= wants positive widths, at most one per layer");
                                ff[n_ff] = (int32_t)a;
                                if (*p != ',')
                                        break;
                                p++;
                        }
                        n_ff++;
                } else
                        return set_error(err, errlen, -EINVAL, "matformer: unknown setting at '%.32s'", p);
                if (*p == ';')
                        p++;
                else if (*p)
                        return set_error(err, errlen, -EINVAL, "matformer: expected ';' at '%.32s'", p);
        }

        for (int32_t i = 0; i < n_layer_file; i++)
                n_keep += !skip[i];
        if (n_keep == 0)
                return set_error(err, errlen, -EINVAL, "matformer: every layer skipped");
        if (n_ff > 1 && n_ff != n_keep)
                return set_error(err, errlen, -EINVAL, "matformer: %d widths for %d kept layers", n_ff, n_keep);

        ret->layer = calloc((size_t)n_keep, sizeof(int32_t));
        ret->n_ff = calloc((size_t)n_keep, sizeof(int32_t));
        if (!ret->layer || !ret->n_ff) {
                gemma_matformer_done(ret);
                return set_error(err, errlen, -ENOMEM, "out of memory");
        }
        for (int32_t i = 0, k = 0; i < n_layer_file; i++) {
                if (skip[i])
                        continue;
                ret->layer[k] = i;
                ret->n_ff[k] = n_ff == 0 ? 0 : n_ff == 1 ? ff[0] : ff[k];
                k++;
        }
        ret->n_layer = n_keep;
        return 0;
}
