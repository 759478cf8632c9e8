/* SPDX-License-Identifier: MIT */
/* Greedy transcription with whisper.cpp's rules (specs/whisper.md §5):
 * 30 s windows, the logit filters (blank, special tokens, timestamp
 * pairing, initial and monotonic timestamps, timestamp-probability mass),
 * completion and failure of a window, segments cut at timestamp tokens,
 * and the seek to the last timestamp.  Temperature 0 only: no fallback
 * and no previous-text conditioning (whisper.cpp's no_context). */
#include <math.h>
#include <string.h>

#include "whisper-impl.h"

#define DELTA_MIN 10 /* frames: audio shorter than 100 ms is not decoded */
#define CHUNK_FRAMES (100 * WHISPER_CHUNK_SECONDS)

void whisper_default_params(whisper_params *p) {
        *p = (whisper_params){ .language = "en", .suppress_blank = true, .max_initial_ts = 1.0f };
}

void whisper_result_clear(whisper_result *r) {
        free(r->tokens);
        free(r->segments);
        *r = (whisper_result){ .lang_id = -1 };
}

/* Symbols never spoken, suppressed with suppress_nst (whisper.cpp's list). */
static const char *const non_speech[] = {
        "\"", "#", "(", ")", "*", "+", "/", ":", ";", "<", "=", ">", "@", "[", "\\", "]", "^", "_", "`", "{", "|",
        "}", "~", "「", "」", "『", "』", "<<", ">>", "<<<", ">>>", "--", "---", "-(", "-[", "('", "(\"", "((", "))",
        "(((", ")))", "[[", "]]", "{{", "}}", "♪♪", "♪♪♪", "♩", "♪", "♫", "♬", "♭", "♮", "♯",
};

typedef struct window {
        whisper_token_info *tok;
        int32_t n;
        int32_t result_len;
        int32_t seek_delta;
        bool has_ts, failed, completed;
} window;

static void suppress(const whisper_model *m, float *logits, const char *s) {
        int32_t id = whisper_token_lookup(m, s, strlen(s));
        if (id >= 0)
                logits[id] = -INFINITY;
}

static void log_softmax(const float *logits, int32_t n, float *logprobs) {
        float mx = -INFINITY;
        for (int32_t i = 0; i < n; i++)
                mx = logits[i] > mx ? logits[i] : mx;
        float sum = 0;
        for (int32_t i = 0; i < n; i++)
                if (logits[i] > -INFINITY)
                        sum += expf(logits[i] - mx);
        float lse = logf(sum) + mx;
        for (int32_t i = 0; i < n; i++)
                logprobs[i] = logits[i] > -INFINITY ? logits[i] - lse : -INFINITY;
}

