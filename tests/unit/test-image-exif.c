/* SPDX-License-Identifier: MIT */
/* The EXIF orientation parser on hostile blocks (every truncation, offsets
 * past the end, counts that would overflow, wrong types and values) and
 * image_apply_orientation() on all 8 orientations against the TIFF 6.0
 * definitions. */
#include <errno.h>

#include "image.h"
#include "test.h"

/* "Exif\0\0" + TIFF header + IFD0 with `n` entries, Orientation last. */
static size_t make_block(uint8_t *b, bool be, unsigned orientation, uint16_t type, uint32_t ifd_offset) {
        size_t k = 0;
#define P16(v) do { unsigned _v = (v); b[k++] = be ? _v >> 8 : _v & 0xff; b[k++] = be ? _v & 0xff : _v >> 8; } while (0)
#define P32(v) do { uint32_t _w = (v); if (be) { P16(_w >> 16); P16(_w & 0xffff); } else { P16(_w & 0xffff); P16(_w >> 16); } } while (0)
        memcpy(b, "Exif\0\0", 6);
        k = 6;
        b[k++] = be ? 'M' : 'I';
        b[k++] = be ? 'M' : 'I';
        P16(42);
        P32(ifd_offset);
        while (k < 6 + ifd_offset)
                b[k++] = 0;
        P16(2);
        P16(0x010f); P16(2); P32(4); b[k++] = 'a'; b[k++] = 'b'; b[k++] = 'c'; b[k++] = 0; /* Make */
        P16(0x0112); P16(type); P32(1); P16(orientation); P16(0);
        P32(0);
#undef P16
#undef P32
        return k;
}

static void test_parser(void) {
        uint8_t b[128];
        size_t n;

        for (unsigned o = 1; o <= 8; o++) {
                n = make_block(b, false, o, 3, 8);
                CHECK_EQ_INT(exif_parse_orientation(b, n), o);
                n = make_block(b, true, o, 3, 20);
                CHECK_EQ_INT(exif_parse_orientation(b, n), o);
        }
        /* Out-of-range values mean "no orientation". */
        n = make_block(b, false, 0, 3, 8);
        CHECK_EQ_INT(exif_parse_orientation(b, n), 0);
        n = make_block(b, false, 9, 3, 8);
        CHECK_EQ_INT(exif_parse_orientation(b, n), 0);
        /* Wrong type (LONG) is refused, not misread. */
        n = make_block(b, false, 6, 4, 8);
        CHECK_EQ_INT(exif_parse_orientation(b, n), -EBADMSG);
        /* Not EXIF: 0. */
        CHECK_EQ_INT(exif_parse_orientation((const uint8_t *) "JFIF\0\0", 6), 0);
        CHECK_EQ_INT(exif_parse_orientation(NULL, 0), 0);

        /* Every truncation: never a read past the end (ASan build), always
         * an error, never a made-up orientation. */
        n = make_block(b, true, 6, 3, 8);
        for (size_t len = 6; len < n - 4; len++) {
                uint8_t *copy = malloc(len);
                CHECK(copy);
                memcpy(copy, b, len);
                int r = exif_parse_orientation(copy, len);
                CHECK_MSG(r == -EBADMSG, "cut at %zu: %d", len, r);
                free(copy);
        }

        /* IFD offset past the end, and near UINT32_MAX (no wrap). */
        n = make_block(b, false, 6, 3, 8);
        b[10] = 0xf0; b[11] = 0xff; b[12] = 0xff; b[13] = 0xff;
        CHECK_EQ_INT(exif_parse_orientation(b, n), -EBADMSG);
        b[10] = 100; b[11] = 0; b[12] = 0; b[13] = 0;
        CHECK_EQ_INT(exif_parse_orientation(b, n), -EBADMSG);
        /* An entry count claiming more entries than the block holds. */
        n = make_block(b, false, 6, 3, 8);
        b[14] = 0xff; b[15] = 0xff;
        CHECK_EQ_INT(exif_parse_orientation(b, n), -EBADMSG);
        /* Bad byte order mark, bad magic. */
        n = make_block(b, false, 6, 3, 8);
        b[6] = 'X';
        CHECK_EQ_INT(exif_parse_orientation(b, n), -EBADMSG);
        n = make_block(b, false, 6, 3, 8);
        b[8] = 43;
        CHECK_EQ_INT(exif_parse_orientation(b, n), -EBADMSG);
        printf("EXIF parser: 16 valid blocks, all truncations and broken offsets handled\n");
}

/* 3x2 image with distinct pixels; check each orientation against the
 * definitions: o2 mirror, o3 180, o4 flip, o5 transpose, o6 90 cw,
 * o7 transverse, o8 90 ccw. */
static void test_apply(void) {
        /* stored:  a b c
         *          d e f            */
        static const char *const want[9] = {
                [1] = "abc" "def",
                [2] = "cba" "fed",
                [3] = "fed" "cba",
                [4] = "def" "abc",
                [5] = "ad" "be" "cf",
                [6] = "da" "eb" "fc",
                [7] = "fc" "eb" "da",
                [8] = "cf" "be" "ad",
        };
        for (unsigned o = 1; o <= 8; o++) {
                Image *img = image_new(3, 2, 3);
                CHECK(img);
                for (int i = 0; i < 6; i++)
                        memset(img->pixels + i * 3, 'a' + i, 3);
                CHECK_OK(image_apply_orientation(&img, o));
                CHECK_EQ_INT(img->width, o >= 5 ? 2 : 3);
                CHECK_EQ_INT(img->height, o >= 5 ? 3 : 2);
                for (int i = 0; i < 6; i++)
                        CHECK_MSG(img->pixels[i * 3] == want[o][i], "orientation %u pixel %d: %c, want %c", o, i,
                                  img->pixels[i * 3], want[o][i]);
                image_free(img);
        }
        Image *img = image_new(3, 2, 4);
        CHECK(img);
        CHECK_EQ_INT(image_apply_orientation(&img, 0), -EINVAL);
        CHECK_EQ_INT(image_apply_orientation(&img, 9), -EINVAL);
        image_free(img);
        printf("all 8 orientations turn the pixels as TIFF 6.0 defines\n");
}

int main(void) {
        test_parser();
        test_apply();
        return 0;
}
