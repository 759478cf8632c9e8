/* SPDX-License-Identifier: MIT */
#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "kernels.h"
#include "macro.h"
#include "model-ops.h"

/* Run fn on the pool when there is more than one row of work, else here. */
static void run_rows(threadpool *tp, threadpool_fn fn, void *ctx, int64_t n_rows) {
        if (tp && n_rows > 1 && threadpool_size(tp) > 1)
                threadpool_run(tp, fn, ctx);
        else
                fn(ctx, 0, 1);
}

/* Rows [*lo, *hi) of n for thread ith of nth. */
static void split(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
        int64_t per = (n + nth - 1) / nth;
        *lo = MIN(n, per * ith);
        *hi = MIN(n, *lo + per);
}

void ops_float_share(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
        split((n + 15) / 16, ith, nth, lo, hi);
        *lo = MIN(n, *lo * 16);
        *hi = MIN(n, *hi * 16);
}

/* ======================================================================
 * RMSNorm: y = x * 1/sqrt(sum(x^2)/n + eps), then y *= w.  As ggml: the sum
 * in double, the two multiplications rounded separately. */

/* Partial sums (kernels.h: sum_squares): one chain of dependent double
 * additions took 4 cycles an element, about 3 us for a 2048-wide row, and
 * Gemma 3n normalizes a dozen single rows per layer and token.  In double
 * the order changes the float result only in a rare last-bit tie. */
double ops_sum_squares(const float *x, int64_t n) {
        return kernels_best()->sum_squares(x, n);
}

static void rmsnorm_row(float *out, const float *x, const float *w, int64_t n, float eps) {
        double sum = ops_sum_squares(x, n);
        float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
        if (w)
                for (int64_t i = 0; i < n; i++)
                        out[i] = (x[i] * scale) * w[i];
        else
                for (int64_t i = 0; i < n; i++)
                        out[i] = x[i] * scale;
}

typedef struct norm_job {
        float *x;
        const float *y;
        float *out;
        const float *w;
        int64_t n_rows, n;
        float eps;
} norm_job;

_vector_clones_ static void norm_worker(void *ctx, int ith, int nth) {
        norm_job *j = ctx;
        int64_t lo, hi;

        split(j->n_rows, ith, nth, &lo, &hi);
        /* n as a local: the stores to x could otherwise change j->n, and the
         * loop would neither keep it in a register nor be vectorized */
        const int64_t n = j->n;
        for (int64_t r = lo; r < hi; r++) {
                float *x = j->x + r * n;
                if (j->y) {
                        const float *y = j->y + r * n;
                        for (int64_t i = 0; i < n; i++)
                                x[i] += y[i];
                }
                if (j->out)
                        rmsnorm_row(j->out + r * n, x, j->w, n, j->eps);
        }
}

/* A token's per-head norms (Gemma: 8 query heads of 256) are less work
 * than a round trip through the pool: on the caller, E2B 1.004-1.005
 * per token. */
#define NORM_PARALLEL_MIN 16384
static void run_norm(threadpool *tp, norm_job *j) {
        run_rows(tp, norm_worker, j, j->n_rows * j->n >= NORM_PARALLEL_MIN ? j->n_rows : 1);
}

void ops_rmsnorm(threadpool *tp, float *out, const float *x, const float *w, int64_t n_rows, int64_t n, float eps) {
        norm_job j = { .x = (float *)x, .out = out, .w = w, .n_rows = n_rows, .n = n, .eps = eps };
        run_norm(tp, &j);
}

void ops_add_rmsnorm(threadpool *tp, float *x, const float *y, float *out, const float *w, int64_t n_rows,
                     int64_t n, float eps) {
        norm_job j = { .x = x, .y = y, .out = out, .w = w, .n_rows = n_rows, .n = n, .eps = eps };
        run_norm(tp, &j);
}

/* ======================================================================
 * RoPE.  theta_i = pos * base^(-2i/n_rot), computed as ggml does it: start
 * from pos and multiply by base^(-2/n_rot) once per pair, so the angles
 * (and the logits) agree with llama.cpp to the last bits that matter. */

#define ROPE_MAX_PAIRS 512

typedef struct rope_job {
        const rope_params *rp;
        float *q, *k;
        int32_t n_head, n_head_kv;
        size_t q_ld, k_ld;
        int32_t pos0, n_rows;
} rope_job;

