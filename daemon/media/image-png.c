/* SPDX-License-Identifier: MIT */
/* PNG through libpng: every colour type and bit depth, palette, tRNS,
 * Adam7, 16-bit, to 8-bit RGB or RGBA.  Gamma is left alone (the values are
 * what the file stores, as the vision models were trained on).
 *
 * Against hostile files: IHDR is read and checked against the limits before
 * libpng is even set up; then libpng gets its own user limits, a per-chunk
 * allocation cap and a chunk-cache cap, and ignores every ancillary chunk
 * but tRNS (so no iCCP/zTXt/iTXt inflation happens at all).  Benign errors
 * are errors; warnings are recorded and fail the decode after the libpng
 * call that raised them (libpng expects its warning callback to return). */
#include <errno.h>
#include <inttypes.h>
#include <png.h>
#include <string.h>

#include "image.h"

typedef struct PngReader {
        const uint8_t *data;
        size_t size, pos;
        bool truncated;         /* the read callback ran out of data */
        bool failed;            /* an error or a warning was recorded */
        int error;              /* -errno of the first failure */
        char *err;
        size_t errlen;
} PngReader;

static int classify(const PngReader *rd, const char *msg) {
        if (rd->truncated)
                return -ENODATA;
        if (strstr(msg, "limit") || strstr(msg, "too large") || strstr(msg, "chunk cache") ||
            strstr(msg, "Insufficient memory") || strstr(msg, "out of memory"))
                return -EFBIG;
        return -EBADMSG;
}

static void record(PngReader *rd, const char *what, const char *msg) {
        if (rd->failed)
                return; /* keep the first, most telling message */
        rd->failed = true;
        rd->error = set_error(rd->err, rd->errlen, classify(rd, msg), "PNG %s: %s", what, msg);
}

static void on_error(png_structp png, png_const_charp msg) {
        record(png_get_error_ptr(png), "error", msg);
        png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
        record(png_get_error_ptr(png), "warning (treated as an error)", msg);
}

static void on_read(png_structp png, png_bytep out, size_t n) {
        PngReader *rd = png_get_io_ptr(png);

        if (n > rd->size - rd->pos) {
                rd->truncated = true;
                png_error(png, "file ends in the middle of the image (truncated)");
        }
        memcpy(out, rd->data + rd->pos, n);
        rd->pos += n;
}

static uint32_t be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* The signature is followed by IHDR: length 13, type, width, height, ... */
static int check_ihdr(const uint8_t *data, size_t size, const ImageLimits *limits,
                      char *err, size_t errlen) {
        if (size < 8 + 8 + 13 + 4)
                return set_error(err, errlen, -ENODATA, "PNG file ends before its header (truncated, %zu bytes)", size);
        if (be32(data + 8) != 13 || memcmp(data + 12, "IHDR", 4) != 0)
                return set_error(err, errlen, -EBADMSG, "PNG file does not start with a valid IHDR chunk");
        return image_check_dimensions(limits, be32(data + 16), be32(data + 20), err, errlen);
}

/* Ancillary chunks libpng would otherwise parse; we need none of them. */
static const png_byte ignored_chunks[] =
        "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0"
        "sBIT\0sCAL\0sPLT\0sRGB\0tEXt\0tIME\0zTXt\0acTL\0fcTL\0fdAT";

