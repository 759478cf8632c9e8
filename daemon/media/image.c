/* SPDX-License-Identifier: MIT */
/* Image type, limits, error names, format dispatch and reading an fd with a
 * size cap. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"

void image_limits_default(ImageLimits *l) {
        *l = (ImageLimits) {
                .max_file_size = 64u << 20,
                .max_width = 32768,
                .max_height = 32768,
                .max_pixels = 40u * 1000 * 1000,
                .max_chunk_size = 1u << 20,
                .max_chunk_cache = 128,
                .max_jpeg_scans = 64,
                .max_jpeg_scan_pixels = 25ull * 40 * 1000 * 1000,
        };
}

ImageError image_error_from_errno(int r) {
        switch (r) {
        case 0:
                return IMAGE_OK;
        case -EFBIG:
                return IMAGE_ERROR_TOO_LARGE;
        case -ENODATA:
                return IMAGE_ERROR_TRUNCATED;
        case -EBADMSG:
                return IMAGE_ERROR_CORRUPT;
        case -EMEDIUMTYPE:
                return IMAGE_ERROR_UNSUPPORTED;
        case -EBADFD:
                return IMAGE_ERROR_BAD_FD;
        case -ENOMEM:
                return IMAGE_ERROR_NO_MEMORY;
        default:
                return IMAGE_ERROR_IO;
        }
}

const char *image_error_name(ImageError e) {
        static const char *const names[] = {
                [IMAGE_OK] = "ok",
                [IMAGE_ERROR_TOO_LARGE] = "too large",
                [IMAGE_ERROR_TRUNCATED] = "truncated",
                [IMAGE_ERROR_CORRUPT] = "corrupt",
                [IMAGE_ERROR_UNSUPPORTED] = "unsupported format",
                [IMAGE_ERROR_BAD_FD] = "not a file or pipe",
                [IMAGE_ERROR_NO_MEMORY] = "out of memory",
                [IMAGE_ERROR_IO] = "read error",
        };
        return (unsigned) e < ELEMENTSOF(names) ? names[e] : "unknown";
}

Image *image_new(uint32_t width, uint32_t height, uint32_t channels) {
        size_t stride, bytes;

        if (width == 0 || height == 0 || (channels != 3 && channels != 4))
                return NULL;
        if (MUL_OVERFLOW((size_t) width, (size_t) channels, &stride) ||
            MUL_OVERFLOW(stride, (size_t) height, &bytes))
                return NULL;

        Image *img = calloc(1, sizeof *img);
        if (!img)
                return NULL;
        img->pixels = malloc(bytes);
        if (!img->pixels) {
                free(img);
                return NULL;
        }
        img->width = width;
        img->height = height;
        img->channels = channels;
        img->stride = stride;
        img->orientation = 1;
        return img;
}

Image *image_free(Image *img) {
        if (img) {
                free(img->pixels);
                free(img);
        }
        return NULL;
}

static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
static const uint8_t jpeg_sig[3] = { 0xff, 0xd8, 0xff };

/* A file cut inside the signature is truncated, not of another format. */
static bool image_is_signature_prefix(const uint8_t *p, size_t size) {
        return (size < sizeof png_sig && memcmp(p, png_sig, size) == 0) ||
               (size < sizeof jpeg_sig && memcmp(p, jpeg_sig, size) == 0);
}

ImageFormat image_detect_format(const void *data, size_t size) {
        const uint8_t *p = data;

        if (size >= sizeof png_sig && memcmp(p, png_sig, sizeof png_sig) == 0)
                return IMAGE_FORMAT_PNG;
        if (size >= sizeof jpeg_sig && memcmp(p, jpeg_sig, sizeof jpeg_sig) == 0)
                return IMAGE_FORMAT_JPEG;
        return IMAGE_FORMAT_UNKNOWN;
}

const char *image_format_name(ImageFormat f) {
        switch (f) {
        case IMAGE_FORMAT_PNG:
                return "PNG";
        case IMAGE_FORMAT_JPEG:
                return "JPEG";
        default:
                return "unknown";
        }
}

int image_check_dimensions(const ImageLimits *limits, uint64_t width, uint64_t height,
                           char *err, size_t errlen) {
        if (width == 0 || height == 0)
                return set_error(err, errlen, -EBADMSG, "image has no pixels (%" PRIu64 "x%" PRIu64 ")",
                                 width, height);
        if (width > limits->max_width || height > limits->max_height)
                return set_error(err, errlen, -EFBIG, "image is %" PRIu64 "x%" PRIu64 ", more than the limit of %ux%u",
                                 width, height, limits->max_width, limits->max_height);
        /* Both are below 2^32, the product cannot overflow 64 bits. */
        if (width * height > limits->max_pixels)
                return set_error(err, errlen, -EFBIG, "image is %" PRIu64 "x%" PRIu64 " = %" PRIu64 " pixels, more than the limit of %" PRIu64,
                                 width, height, width * height, limits->max_pixels);
        return 0;
}

