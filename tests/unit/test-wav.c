/* SPDX-License-Identifier: MIT */
/* WAV parsing and conversion: valid files of each supported encoding
 * decode to the right samples; every malformed field gives an error; the
 * resampler reproduces band-limited signals and removes what lies above
 * the new Nyquist frequency; speech from espeak-ng resampled by us matches
 * sox's resampling. */
#include <errno.h>
#include <math.h>

#include "macro.h"
#include "wav.h"
#include "whisper-test-util.h"

typedef struct wavspec {
        uint16_t format, channels, bits;
        uint32_t rate;
        bool extensible, list_chunk, stream_size;
        uint16_t block_align, byte_rate_fix; /* 0: computed */
} wavspec;

static uint8_t buf[1 << 20];

static size_t put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); return 2; }
static size_t put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); return 4; }

/* frames: interleaved samples as floats in [-1, 1] */
static size_t mkwav(const wavspec *s, const float *frames, size_t n_frames) {
        uint8_t *p = buf;
        uint16_t ba = s->block_align ? s->block_align : (uint16_t)(s->channels * s->bits / 8);
        p += 12;
        memcpy(p, "fmt ", 4);
        p += 4;
        p += put32(p, s->extensible ? 40 : 16);
        p += put16(p, s->extensible ? WAV_FORMAT_EXTENSIBLE : s->format);
        p += put16(p, s->channels);
        p += put32(p, s->rate);
        p += put32(p, s->rate * ba);
        p += put16(p, ba);
        p += put16(p, s->bits);
        if (s->extensible) {
                static const uint8_t tail[14] = { 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00,
                                                  0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71 };
                p += put16(p, 22);
                p += put16(p, s->bits);
                p += put32(p, 0);
                p += put16(p, s->format);
                memcpy(p, tail, 14);
                p += 14;
        }
        if (s->list_chunk) {
                memcpy(p, "LIST", 4);
                p += 4;
                p += put32(p, 5); /* odd: padded */
                memcpy(p, "INFOx\0", 6);
                p += 6;
        }
        memcpy(p, "data", 4);
        p += 4;
        size_t bytes = n_frames * s->channels * (s->bits / 8);
        p += put32(p, s->stream_size ? 0xffffffffu : (uint32_t)bytes);
        for (size_t i = 0; i < n_frames * s->channels; i++) {
                if (s->format == WAV_FORMAT_PCM)
                        p += put16(p, (uint16_t)(int16_t)lrintf(frames[i] * 32767.0f));
                else {
                        uint32_t u;
                        memcpy(&u, &frames[i], 4);
                        p += put32(p, u);
                }
        }
        memcpy(buf, "RIFF", 4);
        put32(buf + 4, (uint32_t)(p - buf - 8));
        memcpy(buf + 8, "WAVE", 4);
        return (size_t)(p - buf);
}

static void test_valid(void) {
        float frames[2 * 100];
        for (int i = 0; i < 200; i++)
                frames[i] = sinf((float)i * 0.05f) * 0.9f;

        wavspec specs[] = {
                { .format = WAV_FORMAT_PCM, .channels = 1, .bits = 16, .rate = 16000 },
                { .format = WAV_FORMAT_PCM, .channels = 2, .bits = 16, .rate = 16000, .list_chunk = true },
                { .format = WAV_FORMAT_FLOAT, .channels = 2, .bits = 32, .rate = 16000 },
                { .format = WAV_FORMAT_FLOAT, .channels = 1, .bits = 32, .rate = 16000, .extensible = true },
                { .format = WAV_FORMAT_PCM, .channels = 2, .bits = 16, .rate = 16000, .extensible = true,
                  .stream_size = true },
        };
        for (size_t k = 0; k < ELEMENTSOF(specs); k++) {
                const wavspec *s = &specs[k];
                size_t n = mkwav(s, frames, 100), n_out;
                wav_info w;
                char err[256] = "";
                float *out;
                CHECK_MSG(wav_parse(buf, n, &w, err, sizeof err) == 0, "spec %zu: %s", k, err);
                CHECK_EQ_INT(w.format, s->format);
                CHECK_EQ_INT(w.channels, s->channels);
                CHECK_EQ_INT(w.rate, 16000);
                CHECK_EQ_INT(w.n_frames, 100);
                CHECK_OK(wav_decode(buf, n, 16000, &out, &n_out, err, sizeof err));
                CHECK_EQ_INT(n_out, 100);
                for (size_t i = 0; i < 100; i++) {
                        float want = 0;
                        for (int c = 0; c < s->channels; c++)
                                want += frames[i * s->channels + c];
                        want /= s->channels;
                        float tol = s->format == WAV_FORMAT_PCM ? 1.0f / 16384 : 1e-7f;
                        CHECK_MSG(fabsf(out[i] - want) <= tol, "spec %zu sample %zu: %g vs %g", k, i, out[i], want);
                }
                free(out);
        }
}

