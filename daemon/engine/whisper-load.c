/* SPDX-License-Identifier: MIT */
/* Loader of whisper.cpp's legacy model files, ggml-<size>.bin
 * (specs/whisper.md §2): header, mel filters, vocabulary, then tensor
 * records until the end of the file.  Every count, size and shape is
 * checked before it is used; tensors are matched by name against the list
 * the header implies, and every one must be present exactly once. */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "weights-arena.h"
#include "whisper-impl.h"

#define WHISPER_MAGIC 0x67676d6cu
#define MAX_NAME 256
#define MAX_PIECE 4096

/* ---- a bounds-checked little-endian cursor ---- */

typedef struct cursor {
        const uint8_t *p, *end;
} cursor;

static size_t cur_left(const cursor *c) { return (size_t)(c->end - c->p); }

static int cur_i32(cursor *c, int32_t *v) {
        if (cur_left(c) < 4)
                return -EBADMSG;
        uint32_t u = (uint32_t)c->p[0] | (uint32_t)c->p[1] << 8 | (uint32_t)c->p[2] << 16 | (uint32_t)c->p[3] << 24;
        memcpy(v, &u, 4);
        c->p += 4;
        return 0;
}

static int cur_bytes(cursor *c, size_t n, const uint8_t **ret) {
        if (cur_left(c) < n)
                return -EBADMSG;
        *ret = c->p;
        c->p += n;
        return 0;
}

/* ---- tensor types this format may carry ---- */

typedef struct ttype_info {
        const char *name;
        uint32_t block, size;
        bool supported; /* we have kernels for it */
} ttype_info;

static const ttype_info ttypes[] = {
        [0] = { "f32", 1, 4, true },     [1] = { "f16", 1, 2, true },     [2] = { "q4_0", 32, 18, false },
        [3] = { "q4_1", 32, 20, false }, [6] = { "q5_0", 32, 22, true },  [7] = { "q5_1", 32, 24, false },
        [8] = { "q8_0", 32, 34, true },
};

static const ttype_info *ttype_get(int32_t t) {
        if (t < 0 || (size_t)t >= ELEMENTSOF(ttypes) || !ttypes[t].name)
                return NULL;
        return &ttypes[t];
}

/* ---- the tensors a header implies ---- */

typedef enum tkind {
        KIND_F32,  /* must be F32 (norms, biases, positional embeddings) */
        KIND_CONV, /* F16 or F32 */
        KIND_MAT,  /* any supported type */
} tkind;

typedef struct texpect {
        char name[64];
        int64_t ne[4];
        tkind kind;
        const float **f32; /* destination for KIND_F32 */
        weight *w;         /* destination otherwise */
        /* found in the file */
        const uint8_t *src;
        size_t nbytes;
        int32_t type;
} texpect;

typedef struct texpect_list {
        texpect *v;
        size_t n, cap;
} texpect_list;

static int expect_add(texpect_list *l, tkind kind, const float **f32, weight *w, int64_t ne0, int64_t ne1,
                      int64_t ne2, const char *fmt, ...) _printf_(8, 9);
static int expect_add(texpect_list *l, tkind kind, const float **f32, weight *w, int64_t ne0, int64_t ne1,
                      int64_t ne2, const char *fmt, ...) {
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 64;
                texpect *v = realloc(l->v, cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        texpect *e = &l->v[l->n++];
        *e = (texpect){ .ne = { ne0, ne1, ne2, 1 }, .kind = kind, .f32 = f32, .w = w, .type = -1 };
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->name, sizeof e->name, fmt, ap);
        va_end(ap);
        return 0;
}

