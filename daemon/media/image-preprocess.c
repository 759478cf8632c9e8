/* SPDX-License-Identifier: MIT */
/* Decoded image -> normalised CHW float squares for a vision tower. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "image-preprocess.h"

void vision_preprocess_params_gemma3(VisionPreprocessParams *p) {
        *p = (VisionPreprocessParams) {
                .image_size = 896,
                .mean = { 0.5f, 0.5f, 0.5f },
                .std = { 0.5f, 0.5f, 0.5f },
                .filter = IMAGE_FILTER_BILINEAR,
                .fit = VISION_FIT_STRETCH,
                .max_crops = 4,
                .min_crop_size = 256,
                .min_crop_ratio = 2.0f,
        };
}

void vision_preprocess_params_gemma3n(VisionPreprocessParams *p) {
        *p = (VisionPreprocessParams) {
                .image_size = 768,
                .mean = { 0.0f, 0.0f, 0.0f },
                .std = { 1.0f, 1.0f, 1.0f },
                .filter = IMAGE_FILTER_BILINEAR,
                .fit = VISION_FIT_STRETCH,
        };
}

VisionInput *vision_input_free(VisionInput *v) {
        if (v) {
                free(v->rects);
                free(v->data);
                free(v);
        }
        return NULL;
}

/* HF's rule: along the long side, n = round(ratio) crops, at most
 * long / min_crop_size, at least 2, at most max_crops; crop size
 * ceil(long / n) (the last one clipped to the image, empty ones dropped); none if a crop's
 * short side would be under min_crop_size. */
uint32_t vision_pan_and_scan(uint32_t width, uint32_t height, const VisionPreprocessParams *p,
                             ImageRect *rects, uint32_t max) {
        if (p->max_crops < 2 || width == 0 || height == 0 || p->min_crop_size == 0)
                return 0;

        bool wide = width >= height;
        uint32_t lng = wide ? width : height, shrt = wide ? height : width;
        double ratio = (double) lng / shrt;
        if (ratio < p->min_crop_ratio)
                return 0;

        uint64_t n = (uint64_t) floor(ratio + 0.5);
        uint64_t fit = lng / p->min_crop_size;
        if (n > fit)
                n = fit;
        if (n < 2)
                n = 2;
        if (n > p->max_crops)
                n = p->max_crops;
        uint32_t step = (uint32_t) ((lng + n - 1) / n);
        if (step < p->min_crop_size || shrt < p->min_crop_size)
                return 0;
        if (n > max)
                return 0;

        /* Rounding the step up can leave nothing for the last crops of a
         * small image (9 px in 4 crops of 3): those are dropped, not empty. */
        uint32_t k = 0;
        for (uint32_t start = 0; k < n && start < lng; start += step, k++) {
                uint32_t len = MIN(step, lng - start);
                rects[k] = wide ? (ImageRect) { start, 0, len, height } : (ImageRect) { 0, start, width, len };
        }
        return k;
}

/* One square: resize the rect (stretched, or fitted and padded with black),
 * then normalise into planar out[3][size][size]. */
static int preprocess_one(const Image *img, const ImageRect *rect, const VisionPreprocessParams *p,
                          float *out) {
        const uint32_t s = p->image_size;
        uint32_t w = s, h = s, ox = 0, oy = 0;

        if (p->fit == VISION_FIT_PAD) {
                double k = MIN((double) s / rect->width, (double) s / rect->height);
                w = (uint32_t) MAX(1.0, MIN((double) s, floor(rect->width * k + 0.5)));
                h = (uint32_t) MAX(1.0, MIN((double) s, floor(rect->height * k + 0.5)));
                ox = (s - w) / 2;
                oy = (s - h) / 2;
        }

        _cleanup_free_ float *rgb = malloc((size_t) w * h * 3 * sizeof(float));
        if (!rgb)
                return -ENOMEM;
        int r = image_resize_rgb_float(img, rect, w, h, p->filter, rgb);
        if (r < 0)
                return r;

        for (int c = 0; c < 3; c++) {
                const float a = 1.0f / (255.0f * p->std[c]), b = -p->mean[c] / p->std[c];
                float *plane = out + (size_t) c * s * s;
                /* Padding is black: u8 = 0. */
                for (size_t i = 0; i < (size_t) s * s; i++)
                        plane[i] = b;
                for (uint32_t y = 0; y < h; y++) {
                        float *o = plane + (size_t) (oy + y) * s + ox;
                        const float *in = rgb + (size_t) y * w * 3 + c;
                        for (uint32_t x = 0; x < w; x++)
                                o[x] = in[(size_t) x * 3] * a + b;
                }
        }
        return 0;
}

int vision_preprocess(const Image *img, const VisionPreprocessParams *p, VisionInput **ret) {
        ImageRect crops[16];

        if (!img || !p || p->image_size == 0 || p->image_size > 8192 || (unsigned) p->filter >= _IMAGE_FILTER_MAX)
                return -EINVAL;
        for (int c = 0; c < 3; c++)
                if (!(p->std[c] > 0.0f) || !isfinite(p->mean[c]))
                        return -EINVAL;

        uint32_t n_crops = vision_pan_and_scan(img->width, img->height, p, crops, ELEMENTSOF(crops));
        _cleanup_(vision_input_freep) VisionInput *v = calloc(1, sizeof *v);
        if (!v)
                return -ENOMEM;
        v->n_images = 1 + n_crops;
        v->image_size = p->image_size;
        v->rects = calloc(v->n_images, sizeof *v->rects);
        v->data = malloc((size_t) v->n_images * 3 * p->image_size * p->image_size * sizeof(float));
        if (!v->rects || !v->data)
                return -ENOMEM;
        v->rects[0] = (ImageRect) { 0, 0, img->width, img->height };
        memcpy(v->rects + 1, crops, n_crops * sizeof *crops);

        for (uint32_t i = 0; i < v->n_images; i++) {
                int r = preprocess_one(img, &v->rects[i], p, vision_input_image(v, i));
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(v);
        return 0;
}
