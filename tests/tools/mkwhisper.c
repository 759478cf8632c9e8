/* SPDX-License-Identifier: MIT */
/* sotto-mkwhisper: writes a random-weight Whisper model in whisper.cpp's
 * ggml-*.bin layout (specs/whisper.md §2), at the tiny/base/small shapes or
 * a custom one, with F32, F16, Q8_0 or Q5_0 weights.  The same seed gives
 * the same file, byte for byte, so reference outputs made from it with
 * whisper.cpp stay valid.
 *
 *   sotto-mkwhisper [--shape tiny|base|small] [--type f16|f32|q8_0|q5_0]
 *                   [--english] [--seed N] [--state N --heads N --layers N]
 *                   [--header-only] -o FILE
 *
 * The vocabulary has GPT-2's 256 byte tokens at their usual ids (so " " is
 * 220, as whisper.cpp's blank suppression expects) followed by made-up
 * pieces; the mel filter bank is the Slaney one librosa computes. */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "tensor-type.h"

typedef struct shape {
        const char *name;
        int state, heads, layers;
} shape;

static const shape shapes[] = {
        { "tiny", 384, 6, 4 },
        { "base", 512, 8, 6 },
        { "small", 768, 12, 12 },
};

/* ---- deterministic random numbers (splitmix64, Box-Muller) ---- */

static uint64_t rng_state;

