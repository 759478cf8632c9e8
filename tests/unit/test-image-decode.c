/* SPDX-License-Identifier: MIT */
/* PNG and JPEG decoding against ImageMagick's own decode: test images of
 * every PNG colour type and bit depth (palette with and without tRNS,
 * Adam7) and JPEG greyscale/RGB/CMYK/progressive/EXIF-rotated are made
 * here with convert, decoded by us and by convert (to PAM/PPM), and
 * compared: exactly for PNG, within a small tolerance for JPEG. */
#include <errno.h>

#include "image.h"
#include "test-image-util.h"

static const char *convert;
static char *dir;

static uint32_t be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* Colour type, depth, interlace and tRNS presence, read from the file. */
static void png_layout(const uint8_t *p, size_t n, int *color, int *depth, int *interlace, bool *trns) {
        CHECK(n > 33 && memcmp(p + 12, "IHDR", 4) == 0);
        *depth = p[24];
        *color = p[25];
        *interlace = p[28];
        *trns = false;
        for (size_t pos = 8; pos + 8 <= n;) {
                uint32_t len = be32(p + pos);
                if (memcmp(p + pos + 4, "tRNS", 4) == 0)
                        *trns = true;
                if (memcmp(p + pos + 4, "IEND", 4) == 0 || len > n - pos - 12)
                        break;
                pos += 12 + len;
        }
}

static Image *decode_file(const char *path) {
        size_t n = 0;
        _cleanup_free_ uint8_t *data = test_read_file(path, &n);
        char err[256] = "";
        Image *img = NULL;
        CHECK_MSG(data, "cannot read %s", path);
        int r = image_decode_memory(data, n, NULL, &img, err, sizeof err);
        CHECK_MSG(r == 0, "%s: %s (%s)", path, err, image_error_name(image_error_from_errno(r)));
        return img;
}

typedef struct Diff {
        unsigned max;
        double mean;
} Diff;

static Diff compare(const Image *img, const RefImage *ref, const char *name) {
        Diff d = {};
        uint64_t sum = 0;

        CHECK_MSG(img->width == ref->width && img->height == ref->height, "%s: %ux%u, reference %ux%u",
                  name, img->width, img->height, ref->width, ref->height);
        CHECK_MSG(img->channels == ref->channels, "%s: %u channels, reference %u", name, img->channels, ref->channels);
        size_t n = (size_t) img->width * img->height * img->channels;
        for (size_t i = 0; i < n; i++) {
                unsigned e = (unsigned) abs((int) img->pixels[i] - (int) ref->pixels[i]);
                sum += e;
                if (e > d.max)
                        d.max = e;
        }
        d.mean = (double) sum / (double) n;
        return d;
}

/* ---- PNG: every colour type and depth ---- */

typedef struct PngCase {
        const char *name;
        const char *source;     /* which source image */
        const char *options;    /* convert options producing the layout */
        int color, depth;       /* what the file must then have */
        bool trns, interlace;
} PngCase;

#define CT(c, d) " -define png:color-type=" #c " -define png:bit-depth=" #d " "
/* Two transparent areas, their colour made uniform so a palette needs one entry. */
#define HOLES "-alpha set -region 10x12+3+4 -alpha transparent +region " \
              "-region 6x5+27+19 -alpha transparent +region -background black -alpha background "
/* No bKGD: ImageMagick would add its colour to the palette. */
#define PAL(d) " -define png:exclude-chunks=bKGD -define png:bit-depth=" #d " PNG8:"

