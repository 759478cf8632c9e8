/* SPDX-License-Identifier: MIT */
/* The voice-activity detector on synthetic audio (tones in silence and in
 * noise, gaps shorter and longer than the hangover, a stream longer than
 * the longest utterance, edges independent of the frame grid) and on two
 * sentences spoken by espeak-ng with silences between them. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "macro.h"
#include "test.h"
#include "vad.h"
#include "wav.h"

#define R 16000

typedef struct cut {
        int64_t start, end;
        bool forced;
} cut;

static uint32_t rng = 12345;
static float frand(void) { /* uniform in [-1, 1) */
        rng = rng * 1664525u + 1013904223u;
        return (float)(rng >> 8) / (float)(1u << 23) - 1.0f;
}

/* Runs the detector over x in chunks of varying size; returns the cuts. */
static int run(const vad_params *p, const float *x, size_t n, cut *cuts, int max, vad *out) {
        vad v;
        vad_event ev;
        int nc = 0;
        size_t pos = 0;
        CHECK_OK(vad_init(&v, p));
        while (pos < n) {
                size_t len = (size_t)(1 + (frand() + 1) * 700);
                len = MIN(n - pos, len);
                /* The detector reads from its cursor; it may look back, so
                 * the whole stream is passed with base 0. */
                int r;
                while ((r = vad_process(&v, x, 0, pos + len, &ev)) == 1) {
                        if (ev.type == VAD_START) {
                                CHECK(nc < max);
                                cuts[nc] = (cut){ .start = ev.pos, .end = -1 };
                        } else {
                                CHECK(ev.type == VAD_END && cuts[nc].end == -1);
                                cuts[nc].end = ev.pos;
                                cuts[nc].forced = ev.forced;
                                nc++;
                        }
                }
                CHECK_OK(r);
                pos += len;
        }
        if (vad_flush(&v, &ev) == 1) {
                cuts[nc].end = ev.pos;
                nc++;
        }
        if (out)
                *out = v;
        return nc;
}

static void tone(float *x, size_t from, size_t len, float amp, float hz) {
        for (size_t i = 0; i < len; i++)
                x[from + i] += amp * sinf(2 * (float)M_PI * hz * (float)i / R);
}

static void noise(float *x, size_t n, float rms) {
        /* uniform noise in [-a, a] has rms a / sqrt(3) */
        for (size_t i = 0; i < n; i++)
                x[i] += frand() * rms * sqrtf(3.0f);
}

static int64_t first_above(const float *x, size_t from, size_t n, float thr) {
        for (size_t i = from; i < n; i++)
                if (fabsf(x[i]) > thr)
                        return (int64_t)i;
        return -1;
}

static int64_t last_above(const float *x, size_t to, float thr) {
        for (size_t i = to; i-- > 0;)
                if (fabsf(x[i]) > thr)
                        return (int64_t)i;
        return -1;
}

static void test_params(void) {
        vad v;
        vad_params p;
        vad_default_params(&p);
        CHECK_OK(vad_init(&v, &p));
        CHECK_OK(vad_init(&v, NULL));
        p.tail_ms = p.hangover_ms + 10;
        CHECK(vad_init(&v, &p) == -EINVAL);
        vad_default_params(&p);
        p.max_ms = 40000;
        CHECK(vad_init(&v, &p) == -EINVAL);
        vad_default_params(&p);
        p.threshold_db = NAN;
        CHECK(vad_init(&v, &p) == -EINVAL);
        /* a cursor outside the span given */
        vad_event ev;
        float x[10] = {};
        CHECK_OK(vad_init(&v, NULL));
        CHECK(vad_process(&v, x, 5, 10, &ev) == -EINVAL);
}

