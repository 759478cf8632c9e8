/* SPDX-License-Identifier: MIT */
/* A defensive GGUF v2/v3 reader (../shared/specs/gguf.md).
 *
 * The file is mapped read-only and shared; every count, length, dimension,
 * type, offset and size is checked against the file before anything uses it.
 * Nothing returned points outside the mapping.  Strings in a GGUF are not
 * NUL-terminated: they come back as (pointer, length) pairs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gguf_type {
        GGUF_TYPE_UINT8 = 0,
        GGUF_TYPE_INT8 = 1,
        GGUF_TYPE_UINT16 = 2,
        GGUF_TYPE_INT16 = 3,
        GGUF_TYPE_UINT32 = 4,
        GGUF_TYPE_INT32 = 5,
        GGUF_TYPE_FLOAT32 = 6,
        GGUF_TYPE_BOOL = 7,
        GGUF_TYPE_STRING = 8,
        GGUF_TYPE_ARRAY = 9,
        GGUF_TYPE_UINT64 = 10,
        GGUF_TYPE_INT64 = 11,
        GGUF_TYPE_FLOAT64 = 12,
        _GGUF_TYPE_MAX,
} gguf_type;

typedef struct gguf_str {
        const char *p; /* not NUL-terminated */
        uint64_t len;
} gguf_str;

typedef struct gguf_tensor {
        gguf_str name;
        uint32_t n_dims;   /* 1..4 */
        int64_t ne[4];     /* element counts, ne[0] innermost; missing dims are 1 */
        uint32_t type;     /* ggml type id, see tensor-type.h */
        uint64_t offset;   /* from the start of the data section */
        uint64_t nbytes;   /* checked to lie inside the file */
        const void *data;  /* into the mapping, at a file offset aligned for its blocks
                            * (the largest power of two dividing the block size, <= 8) */
} gguf_tensor;

/* Immutable once opened: any number of threads may read it concurrently. */
typedef struct gguf_file gguf_file;

/* Open and validate.  On failure returns -errno (-EBADMSG for a malformed
 * file, -EPROTONOSUPPORT for another GGUF version) and writes a sentence
 * naming the key or tensor at fault into err (when err is not NULL).
 * gguf_open_fd does not take the fd: the mapping outlives it.  Once open,
 * keys and tensor names are non-empty with no NUL byte (tensor names under
 * 64 bytes), both unique, and tensors lie in the file without overlapping. */
int gguf_open_fd(int fd, gguf_file **ret, char *err, size_t errlen);
int gguf_open_path(const char *path, gguf_file **ret, char *err, size_t errlen);
/* Validate a buffer the caller keeps alive (fuzzing, tests); no copy. */
int gguf_open_memory(const void *data, size_t size, gguf_file **ret, char *err, size_t errlen);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
size_t gguf_alignment(const gguf_file *f);
const void *gguf_file_data(const gguf_file *f, size_t *size); /* the whole mapping */

/* Metadata.  Lookups return -ENOENT when the key is absent, -EINVAL when it
 * has a type that cannot be converted, -ERANGE when the value does not fit
 * (or, for arrays, the element index is out of range). */
int64_t gguf_n_kv(const gguf_file *f);
int gguf_find_key(const gguf_file *f, const char *key); /* index >= 0 or -ENOENT */
gguf_str gguf_key_name(const gguf_file *f, int64_t idx);
gguf_type gguf_key_type(const gguf_file *f, int64_t idx); /* _GGUF_TYPE_MAX if out of range */

/* Integer getters accept any integer type (and BOOL) whose value fits. */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *ret);
int gguf_get_i32(const gguf_file *f, const char *key, int32_t *ret);
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *ret);
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *ret);
/* Float getter accepts FLOAT32 and FLOAT64. */
int gguf_get_f32(const gguf_file *f, const char *key, float *ret);
int gguf_get_bool(const gguf_file *f, const char *key, bool *ret);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *ret);

/* Arrays.  gguf_get_arr gives the element type and count; for fixed-size
 * element types *data points at the packed little-endian elements (NULL for
 * strings).  Metadata has no alignment: *data may be misaligned for its
 * type, so read elements with memcpy or the accessors below. */
int gguf_get_arr(const gguf_file *f, const char *key, gguf_type *elem_type, uint64_t *n, const void **data);
/* Element i of a string array: O(1) (the reader indexes string arrays). */
int gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t i, gguf_str *ret);
/* Element i of a numeric array, converted like the scalar getters. */
int gguf_get_arr_i64(const gguf_file *f, const char *key, uint64_t i, int64_t *ret);
int gguf_get_arr_f32(const gguf_file *f, const char *key, uint64_t i, float *ret);

/* A key that may be a scalar or an array (gemma3n.feed_forward_length is an
 * INT32 array, one entry per layer; Gemma 3's is a UINT32 scalar): a scalar
 * gives its value for any i, an array its element i (-ERANGE past the end). */
int gguf_get_i64_at(const gguf_file *f, const char *key, uint64_t i, int64_t *ret);
int gguf_get_f32_at(const gguf_file *f, const char *key, uint64_t i, float *ret);

/* The same array accessors by key index (gguf_find_key), for loops over
 * large arrays such as a vocabulary. */
int gguf_kv_arr(const gguf_file *f, int64_t idx, gguf_type *elem_type, uint64_t *n, const void **data);
int gguf_kv_arr_str(const gguf_file *f, int64_t idx, uint64_t i, gguf_str *ret);
int gguf_kv_arr_i64(const gguf_file *f, int64_t idx, uint64_t i, int64_t *ret);
int gguf_kv_arr_f32(const gguf_file *f, int64_t idx, uint64_t i, float *ret);

/* "UINT32", "STRING", ... ("?" for an unknown id), for messages. */
const char *gguf_type_name(gguf_type t);

/* Tensors. */
int64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t idx);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name); /* NULL if absent */

/* Compare a gguf_str with a C string. */
bool gguf_str_eq(gguf_str s, const char *c);