static const PngCase png_cases[] = {
        { "grey1", "rgb", "-colorspace gray -threshold 50% -type bilevel" CT(0, 1), 0, 1, false, false },
        { "grey2", "rgb", "-colorspace gray -depth 2" CT(0, 2), 0, 2, false, false },
        { "grey4", "rgb", "-colorspace gray -depth 4" CT(0, 4), 0, 4, false, false },
        { "grey8", "rgb", "-colorspace gray -depth 8" CT(0, 8), 0, 8, false, false },
        { "grey16", "rgb", "-colorspace gray -depth 16" CT(0, 16), 0, 16, false, false },
        { "greyalpha8", "rgba", "-colorspace gray -depth 8" CT(4, 8), 4, 8, false, false },
        { "greyalpha16", "rgba", "-colorspace gray -depth 16" CT(4, 16), 4, 16, false, false },
        { "rgb8", "rgb", "-depth 8" CT(2, 8), 2, 8, false, false },
        { "rgb16", "rgb", "-depth 16" CT(2, 16), 2, 16, false, false },
        { "rgba8", "rgba", "-depth 8" CT(6, 8), 6, 8, false, false },
        { "rgba16", "rgba", "-depth 16" CT(6, 16), 6, 16, false, false },
        { "pal1", "rgb", "+dither -colors 2" PAL(1), 3, 1, false, false },
        { "pal2", "rgb", "+dither -colors 4" PAL(2), 3, 2, false, false },
        { "pal4", "rgb", "-colors 16" PAL(4), 3, 4, false, false },
        { "pal8", "rgb", "-colors 200" PAL(8), 3, 8, false, false },
        { "pal1-trns", "rgb", "+dither -colors 1 " HOLES PAL(1), 3, 1, true, false },
        { "pal2-trns", "rgb", HOLES "+dither -colors 4" PAL(2), 3, 2, true, false },
        { "pal4-trns", "rgb", HOLES "-colors 16" PAL(4), 3, 4, true, false },
        { "pal8-trns", "rgb", HOLES "-colors 200" PAL(8), 3, 8, true, false },
        { "grey8-trns", "rgb", "-colorspace gray -depth 8 " HOLES CT(0, 8), 0, 8, true, false },
        { "rgb8-trns", "rgb", "-depth 8 " HOLES CT(2, 8), 2, 8, true, false },
        { "rgb16-trns", "rgb", "-depth 16 " HOLES CT(2, 16), 2, 16, true, false },
        { "grey1-adam7", "rgb", "-colorspace gray -threshold 50% -type bilevel -interlace PNG" CT(0, 1), 0, 1, false, true },
        { "grey16-adam7", "rgb", "-colorspace gray -depth 16 -interlace PNG" CT(0, 16), 0, 16, false, true },
        { "greyalpha8-adam7", "rgba", "-colorspace gray -depth 8 -interlace PNG" CT(4, 8), 4, 8, false, true },
        { "rgb8-adam7", "rgb", "-depth 8 -interlace PNG" CT(2, 8), 2, 8, false, true },
        { "rgba16-adam7", "rgba", "-depth 16 -interlace PNG" CT(6, 16), 6, 16, false, true },
        { "pal2-trns-adam7", "rgb", HOLES "+dither -colors 4 -interlace PNG" PAL(2), 3, 2, true, true },
        { "pal8-adam7", "rgb", "-colors 200 -interlace PNG" PAL(8), 3, 8, false, true },
};

static void make_sources(void) {
        /* 37x29: odd sizes, so rows do not end on byte or Adam7 boundaries.
         * plasma gives 16-bit detail; a second plasma makes the alpha. */
        test_run("%s -seed 7 -size 37x29 plasma:red-blue -depth 16 %s/src-rgb.miff", convert, dir);
        test_run("%s %s/src-rgb.miff \\( -seed 9 -size 37x29 plasma: -colorspace gray \\) "
                 "-alpha off -compose CopyOpacity -composite -depth 16 %s/src-rgba.miff", convert, dir, dir);
}