_vector_clones_ static void rope_heads(const rope_params *rp, const float *cs, float *x, int32_t n_heads) {
        int32_t half = rp->n_rot / 2;

        for (int32_t h = 0; h < n_heads; h++) {
                float *v = x + (size_t)h * rp->head_dim;
                if (rp->mode == ROPE_NORM)
                        for (int32_t i = 0; i < half; i++) {
                                float c = cs[2 * i], s = cs[2 * i + 1];
                                float x0 = v[2 * i], x1 = v[2 * i + 1];
                                v[2 * i] = x0 * c - x1 * s;
                                v[2 * i + 1] = x0 * s + x1 * c;
                        }
                else
                        for (int32_t i = 0; i < half; i++) {
                                float c = cs[2 * i], s = cs[2 * i + 1];
                                float x0 = v[i], x1 = v[i + half];
                                v[i] = x0 * c - x1 * s;
                                v[i + half] = x0 * s + x1 * c;
                        }
        }
}

static void rope_worker(void *ctx, int ith, int nth) {
        rope_job *j = ctx;
        const rope_params *rp = j->rp;
        float theta_scale = powf(rp->freq_base, -2.0f / (float)rp->n_rot);
        float cs[2 * ROPE_MAX_PAIRS];
        int64_t lo, hi;

        split(j->n_rows, ith, nth, &lo, &hi);
        for (int64_t t = lo; t < hi; t++) {
                float theta = (float)(j->pos0 + t);
                for (int32_t i = 0; i < rp->n_rot / 2; i++) {
                        float th = theta * rp->freq_scale;
                        if (rp->factors)
                                th = theta / rp->factors[i] * rp->freq_scale;
                        cs[2 * i] = cosf(th);
                        cs[2 * i + 1] = sinf(th);
                        theta *= theta_scale;
                }
                if (j->q)
                        rope_heads(rp, cs, j->q + t * j->q_ld, j->n_head);
                if (j->k)
                        rope_heads(rp, cs, j->k + t * j->k_ld, j->n_head_kv);
        }
}

void ops_rope(threadpool *tp, const rope_params *rp, float *q, int32_t n_head, size_t q_ld, float *k,
              int32_t n_head_kv, size_t k_ld, int32_t pos0, int32_t n_rows) {
        rope_job j = {
                .rp = rp, .q = q, .k = k, .n_head = n_head, .n_head_kv = n_head_kv,
                .q_ld = q_ld, .k_ld = k_ld, .pos0 = pos0, .n_rows = n_rows,
        };
        /* model loaders check n_rot <= head_dim and n_rot / 2 <= ROPE_MAX_PAIRS */
        if (rp->n_rot / 2 > ROPE_MAX_PAIRS || rp->n_rot > rp->head_dim)
                return;
        run_rows(tp, rope_worker, &j, n_rows);
}

/* ======================================================================
 * SwiGLU: silu(g) * u with silu(g) = g / (1 + e^-g). */

typedef struct act_job {
        float *g;
        const float *u;
        int64_t n;
} act_job;

static void swiglu_worker(void *ctx, int ith, int nth) {
        act_job *j = ctx;
        int64_t lo, hi;

        ops_float_share(j->n, ith, nth, &lo, &hi);
        /* exp on the kernel set's vector code, 256 values at a time */
        const kernel_set *k = kernels_best();
        float e[256];
        for (int64_t i0 = lo; i0 < hi; i0 += 256) {
                int64_t m = MIN(256, hi - i0);
                float *g = j->g + i0;
                for (int64_t i = 0; i < m; i++)
                        e[i] = -g[i];
                k->exp_f32(e, e, m);
                for (int64_t i = 0; i < m; i++)
                        g[i] = g[i] / (1.0f + e[i]) * j->u[i0 + i];
        }
}

void ops_swiglu(threadpool *tp, float *gate, const float *up, int64_t n) {
        act_job j = { .g = gate, .u = up, .n = n };
        /* one token's worth (even 8192 wide) is cheaper here than a pool round trip */
        run_rows(tp, swiglu_worker, &j, n > 16384 ? 2 : 1);
}

/* ======================================================================
 * Attention.  Work items are (KV head, block of query rows): scores
 * S = scale * Q K^T for the block against the keys it can see (one sgemm),
 * causal mask, row softmax (sum in double, like ggml), then O = S V (one
 * sgemm).  For a single token the n_rep query heads that share a KV head
 * are the rows of the block, so each KV head is read once.  Items are
 * handed out through an atomic counter: later blocks see more keys. */

#define ATT_QBLOCK 64

size_t ops_attention_scratch_floats(int32_t n_ctx, int32_t n_head_kv, int32_t n_head) {
        int32_t n_rep = n_head_kv > 0 ? n_head / n_head_kv : 1;
        return (size_t)MAX(ATT_QBLOCK, n_rep) * (size_t)n_ctx;
}