/* The logit filters, then log-probabilities and probabilities. */
static void process_logits(const whisper_model *m, const whisper_params *p, const window *w, float *logits,
                           float *logprobs, float *probs) {
        const whisper_special *sp = &m->sp;
        const int32_t nv = m->hp.n_vocab;
        const bool initial = w->n == 0;

        if (p->suppress_blank && initial) {
                logits[sp->eot] = -INFINITY;
                if (sp->space >= 0)
                        logits[sp->space] = -INFINITY;
        }
        logits[sp->notimestamps] = -INFINITY;
        if (p->no_timestamps)
                for (int32_t i = sp->beg; i < nv; i++)
                        logits[i] = -INFINITY;
        if (!p->no_timestamps && !p->single_segment && p->max_tokens > 0 && w->n >= p->max_tokens)
                for (int32_t i = 0; i < sp->eot; i++)
                        logits[i] = -INFINITY;
        logits[sp->sot] = -INFINITY;
        logits[sp->nosp] = -INFINITY;
        logits[sp->solm] = -INFINITY;
        logits[sp->translate] = -INFINITY;
        logits[sp->transcribe] = -INFINITY;
        logits[sp->prev] = -INFINITY;
        /* whisper.cpp masks sot+1 .. sot+100 whatever the model's language
         * count (for 99-language models that includes translate) */
        for (int32_t i = 0; i < 100; i++)
                if (sp->sot + 1 + i < nv)
                        logits[sp->sot + 1 + i] = -INFINITY;

        if (p->suppress_nst) {
                for (size_t i = 0; i < ELEMENTSOF(non_speech); i++) {
                        char buf[32];
                        suppress(m, logits, non_speech[i]);
                        snprintf(buf, sizeof buf, " %s", non_speech[i]);
                        suppress(m, logits, buf);
                }
                suppress(m, logits, " -");
                suppress(m, logits, " '");
        }

        /* timestamps come in pairs, except directly before eot */
        bool last_ts = w->n > 0 && w->tok[w->n - 1].id >= sp->beg;
        bool penult_ts = w->n < 2 || w->tok[w->n - 2].id >= sp->beg;
        if (last_ts) {
                if (penult_ts)
                        for (int32_t i = sp->beg; i < nv; i++)
                                logits[i] = -INFINITY;
                else
                        for (int32_t i = 0; i < sp->eot; i++)
                                logits[i] = -INFINITY;
        }

        /* the first timestamp is at most max_initial_ts */
        if (initial && p->max_initial_ts > 0.0f) {
                float precision = (float)WHISPER_CHUNK_SECONDS / (float)m->hp.n_audio_ctx;
                int32_t tid0 = (int32_t)roundf(p->max_initial_ts / precision);
                for (int32_t i = sp->beg + tid0 + 1; i < nv; i++)
                        logits[i] = -INFINITY;
        }

        /* timestamps do not go backwards */
        if (w->has_ts)
                for (int32_t i = sp->beg; i < sp->beg + w->seek_delta / 2 && i < nv; i++)
                        logits[i] = -INFINITY;

        log_softmax(logits, nv, logprobs);

        /* if the timestamps together are more probable than any text token,
         * the next token is a timestamp */
        float ts_max = -INFINITY;
        for (int32_t i = sp->beg; i < nv; i++)
                ts_max = logprobs[i] > ts_max ? logprobs[i] : ts_max;
        float lse = 0, ts_logprob = -INFINITY;
        for (int32_t i = sp->beg; i < nv; i++)
                if (logprobs[i] > -INFINITY)
                        lse += expf(logprobs[i] - ts_max);
        if (lse > 0.0f)
                ts_logprob = logf(lse) + ts_max;
        float text_max = -INFINITY;
        for (int32_t i = 0; i < sp->beg; i++)
                text_max = logprobs[i] > text_max ? logprobs[i] : text_max;
        if (ts_logprob > text_max)
                for (int32_t i = 0; i < sp->beg; i++)
                        logits[i] = logprobs[i] = -INFINITY;

        for (int32_t i = 0; i < nv; i++)
                probs[i] = logits[i] == -INFINITY ? 0.0f : expf(logprobs[i]);
}

static whisper_token_info sample_best(const whisper_model *m, const float *probs, const float *logprobs) {
        const whisper_special *sp = &m->sp;
        whisper_token_info t = { .id = 0, .tid = -1 };
        float max_ts = 0;

        for (int32_t i = sp->beg; i < m->hp.n_vocab; i++)
                if (max_ts < probs[i]) {
                        max_ts = probs[i];
                        t.tid = i;
                }
        for (int32_t i = 0; i < m->hp.n_vocab; i++)
                if (t.p < probs[i]) {
                        t.id = i;
                        t.p = probs[i];
                        t.logprob = logprobs[i];
                }
        if (t.id >= sp->beg)
                t.tid = t.id;
        return t;
}

/* Entropy of the token distribution over the last 32 tokens. */
static double tail_entropy(const whisper_token_info *tok, int32_t n) {
        int32_t i0 = MAX(0, n - 32), cnt = n - i0;
        double e = 0;
        for (int32_t i = i0; i < n; i++) {
                bool seen = false;
                for (int32_t j = i0; j < i; j++)
                        if (tok[j].id == tok[i].id)
                                seen = true;
                if (seen)
                        continue;
                int32_t c = 0;
                for (int32_t j = i; j < n; j++)
                        c += tok[j].id == tok[i].id;
                double q = c / (double)cnt;
                e -= q * log(q);
        }
        return e;
}

/* ---- result building ---- */

static int push_segment(whisper_result *r, int64_t t0, int64_t t1, const whisper_token_info *tok, int32_t n) {
        whisper_token_info *nt = realloc(r->tokens, (size_t)(r->n_tokens + n) * sizeof *nt);
        if (!nt)
                return -ENOMEM;
        r->tokens = nt;
        whisper_segment *ns = realloc(r->segments, (size_t)(r->n_segments + 1) * sizeof *ns);
        if (!ns)
                return -ENOMEM;
        r->segments = ns;
        memcpy(r->tokens + r->n_tokens, tok, (size_t)n * sizeof *tok);
        r->segments[r->n_segments++] = (whisper_segment){ .t0 = t0, .t1 = t1, .i_token = r->n_tokens, .n_tokens = n };
        r->n_tokens += n;
        return 0;
}