static void test_png(const PngCase *c) {
        char png[4096], pam[4096];
        size_t n = 0;

        snprintf(png, sizeof png, "%s/%s.png", dir, c->name);
        snprintf(pam, sizeof pam, "%s/%s.pam", dir, c->name);
        test_run("%s %s/src-%s.miff %s%s", convert, dir, c->source, c->options, png);

        /* The file must really have the layout this case is about. */
        _cleanup_free_ uint8_t *data = test_read_file(png, &n);
        int color, depth, interlace;
        bool trns;
        CHECK(data);
        png_layout(data, n, &color, &depth, &interlace, &trns);
        CHECK_MSG(color == c->color && depth == c->depth && trns == c->trns && interlace == c->interlace,
                  "%s: convert made colour type %d depth %d tRNS %d interlace %d", c->name, color, depth, trns, interlace);

        test_run("%s %s -depth 16 pam:%s", convert, png, pam);
        RefImage ref = test_read_pnm(pam);
        _cleanup_(image_freep) Image *img = decode_file(png);
        CHECK(img->format == IMAGE_FORMAT_PNG);
        Diff d = compare(img, &ref, c->name);
        printf("png  %-16s %ux%u %s: max diff %u\n", c->name, img->width, img->height,
               img->channels == 4 ? "RGBA" : "RGB ", d.max);
        CHECK_MSG(d.max == 0, "%s: differs from ImageMagick by up to %u", c->name, d.max);
        free(ref.pixels);
}

/* ---- JPEG ---- */

/* JPEG tolerance.  IDCTs are not bit-exact across implementations: the
 * float and the fast integer IDCT differ from the accurate integer one we
 * ask for (TJFLAG_ACCURATEDCT) by about +-1 per sample, YCbCr -> RGB can
 * scale a chroma error by up to 1.772 (Cb -> B), and CMYK -> RGB rounds
 * C * K / 255 where ImageMagick converts in floating point and truncates.
 * Debian's convert uses the same libjpeg-turbo with the same accurate IDCT
 * and fancy upsampling, so here the YCbCr and grey cases come out exact and
 * CMYK within 1; we allow 2 per sample and a mean of 0.5 so another IDCT
 * in the reference still passes, while a wrong colour conversion, chroma
 * upsampling or orientation (off by tens) does not. */
#define JPEG_MAX_DIFF 2
#define JPEG_MAX_MEAN 0.5

typedef struct JpegCase {
        const char *name;
        const char *options;
} JpegCase;

static const JpegCase jpeg_cases[] = {
        { "rgb420", "-quality 90 -sampling-factor 2x2" },
        { "rgb422", "-quality 85 -sampling-factor 2x1" },
        { "rgb444", "-quality 95 -sampling-factor 1x1" },
        { "grey", "-colorspace gray -type grayscale -quality 90" },
        { "cmyk", "-colorspace cmyk -quality 90" },
        { "progressive", "-quality 90 -interlace JPEG" },
        { "progressive-grey", "-colorspace gray -type grayscale -interlace JPEG" },
        { "progressive-cmyk", "-colorspace cmyk -interlace JPEG" },
};

static void check_jpeg(const char *name, const char *jpg, const char *ref_options, unsigned *ret_max) {
        char ppm[4096];
        snprintf(ppm, sizeof ppm, "%s/%s.ref.pam", dir, name);
        test_run("%s %s %s -depth 8 pam:%s", convert, jpg, ref_options, ppm);
        RefImage ref = test_read_pnm(ppm);
        if (ref.channels == 4) /* CMYK comes back as 4 channels; we want its RGB */
                CHECK_MSG(false, "%s: reference has 4 channels", name);
        _cleanup_(image_freep) Image *img = decode_file(jpg);
        CHECK(img->format == IMAGE_FORMAT_JPEG);
        Diff d = compare(img, &ref, name);
        printf("jpeg %-16s %ux%u: max diff %u, mean %.3f\n", name, img->width, img->height, d.max, d.mean);
        CHECK_MSG(d.max <= JPEG_MAX_DIFF && d.mean <= JPEG_MAX_MEAN, "%s: max %u mean %.3f", name, d.max, d.mean);
        if (ret_max)
                *ret_max = d.max;
        free(ref.pixels);
}

