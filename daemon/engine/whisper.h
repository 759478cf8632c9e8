/* SPDX-License-Identifier: MIT */
/* Whisper speech recognition (specs/whisper.md): whisper.cpp's ggml-*.bin
 * model files, the log-mel front end, the encoder, the decoder with its KV
 * cache and greedy decoding with whisper.cpp's suppression and timestamp
 * rules, language detection.
 *
 * A whisper_model is read-only once loaded and may be shared by any number
 * of whisper_state objects (one per stream being transcribed).  Nothing
 * here exits or asserts on bad input: every failure is a -errno with a
 * sentence in err. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WHISPER_SAMPLE_RATE 16000
#define WHISPER_N_FFT 400
#define WHISPER_HOP 160
#define WHISPER_CHUNK_SECONDS 30

typedef struct whisper_model whisper_model;
typedef struct whisper_state whisper_state;

typedef struct whisper_hparams {
        int32_t n_vocab;
        int32_t n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer;
        int32_t n_text_ctx, n_text_state, n_text_head, n_text_layer;
        int32_t n_mels;
        int32_t ftype;
} whisper_hparams;

/* Special token ids, derived from n_vocab as whisper.cpp does. */
typedef struct whisper_special {
        int32_t eot, sot, translate, transcribe, solm, prev, nosp, notimestamps, beg;
        int32_t n_langs; /* language tokens are sot+1 .. sot+n_langs */
        int32_t space;   /* the " " piece, -1 if the vocabulary has none */
} whisper_special;

/* ---- model ---- */

/* The file is read and its weights copied into aligned memory (the legacy
 * format has no alignment), so fd or data may go away afterwards. */
int whisper_model_load_fd(int fd, whisper_model **ret, char *err, size_t errlen);
int whisper_model_load_path(const char *path, whisper_model **ret, char *err, size_t errlen);
int whisper_model_load_buffer(const void *data, size_t size, whisper_model **ret, char *err, size_t errlen);
void whisper_model_free(whisper_model *m);

const whisper_hparams *whisper_model_hparams(const whisper_model *m);
const whisper_special *whisper_model_special(const whisper_model *m);
bool whisper_model_is_multilingual(const whisper_model *m);
/* "tiny", "base", "small", "medium", "large" from the layer count (as
 * whisper.cpp does), or "unknown". */
const char *whisper_model_size_name(const whisper_model *m);
/* Bytes of weights held. */
size_t whisper_model_weight_bytes(const whisper_model *m);

/* The bytes of a token (not NUL-terminated: pieces may contain NUL) and
 * their length; special tokens get whisper.cpp's synthesized names such as
 * "[_SOT_]" or "[_TT_150]".  NULL for an id out of range. */
const char *whisper_token_bytes(const whisper_model *m, int32_t id, size_t *len);
/* The token whose piece is exactly these bytes, or -1 (later ids win on
 * duplicates, as in whisper.cpp). */
int32_t whisper_token_lookup(const whisper_model *m, const char *s, size_t len);

/* Languages: "en", "zh", ... in token order. */
int whisper_lang_count(const whisper_model *m); /* 0 for English-only models */
const char *whisper_lang_code(int id);           /* NULL if out of range (0..99) */
int whisper_lang_id(const char *code);            /* -1 if unknown */

/* ---- log-mel front end ---- */

/* Exactly whisper.cpp's log-mel spectrogram of 16 kHz mono samples,
 * including the 30 s of zero padding: *ret_mel is n_mels rows of *ret_n_len
 * floats (free() it).  n_len = (n_samples + 480000) / 160. */
int whisper_log_mel(const whisper_model *m, const float *pcm, size_t n_samples, int n_threads, float **ret_mel,
                    int32_t *ret_n_len);

/* ---- per-stream state ---- */

typedef struct whisper_state_params {
        int n_threads; /* 0: number of online CPUs */
        int audio_ctx; /* 0: the model's (1500); fewer positions = faster, less accurate */
} whisper_state_params;

void whisper_state_default_params(whisper_state_params *p);
int whisper_state_new(const whisper_model *m, const whisper_state_params *p, whisper_state **ret, char *err,
                      size_t errlen);
void whisper_state_free(whisper_state *s);

typedef bool (*whisper_abort_fn)(void *userdata);
/* fn (NULL: none) is called on the calling thread before every encoder
 * layer, before the cross-attention K/V and at the start of every
 * whisper_decode; when it returns true the call stops there with
 * -ECANCELED (an aborted whisper_encode leaves no window encoded).  A
 * cancelled transcription so stops within one layer or one token. */
void whisper_state_set_abort(whisper_state *s, whisper_abort_fn fn, void *userdata);

/* Run the encoder on 2*audio_ctx frames of mel starting at frame offset
 * (frames past n_len read as zero, like whisper.cpp), and compute every
 * decoder layer's cross-attention K/V. */
int whisper_encode(whisper_state *s, const float *mel, int32_t n_len, int32_t offset);
/* The encoder output of the last whisper_encode: audio_ctx rows of
 * n_audio_state floats. */
const float *whisper_encoder_output(const whisper_state *s, int32_t *n_ctx, int32_t *n_state);

/* Feed tokens at positions n_past .. n_past+n-1 (n_past <= the cache
 * length: earlier positions are kept, later ones dropped).  logits: NULL
 * or n_vocab floats for the last position.  -ENOSPC beyond n_text_ctx. */
int whisper_decode(whisper_state *s, const int32_t *tokens, int32_t n, int32_t n_past, float *logits);

/* Language detection on the encoded window: decode [sot] and softmax over
 * the language tokens.  probs: NULL or room for whisper_lang_count floats.
 * Returns the language id or -errno (-EOPNOTSUPP for English-only). */
int whisper_detect_language(whisper_state *s, float *probs);

/* ---- transcription (greedy, whisper.cpp's rules) ---- */

typedef struct whisper_token_info {
        int32_t id;
        int32_t tid; /* most probable timestamp token at this step, -1 if none */
        float p, logprob;
} whisper_token_info;

typedef struct whisper_segment {
        int64_t t0, t1; /* centiseconds */
        int32_t i_token, n_tokens; /* range in whisper_result.tokens */
} whisper_segment;

typedef struct whisper_result {
        int32_t lang_id; /* the language used (-1 for English-only models) */
        whisper_token_info *tokens;
        int32_t n_tokens;
        whisper_segment *segments;
        int32_t n_segments;
} whisper_result;

/* Called for every window with the raw decoded sequence (before segment
 * cutting), for tests and debugging. */
typedef void (*whisper_window_fn)(void *userdata, int32_t seek, const int32_t *tokens, int32_t n);

typedef struct whisper_params {
        const char *language;  /* "en", ..., NULL or "auto" to detect */
        bool translate;
        bool no_timestamps;
        bool single_segment;
        bool suppress_blank;   /* default true */
        bool suppress_nst;     /* non-speech symbols, default false */
        float max_initial_ts;  /* seconds, default 1.0 */
        int32_t max_tokens;    /* per segment, 0 = no limit */
        whisper_abort_fn abort_cb;
        void *abort_userdata;
        whisper_window_fn window_cb;
        void *window_userdata;
} whisper_params;

void whisper_default_params(whisper_params *p);
/* Transcribe 16 kHz mono samples: windows of 30 s, seeking by the last
 * timestamp, as whisper_full does at temperature 0 (no fallback, no
 * previous-text conditioning). */
int whisper_transcribe(whisper_state *s, const whisper_params *p, const float *pcm, size_t n_samples,
                       whisper_result *ret);
void whisper_result_clear(whisper_result *r);
