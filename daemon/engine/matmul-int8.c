/* SPDX-License-Identifier: MIT */
/* The int8 path for many tokens: activations quantized as for the vec path
 * and laid out as plain int8 with group scales, then every thread runs the
 * register-tiled kernel over its strips of rows.  Which of int8 and sgemm
 * runs for a type is decided here (measured with bench-kernels). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kernels-cpu.h"
#include "kernels-impl.h"
#include "macro.h"
#include "matmul-int8.h"

static bool int8_supported(void) {
        const cpu_features *f = cpu_features_get();
        return f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni && f->avx512dq;
}

int int8_group_size(uint32_t type) {
        switch (type) {
        case TYPE_Q8_0: case TYPE_Q4_0: case TYPE_Q4_K: case TYPE_Q5_K:
                return 32;
        case TYPE_Q6_K:
                return 16;
        default:
                return 0;
        }
}

size_t int8_strip_bytes(int64_t n_in, int group) {
        size_t ng = (size_t)(n_in / group);
        /* q interleaved, s and m per group and row; then the same again
         * unpacked row by row */
        return 2 * ((size_t)n_in * STRIP + 2 * ng * STRIP * sizeof(float)) + 64;
}

void int8_prepare_act(uint32_t act_type, int group, const void *src, int64_t n, int8_t *a, float *t, float *tsum) {
        if (act_type == TYPE_Q8_0) {
                const block_q8_0 *b = src;
                int per = 32 / group;
                for (int64_t i = 0; i < n / 32; i++) {
                        float d = fp16_to_fp32(b[i].d);
                        memcpy(a + 32 * i, b[i].qs, 32);
                        for (int h = 0; h < per; h++) {
                                int sum = 0;
                                for (int j = 0; j < group; j++)
                                        sum += b[i].qs[h * group + j];
                                t[i * per + h] = d;
                                tsum[i * per + h] = d * (float)sum;
                        }
                }
                return;
        }
        const block_q8_K *b = src;
        int per = QK_K / group;
        for (int64_t i = 0; i < n / QK_K; i++) {
                memcpy(a + QK_K * i, b[i].qs, QK_K);
                for (int h = 0; h < per; h++) {
                        int sum = 0;
                        for (int k = 0; k < group / 16; k++)
                                sum += b[i].bsums[h * (group / 16) + k];
                        t[i * per + h] = b[i].d;
                        tsum[i * per + h] = b[i].d * (float)sum;
                }
        }
}

typedef struct int8_job {
        matmul_ctx *c;
        const weight *w;
        const float *x;
        int64_t n_tokens;
        float *y;
        int group;
        uint32_t act_type;
        size_t act_row;
        int8_act act;
        row_sched sched;
} int8_job;

static void act_worker(void *p, int ith, int nth) {
        int8_job *j = p;
        int64_t n = j->w->n_in, ng = n / j->group;
        int64_t t0 = j->n_tokens * ith / nth, t1 = j->n_tokens * (ith + 1) / nth;

        for (int64_t t = t0; t < t1; t++) {
                uint8_t *q = (uint8_t *)j->c->act + (size_t)t * j->act_row;
                j->c->k->from_float[j->act_type](j->x + t * n, q, n);
                int8_prepare_act(j->act_type, j->group, q, n, j->act.a + (size_t)t * n, j->act.t + t * ng,
                                 j->act.tsum + t * ng);
        }
}

static void rows_worker(void *p, int ith, int nth) {
        int8_job *j = p;
        int64_t r0, r1;

        while (row_sched_next(&j->sched, ith, &r0, &r1))
                int8_avx512_rows(j->w, j->group, &j->act, j->n_tokens, j->y, r0, r1, j->c->scratch[ith].p);
}

int matmul_int8(matmul_ctx *c, const weight *w, const float *x, int64_t n_tokens, float *y) {
        int group = int8_group_size(w->type);
        int8_job j = { .c = c, .w = w, .x = x, .n_tokens = n_tokens, .y = y, .group = group };
        size_t row, need, a_bytes, f_bytes;
        int r;

        if (!group || !int8_supported())
                return -EOPNOTSUPP;
        j.act_type = type_traits_get(w->type)->vec_dot_type;
        r = type_row_size(j.act_type, w->n_in, &row);
        if (r < 0)
                return r;
        j.act_row = row;
        /* One buffer for the quantized rows, the int8 values and the two
         * float arrays. */
        int64_t ng = w->n_in / group;
        if (MUL_OVERFLOW(row, (size_t)n_tokens, &need) || MUL_OVERFLOW((size_t)w->n_in, (size_t)n_tokens, &a_bytes) ||
            MUL_OVERFLOW((size_t)ng * sizeof(float), (size_t)n_tokens, &f_bytes))
                return -EOVERFLOW;
        need = align_up_size(need, 64) + align_up_size(a_bytes, 64) + 2 * align_up_size(f_bytes, 64);
        r = matmul_buf_reserve(&c->int8_act, need);
        if (r < 0)
                return r;
        for (int i = 0; i < c->n_threads; i++) {
                r = matmul_buf_reserve(&c->scratch[i], int8_strip_bytes(w->n_in, group));
                if (r < 0)
                        return r;
        }
        uint8_t *p = c->int8_act.p;
        /* c->act is the quantized rows: alias into our buffer */
        void *saved_act = c->act;
        c->act = p;
        p += align_up_size(row * n_tokens, 64);
        j.act.a = (int8_t *)p;
        p += align_up_size(a_bytes, 64);
        j.act.t = (float *)p;
        p += align_up_size(f_bytes, 64);
        j.act.tsum = (float *)p;

        threadpool_run(c->tp, act_worker, &j);
        c->act = saved_act;
        row_sched_init(&j.sched, w->n_out, c->n_threads, STRIP);
        threadpool_run(c->tp, rows_worker, &j);
        return 0;
}

matmul_path matmul_choose_path(matmul_ctx *c, const weight *w, int64_t n_tokens) {
        if (int8_group_size(w->type) && int8_supported())
                return MATMUL_PATH_INT8;
        return MATMUL_PATH_SGEMM;
}

bool matmul_has_int8(uint32_t type) {
        return type < TYPE_COUNT && int8_group_size(type) && int8_supported();
}
