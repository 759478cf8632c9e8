/* SPDX-License-Identifier: MIT */
/* WAV parsing and conversion.  The file is hostile: every chunk size is
 * checked against what is left, the format fields against each other
 * (block_align = channels * bits / 8, byte_rate = rate * block_align), and
 * the data against whole frames, before a sample is read. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "macro.h"
#include "wav.h"

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT share this tail after the format code */
static const uint8_t guid_tail[14] = { 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00,
                                       0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71 };

static int parse_fmt(const uint8_t *p, uint32_t n, wav_info *w, char *err, size_t errlen) {
        if (n < 16)
                return set_error(err, errlen, -EBADMSG, "fmt chunk is %u bytes, at least 16 needed", n);
        uint16_t format = le16(p), channels = le16(p + 2), block_align = le16(p + 12), bits = le16(p + 14);
        uint32_t rate = le32(p + 4), byte_rate = le32(p + 8);

        if (format == WAV_FORMAT_EXTENSIBLE) {
                if (n < 40 || le16(p + 16) < 22)
                        return set_error(err, errlen, -EBADMSG, "extensible fmt chunk is too short");
                uint16_t valid_bits = le16(p + 18);
                if (valid_bits != bits)
                        return set_error(err, errlen, -EOPNOTSUPP, "%u valid bits in %u-bit containers are not supported",
                                         valid_bits, bits);
                if (memcmp(p + 26, guid_tail, sizeof guid_tail) != 0)
                        return set_error(err, errlen, -EOPNOTSUPP, "unknown extensible sub-format");
                format = le16(p + 24);
        }
        if (format != WAV_FORMAT_PCM && format != WAV_FORMAT_FLOAT)
                return set_error(err, errlen, -EOPNOTSUPP, "audio format %u is not supported (PCM and IEEE float are)", format);
        if (format == WAV_FORMAT_PCM && bits != 16)
                return set_error(err, errlen, -EOPNOTSUPP, "%u-bit PCM is not supported (16-bit is)", bits);
        if (format == WAV_FORMAT_FLOAT && bits != 32)
                return set_error(err, errlen, -EOPNOTSUPP, "%u-bit float is not supported (32-bit is)", bits);
        if (channels < 1 || channels > WAV_MAX_CHANNELS)
                return set_error(err, errlen, -EBADMSG, "%u channels", channels);
        if (rate < WAV_MIN_RATE || rate > WAV_MAX_RATE)
                return set_error(err, errlen, -EBADMSG, "sample rate %u Hz is out of range", rate);
        if (block_align != channels * (bits / 8))
                return set_error(err, errlen, -EBADMSG, "block align %u does not match %u channels of %u bits",
                                 block_align, channels, bits);
        if (byte_rate != rate * block_align)
                return set_error(err, errlen, -EBADMSG, "byte rate %u does not match %u Hz * %u bytes", byte_rate, rate,
                                 block_align);
        w->format = format;
        w->channels = channels;
        w->rate = rate;
        w->bits = bits;
        return 0;
}

int wav_parse(const void *buf, size_t size, wav_info *ret, char *err, size_t errlen) {
        const uint8_t *p = buf, *end = p + size;
        wav_info w = {};
        bool have_fmt = false;

        if (!buf || size < 12 || memcmp(p, "RIFF", 4) != 0 || memcmp(p + 8, "WAVE", 4) != 0)
                return set_error(err, errlen, -EBADMSG, "not a RIFF/WAVE file");
        /* The RIFF size is often wrong in streamed files; chunks are checked
         * against the real end instead. */
        p += 12;
        while ((size_t)(end - p) >= 8) {
                uint32_t n = le32(p + 4);
                const uint8_t *body = p + 8;
                size_t left = (size_t)(end - body);

                if (memcmp(p, "fmt ", 4) == 0) {
                        if (have_fmt)
                                return set_error(err, errlen, -EBADMSG, "two fmt chunks");
                        if (n > left)
                                return set_error(err, errlen, -EBADMSG, "fmt chunk is truncated");
                        int r = parse_fmt(body, n, &w, err, errlen);
                        if (r < 0)
                                return r;
                        have_fmt = true;
                } else if (memcmp(p, "data", 4) == 0) {
                        if (!have_fmt)
                                return set_error(err, errlen, -EBADMSG, "data chunk before the fmt chunk");
                        size_t frame = (size_t)w.channels * (w.bits / 8);
                        size_t bytes = n;
                        /* 0xffffffff (or 0) marks a stream of unknown length: up to the end */
                        if (n == UINT32_MAX || n == 0)
                                bytes = left - left % frame;
                        else if (n > left)
                                return set_error(err, errlen, -EBADMSG, "data chunk of %u bytes but only %zu left", n, left);
                        if (bytes % frame)
                                return set_error(err, errlen, -EBADMSG, "data chunk of %zu bytes is not whole frames of %zu",
                                                 bytes, frame);
                        w.data = body;
                        w.n_frames = bytes / frame;
                        *ret = w;
                        return 0;
                }
                /* other chunks (LIST, fact, ...) are skipped; sizes are padded to even */
                if (n > left)
                        return set_error(err, errlen, -EBADMSG, "chunk '%.4s' is truncated", (const char *)p);
                p = body + n + (n & 1 && left > n ? 1 : 0);
        }
        return set_error(err, errlen, -EBADMSG, have_fmt ? "no data chunk" : "no fmt chunk");
}

