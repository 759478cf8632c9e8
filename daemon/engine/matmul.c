/* SPDX-License-Identifier: MIT */
/* y[t][o] = sum_i W[o][i] * x[t][i] for weights of any supported type.
 *
 * Few tokens (vec path): the activations are converted once to the type
 * the weight's dot kernel takes (Q8_0, Q8_K, F16, BF16 or F32), then every
 * thread streams its own contiguous, evenly sized range of weight rows and
 * dots each row with every token while the row is in L1.  Each output is
 * one dot kernel call, so the result does not depend on the thread count.
 *
 * Many tokens: either OpenBLAS sgemm on panels of rows dequantized into a
 * per-thread buffer (single-threaded sgemm, our pool splits the rows), or
 * the int8 kernel (matmul-int8*.c) where it is faster for the type. */
#include <cblas.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "macro.h"
#include "matmul-impl.h"
#include "matmul.h"

/* Token counts below this take the vec path. */
#define VEC_MAX_TOKENS 8
/* Rows handed out in multiples of this: 16 floats of output fill a cache
 * line, so threads never write the same line. */
#define ROW_ALIGN 16

static void *alloc_aligned(size_t n) {
        void *p = NULL;
        if (posix_memalign(&p, 64, n ? n : 64) != 0)
                return NULL;
        return p;
}

int matmul_ctx_new(int n_threads, matmul_ctx **ret) {
        matmul_ctx *c;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        r = threadpool_new(n_threads, &c->tp);
        if (r < 0) {
                free(c);
                return r;
        }
        c->n_threads = n_threads;
        c->k = kernels_best();
        c->scratch = calloc((size_t)n_threads, sizeof *c->scratch);
        c->plan = calloc((size_t)n_threads, sizeof *c->plan);
        if (!c->scratch || !c->plan) {
                matmul_ctx_free(c);
                return -ENOMEM;
        }
        for (int t = 0; t < TYPE_COUNT; t++)
                c->last_path[t] = MATMUL_PATH_VEC;
        c->forced = _MATMUL_PATH_MAX;
        *ret = c;
        return 0;
}

void matmul_ctx_free(matmul_ctx *c) {
        if (!c)
                return;
        threadpool_free(c->tp);
        if (c->scratch)
                for (int i = 0; i < c->n_threads; i++)
                        free(c->scratch[i].p);
        free(c->scratch);
        free(c->plan);
        free(c->int8_act.p);
        free(c->act);
        free(c);
}

threadpool *matmul_ctx_pool(matmul_ctx *c) {
        return c->tp;
}

matmul_path matmul_last_path(const matmul_ctx *c, uint32_t type) {
        return type < TYPE_COUNT ? c->last_path[type] : MATMUL_PATH_VEC;
}

void matmul_ctx_force_path(matmul_ctx *c, matmul_path p) {
        c->forced = p;
}

const char *matmul_path_name(matmul_path p) {
        static const char *const names[_MATMUL_PATH_MAX] = {
                [MATMUL_PATH_VEC] = "vec",
                [MATMUL_PATH_SGEMM] = "sgemm",
                [MATMUL_PATH_INT8] = "int8",
        };
        return p >= 0 && p < _MATMUL_PATH_MAX ? names[p] : "?";
}

int weight_row_to_float(const weight *w, const void *row, float *out) {
        const type_traits *t = type_traits_get(w->type);

        if (!t || !t->to_float)
                return -EINVAL;
        kernels_best()->to_float[w->type](row, out, w->n_in);
        return 0;
}

int weight_get_row(const weight *w, int64_t r, float *out) {
        if (r < 0 || r >= w->n_out)
                return -EINVAL;
        return weight_row_to_float(w, (const uint8_t *)w->data + (size_t)r * w->row_bytes, out);
}

/* Grow a buffer to at least n bytes (contents not kept). */
int matmul_buf_reserve(matmul_buf *b, size_t n) {
        if (b->size >= n)
                return 0;
        free(b->p);
        b->p = alloc_aligned(n);
        b->size = b->p ? n : 0;
        return b->p ? 0 : -ENOMEM;
}

