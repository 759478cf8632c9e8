/* SPDX-License-Identifier: MIT */
#pragma once
/* What every decoded image must satisfy, for the PNG and JPEG harnesses. */
#include "image-preprocess.h"

/* Reads every byte (a short buffer shows under ASan) and runs the vision
 * preprocessing on it (odd sizes, pan-and-scan crops); traps on any
 * failure.  parity picks padded or stretched fitting. */
static inline void fuzz_check_decoded_image(const Image *img, size_t parity) {
        uint64_t sum = 0;
        for (size_t i = 0; i < img->stride * img->height; i++)
                sum += img->pixels[i];
        if (sum > 255ull * img->stride * img->height)
                __builtin_trap();

        VisionPreprocessParams p;
        VisionInput *v = NULL;
        vision_preprocess_params_gemma3(&p);
        p.image_size = 16;
        p.min_crop_size = 2;
        p.fit = (parity & 1) ? VISION_FIT_PAD : VISION_FIT_STRETCH;
        if (vision_preprocess(img, &p, &v) < 0 || v->n_images < 1 || v->n_images > 5)
                __builtin_trap();
        vision_input_free(v);
}
