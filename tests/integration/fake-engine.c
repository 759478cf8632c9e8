/* SPDX-License-Identifier: MIT */
/* A test double of the engine API (engine.h, tokenizer.h), linked only into
 * build/tests/sotto-worker-fake.  It lets the service tests drive sottod and
 * the real worker code (protocol, sandbox, scheduling, cancellation, crashes)
 * with exact control over timing, without model weights.  It is not a model:
 * tests that check generated text against the reference use the real engine.
 *
 * "Model" file: a text file whose first line is "SOTTO-FAKE-MODEL" followed
 * by key=value lines: n_ctx (training context), step_usec (time of one
 * decoding step), eos_every (0: never end on its own), salt (other text),
 * name.  Tokens are bytes (id = byte + 3; 0 unk, 1 bos,
 * 2 eos).  The next token is a hash of the session's whole history, so the
 * output depends on the prompt and, with temperature > 0, on the seed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "macro.h"

struct tokenizer {
        int dummy;
};

struct engine_model {
        tokenizer tok;
        int32_t n_ctx_train;
        long step_usec;
        long eos_every; /* about one token in eos_every ends the text; 0: never */
        uint64_t salt;  /* another "model" gives other text */
        char name[64];
};

struct engine_session {
        const engine_model *m;
        engine_session_params p;
        int32_t n_ctx, n_past;
        uint64_t *hash; /* hash of the history after each position */
};

struct engine_sampler {
        engine_sampler_params p;
        uint64_t state;
};

void engine_model_default_params(engine_model_params *p) {
        *p = (engine_model_params){};
}

int engine_model_load_fd(int fd, const engine_model_params *p, engine_model **ret, char *err, size_t errlen) {
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_size < 17 || st.st_size > 65536)
                return set_error(err, errlen, -EINVAL, "not a fake model");
        char *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
                return set_error(err, errlen, -errno, "cannot map: %m");
        char *text = strndup(map, (size_t)st.st_size);
        munmap(map, (size_t)st.st_size);
        if (!text)
                return -ENOMEM;
        if (strncmp(text, "SOTTO-FAKE-MODEL\n", 17) != 0) {
                free(text);
                return set_error(err, errlen, -EINVAL, "not a fake model");
        }
        engine_model *m = calloc(1, sizeof *m);
        m->n_ctx_train = 512;
        m->step_usec = 1000;
        m->eos_every = 97;
        snprintf(m->name, sizeof m->name, "fake");
        for (char *save, *line = strtok_r(text + 17, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (!strncmp(line, "n_ctx=", 6))
                        m->n_ctx_train = atoi(line + 6);
                else if (!strncmp(line, "step_usec=", 10))
                        m->step_usec = atol(line + 10);
                else if (!strncmp(line, "salt=", 5))
                        m->salt = strtoull(line + 5, NULL, 10);
                else if (!strncmp(line, "eos_every=", 10))
                        m->eos_every = atol(line + 10);
                else if (!strncmp(line, "name=", 5))
                        snprintf(m->name, sizeof m->name, "%s", line + 5);
        }
        free(text);
        *ret = m;
        return 0;
}

int engine_model_load_path(const char *path, const engine_model_params *p, engine_model **ret, char *err,
                           size_t errlen) {
        return set_error(err, errlen, -ENOTSUP, "the fake engine loads from fds only");
}

void engine_model_free(engine_model *m) {
        free(m);
}
const char *engine_model_arch(const engine_model *m) {
        return "fake";
}
const char *engine_model_name(const engine_model *m) {
        return m->name;
}
int32_t engine_model_n_vocab(const engine_model *m) {
        return 259;
}
int32_t engine_model_n_ctx_train(const engine_model *m) {
        return m->n_ctx_train;
}
const tokenizer *engine_model_tokenizer(const engine_model *m) {
        return &m->tok;
}
uint64_t engine_model_bytes_per_token(const engine_model *m) {
        return 0;
}

void engine_session_default_params(engine_session_params *p) {
        *p = (engine_session_params){};
}

