/* SPDX-License-Identifier: MIT */
/* Separable antialiased resampling.
 *
 * For output sample i of n_out taken from n_in inputs, scale s = n_in/n_out:
 *   centre c = (i + 0.5) s,  f = max(s, 1),  support r = R f
 *   out[i] = sum_j in[j] K((j + 0.5 - c) / f) / sum_j K(...),
 *   j over [c - r, c + r) clipped to the input
 * K is the filter (box, triangle, Lanczos-3) with radius R.  f > 1 widens
 * the kernel when shrinking: that is the antialiasing.  Weights are
 * normalised per output sample, so edges need no padding.  Rows are done
 * first into a float buffer (clamped to [0, 255]), then columns. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "image-resize.h"

static double k_box(double x) {
        return x >= -0.5 && x < 0.5 ? 1.0 : 0.0;
}

static double k_triangle(double x) {
        x = fabs(x);
        return x < 1.0 ? 1.0 - x : 0.0;
}

static double sinc(double x) {
        if (x == 0.0)
                return 1.0;
        x *= M_PI;
        return sin(x) / x;
}

static double k_lanczos3(double x) {
        return x > -3.0 && x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0;
}

static const struct {
        double (*k)(double);
        double radius;
} filters[_IMAGE_FILTER_MAX] = {
        [IMAGE_FILTER_BOX] = { k_box, 0.5 },
        [IMAGE_FILTER_BILINEAR] = { k_triangle, 1.0 },
        [IMAGE_FILTER_LANCZOS3] = { k_lanczos3, 3.0 },
};

/* Per output sample: first input index, tap count, and taps at w[i * max_taps]. */
typedef struct Coeffs {
        uint32_t *first, *count;
        float *w;
        uint32_t max_taps;
} Coeffs;

static void coeffs_done(Coeffs *c) {
        free(c->first);
        free(c->count);
        free(c->w);
}

static int coeffs_build(uint32_t n_in, uint32_t n_out, ImageFilter filter, Coeffs *c) {
        const double scale = (double) n_in / n_out, f = scale > 1.0 ? scale : 1.0;
        const double support = filters[filter].radius * f;

        *c = (Coeffs) {};
        c->max_taps = (uint32_t) ceil(support) * 2 + 1;
        c->first = calloc(n_out, sizeof *c->first);
        c->count = calloc(n_out, sizeof *c->count);
        c->w = calloc((size_t) n_out * c->max_taps, sizeof *c->w);
        if (!c->first || !c->count || !c->w) {
                coeffs_done(c);
                return -ENOMEM;
        }

        for (uint32_t i = 0; i < n_out; i++) {
                double centre = (i + 0.5) * scale, sum = 0;
                int64_t lo = (int64_t) floor(centre - support + 0.5), hi = (int64_t) floor(centre + support + 0.5);
                if (lo < 0)
                        lo = 0;
                if (hi > n_in)
                        hi = n_in;
                if (hi - lo > c->max_taps)
                        hi = lo + c->max_taps;
                float *w = c->w + (size_t) i * c->max_taps;
                for (int64_t j = lo; j < hi; j++) {
                        double k = filters[filter].k((j + 0.5 - centre) / f);
                        w[j - lo] = (float) k;
                        sum += k;
                }
                if (sum == 0.0) { /* cannot happen with these kernels; keep it finite */
                        int64_t j = (int64_t) centre < n_in ? (int64_t) centre : n_in - 1;
                        lo = j;
                        hi = j + 1;
                        w[0] = 1.0f;
                        sum = 1.0;
                }
                for (int64_t j = 0; j < hi - lo; j++)
                        w[j] = (float) (w[j] / sum);
                c->first[i] = (uint32_t) lo;
                c->count[i] = (uint32_t) (hi - lo);
        }
        return 0;
}

/* Clamped to [0, 255], then rounded half up (no libm call in the loop). */
static inline float round_clamp(float v) {
        v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
        return (float) (int) (v + 0.5f);
}

static inline float clamp255(float v) {
        return v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
}

/* One row through the horizontal kernel; always inlined so that the
 * callers' constant channel counts unroll the inner loops.  The result is
 * clamped between the passes, as PIL (8 bits) and ImageMagick (16 bits)
 * do: Lanczos overshoot does not carry into the second pass. */
