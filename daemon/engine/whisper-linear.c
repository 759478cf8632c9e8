/* SPDX-License-Identifier: MIT */
/* Products with Whisper's weight matrices through the engine's matmul
 * (any supported type: F32, F16, Q8_0, Q5_0 for whisper.cpp files), plus
 * the bias:  y[t][o] = sum_i W[o][i] x[t][i] + b[o]. */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "tensor-type.h"
#include "whisper-impl.h"

static void add_bias(const weight *w, int64_t n_tokens, const float *b, float *y) {
        if (b)
                for (int64_t t = 0; t < n_tokens; t++) {
                        float *yr = y + t * w->n_out;
                        for (int64_t o = 0; o < w->n_out; o++)
                                yr[o] += b[o];
                }
}

int whisper_linear(whisper_state *s, const weight *w, const float *x, int64_t n_tokens, const float *b, float *y) {
        int r = matmul(s->mm, w, x, n_tokens, y);
        if (r < 0)
                return r;
        add_bias(w, n_tokens, b, y);
        return 0;
}

/* One token through several weights whose rows matmul's vec path would dot
 * one at a time with vec_dot (no gemv kernel for this width, e.g. tiny's
 * 384): the same dot per row on the same converted activations, so the
 * same results, but all weights' rows in one pool dispatch. */
typedef struct fused_job {
        int n_w;
        const weight *const *ws;
        float *const *ys;
        vec_dot_fn dot;
        const void *act;
        int64_t total; /* rows of all weights */
} fused_job;

static void fused_worker(void *p, int ith, int nth) {
        const fused_job *j = p;
        int64_t r0 = j->total * ith / nth, r1 = j->total * (ith + 1) / nth, base = 0;

        for (int i = 0; i < j->n_w && r0 < r1; i++) {
                const weight *w = j->ws[i];
                int64_t a = MAX(r0, base), e = MIN(r1, base + w->n_out);
                for (int64_t r = a; r < e; r++)
                        j->dot(w->n_in, &j->ys[i][r - base], (const uint8_t *)w->data + (size_t)(r - base) * w->row_bytes,
                               j->act);
                base += w->n_out;
        }
}

static bool fusable(const kernel_set *k, const weight *const *ws, int n_w) {
        for (int i = 0; i < n_w; i++) {
                const weight *w = ws[i];
                if (w->type != ws[0]->type || w->n_in != ws[0]->n_in || w->type >= TYPE_COUNT || !w->data ||
                    !k->vec_dot[w->type])
                        return false;
                /* where matmul would use a gemv kernel, matmul_multi fuses */
                if (k->gemv && gemv_takes(&k->gemv[w->type], w->n_in))
                        return false;
        }
        return true;
}

int whisper_linear_multi(whisper_state *s, const weight *const *ws, int n_w, const float *x, int64_t n_tokens,
                         const float *const *bs, float *const *ys) {
        const kernel_set *k = kernels_best();
        int r;

        if (n_w < 1 || n_w > MATMUL_MULTI_MAX)
                return -EINVAL;
        if (n_tokens == 1 && fusable(k, ws, n_w)) {
                const type_traits *t = type_traits_get(ws[0]->type);
                fused_job j = { .n_w = n_w, .ws = ws, .ys = ys, .dot = k->vec_dot[ws[0]->type], .act = x };
                _cleanup_free_ void *act = NULL;

                if (t && t->vec_dot_type != TYPE_F32) {
                        size_t row;
                        if ((r = type_row_size(t->vec_dot_type, ws[0]->n_in, &row)) < 0)
                                return r;
                        act = malloc(row);
                        if (!act)
                                return -ENOMEM;
                        k->from_float[t->vec_dot_type](x, act, ws[0]->n_in);
                        j.act = act;
                }
                if (t) {
                        for (int i = 0; i < n_w; i++)
                                j.total += ws[i]->n_out;
                        threadpool_run(matmul_ctx_pool(s->mm), fused_worker, &j);
                        for (int i = 0; i < n_w; i++)
                                add_bias(ws[i], 1, bs[i], ys[i]);
                        return 0;
                }
        }
        if ((r = matmul_multi(s->mm, ws, n_w, x, n_tokens, ys)) < 0)
                return r;
        for (int i = 0; i < n_w; i++)
                add_bias(ws[i], n_tokens, bs[i], ys[i]);
        return 0;
}

void whisper_weight_row(const weight *w, int64_t r, float *out) {
        (void)weight_get_row(w, r, out);
}