static int expect_block(texpect_list *l, whisper_block *b, const char *pre, int i, int64_t S, bool cross) {
        int r = 0;
#define F(dst, ne0, suffix) r = r < 0 ? r : expect_add(l, KIND_F32, &b->dst, NULL, ne0, 1, 1, "%s.blocks.%d." suffix, pre, i)
#define W(dst, ne0, ne1, suffix) r = r < 0 ? r : expect_add(l, KIND_MAT, NULL, &b->dst, ne0, ne1, 1, "%s.blocks.%d." suffix, pre, i)
        W(mlp_0, S, 4 * S, "mlp.0.weight");
        F(mlp_0_b, 4 * S, "mlp.0.bias");
        W(mlp_2, 4 * S, S, "mlp.2.weight");
        F(mlp_2_b, S, "mlp.2.bias");
        F(mlp_ln_w, S, "mlp_ln.weight");
        F(mlp_ln_b, S, "mlp_ln.bias");
        W(attn_q, S, S, "attn.query.weight");
        F(attn_q_b, S, "attn.query.bias");
        W(attn_k, S, S, "attn.key.weight");
        W(attn_v, S, S, "attn.value.weight");
        F(attn_v_b, S, "attn.value.bias");
        W(attn_o, S, S, "attn.out.weight");
        F(attn_o_b, S, "attn.out.bias");
        F(attn_ln_w, S, "attn_ln.weight");
        F(attn_ln_b, S, "attn_ln.bias");
        if (cross) {
                W(cross_q, S, S, "cross_attn.query.weight");
                F(cross_q_b, S, "cross_attn.query.bias");
                W(cross_k, S, S, "cross_attn.key.weight");
                W(cross_v, S, S, "cross_attn.value.weight");
                F(cross_v_b, S, "cross_attn.value.bias");
                W(cross_o, S, S, "cross_attn.out.weight");
                F(cross_o_b, S, "cross_attn.out.bias");
                F(cross_ln_w, S, "cross_attn_ln.weight");
                F(cross_ln_b, S, "cross_attn_ln.bias");
        }
#undef F
#undef W
        return r;
}

static int expect_all(whisper_model *m, texpect_list *l) {
        const whisper_hparams *hp = &m->hp;
        int64_t S = hp->n_audio_state;
        int r = 0;

#define ADD(...) r = r < 0 ? r : expect_add(l, __VA_ARGS__)
        ADD(KIND_F32, &m->e_pe, NULL, S, hp->n_audio_ctx, 1, "encoder.positional_embedding");
        ADD(KIND_CONV, NULL, &m->e_conv1, 3, hp->n_mels, S, "encoder.conv1.weight");
        ADD(KIND_F32, &m->e_conv1_b, NULL, 1, S, 1, "encoder.conv1.bias");
        ADD(KIND_CONV, NULL, &m->e_conv2, 3, S, S, "encoder.conv2.weight");
        ADD(KIND_F32, &m->e_conv2_b, NULL, 1, S, 1, "encoder.conv2.bias");
        ADD(KIND_F32, &m->e_ln_w, NULL, S, 1, 1, "encoder.ln_post.weight");
        ADD(KIND_F32, &m->e_ln_b, NULL, S, 1, 1, "encoder.ln_post.bias");
        ADD(KIND_F32, &m->d_pe, NULL, S, hp->n_text_ctx, 1, "decoder.positional_embedding");
        ADD(KIND_MAT, NULL, &m->d_tok, S, hp->n_vocab, 1, "decoder.token_embedding.weight");
        ADD(KIND_F32, &m->d_ln_w, NULL, S, 1, 1, "decoder.ln.weight");
        ADD(KIND_F32, &m->d_ln_b, NULL, S, 1, 1, "decoder.ln.bias");
#undef ADD
        for (int i = 0; r >= 0 && i < hp->n_audio_layer; i++)
                r = expect_block(l, &m->e_blocks[i], "encoder", i, S, false);
        for (int i = 0; r >= 0 && i < hp->n_text_layer; i++)
                r = expect_block(l, &m->d_blocks[i], "decoder", i, S, true);
        return r;
}

/* ---- header ---- */