static inline __attribute__((always_inline)) void row_pass(const uint8_t *row, const Coeffs *cx, uint32_t w,
                                                           uint32_t sc, uint32_t nc, float *t) {
        for (uint32_t x = 0; x < w; x++) {
                const float *wx = cx->w + (size_t) x * cx->max_taps;
                const uint8_t *p = row + (size_t) cx->first[x] * sc;
                float acc[4] = {};
                for (uint32_t j = 0; j < cx->count[x]; j++, p += sc)
                        for (uint32_t c = 0; c < nc; c++)
                                acc[c] += wx[j] * p[c];
                for (uint32_t c = 0; c < nc; c++)
                        t[(size_t) x * nc + c] = clamp255(acc[c]);
        }
}

/* Resize channels [0, nc) of rect; out is w * h * nc floats. */
static int resize_channels(const Image *src, const ImageRect *rect, uint32_t w, uint32_t h,
                           ImageFilter filter, uint32_t nc, float *out) {
        ImageRect all = { 0, 0, src->width, src->height };
        Coeffs cx, cy;
        int r;

        if (!rect)
                rect = &all;
        if ((unsigned) filter >= _IMAGE_FILTER_MAX || w == 0 || h == 0 || rect->width == 0 || rect->height == 0 ||
            rect->x > src->width || src->width - rect->x < rect->width ||
            rect->y > src->height || src->height - rect->y < rect->height || nc > src->channels)
                return -EINVAL;

        r = coeffs_build(rect->width, w, filter, &cx);
        if (r < 0)
                return r;
        r = coeffs_build(rect->height, h, filter, &cy);
        if (r < 0) {
                coeffs_done(&cx);
                return r;
        }
        /* Only the input rows some output row reads. */
        uint32_t y0 = cy.first[0], y1 = cy.first[h - 1] + cy.count[h - 1];
        size_t rowlen = (size_t) w * nc;
        float *tmp = malloc((size_t) (y1 - y0) * rowlen * sizeof(float));
        if (!tmp) {
                coeffs_done(&cx);
                coeffs_done(&cy);
                return -ENOMEM;
        }

        /* Rows: tmp[y][x][c] = sum_j src[y][first + j][c] wx[x][j]. */
        for (uint32_t y = y0; y < y1; y++) {
                const uint8_t *row = src->pixels + (size_t) (rect->y + y) * src->stride + (size_t) rect->x * src->channels;
                float *t = tmp + (size_t) (y - y0) * rowlen;
                if (nc == 3 && src->channels == 3)
                        row_pass(row, &cx, w, 3, 3, t);
                else if (nc == 3 && src->channels == 4)
                        row_pass(row, &cx, w, 4, 3, t);
                else if (nc == 4)
                        row_pass(row, &cx, w, 4, 4, t);
                else
                        row_pass(row, &cx, w, src->channels, nc, t);
        }

        /* Columns: out[y][x][c] = sum_j tmp[first + j][x][c] wy[y][j]. */
        for (uint32_t y = 0; y < h; y++) {
                const float *wy = cy.w + (size_t) y * cy.max_taps;
                float *o = out + (size_t) y * rowlen;
                memset(o, 0, rowlen * sizeof(float));
                for (uint32_t j = 0; j < cy.count[y]; j++) {
                        const float *t = tmp + (size_t) (cy.first[y] + j - y0) * rowlen;
                        const float wj = wy[j];
                        for (size_t i = 0; i < rowlen; i++)
                                o[i] += wj * t[i];
                }
                for (size_t i = 0; i < rowlen; i++)
                        o[i] = round_clamp(o[i]);
        }

        free(tmp);
        coeffs_done(&cx);
        coeffs_done(&cy);
        return 0;
}

int image_resize_rgb_float(const Image *src, const ImageRect *rect, uint32_t w, uint32_t h,
                           ImageFilter filter, float *out) {
        return resize_channels(src, rect, w, h, filter, 3, out);
}

int image_resize(const Image *src, uint32_t w, uint32_t h, ImageFilter filter, Image **ret) {
        size_t n;

        if (w == 0 || h == 0)
                return -EINVAL;
        if (MUL_OVERFLOW((size_t) w * src->channels, (size_t) h, &n))
                return -EFBIG;
        _cleanup_(image_freep) Image *dst = image_new(w, h, src->channels);
        _cleanup_free_ float *f = malloc(n * sizeof(float));
        if (!dst || !f)
                return -ENOMEM;
        int r = resize_channels(src, NULL, w, h, filter, src->channels, f);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                dst->pixels[i] = (uint8_t) f[i];
        dst->format = src->format;
        dst->orientation = src->orientation;
        *ret = TAKE_PTR(dst);
        return 0;
}
