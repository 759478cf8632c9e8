/* SPDX-License-Identifier: MIT */
/* Antialiased resizing: separable convolution whose kernel widens with the
 * downscale factor (as PIL and ImageMagick do), so that shrinking a
 * screenshot averages its pixels instead of skipping them. */
#pragma once

#include "image.h"

typedef enum ImageFilter {
        IMAGE_FILTER_BOX,       /* area average; support 0.5 */
        IMAGE_FILTER_BILINEAR,  /* triangle, support 1: PIL's BILINEAR, what HF's Gemma processors use */
        IMAGE_FILTER_LANCZOS3,  /* sinc windowed by sinc, support 3: sharpest, rings a little */
        _IMAGE_FILTER_MAX,
} ImageFilter;

typedef struct ImageRect {
        uint32_t x, y, width, height;
} ImageRect;

/* Resize the RGB channels of rect (inside src; NULL = all of it) to w x h;
 * out gets w * h * 3 floats, interleaved RGB, rounded to integers and
 * clamped to [0, 255] (what an 8-bit resize would store).  Alpha is
 * ignored.  -EINVAL for an empty or outside rect, -ENOMEM. */
int image_resize_rgb_float(const Image *src, const ImageRect *rect, uint32_t w, uint32_t h,
                           ImageFilter filter, float *out);

/* The same into a new 8-bit image; all channels, alpha resized as a plain
 * channel (not premultiplied). */
int image_resize(const Image *src, uint32_t w, uint32_t h, ImageFilter filter, Image **ret);
