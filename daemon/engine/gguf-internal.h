/* SPDX-License-Identifier: MIT */
/* The parsed form of a GGUF file, shared by the parser (gguf.c) and the
 * metadata accessors (gguf-meta.c).  Everything points into the file. */
#pragma once

#include "gguf.h"

typedef struct gguf_kv {
        gguf_str key;
        gguf_type type;
        gguf_type elem_type;   /* ARRAY: element type */
        uint64_t n;            /* ARRAY: element count; STRING: length */
        const uint8_t *value;  /* scalar bytes; STRING: its bytes; ARRAY: first element */
        const uint8_t **strs;  /* ARRAY of STRING: the length prefix of each element */
} gguf_kv;

struct gguf_file {
        const uint8_t *base; /* the whole file */
        size_t size;
        bool mapped; /* base is our mmap (gguf_open_fd/path) */

        uint32_t version;
        size_t alignment;
        uint64_t data_start; /* offset of the tensor data section */

        int64_t n_kv;
        gguf_kv *kv;
        uint32_t *kv_by_name; /* kv indices sorted by key, for lookups */

        int64_t n_tensors;
        gguf_tensor *tensors;
        uint32_t *tensor_by_name;
};

/* Byte size of one element of a fixed-size gguf type, 0 for STRING/ARRAY. */
size_t gguf_type_size(gguf_type t);
/* Index of key (length len) in f->kv, or -ENOENT. */
int64_t gguf_lookup_key(const gguf_file *f, const char *key, size_t len);
