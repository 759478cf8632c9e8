/* SPDX-License-Identifier: MIT */
/* Gemma 3's multimodal projector (llama.cpp PROJECTOR_TYPE_GEMMA3,
 * specs/vision-siglip.md §6), from the encoder output x [side^2][E]:
 *
 *   p[oy * s + ox] = mean of the k x k block of x at (oy k .. , ox k ..)   s = side / k
 *   p = p / sqrt(mean(p^2) + eps) * soft_emb_norm                        (the file stores 1 + w)
 *   out = p W,  W = mm.input_projection: E rows of n_embd_out           (ggml ne [n_embd_out, E])
 *
 * k is clip.vision.projector.scale_factor, 4 when absent (every Gemma 3
 * size): 64 x 64 patches give 16 x 16 = 256 soft tokens. */
#include <cblas.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "tensor-type.h"
#include "vision-impl.h"

static int gemma3_load(vision_model *m, char *err, size_t errlen) {
        uint32_t k = 4;
        int r = gguf_get_u32(m->gguf, "clip.vision.projector.scale_factor", &k);
        if (r < 0 && r != -ENOENT)
                return set_error(err, errlen, -EBADMSG, "mmproj: clip.vision.projector.scale_factor is not an unsigned integer");
        if (k == 0 || m->n_side % k != 0)
                return set_error(err, errlen, -EBADMSG,
                                 "mmproj: a pool of %" PRIu32 " does not divide the %" PRIu32 " x %" PRIu32 " patch grid",
                                 k, m->n_side, m->n_side);
        m->merge = k;
        m->n_tokens = (int32_t)((m->n_side / k) * (m->n_side / k));

        const gguf_tensor *t = gguf_find_tensor(m->gguf, "mm.input_projection.weight");
        if (t && t->type != TYPE_F32 && t->type != TYPE_F16 && t->type != TYPE_BF16)
                return set_error(err, errlen, -EOPNOTSUPP, "mmproj: mm.input_projection.weight in %s (F32, F16 or BF16 expected)",
                                 type_name(t->type));
        m->in_proj_type = t ? t->type : TYPE_F32;
        if ((r = vision_load_vec(m, "mm.soft_emb_norm.weight", m->n_embd, true, &m->soft_norm_w, err, errlen)) < 0 ||
            (r = vision_load_f32_matrix(m, "mm.input_projection.weight", m->n_embd_out, m->n_embd, &m->in_proj, err,
                                        errlen)) < 0)
                return r;
        return 0;
}

typedef struct proj_job {
        const float *p, *w;
        float *out;
        int64_t n_tok, E, n_out;
} proj_job;

/* out[:, cols of this thread] = p W[:, cols] */
static void proj_worker(void *ctx, int ith, int nth) {
        const proj_job *j = ctx;
        int64_t per = (j->n_out / 16 + nth) / nth * 16, lo = MIN(j->n_out, per * ith),
                hi = MIN(j->n_out, per * (ith + 1));
        if (hi > lo)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)j->n_tok, (int)(hi - lo), (int)j->E, 1.0f,
                            j->p, (int)j->E, j->w + lo, (int)j->n_out, 0.0f, j->out + lo, (int)j->n_out);
}

static int gemma3_project(vision_ctx *c, float *x, float *out) {
        const vision_model *m = c->m;
        const int64_t E = m->n_embd, side = m->n_side, k = m->merge, s = side / k, n_tok = s * s;
        float *p = c->cur; /* n_tok <= T rows of E */

        /* average pool */
        memset(p, 0, (size_t)(n_tok * E) * sizeof(float));
        for (int64_t y = 0; y < side; y++)
                for (int64_t xx = 0; xx < side; xx++) {
                        float *dst = p + ((y / k) * s + xx / k) * E;
                        const float *src = x + (y * side + xx) * E;
                        for (int64_t e = 0; e < E; e++)
                                dst[e] += src[e];
                }
        const float inv = 1.0f / (float)(k * k);
        for (int64_t i = 0; i < n_tok * E; i++)
                p[i] *= inv;

        /* soft-embedding RMSNorm (sum of squares in double, as ggml) */
        for (int64_t t = 0; t < n_tok; t++) {
                float *row = p + t * E;
                double sum = 0;
                for (int64_t e = 0; e < E; e++)
                        sum += (double)row[e] * row[e];
                float scale = 1.0f / sqrtf((float)(sum / E) + m->eps);
                for (int64_t e = 0; e < E; e++)
                        row[e] = row[e] * scale * m->soft_norm_w[e];
        }

        /* F16 projection: ggml rounds the activations to F16 first */
        if (m->in_proj_type != TYPE_F32) {
                const kernel_set *ks = kernels_best();
                uint32_t dt = m->in_proj_type;
                uint16_t buf[1024];
                for (int64_t i = 0; i < n_tok * E; i += 1024) {
                        int64_t len = MIN((int64_t)1024, n_tok * E - i);
                        ks->from_float[dt](p + i, buf, len);
                        ks->to_float[dt](buf, p + i, len);
                }
        }

        proj_job j = { .p = p, .w = m->in_proj, .out = out, .n_tok = n_tok, .E = E, .n_out = m->n_embd_out };
        openblas_set_num_threads(1);
        threadpool_run(matmul_ctx_pool(c->mm), proj_worker, &j);
        return 0;
}

const vision_projector vision_projector_gemma3 = {
        .name = "gemma3",
        .load = gemma3_load,
        .project = gemma3_project,
};
