/* SPDX-License-Identifier: MIT */
/* Resizing and vision preprocessing: the antialiased resize against
 * ImageMagick's -resize with the same filters, exact properties (constant
 * images stay constant, box downscaling by an integer factor is the block
 * mean), pan-and-scan crops, normalisation, CHW layout, padding. */
#include <errno.h>

#include "image-preprocess.h"
#include "test-image-util.h"

static Image *pattern(uint32_t w, uint32_t h, uint32_t channels) {
        Image *img = image_new(w, h, channels);
        CHECK(img);
        for (uint32_t y = 0; y < h; y++)
                for (uint32_t x = 0; x < w; x++) {
                        uint8_t *p = img->pixels + (size_t) y * img->stride + (size_t) x * channels;
                        p[0] = (uint8_t) (x * 255 / (w - 1));                   /* ramp */
                        p[1] = (uint8_t) (((x / 3 + y / 2) & 1) ? 230 : 20);    /* fine checkers: aliases if not filtered */
                        p[2] = (uint8_t) ((x * 7 + y * 13) % 256);
                        if (channels == 4)
                                p[3] = (uint8_t) (y * 255 / (h - 1));
                }
        return img;
}

static void test_constant(void) {
        for (int f = 0; f < _IMAGE_FILTER_MAX; f++) {
                Image *img = image_new(50, 31, 3);
                CHECK(img);
                for (size_t i = 0; i < img->stride * img->height; i += 3) {
                        img->pixels[i] = 200;
                        img->pixels[i + 1] = 17;
                        img->pixels[i + 2] = 99;
                }
                const uint32_t sizes[][2] = { { 7, 5 }, { 50, 31 }, { 123, 77 }, { 1, 1 }, { 13, 200 } };
                for (size_t s = 0; s < ELEMENTSOF(sizes); s++) {
                        _cleanup_(image_freep) Image *out = NULL;
                        CHECK_OK(image_resize(img, sizes[s][0], sizes[s][1], f, &out));
                        for (size_t i = 0; i < out->stride * out->height; i += 3)
                                CHECK_MSG(out->pixels[i] == 200 && out->pixels[i + 1] == 17 && out->pixels[i + 2] == 99,
                                          "filter %d to %ux%u not constant", f, sizes[s][0], sizes[s][1]);
                }
                image_free(img);
        }
        printf("constant images stay constant under every filter, up and down\n");
}

static void test_box_mean(void) {
        _cleanup_(image_freep) Image *img = pattern(60, 40, 3), *out = NULL;
        CHECK_OK(image_resize(img, 20, 10, IMAGE_FILTER_BOX, &out));
        for (uint32_t y = 0; y < 10; y++)
                for (uint32_t x = 0; x < 20; x++)
                        for (int c = 0; c < 3; c++) {
                                unsigned sum = 0;
                                for (int dy = 0; dy < 4; dy++)
                                        for (int dx = 0; dx < 3; dx++)
                                                sum += img->pixels[(size_t) (4 * y + dy) * img->stride + (3 * x + dx) * 3 + c];
                                double mean = sum / 12.0;
                                int got = out->pixels[(size_t) y * out->stride + x * 3 + c];
                                CHECK_MSG(fabs(got - mean) <= 0.5 + 1e-3, "box (%u,%u,%d): %d, mean %.3f", x, y, c, got, mean);
                        }
        printf("box downscaling by 3x4 gives the block means\n");
}

/* Same filter in ImageMagick (it also widens the kernel by the scale and
 * normalises the weights at the edges).  It keeps 16 bits between the two
 * passes where we keep floats; its 16-bit result is rounded to 8 bits here
 * (its own -depth 8 truncates): a difference of at most 1.  (The box filter
 * is left out: where a kernel edge falls exactly on a sample the two
 * disagree on which side it belongs to; test_box_mean covers it.)
 * Lanczos: ImageMagick approximates sinc by a polynomial (SincFast) and
 * rounds its first pass to 16 bits; next to the sharp 20/230 checkers of
 * the test pattern that moves a few samples by up to 4.  (Enlarging with
 * Lanczos is not compared: there convert differs from us and from PIL by
 * up to 22 next to the checkers; the vision path only ever uses the
 * triangle filter, which matches both ways.) */
