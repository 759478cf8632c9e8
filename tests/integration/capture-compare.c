/* SPDX-License-Identifier: MIT */
/* capture-compare REF.f32 CAPTURED.f32: aligns the captured samples on the
 * reference (raw float32, 16 kHz mono) by cross-correlation, then prints
 * "lag=N corr=C dropouts=D first_sound=S" and exits 0 when corr >= 0.99 and
 * there are no dropouts: runs of 8 or more exact zeros in the capture where
 * the reference has sound. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static float *load(const char *path, size_t *n) {
        FILE *f = fopen(path, "rb");
        float *v = NULL;
        long len;

        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
                *n = (size_t) len / sizeof(float);
                v = malloc(*n * sizeof(float) + 1);
                if (v && fread(v, sizeof(float), *n, f) != *n) {
                        free(v);
                        v = NULL;
                }
        }
        fclose(f);
        return v;
}

static size_t first_sound(const float *v, size_t n, float thr) {
        for (size_t i = 0; i < n; i++)
                if (fabsf(v[i]) > thr)
                        return i;
        return n;
}

static double corr_at(const float *ref, size_t nref, const float *cap, size_t ncap, long lag) {
        double sxy = 0, sxx = 0, syy = 0;

        for (size_t i = 0; i < nref; i++) {
                long j = (long) i + lag;
                double x = ref[i], y = (j >= 0 && (size_t) j < ncap) ? cap[j] : 0.0;
                sxy += x * y;
                sxx += x * x;
                syy += y * y;
        }
        return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0.0;
}

int main(int argc, char **argv) {
        size_t nref, ncap, fr, fc, dropouts = 0;
        float *ref, *cap;
        long best_lag = 0, lag0;
        double best = -2;

        if (argc != 3) {
                fprintf(stderr, "usage: capture-compare REF.f32 CAPTURED.f32\n");
                return 2;
        }
        ref = load(argv[1], &nref);
        cap = load(argv[2], &ncap);
        if (!ref || !cap || nref == 0) {
                fprintf(stderr, "capture-compare: cannot read the inputs\n");
                return 2;
        }
        fr = first_sound(ref, nref, 0.01f);
        fc = first_sound(cap, ncap, 0.01f);
        if (fr == nref || fc == ncap) {
                printf("lag=? corr=0 dropouts=? first_sound=none (the capture is silent)\n");
                return 1;
        }
        /* Coarse lag from the onsets, then the best correlation around it. */
        lag0 = (long) fc - (long) fr;
        for (long lag = lag0 - 1600; lag <= lag0 + 1600; lag++) {
                double c = corr_at(ref, nref, cap, ncap, lag);
                if (c > best) {
                        best = c;
                        best_lag = lag;
                }
        }
        for (size_t i = 0; i < nref;) {
                long j = (long) i + best_lag;
                size_t run = 0;
                double energy = 0;
                while (i + run < nref && j + (long) run >= 0 && (size_t) (j + (long) run) < ncap &&
                       cap[j + (long) run] == 0.0f) {
                        energy += (double) ref[i + run] * ref[i + run];
                        run++;
                }
                if (j < 0 || (size_t) j >= ncap) {
                        /* The capture does not cover this reference sample. */
                        if (fabsf(ref[i]) > 0.001f)
                                dropouts++;
                        i++;
                        continue;
                }
                if (run >= 8 && sqrt(energy / (double) run) > 0.001)
                        dropouts++;
                i += run ? run : 1;
        }
        printf("lag=%ld corr=%.5f dropouts=%zu first_sound=%zu\n", best_lag, best, dropouts, fc);
        return best >= 0.99 && dropouts == 0 ? 0 : 1;
}
