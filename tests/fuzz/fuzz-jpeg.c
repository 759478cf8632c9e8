/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: JPEG decoding (marker walk, TurboJPEG, CMYK, EXIF
 * orientation) through image_decode_memory(). */
#include "image-preprocess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ImageLimits l;
        char err[256];
        Image *img = NULL;

        image_limits_default(&l);
        l.max_width = l.max_height = 2048;
        l.max_pixels = 1 << 20;
        l.max_jpeg_scan_pixels = 16u << 20;
        if (image_decode_jpeg(data, size, &l, &img, err, sizeof err) == 0) {
                uint64_t sum = 0;
                for (size_t i = 0; i < img->stride * img->height; i++)
                        sum += img->pixels[i];
                if (sum > 255ull * img->stride * img->height)
                        __builtin_trap();
                /* Every decodable image must preprocess: odd sizes, crops. */
                VisionPreprocessParams p;
                VisionInput *v = NULL;
                vision_preprocess_params_gemma3(&p);
                p.image_size = 16;
                p.min_crop_size = 2;
                p.fit = (size & 1) ? VISION_FIT_PAD : VISION_FIT_STRETCH;
                if (vision_preprocess(img, &p, &v) < 0 || v->n_images < 1 || v->n_images > 5)
                        __builtin_trap();
                vision_input_free(v);
                if (img->channels != 3 || img->orientation < 1 || img->orientation > 8)
                        __builtin_trap();
        } else if (img || !err[0])
                __builtin_trap();
        image_free(img);
        return 0;
}