int engine_session_new(const engine_model *m, const engine_session_params *p, engine_session **ret, char *err,
                       size_t errlen) {
        engine_session *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->m = m;
        s->p = *p;
        s->n_ctx = p->n_ctx > 0 ? p->n_ctx : MIN(m->n_ctx_train, 4096);
        s->hash = calloc((size_t)s->n_ctx + 1, sizeof(uint64_t));
        if (!s->hash) {
                free(s);
                return -ENOMEM;
        }
        s->hash[0] = 1469598103934665603ull ^ (m->salt * 0x9e3779b97f4a7c15ull);
        *ret = s;
        return 0;
}

void engine_session_free(engine_session *s) {
        if (!s)
                return;
        free(s->hash);
        free(s);
}

int32_t engine_session_n_past(const engine_session *s) {
        return s->n_past;
}
int32_t engine_session_n_ctx(const engine_session *s) {
        return s->n_ctx;
}
int engine_session_rewind(engine_session *s, int32_t n_past) {
        if (n_past < 0 || n_past > s->n_past)
                return -EINVAL;
        s->n_past = n_past;
        return 0;
}

/* One "layer" of work, with the abort callback polled like the real engine. */
static bool work(engine_session *s, long usec) {
        const int layers = 4;
        for (int l = 0; l < layers; l++) {
                struct timespec ts = { 0, usec / layers * 1000 };
                nanosleep(&ts, NULL);
                if (s->p.abort_cb && s->p.abort_cb(s->p.abort_userdata))
                        return true;
        }
        return false;
}

/* Logits favour one printable byte (or EOS now and then), chosen by the
 * history's hash. */
static void fill_logits(const engine_session *s, float *logits) {
        uint64_t h = s->hash[s->n_past];
        for (int i = 0; i < 259; i++)
                logits[i] = -10.0f + (float)((h >> (i % 48)) & 7) * 0.1f;
        static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz     .,";
        int best = alphabet[(h >> 17) % (sizeof alphabet - 1)] + 3;
        logits[best] = 5.0f;
        if (s->m->eos_every > 0 && (h >> 40) % (uint64_t)s->m->eos_every == 0)
                logits[2] = 6.0f;
}

int engine_session_eval(engine_session *s, const int32_t *tokens, int32_t n_tokens, bool all_logits, float *logits) {
        if (n_tokens <= 0)
                return -EINVAL;
        if (s->n_past + n_tokens > s->n_ctx)
                return -ENOSPC;
        /* Prompt tokens cost a tenth of a step each, as in a batched prefill. */
        if (work(s, s->m->step_usec + (n_tokens - 1) * s->m->step_usec / 10))
                return -ECANCELED;
        for (int32_t i = 0; i < n_tokens; i++) {
                if (tokens[i] < 0 || tokens[i] >= 259)
                        return -EINVAL;
                uint64_t h = s->hash[s->n_past];
                h = (h ^ (uint64_t)tokens[i]) * 1099511628211ull;
                s->hash[++s->n_past] = h;
        }
        if (logits)
                fill_logits(s, logits);
        return 0;
}

/* One token for each of n sessions costs one step in all, as the real
 * engine reads the weights once for the n rows. */
int engine_session_eval_batch(engine_session *const *ss, const int32_t *tokens, int32_t n, float *logits) {
        if (!ss || !tokens || !logits || n < 1 || n > ENGINE_BATCH_MAX)
                return -EINVAL;
        for (int32_t i = 0; i < n; i++) {
                if (!ss[i] || ss[i]->m != ss[0]->m || tokens[i] < 0 || tokens[i] >= 259)
                        return -EINVAL;
                for (int32_t k = 0; k < i; k++)
                        if (ss[k] == ss[i])
                                return -EINVAL;
                if (ss[i]->n_past >= ss[i]->n_ctx)
                        return -ENOSPC;
        }
        if (work(ss[0], ss[0]->m->step_usec))
                return -ECANCELED;
        for (int32_t i = 0; i < n; i++) {
                engine_session *s = ss[i];
                uint64_t h = (s->hash[s->n_past] ^ (uint64_t)tokens[i]) * 1099511628211ull;
                s->hash[++s->n_past] = h;
                fill_logits(s, logits + (size_t)i * 259);
        }
        return 0;
}