static uint64_t rng_next(void) {
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static double rng_uniform(void) { return ((rng_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static float rng_normal(void) {
        double u = rng_uniform(), v = rng_uniform();
        return (float)(sqrt(-2.0 * log(u)) * cos(2 * M_PI * v));
}

/* ---- output ---- */

static FILE *out;
static int write_error;

static void put(const void *p, size_t n) {
        if (fwrite(p, 1, n, out) != n)
                write_error = 1;
}

static void put_i32(int32_t v) {
        uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
        put(b, 4);
}

static void put_f32(float f) {
        uint32_t u;
        memcpy(&u, &f, 4);
        put_i32((int32_t)u);
}

/* ---- mel filter bank (Slaney scale and area normalization) ---- */

static double hz_to_mel(double f) {
        const double f_sp = 200.0 / 3, min_log_hz = 1000, min_log_mel = min_log_hz / f_sp, logstep = log(6.4) / 27;
        return f < min_log_hz ? f / f_sp : min_log_mel + log(f / min_log_hz) / logstep;
}

static double mel_to_hz(double m) {
        const double f_sp = 200.0 / 3, min_log_hz = 1000, min_log_mel = min_log_hz / f_sp, logstep = log(6.4) / 27;
        return m < min_log_mel ? f_sp * m : min_log_hz * exp(logstep * (m - min_log_mel));
}

static void write_filters(int n_mels) {
        const int n_fft = 201;
        double mel_f[n_mels + 2];
        double lo = hz_to_mel(0), hi = hz_to_mel(8000);

        for (int i = 0; i < n_mels + 2; i++)
                mel_f[i] = mel_to_hz(lo + (hi - lo) * i / (n_mels + 1));
        put_i32(n_mels);
        put_i32(n_fft);
        for (int m = 0; m < n_mels; m++) {
                double enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
                for (int k = 0; k < n_fft; k++) {
                        double f = k * 16000.0 / 400;
                        double lower = (f - mel_f[m]) / (mel_f[m + 1] - mel_f[m]);
                        double upper = (mel_f[m + 2] - f) / (mel_f[m + 2] - mel_f[m + 1]);
                        double w = fmax(0, fmin(lower, upper));
                        put_f32((float)(w * enorm));
                }
        }
}

/* ---- vocabulary ---- */

static void write_vocab(bool english) {
        const int n = 50257;
        uint8_t order[256];
        int k = 0;
        bool used[256] = {};

        /* GPT-2's byte tokens: printable bytes first, then the rest in order */
        for (int b = 33; b <= 126; b++)
                order[k++] = (uint8_t)b, used[b] = true;
        for (int b = 161; b <= 172; b++)
                order[k++] = (uint8_t)b, used[b] = true;
        for (int b = 174; b <= 255; b++)
                order[k++] = (uint8_t)b, used[b] = true;
        for (int b = 0; b < 256; b++)
                if (!used[b])
                        order[k++] = (uint8_t)b;

        put_i32(n);
        for (int i = 0; i < 256; i++) {
                put_i32(1);
                put(&order[i], 1);
        }
        for (int i = 256; i < n - 1; i++) {
                char piece[16];
                int len = 0;
                if (rng_next() & 1)
                        piece[len++] = ' ';
                int letters = 2 + (int)(rng_next() % 6);
                for (int j = 0; j < letters; j++)
                        piece[len++] = (char)('a' + rng_next() % 26);
                put_i32(len);
                put(piece, (size_t)len);
        }
        /* id 50256: empty in multilingual files, the literal eot text in old .en ones */
        const char *last = english ? "<|endoftext|>" : "";
        put_i32((int32_t)strlen(last));
        put(last, strlen(last));
}

/* ---- tensors ---- */

enum { T_F32 = 0, T_F16 = 1, T_Q5_0 = 6, T_Q8_0 = 8 };

/* dims in ggml order; values ~ N(mean, std) unless fill is given */
static void tensor(const char *name, int type, int n_dims, const int64_t *ne, float mean, float std,
                   void (*fill)(float *v, const int64_t *ne)) {
        int64_t n = 1;
        for (int i = 0; i < n_dims; i++)
                n *= ne[i];
        float *v = malloc((size_t)n * sizeof(float));
        if (!v) {
                write_error = 1;
                return;
        }
        if (fill)
                fill(v, ne);
        else
                for (int64_t i = 0; i < n; i++)
                        v[i] = mean + std * rng_normal();

        put_i32(n_dims);
        put_i32((int32_t)strlen(name));
        put_i32(type);
        for (int i = 0; i < n_dims; i++)
                put_i32((int32_t)ne[i]);
        put(name, strlen(name));

        size_t bytes;
        void *data;
        switch (type) {
        case T_F32:
                data = v;
                bytes = (size_t)n * 4;
                break;
        case T_F16: {
                uint16_t *h = malloc((size_t)n * 2);
                for (int64_t i = 0; h && i < n; i++)
                        h[i] = fp32_to_fp16(v[i]);
                data = h;
                bytes = (size_t)n * 2;
                break;
        }
        case T_Q8_0:
                data = malloc((size_t)n / 32 * 34);
                if (data)
                        type_traits_get(TYPE_Q8_0)->from_float(v, data, n);
                bytes = (size_t)n / 32 * 34;
                break;
        default: /* T_Q5_0 */
                data = malloc((size_t)n / 32 * 22);
                if (data)
                        type_traits_get(TYPE_Q5_0)->from_float(v, data, n);
                bytes = (size_t)n / 32 * 22;
                break;
        }
        if (!data)
                write_error = 1;
        else
                put(data, bytes);
        if (data != v)
                free(data);
        free(v);
}

/* The encoder's sinusoidal positions: [sin(t f_j) ..., cos(t f_j) ...]. */
static void fill_sinusoids(float *v, const int64_t *ne) {
        int64_t S = ne[0], half = S / 2;
        double inc = log(10000.0) / (double)(half - 1);
        for (int64_t t = 0; t < ne[1]; t++)
                for (int64_t j = 0; j < half; j++) {
                        double f = exp(-inc * (double)j);
                        v[t * S + j] = (float)sin((double)t * f);
                        v[t * S + half + j] = (float)cos((double)t * f);
                }
}

static int wtype;   /* type of 2-D weights */
static int convtype;

static void mat(const char *name, int64_t n_in, int64_t n_out, float std) {
        int64_t ne[2] = { n_in, n_out };
        tensor(name, wtype, 2, ne, 0, std, NULL);
}

static void vec(const char *name, int64_t n, float mean, float std) {
        int64_t ne[1] = { n };
        tensor(name, T_F32, 1, ne, mean, std, NULL);
}

static void block(const char *pre, int i, int64_t S, bool cross) {
        char n[128];
        float ws = 1.0f / sqrtf((float)S);
#define NM(suffix) (snprintf(n, sizeof n, "%s.blocks.%d.%s", pre, i, suffix), n)
        mat(NM("attn.query.weight"), S, S, ws);
        vec(NM("attn.query.bias"), S, 0, 0.02f);
        mat(NM("attn.key.weight"), S, S, ws);
        mat(NM("attn.value.weight"), S, S, ws);
        vec(NM("attn.value.bias"), S, 0, 0.02f);
        mat(NM("attn.out.weight"), S, S, ws);
        vec(NM("attn.out.bias"), S, 0, 0.02f);
        vec(NM("attn_ln.weight"), S, 1, 0.1f);
        vec(NM("attn_ln.bias"), S, 0, 0.05f);
        if (cross) {
                mat(NM("cross_attn.query.weight"), S, S, ws);
                vec(NM("cross_attn.query.bias"), S, 0, 0.02f);
                mat(NM("cross_attn.key.weight"), S, S, ws);
                mat(NM("cross_attn.value.weight"), S, S, ws);
                vec(NM("cross_attn.value.bias"), S, 0, 0.02f);
                mat(NM("cross_attn.out.weight"), S, S, ws);
                vec(NM("cross_attn.out.bias"), S, 0, 0.02f);
                vec(NM("cross_attn_ln.weight"), S, 1, 0.1f);
                vec(NM("cross_attn_ln.bias"), S, 0, 0.05f);
        }
        mat(NM("mlp.0.weight"), S, 4 * S, ws);
        vec(NM("mlp.0.bias"), 4 * S, 0, 0.02f);
        mat(NM("mlp.2.weight"), 4 * S, S, 0.5f * ws);
        vec(NM("mlp.2.bias"), S, 0, 0.02f);
        vec(NM("mlp_ln.weight"), S, 1, 0.1f);
        vec(NM("mlp_ln.bias"), S, 0, 0.05f);
#undef NM
}

static void usage(void) {
        fprintf(stderr, "usage: sotto-mkwhisper [--shape tiny|base|small] [--type f16|f32|q8_0|q5_0] [--english]\n"
                        "                       [--seed N] [--state N --heads N --layers N] [--audio-ctx N]\n"
                        "                       [--header-only] -o FILE\n");
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "shape", required_argument, NULL, 's' },  { "type", required_argument, NULL, 't' },
                { "english", no_argument, NULL, 'e' },      { "seed", required_argument, NULL, 'S' },
                { "state", required_argument, NULL, 'n' },  { "heads", required_argument, NULL, 'H' },
                { "layers", required_argument, NULL, 'L' }, { "audio-ctx", required_argument, NULL, 'a' },
                { "header-only", no_argument, NULL, 'h' },  { "output", required_argument, NULL, 'o' },
                {},
        };
        shape sh = shapes[0];
        const char *type = "f16", *path = NULL;
        bool english = false, header_only = false;
        uint64_t seed = 1;
        int audio_ctx = 1500, c;

        while ((c = getopt_long(argc, argv, "o:", opts, NULL)) >= 0) {
                switch (c) {
                case 's': {
                        bool found = false;
                        for (size_t i = 0; i < ELEMENTSOF(shapes); i++)
                                if (strcmp(optarg, shapes[i].name) == 0)
                                        sh = shapes[i], found = true;
                        if (!found) {
                                fprintf(stderr, "unknown shape %s\n", optarg);
                                return 2;
                        }
                        break;
                }
                case 't': type = optarg; break;
                case 'e': english = true; break;
                case 'S': seed = strtoull(optarg, NULL, 0); break;
                case 'n': sh.state = atoi(optarg); break;
                case 'H': sh.heads = atoi(optarg); break;
                case 'L': sh.layers = atoi(optarg); break;
                case 'a': audio_ctx = atoi(optarg); break;
                case 'h': header_only = true; break;
                case 'o': path = optarg; break;
                default: usage(); return 2;
                }
        }
        if (!path || sh.state < 2 || sh.state % 64 || sh.heads < 1 || sh.state % sh.heads || sh.layers < 1 ||
            audio_ctx < 1 || audio_ctx > 1500) {
                usage();
                return 2;
        }
        int32_t ftype;
        if (strcmp(type, "f32") == 0)
                wtype = T_F32, convtype = T_F32, ftype = 0;
        else if (strcmp(type, "f16") == 0)
                wtype = T_F16, convtype = T_F16, ftype = 1;
        else if (strcmp(type, "q8_0") == 0)
                wtype = T_Q8_0, convtype = T_F16, ftype = 2007;
        else if (strcmp(type, "q5_0") == 0)
                wtype = T_Q5_0, convtype = T_F16, ftype = 2008;
        else {
                fprintf(stderr, "unknown type %s\n", type);
                return 2;
        }

        out = fopen(path, "wb");
        if (!out) {
                perror(path);
                return 1;
        }
        rng_state = seed;

        const int64_t S = sh.state, V = english ? 51864 : 51865, T = 448, M = 80;
        int32_t hdr[] = { 0x67676d6c, (int32_t)V, audio_ctx, sh.state, sh.heads, sh.layers,
                          (int32_t)T, sh.state, sh.heads, sh.layers, (int32_t)M, ftype };
        for (size_t i = 0; i < ELEMENTSOF(hdr); i++)
                put_i32(hdr[i]);
        write_filters((int)M);
        write_vocab(english);

        if (!header_only) {
                int64_t ne[3];
                char n[64];

                ne[0] = S, ne[1] = audio_ctx;
                tensor("encoder.positional_embedding", T_F32, 2, ne, 0, 0, fill_sinusoids);
                ne[0] = 3, ne[1] = M, ne[2] = S;
                tensor("encoder.conv1.weight", convtype, 3, ne, 0, 1.0f / sqrtf(3.0f * M), NULL);
                ne[0] = 1, ne[1] = S;
                tensor("encoder.conv1.bias", T_F32, 2, ne, 0, 0.02f, NULL);
                ne[0] = 3, ne[1] = S, ne[2] = S;
                tensor("encoder.conv2.weight", convtype, 3, ne, 0, 1.0f / sqrtf(3.0f * S), NULL);
                ne[0] = 1, ne[1] = S;
                tensor("encoder.conv2.bias", T_F32, 2, ne, 0, 0.02f, NULL);
                for (int i = 0; i < sh.layers; i++)
                        block("encoder", i, S, false);
                vec("encoder.ln_post.weight", S, 1, 0.1f);
                vec("encoder.ln_post.bias", S, 0, 0.05f);

                ne[0] = S, ne[1] = T;
                tensor("decoder.positional_embedding", T_F32, 2, ne, 0, 0.1f, NULL);
                /* small embeddings, so that the blocks (and the audio) steer the
                 * residual stream rather than the last token... */
                mat("decoder.token_embedding.weight", S, V, 0.1f);
                for (int i = 0; i < sh.layers; i++)
                        block("decoder", i, S, true);
                /* ...and a large final norm, so that the (tied) logits spread
                 * widely and greedy choices are far from ties */
                snprintf(n, sizeof n, "decoder.ln.weight");
                vec(n, S, 3, 0.3f);
                vec("decoder.ln.bias", S, 0, 0.05f);
        }

        if (fclose(out) != 0 || write_error) {
                fprintf(stderr, "%s: write error\n", path);
                return 1;
        }
        return 0;
}