/* The rows [*r0, *r1) of thread ith: even shares in ROW_ALIGN units. */
void matmul_split_rows(int64_t n_rows, int ith, int nth, int64_t *r0, int64_t *r1) {
        int64_t units = (n_rows + ROW_ALIGN - 1) / ROW_ALIGN;
        int64_t u0 = units * ith / nth, u1 = units * (ith + 1) / nth;

        *r0 = MIN(u0 * ROW_ALIGN, n_rows);
        *r1 = MIN(u1 * ROW_ALIGN, n_rows);
}

static int check_weight(const weight *w);

/* --- vec path ----------------------------------------------------------- */

typedef struct vec_job {
        const weight *w;
        vec_dot_fn dot;
        gemv_rows_fn gemv; /* instead of dot, on prepared activations */
        const uint8_t *act; /* n_tokens rows of act_row bytes */
        size_t act_row;
        int64_t n_tokens;
        float *y;
        row_sched sched;
} vec_job;

static void vec_worker(void *p, int ith, int nth) {
        vec_job *j = p;
        const weight *w = j->w;
        int64_t r0, r1;

        if (j->gemv) {
                while (row_sched_next(&j->sched, ith, &r0, &r1))
                        for (int64_t t = 0; t < j->n_tokens; t++)
                                j->gemv(w->n_in, (const uint8_t *)w->data + (size_t)r0 * w->row_bytes, w->row_bytes,
                                        r1 - r0, j->act + (size_t)t * j->act_row, &j->y[t * w->n_out + r0]);
                return;
        }
        while (row_sched_next(&j->sched, ith, &r0, &r1))
                for (int64_t r = r0; r < r1; r++) {
                        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
                        for (int64_t t = 0; t < j->n_tokens; t++)
                                j->dot(w->n_in, &j->y[t * w->n_out + r], row, j->act + (size_t)t * j->act_row);
                }
}

/* Convert n_tokens rows of activations to the dot type into c->act. */
int matmul_quantize_act(matmul_ctx *c, uint32_t act_type, const float *x, int64_t n_in, int64_t n_tokens,
                        size_t *ret_row) {
        size_t row, total;
        int r;

        r = type_row_size(act_type, n_in, &row);
        if (r < 0)
                return r;
        if (MUL_OVERFLOW(row, (size_t)n_tokens, &total))
                return -EOVERFLOW;
        if (c->act_size < total) {
                free(c->act);
                c->act = alloc_aligned(total);
                c->act_size = c->act ? total : 0;
                if (!c->act)
                        return -ENOMEM;
        }
        for (int64_t t = 0; t < n_tokens; t++)
                c->k->from_float[act_type](x + t * n_in, (uint8_t *)c->act + (size_t)t * row, n_in);
        *ret_row = row;
        return 0;
}

/* Activations in the layout of the type's gemv kernel, into c->act. */
static int matmul_prep_act(matmul_ctx *c, const gemv_kernel *g, const float *x, int64_t n_in, int64_t n_tokens,
                           size_t *ret_row) {
        size_t row = gemv_act_row(g, n_in), total;

        if (MUL_OVERFLOW(row, (size_t)n_tokens, &total))
                return -EOVERFLOW;
        if (c->act_size < total) {
                free(c->act);
                c->act = alloc_aligned(total);
                c->act_size = c->act ? total : 0;
                if (!c->act)
                        return -ENOMEM;
        }
        for (int64_t t = 0; t < n_tokens; t++)
                g->prep(x + t * n_in, (uint8_t *)c->act + (size_t)t * row, n_in);
        *ret_row = row;
        return 0;
}

/* Several tokens re-read each chunk's rows: keep the chunks small enough
 * to stay in cache.  One token: long streams, then shrinking chunks down
 * to TAIL_MIN_BYTES, about what a chunk's start costs in unprefetched
 * reads several times over.  Under SMALL_BYTES that left chunks of 16
 * rows, each starting four new streams: one equal share per thread
 * instead (Gemma 3n's 72-288 KiB LAuReL and per-layer products took 1.2
 * to 1.5 times less time).  Under TINY_BYTES (AltUp's 4-row router, its
 * 16- and 4-output coefficients) the caller computes it alone: waking the
 * pool cost more than the product. */
