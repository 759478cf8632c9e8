/* SPDX-License-Identifier: MIT */
#include "unicode.h"

uint32_t unicode_decode_utf8(const char *s, size_t len, size_t *i) {
        const uint8_t *p = (const uint8_t *)s + *i;
        size_t left = len - *i;
        uint32_t cpt;
        size_t n;

        if (p[0] < 0x80) {
                *i += 1;
                return p[0];
        }
        if (p[0] < 0xC0) /* a stray continuation byte */
                goto invalid;
        if (p[0] < 0xE0) {
                n = 2;
                cpt = p[0] & 0x1F;
        } else if (p[0] < 0xF0) {
                n = 3;
                cpt = p[0] & 0x0F;
        } else if (p[0] < 0xF8) {
                n = 4;
                cpt = p[0] & 0x07;
        } else
                goto invalid;
        if (left < n)
                goto invalid;
        for (size_t k = 1; k < n; k++) {
                if ((p[k] & 0xC0) != 0x80)
                        goto invalid;
                cpt = (cpt << 6) | (p[k] & 0x3F);
        }
        *i += n;
        /* The reference throws on these later; we keep going with U+FFFD. */
        return cpt < UNICODE_MAX_CPT ? cpt : 0xFFFD;

invalid:
        *i += 1;
        return 0xFFFD;
}

size_t unicode_encode_utf8(uint32_t cpt, char out[static 4]) {
        if (cpt < 0x80) {
                out[0] = (char)cpt;
                return 1;
        }
        if (cpt < 0x800) {
                out[0] = (char)(0xC0 | (cpt >> 6));
                out[1] = (char)(0x80 | (cpt & 0x3F));
                return 2;
        }
        if (cpt < 0x10000) {
                out[0] = (char)(0xE0 | (cpt >> 12));
                out[1] = (char)(0x80 | ((cpt >> 6) & 0x3F));
                out[2] = (char)(0x80 | (cpt & 0x3F));
                return 3;
        }
        out[0] = (char)(0xF0 | ((cpt >> 18) & 0x07));
        out[1] = (char)(0x80 | ((cpt >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cpt >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cpt & 0x3F));
        return 4;
}

/* GPT-2's bytes_to_unicode(): the printable Latin-1 bytes ('!'..'~',
 * '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68 bytes, in
 * increasing order, map to U+0100, U+0101, ... */
static int byte_is_printable(unsigned b) {
        return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t unicode_byte_to_cpt(uint8_t byte) {
        if (byte_is_printable(byte))
                return byte;
        /* rank among the non-printable bytes below this one */
        unsigned n = 0;
        for (unsigned b = 0; b < byte; b++)
                n += !byte_is_printable(b);
        return 256 + n;
}

int unicode_cpt_to_byte(uint32_t cpt) {
        if (cpt < 256)
                return byte_is_printable(cpt) ? (int)cpt : -1;
        if (cpt >= 256 + 68)
                return -1;
        unsigned n = cpt - 256;
        for (unsigned b = 0; b < 256; b++)
                if (!byte_is_printable(b) && n-- == 0)
                        return (int)b;
        return -1;
}
