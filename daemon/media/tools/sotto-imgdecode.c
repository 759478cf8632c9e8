/* SPDX-License-Identifier: MIT */
/* Developer tool: decode an image the way the worker does and write it as
 * PAM, or time decoding and preprocessing.
 *
 *   sotto-imgdecode FILE OUT.pam            decode (EXIF applied) to PAM
 *   sotto-imgdecode --bench N FILE          median decode and preprocess CPU times
 *   sotto-imgdecode --preprocess gemma3|gemma3n FILE OUT.pam
 *                                            the tower's input squares, de-normalised,
 *                                            stacked vertically, as PAM */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>

#include "image-preprocess.h"

/* CPU time of this thread: on a machine shared with other jobs it moves
 * far less than wall time. */
static double now_ms(void) {
        struct timespec t;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        return (double) t.tv_sec * 1e3 + (double) t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static int write_pam(const char *path, const Image *img) {
        _cleanup_fclose_ FILE *f = fopen(path, "wb");
        if (!f)
                return -errno;
        fprintf(f, "P7\nWIDTH %u\nHEIGHT %u\nDEPTH %u\nMAXVAL 255\nTUPLTYPE %s\nENDHDR\n", img->width, img->height,
                img->channels, img->channels == 4 ? "RGB_ALPHA" : "RGB");
        if (fwrite(img->pixels, 1, img->stride * img->height, f) != img->stride * img->height)
                return -EIO;
        return fflush(f) == 0 ? 0 : -errno;
}

static int params_by_name(const char *name, VisionPreprocessParams *p) {
        if (strcmp(name, "gemma3") == 0)
                vision_preprocess_params_gemma3(p);
        else if (strcmp(name, "gemma3n") == 0)
                vision_preprocess_params_gemma3n(p);
        else
                return -EINVAL;
        return 0;
}

static int bench(const char *file, int n) {
        _cleanup_free_ void *data = NULL;
        size_t size = 0;
        char err[256];
        double *t = calloc((size_t) n, sizeof *t);
        _cleanup_free_ double *tp = t;
        ImageLimits l;
        int fd, r;

        image_limits_default(&l);
        fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return fprintf(stderr, "%s: %m\n", file), -errno;
        r = image_read_fd(fd, l.max_file_size, 0, &data, &size, err, sizeof err);
        close(fd);
        if (r < 0)
                return fprintf(stderr, "%s: %s\n", file, err), r;

        _cleanup_(image_freep) Image *img = NULL;
        for (int i = 0; i < n; i++) {
                img = image_free(img);
                double a = now_ms();
                r = image_decode_memory(data, size, &l, &img, err, sizeof err);
                t[i] = now_ms() - a;
                if (r < 0)
                        return fprintf(stderr, "%s: %s\n", file, err), r;
        }
        qsort(t, (size_t) n, sizeof *t, cmp_double);
        printf("%s: %ux%u %s, %zu bytes: decode %.2f ms CPU (median of %d)\n", file, img->width, img->height,
               image_format_name(img->format), size, t[n / 2], n);

        const char *names[] = { "gemma3", "gemma3n" };
        for (size_t k = 0; k < ELEMENTSOF(names); k++) {
                VisionPreprocessParams p;
                params_by_name(names[k], &p);
                for (int pass = 0; pass < 2; pass++) {
                        if (pass == 1)
                                p.max_crops = 0; /* whole image only */
                        uint32_t n_images = 0;
                        for (int i = 0; i < n; i++) {
                                _cleanup_(vision_input_freep) VisionInput *v = NULL;
                                double a = now_ms();
                                r = vision_preprocess(img, &p, &v);
                                t[i] = now_ms() - a;
                                if (r < 0)
                                        return fprintf(stderr, "preprocess: %s\n", strerror(-r)), r;
                                n_images = v->n_images;
                        }
                        qsort(t, (size_t) n, sizeof *t, cmp_double);
                        printf("  preprocess %-7s %ux%u, %u image(s): %.2f ms CPU\n", names[k], p.image_size, p.image_size,
                               n_images, t[n / 2]);
                        if (names[k][6] == 'n')
                                break; /* no crops for 3n anyway */
                }
        }
        return 0;
}

static int preprocess_to_pam(const char *name, const char *file, const char *out) {
        VisionPreprocessParams p;
        char err[256];
        int fd, r;

        if (params_by_name(name, &p) < 0)
                return fprintf(stderr, "unknown model '%s' (gemma3, gemma3n)\n", name), -EINVAL;
        fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return fprintf(stderr, "%s: %m\n", file), -errno;
        _cleanup_(image_freep) Image *img = NULL;
        r = image_decode_fd(fd, NULL, 0, &img, err, sizeof err);
        close(fd);
        if (r < 0)
                return fprintf(stderr, "%s: %s: %s\n", file, image_error_name(image_error_from_errno(r)), err), r;
        _cleanup_(vision_input_freep) VisionInput *v = NULL;
        r = vision_preprocess(img, &p, &v);
        if (r < 0)
                return fprintf(stderr, "preprocess: %s\n", strerror(-r)), r;

        const uint32_t s = v->image_size;
        _cleanup_(image_freep) Image *sheet = image_new(s, s * v->n_images, 3);
        if (!sheet)
                return -ENOMEM;
        for (uint32_t i = 0; i < v->n_images; i++) {
                const float *d = vision_input_image(v, i);
                for (size_t k = 0; k < (size_t) s * s; k++)
                        for (int c = 0; c < 3; c++) {
                                float u = (d[(size_t) c * s * s + k] * p.std[c] + p.mean[c]) * 255.0f;
                                sheet->pixels[((size_t) i * s * s + k) * 3 + c] = (uint8_t) (u < 0 ? 0 : u > 255 ? 255 : u + 0.5f);
                        }
                printf("image %u: source %ux%u+%u+%u\n", i, v->rects[i].width, v->rects[i].height, v->rects[i].x, v->rects[i].y);
        }
        return write_pam(out, sheet);
}

int main(int argc, char **argv) {
        char err[256];
        int r, fd;

        if (argc == 4 && strcmp(argv[1], "--bench") == 0)
                return bench(argv[3], MAX(1, atoi(argv[2]))) < 0;
        if (argc == 5 && strcmp(argv[1], "--preprocess") == 0)
                return preprocess_to_pam(argv[2], argv[3], argv[4]) < 0;
        if (argc != 3) {
                fprintf(stderr, "usage: %s FILE OUT.pam | --bench N FILE | --preprocess gemma3|gemma3n FILE OUT.pam\n", argv[0]);
                return 2;
        }
        fd = strcmp(argv[1], "-") == 0 ? dup(STDIN_FILENO) : open(argv[1], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return fprintf(stderr, "%s: %m\n", argv[1]), 1;
        _cleanup_(image_freep) Image *img = NULL;
        r = image_decode_fd(fd, NULL, IMAGE_FD_ALLOW_PIPE, &img, err, sizeof err);
        close(fd);
        if (r < 0)
                return fprintf(stderr, "%s: %s: %s\n", argv[1], image_error_name(image_error_from_errno(r)), err), 1;
        printf("%s: %ux%u %s, %s, EXIF orientation %u\n", argv[1], img->width, img->height, image_format_name(img->format),
               img->channels == 4 ? "RGBA" : "RGB", img->orientation);
        r = write_pam(argv[2], img);
        if (r < 0)
                return fprintf(stderr, "%s: %s\n", argv[2], strerror(-r)), 1;
        return 0;
}
