/* SPDX-License-Identifier: MIT */
/* Hostile images: decompression bombs refused fast and small, truncated and
 * corrupted files refused with the right named error, fds of the wrong kind
 * refused.  Every file is made here (zlib, libpng, TurboJPEG and the
 * libjpeg API for a scan script), no ImageMagick needed.
 *
 * Bomb budget, per the issue: under 50 ms and under 10 MiB of extra
 * memory.  Each refusal runs in a forked child that measures its own
 * wall time (median of 5) and peak RSS growth (ru_maxrss); in the plain
 * build the child also caps its address space at its current size plus
 * 10 MiB, so a decoder that even reserved more would fail with -ENOMEM
 * instead of the expected "too large". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <jpeglib.h>
#include <png.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <turbojpeg.h>
#include <zlib.h>

#include "image.h"
#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define BOMB_MAX_MS 50.0
#define BOMB_MAX_KIB (10 * 1024)

typedef struct Buf {
        uint8_t *p;
        size_t n, cap;
} Buf;

static void buf_put(Buf *b, const void *p, size_t n) {
        if (b->n + n > b->cap) {
                b->cap = (b->n + n) * 2;
                b->p = realloc(b->p, b->cap);
                CHECK(b->p);
        }
        memcpy(b->p + b->n, p, n);
        b->n += n;
}

static void put32(Buf *b, uint32_t v) {
        uint8_t q[4] = { v >> 24, v >> 16, v >> 8, v };
        buf_put(b, q, 4);
}

static void png_chunk(Buf *b, const char *type, const uint8_t *data, uint32_t len) {
        put32(b, len);
        size_t start = b->n;
        buf_put(b, type, 4);
        if (len)
                buf_put(b, data, len);
        put32(b, (uint32_t) crc32(0, b->p + start, (uInt) (len + 4)));
}

/* A PNG that declares width x height (8-bit grey) and carries the deflate
 * stream of its first `rows` rows of zeros: a few KB standing for
 * width * height bytes. */
static Buf make_png_bomb(uint32_t width, uint32_t height, uint32_t rows) {
        static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
        Buf b = {};
        uint8_t ihdr[13] = {};
        z_stream z = {};
        size_t raw = (size_t) (width + 1) * rows;
        uint8_t *zeros = calloc(1, raw), *out = malloc(raw / 100 + 4096);

        CHECK(zeros && out);
        buf_put(&b, sig, 8);
        for (int i = 0; i < 4; i++) {
                ihdr[i] = (uint8_t) (width >> (24 - 8 * i));
                ihdr[4 + i] = (uint8_t) (height >> (24 - 8 * i));
        }
        ihdr[8] = 8;    /* depth */
        ihdr[9] = 0;    /* grey */
        png_chunk(&b, "IHDR", ihdr, 13);
        CHECK(deflateInit(&z, 9) == Z_OK);
        z.next_in = zeros;
        z.avail_in = (uInt) raw;
        z.next_out = out;
        z.avail_out = (uInt) (raw / 100 + 4096);
        CHECK(deflate(&z, Z_FULL_FLUSH) == Z_OK); /* a prefix: the rest would follow */
        png_chunk(&b, "IDAT", out, (uint32_t) z.total_out);
        deflateEnd(&z);
        png_chunk(&b, "IEND", NULL, 0);
        free(zeros);
        free(out);
        return b;
}

static size_t deflate_zeros(size_t n, uint8_t **ret) {
        uint8_t *zeros = calloc(1, n);
        uLongf out = compressBound((uLong) n);
        uint8_t *p = malloc(out);
        CHECK(zeros && p);
        CHECK(compress2(p, &out, zeros, (uLong) n, 9) == Z_OK);
        free(zeros);
        *ret = p;
        return out;
}

/* A valid 1x1 PNG carrying a zTXt and an iCCP chunk that each inflate to
 * 64 MiB: libpng must not inflate them at all. */
