/* SPDX-License-Identifier: MIT */
/* Random-weight Gemma 3 mmproj files (mkmmproj.h), loadable by llama.cpp's
 * clip and by sotto's vision encoder.
 *
 * Types as the converter gives them: patch and position embeddings, norms
 * and biases always F32; the input projection F16 unless the type is F32;
 * the block matrices in the type asked for (Q8_0 falls back to F16 for rows
 * that are not a multiple of 32, like llama.cpp's quantizer).
 *
 * Weights: N(0, 1/n_in) for matrices, so that activations keep unit scale
 * and the attention logits spread over a few units (with the text models'
 * N(0, 0.02) the softmax would be almost uniform and a wrong Q.K would go
 * unnoticed); norms 1 + N(0, 0.1), biases N(0, 0.1), position embeddings
 * N(0, 0.5).  Every row draws from its own stream (seed, tensor, row). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf-writer.h"
#include "macro.h"
#include "mkmodel-quant.h"
#include "mkmodel-rng.h"
#include "mkmmproj.h"
#include "tensor-type.h"

static const mk_mmproj_preset presets[] = {
        { "gemma3-tiny", 224, 14, 128, 344, 3, 4, 256, 0, "test shape: 16x16 patches, pooled to 4x4 = 16 tokens" },
        { "gemma3-tiny-sf2", 112, 14, 96, 200, 2, 3, 160, 2, "8x8 patches, scale_factor 2: 4x4 = 16 tokens" },
        { "gemma3-micro", 14, 7, 32, 64, 1, 2, 32, 2, "fuzzing seed: 2x2 patches, one token" },
        { "gemma3-siglip", 896, 14, 1152, 4304, 27, 16, 2560, 0, "SigLIP-So400m at 896 + Gemma 3 4B projector" },
};

typedef enum init { INIT_MATRIX, INIT_NORM, INIT_BIAS, INIT_POS } init;

typedef struct plan_tensor {
        char name[64];
        int n_dims;
        int64_t ne[4];
        uint32_t type;
        init init;
        float std;
        uint64_t offset, nbytes;
} plan_tensor;

typedef struct plan {
        mk_gguf *w;
        const mk_mmproj_edit *edit;
        uint32_t n_embd;
        plan_tensor t[4096];
        size_t n;
        int error;
} plan;

static void add(plan *p, const char *name, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3,
                uint32_t type, init in, float std) {
        if (p->error < 0 || (p->edit->skip_tensor && strcmp(name, p->edit->skip_tensor) == 0))
                return;
        if (p->edit->bad_tensor && strcmp(name, p->edit->bad_tensor) == 0)
                ne1++;
        if (p->n == ELEMENTSOF(p->t)) {
                p->error = -E2BIG;
                return;
        }
        plan_tensor *t = &p->t[p->n];
        *t = (plan_tensor) { .n_dims = n_dims, .ne = { ne0, ne1, ne2, ne3 }, .type = type, .init = in, .std = std };
        snprintf(t->name, sizeof t->name, "%s", name);
        int r = mk_gguf_add_tensor(p->w, name, n_dims, t->ne, type, &t->offset, &t->nbytes);
        if (r < 0) {
                fprintf(stderr, "tensor %s: %s\n", name, strerror(-r));
                p->error = r;
                return;
        }
        p->n++;
}

static uint32_t fit(uint32_t type, int64_t ne0) { return ne0 % mk_type_block(type) == 0 ? type : TYPE_F16; }

static void matrix(plan *p, const char *name, int64_t n_in, int64_t n_out, uint32_t type) {
        add(p, name, 2, n_in, n_out, 1, 1, fit(type, n_in), INIT_MATRIX, 1.0f / sqrtf((float)n_in));
}

static void vec(plan *p, const char *name, int64_t n, init in) {
        add(p, name, 1, n, 1, 1, 1, TYPE_F32, in, in == INIT_NORM || in == INIT_BIAS ? 0.1f : 0.5f);
}

static bool skip(const plan *p, const char *key) { return p->edit->skip_key && strcmp(key, p->edit->skip_key) == 0; }

static void put_u32(plan *p, const char *key, uint32_t v) {
        if (p->edit->u32_key && strcmp(key, p->edit->u32_key) == 0)
                v = p->edit->u32_val;
        if (!skip(p, key))
                mk_gguf_kv_u32(p->w, key, v);
}

static void put_str(plan *p, const char *key, const char *v) {
        if (!skip(p, key))
                mk_gguf_kv_str(p->w, key, v);
}

static void put_bool(plan *p, const char *key, bool v) {
        if (!skip(p, key))
                mk_gguf_kv_bool(p->w, key, v);
}

static void put_f32x3(plan *p, const char *key, float v) {
        if (skip(p, key))
                return;
        mk_gguf_arr_begin(p->w, key, GGUF_TYPE_FLOAT32, 3);
        for (int i = 0; i < 3; i++)
                mk_gguf_arr_f32(p->w, v);
}

static void build(plan *p, const mk_mmproj_preset *ps, uint32_t type, uint32_t file_type) {
        mk_gguf *w = p->w;
        const uint32_t E = ps->n_embd, F = ps->n_ff, P = ps->patch_size, n_side = ps->image_size / ps->patch_size;
        char s[64];

        put_str(p, "general.architecture", "clip");
        put_str(p, "general.type", "mmproj");
        put_str(p, "general.name", ps->name);
        put_u32(p, "general.file_type", file_type);
        put_u32(p, "general.alignment", MK_GGUF_ALIGN);
        put_bool(p, "clip.has_vision_encoder", true);
        put_str(p, "clip.projector_type", p->edit->projector ? p->edit->projector : "gemma3");
        put_bool(p, "clip.use_gelu", true);
        put_u32(p, "clip.vision.image_size", ps->image_size);
        put_u32(p, "clip.vision.patch_size", P);
        put_u32(p, "clip.vision.embedding_length", E);
        put_u32(p, "clip.vision.feed_forward_length", F);
        put_u32(p, "clip.vision.block_count", ps->n_layer);
        put_u32(p, "clip.vision.attention.head_count", ps->n_head);
        if (!skip(p, "clip.vision.attention.layer_norm_epsilon"))
                mk_gguf_kv_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-6f);
        put_u32(p, "clip.vision.projection_dim", ps->proj_dim);
        put_f32x3(p, "clip.vision.image_mean", 0.5f);
        put_f32x3(p, "clip.vision.image_std", 0.5f);
        if (ps->scale_factor || (p->edit->u32_key && strcmp(p->edit->u32_key, "clip.vision.projector.scale_factor") == 0))
                put_u32(p, "clip.vision.projector.scale_factor", ps->scale_factor);

        add(p, "v.patch_embd.weight", 4, P, P, 3, E, TYPE_F32, INIT_MATRIX, 1.0f / sqrtf(3.0f * P * P));
        vec(p, "v.patch_embd.bias", E, INIT_BIAS);
        add(p, "v.position_embd.weight", 2, E, (int64_t)n_side * n_side, 1, 1, TYPE_F32, INIT_POS, 0.5f);
        for (uint32_t l = 0; l < ps->n_layer; l++) {
                static const char *const attn[] = { "attn_q", "attn_k", "attn_v", "attn_out" };
                for (size_t i = 0; i < ELEMENTSOF(attn); i++) {
                        snprintf(s, sizeof s, "v.blk.%u.%s.weight", l, attn[i]);
                        matrix(p, s, E, E, type);
                        snprintf(s, sizeof s, "v.blk.%u.%s.bias", l, attn[i]);
                        vec(p, s, E, INIT_BIAS);
                }
                snprintf(s, sizeof s, "v.blk.%u.ln1.weight", l);
                vec(p, s, E, INIT_NORM);
                snprintf(s, sizeof s, "v.blk.%u.ln1.bias", l);
                vec(p, s, E, INIT_BIAS);
                snprintf(s, sizeof s, "v.blk.%u.ffn_up.weight", l);
                matrix(p, s, E, F, type);
                snprintf(s, sizeof s, "v.blk.%u.ffn_up.bias", l);
                vec(p, s, F, INIT_BIAS);
                snprintf(s, sizeof s, "v.blk.%u.ffn_down.weight", l);
                matrix(p, s, F, E, type);
                snprintf(s, sizeof s, "v.blk.%u.ffn_down.bias", l);
                vec(p, s, E, INIT_BIAS);
                snprintf(s, sizeof s, "v.blk.%u.ln2.weight", l);
                vec(p, s, E, INIT_NORM);
                snprintf(s, sizeof s, "v.blk.%u.ln2.bias", l);
                vec(p, s, E, INIT_BIAS);
        }
        vec(p, "v.post_ln.weight", E, INIT_NORM);
        vec(p, "v.post_ln.bias", E, INIT_BIAS);
        vec(p, "mm.soft_emb_norm.weight", E, INIT_NORM);
        /* x @ W with W of E rows of proj_dim: ggml ne [proj_dim, E] */
        add(p, "mm.input_projection.weight", 2, ps->proj_dim, E, 1, 1, type == TYPE_F32 ? TYPE_F32 : TYPE_F16,
            INIT_MATRIX, 1.0f / sqrtf((float)E));
        if (p->edit->extra_tensor)
                vec(p, p->edit->extra_tensor, E, INIT_NORM);
}

