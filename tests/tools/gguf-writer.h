/* SPDX-License-Identifier: MIT */
/* A small GGUF v3 writer for the model generator (specs/gguf.md §1).
 *
 * Metadata and tensor infos are collected in memory (they are small: even a
 * 128k-token vocabulary is a few MiB); tensor data is not: the caller
 * streams it to the offsets this writer hands out, packed in info order as
 * llama.cpp requires. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

#define MK_GGUF_ALIGN 32

typedef struct mk_gguf mk_gguf;

int mk_gguf_new(mk_gguf **ret);
void mk_gguf_free(mk_gguf *w);

/* Key/value records, in the order they are added. */
void mk_gguf_kv_str(mk_gguf *w, const char *key, const char *val);
void mk_gguf_kv_u32(mk_gguf *w, const char *key, uint32_t val);
void mk_gguf_kv_f32(mk_gguf *w, const char *key, float val);
void mk_gguf_kv_bool(mk_gguf *w, const char *key, bool val);
/* An array: begin, then exactly n elements of elem_type. */
void mk_gguf_arr_begin(mk_gguf *w, const char *key, gguf_type elem_type, uint64_t n);
void mk_gguf_arr_str(mk_gguf *w, const char *s);
void mk_gguf_arr_f32(mk_gguf *w, float v);
void mk_gguf_arr_i32(mk_gguf *w, int32_t v);
void mk_gguf_arr_bool(mk_gguf *w, bool v);

/* A tensor info; *offset gets its place from the start of the data section
 * and *nbytes its size.  -EINVAL for a bad shape or type. */
int mk_gguf_add_tensor(mk_gguf *w, const char *name, int n_dims, const int64_t ne[4], uint32_t type,
                       uint64_t *offset, uint64_t *nbytes);

/* pwrite(2) all n bytes at off, retrying short writes and EINTR; 0 or -errno. */
int mk_pwrite_all(int fd, const void *p, size_t n, uint64_t off);

/* Write header, metadata, tensor infos and padding at the start of fd, and
 * size the file to hold the whole data section (left as a hole for the
 * caller to fill).  *data_start gets the file offset of the data section.
 * -ENOMEM if an earlier append ran out of memory. */
int mk_gguf_write_header(mk_gguf *w, int fd, uint64_t *data_start);