static int check_range(const char *what, int32_t v, int32_t lo, int32_t hi, char *err, size_t errlen) {
        if (v < lo || v > hi)
                return set_error(err, errlen, -EBADMSG, "%s is %" PRId32 ", expected %" PRId32 "..%" PRId32, what, v, lo,
                                 hi);
        return 0;
}

static int read_header(whisper_model *m, cursor *c, char *err, size_t errlen) {
        whisper_hparams *hp = &m->hp;
        int32_t magic, *f[] = { &hp->n_vocab,      &hp->n_audio_ctx,  &hp->n_audio_state, &hp->n_audio_head,
                               &hp->n_audio_layer, &hp->n_text_ctx,   &hp->n_text_state,  &hp->n_text_head,
                               &hp->n_text_layer,  &hp->n_mels,       &hp->ftype };
        int r;

        if (cur_i32(c, &magic) < 0 || (uint32_t)magic != WHISPER_MAGIC)
                return set_error(err, errlen, -EBADMSG, "not a whisper.cpp model file (bad magic)");
        for (size_t i = 0; i < ELEMENTSOF(f); i++)
                if (cur_i32(c, f[i]) < 0)
                        return set_error(err, errlen, -EBADMSG, "truncated header");

        /* Bounds generous enough for every released model, tight enough that
         * no product below overflows. */
        if ((r = check_range("n_vocab", hp->n_vocab, 51864, 51866, err, errlen)) < 0 ||
            (r = check_range("n_audio_ctx", hp->n_audio_ctx, 1, 1500, err, errlen)) < 0 ||
            (r = check_range("n_audio_state", hp->n_audio_state, 1, 4096, err, errlen)) < 0 ||
            (r = check_range("n_audio_head", hp->n_audio_head, 1, 128, err, errlen)) < 0 ||
            (r = check_range("n_audio_layer", hp->n_audio_layer, 1, 64, err, errlen)) < 0 ||
            (r = check_range("n_text_ctx", hp->n_text_ctx, 8, 4096, err, errlen)) < 0 ||
            (r = check_range("n_text_state", hp->n_text_state, 1, 4096, err, errlen)) < 0 ||
            (r = check_range("n_text_head", hp->n_text_head, 1, 128, err, errlen)) < 0 ||
            (r = check_range("n_text_layer", hp->n_text_layer, 1, 64, err, errlen)) < 0 ||
            (r = check_range("n_mels", hp->n_mels, 1, 256, err, errlen)) < 0 ||
            (r = check_range("ftype", hp->ftype, 0, 1000 * 1000, err, errlen)) < 0)
                return r;
        if (hp->n_text_state != hp->n_audio_state)
                return set_error(err, errlen, -EBADMSG, "n_text_state %" PRId32 " differs from n_audio_state %" PRId32,
                                 hp->n_text_state, hp->n_audio_state);
        if (hp->n_audio_state % hp->n_audio_head || hp->n_text_state % hp->n_text_head)
                return set_error(err, errlen, -EBADMSG, "state size %" PRId32 " is not a multiple of the head count",
                                 hp->n_audio_state);
        return 0;
}

static int read_filters(whisper_model *m, cursor *c, char *err, size_t errlen) {
        int32_t n_mel, n_fft;
        const uint8_t *p;

        if (cur_i32(c, &n_mel) < 0 || cur_i32(c, &n_fft) < 0)
                return set_error(err, errlen, -EBADMSG, "truncated mel filter header");
        if (n_mel != m->hp.n_mels)
                return set_error(err, errlen, -EBADMSG, "mel filter bank has %" PRId32 " filters, header says %" PRId32,
                                 n_mel, m->hp.n_mels);
        if (n_fft != WHISPER_N_FFT_BINS)
                return set_error(err, errlen, -EBADMSG, "mel filter bank has %" PRId32 " bins, expected %d", n_fft,
                                 WHISPER_N_FFT_BINS);
        size_t n = (size_t)n_mel * (size_t)n_fft;
        if (cur_bytes(c, n * 4, &p) < 0)
                return set_error(err, errlen, -EBADMSG, "truncated mel filter bank");
        m->filters = malloc(n * sizeof(float));
        if (!m->filters)
                return -ENOMEM;
        memcpy(m->filters, p, n * 4);
        for (size_t i = 0; i < n; i++)
                if (!isfinite(m->filters[i]))
                        return set_error(err, errlen, -EBADMSG, "mel filter bank holds a non-finite value");
        m->n_mel_filters = n_mel;
        m->n_fft_bins = n_fft;
        return 0;
}