static int write_tensor(int fd, uint64_t data_start, const plan_tensor *t, uint64_t index, uint64_t seed) {
        size_t row_bytes = mk_row_size(t->type, t->ne[0]);
        int64_t n_rows = t->ne[1] * t->ne[2] * t->ne[3];
        _cleanup_free_ float *x = malloc((size_t)t->ne[0] * sizeof *x);
        _cleanup_free_ uint8_t *row = malloc(row_bytes);
        if (!x || !row)
                return -ENOMEM;
        for (int64_t r = 0; r < n_rows; r++) {
                mk_rng rng;
                mk_rng_init(&rng, seed, index, (uint64_t)r);
                float base = t->init == INIT_NORM ? 1.0f : 0.0f;
                for (int64_t i = 0; i < t->ne[0]; i++)
                        x[i] = base + t->std * mk_rng_normal(&rng);
                mk_quantize_row(t->type, x, row, t->ne[0]);
                int k = mk_pwrite_all(fd, row, row_bytes, data_start + t->offset + (uint64_t)r * row_bytes);
                if (k < 0)
                        return k;
        }
        return 0;
}

const mk_mmproj_preset *mk_mmproj_preset_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(presets); i++)
                if (strcmp(presets[i].name, name) == 0)
                        return &presets[i];
        return NULL;
}