static Buf make_png_text_bomb(void) {
        static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
        static const uint8_t ihdr[13] = { 0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0 };
        uint8_t *z, *pix;
        Buf b = {}, t = {};

        buf_put(&b, sig, 8);
        png_chunk(&b, "IHDR", ihdr, 13);
        size_t n = deflate_zeros(64u << 20, &z);
        buf_put(&t, "icc\0\0", 5);
        buf_put(&t, z, n);
        png_chunk(&b, "iCCP", t.p, (uint32_t) t.n);
        t.n = 0;
        buf_put(&t, "Comment\0\0", 9);
        buf_put(&t, z, n);
        png_chunk(&b, "zTXt", t.p, (uint32_t) t.n);
        size_t np = deflate_zeros(2, &pix);
        png_chunk(&b, "IDAT", pix, (uint32_t) np);
        png_chunk(&b, "IEND", NULL, 0);
        free(z);
        free(pix);
        free(t.p);
        return b;
}

/* A small valid JPEG made with TurboJPEG. */
static Buf make_jpeg(int w, int h, int subsamp, int flags) {
        tjhandle tj = tjInitCompress();
        uint8_t *rgb = malloc((size_t) w * h * 3);
        unsigned char *jpeg = NULL;
        unsigned long size = 0;
        Buf b = {};

        CHECK(tj && rgb);
        for (int i = 0; i < w * h; i++) {
                rgb[3 * i] = (uint8_t) (i * 7);
                rgb[3 * i + 1] = (uint8_t) (i / w * 9);
                rgb[3 * i + 2] = (uint8_t) (i % w * 5);
        }
        CHECK(tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jpeg, &size, subsamp, 90, flags) == 0);
        buf_put(&b, jpeg, size);
        tjFree(jpeg);
        tjDestroy(tj);
        free(rgb);
        return b;
}

static size_t find_marker(const Buf *b, uint8_t code) {
        for (size_t i = 0; i + 1 < b->n; i++)
                if (b->p[i] == 0xff && b->p[i + 1] == code)
                        return i;
        CHECK_MSG(false, "marker 0x%02x not found", code);
        return 0;
}

/* A valid progressive JPEG whose scan script has 2080 scans: one DC scan,
 * then for every component and every AC coefficient a first scan at
 * Al = 10 and ten successive-approximation refinements down to Al = 0.
 * Every scan is legal, so a decoder without a scan limit would run them
 * all (the progressive-JPEG resource attack). */
static Buf make_many_scans_jpeg(unsigned *ret_scans) {
        struct jpeg_compress_struct c = {};
        struct jpeg_error_mgr e;
        unsigned char *mem = NULL;
        unsigned long size = 0;
        const int w = 64, h = 64, ncomp = 3;
        size_t n = 1 + (size_t) ncomp * 63 * 11, k = 0;
        jpeg_scan_info *scans = calloc(n, sizeof *scans);
        uint8_t row[64 * 3];
        Buf b = {};

        CHECK(scans);
        c.err = jpeg_std_error(&e);
        jpeg_create_compress(&c);
        jpeg_mem_dest(&c, &mem, &size);
        c.image_width = w;
        c.image_height = h;
        c.input_components = 3;
        c.in_color_space = JCS_RGB;
        jpeg_set_defaults(&c);
        scans[k++] = (jpeg_scan_info) { .comps_in_scan = 3, .component_index = { 0, 1, 2 } };
        for (int ci = 0; ci < ncomp; ci++)
                for (int coef = 1; coef < 64; coef++) {
                        scans[k++] = (jpeg_scan_info) { .comps_in_scan = 1, .component_index = { ci },
                                                        .Ss = coef, .Se = coef, .Ah = 0, .Al = 10 };
                        for (int a = 10; a >= 1; a--)
                                scans[k++] = (jpeg_scan_info) { .comps_in_scan = 1, .component_index = { ci },
                                                                .Ss = coef, .Se = coef, .Ah = a, .Al = a - 1 };
                }
        CHECK(k == n);
        c.scan_info = scans;
        c.num_scans = (int) n;
        jpeg_start_compress(&c, TRUE);
        for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                        row[3 * x] = (uint8_t) (x * 4);
                        row[3 * x + 1] = (uint8_t) (y * 4);
                        row[3 * x + 2] = (uint8_t) ((x ^ y) * 4);
                }
                JSAMPROW r = row;
                jpeg_write_scanlines(&c, &r, 1);
        }
        jpeg_finish_compress(&c);
        jpeg_destroy_compress(&c);
        buf_put(&b, mem, size);
        free(mem);
        free(scans);
        *ret_scans = (unsigned) n;
        return b;
}

