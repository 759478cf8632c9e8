/* SPDX-License-Identifier: MIT */
/* WAV files (RIFF/WAVE): a parser that checks every field, and conversion
 * to the 16 kHz mono float samples speech recognition wants. */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum {
        WAV_FORMAT_PCM = 1,
        WAV_FORMAT_FLOAT = 3,
        WAV_FORMAT_EXTENSIBLE = 0xFFFE,
};

#define WAV_MAX_CHANNELS 32
#define WAV_MIN_RATE 1000
#define WAV_MAX_RATE 768000

typedef struct wav_info {
        uint16_t format;   /* WAV_FORMAT_PCM or WAV_FORMAT_FLOAT (extensible resolved) */
        uint16_t channels;
        uint32_t rate;
        uint16_t bits;     /* 16 for PCM, 32 for float */
        uint64_t n_frames;
        const uint8_t *data; /* interleaved samples, inside the buffer given */
} wav_info;

/* Parse a whole file held in memory.  -EBADMSG with a sentence in err for
 * a malformed file, -EOPNOTSUPP for a valid but unsupported encoding. */
int wav_parse(const void *buf, size_t size, wav_info *ret, char *err, size_t errlen);

/* Interleaved frames -> mono floats in [-1, 1] (channels averaged). */
int wav_to_mono(const wav_info *w, float **ret, size_t *ret_n);

/* Band-limited (windowed-sinc) sample-rate conversion. */
int wav_resample(const float *in, size_t n, uint32_t rate_in, uint32_t rate_out, float **ret, size_t *ret_n);

/* Parse, downmix, resample to rate_out. */
int wav_decode(const void *buf, size_t size, uint32_t rate_out, float **ret, size_t *ret_n, char *err,
               size_t errlen);