static void test_jpeg(const JpegCase *c) {
        char jpg[4096];
        snprintf(jpg, sizeof jpg, "%s/%s.jpg", dir, c->name);
        test_run("%s %s/src-rgb.miff -depth 8 %s %s", convert, dir, c->options, jpg);
        /* CMYK: convert's PAM of a CMYK JPEG would be CMYK; ask it for sRGB. */
        check_jpeg(c->name, jpg, strstr(c->name, "cmyk") ? "-colorspace sRGB" : "", NULL);
}

/* An APP1 segment with a minimal TIFF header whose IFD0 holds Orientation,
 * in either byte order, inserted after SOI. */
static size_t make_exif(uint8_t *out, unsigned orientation, bool big_endian) {
        uint8_t tiff[26];
        size_t k = 0;
#define PUT16(v) do { unsigned _v = (v); if (big_endian) { tiff[k++] = _v >> 8; tiff[k++] = _v & 0xff; } \
                      else { tiff[k++] = _v & 0xff; tiff[k++] = _v >> 8; } } while (0)
#define PUT32(v) do { uint32_t _w = (v); if (big_endian) { PUT16(_w >> 16); PUT16(_w & 0xffff); } \
                      else { PUT16(_w & 0xffff); PUT16(_w >> 16); } } while (0)
        tiff[k++] = big_endian ? 'M' : 'I';
        tiff[k++] = big_endian ? 'M' : 'I';
        PUT16(42);
        PUT32(8);               /* IFD0 right after the header */
        PUT16(1);               /* one entry */
        PUT16(0x0112);          /* Orientation */
        PUT16(3);               /* SHORT */
        PUT32(1);
        PUT16(orientation);
        PUT16(0);
        PUT32(0);               /* no next IFD */
#undef PUT16
#undef PUT32
        size_t seg = 2 + 6 + k;
        out[0] = 0xff;
        out[1] = 0xe1;
        out[2] = (uint8_t) (seg >> 8);
        out[3] = (uint8_t) seg;
        memcpy(out + 4, "Exif\0\0", 6);
        memcpy(out + 10, tiff, k);
        return 2 + seg;
}

static void test_exif_orientations(void) {
        char base[4096], jpg[4096], name[64];
        size_t n = 0;

        /* Non-square, so that a wrong turn cannot pass. */
        snprintf(base, sizeof base, "%s/orient-base.jpg", dir);
        test_run("%s %s/src-rgb.miff -depth 8 -strip -quality 92 %s", convert, dir, base);
        _cleanup_free_ uint8_t *data = test_read_file(base, &n);
        CHECK(data && n > 2);

        for (unsigned o = 1; o <= 8; o++) {
                uint8_t app1[64];
                size_t k = make_exif(app1, o, o % 2 == 0);
                snprintf(name, sizeof name, "exif-orientation-%u", o);
                snprintf(jpg, sizeof jpg, "%s/%s.jpg", dir, name);
                FILE *f = fopen(jpg, "wb");
                CHECK(f);
                CHECK(fwrite(data, 1, 2, f) == 2);
                CHECK(fwrite(app1, 1, k, f) == k);
                CHECK(fwrite(data + 2, 1, n - 2, f) == n - 2);
                CHECK(fclose(f) == 0);

                CHECK_EQ_INT(exif_parse_orientation(app1 + 4, k - 4), o);
                _cleanup_(image_freep) Image *img = decode_file(jpg);
                CHECK_EQ_INT(img->orientation, o);
                CHECK_EQ_INT(img->width, o >= 5 ? 29 : 37);
                check_jpeg(name, jpg, "-auto-orient", NULL);
        }
}

int main(void) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        convert = test_find_convert();
        dir = test_scratch_dir();

        make_sources();
        for (size_t i = 0; i < ELEMENTSOF(png_cases); i++)
                test_png(&png_cases[i]);
        for (size_t i = 0; i < ELEMENTSOF(jpeg_cases); i++)
                test_jpeg(&jpeg_cases[i]);
        test_exif_orientations();

        if (!getenv("KEEP_TEST_FILES"))
                test_remove_dir(dir);
        else
                printf("files kept in %s\n", dir);
        free(dir);
        printf("all image decoding cases match ImageMagick\n");
        return 0;
}
