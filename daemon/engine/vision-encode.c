/* SPDX-License-Identifier: MIT */
/* The SigLIP vision transformer (specs/vision-siglip.md §5), activations
 * token-major ([patch][channel]), T = (image / patch)^2 tokens of width E:
 *
 *   x  = conv(img, patch_embd, kernel = stride = P) + b      [T][E], t = py * side + px
 *   x += position_embd
 *   L times (pre-LN ViT block):
 *       x += W_o MHA(LN1(x)) + b_o        full bidirectional attention, H heads of E/H
 *       x += W_down act(W_up LN2(x) + b_up) + b_down
 *   x  = LN_post(x)
 *   out = projector(x)                                          (vision-gemma3.c)
 *
 * The convolution is one product: every patch unrolled into a row of
 * 3 P P values ([c][ky][kx], the order of the kernel's ne) times the kernel
 * read as E rows of 3 P P.  Attention runs per (head, block of 256 query
 * rows): S = Q K^T / sqrt(d) with sgemm, softmax, O = S V with sgemm, so a
 * thread's scores take 256 x T floats instead of T x T (blocks much smaller
 * than that spend their time repacking K and V for every block). */
#include <cblas.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "vision-impl.h"

void openblas_set_num_threads(int n);

/* ---- context ---- */

void vision_ctx_free(vision_ctx *c) {
        if (!c)
                return;
        free(c->col);
        free(c->x);
        free(c->cur);
        free(c->q);
        free(c->k);
        free(c->v);
        free(c->o);
        free(c->ff);
        free(c->scores);
        free(c->wbuf);
        matmul_ctx_free(c->mm);
        free(c);
}

static float *alloc_floats(int64_t a, int64_t b) {
        size_t n;
        if (a <= 0 || b <= 0 || MUL_OVERFLOW((size_t)a, (size_t)b, &n) || MUL_OVERFLOW(n, sizeof(float), &n))
                return NULL;
        return malloc(n);
}