static int decode(const Buf *b, const ImageLimits *l, char *err, size_t errlen) {
        Image *img = NULL;
        int r = image_decode_memory(b->p, b->n, l, &img, err, errlen);
        image_free(img);
        return r;
}

static long vm_size_bytes(void) {
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        CHECK(f);
        CHECK(fscanf(f, "%ld", &pages) == 1);
        fclose(f);
        return pages * sysconf(_SC_PAGESIZE);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

typedef struct BombResult {
        int r;
        double ms;
        long kib;
        char err[200];
} BombResult;

/* Decode in a child under the memory cap; report error, time, RSS growth. */
static BombResult refuse_in_child(const Buf *b, const ImageLimits *l) {
        int fds[2];
        BombResult res = {};

        CHECK(pipe(fds) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                struct rusage ru0, ru1;
                double t[5];

                close(fds[0]);
                if (!UNDER_ASAN) {
                        rlim_t cap = (rlim_t) vm_size_bytes() + BOMB_MAX_KIB * 1024;
                        struct rlimit rl = { cap, cap };
                        CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
                }
                getrusage(RUSAGE_SELF, &ru0);
                for (int i = 0; i < 5; i++) {
                        struct timespec a, z;
                        clock_gettime(CLOCK_MONOTONIC, &a);
                        res.r = decode(b, l, res.err, sizeof res.err);
                        clock_gettime(CLOCK_MONOTONIC, &z);
                        t[i] = (double) (z.tv_sec - a.tv_sec) * 1e3 + (double) (z.tv_nsec - a.tv_nsec) / 1e6;
                }
                getrusage(RUSAGE_SELF, &ru1);
                qsort(t, 5, sizeof t[0], cmp_double);
                res.ms = t[2];
                res.kib = ru1.ru_maxrss - ru0.ru_maxrss;
                CHECK(write(fds[1], &res, sizeof res) == (ssize_t) sizeof res);
                _exit(0);
        }
        close(fds[1]);
        CHECK(read(fds[0], &res, sizeof res) == (ssize_t) sizeof res);
        close(fds[0]);
        int status;
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return res;
}

static void check_bomb(const char *name, const Buf *b, const ImageLimits *l, int expected) {
        BombResult res = refuse_in_child(b, l);
        printf("bomb %-34s %7zu bytes: %-9s in %8.1f us, +%ld KiB peak RSS%s (%s)\n", name, b->n,
               image_error_name(image_error_from_errno(res.r)), res.ms * 1000, res.kib,
               UNDER_ASAN ? "" : ", address space capped at +10 MiB", res.err);
        CHECK_MSG(res.r == expected, "%s: got %d (%s), expected %d", name, res.r, res.err, expected);
        CHECK_MSG(res.ms < BOMB_MAX_MS, "%s: %.2f ms", name, res.ms);
        CHECK_MSG(res.kib < BOMB_MAX_KIB, "%s: %ld KiB", name, res.kib);
}

static void test_bombs(void) {
        ImageLimits l;
        image_limits_default(&l);

        Buf png = make_png_bomb(100000, 100000, 40);
        CHECK(png.n < 16 * 1024);
        check_bomb("PNG 100000x100000", &png, &l, -EFBIG);
        free(png.p);

        png = make_png_bomb(30000, 30000, 100); /* each side allowed, the area not */
        check_bomb("PNG 30000x30000 (900 Mpixel)", &png, &l, -EFBIG);
        free(png.p);

        png = make_png_text_bomb();
        check_bomb("PNG 1x1, zTXt+iCCP of 64 MiB each", &png, &l, 0);
        free(png.p);

        Buf jpg = make_jpeg(16, 16, TJSAMP_420, 0);
        size_t sof = find_marker(&jpg, 0xc0);
        jpg.p[sof + 5] = 65500 >> 8;    /* height */
        jpg.p[sof + 6] = 65500 & 0xff;
        jpg.p[sof + 7] = 65500 >> 8;    /* width */
        jpg.p[sof + 8] = 65500 & 0xff;
        check_bomb("JPEG 65500x65500", &jpg, &l, -EFBIG);
        free(jpg.p);

        unsigned nscans;
        jpg = make_many_scans_jpeg(&nscans);
        CHECK(nscans > 2000);
        char name[64];
        snprintf(name, sizeof name, "JPEG progressive, %u scans", nscans);
        check_bomb(name, &jpg, &l, -EFBIG);

        /* The second line: with our own scan limits out of the way,
         * TurboJPEG's progress monitor (TJFLAG_LIMITSCANS) stops it. */
        ImageLimits loose = l;
        loose.max_jpeg_scans = UINT32_MAX;
        loose.max_jpeg_scan_pixels = UINT64_MAX;
        snprintf(name, sizeof name, "same, only TJFLAG_LIMITSCANS");
        check_bomb(name, &jpg, &loose, -EFBIG);
        free(jpg.p);
}

/* ---- truncated and corrupt files ---- */

static Buf make_png(int color, int depth, int interlace) {
        const int w = 23, h = 17;
        Buf b = {};
        png_image img = {};
        (void) interlace;
        (void) depth;
        img.version = PNG_IMAGE_VERSION;
        img.width = w;
        img.height = h;
        img.format = color == 6 ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
        uint8_t *px = malloc((size_t) w * h * 4);
        CHECK(px);
        for (int i = 0; i < w * h * 4; i++)
                px[i] = (uint8_t) (i * 31 + i / 7);
        png_alloc_size_t size = 0;
        CHECK(png_image_write_to_memory(&img, NULL, &size, 0, px, 0, NULL));
        b.p = malloc(size);
        b.n = b.cap = size;
        CHECK(png_image_write_to_memory(&img, b.p, &size, 0, px, 0, NULL));
        b.n = size;
        free(px);
        return b;
}

static void check_error(const char *what, const Buf *b, ImageError expected) {
        char err[256] = "";
        int r = decode(b, NULL, err, sizeof err);
        ImageError e = image_error_from_errno(r);
        CHECK_MSG(e == expected, "%s: got \"%s\" (%s), expected \"%s\"", what, image_error_name(e), err,
                  image_error_name(expected));
        CHECK_MSG(r == 0 || err[0], "%s: no message", what);
}

static void test_truncation(const char *name, const Buf *full) {
        char err[256];
        unsigned n = 0;
        CHECK(decode(full, NULL, err, sizeof err) == 0);
        for (size_t len = 0; len < full->n; len++) {
                Buf cut = { .p = full->p, .n = len };
                char what[64];
                snprintf(what, sizeof what, "%s cut at %zu of %zu", name, len, full->n);
                check_error(what, &cut, IMAGE_ERROR_TRUNCATED);
                n++;
        }
        printf("%s: all %u truncations named \"truncated\"\n", name, n);
}

static Buf copy(const Buf *b) {
        Buf c = { .p = malloc(b->n), .n = b->n, .cap = b->n };
        CHECK(c.p);
        memcpy(c.p, b->p, b->n);
        return c;
}

static void test_corruption(void) {
        Buf png = make_png(2, 8, 0), c;
        char err[256];

        test_truncation("PNG", &png);

        /* A flipped bit in the pixel data: the IDAT CRC no longer matches. */
        c = copy(&png);
        size_t idat = 8;
        while (memcmp(c.p + idat + 4, "IDAT", 4) != 0) {
                idat += 12 + (size_t) (c.p[idat] << 24 | c.p[idat + 1] << 16 | c.p[idat + 2] << 8 | c.p[idat + 3]);
                CHECK(idat + 8 < c.n);
        }
        c.p[idat + 8 + 10] ^= 0x10;
        check_error("PNG with a flipped IDAT bit", &c, IMAGE_ERROR_CORRUPT);
        free(c.p);

        /* An invalid colour type with a correct CRC. */
        c = copy(&png);
        c.p[25] = 5;
        uint32_t crc = (uint32_t) crc32(0, c.p + 12, 17);
        c.p[29] = crc >> 24; c.p[30] = crc >> 16; c.p[31] = crc >> 8; c.p[32] = crc;
        check_error("PNG with colour type 5", &c, IMAGE_ERROR_CORRUPT);
        free(c.p);

        /* A valid deflate stream with the wrong contents: a wrong filter type. */
        c = copy(&png);
        c.p[idat + 8 + 2] ^= 0xff; /* breaks zlib data: corrupt either way, CRC first */
        check_error("PNG with broken zlib data", &c, IMAGE_ERROR_CORRUPT);
        free(c.p);
        free(png.p);

        Buf jpg = make_jpeg(40, 24, TJSAMP_420, 0);
        test_truncation("JPEG", &jpg);
        Buf pjpg = make_jpeg(40, 24, TJSAMP_444, TJFLAG_PROGRESSIVE);
        test_truncation("progressive JPEG", &pjpg);
        free(pjpg.p);

        /* Garbage where a marker should be. */
        c = copy(&jpg);
        size_t dqt = find_marker(&c, 0xdb);
        c.p[dqt] = 0x00;
        check_error("JPEG with garbage before DQT", &c, IMAGE_ERROR_CORRUPT);
        free(c.p);

        /* A Huffman table with more codes than it can hold. */
        c = copy(&jpg);
        size_t dht = find_marker(&c, 0xc4);
        for (int i = 0; i < 16; i++)
                c.p[dht + 5 + i] = 0xff;
        check_error("JPEG with a bogus Huffman table", &c, IMAGE_ERROR_CORRUPT);
        free(c.p);

        /* The scan cut short by an early EOI: libjpeg warns, which is fatal. */
        c = copy(&jpg);
        size_t sos = find_marker(&c, 0xda);
        size_t data = sos + 2 + (size_t) (c.p[sos + 2] << 8 | c.p[sos + 3]);
        c.p[data + 4] = 0xff;
        c.p[data + 5] = 0xd9;
        check_error("JPEG with a scan ended early", &c, IMAGE_ERROR_CORRUPT);
        free(c.p);

        /* A second SOI inside the header. */
        c = copy(&jpg);
        c.p[dqt + 1] = 0xd8;
        check_error("JPEG with a second SOI", &c, IMAGE_ERROR_CORRUPT);
        free(c.p);
        /* 12-bit samples and lossless frames: valid JPEG, not ours to decode. */
        c = copy(&jpg);
        size_t sof = find_marker(&c, 0xc0);
        c.p[sof + 4] = 12;
        check_error("JPEG with 12-bit samples", &c, IMAGE_ERROR_UNSUPPORTED);
        c.p[sof + 4] = 8;
        c.p[sof + 1] = 0xc3;
        check_error("lossless JPEG", &c, IMAGE_ERROR_UNSUPPORTED);
        free(c.p);
        CHECK(decode(&jpg, NULL, err, sizeof err) == 0);
        free(jpg.p);

        Buf gif = {};
        buf_put(&gif, "GIF89a\x01\x00\x01\x00\x00\x00\x00;", 14);
        check_error("GIF", &gif, IMAGE_ERROR_UNSUPPORTED);
        free(gif.p);
        Buf bmp = {};
        buf_put(&bmp, "BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00", 14);
        check_error("BMP", &bmp, IMAGE_ERROR_UNSUPPORTED);
        free(bmp.p);
        Buf empty = {};
        check_error("empty file", &empty, IMAGE_ERROR_TRUNCATED);
        printf("corrupt, unsupported and empty files get their named errors\n");
}

/* The chunk allocation cap (1 MiB) must not refuse a valid file whose
 * pixel data sits in one big IDAT: libpng streams IDAT in small pieces.
 * A noisy 1200x1000 image (about 3.6 MB of IDAT) is written by libpng,
 * its IDATs merged into one chunk, and both files must decode alike. */
static void test_large_idat(void) {
        const uint32_t w = 1200, h = 1000;
        png_image pi = { .version = PNG_IMAGE_VERSION, .width = w, .height = h, .format = PNG_FORMAT_RGB };
        uint8_t *px = malloc((size_t) w * h * 3);
        uint32_t seed = 1;
        char err[256];

        CHECK(px);
        for (size_t i = 0; i < (size_t) w * h * 3; i++) {
                seed = seed * 1103515245u + 12345u;
                px[i] = (uint8_t) (seed >> 24);
        }
        png_alloc_size_t size = 0;
        CHECK(png_image_write_to_memory(&pi, NULL, &size, 0, px, 0, NULL));
        Buf orig = { .p = malloc(size), .n = size, .cap = size };
        CHECK(orig.p && png_image_write_to_memory(&pi, orig.p, &size, 0, px, 0, NULL));
        orig.n = size;

        /* Copy chunks, gathering every IDAT into one. */
        Buf merged = {}, idat = {};
        unsigned n_idat = 0;
        buf_put(&merged, orig.p, 8);
        for (size_t pos = 8; pos + 12 <= orig.n;) {
                uint32_t len = (uint32_t) orig.p[pos] << 24 | orig.p[pos + 1] << 16 | orig.p[pos + 2] << 8 | orig.p[pos + 3];
                const char *type = (const char *) orig.p + pos + 4;
                CHECK(len <= orig.n - pos - 12);
                if (memcmp(type, "IDAT", 4) == 0) {
                        buf_put(&idat, orig.p + pos + 8, len);
                        n_idat++;
                } else {
                        if (memcmp(type, "IEND", 4) == 0)
                                png_chunk(&merged, "IDAT", idat.p, (uint32_t) idat.n);
                        buf_put(&merged, orig.p + pos, 12 + (size_t) len);
                }
                pos += 12 + (size_t) len;
        }
        CHECK(n_idat > 1 && idat.n > 2u << 20);

        Image *a = NULL, *b = NULL;
        CHECK_OK(image_decode_memory(orig.p, orig.n, NULL, &a, err, sizeof err));
        int r = image_decode_memory(merged.p, merged.n, NULL, &b, err, sizeof err);
        CHECK_MSG(r == 0, "one %zu-byte IDAT: %s", idat.n, err);
        CHECK(a->width == w && b->width == w && memcmp(a->pixels, px, (size_t) w * h * 3) == 0 &&
              memcmp(b->pixels, px, (size_t) w * h * 3) == 0);
        printf("one IDAT of %zu bytes (was %u chunks) decodes like the original\n", idat.n, n_idat);
        image_free(a);
        image_free(b);
        free(orig.p);
        free(merged.p);
        free(idat.p);
        free(px);
}

/* ---- fds ---- */

static void test_fds(void) {
        Buf jpg = make_jpeg(32, 16, TJSAMP_420, 0);
        char path[] = "/tmp/sotto-image-fd-XXXXXX", err[256];
        Image *img = NULL;
        ImageLimits l;
        int fd, p[2], s[2];

        image_limits_default(&l);
        fd = mkstemp(path);
        CHECK(fd >= 0);
        unlink(path);
        CHECK(write(fd, jpg.p, jpg.n) == (ssize_t) jpg.n);
        CHECK(lseek(fd, 0, SEEK_SET) == 0);
        CHECK_OK(image_decode_fd(fd, &l, 0, &img, err, sizeof err));
        CHECK(img->width == 32 && img->height == 16);
        img = image_free(img);

        /* A file over the cap is refused from its size, before reading. */
        l.max_file_size = jpg.n - 1;
        CHECK(lseek(fd, 0, SEEK_SET) == 0);
        CHECK_EQ_INT(image_decode_fd(fd, &l, 0, &img, err, sizeof err), -EFBIG);
        image_limits_default(&l);
        close(fd);

        /* A pipe: refused unless allowed; over the cap refused after cap + 1 bytes. */
        CHECK(pipe(p) == 0);
        CHECK(write(p[1], jpg.p, jpg.n) == (ssize_t) jpg.n);
        close(p[1]);
        CHECK_EQ_INT(image_decode_fd(p[0], &l, 0, &img, err, sizeof err), -EBADFD);
        CHECK_OK(image_decode_fd(p[0], &l, IMAGE_FD_ALLOW_PIPE, &img, err, sizeof err));
        img = image_free(img);
        close(p[0]);

        CHECK(pipe2(p, O_NONBLOCK) == 0);
        CHECK(write(p[1], jpg.p, jpg.n) == (ssize_t) jpg.n);
        l.max_file_size = 100;
        CHECK_EQ_INT(image_decode_fd(p[0], &l, IMAGE_FD_ALLOW_PIPE, &img, err, sizeof err), -EFBIG);
        image_limits_default(&l);
        close(p[0]);
        close(p[1]);

        /* A slow writer on a non-blocking pipe, more than a pipe buffer:
         * the reader waits in poll() and gets it all. */
        Buf big = make_jpeg(1024, 768, TJSAMP_444, 0);
        CHECK(big.n > 128 * 1024);
        CHECK(pipe2(p, O_NONBLOCK) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                close(p[0]);
                int fl = fcntl(p[1], F_GETFL);
                fcntl(p[1], F_SETFL, fl & ~O_NONBLOCK);
                for (size_t off = 0; off < big.n; off += 10000) {
                        size_t k = MIN((size_t) 10000, big.n - off);
                        if (write(p[1], big.p + off, k) != (ssize_t) k)
                                _exit(1);
                        usleep(500);
                }
                _exit(0);
        }
        close(p[1]);
        CHECK_OK(image_decode_fd(p[0], &l, IMAGE_FD_ALLOW_PIPE, &img, err, sizeof err));
        CHECK(img->width == 1024 && img->height == 768);
        img = image_free(img);
        close(p[0]);
        int status;
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        free(big.p);

        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0);
        CHECK_EQ_INT(image_decode_fd(s[0], &l, IMAGE_FD_ALLOW_PIPE, &img, err, sizeof err), -EBADFD);
        close(s[0]);
        close(s[1]);

        fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_EQ_INT(image_decode_fd(fd, &l, IMAGE_FD_ALLOW_PIPE, &img, err, sizeof err), -EBADFD);
        printf("/dev/zero: %s\n", err);
        close(fd);

        fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_EQ_INT(image_decode_fd(fd, &l, IMAGE_FD_ALLOW_PIPE, &img, err, sizeof err), -EBADFD);
        close(fd);
        CHECK(img == NULL);
        free(jpg.p);
        printf("fd checks pass\n");
}

int main(void) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        test_bombs();
        test_corruption();
        test_large_idat();
        test_fds();
        return 0;
}