int image_decode_memory(const void *data, size_t size, const ImageLimits *limits,
                        Image **ret, char *err, size_t errlen) {
        ImageLimits defaults;

        if (!limits) {
                image_limits_default(&defaults);
                limits = &defaults;
        }
        if (!data && size > 0)
                return set_error(err, errlen, -EINVAL, "no data");
        if (size > limits->max_file_size)
                return set_error(err, errlen, -EFBIG, "image file is %zu bytes, more than the limit of %zu",
                                 size, limits->max_file_size);

        switch (image_detect_format(data, size)) {
        case IMAGE_FORMAT_PNG:
                return image_decode_png(data, size, limits, ret, err, errlen);
        case IMAGE_FORMAT_JPEG:
                return image_decode_jpeg(data, size, limits, ret, err, errlen);
        default:
                if (size == 0)
                        return set_error(err, errlen, -ENODATA, "image file is empty");
                if (image_is_signature_prefix(data, size))
                        return set_error(err, errlen, -ENODATA, "image file ends inside its signature (truncated)");
                return set_error(err, errlen, -EMEDIUMTYPE, "not a PNG or JPEG image");
        }
}

static int wait_readable(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };

        for (;;) {
                int n = poll(&p, 1, -1);
                if (n > 0)
                        return 0;
                if (n < 0 && errno != EINTR)
                        return -errno;
        }
}

int image_read_fd(int fd, size_t max_size, unsigned flags, void **ret_data, size_t *ret_size,
                  char *err, size_t errlen) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size = 0, allocated = 0;
        struct stat st;

        if (fd < 0)
                return set_error(err, errlen, -EBADF, "invalid file descriptor");
        if (fstat(fd, &st) < 0)
                return set_error(err, errlen, -errno, "fstat failed: %m");
        if (S_ISREG(st.st_mode)) {
                if (st.st_size < 0 || (uint64_t) st.st_size > max_size)
                        return set_error(err, errlen, -EFBIG, "image file is %jd bytes, more than the limit of %zu",
                                         (intmax_t) st.st_size, max_size);
        } else if (S_ISFIFO(st.st_mode)) {
                if (!(flags & IMAGE_FD_ALLOW_PIPE))
                        return set_error(err, errlen, -EBADFD, "image fd is a pipe, a regular file was expected");
        } else
                return set_error(err, errlen, -EBADFD, "image fd is not a regular file%s (mode 0%o)",
                                 (flags & IMAGE_FD_ALLOW_PIPE) ? " or a pipe" : "", (unsigned) (st.st_mode & S_IFMT));

        /* Read until EOF, never more than max_size + 1 bytes: one byte past the
         * cap is how a pipe (or a file that grew) shows it is too large. */
        for (;;) {
                if (size == allocated) {
                        size_t want = allocated ? allocated * 2 : 64 * 1024;
                        if (want > max_size + 1)
                                want = max_size + 1;
                        if (want <= allocated)
                                return set_error(err, errlen, -EFBIG, "image data is more than the limit of %zu bytes", max_size);
                        uint8_t *n = realloc(buf, want);
                        if (!n)
                                return set_error(err, errlen, -ENOMEM, "out of memory reading image");
                        buf = n;
                        allocated = want;
                }
                ssize_t k = read(fd, buf + size, allocated - size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                int r = wait_readable(fd);
                                if (r < 0)
                                        return set_error(err, errlen, r, "poll failed: %s", strerror(-r));
                                continue;
                        }
                        return set_error(err, errlen, -errno, "reading image failed: %m");
                }
                if (k == 0)
                        break;
                size += (size_t) k;
                if (size > max_size)
                        return set_error(err, errlen, -EFBIG, "image data is more than the limit of %zu bytes", max_size);
        }

        *ret_data = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

int image_decode_fd(int fd, const ImageLimits *limits, unsigned flags, Image **ret,
                    char *err, size_t errlen) {
        _cleanup_free_ void *data = NULL;
        ImageLimits defaults;
        size_t size = 0;
        int r;

        if (!limits) {
                image_limits_default(&defaults);
                limits = &defaults;
        }
        r = image_read_fd(fd, limits->max_file_size, flags, &data, &size, err, errlen);
        if (r < 0)
                return r;
        return image_decode_memory(data, size, limits, ret, err, errlen);
}
