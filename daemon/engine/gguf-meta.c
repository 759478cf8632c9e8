/* SPDX-License-Identifier: MIT */
/* GGUF metadata accessors: typed, tolerant getters over the parsed records.
 *
 * Integers are read as (sign, 64-bit pattern) and then range-checked for
 * the width asked for, so a hyperparameter written as UINT8, INT32 or UINT64
 * reads the same; floats come from FLOAT32 or FLOAT64.  All values are
 * little-endian and possibly unaligned in the file: memcpy, then convert. */

#include <endian.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "gguf-internal.h"
#include "macro.h"

static const gguf_kv *kv_by_name(const gguf_file *f, const char *key) {
        int64_t i;
        if (!f || !key)
                return NULL;
        i = gguf_lookup_key(f, key, strlen(key));
        return i < 0 ? NULL : &f->kv[i];
}

static const gguf_kv *kv_by_index(const gguf_file *f, int64_t idx) {
        if (!f || idx < 0 || idx >= f->n_kv)
                return NULL;
        return &f->kv[idx];
}

/* ---- single values ---- */

/* An integer of type t at p: *neg tells whether it is negative, *u holds its
 * 64-bit two's complement pattern. */
static int read_int(gguf_type t, const uint8_t *p, bool *neg, uint64_t *u) {
        uint16_t v16;
        uint32_t v32;
        uint64_t v64;

        *neg = false;
        switch (t) {
        case GGUF_TYPE_UINT8:
        case GGUF_TYPE_BOOL:
                *u = p[0];
                return 0;
        case GGUF_TYPE_INT8:
                *u = (uint64_t) (int64_t) (int8_t) p[0];
                *neg = (int8_t) p[0] < 0;
                return 0;
        case GGUF_TYPE_UINT16:
                memcpy(&v16, p, 2);
                *u = le16toh(v16);
                return 0;
        case GGUF_TYPE_INT16:
                memcpy(&v16, p, 2);
                *u = (uint64_t) (int64_t) (int16_t) le16toh(v16);
                *neg = (int16_t) le16toh(v16) < 0;
                return 0;
        case GGUF_TYPE_UINT32:
                memcpy(&v32, p, 4);
                *u = le32toh(v32);
                return 0;
        case GGUF_TYPE_INT32:
                memcpy(&v32, p, 4);
                *u = (uint64_t) (int64_t) (int32_t) le32toh(v32);
                *neg = (int32_t) le32toh(v32) < 0;
                return 0;
        case GGUF_TYPE_UINT64:
                memcpy(&v64, p, 8);
                *u = le64toh(v64);
                return 0;
        case GGUF_TYPE_INT64:
                memcpy(&v64, p, 8);
                *u = le64toh(v64);
                *neg = (int64_t) *u < 0;
                return 0;
        default:
                return -EINVAL;
        }
}

static int int_to_u64(gguf_type t, const uint8_t *p, uint64_t *ret) {
        bool neg;
        uint64_t u;
        int r = read_int(t, p, &neg, &u);
        if (r < 0)
                return r;
        if (neg)
                return -ERANGE;
        *ret = u;
        return 0;
}

static int int_to_i64(gguf_type t, const uint8_t *p, int64_t *ret) {
        bool neg;
        uint64_t u;
        int r = read_int(t, p, &neg, &u);
        if (r < 0)
                return r;
        if (!neg && u > INT64_MAX)
                return -ERANGE;
        *ret = (int64_t) u;
        return 0;
}

static int float_to_f32(gguf_type t, const uint8_t *p, float *ret) {
        if (t == GGUF_TYPE_FLOAT32) {
                union { uint32_t u; float f; } v;
                memcpy(&v.u, p, 4);
                v.u = le32toh(v.u);
                *ret = v.f;
                return 0;
        }
        if (t == GGUF_TYPE_FLOAT64) {
                union { uint64_t u; double d; } v;
                memcpy(&v.u, p, 8);
                v.u = le64toh(v.u);
                /* inf and NaN are kept; a finite double beyond float is not. */
                if (isfinite(v.d) && fabs(v.d) > FLT_MAX)
                        return -ERANGE;
                *ret = (float) v.d;
                return 0;
        }
        return -EINVAL;
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *ret) {
        const gguf_kv *kv = kv_by_name(f, key);
        if (!kv)
                return -ENOENT;
        return int_to_u64(kv->type, kv->value, ret);
}

int gguf_get_i64(const gguf_file *f, const char *key, int64_t *ret) {
        const gguf_kv *kv = kv_by_name(f, key);
        if (!kv)
                return -ENOENT;
        return int_to_i64(kv->type, kv->value, ret);
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *ret) {
        uint64_t v;
        int r = gguf_get_u64(f, key, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t) v;
        return 0;
}

int gguf_get_i32(const gguf_file *f, const char *key, int32_t *ret) {
        int64_t v;
        int r = gguf_get_i64(f, key, &v);
        if (r < 0)
                return r;
        if (v < INT32_MIN || v > INT32_MAX)
                return -ERANGE;
        *ret = (int32_t) v;
        return 0;
}