#define TAIL_MIN_BYTES (64 * 1024)
#define SMALL_BYTES (1024 * 1024)
#define TINY_BYTES (16 * 1024)
static void rows_sched_init(row_sched *s, int64_t n_rows, size_t row_bytes, int64_t n_tokens, int nth) {
        if (n_tokens > 1) {
                row_sched_init(s, n_rows, nth, ROW_ALIGN);
                return;
        }
        if (row_bytes * (size_t)n_rows < SMALL_BYTES) {
                row_sched_init_even(s, n_rows, nth, ROW_ALIGN);
                return;
        }
        row_sched_init_long(s, n_rows, nth, ROW_ALIGN, TAIL_MIN_BYTES / MAX((size_t)1, row_bytes));
}

static void vec_sched_init(row_sched *s, const weight *w, int64_t n_tokens, int nth) {
        rows_sched_init(s, w->n_out, w->row_bytes, n_tokens, nth);
}

/* w's slot, or a free one for it; NULL when the few places it may take
 * are all taken (more products than any model has: no plan, no cost). */
static struct matmul_succ *succ_slot(matmul_ctx *c, const weight *w) {
        size_t h = (size_t)(((uintptr_t)w >> 3) * UINT64_C(0x9E3779B97F4A7C15) >> 40) % MATMUL_SUCC_SLOTS;

        for (size_t i = 0; i < 16; i++) {
                struct matmul_succ *e = &c->succ[(h + i) % MATMUL_SUCC_SLOTS];
                if (e->w == w || !e->w)
                        return e;
        }
        return NULL;
}

/* Note that the one-token product starting with w follows the previous
 * one, and plan what the workers read after their share of it: the first
 * PLAN_BYTES of their big chunk of the product that followed it last
 * time, in the four streams the kernel will read it as.  A quarter of L2
 * (E2B, per token, against no plan: 256 KiB 1.006, 512 KiB 1.007, 1 MiB
 * 1.007-1.009, 2 MiB 1.001). */
#define PLAN_BYTES (512 * 1024)
static const threadpool_prefetch *matmul_plan(matmul_ctx *c, const weight *w) {
        struct matmul_succ *e;
        const weight *n;
        row_sched s;

        if (c->prev && (e = succ_slot(c, c->prev))) {
                e->w = c->prev;
                e->next = w;
        }
        c->prev = w;
        if (c->n_threads < 2 || !(e = succ_slot(c, w)) || e->w != w || !(n = e->next) || !c->k->gemv ||
            !gemv_takes(&c->k->gemv[n->type], n->n_in))
                return NULL;
        vec_sched_init(&s, n, 1, c->n_threads); /* as it will be scheduled */
        if (!s.n_big)
                return NULL;
        int64_t q = gemv_quarter(s.big, n->row_bytes);
        for (int ith = 1; ith < c->n_threads; ith++) {
                const uint8_t *chunk = (const uint8_t *)n->data + (size_t)(ith * s.big) * n->row_bytes;
                for (int k = 0; k < 4; k++)
                        c->plan[ith].stream[k] = chunk + (size_t)(k * q) * n->row_bytes;
                c->plan[ith].bytes = MIN((size_t)q * n->row_bytes, (size_t)PLAN_BYTES / 4);
        }
        return c->plan;
}

