/* SPDX-License-Identifier: MIT */
/* Loading an mmproj GGUF (specs/vision-siglip.md §2-3).
 *
 * Keys are read the way llama.cpp's clip reads them (the projector type
 * from clip.projector_type, else clip.vision.projector_type; the FFN
 * activation from clip.use_gelu / clip.use_silu, else quick GELU), then
 * checked against what the encoder can run: sizes in range, the image a
 * whole number of patches, heads dividing the width.  Every tensor is then
 * looked up and its shape compared with the one the metadata implies;
 * tensors of variants we do not run (pre-norm, class token, fused QKV,
 * layer scales, gated FFN) are refused rather than silently ignored. */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>

#include "kernels.h"
#include "tensor-type.h"
#include "vision-impl.h"
#include "weights-arena.h"

#define MAX_IMAGE 4096
#define MAX_PATCH 64
#define MAX_EMBD 16384
#define MAX_FF 65536
#define MAX_LAYER 256
#define MAX_OUT 65536

static const vision_projector *const projectors[] = {
        &vision_projector_gemma3,
};

/* ---- keys ---- */

static int get_u32(const vision_model *m, const char *key, uint32_t lo, uint32_t hi, uint32_t *ret, char *err,
                   size_t errlen) {
        int r = gguf_get_u32(m->gguf, key, ret);
        if (r == -ENOENT)
                return set_error(err, errlen, -EBADMSG, "mmproj: key %s is missing", key);
        if (r < 0)
                return set_error(err, errlen, -EBADMSG, "mmproj: key %s is not an unsigned integer", key);
        if (*ret < lo || *ret > hi)
                return set_error(err, errlen, -EBADMSG, "mmproj: %s = %" PRIu32 " is out of range [%" PRIu32
                                 ", %" PRIu32 "]", key, *ret, lo, hi);
        return 0;
}

static bool get_flag(const vision_model *m, const char *key) {
        bool b = false;
        return gguf_get_bool(m->gguf, key, &b) >= 0 && b;
}

static int get_f32_arr3(const vision_model *m, const char *key, float v[3], char *err, size_t errlen) {
        gguf_type t;
        uint64_t n;
        const void *data;
        if (gguf_get_arr(m->gguf, key, &t, &n, &data) < 0 || n != 3)
                return set_error(err, errlen, -EBADMSG, "mmproj: key %s must be an array of 3 numbers", key);
        for (uint64_t i = 0; i < 3; i++)
                if (gguf_get_arr_f32(m->gguf, key, i, &v[i]) < 0 || !(v[i] == v[i]))
                        return set_error(err, errlen, -EBADMSG, "mmproj: key %s must be an array of 3 numbers", key);
        return 0;
}

/* ---- tensors ---- */

static int find_shaped(const vision_model *m, const char *name, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3,
                       bool required, const gguf_tensor **ret, char *err, size_t errlen) {
        const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
        *ret = t;
        if (!t)
                return required ? set_error(err, errlen, -EBADMSG, "mmproj: tensor %s is missing", name) : 0;
        if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != ne2 || t->ne[3] != ne3)
                return set_error(err, errlen, -EBADMSG,
                                 "mmproj: tensor %s has shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                                 "], the metadata implies [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "]",
                                 name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], ne0, ne1, ne2, ne3);
        if (!type_is_supported(t->type))
                return set_error(err, errlen, -EOPNOTSUPP, "mmproj: tensor %s has type %s, which we do not run",
                                 name, type_name(t->type));
        return 0;
}

static int own(vision_model *m, float *p) {
        float **o = realloc(m->owned, (m->n_owned + 1) * sizeof *o);
        if (!o) {
                free(p);
                return -ENOMEM;
        }
        m->owned = o;
        m->owned[m->n_owned++] = p;
        return 0;
}

/* The elements of t as floats: the mapping itself for F32, else a copy,
 * made once in the process's shared weights arena when there is one
 * (weights-arena.h), else on the heap. */