/* Cut a window's tokens into segments at timestamp tokens; a segment needs
 * some text (tokens below eot). */
static int add_segments(const whisper_model *m, const whisper_params *p, whisper_result *r, int32_t seek,
                        int32_t seek_delta, const whisper_token_info *tok, int32_t n) {
        const int32_t beg = m->sp.beg, eot = m->sp.eot;
        int32_t i0 = 0;
        /* without timestamps no token has a timestamp probability (tid -1):
         * the segment starts at the window (whisper.cpp reports
         * seek - 2 * beg there, a negative time) */
        int64_t t0 = tok[0].tid >= beg ? seek + 2 * (int64_t)(tok[0].tid - beg) : seek;
        bool text = false;
        int rr;

        for (int32_t i = 0; i < n; i++) {
                size_t len = 0;
                if (tok[i].id < eot && whisper_token_bytes(m, tok[i].id, &len) && len > 0)
                        text = true;
                if (tok[i].id > beg && !p->single_segment) {
                        int64_t t1 = seek + 2 * (int64_t)(tok[i].tid - beg);
                        if (text && (rr = push_segment(r, t0, t1, tok + i0, i - i0 + 1)) < 0)
                                return rr;
                        text = false;
                        t0 = t1;
                        while (i + 1 < n && tok[i + 1].id > beg) {
                                i++;
                                t0 = seek + 2 * (int64_t)(tok[i].tid - beg);
                        }
                        i0 = i + 1;
                }
        }
        if (text && (rr = push_segment(r, t0, seek + seek_delta, tok + i0, n - i0)) < 0)
                return rr;
        return 0;
}

/* ---- the window loop ---- */

