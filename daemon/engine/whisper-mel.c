/* SPDX-License-Identifier: MIT */
/* The log-mel spectrogram, computed exactly as whisper.cpp does
 * (specs/whisper.md §3.1) so that its outputs can be compared bit for bit:
 *
 *   padded = [reflect(x[1..200])] x [480000 + 200 zeros]
 *   frame t = padded[160 t .. 160 t + 399] * periodic Hann(400)
 *   power[k] = |FFT(frame)[k]|^2, k = 0..200
 *   mel[m][t] = log10(max(sum_k filters[m][k] power[k], 1e-10))
 *   v = (max(v, max(mel) - 8) + 4) / 4
 *
 * The FFT is a radix-2 decimation in time down to the odd length 25, where
 * a direct DFT is done, with twiddles from one 400-entry sin/cos table (the
 * same float rounding as whisper.cpp). */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "whisper-impl.h"

static float sin_tab[WHISPER_N_FFT], cos_tab[WHISPER_N_FFT], hann[WHISPER_N_FFT];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables_init(void) {
        for (int i = 0; i < WHISPER_N_FFT; i++) {
                double theta = (2 * M_PI * i) / WHISPER_N_FFT;
                sin_tab[i] = sinf((float)theta);
                cos_tab[i] = cosf((float)theta);
                hann[i] = (float)(0.5 * (1.0 - cosf((float)((2.0 * M_PI * i) / WHISPER_N_FFT))));
        }
}

/* Direct DFT of a real sequence of odd length n (a divisor of 400). */
static void dft(const float *in, int n, float *out) {
        int step = WHISPER_N_FFT / n;
        for (int k = 0; k < n; k++) {
                float re = 0, im = 0;
                for (int j = 0; j < n; j++) {
                        int idx = (k * j * step) % WHISPER_N_FFT;
                        re += in[j] * cos_tab[idx];
                        im -= in[j] * sin_tab[idx];
                }
                out[2 * k] = re;
                out[2 * k + 1] = im;
        }
}

/* in: n reals followed by room for n more (scratch); out: n complex values
 * followed by room for 2n more complex values (scratch for the halves). */
static void fft(float *in, int n, float *out) {
        if (n == 1) {
                out[0] = in[0];
                out[1] = 0;
                return;
        }
        int half = n / 2;
        if (n & 1) {
                dft(in, n, out);
                return;
        }

        float *sub = in + n, *even = out + 2 * n, *odd = even + n;
        for (int i = 0; i < half; i++)
                sub[i] = in[2 * i];
        fft(sub, half, even);
        for (int i = 0; i < half; i++)
                sub[i] = in[2 * i + 1];
        fft(sub, half, odd);

        /* X[k] = E[k] + w^k O[k], X[k + n/2] = E[k] - w^k O[k], w = e^{-2 pi i / n} */
        int step = WHISPER_N_FFT / n;
        for (int k = 0; k < half; k++) {
                float re = cos_tab[k * step], im = -sin_tab[k * step];
                float ore = odd[2 * k], oim = odd[2 * k + 1];
                out[2 * k] = even[2 * k] + re * ore - im * oim;
                out[2 * k + 1] = even[2 * k + 1] + re * oim + im * ore;
                out[2 * (k + half)] = even[2 * k] - re * ore + im * oim;
                out[2 * (k + half) + 1] = even[2 * k + 1] - re * oim - im * ore;
        }
}

typedef struct mel_job {
        const whisper_model *m;
        const float *padded;
        int64_t n_signal; /* samples of padded that may be non-zero */
        int32_t n_len;
        float *mel;
        int ith, nth;
} mel_job;