static int read_vocab(whisper_model *m, cursor *c, char *err, size_t errlen) {
        whisper_vocab *v = &m->vocab;
        int32_t n_file;

        if (cur_i32(c, &n_file) < 0)
                return set_error(err, errlen, -EBADMSG, "truncated vocabulary header");
        if (n_file < 0 || n_file > m->hp.n_vocab)
                return set_error(err, errlen, -EBADMSG, "vocabulary has %" PRId32 " pieces for n_vocab %" PRId32, n_file,
                                 m->hp.n_vocab);

        /* First pass: check lengths and find the total size. */
        cursor c2 = *c;
        size_t total = 0;
        for (int32_t i = 0; i < n_file; i++) {
                int32_t len;
                const uint8_t *p;
                if (cur_i32(&c2, &len) < 0 || len < 0 || len > MAX_PIECE || cur_bytes(&c2, (size_t)len, &p) < 0)
                        return set_error(err, errlen, -EBADMSG, "vocabulary piece %" PRId32 " is truncated or too long", i);
                total += (size_t)len;
        }

        v->n = m->hp.n_vocab;
        /* room for the synthesized names of the special tokens, <= 32 bytes each */
        size_t room = total + (size_t)(v->n - n_file) * 32 + 1;
        v->offset = malloc(((size_t)v->n + 1) * sizeof *v->offset);
        v->bytes = malloc(room);
        if (!v->offset || !v->bytes)
                return -ENOMEM;

        size_t at = 0;
        for (int32_t i = 0; i < n_file; i++) {
                int32_t len = 0;
                const uint8_t *p = NULL;
                (void)cur_i32(c, &len);
                (void)cur_bytes(c, (size_t)len, &p);
                v->offset[i] = (uint32_t)at;
                memcpy(v->bytes + at, p, (size_t)len);
                at += (size_t)len;
        }
        v->offset[n_file] = (uint32_t)at;

        /* Special tokens: ids from n_vocab (whisper.cpp's rule), names for the
         * ones the file does not hold. */
        whisper_special *sp = &m->sp;
        m->multilingual = m->hp.n_vocab >= 51865;
        sp->n_langs = m->multilingual ? m->hp.n_vocab - 51765 - 1 : 0;
        int dt = m->multilingual ? sp->n_langs - 98 : 0, ml = m->multilingual ? 1 : 0;
        sp->eot = 50256 + ml;
        sp->sot = 50257 + ml;
        sp->translate = 50357 + dt;
        sp->transcribe = 50358 + dt;
        sp->solm = 50359 + dt;
        sp->prev = 50360 + dt;
        sp->nosp = 50361 + dt;
        sp->notimestamps = 50362 + dt;
        sp->beg = 50363 + dt;

        for (int32_t i = n_file; i < v->n; i++) {
                char name[32];
                if (i > sp->beg)
                        snprintf(name, sizeof name, "[_TT_%d]", i - sp->beg);
                else if (i == sp->eot)
                        snprintf(name, sizeof name, "[_EOT_]");
                else if (i == sp->sot)
                        snprintf(name, sizeof name, "[_SOT_]");
                else if (i == sp->translate)
                        snprintf(name, sizeof name, "[_TRANSLATE_]");
                else if (i == sp->transcribe)
                        snprintf(name, sizeof name, "[_TRANSCRIBE_]");
                else if (i == sp->solm)
                        snprintf(name, sizeof name, "[_SOLM_]");
                else if (i == sp->prev)
                        snprintf(name, sizeof name, "[_PREV_]");
                else if (i == sp->nosp)
                        snprintf(name, sizeof name, "[_NOSP_]");
                else if (i == sp->notimestamps)
                        snprintf(name, sizeof name, "[_NOT_]");
                else if (i == sp->beg)
                        snprintf(name, sizeof name, "[_BEG_]");
                else if (i > sp->sot && i <= sp->sot + sp->n_langs && whisper_lang_code(i - sp->sot - 1))
                        snprintf(name, sizeof name, "[_LANG_%s]", whisper_lang_code(i - sp->sot - 1));
                else
                        snprintf(name, sizeof name, "[_extra_token_%d]", i);
                size_t len = strlen(name);
                memcpy(v->bytes + at, name, len);
                at += len;
                v->offset[i + 1] = (uint32_t)at;
        }
        return whisper_vocab_finish(m, err, errlen);
}