static int matmul_vec(matmul_ctx *c, const weight *w, const float *x, int64_t n_tokens, float *y) {
        const type_traits *t = type_traits_get(w->type);
        const gemv_kernel *g = c->k->gemv ? &c->k->gemv[w->type] : NULL;
        vec_job j = { .w = w, .dot = c->k->vec_dot[w->type], .n_tokens = n_tokens, .y = y };
        int r;

        /* alone: not in the successor table either, so that the plan
         * reaches over it to the next product on the pool */
        bool alone = n_tokens == 1 && weight_bytes(w) < TINY_BYTES;
        const threadpool_prefetch *plan = n_tokens == 1 && !alone ? matmul_plan(c, w) : NULL;
        vec_sched_init(&j.sched, w, n_tokens, alone ? 1 : c->n_threads);
        if (gemv_takes(g, w->n_in)) {
                r = matmul_prep_act(c, g, x, w->n_in, n_tokens, &j.act_row);
                if (r < 0)
                        return r;
                j.act = c->act;
                j.gemv = g->rows;
        } else if (t->vec_dot_type == TYPE_F32) {
                j.act = (const uint8_t *)x;
                j.act_row = (size_t)w->n_in * sizeof(float);
        } else {
                r = matmul_quantize_act(c, t->vec_dot_type, x, w->n_in, n_tokens, &j.act_row);
                if (r < 0)
                        return r;
                j.act = c->act;
        }
        if (alone)
                vec_worker(&j, 0, 1);
        else
                threadpool_run_dynamic_prefetch(c->tp, vec_worker, &j, plan);
        return 0;
}

/* --- several weights, one dispatch -------------------------------------- */

typedef struct multi_job {
        int n_w;
        vec_job v[MATMUL_MULTI_MAX];
        /* matmul_post: every weight by the same rows, then this */
        matmul_rows_fn post;
        void *post_ctx;
} multi_job;

/* matmul_post: every weight by the same rows, then post on them */
static void post_worker(multi_job *m, int ith) {
        int64_t r0, r1;

        while (row_sched_next(&m->v[0].sched, ith, &r0, &r1)) {
                for (int i = 0; i < m->n_w; i++) {
                        const vec_job *j = &m->v[i];
                        j->gemv(j->w->n_in, (const uint8_t *)j->w->data + (size_t)r0 * j->w->row_bytes,
                                j->w->row_bytes, r1 - r0, j->act, j->y + r0);
                }
                m->post(m->post_ctx, r0, r1);
        }
}

static void multi_worker(void *p, int ith, int nth) {
        multi_job *m = p;

        if (m->post) {
                post_worker(m, ith);
                return;
        }
        for (int i = 0; i < m->n_w; i++)
                vec_worker(&m->v[i], ith, nth);
}

/* matmul_multi_x, or with post (one token, weights of one shape)
 * matmul_post's */