static int as_f32(vision_model *m, const gguf_tensor *t, int64_t n_cols, int64_t n_rows, const float **ret, char *err,
                  size_t errlen) {
        if (t->type == TYPE_F32) {
                *ret = t->data;
                return 0;
        }
        const kernel_set *k = kernels_best();
        size_t row_bytes;
        if (type_row_size(t->type, n_cols, &row_bytes) < 0 || !k->to_float[t->type])
                return set_error(err, errlen, -EOPNOTSUPP, "mmproj: tensor %s: rows of %" PRId64 " in %s", t->name.p,
                                 n_cols, type_name(t->type));
        size_t bytes = (size_t)n_cols * (size_t)n_rows * sizeof(float);
        bool fill = true;
        char name[WEIGHTS_ARENA_NAME_MAX]; /* gguf names are not NUL-terminated */
        snprintf(name, sizeof name, "%.*s", (int)MIN(t->name.len, (uint64_t)sizeof name - 1), t->name.p);
        /* A name cut short could be another tensor's: those stay private. */
        float *p = t->name.len < sizeof name ?
                weights_arena_block(weights_arena_default(), &m->source, name, 1, bytes, &fill) : NULL;
        bool shared = p != NULL;
        if (!p)
                p = malloc(bytes);
        if (!p)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        for (int64_t r = 0; fill && r < n_rows; r++)
                k->to_float[t->type]((const uint8_t *)t->data + (size_t)r * row_bytes, p + r * n_cols, n_cols);
        if (!shared && own(m, p) < 0)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        *ret = p;
        return 0;
}

int vision_load_vec(vision_model *m, const char *name, int64_t n, bool required, const float **ret, char *err,
                    size_t errlen) {
        const gguf_tensor *t;
        int r = find_shaped(m, name, n, 1, 1, 1, required, &t, err, errlen);
        *ret = NULL;
        if (r < 0 || !t)
                return r;
        return as_f32(m, t, n, 1, ret, err, errlen);
}

int vision_load_f32_matrix(vision_model *m, const char *name, int64_t n_cols, int64_t n_rows, const float **ret,
                           char *err, size_t errlen) {
        const gguf_tensor *t;
        int r = find_shaped(m, name, n_cols, n_rows, 1, 1, true, &t, err, errlen);
        if (r < 0)
                return r;
        return as_f32(m, t, n_cols, n_rows, ret, err, errlen);
}

/* A weight of n_out rows of n_in, any type we have kernels for. */
static int load_weight(vision_model *m, const char *name, int64_t n_in, int64_t n_out, weight *w, char *err,
                       size_t errlen) {
        const gguf_tensor *t;
        int r = find_shaped(m, name, n_in, n_out, 1, 1, true, &t, err, errlen);
        if (r < 0)
                return r;
        size_t row_bytes;
        if (type_row_size(t->type, n_in, &row_bytes) < 0)
                return set_error(err, errlen, -EBADMSG, "mmproj: tensor %s: rows of %" PRId64 " do not fit %s blocks",
                                 name, n_in, type_name(t->type));
        *w = (weight) { .name = t->name.p, .type = t->type, .n_in = n_in, .n_out = n_out, .row_bytes = row_bytes,
                        .data = t->data };
        return 0;
}

/* "v.blk.3.attn_q.bias" and friends */
static const char *blk_name(char *buf, size_t n, int l, const char *what, const char *suffix) {
        snprintf(buf, n, "v.blk.%d.%s.%s", l, what, suffix);
        return buf;
}