int gguf_get_f32(const gguf_file *f, const char *key, float *ret) {
        const gguf_kv *kv = kv_by_name(f, key);
        if (!kv)
                return -ENOENT;
        return float_to_f32(kv->type, kv->value, ret);
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *ret) {
        const gguf_kv *kv = kv_by_name(f, key);
        uint64_t v;
        int r;

        if (!kv)
                return -ENOENT;
        if (kv->type == GGUF_TYPE_BOOL) {
                *ret = kv->value[0] != 0; /* like llama.cpp: any non-zero byte */
                return 0;
        }
        r = int_to_u64(kv->type, kv->value, &v);
        if (r < 0)
                return r;
        if (v > 1)
                return -ERANGE;
        *ret = v;
        return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *ret) {
        const gguf_kv *kv = kv_by_name(f, key);
        if (!kv)
                return -ENOENT;
        if (kv->type != GGUF_TYPE_STRING)
                return -EINVAL;
        *ret = (gguf_str) { .p = (const char *) kv->value, .len = kv->n };
        return 0;
}

/* ---- arrays ---- */

static int arr_info(const gguf_kv *kv, gguf_type *elem_type, uint64_t *n, const void **data) {
        if (!kv)
                return -ENOENT;
        if (kv->type != GGUF_TYPE_ARRAY)
                return -EINVAL;
        if (elem_type)
                *elem_type = kv->elem_type;
        if (n)
                *n = kv->n;
        if (data)
                *data = kv->elem_type == GGUF_TYPE_STRING ? NULL : kv->value;
        return 0;
}

static int arr_str(const gguf_kv *kv, uint64_t i, gguf_str *ret) {
        uint64_t len;

        if (!kv)
                return -ENOENT;
        if (kv->type != GGUF_TYPE_ARRAY || kv->elem_type != GGUF_TYPE_STRING)
                return -EINVAL;
        if (i >= kv->n)
                return -ERANGE;
        memcpy(&len, kv->strs[i], 8); /* checked by the parser */
        *ret = (gguf_str) { .p = (const char *) kv->strs[i] + 8, .len = le64toh(len) };
        return 0;
}

/* Element i of a fixed-size array, or NULL with *r set. */
static const uint8_t *arr_elem(const gguf_kv *kv, uint64_t i, int *r) {
        if (!kv) {
                *r = -ENOENT;
                return NULL;
        }
        if (kv->type != GGUF_TYPE_ARRAY || kv->elem_type == GGUF_TYPE_STRING) {
                *r = -EINVAL;
                return NULL;
        }
        if (i >= kv->n) {
                *r = -ERANGE;
                return NULL;
        }
        return kv->value + i * gguf_type_size(kv->elem_type);
}

static int arr_i64(const gguf_kv *kv, uint64_t i, int64_t *ret) {
        int r = 0;
        const uint8_t *p = arr_elem(kv, i, &r);
        if (!p)
                return r;
        return int_to_i64(kv->elem_type, p, ret);
}

static int arr_f32(const gguf_kv *kv, uint64_t i, float *ret) {
        int r = 0;
        const uint8_t *p = arr_elem(kv, i, &r);
        if (!p)
                return r;
        return float_to_f32(kv->elem_type, p, ret);
}

int gguf_get_arr(const gguf_file *f, const char *key, gguf_type *elem_type, uint64_t *n, const void **data) {
        return arr_info(kv_by_name(f, key), elem_type, n, data);
}

int gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t i, gguf_str *ret) {
        return arr_str(kv_by_name(f, key), i, ret);
}

int gguf_get_arr_i64(const gguf_file *f, const char *key, uint64_t i, int64_t *ret) {
        return arr_i64(kv_by_name(f, key), i, ret);
}

int gguf_get_arr_f32(const gguf_file *f, const char *key, uint64_t i, float *ret) {
        return arr_f32(kv_by_name(f, key), i, ret);
}

int gguf_get_i64_at(const gguf_file *f, const char *key, uint64_t i, int64_t *ret) {
        const gguf_kv *kv = kv_by_name(f, key);
        if (kv && kv->type != GGUF_TYPE_ARRAY)
                return int_to_i64(kv->type, kv->value, ret);
        return arr_i64(kv, i, ret);
}

int gguf_get_f32_at(const gguf_file *f, const char *key, uint64_t i, float *ret) {
        const gguf_kv *kv = kv_by_name(f, key);
        if (kv && kv->type != GGUF_TYPE_ARRAY)
                return float_to_f32(kv->type, kv->value, ret);
        return arr_f32(kv, i, ret);
}

int gguf_kv_arr(const gguf_file *f, int64_t idx, gguf_type *elem_type, uint64_t *n, const void **data) {
        return arr_info(kv_by_index(f, idx), elem_type, n, data);
}

int gguf_kv_arr_str(const gguf_file *f, int64_t idx, uint64_t i, gguf_str *ret) {
        return arr_str(kv_by_index(f, idx), i, ret);
}

int gguf_kv_arr_i64(const gguf_file *f, int64_t idx, uint64_t i, int64_t *ret) {
        return arr_i64(kv_by_index(f, idx), i, ret);
}

int gguf_kv_arr_f32(const gguf_file *f, int64_t idx, uint64_t i, float *ret) {
        return arr_f32(kv_by_index(f, idx), i, ret);
}

/* ---- keys by index ---- */

int64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }

int gguf_find_key(const gguf_file *f, const char *key) {
        if (!f || !key)
                return -EINVAL;
        return (int) gguf_lookup_key(f, key, strlen(key));
}

gguf_str gguf_key_name(const gguf_file *f, int64_t idx) {
        const gguf_kv *kv = kv_by_index(f, idx);
        return kv ? kv->key : (gguf_str) { .p = "", .len = 0 };
}

gguf_type gguf_key_type(const gguf_file *f, int64_t idx) {
        const gguf_kv *kv = kv_by_index(f, idx);
        return kv ? kv->type : _GGUF_TYPE_MAX;
}