/* Tones in digital silence: two utterances, edges on the samples. */
static void test_tones(void) {
        vad_params p;
        vad_default_params(&p);
        size_t n = 5 * R;
        float *x = calloc(n, sizeof *x);
        tone(x, R, R, 0.3f, 440);
        tone(x, 3 * R, R / 2, 0.3f, 300);
        cut c[8];
        int nc = run(&p, x, n, c, 8, NULL);
        CHECK_EQ_INT(nc, 2);
        float thr = powf(10, p.min_db / 20);
        int64_t on1 = first_above(x, 0, n, thr), off1 = last_above(x, 2 * R, thr);
        int64_t on2 = first_above(x, 2 * R, n, thr), off2 = last_above(x, n, thr);
        CHECK_EQ_INT(c[0].start, on1 - R / 5);
        CHECK_EQ_INT(c[0].end, off1 + 1 + R / 5);
        CHECK_EQ_INT(c[1].start, on2 - R / 5);
        CHECK_EQ_INT(c[1].end, off2 + 1 + R / 5);
        CHECK(!c[0].forced && !c[1].forced);

        /* The same sound k samples later gives the same cut, k later, for
         * every offset within a frame. */
        for (int k = 1; k < VAD_FRAME; k += 13) {
                float *y = calloc(n + (size_t)k, sizeof *y);
                memcpy(y + k, x, n * sizeof *x);
                cut d[8];
                CHECK_EQ_INT(run(&p, y, n + (size_t)k, d, 8, NULL), 2);
                for (int i = 0; i < 2; i++) {
                        CHECK_EQ_INT(d[i].start, c[i].start + k);
                        CHECK_EQ_INT(d[i].end, c[i].end + k);
                }
                free(y);
        }
        free(x);
}

/* A gap shorter than the hangover stays inside one utterance; a longer one
 * splits it. */
static void test_hangover(void) {
        vad_params p;
        vad_default_params(&p);
        size_t n = 4 * R;
        float *x = calloc(n, sizeof *x);
        tone(x, R / 2, R / 2, 0.2f, 500);
        tone(x, R + R * 3 / 10, R / 2, 0.2f, 500); /* 300 ms gap */
        cut c[8];
        CHECK_EQ_INT(run(&p, x, n, c, 8, NULL), 1);
        memset(x, 0, n * sizeof *x);
        tone(x, R / 2, R / 2, 0.2f, 500);
        tone(x, R + R * 7 / 10, R / 2, 0.2f, 500); /* 700 ms gap */
        CHECK_EQ_INT(run(&p, x, n, c, 8, NULL), 2);
        CHECK(c[0].end <= c[1].start);
        /* a click of 20 ms is too short to start anything */
        memset(x, 0, n * sizeof *x);
        tone(x, R, R / 50, 0.5f, 500);
        CHECK_EQ_INT(run(&p, x, n, c, 8, NULL), 0);
        free(x);
}

/* In steady noise the floor settles on the noise and only the tones count. */
static void test_noise(void) {
        vad_params p;
        vad_default_params(&p);
        size_t n = 8 * R;
        float *x = calloc(n, sizeof *x);
        /* noise above min_db: loud by the absolute test, quiet by the floor */
        noise(x, n, powf(10, -35.0f / 20));
        vad v;
        cut c[8];
        CHECK_EQ_INT(run(&p, x, n, c, 8, &v), 0);
        CHECK_MSG(fabsf(v.floor_db + 35) < 4, "floor %.1f dB for noise at -35 dB", v.floor_db);

        tone(x, 2 * R, R, 0.3f, 440);
        tone(x, 5 * R, R, 0.3f, 660);
        CHECK_EQ_INT(run(&p, x, n, c, 8, &v), 2);
        printf("# tones in noise: %.3f-%.3f %.3f-%.3f s\n", c[0].start / 16000.0, c[0].end / 16000.0, c[1].start / 16000.0, c[1].end / 16000.0);
        CHECK(labs(c[0].start - (2 * R - R / 5)) < R / 10);
        CHECK(labs(c[0].end - (3 * R + R / 5)) < R / 10);
        CHECK(labs(c[1].start - (5 * R - R / 5)) < R / 10);
        CHECK(labs(c[1].end - (6 * R + R / 5)) < R / 10);
        CHECK_MSG(fabsf(v.floor_db + 35) < 4, "floor %.1f dB after speech", v.floor_db);

        /* The noise gets louder for good: after a while it is the floor again. */
        free(x);
        n = 14 * R;
        x = calloc(n, sizeof *x);
        noise(x, 2 * R, powf(10, -60.0f / 20));
        noise(x + 2 * R, n - 2 * R, powf(10, -40.0f / 20));
        int nc = run(&p, x, n, c, 8, &v);
        CHECK_MSG(nc <= 1, "%d utterances in noise", nc);
        CHECK_MSG(fabsf(v.floor_db + 40) < 4, "floor %.1f dB after the noise rose", v.floor_db);
        free(x);
}

