/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: PNG decoding through image_decode_png(). */
#include "fuzz-image-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ImageLimits l;
        char err[256];
        Image *img = NULL;

        image_limits_default(&l);
        /* Small enough that a valid large image does not slow the fuzzer. */
        l.max_width = l.max_height = 2048;
        l.max_pixels = 1 << 20;
        if (image_decode_png(data, size, &l, &img, err, sizeof err) == 0) {
                fuzz_check_decoded_image(img, size);
                if (img->channels != 3 && img->channels != 4)
                        __builtin_trap();
        } else if (img || !err[0])
                __builtin_trap(); /* a failure must leave nothing behind and say why */
        image_free(img);
        return 0;
}