static int load_block(vision_model *m, int l, char *err, size_t errlen) {
        vision_block *b = &m->blocks[l];
        const int64_t E = m->n_embd, F = m->n_ff;
        char s[64];
        int r;

        static const char *const refused[] = { "attn_qkv", "attn_q_norm", "attn_k_norm", "ffn_gate", "ls1", "ls2" };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                if (gguf_find_tensor(m->gguf, blk_name(s, sizeof s, l, refused[i], "weight")))
                        return set_error(err, errlen, -EOPNOTSUPP,
                                         "mmproj: tensor %s belongs to a ViT variant we do not run", s);

        struct { const char *name; weight *w; const float **bias; int64_t n_in, n_out; } mats[] = {
                { "attn_q", &b->q, &b->q_b, E, E },
                { "attn_k", &b->k, &b->k_b, E, E },
                { "attn_v", &b->v, &b->v_b, E, E },
                { "attn_out", &b->o, &b->o_b, E, E },
                { "ffn_up", &b->up, &b->up_b, E, F },
                { "ffn_down", &b->down, &b->down_b, F, E },
        };
        /* Old converters swapped the names of fc1 and fc2; llama.cpp swaps
         * them back when ffn_down reads n_embd-wide rows, and so do we. */
        const gguf_tensor *down = gguf_find_tensor(m->gguf, blk_name(s, sizeof s, l, "ffn_down", "weight"));
        bool swapped = down && down->ne[0] == E && E != F;
        if (swapped) {
                mats[4].name = "ffn_down";
                mats[5].name = "ffn_up";
        }
        for (size_t i = 0; i < ELEMENTSOF(mats); i++) {
                if ((r = load_weight(m, blk_name(s, sizeof s, l, mats[i].name, "weight"), mats[i].n_in,
                                     mats[i].n_out, mats[i].w, err, errlen)) < 0 ||
                    (r = vision_load_vec(m, blk_name(s, sizeof s, l, mats[i].name, "bias"), mats[i].n_out, false,
                                         mats[i].bias, err, errlen)) < 0)
                        return r;
        }
        if ((r = vision_load_vec(m, blk_name(s, sizeof s, l, "ln1", "weight"), E, true, &b->ln1_w, err, errlen)) < 0 ||
            (r = vision_load_vec(m, blk_name(s, sizeof s, l, "ln1", "bias"), E, false, &b->ln1_b, err, errlen)) < 0 ||
            (r = vision_load_vec(m, blk_name(s, sizeof s, l, "ln2", "weight"), E, true, &b->ln2_w, err, errlen)) < 0 ||
            (r = vision_load_vec(m, blk_name(s, sizeof s, l, "ln2", "bias"), E, false, &b->ln2_b, err, errlen)) < 0)
                return r;
        return 0;
}