typedef struct attn_job {
        const attn_params *ap;
        const kernel_set *ks; /* the one-token products */
        const float *q;
        size_t q_ld;
        int32_t pos0, n;
        float *out;
        size_t out_ld;
        float *scratch;
        size_t scores_per_thread, scratch_per_thread;
        int32_t n_blocks;
        int64_t n_items;
        _Atomic int64_t next;
} attn_job;

/* Softmax of rows whose query positions are qpos0 + r / rows_per_pos,
 * over keys [k0, k0 + nk); a row sees keys up to its own position, or up
 * to kmax when that is larger (a bidirectional block). */
_vector_clones_ static void masked_softmax(float *s, int32_t n_rows, int32_t rows_per_pos, int32_t nk, int32_t k0,
                                           int32_t qpos0, int32_t window, int32_t kmax) {
        for (int32_t r = 0; r < n_rows; r++) {
                float *row = s + (size_t)r * nk;
                int32_t qpos = qpos0 + r / rows_per_pos;
                /* visible keys: [lo, hi) in row coordinates */
                int32_t hi = MIN(nk, MAX(qpos, kmax) - k0 + 1);
                int32_t lo = window > 0 ? MAX(0, qpos - window + 1 - k0) : 0;
                float max = -INFINITY;
                for (int32_t j = lo; j < hi; j++)
                        max = MAX(max, row[j]);
                double sum = 0.0;
                for (int32_t j = lo; j < hi; j++) {
                        float e = expf(row[j] - max);
                        row[j] = e;
                        sum += (double)e;
                }
                float inv = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
                for (int32_t j = 0; j < lo; j++)
                        row[j] = 0.0f;
                for (int32_t j = lo; j < hi; j++)
                        row[j] *= inv;
                for (int32_t j = MAX(hi, 0); j < nk; j++)
                        row[j] = 0.0f;
        }
}

/* The keys block b of the job's rows sees: [*k0, *k0 + return value).  One
 * token (n == 1) is block 0.  A bidirectional block: every row sees up to
 * the block's last position. */
static int32_t block_keys(const attn_job *j, int32_t b, int32_t *k0) {
        const attn_params *ap = j->ap;
        int32_t t0 = b * ATT_QBLOCK, qpos0 = j->pos0 + t0, qlast = qpos0 + MIN(ATT_QBLOCK, j->n - t0) - 1;
        int32_t kmax = ap->bidirectional ? j->pos0 + j->n - 1 : -1;

        *k0 = ap->window > 0 ? MAX(0, qpos0 - ap->window + 1) : 0;
        return MAX(qlast, kmax) + 1 - *k0;
}

/* Value rows the scores may bring into L2 for the mix: a quarter of it. */
#define ATT_V_NEXT_BYTES (256 * 1024)

static void attn_item(attn_job *j, int64_t item, float *s, float *gather) {
        const attn_params *ap = j->ap;
        int32_t hd = ap->head_dim, n_rep = ap->n_head / ap->n_head_kv;

        if (j->n == 1) {
                /* one token: item = KV head g, rows = its n_rep query heads */
                int32_t g = (int32_t)item, pos = j->pos0, k0, nk = block_keys(j, 0, &k0);
                const float *K = kv_cache_rows(ap->kv, ap->il, g, false, k0, nk, gather);
                const float *V = kv_cache_rows(ap->kv, ap->il, g, true, k0, nk, gather + (size_t)nk * hd);
                const float *Q = j->q + (size_t)g * n_rep * hd;
                float *O = j->out + (size_t)g * n_rep * hd;

                bool fits = (size_t)nk * (size_t)hd * sizeof(float) <= ATT_V_NEXT_BYTES;
                j->ks->attn_scores(Q, n_rep, K, nk, hd, ap->scale, fits ? V : NULL, s);
                masked_softmax(s, n_rep, n_rep, nk, k0, pos, ap->window, -1);
                j->ks->attn_mix(s, n_rep, V, nk, hd, O);
                return;
        }

        /* several tokens: item = (query head h, block b of rows) */
        int32_t h = (int32_t)(item / j->n_blocks), b = (int32_t)(item % j->n_blocks);
        int32_t t0 = b * ATT_QBLOCK, m = MIN(ATT_QBLOCK, j->n - t0);
        int32_t qpos0 = j->pos0 + t0, k0, nk = block_keys(j, b, &k0);
        int32_t kmax = ap->bidirectional ? j->pos0 + j->n - 1 : -1;
        const float *K = kv_cache_rows(ap->kv, ap->il, h / n_rep, false, k0, nk, gather);
        const float *V = kv_cache_rows(ap->kv, ap->il, h / n_rep, true, k0, nk, gather + (size_t)nk * hd);
        const float *Q = j->q + (size_t)t0 * j->q_ld + (size_t)h * hd;
        float *O = j->out + (size_t)t0 * j->out_ld + (size_t)h * hd;

        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, hd, ap->scale, Q, (int)j->q_ld, K, hd, 0.0f, s,
                    nk);
        masked_softmax(s, m, 1, nk, k0, qpos0, ap->window, kmax);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, nk, 1.0f, s, nk, V, hd, 0.0f, O,
                    (int)j->out_ld);
}