static void expect_error(const char *what, size_t n, int want) {
        wav_info w;
        char err[256] = "";
        int r = wav_parse(buf, n, &w, err, sizeof err);
        CHECK_MSG(r == want, "%s: got %d (%s), want %d", what, r, err, want);
        CHECK_MSG(err[0], "%s: no message", what);
}

static void test_malformed(void) {
        float frames[64] = {};
        const wavspec ok = { .format = WAV_FORMAT_PCM, .channels = 1, .bits = 16, .rate = 16000 };
        wavspec s;
        size_t n;

        n = mkwav(&ok, frames, 64);
        for (size_t cut = 0; cut < 44; cut++)
                expect_error("truncated header", cut, -EBADMSG);
        memcpy(buf, "RIFX", 4);
        expect_error("not RIFF", n, -EBADMSG);
        n = mkwav(&ok, frames, 64);
        memcpy(buf + 8, "AVI ", 4);
        expect_error("not WAVE", n, -EBADMSG);

#define FIELD(what, off, bytes, value, err)                                  \
        do {                                                                 \
                n = mkwav(&ok, frames, 64);                                  \
                if (bytes == 2)                                              \
                        put16(buf + (off), (uint16_t)(value));               \
                else                                                         \
                        put32(buf + (off), (uint32_t)(value));               \
                expect_error(what, n, err);                                  \
        } while (0)
        FIELD("fmt too short", 16, 4, 12, -EBADMSG);
        FIELD("fmt longer than the file", 16, 4, 100000, -EBADMSG);
        FIELD("ADPCM", 20, 2, 2, -EOPNOTSUPP);
        FIELD("A-law", 20, 2, 6, -EOPNOTSUPP);
        FIELD("no channels", 22, 2, 0, -EBADMSG);
        FIELD("too many channels", 22, 2, 200, -EBADMSG);
        FIELD("rate 0", 24, 4, 0, -EBADMSG);
        FIELD("rate 10 MHz", 24, 4, 10000000, -EBADMSG);
        FIELD("byte rate", 28, 4, 12345, -EBADMSG);
        FIELD("block align", 32, 2, 4, -EBADMSG);
        FIELD("8-bit PCM", 34, 2, 8, -EOPNOTSUPP);
        FIELD("24-bit PCM", 34, 2, 24, -EOPNOTSUPP);
        FIELD("data longer than the file", 40, 4, 1000, -EBADMSG);
        FIELD("data not whole frames", 40, 4, 127, -EBADMSG);
        FIELD("data chunk renamed: none left", 36, 4, 0x61746164 ^ 0x20, -EBADMSG);
#undef FIELD

        s = ok;
        s.format = WAV_FORMAT_FLOAT; /* 16-bit float */
        n = mkwav(&s, frames, 8);
        expect_error("16-bit float", n, -EOPNOTSUPP);

        s = ok;
        s.extensible = true;
        n = mkwav(&s, frames, 64);
        buf[20 + 26] ^= 1; /* GUID */
        expect_error("extensible GUID", n, -EOPNOTSUPP);
        n = mkwav(&s, frames, 64);
        put16(buf + 20 + 18, 12); /* valid bits */
        expect_error("valid bits", n, -EOPNOTSUPP);
        n = mkwav(&s, frames, 64);
        put16(buf + 20 + 16, 0); /* cbSize */
        expect_error("extensible too short", n, -EBADMSG);

        /* data before fmt; two fmt chunks; no fmt at all; an unknown chunk cut short */
        n = mkwav(&ok, frames, 64);
        {
                uint8_t fmt[24];
                memcpy(fmt, buf + 12, 24);
                memmove(buf + 12, buf + 36, n - 36);
                memcpy(buf + 12 + (n - 36), fmt, 24);
                expect_error("data before fmt", n, -EBADMSG);
        }
        n = mkwav(&ok, frames, 64);
        memmove(buf + 36 + 24, buf + 36, n - 36);
        memcpy(buf + 36, buf + 12, 24);
        expect_error("two fmt", n + 24, -EBADMSG);
        n = mkwav(&ok, frames, 64);
        memcpy(buf + 12, "junk", 4);
        expect_error("no fmt", n, -EBADMSG);
        s = ok;
        s.list_chunk = true;
        n = mkwav(&s, frames, 64);
        put32(buf + 40, 1 << 30);
        expect_error("LIST chunk too long", n, -EBADMSG);
        n = mkwav(&ok, frames, 64);
        expect_error("fmt only", 36, -EBADMSG);
}

/* ---- resampling ---- */

