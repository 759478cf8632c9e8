/* SPDX-License-Identifier: MIT */
/* Decoding of untrusted PNG and JPEG images into 8-bit RGB or RGBA pixels.
 *
 * This code runs only in the sandboxed worker, never in sottod: every byte
 * of the input is hostile.  Limits (file size, width, height, pixel count,
 * PNG chunk sizes, JPEG scans) are checked from the headers before anything
 * proportional to the image is allocated.  Failures return -errno, and each
 * failure kind has a name (image_error_name()) and a message in err[]:
 *
 *   -EFBIG        too large (file, dimensions, pixel count, scans, chunks)
 *   -ENODATA      truncated (the data ends before the image does)
 *   -EBADMSG      corrupt (bad CRC, bad Huffman code, invalid header, any
 *                 decoder warning: warnings are treated as errors)
 *   -EMEDIUMTYPE  unsupported format (neither PNG nor JPEG, or a JPEG colour
 *                 space we do not convert)
 *   -EBADFD       the fd is not a regular file (or a pipe, where allowed)
 *   -ENOMEM, -EIO and other read(2) errors as they come. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef enum ImageFormat {
        IMAGE_FORMAT_UNKNOWN,
        IMAGE_FORMAT_PNG,
        IMAGE_FORMAT_JPEG,
} ImageFormat;

/* Interleaved 8-bit samples, rows top to bottom, no padding between rows. */
typedef struct Image {
        uint32_t width, height;
        uint32_t channels;      /* 3 = RGB, 4 = RGBA (straight, not premultiplied) */
        size_t stride;          /* bytes per row: width * channels */
        uint8_t *pixels;
        ImageFormat format;     /* what it was decoded from */
        unsigned orientation;   /* EXIF orientation that was applied, 1 = none */
} Image;

typedef struct ImageLimits {
        size_t max_file_size;           /* bytes of encoded input */
        uint32_t max_width, max_height; /* from the header, before decoding */
        uint64_t max_pixels;            /* width * height */
        size_t max_chunk_size;          /* PNG: png_set_chunk_malloc_max */
        uint32_t max_chunk_cache;       /* PNG: png_set_chunk_cache_max */
        uint32_t max_jpeg_scans;        /* JPEG: SOS markers in the file */
        uint64_t max_jpeg_scan_pixels;  /* JPEG: scans * width * height (decode work) */
} ImageLimits;

/* 64 MiB of input, 32768 per side, 40 Mpixel (a 1920 x 20000 page), 1 MiB
 * per PNG ancillary chunk, 128 cached chunks, 64 JPEG scans, 25 full-image
 * scans' worth of JPEG decoding. */
void image_limits_default(ImageLimits *l);

/* Named errors: too large, truncated, corrupt, unsupported format, ... */
typedef enum ImageError {
        IMAGE_OK,
        IMAGE_ERROR_TOO_LARGE,
        IMAGE_ERROR_TRUNCATED,
        IMAGE_ERROR_CORRUPT,
        IMAGE_ERROR_UNSUPPORTED,
        IMAGE_ERROR_BAD_FD,
        IMAGE_ERROR_NO_MEMORY,
        IMAGE_ERROR_IO,
} ImageError;

ImageError image_error_from_errno(int r);
const char *image_error_name(ImageError e);

Image *image_new(uint32_t width, uint32_t height, uint32_t channels);
Image *image_free(Image *img);
DEFINE_TRIVIAL_CLEANUP_FUNC(Image *, image_free);

ImageFormat image_detect_format(const void *data, size_t size);
const char *image_format_name(ImageFormat f);

/* Decode a whole PNG or JPEG held in memory.  limits NULL = defaults. */
int image_decode_memory(const void *data, size_t size, const ImageLimits *limits,
                        Image **ret, char *err, size_t errlen);

/* Reads at most limits->max_file_size bytes from fd (from its current
 * offset) and decodes them.  fd must be a regular file, or a pipe when
 * IMAGE_FD_ALLOW_PIPE is set; sockets, devices, directories are refused
 * before anything is read.  A non-blocking pipe is waited on with poll(). */
#define IMAGE_FD_ALLOW_PIPE (1u << 0)
int image_read_fd(int fd, size_t max_size, unsigned flags, void **ret_data, size_t *ret_size,
                  char *err, size_t errlen);
int image_decode_fd(int fd, const ImageLimits *limits, unsigned flags, Image **ret,
                    char *err, size_t errlen);

/* The format back ends; they trust nothing but the limits. */
int image_decode_png(const uint8_t *data, size_t size, const ImageLimits *limits,
                     Image **ret, char *err, size_t errlen);
int image_decode_jpeg(const uint8_t *data, size_t size, const ImageLimits *limits,
                      Image **ret, char *err, size_t errlen);

/* Shared by both back ends: dimensions against the limits (-EFBIG). */
int image_check_dimensions(const ImageLimits *limits, uint64_t width, uint64_t height,
                           char *err, size_t errlen);

/* EXIF orientation (TIFF tag 0x0112) from the payload of an APP1 "Exif"
 * segment (starting at "Exif\0\0").  Returns 1..8, or 0 when absent, or
 * -EBADMSG when the structure is broken.  Every offset is bounds-checked. */
int exif_parse_orientation(const uint8_t *data, size_t size);

/* Apply an EXIF orientation (1..8) so that the image is upright; replaces
 * *img (a 90-degree turn swaps width and height). */
int image_apply_orientation(Image **img, unsigned orientation);
