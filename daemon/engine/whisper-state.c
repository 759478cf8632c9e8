/* SPDX-License-Identifier: MIT */
/* Per-stream state: encoder output, cross-attention K/V, the decoder's
 * self-attention cache, scratch. */
#include <cblas.h>
#include <inttypes.h>
#include <string.h>

#include "whisper-impl.h"

void whisper_state_default_params(whisper_state_params *p) {
        *p = (whisper_state_params){ .n_threads = 0, .audio_ctx = 0 };
}

void whisper_state_free(whisper_state *s) {
        if (!s)
                return;
        free(s->enc_out);
        free(s->cross_k);
        free(s->cross_v);
        free(s->kv_k);
        free(s->kv_v);
        free(s->scores);
        matmul_ctx_free(s->mm);
        free(s);
}

void whisper_state_set_abort(whisper_state *s, whisper_abort_fn fn, void *userdata) {
        s->abort_fn = fn;
        s->abort_userdata = userdata;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(whisper_state *, whisper_state_free);

int whisper_state_new(const whisper_model *m, const whisper_state_params *p, whisper_state **ret, char *err,
                      size_t errlen) {
        _cleanup_(whisper_state_freep) whisper_state *s = NULL;
        whisper_state_params def;

        if (!p) {
                whisper_state_default_params(&def);
                p = &def;
        }
        if (p->audio_ctx < 0 || p->audio_ctx > m->hp.n_audio_ctx)
                return set_error(err, errlen, -EINVAL, "audio_ctx %d is out of range 0..%" PRId32, p->audio_ctx,
                                 m->hp.n_audio_ctx);
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->m = m;
        s->n_threads = p->n_threads > 0 ? p->n_threads : (int)MAX(1, sysconf(_SC_NPROCESSORS_ONLN));
        s->audio_ctx = p->audio_ctx > 0 ? p->audio_ctx : m->hp.n_audio_ctx;
        if (matmul_ctx_new(s->n_threads, &s->mm) < 0)
                return set_error(err, errlen, -ENOMEM, "cannot start %d threads", s->n_threads);

        size_t S = (size_t)m->hp.n_audio_state, T = (size_t)s->audio_ctx, L = (size_t)m->hp.n_text_layer,
               C = (size_t)m->hp.n_text_ctx;
        s->enc_out = calloc(T * S, sizeof(float));
        s->cross_k = calloc(L * T * S, sizeof(float));
        s->cross_v = calloc(L * T * S, sizeof(float));
        s->kv_k = calloc(L * C * S, sizeof(float));
        s->kv_v = calloc(L * C * S, sizeof(float));
        s->scores = malloc((size_t)s->n_threads * T * T * sizeof(float));
        if (!s->enc_out || !s->cross_k || !s->cross_v || !s->kv_k || !s->kv_v || !s->scores)
                return set_error(err, errlen, -ENOMEM, "out of memory for the whisper state");
        *ret = TAKE_PTR(s);
        return 0;
}
