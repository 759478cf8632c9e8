/* SPDX-License-Identifier: MIT */
/* JPEG through libjpeg-turbo's TurboJPEG v2 API (Debian 12: 2.1.5):
 * greyscale, YCbCr/RGB, CMYK/YCCK (converted to RGB), baseline and
 * progressive, EXIF orientation applied.
 *
 * Why TurboJPEG plus our own marker walk, and not the libjpeg API: the
 * 2.1 TurboJPEG API already bounds progressive scans through a libjpeg
 * progress monitor (TJFLAG_LIMITSCANS, which refuses a 501st scan) and
 * makes every libjpeg warning fatal (TJFLAG_STOPONWARNING).  What it cannot
 * do is make that bound configurable or relate it to the image size, nor
 * hand us the APP1/APP14 markers.  So before TurboJPEG sees the data, a
 * bounds-checked walk over the marker segments (linear in the file size,
 * nothing allocated) counts the SOS markers, finds SOF, EXIF and Adobe
 * segments and tells a truncated file from a corrupt one; the scan count
 * and scans x pixels are checked against the limits there, and
 * TJFLAG_LIMITSCANS stays as the second line.  The dimensions come from
 * tjDecompressHeader3 and are checked before the pixel buffer exists. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <turbojpeg.h>

#include "image.h"

typedef struct JpegMarkers {
        unsigned scans;                 /* SOS segments before EOI */
        bool have_sof, progressive;
        uint32_t width, height;         /* from SOF */
        bool adobe;                     /* APP14 "Adobe": CMYK stored inverted */
        const uint8_t *exif;            /* first APP1 "Exif\0\0" payload */
        size_t exif_size;
} JpegMarkers;

static uint16_t be16(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}

static bool is_sof(uint8_t m) {
        /* C0..CF are SOFn except C4 (DHT), C8 (JPG) and CC (DAC). */
        return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
}