/* ---- tensors ---- */

static int read_tensors(texpect_list *l, cursor *c, char *err, size_t errlen) {
        while (cur_left(c) > 0) {
                int32_t n_dims, name_len, type;
                int64_t ne[4] = { 1, 1, 1, 1 };
                const uint8_t *name, *data;

                if (cur_i32(c, &n_dims) < 0 || cur_i32(c, &name_len) < 0 || cur_i32(c, &type) < 0)
                        return set_error(err, errlen, -EBADMSG, "truncated tensor record header");
                if (n_dims < 0 || n_dims > 4)
                        return set_error(err, errlen, -EBADMSG, "tensor with %" PRId32 " dimensions", n_dims);
                if (name_len < 1 || name_len >= MAX_NAME)
                        return set_error(err, errlen, -EBADMSG, "tensor name length %" PRId32, name_len);
                for (int i = 0; i < n_dims; i++) {
                        int32_t v;
                        if (cur_i32(c, &v) < 0)
                                return set_error(err, errlen, -EBADMSG, "truncated tensor shape");
                        if (v < 1)
                                return set_error(err, errlen, -EBADMSG, "tensor dimension %d is %" PRId32, i, v);
                        ne[i] = v;
                }
                if (cur_bytes(c, (size_t)name_len, &name) < 0)
                        return set_error(err, errlen, -EBADMSG, "truncated tensor name");
                char nm[MAX_NAME];
                memcpy(nm, name, (size_t)name_len);
                nm[name_len] = 0;
                if (memchr(nm, 0, (size_t)name_len))
                        return set_error(err, errlen, -EBADMSG, "tensor name contains a NUL byte");

                texpect *e = NULL;
                for (size_t i = 0; i < l->n; i++)
                        if (strcmp(l->v[i].name, nm) == 0) {
                                e = &l->v[i];
                                break;
                        }
                if (!e)
                        return set_error(err, errlen, -EBADMSG, "unknown tensor '%s'", nm);
                if (e->src)
                        return set_error(err, errlen, -EBADMSG, "tensor '%s' appears twice", nm);
                for (int i = 0; i < 4; i++)
                        if (ne[i] != e->ne[i])
                                return set_error(err, errlen, -EBADMSG,
                                                 "tensor '%s' has shape [%" PRId64 ", %" PRId64 ", %" PRId64 "], expected [%" PRId64
                                                 ", %" PRId64 ", %" PRId64 "]",
                                                 nm, ne[0], ne[1], ne[2], e->ne[0], e->ne[1], e->ne[2]);

                const ttype_info *ti = ttype_get(type);
                if (!ti)
                        return set_error(err, errlen, -EBADMSG, "tensor '%s' has unknown type %" PRId32, nm, type);
                if (!ti->supported)
                        return set_error(err, errlen, -EOPNOTSUPP,
                                         "tensor '%s' is %s; supported are f32, f16, q8_0 and q5_0", nm, ti->name);
                if (e->kind == KIND_F32 && type != 0)
                        return set_error(err, errlen, -EBADMSG, "tensor '%s' is %s, expected f32", nm, ti->name);
                if (e->kind == KIND_CONV && type != 0 && type != 1)
                        return set_error(err, errlen, -EBADMSG, "tensor '%s' is %s, expected f16 or f32", nm, ti->name);
                if (ne[0] % ti->block)
                        return set_error(err, errlen, -EBADMSG, "tensor '%s': row of %" PRId64 " is not a multiple of %" PRIu32,
                                         nm, ne[0], ti->block);

                /* ne[i] < 2^31 each, checked products */
                uint64_t nel = 1, nbytes;
                for (int i = 0; i < 4; i++)
                        if (MUL_OVERFLOW(nel, (uint64_t)ne[i], &nel))
                                return set_error(err, errlen, -EBADMSG, "tensor '%s' is too large", nm);
                if (MUL_OVERFLOW(nel / ti->block, (uint64_t)ti->size, &nbytes) || nbytes > SIZE_MAX / 2)
                        return set_error(err, errlen, -EBADMSG, "tensor '%s' is too large", nm);
                if (cur_bytes(c, (size_t)nbytes, &data) < 0)
                        return set_error(err, errlen, -EBADMSG, "tensor '%s' data is truncated (%" PRIu64 " bytes needed, %zu left)",
                                         nm, nbytes, cur_left(c));
                e->src = data;
                e->nbytes = (size_t)nbytes;
                e->type = type;
        }

        for (size_t i = 0; i < l->n; i++)
                if (!l->v[i].src)
                        return set_error(err, errlen, -EBADMSG, "tensor '%s' is missing", l->v[i].name);
        return 0;
}

