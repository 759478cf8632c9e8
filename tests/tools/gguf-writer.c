/* SPDX-License-Identifier: MIT */
/* GGUF v3 writer: header | key/values | tensor infos | pad | data. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf-writer.h"
#include "macro.h"
#include "mkmodel-quant.h"

typedef struct buf {
        uint8_t *p;
        size_t n, cap;
        bool oom;
} buf;

struct mk_gguf {
        buf kv, info;
        int64_t n_kv, n_tensors;
        uint64_t data_size; /* packed, aligned */
};

static void buf_put(buf *b, const void *p, size_t n) {
        if (b->oom)
                return;
        if (b->n + n > b->cap) {
                size_t cap = MAX(b->cap * 2, b->n + n + 4096);
                uint8_t *q = realloc(b->p, cap);
                if (!q) {
                        b->oom = true;
                        return;
                }
                b->p = q;
                b->cap = cap;
        }
        memcpy(b->p + b->n, p, n);
        b->n += n;
}

/* Little-endian host (x86-64, aarch64): values are stored as they are. */
static void put_u32(buf *b, uint32_t v) { buf_put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { buf_put(b, &v, 8); }
static void put_str(buf *b, const char *s) {
        size_t n = strlen(s);
        put_u64(b, n);
        buf_put(b, s, n);
}

int mk_gguf_new(mk_gguf **ret) {
        mk_gguf *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        *ret = w;
        return 0;
}

void mk_gguf_free(mk_gguf *w) {
        if (!w)
                return;
        free(w->kv.p);
        free(w->info.p);
        free(w);
}

static void kv_head(mk_gguf *w, const char *key, gguf_type t) {
        put_str(&w->kv, key);
        put_u32(&w->kv, t);
        w->n_kv++;
}

void mk_gguf_kv_str(mk_gguf *w, const char *key, const char *val) {
        kv_head(w, key, GGUF_TYPE_STRING);
        put_str(&w->kv, val);
}

void mk_gguf_kv_u32(mk_gguf *w, const char *key, uint32_t val) {
        kv_head(w, key, GGUF_TYPE_UINT32);
        put_u32(&w->kv, val);
}

void mk_gguf_kv_f32(mk_gguf *w, const char *key, float val) {
        kv_head(w, key, GGUF_TYPE_FLOAT32);
        buf_put(&w->kv, &val, 4);
}

void mk_gguf_kv_bool(mk_gguf *w, const char *key, bool val) {
        uint8_t v = val;
        kv_head(w, key, GGUF_TYPE_BOOL);
        buf_put(&w->kv, &v, 1);
}

void mk_gguf_arr_begin(mk_gguf *w, const char *key, gguf_type elem_type, uint64_t n) {
        kv_head(w, key, GGUF_TYPE_ARRAY);
        put_u32(&w->kv, elem_type);
        put_u64(&w->kv, n);
}

void mk_gguf_arr_str(mk_gguf *w, const char *s) { put_str(&w->kv, s); }
void mk_gguf_arr_f32(mk_gguf *w, float v) { buf_put(&w->kv, &v, 4); }
void mk_gguf_arr_i32(mk_gguf *w, int32_t v) { buf_put(&w->kv, &v, 4); }
void mk_gguf_arr_bool(mk_gguf *w, bool v) {
        uint8_t b = v;
        buf_put(&w->kv, &b, 1);
}

int mk_gguf_add_tensor(mk_gguf *w, const char *name, int n_dims, const int64_t ne[4], uint32_t type,
                       uint64_t *offset, uint64_t *nbytes) {
        if (n_dims < 1 || n_dims > 4 || strlen(name) >= 64)
                return -EINVAL;
        size_t row = mk_row_size(type, ne[0]);
        if (row == 0)
                return -EINVAL;
        uint64_t n = row;
        for (int i = 1; i < n_dims; i++)
                if (ne[i] < 1 || MUL_OVERFLOW(n, (uint64_t)ne[i], &n))
                        return -EINVAL;

        put_str(&w->info, name);
        put_u32(&w->info, (uint32_t)n_dims);
        for (int i = 0; i < n_dims; i++)
                put_u64(&w->info, (uint64_t)ne[i]);
        put_u32(&w->info, type);
        put_u64(&w->info, w->data_size);
        w->n_tensors++;

        *offset = w->data_size;
        *nbytes = n;
        w->data_size += align_up_size(n, MK_GGUF_ALIGN);
        return 0;
}

int mk_pwrite_all(int fd, const void *p, size_t n, uint64_t off) {
        const uint8_t *q = p;
        while (n > 0) {
                ssize_t k = pwrite(fd, q, n, (off_t)off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                q += k;
                n -= (size_t)k;
                off += (uint64_t)k;
        }
        return 0;
}

int mk_gguf_write_header(mk_gguf *w, int fd, uint64_t *data_start) {
        if (w->kv.oom || w->info.oom)
                return -ENOMEM;
        buf h = {};
        buf_put(&h, "GGUF", 4);
        put_u32(&h, 3);
        put_u64(&h, (uint64_t)w->n_tensors);
        put_u64(&h, (uint64_t)w->n_kv);
        if (h.oom)
                return -ENOMEM;

        uint64_t off = 0;
        int r = mk_pwrite_all(fd, h.p, h.n, off);
        off += h.n;
        free(h.p);
        if (r >= 0)
                r = mk_pwrite_all(fd, w->kv.p, w->kv.n, off);
        off += w->kv.n;
        if (r >= 0)
                r = mk_pwrite_all(fd, w->info.p, w->info.n, off);
        off += w->info.n;
        if (r < 0)
                return r;

        uint64_t start = align_up_size(off, MK_GGUF_ALIGN);
        static const uint8_t zero[MK_GGUF_ALIGN];
        r = mk_pwrite_all(fd, zero, start - off, off);
        if (r < 0)
                return r;
        if (ftruncate(fd, (off_t)(start + w->data_size)) < 0)
                return -errno;
        *data_start = start;
        return 0;
}
