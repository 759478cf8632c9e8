/* SPDX-License-Identifier: MIT */
/* From a decoded image to what a vision tower eats: one or more square
 * images of image_size x image_size, RGB, normalised
 * v = (u8 / 255 - mean[c]) / std[c], planar (CHW: the whole R plane, then
 * G, then B; x fastest), float32.
 *
 * Tall or wide screenshots: squeezing a 1920 x 6000 page into one square
 * makes its text illegible.  Pan and scan (Gemma 3's processor, HF
 * Gemma3ImageProcessor.pan_and_scan) cuts the image along its long side
 * into 2..max_crops crops of about square shape and encodes each as an
 * extra image after the whole one.  The prompt then shows the model the
 * whole image first and the crops after it in reading order (HF: "Here is
 * the original image <image> and here are some crops to help you see
 * better <image> <image>"), each crop costing one more encoder pass. */
#pragma once

#include "image-resize.h"

typedef enum VisionFit {
        VISION_FIT_STRETCH,     /* to a square, aspect ratio not kept (HF Gemma 3 and 3n) */
        VISION_FIT_PAD,         /* scaled to fit, centred, padded with black (llama.cpp's default) */
} VisionFit;

typedef struct VisionPreprocessParams {
        uint32_t image_size;    /* side of the square input */
        float mean[3], std[3];
        ImageFilter filter;
        VisionFit fit;
        /* Pan and scan: 0 = off; else crops are made when the long side is
         * at least min_crop_ratio times the short one, at most max_crops of
         * them, none narrower than min_crop_size. */
        uint32_t max_crops;
        uint32_t min_crop_size;
        float min_crop_ratio;
} VisionPreprocessParams;

/* Gemma 3 (SigLIP at 896): mean = std = 0.5, bilinear, stretched; pan and
 * scan up to 4 crops of at least 256 pixels, but only from an aspect ratio
 * of 2 (HF uses 1.2, which would triple the encoder time of every 16:9
 * screenshot; on a CPU each pass is tens of seconds). */
void vision_preprocess_params_gemma3(VisionPreprocessParams *p);
/* Gemma 3n (MobileNet-V5 at 768): values in [0, 1] (mean 0, std 1),
 * bilinear, stretched, no pan and scan (the model was not trained on it). */
void vision_preprocess_params_gemma3n(VisionPreprocessParams *p);

typedef struct VisionInput {
        uint32_t n_images;      /* 1 + crops */
        uint32_t image_size;
        ImageRect *rects;       /* n_images source rectangles; [0] is the whole image */
        float *data;            /* n_images * 3 * image_size^2 */
} VisionInput;

VisionInput *vision_input_free(VisionInput *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(VisionInput *, vision_input_free);

static inline float *vision_input_image(const VisionInput *v, uint32_t i) {
        return v->data + (size_t) i * 3 * v->image_size * v->image_size;
}

/* The pan-and-scan crops of a width x height image (a pure function):
 * fills up to max rects, returns how many (0 = the whole image suffices). */
uint32_t vision_pan_and_scan(uint32_t width, uint32_t height, const VisionPreprocessParams *p,
                             ImageRect *rects, uint32_t max);

int vision_preprocess(const Image *img, const VisionPreprocessParams *p, VisionInput **ret);