/* Copy every tensor into one aligned arena and point the model at it: the
 * process's shared weights arena when there is one (weights-arena.h; then
 * a worker that finds the copy already made copies nothing), else the heap. */
static int place_tensors(whisper_model *m, texpect_list *l, const weights_source *src, char *err, size_t errlen) {
        size_t size = 0;
        bool fill = true;
        for (size_t i = 0; i < l->n; i++) {
                if (ADD_OVERFLOW(size, align_up_size(l->v[i].nbytes, 64), &size))
                        return set_error(err, errlen, -EFBIG, "model too large");
        }
        uint8_t *at = weights_arena_block(weights_arena_default(), src, "whisper.tensors", 1, size, &fill);
        m->arena_shared = at != NULL;
        if (!at && posix_memalign(&m->arena, 64, size ? size : 64) != 0)
                return set_error(err, errlen, -ENOMEM, "cannot allocate %zu bytes for the weights", size);
        if (!at)
                at = m->arena;
        m->arena_size = size;

        for (size_t i = 0; i < l->n; i++) {
                texpect *e = &l->v[i];
                if (fill)
                        memcpy(at, e->src, e->nbytes);
                if (e->kind == KIND_F32) {
                        const float *f = (const float *)at;
                        for (size_t j = 0; j < e->nbytes / 4; j++)
                                if (!isfinite(f[j]))
                                        return set_error(err, errlen, -EBADMSG, "tensor '%s' holds a non-finite value",
                                                         e->name);
                        *e->f32 = f;
                } else {
                        const ttype_info *ti = ttype_get(e->type);
                        weight *w = e->w;
                        /* conv kernels [3, in, out]: rows of 3*in */
                        w->name = NULL;
                        w->type = (uint32_t)e->type;
                        w->n_in = e->ne[0] * e->ne[1] * e->ne[2] / (e->kind == KIND_CONV ? e->ne[2] : e->ne[1]);
                        w->n_out = e->kind == KIND_CONV ? e->ne[2] : e->ne[1];
                        w->row_bytes = (size_t)(w->n_in / ti->block) * ti->size;
                        w->data = at;
                }
                at += align_up_size(e->nbytes, 64);
        }
        return 0;
}

