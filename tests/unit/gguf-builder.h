/* SPDX-License-Identifier: MIT */
/* A tiny in-memory GGUF writer for tests: appends little-endian fields to a
 * growable buffer, so tests can build valid files and then break them in
 * precise ways (nothing binary needs to be committed). */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gb {
        uint8_t *p;
        size_t n, cap;
} gb;

static inline void gb_bytes(gb *b, const void *data, size_t n) {
        if (b->n + n > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap < b->n + n)
                        cap *= 2;
                b->p = realloc(b->p, cap);
                if (!b->p) {
                        fprintf(stderr, "gguf-builder: out of memory\n");
                        exit(1);
                }
                b->cap = cap;
        }
        if (n > 0)
                memcpy(b->p + b->n, data, n);
        b->n += n;
}

static inline void gb_free(gb *b) {
        free(b->p);
        *b = (gb) { 0 };
}

static inline void gb_u8(gb *b, uint8_t v) { gb_bytes(b, &v, 1); }
static inline void gb_u16(gb *b, uint16_t v) { gb_bytes(b, (uint8_t[2]) { v, v >> 8 }, 2); }
static inline void gb_u32(gb *b, uint32_t v) {
        for (int i = 0; i < 4; i++)
                gb_u8(b, (uint8_t) (v >> (8 * i)));
}
static inline void gb_u64(gb *b, uint64_t v) {
        for (int i = 0; i < 8; i++)
                gb_u8(b, (uint8_t) (v >> (8 * i)));
}
static inline void gb_f32(gb *b, float f) {
        uint32_t u;
        memcpy(&u, &f, 4);
        gb_u32(b, u);
}
static inline void gb_f64(gb *b, double d) {
        uint64_t u;
        memcpy(&u, &d, 8);
        gb_u64(b, u);
}
static inline void gb_zeros(gb *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                gb_u8(b, 0);
}
static inline void gb_pad(gb *b, size_t align) {
        while (b->n % align)
                gb_u8(b, 0);
}

/* gguf_string */
static inline void gb_strn(gb *b, const char *s, size_t n) {
        gb_u64(b, n);
        gb_bytes(b, s, n);
}
static inline void gb_str(gb *b, const char *s) { gb_strn(b, s, strlen(s)); }

static inline void gb_header(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
        gb_bytes(b, "GGUF", 4);
        gb_u32(b, version);
        gb_u64(b, n_tensors);
        gb_u64(b, n_kv);
}

/* Key/value records: key, type, then the caller's value (or these helpers). */
static inline void gb_key(gb *b, const char *key, uint32_t type) {
        gb_str(b, key);
        gb_u32(b, type);
}
static inline void gb_kv_u32(gb *b, const char *key, uint32_t v) {
        gb_key(b, key, 4);
        gb_u32(b, v);
}
static inline void gb_kv_str(gb *b, const char *key, const char *v) {
        gb_key(b, key, 8);
        gb_str(b, v);
}
/* Array header: elements follow. */
static inline void gb_kv_arr(gb *b, const char *key, uint32_t elem_type, uint64_t n) {
        gb_key(b, key, 9);
        gb_u32(b, elem_type);
        gb_u64(b, n);
}

/* Tensor-info record; ne has n_dims entries. */
static inline void gb_tensor(gb *b, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type,
                             uint64_t offset) {
        gb_str(b, name);
        gb_u32(b, n_dims);
        for (uint32_t i = 0; i < n_dims; i++)
                gb_u64(b, (uint64_t) ne[i]);
        gb_u32(b, type);
        gb_u64(b, offset);
}

/* Overwrite fields of an already written buffer. */
static inline void gb_put_u32(gb *b, size_t at, uint32_t v) {
        for (int i = 0; i < 4; i++)
                b->p[at + i] = (uint8_t) (v >> (8 * i));
}
static inline void gb_put_u64(gb *b, size_t at, uint64_t v) {
        for (int i = 0; i < 8; i++)
                b->p[at + i] = (uint8_t) (v >> (8 * i));
}
