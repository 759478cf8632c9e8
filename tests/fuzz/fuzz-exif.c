/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the EXIF orientation parser on an APP1 payload
 * ("Exif\0\0" is prepended so every input reaches the TIFF parser), and
 * the orientation it finds applied to a small odd-sized image. */
#include <string.h>

#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t *buf = malloc(size + 6);
        if (!buf)
                return 0;
        memcpy(buf, "Exif\0\0", 6);
        if (size)
                memcpy(buf + 6, data, size);
        int o = exif_parse_orientation(buf, size + 6);
        free(buf);
        if (o < -EBADMSG || o > 8)
                __builtin_trap();
        if (o >= 1) {
                Image *img = image_new(3, 2, 4);
                if (!img)
                        return 0;
                for (size_t i = 0; i < img->stride * img->height; i++)
                        img->pixels[i] = (uint8_t) i;
                if (image_apply_orientation(&img, (unsigned) o) < 0)
                        __builtin_trap();
                if (img->width * img->height != 6 || img->pixels[0] + img->pixels[4] > 2 * 23)
                        __builtin_trap();
                image_free(img);
        }
        return 0;
}