void engine_sampler_default_params(engine_sampler_params *p) {
        *p = (engine_sampler_params){ .temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .repeat_penalty = 1.0f };
}

int engine_sampler_new(const engine_sampler_params *p, int32_t n_vocab, engine_sampler **ret) {
        engine_sampler *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->p = *p;
        s->state = p->seed * 6364136223846793005ull + 1442695040888963407ull;
        *ret = s;
        return 0;
}

void engine_sampler_free(engine_sampler *s) {
        free(s);
}
void engine_sampler_accept(engine_sampler *s, int32_t token) {
}

int32_t engine_sampler_sample(engine_sampler *s, float *logits) {
        int best = 0;
        for (int i = 1; i < 259; i++)
                if (logits[i] > logits[best])
                        best = i;
        if (s->p.temperature <= 0)
                return best;
        /* With temperature: the seed picks among the best or a letter. */
        s->state = s->state * 6364136223846793005ull + 1442695040888963407ull;
        if ((s->state >> 33) % 4 == 0)
                return 'a' + 3 + (int)((s->state >> 40) % 26);
        return best;
}

/* ---- tokenizer: bytes ---- */

int32_t tokenizer_n_vocab(const tokenizer *t) {
        return 259;
}
int32_t tokenizer_bos(const tokenizer *t) {
        return 1;
}
int32_t tokenizer_eos(const tokenizer *t) {
        return 2;
}
bool tokenizer_add_bos(const tokenizer *t) {
        return true;
}
bool tokenizer_is_eog(const tokenizer *t, int32_t id) {
        return id == 2;
}
int32_t tokenizer_find(const tokenizer *t, const char *text) {
        return -1;
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                     int32_t **ret, size_t *n_ret) {
        int32_t *ids = malloc((len + 1) * sizeof(int32_t));
        size_t n = 0;
        if (!ids)
                return -ENOMEM;
        if (add_special)
                ids[n++] = 1;
        for (size_t i = 0; i < len; i++)
                ids[n++] = (uint8_t)text[i] + 3;
        *ret = ids;
        *n_ret = n;
        return 0;
}

int tokenizer_token_to_piece(const tokenizer *t, int32_t id, bool render_special, char *buf, size_t buflen) {
        if (id < 0 || id >= 259)
                return -EINVAL;
        if (id < 3)
                return 0;
        if (buflen < 1)
                return -ENOBUFS;
        buf[0] = (char)(id - 3);
        return 1;
}

void detok_stream_init(detok_stream *s) {
        *s = (detok_stream){ .first = true };
}

int detok_stream_push(const tokenizer *t, detok_stream *s, int32_t id, char *out, size_t outlen) {
        char piece[8];
        int n = tokenizer_token_to_piece(t, id, false, piece, sizeof piece);
        if (n <= 0)
                return n;
        if (outlen < 8)
                return -ENOBUFS;
        s->pending[s->n_pending++] = piece[0];
        /* Hand out whole characters only. */
        uint8_t c = (uint8_t)s->pending[0];
        int need = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
        if (s->n_pending < need)
                return 0;
        memcpy(out, s->pending, (size_t)s->n_pending);
        n = s->n_pending;
        s->n_pending = 0;
        return n;
}

int detok_stream_flush(detok_stream *s, char *out, size_t outlen) {
        if (s->n_pending == 0)
                return 0;
        if (outlen < 3)
                return -ENOBUFS;
        s->n_pending = 0;
        memcpy(out, "\xef\xbf\xbd", 3);
        return 3;
}

/* Input embeddings: the test double has no hidden state to put them in, so
 * no projector fits it (width 0) and Explain reports the model cannot take
 * images, as for a llama model. */
int32_t engine_model_n_embd(const engine_model *m) {
        return 0;
}

int engine_session_eval_embd(engine_session *s, const float *embd, int32_t n, bool bidirectional, bool all_logits,
                             float *logits) {
        return -EOPNOTSUPP;
}