static int load_hparams(vision_model *m, char *err, size_t errlen) {
        gguf_str s;
        uint32_t v;
        int r;

        if (gguf_get_str(m->gguf, "general.architecture", &s) < 0 || !gguf_str_eq(s, "clip"))
                return set_error(err, errlen, -EBADMSG, "not a multimodal projector: general.architecture is not \"clip\"");
        if (!get_flag(m, "clip.has_vision_encoder"))
                return set_error(err, errlen, -EOPNOTSUPP, "mmproj: the file has no vision encoder");

        if (gguf_get_str(m->gguf, "clip.projector_type", &s) < 0 &&
            gguf_get_str(m->gguf, "clip.vision.projector_type", &s) < 0)
                return set_error(err, errlen, -EOPNOTSUPP,
                                 "mmproj: no projector type (an MLP/LLaVA projector, which we do not run)");
        for (size_t i = 0; i < ELEMENTSOF(projectors); i++)
                if (gguf_str_eq(s, projectors[i]->name))
                        m->proj = projectors[i];
        if (!m->proj) {
                int n = (int)MIN(s.len, (uint64_t)64);
                if (gguf_str_eq(s, "gemma3nv"))
                        return set_error(err, errlen, -EOPNOTSUPP,
                                         "mmproj: projector type \"gemma3nv\" (Gemma 3n's MobileNet-V5 tower) is not supported");
                return set_error(err, errlen, -EOPNOTSUPP, "mmproj: projector type \"%.*s\" is not supported", n,
                                 s.p);
        }

        if ((r = get_u32(m, "clip.vision.image_size", 1, MAX_IMAGE, &m->image_size, err, errlen)) < 0 ||
            (r = get_u32(m, "clip.vision.patch_size", 1, MAX_PATCH, &m->patch_size, err, errlen)) < 0)
                return r;
        if (m->image_size % m->patch_size != 0)
                return set_error(err, errlen, -EBADMSG, "mmproj: image size %" PRIu32 " is not a multiple of the patch size %" PRIu32,
                                 m->image_size, m->patch_size);
        m->n_side = m->image_size / m->patch_size;

        if ((r = get_u32(m, "clip.vision.embedding_length", 1, MAX_EMBD, &v, err, errlen)) < 0)
                return r;
        m->n_embd = (int32_t)v;
        if ((r = get_u32(m, "clip.vision.feed_forward_length", 1, MAX_FF, &v, err, errlen)) < 0)
                return r;
        m->n_ff = (int32_t)v;
        if ((r = get_u32(m, "clip.vision.block_count", 1, MAX_LAYER, &v, err, errlen)) < 0)
                return r;
        m->n_layer = (int32_t)v;
        if ((r = get_u32(m, "clip.vision.attention.head_count", 1, (uint32_t)m->n_embd, &v, err, errlen)) < 0)
                return r;
        m->n_head = (int32_t)v;
        if (m->n_embd % m->n_head != 0)
                return set_error(err, errlen, -EBADMSG, "mmproj: %d heads do not divide the width %d", m->n_head,
                                 m->n_embd);
        if ((r = get_u32(m, "clip.vision.projection_dim", 1, MAX_OUT, &v, err, errlen)) < 0)
                return r;
        m->n_embd_out = (int32_t)v;
        if (gguf_get_f32(m->gguf, "clip.vision.attention.layer_norm_epsilon", &m->eps) < 0 || !(m->eps > 0) ||
            m->eps > 1.0f)
                return set_error(err, errlen, -EBADMSG,
                                 "mmproj: clip.vision.attention.layer_norm_epsilon is missing or not in (0, 1]");
        if ((r = get_f32_arr3(m, "clip.vision.image_mean", m->mean, err, errlen)) < 0 ||
            (r = get_f32_arr3(m, "clip.vision.image_std", m->std, err, errlen)) < 0)
                return r;
        for (int c = 0; c < 3; c++)
                if (!(m->std[c] != 0))
                        return set_error(err, errlen, -EBADMSG, "mmproj: clip.vision.image_std has a zero");

        bool gelu = get_flag(m, "clip.use_gelu"), silu = get_flag(m, "clip.use_silu");
        if (gelu && silu)
                return set_error(err, errlen, -EBADMSG, "mmproj: both clip.use_gelu and clip.use_silu are set");
        m->ffn_op = gelu ? VISION_FFN_GELU : silu ? VISION_FFN_SILU : VISION_FFN_GELU_QUICK;
        return 0;
}

