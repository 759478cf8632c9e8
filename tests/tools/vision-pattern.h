/* SPDX-License-Identifier: MIT */
/* The fixed test image of the vision tests: an RGB picture made from its
 * coordinates (gradients, a checkerboard, a disc, a diagonal line), so that
 * tests, benchmarks and the reference run see the same pixels without a
 * file.  Written planar (CHW) and normalised v = (u8 / 255 - mean) / std,
 * the way daemon/media hands images to the encoder. */
#pragma once

#include <stdint.h>

static inline void vision_pattern_rgb(uint32_t size, uint32_t x, uint32_t y, uint8_t rgb[3]) {
        const int64_t s = size, cx = s / 2, cy = s / 3, rad = s / 4;
        const int64_t dx = (int64_t)x - cx, dy = (int64_t)y - cy;
        rgb[0] = (uint8_t)(s > 1 ? x * 255 / (size - 1) : 0);
        rgb[1] = (uint8_t)(s > 1 ? y * 255 / (size - 1) : 0);
        rgb[2] = ((x / 8 + y / 8) & 1) ? 220 : 30;
        if (dx * dx + dy * dy < rad * rad) {
                rgb[0] = 250;
                rgb[1] = (uint8_t)(255 - rgb[1]);
        }
        if ((int64_t)x - (int64_t)y >= -1 && (int64_t)x - (int64_t)y <= 1)
                rgb[0] = rgb[1] = rgb[2] = 0;
}

static inline void vision_pattern_chw(uint32_t size, const float mean[3], const float std[3], float *out) {
        const uint64_t n = (uint64_t)size * size;
        for (uint32_t y = 0; y < size; y++)
                for (uint32_t x = 0; x < size; x++) {
                        uint8_t rgb[3];
                        vision_pattern_rgb(size, x, y, rgb);
                        for (int c = 0; c < 3; c++)
                                out[c * n + (uint64_t)y * size + x] = (rgb[c] / 255.0f - mean[c]) / std[c];
                }
}