/* Bytes of keys and values the job's items read from the cache: one token
 * each KV head's keys once, several each query head's per block. */
static uint64_t attn_bytes_read(const attn_job *j) {
        const attn_params *ap = j->ap;
        uint64_t row = (uint64_t)ap->head_dim * 2 * sizeof(float), rows = 0;
        int32_t k0;

        if (j->n == 1)
                return (uint64_t)ap->n_head_kv * (uint64_t)block_keys(j, 0, &k0) * row;
        for (int32_t b = 0; b < j->n_blocks; b++)
                rows += (uint64_t)block_keys(j, b, &k0);
        return (uint64_t)ap->n_head * rows * row;
}

static void attn_worker(void *ctx, int ith, int nth) {
        attn_job *j = ctx;
        float *s = j->scratch + (size_t)ith * j->scratch_per_thread;
        /* after the scores: room for a wrapped ring range of keys and values */
        float *gather = s + j->scores_per_thread;

        for (;;) {
                int64_t item = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
                if (item >= j->n_items)
                        break;
                attn_item(j, item, s, gather);
        }
}

uint64_t ops_attention(threadpool *tp, const attn_params *ap, const float *q, size_t q_ld, int32_t pos0,
                       int32_t n, float *out, size_t out_ld, float *scratch) {
        attn_job j = {
                .ap = ap, .q = q, .q_ld = q_ld, .pos0 = pos0, .n = n, .out = out, .out_ld = out_ld,
                .scratch = scratch, .ks = kernels_best(),
                .scores_per_thread = ops_attention_scratch_floats(ap->kv->n_ctx, ap->n_head_kv, ap->n_head),
        };
        j.scratch_per_thread = j.scores_per_thread + kv_cache_gather_floats(ap->kv);

        if (n == 1)
                j.n_items = ap->n_head_kv;
        else {
                j.n_blocks = (n + ATT_QBLOCK - 1) / ATT_QBLOCK;
                j.n_items = (int64_t)ap->n_head * j.n_blocks;
        }
        atomic_init(&j.next, 0);
        /* One token over a short context: a few microseconds of work, less
         * than waking the pool costs. */
        bool small = n == 1 && (int64_t)(pos0 + 1) * ap->n_head_kv * ap->head_dim < 16384;
        if (tp && threadpool_size(tp) > 1 && j.n_items > 1 && !small)
                threadpool_run_dynamic(tp, attn_worker, &j);
        else
                attn_worker(&j, 0, 1);
        return attn_bytes_read(&j);
}

/* ======================================================================
 * One layer's attention step, for one sequence or a batch of them. */

void ops_attend(threadpool *tp, const attend_params *p, kv_cache *const *kv, const int32_t *pos, int32_t n_seq,
                float *q, float *k, const float *v, int32_t n, float *att, float *scratch) {
        size_t QD = (size_t)p->n_head * (size_t)p->head_dim, KD = (size_t)p->n_head_kv * (size_t)p->head_dim;
        bool batch = n_seq > 1;
        int32_t rows = batch ? 1 : n;

        for (int32_t i = 0; i < n_seq; i++) {
                size_t row = batch ? (size_t)i : 0;
                float *qi = q + row * QD, *ki = k ? k + row * KD : NULL;

                ops_rope(tp, p->rope, qi, p->n_head, QD, ki, ki ? p->n_head_kv : 0, KD, pos[i], rows);
                if (p->q_scale != 1.0f)
                        for (size_t j = 0; j < (size_t)rows * QD; j++)
                                qi[j] *= p->q_scale;
                if (ki)
                        kv_cache_store(kv[i], p->il, pos[i], rows, ki, v + row * KD, KD);
                if (!att)
                        continue;

                attn_params ap = {
                        .kv = kv[i], .il = p->kv_il, .n_head = p->n_head, .n_head_kv = p->n_head_kv,
                        .head_dim = p->head_dim, .scale = p->scale, .window = p->window,
                        .bidirectional = p->bidirectional,
                };
                int32_t t = !batch && p->last_only ? n - 1 : 0;
                kv[i]->bytes_read += ops_attention(tp, &ap, qi + (size_t)t * QD, QD, pos[i] + t, t ? 1 : rows,
                                                   att + row * QD, QD, scratch);
        }
}