static void *mel_worker(void *arg) {
        mel_job *j = arg;
        const whisper_model *m = j->m;
        const int nb = m->n_fft_bins;
        /* fft scratch: the recursion needs 2n for the input and 8n for the output */
        float in[2 * WHISPER_N_FFT], out[8 * WHISPER_N_FFT];
        int64_t n_frames = MIN((int64_t)j->n_len, j->n_signal / WHISPER_HOP + 1);
        int32_t t = j->ith;

        for (; t < n_frames; t += j->nth) {
                int64_t off = (int64_t)t * WHISPER_HOP;
                int64_t n = MIN((int64_t)WHISPER_N_FFT, j->n_signal - off);
                for (int64_t i = 0; i < n; i++)
                        in[i] = hann[i] * j->padded[off + i];
                for (int64_t i = MAX(n, 0); i < 2 * WHISPER_N_FFT; i++)
                        in[i] = 0;
                fft(in, WHISPER_N_FFT, out);
                for (int k = 0; k < nb; k++)
                        out[k] = out[2 * k] * out[2 * k] + out[2 * k + 1] * out[2 * k + 1];
                for (int b = 0; b < m->hp.n_mels; b++) {
                        const float *f = m->filters + (size_t)b * nb;
                        double sum = 0;
                        int k = 0;
                        for (; k < nb - 3; k += 4)
                                sum += out[k] * f[k] + out[k + 1] * f[k + 1] + out[k + 2] * f[k + 2] + out[k + 3] * f[k + 3];
                        for (; k < nb; k++)
                                sum += out[k] * f[k];
                        j->mel[(size_t)b * j->n_len + t] = (float)log10(MAX(sum, 1e-10));
                }
        }
        /* frames past the signal see only zeros */
        for (; t < j->n_len; t += j->nth)
                for (int b = 0; b < m->hp.n_mels; b++)
                        j->mel[(size_t)b * j->n_len + t] = (float)log10(1e-10);
        return NULL;
}

int whisper_log_mel(const whisper_model *m, const float *pcm, size_t n_samples, int n_threads, float **ret_mel,
                    int32_t *ret_n_len) {
        const int64_t pad = WHISPER_N_FFT / 2, tail = (int64_t)WHISPER_SAMPLE_RATE * WHISPER_CHUNK_SECONDS;

        if (n_samples > (size_t)INT32_MAX - (size_t)tail - 2 * (size_t)pad)
                return -E2BIG;
        pthread_once(&tables_once, tables_init);

        int64_t n = (int64_t)n_samples, n_padded = n + tail + 2 * pad;
        _cleanup_free_ float *padded = calloc((size_t)n_padded, sizeof(float));
        if (!padded)
                return -ENOMEM;
        if (n > 0)
                memcpy(padded + pad, pcm, (size_t)n * sizeof(float));
        /* reflect x[1..200] in front, clamped for very short input */
        int64_t n_reflect = MIN(pad, MAX((int64_t)0, n - 1));
        for (int64_t j = 1; j <= n_reflect; j++)
                padded[pad - j] = pcm[j];

        int32_t n_len = (int32_t)((n_padded - WHISPER_N_FFT) / WHISPER_HOP);
        size_t n_mel_values = (size_t)m->hp.n_mels * (size_t)n_len;
        _cleanup_free_ float *mel = malloc(n_mel_values * sizeof(float));
        if (!mel)
                return -ENOMEM;

        if (n_threads < 1)
                n_threads = 1;
        n_threads = MIN(n_threads, 64);
        mel_job jobs[64];
        pthread_t tids[64];
        int started = 0;
        for (int i = 0; i < n_threads; i++)
                jobs[i] = (mel_job){ .m = m, .padded = padded, .n_signal = n + pad, .n_len = n_len, .mel = mel,
                                     .ith = i, .nth = n_threads };
        for (int i = 1; i < n_threads; i++) {
                if (pthread_create(&tids[i], NULL, mel_worker, &jobs[i]) != 0)
                        break;
                started = i;
        }
        /* threads that failed to start: their frames are done here */
        for (int i = started + 1; i < n_threads; i++)
                mel_worker(&jobs[i]);
        mel_worker(&jobs[0]);
        for (int i = 1; i <= started; i++)
                pthread_join(tids[i], NULL);

        double mx = -1e20;
        for (size_t i = 0; i < n_mel_values; i++)
                if (mel[i] > mx)
                        mx = mel[i];
        mx -= 8.0;
        for (size_t i = 0; i < n_mel_values; i++) {
                if (mel[i] < mx)
                        mel[i] = (float)mx;
                mel[i] = (float)((mel[i] + 4.0) / 4.0);
        }

        *ret_mel = TAKE_PTR(mel);
        *ret_n_len = n_len;
        return 0;
}