int vision_ctx_new(const vision_model *m, int n_threads, vision_ctx **ret) {
        const int64_t T = (int64_t)m->n_side * m->n_side, E = m->n_embd, F = m->n_ff,
                      K = 3 * (int64_t)m->patch_size * m->patch_size;
        if (n_threads <= 0)
                n_threads = (int)MAX(1L, sysconf(_SC_NPROCESSORS_ONLN));
        n_threads = MIN(n_threads, 64);

        vision_ctx *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->m = m;
        c->n_threads = n_threads;
        int r = matmul_ctx_new(n_threads, &c->mm);
        if (r < 0) {
                free(c);
                return r;
        }
        c->col = alloc_floats(T, K);
        c->x = alloc_floats(T, E);
        c->cur = alloc_floats(T, E);
        c->q = alloc_floats(T, E);
        c->k = alloc_floats(T, E);
        c->v = alloc_floats(T, E);
        c->o = alloc_floats(T, E);
        c->ff = alloc_floats(T, F);
        c->scores = alloc_floats((int64_t)n_threads * VISION_ATTN_BLOCK, T);
        /* every weight shape of the encoder: patch (K -> E), attention (E -> E), up (E -> F), down (F -> E) */
        c->wbuf_floats = MAX(MAX(vision_wbuf_floats(K, E, n_threads), vision_wbuf_floats(E, E, n_threads)),
                             MAX(vision_wbuf_floats(E, F, n_threads), vision_wbuf_floats(F, E, n_threads)));
        c->wbuf = alloc_floats(n_threads, (int64_t)c->wbuf_floats);
        if (!c->col || !c->x || !c->cur || !c->q || !c->k || !c->v || !c->o || !c->ff || !c->scores || !c->wbuf) {
                vision_ctx_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

void vision_ctx_set_abort(vision_ctx *c, vision_abort_fn fn, void *userdata) {
        c->abort_cb = fn;
        c->abort_userdata = userdata;
}

/* ---- patch embedding ---- */

/* col[py * side + px][(c * P + ky) * P + kx] = img[c][py * P + ky][px * P + kx] */
static void im2col(const vision_model *m, const float *img, float *col) {
        const int64_t P = m->patch_size, S = m->image_size, side = m->n_side, K = 3 * P * P;
        for (int64_t py = 0; py < side; py++)
                for (int64_t px = 0; px < side; px++) {
                        float *row = col + (py * side + px) * K;
                        for (int64_t ch = 0; ch < 3; ch++)
                                for (int64_t ky = 0; ky < P; ky++)
                                        memcpy(row + (ch * P + ky) * P, img + (ch * S + py * P + ky) * S + px * P,
                                               (size_t)P * sizeof(float));
                }
}

/* ---- attention ---- */

typedef struct attn_job {
        const float *q, *k, *v;
        float *out, *scores;
        int64_t T, E, D, H, n_blocks;
        float scale;
} attn_job;

static void attn_worker(void *ctx, int ith, int nth) {
        const attn_job *j = ctx;
        float *sc = j->scores + (size_t)ith * VISION_ATTN_BLOCK * j->T;

        for (int64_t job = ith; job < j->H * j->n_blocks; job += nth) {
                const int64_t h = job / j->n_blocks, t0 = (job % j->n_blocks) * VISION_ATTN_BLOCK;
                const int64_t rows = MIN((int64_t)VISION_ATTN_BLOCK, j->T - t0), off = h * j->D;
                /* S[rows][T] = scale * Q[t0..][h] . K[:][h]^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)j->T, (int)j->D, j->scale,
                            j->q + t0 * j->E + off, (int)j->E, j->k + off, (int)j->E, 0.0f, sc, (int)j->T);
                vision_softmax_rows(sc, rows, j->T);
                /* O[t0..][h] = S V[:][h] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)j->D, (int)j->T, 1.0f, sc,
                            (int)j->T, j->v + off, (int)j->E, 0.0f, j->out + t0 * j->E + off, (int)j->E);
        }
}

static void attention(vision_ctx *c) {
        const vision_model *m = c->m;
        const int64_t T = (int64_t)m->n_side * m->n_side, D = m->n_embd / m->n_head;
        attn_job j = { .q = c->q, .k = c->k, .v = c->v, .out = c->o, .scores = c->scores, .T = T, .E = m->n_embd,
                       .D = D, .H = m->n_head, .n_blocks = (T + VISION_ATTN_BLOCK - 1) / VISION_ATTN_BLOCK,
                       .scale = 1.0f / sqrtf((float)D) };
        openblas_set_num_threads(1); /* our pool splits the work; each sgemm runs alone */
        threadpool_run(matmul_ctx_pool(c->mm), attn_worker, &j);
}

/* ---- the forward pass ---- */

static void add_into(float *x, const float *y, int64_t n) {
        for (int64_t i = 0; i < n; i++)
                x[i] += y[i];
}

int vision_encode(vision_ctx *c, const float *pixels, uint32_t width, uint32_t height, float *out) {
        const vision_model *m = c->m;
        const int64_t T = (int64_t)m->n_side * m->n_side, E = m->n_embd, F = m->n_ff;
        threadpool *tp = matmul_ctx_pool(c->mm);
        int r;

        if (!pixels || !out || width != m->image_size || height != m->image_size)
                return -EINVAL;

        im2col(m, pixels, c->col);
        if ((r = vision_linear(c, &m->patch, c->col, T, m->patch_b, c->x)) < 0)
                return r;
        add_into(c->x, m->pos, T * E);

        for (int l = 0; l < m->n_layer; l++) {
                const vision_block *b = &m->blocks[l];

                if (c->abort_cb && c->abort_cb(c->abort_userdata))
                        return -ECANCELED;

                vision_layer_norm(tp, c->cur, c->x, T, E, b->ln1_w, b->ln1_b, m->eps);
                if ((r = vision_linear(c, &b->q, c->cur, T, b->q_b, c->q)) < 0 ||
                    (r = vision_linear(c, &b->k, c->cur, T, b->k_b, c->k)) < 0 ||
                    (r = vision_linear(c, &b->v, c->cur, T, b->v_b, c->v)) < 0)
                        return r;
                attention(c);
                if ((r = vision_linear(c, &b->o, c->o, T, b->o_b, c->cur)) < 0)
                        return r;
                add_into(c->x, c->cur, T * E);

                vision_layer_norm(tp, c->cur, c->x, T, E, b->ln2_w, b->ln2_b, m->eps);
                if ((r = vision_linear(c, &b->up, c->cur, T, b->up_b, c->ff)) < 0)
                        return r;
                vision_ffn_act(tp, m->ffn_op, c->ff, T * F);
                if ((r = vision_linear(c, &b->down, c->ff, T, b->down_b, c->cur)) < 0)
                        return r;
                add_into(c->x, c->cur, T * E);
        }
        if (m->post_w)
                vision_layer_norm(tp, c->x, c->x, T, E, m->post_w, m->post_b, m->eps);

        if (c->abort_cb && c->abort_cb(c->abort_userdata))
                return -ECANCELED;
        return m->proj->project(c, c->x, out);
}