static int load(vision_model *m, char *err, size_t errlen) {
        const int64_t E = m->n_embd, P = m->patch_size, T = (int64_t)m->n_side * m->n_side;
        const gguf_tensor *t;
        int r;

        static const char *const refused[] = { "v.class_embd", "v.pre_ln.weight", "v.patch_embd.weight.1",
                                               "v.norm_embd.weight" };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                if (gguf_find_tensor(m->gguf, refused[i]))
                        return set_error(err, errlen, -EOPNOTSUPP,
                                         "mmproj: tensor %s belongs to a ViT variant we do not run", refused[i]);

        /* patch embedding: a conv kernel [P, P, 3, E] read as E rows of 3 P P */
        if ((r = find_shaped(m, "v.patch_embd.weight", P, P, 3, E, true, &t, err, errlen)) < 0)
                return r;
        if (t->type != TYPE_F32 && t->type != TYPE_F16 && t->type != TYPE_BF16)
                return set_error(err, errlen, -EOPNOTSUPP, "mmproj: v.patch_embd.weight in %s (F32, F16 or BF16 expected)",
                                 type_name(t->type));
        size_t row_bytes;
        if (type_row_size(t->type, 3 * P * P, &row_bytes) < 0)
                return set_error(err, errlen, -EBADMSG, "mmproj: v.patch_embd.weight: bad rows");
        m->patch = (weight) { .name = t->name.p, .type = t->type, .n_in = 3 * P * P, .n_out = E,
                              .row_bytes = row_bytes, .data = t->data };
        if ((r = vision_load_vec(m, "v.patch_embd.bias", E, false, &m->patch_b, err, errlen)) < 0 ||
            (r = vision_load_f32_matrix(m, "v.position_embd.weight", E, T, &m->pos, err, errlen)) < 0)
                return r;

        /* a block past the last one means block_count lies */
        char s[64];
        if (gguf_find_tensor(m->gguf, blk_name(s, sizeof s, m->n_layer, "attn_q", "weight")))
                return set_error(err, errlen, -EBADMSG, "mmproj: tensor %s lies beyond clip.vision.block_count = %d",
                                 s, m->n_layer);
        m->blocks = calloc((size_t)m->n_layer, sizeof *m->blocks);
        if (!m->blocks)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        for (int l = 0; l < m->n_layer; l++)
                if ((r = load_block(m, l, err, errlen)) < 0)
                        return r;

        if ((r = vision_load_vec(m, "v.post_ln.weight", E, false, &m->post_w, err, errlen)) < 0 ||
            (r = vision_load_vec(m, "v.post_ln.bias", E, false, &m->post_b, err, errlen)) < 0)
                return r;

        if ((r = m->proj->load(m, err, errlen)) < 0)
                return r;

        for (int64_t i = 0; i < gguf_n_tensors(m->gguf); i++) {
                const gguf_tensor *g = gguf_tensor_at(m->gguf, i);
                m->n_params += (uint64_t)(g->ne[0] * g->ne[1] * g->ne[2] * g->ne[3]);
        }
        return 0;
}

static int open_gguf(gguf_file *f, int fd, vision_model **ret, char *err, size_t errlen) {
        vision_model *m = calloc(1, sizeof *m);
        if (!m) {
                gguf_close(f);
                return set_error(err, errlen, -ENOMEM, "out of memory");
        }
        m->gguf = f;
        (void)weights_source_from_fd(fd, &m->source); /* -1 or an error: no identity, no sharing */
        int r = load_hparams(m, err, errlen);
        if (r >= 0)
                r = load(m, err, errlen);
        if (r < 0) {
                vision_model_free(m);
                return r;
        }
        *ret = m;
        return 0;
}

int vision_model_open_fd(int fd, vision_model **ret, char *err, size_t errlen) {
        gguf_file *f;
        int r = gguf_open_fd(fd, &f, err, errlen);
        return r < 0 ? r : open_gguf(f, fd, ret, err, errlen);
}

int vision_model_open_path(const char *path, vision_model **ret, char *err, size_t errlen) {
        gguf_file *f;
        int r = gguf_open_path(path, &f, err, errlen);
        return r < 0 ? r : open_gguf(f, -1, ret, err, errlen);
}

int vision_model_open_memory(const void *data, size_t size, vision_model **ret, char *err, size_t errlen) {
        gguf_file *f;
        int r = gguf_open_memory(data, size, &f, err, errlen);
        return r < 0 ? r : open_gguf(f, -1, ret, err, errlen);
}

void vision_model_free(vision_model *m) {
        if (!m)
                return;
        for (size_t i = 0; i < m->n_owned; i++)
                free(m->owned[i]);
        free(m->owned);
        free(m->blocks);
        gguf_close(m->gguf);
        free(m);
}

const char *vision_model_projector(const vision_model *m) { return m->proj->name; }
uint32_t vision_model_image_size(const vision_model *m) { return m->image_size; }
int32_t vision_model_n_tokens(const vision_model *m) { return m->n_tokens; }
int32_t vision_model_n_embd_out(const vision_model *m) { return m->n_embd_out; }
int32_t vision_model_n_layer(const vision_model *m) { return m->n_layer; }
int32_t vision_model_n_embd(const vision_model *m) { return m->n_embd; }
uint64_t vision_model_n_params(const vision_model *m) { return m->n_params; }

void vision_model_image_norm(const vision_model *m, float mean[3], float std[3]) {
        memcpy(mean, m->mean, sizeof m->mean);
        memcpy(std, m->std, sizeof m->std);
}