int whisper_transcribe(whisper_state *s, const whisper_params *p, const float *pcm, size_t n_samples,
                       whisper_result *ret) {
        const whisper_model *m = s->m;
        const whisper_special *sp = &m->sp;
        const int32_t nv = m->hp.n_vocab, n_max = m->hp.n_text_ctx / 2 - 4;
        whisper_params pp = *p;
        _cleanup_free_ float *mel = NULL;
        int32_t n_len;
        int r;

        *ret = (whisper_result){ .lang_id = -1 };
        if ((r = whisper_log_mel(m, pcm, n_samples, s->n_threads, &mel, &n_len)) < 0)
                return r;
        int64_t seek_end = 1 + ((int64_t)n_samples + WHISPER_N_FFT / 2 - WHISPER_N_FFT) / WHISPER_HOP;
        if (seek_end < DELTA_MIN)
                return 0;

        _cleanup_free_ float *logits = malloc((size_t)nv * sizeof(float));
        _cleanup_free_ float *logprobs = malloc((size_t)nv * sizeof(float));
        _cleanup_free_ float *probs = malloc((size_t)nv * sizeof(float));
        _cleanup_free_ whisper_token_info *tok = malloc((size_t)n_max * sizeof *tok);
        if (!logits || !logprobs || !probs || !tok)
                return -ENOMEM;

        /* language: detection decodes [sot] on the first window; the
         * transcription prompt then rewrites the cache from position 0, so
         * only the encoder output is carried over (whisper.cpp encodes the
         * window a second time, with the same result) */
        bool window0_encoded = false;
        if (m->multilingual) {
                if (!pp.language || !*pp.language || strcmp(pp.language, "auto") == 0) {
                        if ((r = whisper_encode(s, mel, n_len, 0)) < 0)
                                return r;
                        if ((r = whisper_detect_language(s, NULL)) < 0)
                                return r;
                        ret->lang_id = r;
                        window0_encoded = true;
                } else {
                        ret->lang_id = whisper_lang_id(pp.language);
                        if (ret->lang_id < 0 || ret->lang_id >= sp->n_langs)
                                return -EINVAL;
                }
        }

        int32_t prompt[4], n_prompt = 0;
        prompt[n_prompt++] = sp->sot;
        if (m->multilingual) {
                prompt[n_prompt++] = sp->sot + 1 + ret->lang_id;
                prompt[n_prompt++] = pp.translate ? sp->translate : sp->transcribe;
        }
        /* the first distilled models only work without timestamps */
        if (m->hp.n_text_layer == 2 && nv != 51866)
                pp.no_timestamps = true;
        if (pp.no_timestamps)
                prompt[n_prompt++] = sp->notimestamps;

        for (int64_t seek = 0; seek + DELTA_MIN < seek_end;) {
                window w = { .tok = tok, .seek_delta = CHUNK_FRAMES };

                if (pp.abort_cb && pp.abort_cb(pp.abort_userdata))
                        return -ECANCELED;
                if (!(seek == 0 && window0_encoded) && (r = whisper_encode(s, mel, n_len, (int32_t)seek)) < 0)
                        return r;
                if ((r = whisper_decode(s, prompt, n_prompt, 0, logits)) < 0)
                        return r;

                log_softmax(logits, nv, logprobs);
                float no_speech_prob = expf(logprobs[sp->nosp]);
                process_logits(m, &pp, &w, logits, logprobs, probs);

                for (int32_t i = 0; i < n_max; i++) {
                        whisper_token_info t = sample_best(m, probs, logprobs);
                        tok[w.n++] = t;

                        if (t.id > sp->beg) {
                                int32_t delta_new = 2 * (t.id - sp->beg);
                                if (w.has_ts && w.seek_delta > delta_new && w.result_len < i) {
                                        w.failed = true;
                                        break;
                                }
                                w.seek_delta = delta_new;
                                w.result_len = i + 1;
                                w.has_ts = true;
                        }
                        if (t.id == sp->eot || (pp.max_tokens > 0 && i >= pp.max_tokens) ||
                            (w.has_ts && seek + w.seek_delta + DELTA_MIN >= seek_end)) {
                                if (w.result_len == 0 && !pp.no_timestamps) {
                                        if (seek + w.seek_delta + DELTA_MIN >= seek_end)
                                                w.result_len = i + 1;
                                        else {
                                                w.failed = true;
                                                break;
                                        }
                                }
                                if (pp.single_segment || pp.no_timestamps) {
                                        w.result_len = i + 1;
                                        w.seek_delta = CHUNK_FRAMES;
                                }
                                w.completed = true;
                                break;
                        }
                        /* stuck in a loop */
                        if (i == n_max - 1 && (w.result_len == 0 || w.seek_delta < CHUNK_FRAMES / 2)) {
                                w.failed = true;
                                break;
                        }

                        if (pp.abort_cb && pp.abort_cb(pp.abort_userdata))
                                return -ECANCELED;
                        if ((r = whisper_decode(s, &t.id, 1, n_prompt + i, logits)) < 0)
                                return r;
                        process_logits(m, &pp, &w, logits, logprobs, probs);
                }

                if (pp.window_cb) {
                        int32_t ids[n_max];
                        for (int32_t i = 0; i < w.n; i++)
                                ids[i] = tok[i].id;
                        pp.window_cb(pp.window_userdata, (int32_t)seek, ids, w.n);
                }

                /* a successful window keeps its first result_len tokens */
                double avg_logprob = -INFINITY;
                if (!w.failed) {
                        w.n = w.result_len;
                        if (w.result_len > 0) {
                                double sum = 0;
                                for (int32_t i = 0; i < w.result_len; i++)
                                        sum += w.tok[i].logprob;
                                avg_logprob = sum / w.result_len;
                                if (w.result_len > 32 && tail_entropy(w.tok, w.result_len) < 2.4)
                                        w.failed = true;
                        }
                }
                bool no_speech = no_speech_prob > 0.6f && avg_logprob < -1.0;
                if (w.n > 0 && !no_speech && (r = add_segments(m, &pp, ret, (int32_t)seek, w.seek_delta, tok, w.n)) < 0)
                        return r;

                /* a window ending in a single timestamp is done entirely */
                bool max_tokens_end = pp.max_tokens > 0 && !pp.single_segment && w.n > pp.max_tokens;
                if (w.n > 1 && !max_tokens_end && tok[w.n - 2].id < sp->beg && tok[w.n - 1].id > sp->beg)
                        w.seek_delta = (int32_t)MIN(seek_end - seek, (int64_t)CHUNK_FRAMES);
                seek += w.seek_delta;
        }
        return 0;
}