int image_decode_png(const uint8_t *data, size_t size, const ImageLimits *limits,
                     Image **ret, char *err, size_t errlen) {
        /* On the heap: the callbacks change it between setjmp and longjmp. */
        PngReader *volatile rd = NULL;
        png_structp png = NULL;
        png_infop info = NULL;
        /* Set after setjmp and read after a longjmp: volatile. */
        Image *volatile img = NULL;
        png_bytep *volatile rows = NULL;
        int r;

        r = check_ihdr(data, size, limits, err, errlen);
        if (r < 0)
                return r;
        rd = malloc(sizeof *rd);
        if (!rd)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        *rd = (PngReader) { .data = data, .size = size, .err = err, .errlen = errlen };

        png = png_create_read_struct(PNG_LIBPNG_VER_STRING, rd, on_error, on_warning);
        if (!png) {
                free(rd);
                return set_error(err, errlen, -ENOMEM, "cannot create PNG reader");
        }
        info = png_create_info_struct(png);
        if (!info) {
                png_destroy_read_struct(&png, NULL, NULL);
                free(rd);
                return set_error(err, errlen, -ENOMEM, "cannot create PNG info");
        }

        if (setjmp(png_jmpbuf(png))) {
                r = rd->failed ? rd->error : set_error(err, errlen, -EBADMSG, "PNG error");
                goto finish;
        }

        /* Limits first, before libpng reads a byte. */
        png_set_user_limits(png, limits->max_width, limits->max_height);
        png_set_chunk_cache_max(png, limits->max_chunk_cache);
        png_set_chunk_malloc_max(png, limits->max_chunk_size);
        png_set_benign_errors(png, 0);
        png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
        png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, ignored_chunks,
                                    (int) (sizeof ignored_chunks / 5));
        png_set_read_fn(png, rd, on_read);

        png_read_info(png, info);
        if (rd->failed)
                goto failed;

        png_uint_32 width, height;
        int depth, color, interlace;
        png_get_IHDR(png, info, &width, &height, &depth, &color, &interlace, NULL, NULL);
        r = image_check_dimensions(limits, width, height, err, errlen);
        if (r < 0)
                goto finish;

        bool alpha = (color & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS);

        /* Everything to 8-bit RGB(A): palette and low-depth grey expanded,
         * tRNS to an alpha channel, 16 bits rounded (not truncated) to 8. */
        if (color == PNG_COLOR_TYPE_PALETTE)
                png_set_palette_to_rgb(png);
        if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
                png_set_expand_gray_1_2_4_to_8(png);
        if (png_get_valid(png, info, PNG_INFO_tRNS))
                png_set_tRNS_to_alpha(png);
        if (depth == 16)
                png_set_scale_16(png);
        if (!(color & PNG_COLOR_MASK_COLOR))
                png_set_gray_to_rgb(png);
        (void) png_set_interlace_handling(png);
        png_read_update_info(png, info);
        if (rd->failed)
                goto failed;

        const uint32_t channels = alpha ? 4 : 3;
        if (png_get_channels(png, info) != channels || png_get_bit_depth(png, info) != 8)
                r = set_error(err, errlen, -EMEDIUMTYPE, "PNG transform gave %u channels of %u bits",
                              png_get_channels(png, info), png_get_bit_depth(png, info));
        if (r < 0)
                goto finish;

        img = image_new(width, height, channels);
        rows = calloc(height, sizeof(png_bytep));
        if (!img || !rows) {
                r = set_error(err, errlen, -ENOMEM, "out of memory for a %" PRIu32 "x%" PRIu32 " image", width, height);
                goto finish;
        }
        if (png_get_rowbytes(png, info) != img->stride) {
                r = set_error(err, errlen, -EBADMSG, "PNG row size %zu, expected %zu",
                              (size_t) png_get_rowbytes(png, info), img->stride);
                goto finish;
        }
        for (uint32_t y = 0; y < height; y++)
                rows[y] = img->pixels + (size_t) y * img->stride;

        png_read_image(png, rows);
        if (rd->failed)
                goto failed;
        /* The rest of the file up to IEND, CRCs included: a file cut after
         * the pixel data is still a truncated file. */
        png_read_end(png, NULL);
        if (rd->failed)
                goto failed;

        img->format = IMAGE_FORMAT_PNG;
        r = 0;
        goto finish;

failed:
        r = rd->error;
finish:
        free(rows);
        if (r >= 0)
                *ret = img;
        else
                image_free(img);
        png_destroy_read_struct(&png, &info, NULL);
        free(rd);
        return r;
}
