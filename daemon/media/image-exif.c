/* SPDX-License-Identifier: MIT */
/* The EXIF orientation tag from an APP1 "Exif" payload, and turning pixels
 * upright.  The payload is hostile: every offset is checked against the
 * size before it is read, with 64-bit arithmetic so nothing wraps. */
#include <errno.h>
#include <string.h>

#include "image.h"

#define EXIF_TAG_ORIENTATION 0x0112
#define TIFF_TYPE_SHORT 3

typedef struct Tiff {
        const uint8_t *p;       /* the TIFF header; offsets count from here */
        uint64_t size;
        bool big_endian;
} Tiff;

static bool tiff_u16(const Tiff *t, uint64_t off, uint16_t *ret) {
        if (off > t->size || t->size - off < 2)
                return false;
        const uint8_t *q = t->p + off;
        *ret = t->big_endian ? (uint16_t) (q[0] << 8 | q[1]) : (uint16_t) (q[1] << 8 | q[0]);
        return true;
}

static bool tiff_u32(const Tiff *t, uint64_t off, uint32_t *ret) {
        if (off > t->size || t->size - off < 4)
                return false;
        const uint8_t *q = t->p + off;
        if (t->big_endian)
                *ret = (uint32_t) q[0] << 24 | (uint32_t) q[1] << 16 | (uint32_t) q[2] << 8 | q[3];
        else
                *ret = (uint32_t) q[3] << 24 | (uint32_t) q[2] << 16 | (uint32_t) q[1] << 8 | q[0];
        return true;
}

int exif_parse_orientation(const uint8_t *data, size_t size) {
        static const uint8_t magic[6] = { 'E', 'x', 'i', 'f', 0, 0 };
        Tiff t;
        uint32_t ifd;
        uint16_t n, v16;

        if (!data || size < sizeof magic || memcmp(data, magic, sizeof magic) != 0)
                return 0; /* not EXIF at all */

        t = (Tiff) { .p = data + sizeof magic, .size = size - sizeof magic };
        if (t.size < 8)
                return -EBADMSG;
        if (t.p[0] == 'I' && t.p[1] == 'I')
                t.big_endian = false;
        else if (t.p[0] == 'M' && t.p[1] == 'M')
                t.big_endian = true;
        else
                return -EBADMSG;
        if (!tiff_u16(&t, 2, &v16) || v16 != 42)
                return -EBADMSG;
        if (!tiff_u32(&t, 4, &ifd) || ifd < 8)
                return -EBADMSG;

        /* IFD0: a count, then 12-byte entries (tag, type, count, value). */
        if (!tiff_u16(&t, ifd, &n))
                return -EBADMSG;
        if ((uint64_t) ifd + 2 + (uint64_t) n * 12 > t.size)
                return -EBADMSG;
        for (uint16_t i = 0; i < n; i++) {
                uint64_t e = (uint64_t) ifd + 2 + (uint64_t) i * 12;
                uint16_t tag, type, value;
                uint32_t count;

                if (!tiff_u16(&t, e, &tag) || !tiff_u16(&t, e + 2, &type) ||
                    !tiff_u32(&t, e + 4, &count))
                        return -EBADMSG;
                if (tag != EXIF_TAG_ORIENTATION)
                        continue;
                /* One SHORT fits in the value field, left-justified. */
                if (type != TIFF_TYPE_SHORT || count < 1)
                        return -EBADMSG;
                if (!tiff_u16(&t, e + 8, &value))
                        return -EBADMSG;
                return value >= 1 && value <= 8 ? value : 0;
        }
        return 0;
}

/* Where output pixel (x, y) of the upright image comes from in the stored
 * one (w x h), for EXIF orientations 1..8 (TIFF 6.0, tag 274):
 *   1 as is        2 mirrored        3 turned 180     4 flipped
 *   5 transposed   6 turned 90 cw    7 transversed    8 turned 90 ccw */
static inline void source_of(unsigned o, uint32_t w, uint32_t h, uint32_t x, uint32_t y,
                             uint32_t *sx, uint32_t *sy) {
        switch (o) {
        case 2: *sx = w - 1 - x; *sy = y; break;
        case 3: *sx = w - 1 - x; *sy = h - 1 - y; break;
        case 4: *sx = x; *sy = h - 1 - y; break;
        case 5: *sx = y; *sy = x; break;
        case 6: *sx = y; *sy = h - 1 - x; break;
        case 7: *sx = w - 1 - y; *sy = h - 1 - x; break;
        case 8: *sx = w - 1 - y; *sy = x; break;
        default: *sx = x; *sy = y; break;
        }
}

int image_apply_orientation(Image **img, unsigned orientation) {
        Image *src = *img;
        bool swap = orientation >= 5 && orientation <= 8;

        if (orientation < 1 || orientation > 8)
                return -EINVAL;
        if (orientation == 1)
                return 0;

        _cleanup_(image_freep) Image *dst = image_new(swap ? src->height : src->width,
                                                      swap ? src->width : src->height, src->channels);
        if (!dst)
                return -ENOMEM;
        dst->format = src->format;
        dst->orientation = orientation;

        const uint32_t c = src->channels;
        for (uint32_t y = 0; y < dst->height; y++) {
                uint8_t *out = dst->pixels + (size_t) y * dst->stride;
                for (uint32_t x = 0; x < dst->width; x++, out += c) {
                        uint32_t sx, sy;
                        source_of(orientation, src->width, src->height, x, y, &sx, &sy);
                        memcpy(out, src->pixels + (size_t) sy * src->stride + (size_t) sx * c, c);
                }
        }

        image_free(src);
        *img = TAKE_PTR(dst);
        return 0;
}
