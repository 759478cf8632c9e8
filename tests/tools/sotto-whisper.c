/* SPDX-License-Identifier: MIT */
/* sotto-whisper: transcribe a WAV file with a whisper.cpp model file.
 *
 *   sotto-whisper [-t THREADS] [-l LANG|auto] [--no-timestamps] [--tokens]
 *                 [--audio-ctx N] MODEL.bin AUDIO.wav
 *
 * Prints one line per segment ("[t0 --> t1] text"), with --tokens the
 * token ids, and the time spent and real-time factor on stderr. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "wav.h"
#include "whisper.h"

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *read_all(const char *path, size_t *size) {
        _cleanup_fclose_ FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        size_t cap = 1 << 16, n = 0;
        char *buf = malloc(cap);
        while (buf) {
                n += fread(buf + n, 1, cap - n, f);
                if (n < cap)
                        break;
                char *nb = realloc(buf, cap *= 2);
                if (!nb)
                        free(buf);
                buf = nb;
        }
        if (buf && ferror(f)) {
                free(buf);
                return NULL;
        }
        *size = n;
        return buf;
}

static void print_ts(int64_t cs) {
        printf("%02d:%02d.%02d", (int)(cs / 6000), (int)(cs / 100 % 60), (int)(cs % 100));
}

static int run(int argc, char **argv) {
        static const struct option opts[] = {
                { "threads", required_argument, NULL, 't' },  { "language", required_argument, NULL, 'l' },
                { "no-timestamps", no_argument, NULL, 'n' }, { "tokens", no_argument, NULL, 'T' },
                { "audio-ctx", required_argument, NULL, 'a' }, { "bench", no_argument, NULL, 'B' }, {},
        };
        whisper_params wp;
        whisper_state_params sp;
        bool tokens = false, bench = false;
        int c;

        whisper_default_params(&wp);
        whisper_state_default_params(&sp);
        while ((c = getopt_long(argc, argv, "t:l:", opts, NULL)) >= 0) {
                switch (c) {
                case 't': sp.n_threads = atoi(optarg); break;
                case 'l': wp.language = optarg; break;
                case 'n': wp.no_timestamps = true; break;
                case 'T': tokens = true; break;
                case 'a': sp.audio_ctx = atoi(optarg); break;
                case 'B': bench = true; break;
                default: return 2;
                }
        }
        if (argc - optind != 2) {
                fprintf(stderr, "usage: sotto-whisper [-t THREADS] [-l LANG|auto] [--no-timestamps] [--tokens] "
                                "[--audio-ctx N] MODEL.bin AUDIO.wav\n");
                return 2;
        }

        char err[256] = "";
        whisper_model *m = NULL;
        whisper_state *s = NULL;
        whisper_result res = {};
        size_t size, n;
        float *pcm = NULL;
        int r;

        double t0 = now();
        if ((r = whisper_model_load_path(argv[optind], &m, err, sizeof err)) < 0) {
                fprintf(stderr, "%s: %s\n", argv[optind], err);
                return 1;
        }
        double t1 = now();
        _cleanup_free_ void *wav = read_all(argv[optind + 1], &size);
        if (!wav) {
                fprintf(stderr, "%s: cannot read: %m\n", argv[optind + 1]);
                r = -EIO;
                goto out;
        }
        if ((r = wav_decode(wav, size, WHISPER_SAMPLE_RATE, &pcm, &n, err, sizeof err)) < 0) {
                fprintf(stderr, "%s: %s\n", argv[optind + 1], err);
                goto out;
        }
        if ((r = whisper_state_new(m, &sp, &s, err, sizeof err)) < 0) {
                fprintf(stderr, "%s\n", err);
                goto out;
        }
        double t2 = now();
        if (bench) {
                /* one 30 s window: mel, encoder, 64 single-token decoder steps */
                float *mel = NULL, *logits = malloc((size_t)whisper_model_hparams(m)->n_vocab * sizeof(float));
                int32_t n_len, tok = whisper_model_special(m)->sot;
                if (!logits || (r = whisper_log_mel(m, pcm, n, sp.n_threads, &mel, &n_len)) < 0)
                        goto bench_out;
                double b0 = now();
                if ((r = whisper_encode(s, mel, n_len, 0)) < 0)
                        goto bench_out;
                double b1 = now();
                for (int i = 0; i < 64 && r >= 0; i++)
                        r = whisper_decode(s, &tok, 1, i, logits);
                double b2 = now();
                printf("mel %.3f s, encode %.3f s, decode %.2f ms/token\n", b0 - t2, b1 - b0, (b2 - b1) / 64 * 1e3);
        bench_out:
                free(mel);
                free(logits);
                goto out;
        }
        if ((r = whisper_transcribe(s, &wp, pcm, n, &res)) < 0) {
                fprintf(stderr, "transcription failed: %s\n", strerror(-r));
                goto out;
        }
        double t3 = now();

        for (int32_t i = 0; i < res.n_segments; i++) {
                const whisper_segment *g = &res.segments[i];
                printf("[");
                print_ts(g->t0);
                printf(" --> ");
                print_ts(g->t1);
                printf("] ");
                for (int32_t j = 0; j < g->n_tokens; j++) {
                        size_t len;
                        int32_t id = res.tokens[g->i_token + j].id;
                        const char *b = whisper_token_bytes(m, id, &len);
                        if (id < whisper_model_special(m)->eot)
                                fwrite(b, 1, len, stdout);
                }
                printf("\n");
                if (tokens) {
                        printf("  tokens:");
                        for (int32_t j = 0; j < g->n_tokens; j++)
                                printf(" %d", res.tokens[g->i_token + j].id);
                        printf("\n");
                }
        }
        double audio = (double)n / WHISPER_SAMPLE_RATE;
        fprintf(stderr, "model %s (%s), load %.2f s; audio %.2f s; transcribe %.3f s; RTF %.3f%s%s\n",
                whisper_model_size_name(m), argv[optind], t1 - t0, audio, t3 - t2, (t3 - t2) / audio,
                res.lang_id >= 0 ? "; language " : "", res.lang_id >= 0 ? whisper_lang_code(res.lang_id) : "");
out:
        whisper_result_clear(&res);
        free(pcm);
        whisper_state_free(s);
        whisper_model_free(m);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) { return run(argc, argv); }
