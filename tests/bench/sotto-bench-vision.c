/* SPDX-License-Identifier: MIT */
/* sotto-bench-vision: time the vision encoder of an mmproj file on the
 * fixed test image (tests/tools/vision-pattern.h), and optionally write the
 * image and the embeddings as raw float32 or compare them with another
 * run's (the reference's).
 *
 *   sotto-bench-vision [-t THREADS] [-r REPS] [--image-out IMG.f32] [--out EMB.f32]
 *                      [--compare REF.f32] MMPROJ.gguf
 *
 * Prints one line: sizes, the median and every run's time in ms, and with
 * --compare the largest absolute and relative differences. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "tests/tools/vision-pattern.h"
#include "vision.h"

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static int write_floats(const char *path, const float *p, size_t n) {
        _cleanup_fclose_ FILE *f = fopen(path, "we");
        if (!f || fwrite(p, sizeof *p, n, f) != n)
                return -EIO;
        return 0;
}

static int run(int argc, char **argv) {
        static const struct option opts[] = {
                { "threads", required_argument, NULL, 't' },
                { "reps", required_argument, NULL, 'r' },
                { "image-out", required_argument, NULL, 'i' },
                { "out", required_argument, NULL, 'o' },
                { "compare", required_argument, NULL, 'c' },
                {},
        };
        const char *image_out = NULL, *out_path = NULL, *cmp_path = NULL;
        int n_threads = 2, reps = 3, c;
        while ((c = getopt_long(argc, argv, "t:r:i:o:c:", opts, NULL)) >= 0) {
                switch (c) {
                case 't': n_threads = atoi(optarg); break;
                case 'r': reps = atoi(optarg); break;
                case 'i': image_out = optarg; break;
                case 'o': out_path = optarg; break;
                case 'c': cmp_path = optarg; break;
                default:
                        fprintf(stderr, "usage: sotto-bench-vision [-t N] [-r N] [--image-out F] [--out F] "
                                        "[--compare F] MMPROJ\n");
                        return 2;
                }
        }
        if (optind != argc - 1 || n_threads < 1 || reps < 1 || reps > 100) {
                fprintf(stderr, "usage: sotto-bench-vision [-t N] [-r N] [--image-out F] [--out F] [--compare F] MMPROJ\n");
                return 2;
        }

        char err[256];
        vision_model *m;
        double t0 = now_ms();
        int r = vision_model_open_path(argv[optind], &m, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
        }
        double t_load = now_ms() - t0;
        const uint32_t S = vision_model_image_size(m);
        const size_t n_out = (size_t)vision_model_n_tokens(m) * vision_model_n_embd_out(m);
        float mean[3], std[3];
        vision_model_image_norm(m, mean, std);
        _cleanup_free_ float *img = malloc((size_t)3 * S * S * sizeof(float));
        _cleanup_free_ float *emb = malloc(n_out * sizeof(float));
        if (!img || !emb)
                return 1;
        vision_pattern_chw(S, mean, std, img);
        if (image_out && write_floats(image_out, img, (size_t)3 * S * S) < 0) {
                fprintf(stderr, "cannot write %s\n", image_out);
                return 1;
        }

        vision_ctx *vc;
        if ((r = vision_ctx_new(m, n_threads, &vc)) < 0) {
                fprintf(stderr, "cannot make a vision context: %s\n", strerror(-r));
                return 1;
        }
        double ms[100];
        for (int i = 0; i < reps && r >= 0; i++) {
                t0 = now_ms();
                r = vision_encode(vc, img, S, S, emb);
                ms[i] = now_ms() - t0;
        }
        vision_ctx_free(vc);
        if (r < 0) {
                fprintf(stderr, "encode failed: %s\n", strerror(-r));
                vision_model_free(m);
                return 1;
        }
        double sorted[100];
        memcpy(sorted, ms, (size_t)reps * sizeof *ms);
        qsort(sorted, (size_t)reps, sizeof *sorted, cmp_double);
        printf("sotto-bench-vision: %s %ux%u, %d layers of %d, %d tokens x %d, %.0fM params, load %.0f ms, "
               "threads %d: encode ms median %.1f (",
               argv[optind], S, S, vision_model_n_layer(m), vision_model_n_embd(m), vision_model_n_tokens(m),
               vision_model_n_embd_out(m), vision_model_n_params(m) / 1e6, t_load, n_threads, sorted[reps / 2]);
        for (int i = 0; i < reps; i++)
                printf("%s%.1f", i ? " " : "", ms[i]);
        printf(")\n");
        vision_model_free(m);

        if (out_path && write_floats(out_path, emb, n_out) < 0) {
                fprintf(stderr, "cannot write %s\n", out_path);
                return 1;
        }
        if (cmp_path) {
                _cleanup_fclose_ FILE *f = fopen(cmp_path, "re");
                _cleanup_free_ float *ref = malloc(n_out * sizeof(float));
                if (!f || !ref || fread(ref, sizeof(float), n_out, f) != n_out) {
                        fprintf(stderr, "cannot read %zu floats from %s\n", n_out, cmp_path);
                        return 1;
                }
                double max_abs = 0, max_rel = 0, ref_max = 0;
                for (size_t i = 0; i < n_out; i++)
                        ref_max = fmax(ref_max, fabs(ref[i]));
                for (size_t i = 0; i < n_out; i++) {
                        double d = fabs((double)emb[i] - ref[i]);
                        max_abs = fmax(max_abs, d);
                        max_rel = fmax(max_rel, d / fmax(fabs(ref[i]), 1e-3 * ref_max));
                }
                printf("compare %s: max |ref| %.4g, max abs err %.3g, max rel err %.3g (relative to max(|ref|, 1e-3 max|ref|))\n",
                       cmp_path, ref_max, max_abs, max_rel);
        }
        return 0;
}

int main(int argc, char **argv) { return run(argc, argv); }