static int multi_run(matmul_ctx *c, const weight *const *ws, const float *const *xs, int n_w, int64_t n_tokens,
                     float *const *ys, matmul_rows_fn post, void *post_ctx) {
        const gemv_kernel *g[MATMUL_MULTI_MAX];
        size_t off[MATMUL_MULTI_MAX], row[MATMUL_MULTI_MAX], total = 0;
        int first[MATMUL_MULTI_MAX]; /* the weight whose prepared copy weight i reads */
        bool fused = n_w > 0 && n_w <= MATMUL_MULTI_MAX && c->forced == _MATMUL_PATH_MAX && n_tokens > 0 &&
                     n_tokens < VEC_MAX_TOKENS && c->k->gemv;
        int r;

        /* Fused only where every weight has a gemv kernel; otherwise the
         * plain calls (same results). */
        for (int i = 0; fused && i < n_w; i++) {
                if (check_weight(ws[i]) < 0)
                        fused = false;
                else {
                        g[i] = &c->k->gemv[ws[i]->type];
                        fused = gemv_takes(g[i], ws[i]->n_in);
                }
        }
        if (!fused) {
                for (int i = 0; i < n_w; i++)
                        if ((r = matmul(c, ws[i], xs[i], n_tokens, ys[i])) < 0)
                                return r;
                if (post)
                        post(post_ctx, 0, ws[0]->n_out);
                return 0;
        }

        /* one prepared copy per distinct activations and prep function */
        for (int i = 0; i < n_w; i++) {
                first[i] = i;
                for (int k = 0; k < i && first[i] == i; k++)
                        if (g[k]->prep == g[i]->prep && xs[k] == xs[i] && ws[k]->n_in == ws[i]->n_in)
                                first[i] = k;
                row[i] = gemv_act_row(g[i], ws[i]->n_in);
                if (first[i] != i)
                        off[i] = off[first[i]];
                else {
                        off[i] = total;
                        total += row[i] * (size_t)n_tokens;
                }
        }
        if (c->act_size < total) {
                free(c->act);
                c->act = alloc_aligned(total);
                c->act_size = c->act ? total : 0;
                if (!c->act)
                        return -ENOMEM;
        }
        multi_job m = { .n_w = n_w, .post = post, .post_ctx = post_ctx };
        for (int i = 0; i < n_w; i++) {
                uint8_t *a = (uint8_t *)c->act + off[i];
                for (int64_t t = 0; first[i] == i && t < n_tokens; t++)
                        g[i]->prep(xs[i] + t * ws[i]->n_in, a + (size_t)t * row[i], ws[i]->n_in);
                m.v[i] = (vec_job){ .w = ws[i], .gemv = g[i]->rows, .act = a, .act_row = row[i],
                                    .n_tokens = n_tokens, .y = ys[i] };
                if (!post)
                        vec_sched_init(&m.v[i].sched, ws[i], n_tokens, c->n_threads);
        }
        if (post) { /* one schedule, each row all the weights' bytes */
                size_t row_bytes = 0;
                for (int i = 0; i < n_w; i++)
                        row_bytes += ws[i]->row_bytes;
                rows_sched_init(&m.v[0].sched, ws[0]->n_out, row_bytes, n_tokens, c->n_threads);
        }
        threadpool_run_dynamic_prefetch(c->tp, multi_worker, &m, n_tokens == 1 ? matmul_plan(c, ws[0]) : NULL);
        return 0;
}

int matmul_multi_x(matmul_ctx *c, const weight *const *ws, const float *const *xs, int n_w, int64_t n_tokens,
                   float *const *ys) {
        return multi_run(c, ws, xs, n_w, n_tokens, ys, NULL, NULL);
}

int matmul_multi(matmul_ctx *c, const weight *const *ws, int n_w, const float *x, int64_t n_tokens, float *const *ys) {
        const float *xs[MATMUL_MULTI_MAX];
        int r;

        if (n_w > MATMUL_MULTI_MAX) { /* more than one dispatch takes */
                for (int i = 0; i < n_w; i++)
                        if ((r = matmul(c, ws[i], x, n_tokens, ys[i])) < 0)
                                return r;
                return 0;
        }
        for (int i = 0; i < n_w; i++)
                xs[i] = x;
        return matmul_multi_x(c, ws, xs, n_w, n_tokens, ys);
}

int matmul_post(matmul_ctx *c, const weight *const *ws, int n_w, const float *x, float *const *ys,
                matmul_rows_fn post, void *post_ctx) {
        const float *xs[MATMUL_MULTI_MAX];

        if (n_w < 1 || n_w > MATMUL_MULTI_MAX || !post)
                return -EINVAL;
        for (int i = 0; i < n_w; i++) {
                if (ws[i]->n_out != ws[0]->n_out || ws[i]->n_in != ws[0]->n_in)
                        return -EINVAL;
                xs[i] = x;
        }
        return multi_run(c, ws, xs, n_w, 1, ys, post, post_ctx);
}

/* --- sgemm path --------------------------------------------------------- */

typedef struct sgemm_job {
        const weight *w;
        to_float_fn to_float;
        const float *x;
        int64_t n_tokens, panel;
        float *y;
        matmul_buf *scratch;
} sgemm_job;

