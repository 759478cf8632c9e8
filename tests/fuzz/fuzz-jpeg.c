/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: JPEG decoding (marker walk, TurboJPEG, CMYK, EXIF
 * orientation) through image_decode_jpeg(). */
#include "fuzz-image-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ImageLimits l;
        char err[256];
        Image *img = NULL;

        image_limits_default(&l);
        l.max_width = l.max_height = 2048;
        l.max_pixels = 1 << 20;
        l.max_jpeg_scan_pixels = 16u << 20;
        if (image_decode_jpeg(data, size, &l, &img, err, sizeof err) == 0) {
                fuzz_check_decoded_image(img, size);
                if (img->channels != 3 || img->orientation < 1 || img->orientation > 8)
                        __builtin_trap();
        } else if (img || !err[0])
                __builtin_trap(); /* a failure must leave nothing behind and say why */
        image_free(img);
        return 0;
}