static void test_against_imagemagick(void) {
        const char *convert = test_find_convert();
        char *dir = test_scratch_dir(), path[4096], ref[4096];
        _cleanup_(image_freep) Image *img = pattern(97, 61, 3);

        snprintf(path, sizeof path, "%s/src.ppm", dir);
        FILE *f = fopen(path, "wb");
        CHECK(f);
        fprintf(f, "P6\n%u %u\n255\n", img->width, img->height);
        CHECK(fwrite(img->pixels, 1, img->stride * img->height, f) == img->stride * img->height);
        CHECK(fclose(f) == 0);

        static const struct {
                ImageFilter f;
                const char *im;
                uint32_t w, h;
                unsigned max_diff;
        } cases[] = {
                { IMAGE_FILTER_BILINEAR, "Triangle", 40, 23, 1 },   /* down 2.4x, 2.7x */
                { IMAGE_FILTER_BILINEAR, "Triangle", 31, 61, 1 },   /* one axis only */
                { IMAGE_FILTER_BILINEAR, "Triangle", 150, 100, 1 }, /* up */
                { IMAGE_FILTER_LANCZOS3, "Lanczos", 40, 23, 4 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(image_freep) Image *out = NULL;
                snprintf(ref, sizeof ref, "%s/ref%zu.ppm", dir, i);
                test_run("%s %s -filter %s -define filter:blur=1 -resize %ux%u! -depth 16 ppm:%s", convert, path,
                         cases[i].im, cases[i].w, cases[i].h, ref);
                RefImage r = test_read_pnm(ref);
                CHECK_OK(image_resize(img, cases[i].w, cases[i].h, cases[i].f, &out));
                CHECK(r.width == out->width && r.height == out->height && r.channels == 3);
                unsigned max = 0;
                double sum = 0;
                for (size_t k = 0; k < out->stride * out->height; k++) {
                        unsigned d = (unsigned) abs((int) out->pixels[k] - (int) r.pixels[k]);
                        max = MAX(max, d);
                        sum += d;
                }
                printf("resize 97x61 -> %ux%u %-8s vs ImageMagick: max diff %u, mean %.3f\n", cases[i].w, cases[i].h,
                       cases[i].im, max, sum / (double) (out->stride * out->height));
                double mean = sum / (double) (out->stride * out->height);
                CHECK_MSG(max <= cases[i].max_diff && mean < 0.1, "%s %ux%u: max diff %u, mean %.3f",
                          cases[i].im, cases[i].w, cases[i].h, max, mean);
                free(r.pixels);
        }
        test_remove_dir(dir);
        free(dir);
}

static void test_pan_and_scan(void) {
        VisionPreprocessParams p;
        ImageRect r[8];

        vision_preprocess_params_gemma3(&p);
        /* A 16:9 screen: under the ratio of 2, no crops. */
        CHECK_EQ_INT(vision_pan_and_scan(1920, 1080, &p, r, 8), 0);
        /* An ultrawide 3840x1080 (3.6): 4 crops of 960. */
        CHECK_EQ_INT(vision_pan_and_scan(3840, 1080, &p, r, 8), 4);
        CHECK(r[0].x == 0 && r[0].width == 960 && r[0].height == 1080 && r[3].x == 2880 && r[3].width == 960);
        /* A tall page 1280x3000 (2.34): 2 crops of 1500, stacked. */
        CHECK_EQ_INT(vision_pan_and_scan(1280, 3000, &p, r, 8), 2);
        CHECK(r[0].y == 0 && r[0].height == 1500 && r[1].y == 1500 && r[1].height == 1500 && r[1].width == 1280);
        /* A very tall page: capped at max_crops, the last crop clipped. */
        CHECK_EQ_INT(vision_pan_and_scan(1000, 10001, &p, r, 8), 4);
        CHECK(r[3].y == 3 * 2501 && r[3].height == 10001 - 3 * 2501);
        /* Too narrow for crops of min_crop_size. */
        CHECK_EQ_INT(vision_pan_and_scan(200, 1000, &p, r, 8), 0);
        /* HF's own activation ratio 1.2 on a 16:9 screen: 2 crops. */
        p.min_crop_ratio = 1.2f;
        CHECK_EQ_INT(vision_pan_and_scan(1920, 1080, &p, r, 8), 2);
        CHECK(r[1].x == 960 && r[1].width == 960);
        /* 9 px in 4 crops of ceil(9/4) = 3: the fourth would be empty and
         * is dropped (the fuzzer's 2x9 JPEG). */
        p.min_crop_ratio = 2.0f;
        p.min_crop_size = 2;
        CHECK_EQ_INT(vision_pan_and_scan(2, 9, &p, r, 8), 3);
        CHECK(r[2].y == 6 && r[2].height == 3);
        vision_preprocess_params_gemma3n(&p);
        CHECK_EQ_INT(vision_pan_and_scan(3840, 1080, &p, r, 8), 0);
        printf("pan and scan crops as HF computes them\n");
}

static void test_normalisation(void) {
        VisionPreprocessParams p;
        _cleanup_(image_freep) Image *img = image_new(40, 30, 4);
        CHECK(img);
        for (size_t i = 0; i < img->stride * img->height; i += 4) {
                img->pixels[i] = 255;
                img->pixels[i + 1] = 0;
                img->pixels[i + 2] = 51;
                img->pixels[i + 3] = 0; /* fully transparent: alpha is dropped, not composited */
        }

        vision_preprocess_params_gemma3(&p);
        p.image_size = 32;
        _cleanup_(vision_input_freep) VisionInput *v = NULL;
        CHECK_OK(vision_preprocess(img, &p, &v));
        CHECK(v->n_images == 1 && v->image_size == 32);
        const float *d = vision_input_image(v, 0);
        for (size_t i = 0; i < 32 * 32; i++) {
                CHECK(fabsf(d[i] - 1.0f) < 1e-6f);                      /* R plane: 255 -> 1 */
                CHECK(fabsf(d[1024 + i] + 1.0f) < 1e-6f);               /* G plane: 0 -> -1 */
                CHECK(fabsf(d[2048 + i] - (51 / 127.5f - 1)) < 1e-6f);  /* B plane */
        }
        v = vision_input_free(v);

        vision_preprocess_params_gemma3n(&p);
        p.image_size = 24;
        CHECK_OK(vision_preprocess(img, &p, &v));
        d = vision_input_image(v, 0);
        CHECK(fabsf(d[5] - 1.0f) < 1e-6f && fabsf(d[576 + 5]) < 1e-6f && fabsf(d[1152 + 5] - 0.2f) < 1e-6f);
        v = vision_input_free(v);

        /* Pad: a 40x30 image in a 32 square is 32x24 at rows 4..27; the rest black. */
        vision_preprocess_params_gemma3(&p);
        p.image_size = 32;
        p.fit = VISION_FIT_PAD;
        CHECK_OK(vision_preprocess(img, &p, &v));
        d = vision_input_image(v, 0);
        for (uint32_t y = 0; y < 32; y++) {
                float want = (y >= 4 && y < 28) ? 1.0f : -1.0f;
                CHECK_MSG(fabsf(d[y * 32 + 7] - want) < 1e-6f, "pad row %u: %f", y, d[y * 32 + 7]);
        }
        printf("normalisation, CHW layout, alpha dropped, padding\n");
}

static void test_crops_content(void) {
        /* A 900x300 image whose left and right halves differ: with pan and
         * scan, crop 1 is all left colour, crop 3 all right colour. */
        VisionPreprocessParams p;
        _cleanup_(image_freep) Image *img = image_new(900, 300, 3);
        CHECK(img);
        for (uint32_t y = 0; y < 300; y++)
                for (uint32_t x = 0; x < 900; x++) {
                        uint8_t *q = img->pixels + (size_t) y * img->stride + x * 3;
                        q[0] = x < 300 ? 255 : 0;
                        q[1] = x >= 600 ? 255 : 0;
                        q[2] = 0;
                }
        vision_preprocess_params_gemma3(&p);
        p.image_size = 64;
        _cleanup_(vision_input_freep) VisionInput *v = NULL;
        CHECK_OK(vision_preprocess(img, &p, &v));
        CHECK_EQ_INT(v->n_images, 4);
        const float *c1 = vision_input_image(v, 1), *c3 = vision_input_image(v, 3);
        for (size_t i = 0; i < 64 * 64; i++) {
                CHECK(c1[i] == 1.0f && c1[4096 + i] == -1.0f);
                CHECK(c3[i] == -1.0f && c3[4096 + i] == 1.0f);
        }
        printf("crops hold the right parts of the image\n");
}

static void test_bad_arguments(void) {
        VisionPreprocessParams p;
        _cleanup_(image_freep) Image *img = pattern(10, 10, 3);
        ImageRect outside = { 5, 5, 6, 5 };
        float buf[300];
        VisionInput *v = NULL;

        CHECK_EQ_INT(image_resize_rgb_float(img, &outside, 10, 10, IMAGE_FILTER_BOX, buf), -EINVAL);
        CHECK_EQ_INT(image_resize_rgb_float(img, NULL, 0, 10, IMAGE_FILTER_BOX, buf), -EINVAL);
        CHECK_EQ_INT(image_resize_rgb_float(img, NULL, 10, 10, (ImageFilter) 99, buf), -EINVAL);
        vision_preprocess_params_gemma3(&p);
        p.std[1] = 0;
        CHECK_EQ_INT(vision_preprocess(img, &p, &v), -EINVAL);
        CHECK(!v);
}

int main(void) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        test_constant();
        test_box_mean();
        test_pan_and_scan();
        test_normalisation();
        test_crops_content();
        test_bad_arguments();
        test_against_imagemagick(); /* last: skips when convert is absent */
        return 0;
}