static int walk_markers(const uint8_t *p, size_t n, const ImageLimits *limits, JpegMarkers *m,
                        char *err, size_t errlen) {
        size_t pos = 2; /* after SOI */
        bool in_scan = false;

        *m = (JpegMarkers) {};
        for (;;) {
                uint8_t code;

                if (in_scan) {
                        /* Entropy-coded data: 0xFF is followed by 0x00 (a stuffed
                         * byte), a restart marker, fill bytes, or the marker that
                         * ends the scan. */
                        const uint8_t *ff = pos < n ? memchr(p + pos, 0xff, n - pos) : NULL;
                        if (!ff)
                                return set_error(err, errlen, -ENODATA, "JPEG data ends inside scan %u (truncated)", m->scans);
                        size_t q = (size_t) (ff - p) + 1;
                        while (q < n && p[q] == 0xff)
                                q++;
                        if (q >= n)
                                return set_error(err, errlen, -ENODATA, "JPEG data ends inside scan %u (truncated)", m->scans);
                        code = p[q];
                        pos = q + 1;
                        if (code == 0x00 || (code >= 0xd0 && code <= 0xd7))
                                continue;
                        in_scan = false;
                } else {
                        if (pos >= n)
                                return set_error(err, errlen, -ENODATA, "JPEG data ends before the EOI marker (truncated)");
                        if (p[pos] != 0xff)
                                return set_error(err, errlen, -EBADMSG, "JPEG: byte 0x%02x at offset %zu where a marker should be",
                                                 p[pos], pos);
                        while (pos < n && p[pos] == 0xff)
                                pos++;
                        if (pos >= n)
                                return set_error(err, errlen, -ENODATA, "JPEG data ends before the EOI marker (truncated)");
                        code = p[pos++];
                }

                if (code == 0xd9) /* EOI; anything after it is ignored, as libjpeg does */
                        break;
                if (code == 0x00 || code == 0xd8 || (code >= 0xd0 && code <= 0xd7))
                        return set_error(err, errlen, -EBADMSG, "JPEG: unexpected marker 0x%02x at offset %zu", code, pos - 1);
                if (code == 0x01) /* TEM has no length */
                        continue;

                if (n - pos < 2)
                        return set_error(err, errlen, -ENODATA, "JPEG data ends in a marker segment (truncated)");
                size_t len = be16(p + pos);
                if (len < 2)
                        return set_error(err, errlen, -EBADMSG, "JPEG: marker 0x%02x with length %zu", code, len);
                if (n - pos < len)
                        return set_error(err, errlen, -ENODATA, "JPEG data ends in a marker segment (truncated)");
                const uint8_t *seg = p + pos + 2;
                size_t seglen = len - 2;
                pos += len;

                if (is_sof(code)) {
                        if (m->have_sof)
                                return set_error(err, errlen, -EBADMSG, "JPEG has more than one frame header");
                        if (seglen < 6 || seglen < 6 + 3 * (size_t) seg[5])
                                return set_error(err, errlen, -EBADMSG, "JPEG frame header too short");
                        /* libjpeg-turbo 2.1 (8-bit build) decodes baseline,
                         * extended, progressive, Huffman or arithmetic; not
                         * lossless or hierarchical frames, not 12-bit samples. */
                        if (code != 0xc0 && code != 0xc1 && code != 0xc2 && code != 0xc9 && code != 0xca)
                                return set_error(err, errlen, -EMEDIUMTYPE, "JPEG frame type 0x%02x (%s) is not supported", code,
                                                 (code & 3) == 3 ? "lossless" : "hierarchical");
                        if (seg[0] != 8)
                                return set_error(err, errlen, -EMEDIUMTYPE, "JPEG with %u-bit samples is not supported", seg[0]);
                        m->have_sof = true;
                        m->progressive = code == 0xc2 || code == 0xc6 || code == 0xca || code == 0xce;
                        m->height = be16(seg + 1);
                        m->width = be16(seg + 3);
                        int r = image_check_dimensions(limits, m->width, m->height, err, errlen);
                        if (r < 0)
                                return r;
                } else if (code == 0xda) {
                        if (!m->have_sof)
                                return set_error(err, errlen, -EBADMSG, "JPEG scan before the frame header");
                        m->scans++;
                        if (m->scans > limits->max_jpeg_scans)
                                return set_error(err, errlen, -EFBIG, "JPEG has more than %u scans", limits->max_jpeg_scans);
                        uint64_t work = (uint64_t) m->scans * m->width * m->height;
                        if (work > limits->max_jpeg_scan_pixels)
                                return set_error(err, errlen, -EFBIG, "JPEG decoding work of %u scans over %" PRIu32 "x%" PRIu32 " pixels is over the limit",
                                                 m->scans, m->width, m->height);
                        in_scan = true;
                } else if (code == 0xe1 && !m->exif && seglen >= 6 && memcmp(seg, "Exif\0\0", 6) == 0) {
                        m->exif = seg;
                        m->exif_size = seglen;
                } else if (code == 0xee && seglen >= 12 && memcmp(seg, "Adobe", 5) == 0)
                        m->adobe = true;
        }

        if (!m->have_sof || m->scans == 0)
                return set_error(err, errlen, -EBADMSG, "JPEG has no %s", m->have_sof ? "scan" : "frame header");
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(tjhandle, tjDestroy);

static int tj_failure(tjhandle tj, const char *what, char *err, size_t errlen) {
        const char *msg = tjGetErrorStr2(tj);
        int r;

        if (strstr(msg, "scans") || strstr(msg, "too large") || strstr(msg, "memory"))
                r = -EFBIG;
        else
                r = -EBADMSG;
        return set_error(err, errlen, r, "JPEG %s%s: %s", what,
                         tjGetErrorCode(tj) == TJERR_WARNING ? " (warning treated as an error)" : "", msg);
}

/* CMYK to RGB as ImageMagick does it: R = (1 - C)(1 - K), ...  Files with
 * an Adobe APP14 segment (Photoshop, ImageMagick, libjpeg) store inverted
 * values, for which that is R = C' K' / 255. */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t pixels, bool inverted) {
        for (size_t i = 0; i < pixels; i++, cmyk += 4, rgb += 3) {
                unsigned c = cmyk[0], m = cmyk[1], y = cmyk[2], k = cmyk[3];
                if (!inverted) {
                        c = 255 - c;
                        m = 255 - m;
                        y = 255 - y;
                        k = 255 - k;
                }
                rgb[0] = (uint8_t) ((c * k + 127) / 255);
                rgb[1] = (uint8_t) ((m * k + 127) / 255);
                rgb[2] = (uint8_t) ((y * k + 127) / 255);
        }
}

