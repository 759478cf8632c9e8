/* SPDX-License-Identifier: MIT */
/* Private to vision*.c: the model and context structures, the projector
 * table and the element-wise operations the files share. */
#pragma once

#include "gguf.h"
#include "macro.h"
#include "matmul.h"
#include "vision.h"
#include "weights-arena.h"

typedef enum vision_ffn_op {
        VISION_FFN_GELU,       /* clip.use_gelu: tanh form (ggml's table) */
        VISION_FFN_SILU,       /* clip.use_silu */
        VISION_FFN_GELU_QUICK, /* neither key: x * sigmoid(1.702 x) */
} vision_ffn_op;

/* One pre-LayerNorm ViT block.  Biases may be NULL (llama.cpp takes them as
 * optional); vectors are F32 (pointers into the mapping or converted copies
 * owned by the model). */
typedef struct vision_block {
        const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
        weight q, k, v, o, up, down;
        const float *q_b, *k_b, *v_b, *o_b, *up_b, *down_b;
} vision_block;

typedef struct vision_projector vision_projector;

struct vision_model {
        gguf_file *gguf;
        const vision_projector *proj;

        uint32_t image_size, patch_size, n_side; /* n_side = image_size / patch_size */
        int32_t n_embd, n_ff, n_layer, n_head, n_embd_out;
        float eps;
        float mean[3], std[3];
        vision_ffn_op ffn_op;
        uint32_t merge;                          /* gemma3: pool kernel per side */
        int32_t n_tokens;                        /* output tokens per image */
        uint64_t n_params;

        weight patch;                            /* E rows of 3 * P * P: [c][ky][kx] */
        const float *patch_b;
        const float *pos;                        /* [n_side^2][E] */
        vision_block *blocks;
        const float *post_w, *post_b;            /* may be NULL */

        /* gemma3 projector */
        const float *soft_norm_w;                /* [E], already 1 + w */
        const float *in_proj;                    /* [E][n_embd_out], F32 (converted at load when F16) */
        uint32_t in_proj_type;                   /* its type in the file (F16: activations rounded) */

        /* converted copies of tensors stored in another type than F32 */
        weights_source source; /* the file's identity, for the shared weights arena */
        float **owned;
        size_t n_owned;
};

struct vision_ctx {
        const vision_model *m;
        matmul_ctx *mm;
        vision_abort_fn abort_cb;
        void *abort_userdata;
        int n_threads;

        /* one image: T = n_side^2 tokens */
        float *col;      /* [T][3 P P] */
        float *x, *cur;  /* [T][E] residual stream, normed input */
        float *q, *k, *v, *o;
        float *ff;       /* [T][F] */
        float *scores;   /* attention: per thread [VISION_ATTN_BLOCK][T] */
        float *wbuf;     /* per thread: its rows of a weight, dequantized */
        size_t wbuf_floats;
};

#define VISION_ATTN_BLOCK 256 /* query rows per attention job */

/* ---- projectors (vision-gemma3.c) ----
 * A projector type is one const struct: its extra tensors, how many tokens
 * an image gives, and the step from the encoder output to the embeddings. */
struct vision_projector {
        const char *name; /* clip.projector_type */
        int (*load)(vision_model *m, char *err, size_t errlen);
        /* x: [T][E] encoder output (may be overwritten); out: [n_tokens][n_embd_out] */
        int (*project)(vision_ctx *c, float *x, float *out);
};

extern const vision_projector vision_projector_gemma3;

/* ---- vision-load.c, for the projectors ----
 * A 1-D F32 view of tensor name with n elements (converted from F16/BF16
 * into a copy the model owns); NULL with *r = 0 when absent and optional. */
int vision_load_vec(vision_model *m, const char *name, int64_t n, bool required, const float **ret, char *err,
                    size_t errlen);
/* The tensor's data as n_rows x n_cols F32 (row-major, ne[0] = n_cols). */
int vision_load_f32_matrix(vision_model *m, const char *name, int64_t n_cols, int64_t n_rows, const float **ret,
                           char *err, size_t errlen);

/* ---- vision-ops.c ---- */
/* y = (x - mean) / sqrt(var + eps) * w + b per row (w, b may be NULL), sums in double as ggml_norm. */
void vision_layer_norm(threadpool *tp, float *y, const float *x, int64_t n_rows, int64_t n, const float *w,
                       const float *b, float eps);
/* Softmax of every row of n (scale applied first), max-subtracted, sums in double. */
void vision_softmax_rows(float *x, int64_t n_rows, int64_t n);
void vision_ffn_act(threadpool *tp, vision_ffn_op op, float *x, int64_t n);
/* y[t][i] += b[i] */
void vision_add_bias(float *y, const float *b, int64_t n_rows, int64_t n);
/* Floats of dequantized rows one thread holds for a weight of n_out x n_in. */
size_t vision_wbuf_floats(int64_t n_in, int64_t n_out, int nth);
/* y = x W^T (+ b), activations rounded to W's dot type as ggml does: x is
 * rounded in place (F16/BF16 weights), so it must be scratch. */
int vision_linear(vision_ctx *c, const weight *w, float *x, int64_t n_tokens, const float *b, float *y);