/* ---- entry points ---- */

void whisper_model_free(whisper_model *m) {
        if (!m)
                return;
        free(m->filters);
        whisper_vocab_done(&m->vocab);
        free(m->arena); /* NULL when in the shared arena */
        free(m->e_blocks);
        free(m->d_blocks);
        free(m);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(whisper_model *, whisper_model_free);

static int load_buffer(const void *data, size_t size, const weights_source *src, whisper_model **ret, char *err,
                       size_t errlen) {
        _cleanup_(whisper_model_freep) whisper_model *m = NULL;
        texpect_list l = {};
        cursor c = { .p = data, .end = (const uint8_t *)data + size };
        int r;

        if (!data && size)
                return set_error(err, errlen, -EINVAL, "no data");
        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        if ((r = read_header(m, &c, err, errlen)) < 0 || (r = read_filters(m, &c, err, errlen)) < 0 ||
            (r = read_vocab(m, &c, err, errlen)) < 0)
                return r;

        m->e_blocks = calloc((size_t)m->hp.n_audio_layer, sizeof *m->e_blocks);
        m->d_blocks = calloc((size_t)m->hp.n_text_layer, sizeof *m->d_blocks);
        if (!m->e_blocks || !m->d_blocks)
                return -ENOMEM;
        r = expect_all(m, &l);
        if (r >= 0)
                r = read_tensors(&l, &c, err, errlen);
        if (r >= 0)
                r = place_tensors(m, &l, src, err, errlen);
        free(l.v);
        if (r < 0)
                return r == -ENOMEM ? set_error(err, errlen, r, "out of memory") : r;

        *ret = TAKE_PTR(m);
        return 0;
}

int whisper_model_load_buffer(const void *data, size_t size, whisper_model **ret, char *err, size_t errlen) {
        return load_buffer(data, size, NULL, ret, err, errlen);
}

int whisper_model_load_fd(int fd, whisper_model **ret, char *err, size_t errlen) {
        struct stat st;
        weights_source src;

        if (fstat(fd, &st) < 0)
                return set_error(err, errlen, -errno, "cannot stat the model file: %m");
        if (!S_ISREG(st.st_mode))
                return set_error(err, errlen, -EBADF, "the model is not a regular file");
        if (st.st_size < 4)
                return set_error(err, errlen, -EBADMSG, "the model file is too short");
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return set_error(err, errlen, -errno, "cannot map the model file: %m");
        int r = weights_source_from_fd(fd, &src);
        if (r >= 0)
                r = load_buffer(p, (size_t)st.st_size, &src, ret, err, errlen);
        munmap(p, (size_t)st.st_size);
        return r;
}

int whisper_model_load_path(const char *path, whisper_model **ret, char *err, size_t errlen) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return set_error(err, errlen, -errno, "cannot open %s: %m", path);
        return whisper_model_load_fd(fd, ret, err, errlen);
}

/* ---- accessors ---- */

const whisper_hparams *whisper_model_hparams(const whisper_model *m) { return &m->hp; }
const whisper_special *whisper_model_special(const whisper_model *m) { return &m->sp; }
bool whisper_model_is_multilingual(const whisper_model *m) { return m->multilingual; }
size_t whisper_model_weight_bytes(const whisper_model *m) { return m->arena_size; }

const char *whisper_model_size_name(const whisper_model *m) {
        switch (m->hp.n_audio_layer) {
        case 4: return "tiny";
        case 6: return "base";
        case 12: return "small";
        case 24: return "medium";
        case 32: return "large";
        default: return "unknown";
        }
}