int wav_to_mono(const wav_info *w, float **ret, size_t *ret_n) {
        size_t n = (size_t)w->n_frames;
        float *out = malloc(MAX(n, (size_t)1) * sizeof(float));
        if (!out)
                return -ENOMEM;
        const uint8_t *p = w->data;
        for (size_t i = 0; i < n; i++) {
                float sum = 0;
                for (unsigned c = 0; c < w->channels; c++) {
                        if (w->format == WAV_FORMAT_PCM) {
                                sum += (float)(int16_t)le16(p) / 32768.0f;
                                p += 2;
                        } else {
                                uint32_t u = le32(p);
                                float f;
                                memcpy(&f, &u, 4);
                                /* Full scale is +-1; beyond it (or not finite) would overflow the
                                 * channel sum and the resampler into inf/NaN. */
                                sum += isfinite(f) ? fminf(fmaxf(f, -1.0f), 1.0f) : 0.0f;
                                p += 4;
                        }
                }
                out[i] = sum / (float)w->channels;
        }
        *ret = out;
        *ret_n = n;
        return 0;
}

/* ---- resampling: out[j] = sum_k in[k] h(j / ratio - k), h a Kaiser-windowed
 * sinc with its cutoff at the lower Nyquist frequency, tabulated finely and
 * interpolated linearly ---- */

#define ZEROS 24        /* zero crossings each side */
#define PHASES 256      /* table points per zero crossing */

static double bessel_i0(double x) {
        double sum = 1, term = 1;
        for (int k = 1; k < 50; k++) {
                term *= (x / (2 * k)) * (x / (2 * k));
                sum += term;
                if (term < 1e-12 * sum)
                        break;
        }
        return sum;
}

int wav_resample(const float *in, size_t n, uint32_t rate_in, uint32_t rate_out, float **ret, size_t *ret_n) {
        if (rate_in < 1 || rate_out < 1)
                return -EINVAL;
        if (rate_in == rate_out) {
                float *o = malloc(MAX(n, (size_t)1) * sizeof(float));
                if (!o)
                        return -ENOMEM;
                if (n)
                        memcpy(o, in, n * sizeof(float));
                *ret = o;
                *ret_n = n;
                return 0;
        }

        const double ratio = (double)rate_out / rate_in;
        const double cutoff = 0.97 * MIN(1.0, ratio); /* of the input Nyquist */
        const double beta = 8.0;
        size_t n_out = (size_t)floor((double)n * ratio);
        _cleanup_free_ float *table = malloc((ZEROS * PHASES + 2) * sizeof(float));
        float *out = malloc(MAX(n_out, (size_t)1) * sizeof(float));
        if (!table || !out) {
                free(out);
                return -ENOMEM;
        }
        /* h(x) for x in zero crossings of the cutoff sinc, x >= 0 */
        for (int i = 0; i <= ZEROS * PHASES + 1; i++) {
                double x = (double)i / PHASES, r = x / ZEROS;
                double sinc = x == 0 ? 1 : sin(M_PI * x) / (M_PI * x);
                double win = r >= 1 ? 0 : bessel_i0(beta * sqrt(1 - r * r)) / bessel_i0(beta);
                table[i] = (float)(cutoff * sinc * win);
        }
        /* input samples span ZEROS / cutoff either side of the output time */
        const double span = ZEROS / cutoff;
        for (size_t j = 0; j < n_out; j++) {
                double t = (double)j / ratio;
                int64_t k0 = (int64_t)ceil(t - span), k1 = (int64_t)floor(t + span);
                double sum = 0;
                for (int64_t k = MAX(k0, (int64_t)0); k <= k1 && k < (int64_t)n; k++) {
                        double x = fabs(t - (double)k) * cutoff * PHASES;
                        size_t i = (size_t)x;
                        if (i >= ZEROS * PHASES)
                                continue;
                        double f = x - (double)i;
                        sum += in[k] * (table[i] * (1 - f) + table[i + 1] * f);
                }
                out[j] = (float)sum;
        }
        *ret = out;
        *ret_n = n_out;
        return 0;
}

int wav_decode(const void *buf, size_t size, uint32_t rate_out, float **ret, size_t *ret_n, char *err,
               size_t errlen) {
        wav_info w;
        _cleanup_free_ float *mono = NULL;
        size_t n;
        int r;

        if ((r = wav_parse(buf, size, &w, err, errlen)) < 0)
                return r;
        if ((r = wav_to_mono(&w, &mono, &n)) < 0 || (r = wav_resample(mono, n, w.rate, rate_out, ret, ret_n)) < 0)
                return set_error(err, errlen, r, "out of memory");
        return 0;
}
