/* SPDX-License-Identifier: MIT */
/* libFuzzer harness for the GGUF reader: parse the input; when it is
 * accepted, call every accessor on every key and tensor and check that all
 * that comes back lies inside the input.  Seeds: tests/fuzz/corpus/gguf/
 * (written by test-gguf-malformed --write-corpus). */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

#define INSIDE(p, n, base, size)                                                                          \
        ((const uint8_t *) (p) >= (const uint8_t *) (base) &&                                             \
         (uint64_t) (n) <= (size) && (size_t) ((const uint8_t *) (p) - (const uint8_t *) (base)) <= (size) - (n))

static volatile uint64_t sink;

static void touch(const void *p, uint64_t n) {
        /* Read the first and last byte so ASan checks the whole range. */
        if (n > 0)
                sink += ((const uint8_t *) p)[0] + ((const uint8_t *) p)[n - 1];
}

static void exercise_key(const gguf_file *f, int64_t k, const uint8_t *data, size_t size) {
        gguf_str name = gguf_key_name(f, k), s;
        char key[1 << 12];
        uint32_t u32;
        int32_t i32;
        uint64_t u64, n;
        int64_t i64;
        float x;
        bool b;
        gguf_type et;
        const void *arr;

        if (!INSIDE(name.p, name.len, data, size) || name.len == 0 || memchr(name.p, 0, name.len))
                abort();
        if (name.len >= sizeof key)
                return; /* cannot be looked up by a C string here; fine */
        memcpy(key, name.p, name.len);
        key[name.len] = 0;
        if (gguf_find_key(f, key) != k)
                abort();

        (void) gguf_get_u32(f, key, &u32);
        (void) gguf_get_i32(f, key, &i32);
        (void) gguf_get_u64(f, key, &u64);
        (void) gguf_get_i64(f, key, &i64);
        (void) gguf_get_f32(f, key, &x);
        (void) gguf_get_bool(f, key, &b);
        (void) gguf_get_i64_at(f, key, 0, &i64);
        (void) gguf_get_f32_at(f, key, 1, &x);
        if (gguf_get_str(f, key, &s) == 0) {
                if (!INSIDE(s.p, s.len, data, size))
                        abort();
                touch(s.p, s.len);
        }
        if (gguf_get_arr(f, key, &et, &n, &arr) < 0) {
                if (gguf_key_type(f, k) == GGUF_TYPE_ARRAY)
                        abort();
                return;
        }
        for (uint64_t i = 0; i <= n; i++) {
                int r1 = gguf_get_arr_str(f, key, i, &s);
                int r2 = gguf_get_arr_i64(f, key, i, &i64);
                int r3 = gguf_get_arr_f32(f, key, i, &x);
                if (r1 == 0) {
                        if (i == n || !INSIDE(s.p, s.len, data, size))
                                abort();
                        touch(s.p, s.len);
                }
                if (i == n && (r1 == 0 || r2 == 0 || r3 == 0))
                        abort();
                (void) gguf_get_i64_at(f, key, i, &i64);
                (void) gguf_get_f32_at(f, key, i, &x);
                (void) gguf_kv_arr_str(f, k, i, &s);
                (void) gguf_kv_arr_i64(f, k, i, &i64);
                (void) gguf_kv_arr_f32(f, k, i, &x);
        }
        (void) gguf_kv_arr(f, k, &et, &n, &arr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        gguf_file *f = NULL;
        char err[256];
        /* Vary the message buffer: none, tiny, normal. */
        size_t errlen = size > 0 ? (data[size - 1] % 3 == 0 ? 0 : data[size - 1] % 3 == 1 ? 5 : sizeof err) : 0;
        size_t fsize;
        int r;

        r = gguf_open_memory(data, size, &f, errlen ? err : NULL, errlen);
        if (r < 0) {
                if (f || (errlen && strnlen(err, errlen) >= errlen))
                        abort();
                return 0;
        }
        if (gguf_file_data(f, &fsize) != data || fsize != size)
                abort();
        if (gguf_version(f) < 2 || gguf_version(f) > 3)
                abort();
        if (gguf_alignment(f) == 0 || (gguf_alignment(f) & (gguf_alignment(f) - 1)))
                abort();

        for (int64_t k = 0; k < gguf_n_kv(f); k++)
                exercise_key(f, k, data, size);
        (void) gguf_key_name(f, gguf_n_kv(f));
        (void) gguf_key_type(f, -1);
        (void) gguf_find_key(f, "general.architecture");

        for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
                const gguf_tensor *t = gguf_tensor_at(f, i);
                char name[64];
                if (!t || t->n_dims < 1 || t->n_dims > 4 || t->nbytes == 0 || !INSIDE(t->data, t->nbytes, data, size) ||
                    !INSIDE(t->name.p, t->name.len, data, size) || t->name.len >= sizeof name)
                        abort();
                touch(t->data, t->nbytes);
                memcpy(name, t->name.p, t->name.len);
                name[t->name.len] = 0;
                if (gguf_find_tensor(f, name) != t)
                        abort();
                /* No two tensors share bytes. */
                for (int64_t j = 0; j < i && j < 64; j++) {
                        const gguf_tensor *u = gguf_tensor_at(f, j);
                        const uint8_t *a = t->data, *c = u->data;
                        if (a < c + u->nbytes && c < a + t->nbytes)
                                abort();
                }
        }
        if (gguf_tensor_at(f, gguf_n_tensors(f)) || gguf_tensor_at(f, -1))
                abort();
        gguf_close(f);
        return 0;
}