/* A voice that never pauses is cut at max_ms, and goes on in a new one. */
static void test_max(void) {
        vad_params p;
        vad_default_params(&p);
        p.max_ms = 5000;
        size_t n = 13 * R;
        float *x = calloc(n, sizeof *x);
        tone(x, R, 11 * R, 0.2f, 440);
        cut c[8];
        int nc = run(&p, x, n, c, 8, NULL);
        CHECK_EQ_INT(nc, 3);
        CHECK(c[0].forced && c[1].forced && !c[2].forced);
        CHECK_EQ_INT(c[0].end - c[0].start, 5 * R);
        CHECK_EQ_INT(c[1].start, c[0].end);
        CHECK(c[1].end - c[1].start <= 5 * R);
        free(x);
}

/* espeak-ng: "Please open the window." and a second sentence, with a second
 * of silence (and faint noise) around and between them. */
static float *speak(const char *dir, const char *text, size_t *n) {
        char path[512], cmd[1024], err[256];
        snprintf(path, sizeof path, "%s/s.wav", dir);
        snprintf(cmd, sizeof cmd, "espeak-ng -w '%s' '%s'", path, text);
        CHECK_MSG(system(cmd) == 0, "%s", cmd);
        FILE *f = fopen(path, "rb");
        CHECK(f);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        rewind(f);
        void *buf = malloc((size_t)size);
        CHECK(fread(buf, 1, (size_t)size, f) == (size_t)size);
        fclose(f);
        float *pcm;
        CHECK_OK(wav_decode(buf, (size_t)size, R, &pcm, n, err, sizeof err));
        free(buf);
        return pcm;
}

static void test_espeak(void) {
        if (system("command -v espeak-ng >/dev/null 2>&1") != 0) {
                printf("# espeak-ng is not installed: sentence case skipped\n");
                return;
        }
        char dir[] = "/tmp/sotto-test-vad.XXXXXX";
        CHECK(mkdtemp(dir));
        size_t n1, n2;
        float *s1 = speak(dir, "Please open the window.", &n1);
        float *s2 = speak(dir, "The quick brown fox, who was tired, jumps over the lazy dog.", &n2);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        (void)system(cmd);

        for (int noisy = 0; noisy < 2; noisy++) {
                size_t at1 = R, at2 = at1 + n1 + R, n = at2 + n2 + R;
                float *x = calloc(n, sizeof *x);
                if (noisy)
                        noise(x, n, powf(10, -65.0f / 20));
                for (size_t i = 0; i < n1; i++)
                        x[at1 + i] += s1[i];
                for (size_t i = 0; i < n2; i++)
                        x[at2 + i] += s2[i];
                cut c[8];
                int nc = run(NULL, x, n, c, 8, NULL);
                CHECK_MSG(nc == 2, "%d utterances (noise %d)", nc, noisy);
                /* Each utterance holds its sentence's audible part. */
                int64_t on1 = first_above(s1, 0, n1, 0.01f) + (int64_t)at1;
                int64_t off1 = last_above(s1, n1, 0.01f) + (int64_t)at1;
                int64_t on2 = first_above(s2, 0, n2, 0.01f) + (int64_t)at2;
                int64_t off2 = last_above(s2, n2, 0.01f) + (int64_t)at2;
                printf("# noise %d: sentence 1 %.3f-%.3f s cut %.3f-%.3f; sentence 2 %.3f-%.3f s cut %.3f-%.3f\n",
                       noisy, on1 / 16000.0, off1 / 16000.0, c[0].start / 16000.0, c[0].end / 16000.0,
                       on2 / 16000.0, off2 / 16000.0, c[1].start / 16000.0, c[1].end / 16000.0);
                CHECK(c[0].start <= on1 && c[0].end > off1);
                CHECK(c[1].start <= on2 && c[1].end > off2);
                /* ... and not much more: pre-roll and tail of 200 ms, plus
                 * the quiet fringes of the voice. */
                CHECK(on1 - c[0].start < R / 2 && c[0].end - off1 < R / 2);
                CHECK(on2 - c[1].start < R / 2 && c[1].end - off2 < R / 2);
                free(x);
        }
        free(s1);
        free(s2);
}

int main(void) {
        test_params();
        test_tones();
        test_hangover();
        test_noise();
        test_max();
        test_espeak();
        printf("ok\n");
        return 0;
}