static void sgemm_worker(void *p, int ith, int nth) {
        const sgemm_job *j = p;
        const weight *w = j->w;
        int64_t r0, r1;

        /* whole panels per thread: see matmul_sgemm */
        int64_t n_panels = (w->n_out + j->panel - 1) / j->panel;
        r0 = MIN(w->n_out, n_panels * ith / nth * j->panel);
        r1 = MIN(w->n_out, n_panels * (ith + 1) / nth * j->panel);
        for (int64_t o = r0; o < r1; o += j->panel) {
                int64_t rows = MIN(j->panel, r1 - o);
                const float *wp;

                if (w->type == TYPE_F32)
                        wp = (const float *)((const uint8_t *)w->data + (size_t)o * w->row_bytes);
                else {
                        float *buf = j->scratch[ith].p;
                        for (int64_t i = 0; i < rows; i++)
                                j->to_float((const uint8_t *)w->data + (size_t)(o + i) * w->row_bytes,
                                            buf + i * w->n_in, w->n_in);
                        wp = buf;
                }
                /* Y[t][o..o+rows) = X[t][:] . Wp[0..rows)[:]^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->n_tokens, (int)rows, (int)w->n_in,
                            1.0f, j->x, (int)w->n_in, wp, (int)w->n_in, 0.0f, j->y + o, (int)w->n_out);
        }
}

static int matmul_sgemm(matmul_ctx *c, const weight *w, const float *x, int64_t n_tokens, float *y) {
        /* Panels of about 1 MiB of floats: they stay in L2 while sgemm
         * streams the tokens through them; at least 8 of them, for the
         * threads to share.  Their bounds depend on the shape alone, never
         * on the thread count: OpenBLAS's Haswell and Zen kernels round a
         * row's sum differently at different offsets in a call, and the
         * results must not change with the threads. */
        int64_t panel = MAX(ROW_ALIGN, ((1 << 18) / w->n_in) / ROW_ALIGN * ROW_ALIGN);
        panel = MAX(ROW_ALIGN, MIN(panel, ((w->n_out + 7) / 8 + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN));
        sgemm_job j = { .w = w, .to_float = c->k->to_float[w->type], .x = x, .n_tokens = n_tokens,
                        .panel = panel, .y = y, .scratch = c->scratch };
        size_t need;
        int r;

        if (w->type != TYPE_F32) {
                if (MUL_OVERFLOW((size_t)panel, (size_t)w->n_in * sizeof(float), &need))
                        return -EOVERFLOW;
                for (int i = 0; i < c->n_threads; i++) {
                        r = matmul_buf_reserve(&c->scratch[i], need);
                        if (r < 0)
                                return r;
                }
        }
        /* Our pool splits the rows; each thread's sgemm runs alone. */
        openblas_set_num_threads(1);
        threadpool_run(c->tp, sgemm_worker, &j);
        return 0;
}

/* --- dispatch ----------------------------------------------------------- */

static int check_weight(const weight *w) {
        size_t row;

        if (!w || !w->data || !type_is_supported(w->type) || w->n_in <= 0 || w->n_out <= 0)
                return -EINVAL;
        if (w->n_in > INT32_MAX || w->n_out > INT32_MAX)
                return -EOVERFLOW;
        if (type_row_size(w->type, w->n_in, &row) < 0 || row != w->row_bytes)
                return -EINVAL;
        return 0;
}

int matmul(matmul_ctx *c, const weight *w, const float *x, int64_t n_tokens, float *y) {
        int r;

        r = check_weight(w);
        if (r < 0)
                return r;
        if (n_tokens <= 0 || n_tokens > INT32_MAX)
                return -EINVAL;
        matmul_path p = c->forced;
        if (p == _MATMUL_PATH_MAX)
                p = n_tokens < VEC_MAX_TOKENS ? MATMUL_PATH_VEC : matmul_choose_path(c, w, n_tokens);
        if (p == MATMUL_PATH_VEC) {
                if (n_tokens > 1)
                        c->last_path[w->type] = p;
                return matmul_vec(c, w, x, n_tokens, y);
        }

        c->last_path[w->type] = p;
        if (p == MATMUL_PATH_INT8) {
                r = matmul_int8(c, w, x, n_tokens, y);
                if (r != -EOPNOTSUPP)
                        return r;
                c->last_path[w->type] = MATMUL_PATH_SGEMM;
        }
        return matmul_sgemm(c, w, x, n_tokens, y);
}
