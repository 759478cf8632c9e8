/* SPDX-License-Identifier: MIT */
/* libFuzzer harness for the WAV parser: parse, downmix and resample to
 * 16 kHz whatever the input is; accepted data must lie inside the input.
 * Seeds: tests/fuzz/corpus/wav/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wav.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        wav_info w;
        char err[256];
        float *pcm;
        size_t n;

        if (size > (1 << 16))
                return 0; /* resampling cost grows with the length, not the coverage */
        if (wav_parse(data, size, &w, err, sizeof err) < 0) {
                if (!err[0])
                        abort();
                return 0;
        }
        size_t bytes = (size_t)w.n_frames * w.channels * (w.bits / 8);
        if (w.data < data || w.data + bytes > data + size)
                abort();
        if (wav_decode(data, size, 16000, &pcm, &n, err, sizeof err) < 0)
                abort(); /* it parsed once */
        for (size_t i = 0; i < n; i++)
                if (pcm[i] != pcm[i])
                        abort(); /* NaN */
        free(pcm);
        return 0;
}
