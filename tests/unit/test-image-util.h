/* SPDX-License-Identifier: MIT */
/* Helpers for the image tests: finding ImageMagick, running it, reading
 * its PNM/PAM output, a scratch directory. */
#pragma once

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

/* ImageMagick's convert from $CONVERT or $PATH, or skip the test. */
static inline const char *test_find_convert(void) {
        static char found[4096];
        const char *env = getenv("CONVERT");
        if (env && *env)
                return env;
        const char *path = getenv("PATH");
        if (!path)
                path = "/usr/bin:/bin";
        while (*path) {
                size_t n = strcspn(path, ":");
                snprintf(found, sizeof found, "%.*s/convert", (int) n, path);
                if (n > 0 && access(found, X_OK) == 0)
                        return found;
                path += n;
                if (*path == ':')
                        path++;
        }
        printf("skipped: ImageMagick's convert not found (install the Debian package imagemagick)\n");
        exit(EXIT_TEST_SKIP);
}

_printf_(1, 2) static inline void test_run(const char *fmt, ...) {
        char cmd[8192];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof cmd, fmt, ap);
        va_end(ap);
        int r = system(cmd);
        CHECK_MSG(r == 0, "command failed (%d): %s", r, cmd);
}

static inline char *test_scratch_dir(void) {
        const char *tmp = getenv("TMPDIR");
        char *d = malloc(4096);
        CHECK(d);
        snprintf(d, 4096, "%s/sotto-image-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        CHECK(mkdtemp(d));
        return d;
}

static inline void test_remove_dir(const char *d) {
        DIR *dir = opendir(d);
        if (!dir)
                return;
        struct dirent *de;
        char p[4096];
        while ((de = readdir(dir))) {
                if (de->d_name[0] == '.')
                        continue;
                snprintf(p, sizeof p, "%s/%s", d, de->d_name);
                unlink(p);
        }
        closedir(dir);
        rmdir(d);
}

/* A decoded reference: 8-bit RGB or RGBA (grey expanded). */
typedef struct RefImage {
        uint32_t width, height, channels;
        uint8_t *pixels;
} RefImage;

static inline bool pnm_token(const uint8_t *p, size_t n, size_t *pos, char *tok, size_t toklen) {
        for (;;) {
                while (*pos < n && (p[*pos] == ' ' || p[*pos] == '\n' || p[*pos] == '\r' || p[*pos] == '\t'))
                        (*pos)++;
                if (*pos < n && p[*pos] == '#') {
                        while (*pos < n && p[*pos] != '\n')
                                (*pos)++;
                        continue;
                }
                break;
        }
        size_t k = 0;
        while (*pos < n && !strchr(" \n\r\t", p[*pos]) && k + 1 < toklen)
                tok[k++] = (char) p[(*pos)++];
        tok[k] = 0;
        return k > 0;
}

/* P5, P6 or P7 (GRAYSCALE, GRAYSCALE_ALPHA, RGB, RGB_ALPHA), maxval 255 or
 * 65535.  16-bit samples are rounded to the nearest 8-bit value,
 * round(v / 257) = (v + 128) / 257 (no ties: 257 is odd): ImageMagick's own
 * -depth 8 truncates instead, so the tests take its exact 16-bit decode and
 * reduce it here. */
static inline RefImage test_read_pnm(const char *path) {
        size_t n = 0, pos = 2;
        uint8_t *p = test_read_file(path, &n);
        char tok[64];
        unsigned w = 0, h = 0, depth = 0, maxval = 0;
        bool alpha = false;
        RefImage ref = {};

        CHECK_MSG(p && n > 2, "cannot read %s", path);
        if (p[0] == 'P' && (p[1] == '5' || p[1] == '6')) {
                depth = p[1] == '5' ? 1 : 3;
                CHECK(pnm_token(p, n, &pos, tok, sizeof tok)); w = atoi(tok);
                CHECK(pnm_token(p, n, &pos, tok, sizeof tok)); h = atoi(tok);
                CHECK(pnm_token(p, n, &pos, tok, sizeof tok)); maxval = atoi(tok);
                pos++; /* one whitespace byte */
        } else if (p[0] == 'P' && p[1] == '7') {
                for (;;) {
                        CHECK(pnm_token(p, n, &pos, tok, sizeof tok));
                        if (!strcmp(tok, "ENDHDR"))
                                break;
                        char val[64];
                        CHECK(pnm_token(p, n, &pos, val, sizeof val));
                        if (!strcmp(tok, "WIDTH")) w = atoi(val);
                        else if (!strcmp(tok, "HEIGHT")) h = atoi(val);
                        else if (!strcmp(tok, "DEPTH")) depth = atoi(val);
                        else if (!strcmp(tok, "MAXVAL")) maxval = atoi(val);
                        else if (!strcmp(tok, "TUPLTYPE")) alpha = strstr(val, "ALPHA") != NULL;
                }
                pos++;
        } else
                CHECK_MSG(false, "%s: not a PNM/PAM file", path);
        CHECK_MSG(maxval == 255 || maxval == 65535, "%s: maxval %u", path, maxval);
        CHECK_MSG(depth >= 1 && depth <= 4, "%s: depth %u", path, depth);
        size_t bps = maxval == 65535 ? 2 : 1;
        CHECK_MSG(n - pos >= (size_t) w * h * depth * bps, "%s: short pixel data", path);
        if (bps == 2) {
                /* Reduce in place to 8 bits. */
                for (size_t i = 0; i < (size_t) w * h * depth; i++) {
                        unsigned v = (unsigned) p[pos + 2 * i] << 8 | p[pos + 2 * i + 1];
                        p[pos + i] = (uint8_t) ((v + 128) / 257);
                }
        }

        ref.width = w;
        ref.height = h;
        ref.channels = (depth == 2 || depth == 4 || alpha) ? 4 : 3;
        ref.pixels = malloc((size_t) w * h * ref.channels);
        CHECK(ref.pixels);
        const uint8_t *s = p + pos;
        for (size_t i = 0; i < (size_t) w * h; i++, s += depth) {
                uint8_t *d = ref.pixels + i * ref.channels;
                if (depth <= 2) {
                        d[0] = d[1] = d[2] = s[0];
                        if (ref.channels == 4)
                                d[3] = depth == 2 ? s[1] : 255;
                } else {
                        memcpy(d, s, 3);
                        if (ref.channels == 4)
                                d[3] = depth == 4 ? s[3] : 255;
                }
        }
        free(p);
        return ref;
}
