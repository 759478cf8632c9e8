/* SPDX-License-Identifier: MIT */
/* Sessions: the mutable state of one conversation (KV cache, position,
 * scratch).  Evaluation splits the tokens into chunks of n_batch, each
 * going through the architecture's forward pass in one piece. */
#include <math.h>
#include <string.h>

#include "macro.h"
#include "model.h"

/* Tokens per forward chunk: large enough that the products run as matrix
 * products, small enough that the scratch stays modest. */
#define SESSION_N_BATCH 512
#define SESSION_DEFAULT_MAX_CTX 4096
#define SESSION_MAX_CTX (1 << 20)

void engine_session_default_params(engine_session_params *p) {
        *p = (engine_session_params){ .n_ctx = 0, .abort_cb = NULL, .abort_userdata = NULL };
}

void engine_session_free(engine_session *s) {
        if (!s)
                return;
        s->model->arch->session_done(s);
        free(s);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(engine_session *, engine_session_free);

int engine_session_new(const engine_model *m, const engine_session_params *p, engine_session **ret, char *err,
                       size_t errlen) {
        _cleanup_(engine_session_freep) engine_session *s = NULL;
        engine_session_params defaults;
        int r;

        if (!m || !ret)
                return set_error(err, errlen, -EINVAL, "no model");
        if (!p) {
                engine_session_default_params(&defaults);
                p = &defaults;
        }
        if (p->n_ctx < 0 || p->n_ctx > SESSION_MAX_CTX)
                return set_error(err, errlen, -EINVAL, "context size %d is out of range [0, %d]", p->n_ctx,
                                 SESSION_MAX_CTX);

        s = calloc(1, sizeof *s);
        if (!s)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        s->model = m;
        s->params = *p;
        s->n_ctx = p->n_ctx > 0 ? p->n_ctx : MIN(m->hp.n_ctx_train, SESSION_DEFAULT_MAX_CTX);
        s->n_batch = MIN(s->n_ctx, SESSION_N_BATCH);

        r = m->arch->session_init(s, err, errlen);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int32_t engine_session_n_past(const engine_session *s) {
        return s->n_past;
}

int32_t engine_session_n_ctx(const engine_session *s) {
        return s->n_ctx;
}

uint64_t engine_session_kv_bytes_read(const engine_session *s) {
        return s->kv.bytes_read;
}

int engine_session_rewind(engine_session *s, int32_t n_past) {
        if (n_past < 0 || n_past > s->n_past)
                return -EINVAL;
        /* The cache rows after n_past are simply overwritten later: attention
         * only ever reads positions < n_past + the tokens being evaluated.
         * A sliding-window ring may have lost the window before n_past;
         * recomputing it would need the whole history (the global layers
         * feed every local one), which the session does not keep: refuse. */
        if (n_past < s->n_past && !kv_cache_has(&s->kv, n_past))
                return -ESTALE;
        s->n_past = n_past;
        return 0;
}

/* The chunk loop shared by tokens and embeddings: exactly one of tokens
 * and embd is set; a bidirectional span is one chunk (checked by the caller). */
static int eval_chunks(engine_session *s, const int32_t *tokens, const float *embd, int32_t n_tokens,
                       bool bidirectional, bool all_logits, float *logits) {
        const engine_model *m = s->model;
        int32_t start = s->n_past, n_vocab = m->hp.n_vocab;
        size_t E = (size_t)m->hp.n_embd;
        int r = 0;

        pthread_mutex_lock((pthread_mutex_t *)&m->lock);
        for (int32_t done = 0; done < n_tokens;) {
                int32_t n = MIN(s->n_batch, n_tokens - done);
                bool final = done + n == n_tokens;
                float *out = NULL;

                if (logits && all_logits)
                        out = logits + (size_t)done * (size_t)n_vocab;
                else if (logits && final)
                        out = logits;
                if (tokens)
                        r = m->arch->forward(s, tokens + done, n, all_logits, out);
                else
                        r = m->arch->forward_embd(s, embd + (size_t)done * E, n, bidirectional, all_logits, out);
                if (r < 0) {
                        /* as if nothing happened, or empty when the ring
                         * has overwritten what start needs */
                        s->n_past = kv_cache_has(&s->kv, start) ? start : 0;
                        break;
                }
                s->n_past += n;
                done += n;
        }
        pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
        return r;
}

int engine_session_eval(engine_session *s, const int32_t *tokens, int32_t n_tokens, bool all_logits, float *logits) {
        const engine_model *m = s->model;
        int32_t n_vocab = m->hp.n_vocab;

        if (n_tokens < 0 || (n_tokens > 0 && !tokens))
                return -EINVAL;
        if (n_tokens == 0)
                return 0;
        for (int32_t i = 0; i < n_tokens; i++)
                if (tokens[i] < 0 || tokens[i] >= n_vocab)
                        return -EINVAL;
        if (n_tokens > s->n_ctx - s->n_past)
                return -ENOSPC;
        return eval_chunks(s, tokens, NULL, n_tokens, false, all_logits, logits);
}

int32_t engine_model_n_embd(const engine_model *m) {
        return m->hp.n_embd;
}

int engine_session_eval_embd(engine_session *s, const float *embd, int32_t n, bool bidirectional, bool all_logits,
                             float *logits) {
        const engine_model *m = s->model;
        size_t E = (size_t)m->hp.n_embd;

        if (n < 0 || (n > 0 && !embd))
                return -EINVAL;
        if (!m->arch->forward_embd)
                return -EOPNOTSUPP;
        if (n == 0)
                return 0;
        for (size_t i = 0; i < (size_t)n * E; i++)
                if (!isfinite(embd[i]))
                        return -EINVAL;
        if (n > s->n_ctx - s->n_past)
                return -ENOSPC;
        if (bidirectional && n > s->n_batch)
                return -E2BIG;
        return eval_chunks(s, NULL, embd, n, bidirectional, all_logits, logits);
}

int engine_session_eval_batch(engine_session *const *ss, const int32_t *tokens, int32_t n, float *logits) {
        const engine_model *m;
        int r = 0;

        if (!ss || !tokens || !logits || n < 1 || n > ENGINE_BATCH_MAX || !ss[0])
                return -EINVAL;
        m = ss[0]->model;
        for (int32_t i = 0; i < n; i++) {
                if (!ss[i] || ss[i]->model != m || tokens[i] < 0 || tokens[i] >= m->hp.n_vocab)
                        return -EINVAL;
                for (int32_t k = 0; k < i; k++)
                        if (ss[k] == ss[i])
                                return -EINVAL;
                if (ss[i]->n_past >= ss[i]->n_ctx)
                        return -ENOSPC;
        }
        if (!m->arch->forward_batch || n == 1) {
                /* one by one; a failure rewinds those already advanced */
                for (int32_t i = 0; i < n && r >= 0; i++) {
                        r = engine_session_eval(ss[i], &tokens[i], 1, false, logits + (size_t)i * m->hp.n_vocab);
                        if (r < 0)
                                for (int32_t k = 0; k < i; k++)
                                        ss[k]->n_past--;
                }
                return r;
        }
        pthread_mutex_lock((pthread_mutex_t *)&m->lock);
        r = m->arch->forward_batch(ss, tokens, n, logits);
        if (r >= 0)
                for (int32_t i = 0; i < n; i++)
                        ss[i]->n_past++;
        pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
        return r;
}