static void check_tone(uint32_t rate_in, double freq, double amp_want, double tol) {
        size_t n = rate_in; /* one second */
        float *in = malloc(n * sizeof(float)), *out;
        size_t n_out;
        CHECK(in);
        for (size_t i = 0; i < n; i++)
                in[i] = (float)(0.5 * sin(2 * M_PI * freq * (double)i / rate_in));
        CHECK_OK(wav_resample(in, n, rate_in, 16000, &out, &n_out));
        CHECK(n_out == 16000 || n_out == 15999);
        /* away from the edges the output is the same tone at 16 kHz */
        double err = 0, rms = 0;
        for (size_t j = 800; j < n_out - 800; j++) {
                double want = amp_want * 0.5 * sin(2 * M_PI * freq * (double)j / 16000);
                err = fmax(err, fabs(out[j] - want));
                rms += (double)out[j] * out[j];
        }
        rms = sqrt(rms / (double)(n_out - 1600));
        printf("  %u Hz -> 16 kHz, %.0f Hz tone: max error %.2g, rms %.3g\n", rate_in, freq, err, rms);
        CHECK_MSG(err <= tol, "%u Hz tone %g: error %g", rate_in, freq, err);
        free(in);
        free(out);
}

static void test_resample(void) {
        check_tone(44100, 440, 1, 2e-3);
        check_tone(48000, 3000, 1, 2e-3);
        check_tone(22050, 6000, 1, 5e-3);
        check_tone(8000, 300, 1, 2e-3);
        check_tone(11025, 4500, 1, 5e-3);
        /* above the new Nyquist frequency: removed */
        check_tone(44100, 10000, 0, 5e-3);
        check_tone(48000, 9000, 0, 5e-3);

        float x[5] = { 1, 2, 3, 4, 5 }, *y;
        size_t n;
        CHECK_OK(wav_resample(x, 5, 16000, 16000, &y, &n));
        CHECK(n == 5 && y[4] == 5);
        free(y);
        CHECK_OK(wav_resample(x, 0, 44100, 16000, &y, &n));
        CHECK(n == 0);
        free(y);
        CHECK(wav_resample(x, 5, 0, 16000, &y, &n) == -EINVAL);
}

/* espeak-ng's 22050 Hz speech: our resampling against sox's. */
static void test_speech(void) {
        const char *dir = wt_tmpdir();
        char cmd[2048], p22[512], p16[512];
        snprintf(p22, sizeof p22, "%s/speech22k.wav", dir);
        snprintf(p16, sizeof p16, "%s/speech16k.wav", dir);
        snprintf(cmd, sizeof cmd,
                 "espeak-ng -w '%s' 'Dictation turns speech into text.' >/dev/null 2>&1 && "
                 "sox '%s' -r 16000 -e floating-point -b 32 '%s' >/dev/null 2>&1",
                 p22, p22, p16);
        if (system(cmd) != 0) {
                printf("  espeak-ng or sox missing: speech comparison skipped\n");
                return;
        }
        size_t n22, n16, na, nb;
        char err[256];
        _cleanup_free_ void *b22 = test_read_file(p22, &n22);
        _cleanup_free_ void *b16 = test_read_file(p16, &n16);
        float *a, *b;
        CHECK(b22 && b16);
        CHECK_MSG(wav_decode(b22, n22, 16000, &a, &na, err, sizeof err) == 0, "%s", err);
        CHECK_MSG(wav_decode(b16, n16, 16000, &b, &nb, err, sizeof err) == 0, "%s", err);
        CHECK(na > 8000 && (na > nb ? na - nb : nb - na) <= 2);
        /* best alignment within a few samples (filters differ in delay) */
        double best = -1;
        for (int lag = -4; lag <= 4; lag++) {
                double sab = 0, saa = 0, sbb = 0;
                for (size_t i = 100; i + 100 < MIN(na, nb); i++) {
                        size_t j = (size_t)((ptrdiff_t)i + lag);
                        sab += (double)a[i] * b[j];
                        saa += (double)a[i] * a[i];
                        sbb += (double)b[j] * b[j];
                }
                best = fmax(best, sab / sqrt(saa * sbb));
        }
        printf("  espeak-ng speech, ours vs sox: correlation %.5f\n", best);
        CHECK(best >= 0.999);
        free(a);
        free(b);
}

static void test_committed(void) {
        size_t n;
        _cleanup_free_ void *d = test_read_file("tests/data/whisper/speech.wav", &n);
        if (!d)
                return;
        wav_info w;
        char err[256];
        CHECK_MSG(wav_parse(d, n, &w, err, sizeof err) == 0, "%s", err);
        CHECK(w.format == WAV_FORMAT_PCM && w.channels == 1 && w.rate == 16000 && w.bits == 16);
        CHECK_EQ_INT(w.n_frames, 52593);
}

int main(void) {
        test_valid();
        test_malformed();
        test_resample();
        test_speech();
        test_committed();
        wt_cleanup_tmpdir();
        printf("ok\n");
        return 0;
}