int image_decode_jpeg(const uint8_t *data, size_t size, const ImageLimits *limits,
                      Image **ret, char *err, size_t errlen) {
        _cleanup_(tjDestroyp) tjhandle tj = NULL;
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_free_ uint8_t *cmyk = NULL;
        JpegMarkers m;
        int width, height, subsamp, colorspace, r;

        r = walk_markers(data, size, limits, &m, err, errlen);
        if (r < 0)
                return r;
        if (size > ULONG_MAX)
                return set_error(err, errlen, -EFBIG, "JPEG too large");

        tj = tjInitDecompress();
        if (!tj)
                return set_error(err, errlen, -ENOMEM, "cannot create JPEG decompressor");
        if (tjDecompressHeader3(tj, data, (unsigned long) size, &width, &height, &subsamp, &colorspace) < 0)
                return tj_failure(tj, "header", err, errlen);
        r = image_check_dimensions(limits, (uint64_t) width, (uint64_t) height, err, errlen);
        if (r < 0)
                return r;
        if ((uint32_t) width != m.width || (uint32_t) height != m.height)
                return set_error(err, errlen, -EBADMSG, "JPEG header says %dx%d, frame header %" PRIu32 "x%" PRIu32,
                                 width, height, m.width, m.height);

        img = image_new((uint32_t) width, (uint32_t) height, 3);
        if (!img)
                return set_error(err, errlen, -ENOMEM, "out of memory for a %dx%d image", width, height);

        const int flags = TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS;
        switch (colorspace) {
        case TJCS_GRAY:
        case TJCS_RGB:
        case TJCS_YCbCr:
                if (tjDecompress2(tj, data, (unsigned long) size, img->pixels, width, 0, height, TJPF_RGB, flags) < 0)
                        return tj_failure(tj, "decoding", err, errlen);
                break;
        case TJCS_CMYK:
        case TJCS_YCCK: {
                size_t pixels = (size_t) width * (size_t) height;
                cmyk = malloc(pixels * 4); /* pixels < 2^32: no overflow on 64 bits */
                if (!cmyk)
                        return set_error(err, errlen, -ENOMEM, "out of memory for a %dx%d CMYK image", width, height);
                if (tjDecompress2(tj, data, (unsigned long) size, cmyk, width, 0, height, TJPF_CMYK, flags) < 0)
                        return tj_failure(tj, "decoding", err, errlen);
                cmyk_to_rgb(cmyk, img->pixels, pixels, m.adobe);
                break;
        }
        default:
                return set_error(err, errlen, -EMEDIUMTYPE, "JPEG colour space %d is not supported", colorspace);
        }
        img->format = IMAGE_FORMAT_JPEG;

        /* A broken EXIF block is ignored, not fatal: it is metadata, and the
         * pixels decoded cleanly. */
        r = exif_parse_orientation(m.exif, m.exif_size);
        if (r > 1) {
                int k = image_apply_orientation(&img, (unsigned) r);
                if (k < 0)
                        return set_error(err, errlen, k, "cannot apply EXIF orientation %d", r);
        }

        *ret = TAKE_PTR(img);
        return 0;
}