void mk_mmproj_list(FILE *f) {
        for (size_t i = 0; i < ELEMENTSOF(presets); i++)
                fprintf(f, "%-16s image %u patch %u, n_embd %u, n_ff %u, %u layers, %u heads, projection %u: %s\n",
                        presets[i].name, presets[i].image_size, presets[i].patch_size, presets[i].n_embd,
                        presets[i].n_ff, presets[i].n_layer, presets[i].n_head, presets[i].proj_dim, presets[i].what);
}

int mk_mmproj_write(const mk_mmproj_preset *ps, uint32_t type, uint64_t seed, const mk_mmproj_edit *edit,
                    const char *path, char *err, size_t errlen) {
        static const mk_mmproj_edit none = {};
        /* llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7 */
        uint32_t ft = type == TYPE_F32 ? 0 : type == TYPE_F16 ? 1 : type == TYPE_Q8_0 ? 7 : UINT32_MAX;
        if (ft == UINT32_MAX)
                return set_error(err, errlen, -EINVAL, "type %u: F32, F16 or Q8_0 only", type);

        _cleanup_free_ plan *p = calloc(1, sizeof *p);
        if (!p || mk_gguf_new(&p->w) < 0)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        p->edit = edit ? edit : &none;
        p->n_embd = ps->n_embd;
        build(p, ps, type, ft);
        if (p->error < 0) {
                mk_gguf_free(p->w);
                return set_error(err, errlen, p->error, "cannot plan %s", ps->name);
        }

        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0) {
                mk_gguf_free(p->w);
                return set_error(err, errlen, -ENOMEM, "out of memory");
        }
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
                int r = -errno;
                mk_gguf_free(p->w);
                return set_error(err, errlen, r, "cannot create %s: %s", tmp, strerror(-r));
        }
        uint64_t data_start;
        int r = mk_gguf_write_header(p->w, fd, &data_start);
        for (size_t i = 0; r >= 0 && i < p->n; i++)
                r = write_tensor(fd, data_start, &p->t[i], i, seed);
        mk_gguf_free(p->w);
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return set_error(err, errlen, r, "writing %s failed: %s", path, strerror(-r));
        }
        return 0;
}
