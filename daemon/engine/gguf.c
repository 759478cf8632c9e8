/* SPDX-License-Identifier: MIT */
/* GGUF v2/v3 reader: map, parse, validate (shared/specs/gguf.md §1).
 *
 * The file is hostile until proven otherwise.  Every read goes through a
 * cursor that knows how many bytes are left; every count is checked against
 * those bytes (count × smallest record ≤ left) before anything is allocated,
 * so memory stays proportional to the file; sizes are multiplied with
 * overflow checks and ranges are compared by subtraction, never by forming
 * a sum that could wrap.  The first problem found is reported in one
 * sentence naming the key or tensor at fault. */

#include <ctype.h>
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf-internal.h"
#include "macro.h"
#include "tensor-type.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ALIGNMENT (UINT32_C(1) << 24) /* no real file needs more than a page */
#define GGUF_MAX_KEY_LEN (UINT64_C(1) << 20)
#define GGUF_MAX_STRING_LEN (UINT64_C(1) << 30) /* llama.cpp's limits */
#define GGUF_MAX_ARRAY_LEN (UINT64_C(1) << 30)
#define GGUF_MAX_NAME 64 /* tensor names are shorter (ggml's GGML_MAX_NAME) */
#define GGUF_MAX_DIMS 4
#define HEADER_SIZE 24                /* magic, version, n_tensors, n_kv */
#define KV_MIN_SIZE (8 + 0 + 4 + 1)   /* key length, key, type, 1-byte value */
#define TENSOR_MIN_SIZE (8 + 4 + 8 + 4 + 8) /* name length, n_dims, ne[0], type, offset */

static const char *const gguf_type_names[_GGUF_TYPE_MAX] = {
        "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
        "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
};

const char *gguf_type_name(gguf_type t) {
        return (unsigned) t < _GGUF_TYPE_MAX ? gguf_type_names[t] : "?";
}

size_t gguf_type_size(gguf_type t) {
        static const uint8_t sizes[_GGUF_TYPE_MAX] = {
                [GGUF_TYPE_UINT8] = 1,   [GGUF_TYPE_INT8] = 1,   [GGUF_TYPE_UINT16] = 2,
                [GGUF_TYPE_INT16] = 2,   [GGUF_TYPE_UINT32] = 4, [GGUF_TYPE_INT32] = 4,
                [GGUF_TYPE_FLOAT32] = 4, [GGUF_TYPE_BOOL] = 1,   [GGUF_TYPE_UINT64] = 8,
                [GGUF_TYPE_INT64] = 8,   [GGUF_TYPE_FLOAT64] = 8,
        };
        return (unsigned) t < _GGUF_TYPE_MAX ? sizes[t] : 0;
}

/* ---- a bounds-checked cursor ---- */

typedef struct parser {
        const uint8_t *base;
        size_t size;
        size_t pos; /* always <= size */
        char *err;
        size_t errlen;
} parser;

static size_t left(const parser *p) { return p->size - p->pos; }

static bool take(parser *p, uint64_t n, const uint8_t **ret) {
        if (n > left(p))
                return false;
        *ret = p->base + p->pos;
        p->pos += n;
        return true;
}

static bool read_u32(parser *p, uint32_t *ret) {
        const uint8_t *b;
        uint32_t v;
        if (!take(p, 4, &b))
                return false;
        memcpy(&v, b, 4);
        *ret = le32toh(v);
        return true;
}

static bool read_u64(parser *p, uint64_t *ret) {
        const uint8_t *b;
        uint64_t v;
        if (!take(p, 8, &b))
                return false;
        memcpy(&v, b, 8);
        *ret = le64toh(v);
        return true;
}

/* A name from the file, printable in an error message: non-printable bytes
 * escaped, long names cut. */
#define PRETTY_MAX 96
static const char *pretty(gguf_str s, char buf[static PRETTY_MAX]) {
        size_t o = 0;
        for (uint64_t i = 0; i < s.len; i++) {
                unsigned char c = (unsigned char) s.p[i];
                if (o + 8 >= PRETTY_MAX) {
                        memcpy(buf + o, "...", 4);
                        return buf;
                }
                if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
                        buf[o++] = (char) c;
                else
                        o += (size_t) snprintf(buf + o, PRETTY_MAX - o, "\\x%02x", c);
        }
        buf[o] = 0;
        return buf;
}

/* Reads a gguf_string: a u64 length (<= max) and that many bytes.  what
 * names the string in messages ("key #3", "key 'a.b'", ...). */
static int read_str(parser *p, uint64_t max, const char *what, gguf_str *ret) {
        uint64_t len;
        const uint8_t *b;
        size_t at = p->pos;

        if (!read_u64(p, &len))
                return set_error(p->err, p->errlen, -EBADMSG,
                                 "%s: file truncated in a string length at offset %zu", what, at);
        if (len > left(p))
                return set_error(p->err, p->errlen, -EBADMSG,
                                 "%s: string length %" PRIu64 " at offset %zu exceeds the %zu bytes left", what,
                                 len, at, left(p));
        if (len > max)
                return set_error(p->err, p->errlen, -EBADMSG,
                                 "%s: string length %" PRIu64 " at offset %zu exceeds the limit of %" PRIu64, what,
                                 len, at, max);
        (void) take(p, len, &b);
        *ret = (gguf_str) { .p = (const char *) b, .len = len };
        return 0;
}

/* ---- key/value records ---- */

static int parse_array(parser *p, gguf_kv *kv, const char *name) {
        uint32_t et;
        uint64_t n;
        size_t esz;

        if (!read_u32(p, &et) || !read_u64(p, &n))
                return set_error(p->err, p->errlen, -EBADMSG, "key '%s': file truncated in the array header", name);
        if (et == GGUF_TYPE_ARRAY)
                return set_error(p->err, p->errlen, -EBADMSG, "key '%s': nested arrays are not supported", name);
        if (et >= _GGUF_TYPE_MAX)
                return set_error(p->err, p->errlen, -EBADMSG, "key '%s': unknown array element type %" PRIu32,
                                 name, et);
        if (n > GGUF_MAX_ARRAY_LEN)
                return set_error(p->err, p->errlen, -EBADMSG,
                                 "key '%s': array of %" PRIu64 " elements exceeds the limit of 2^30", name, n);

        kv->elem_type = et;
        kv->n = n;
        kv->value = p->base + p->pos;
        /* A string element takes at least its 8-byte length. */
        esz = et == GGUF_TYPE_STRING ? 8 : gguf_type_size(et);
        if (n > left(p) / esz)
                return set_error(p->err, p->errlen, -EBADMSG,
                                 "key '%s': array of %" PRIu64 " %s elements does not fit in the %zu bytes left",
                                 name, n, gguf_type_name(et), left(p));

        if (et != GGUF_TYPE_STRING) {
                const uint8_t *b;
                (void) take(p, n * esz, &b);
                return 0;
        }

        /* Walk the elements first, checking each length (the loop runs once
         * per vocabulary entry: a message is only formatted for a bad one);
         * only an array that is whole gets its index, so that element i is
         * found in O(1). */
        const uint8_t *start = p->base + p->pos;
        for (uint64_t i = 0; i < n; i++) {
                size_t at = p->pos;
                uint64_t len;

                if (!read_u64(p, &len) || len > left(p) || len > GGUF_MAX_STRING_LEN) {
                        char what[PRETTY_MAX + 64];
                        gguf_str s;
                        p->pos = at;
                        snprintf(what, sizeof what, "key '%s' element %" PRIu64, name, i);
                        return read_str(p, GGUF_MAX_STRING_LEN, what, &s);
                }
                p->pos += len;
        }
        if (n == 0)
                return 0;
        kv->strs = malloc(n * sizeof(*kv->strs));
        if (!kv->strs)
                return set_error(p->err, p->errlen, -ENOMEM, "key '%s': out of memory", name);
        for (uint64_t i = 0; i < n; i++) {
                uint64_t len;
                kv->strs[i] = start;
                memcpy(&len, start, 8);
                start += 8 + le64toh(len);
        }
        return 0;
}

static int parse_kv(parser *p, int64_t idx, gguf_kv *kv) {
        char what[64], name[PRETTY_MAX];
        uint32_t type;
        int r;

        snprintf(what, sizeof what, "key #%" PRId64, idx);
        r = read_str(p, GGUF_MAX_KEY_LEN, what, &kv->key);
        if (r < 0)
                return r;
        if (kv->key.len == 0)
                return set_error(p->err, p->errlen, -EBADMSG, "key #%" PRId64 ": empty name", idx);
        pretty(kv->key, name);
        if (memchr(kv->key.p, 0, kv->key.len))
                return set_error(p->err, p->errlen, -EBADMSG, "key '%s': name contains a NUL byte", name);

        if (!read_u32(p, &type))
                return set_error(p->err, p->errlen, -EBADMSG, "key '%s': file truncated before its type", name);
        if (type >= _GGUF_TYPE_MAX)
                return set_error(p->err, p->errlen, -EBADMSG, "key '%s': unknown value type %" PRIu32, name, type);
        kv->type = type;

        switch (type) {
        case GGUF_TYPE_STRING: {
                char w[PRETTY_MAX + 16];
                gguf_str s;
                snprintf(w, sizeof w, "key '%s'", name);
                r = read_str(p, GGUF_MAX_STRING_LEN, w, &s);
                if (r < 0)
                        return r;
                kv->value = (const uint8_t *) s.p;
                kv->n = s.len;
                return 0;
        }
        case GGUF_TYPE_ARRAY:
                return parse_array(p, kv, name);
        default:
                if (!take(p, gguf_type_size(type), &kv->value))
                        return set_error(p->err, p->errlen, -EBADMSG, "key '%s': file truncated in its %s value",
                                         name, gguf_type_name(type));
                return 0;
        }
}

/* ---- sorting and duplicate detection ---- */

static int str_cmp(gguf_str a, gguf_str b) {
        int c = memcmp(a.p, b.p, MIN(a.len, b.len));
        if (c != 0)
                return c;
        return a.len < b.len ? -1 : a.len > b.len;
}

static int kv_cmp(const void *a, const void *b, void *userdata) {
        const gguf_file *f = userdata;
        return str_cmp(f->kv[*(const uint32_t *) a].key, f->kv[*(const uint32_t *) b].key);
}

static int tensor_name_cmp(const void *a, const void *b, void *userdata) {
        const gguf_file *f = userdata;
        return str_cmp(f->tensors[*(const uint32_t *) a].name, f->tensors[*(const uint32_t *) b].name);
}

static int tensor_offset_cmp(const void *a, const void *b, void *userdata) {
        const gguf_file *f = userdata;
        uint64_t x = f->tensors[*(const uint32_t *) a].offset, y = f->tensors[*(const uint32_t *) b].offset;
        return x < y ? -1 : x > y;
}

static uint32_t *sorted_index(int64_t n, int (*cmp)(const void *, const void *, void *), gguf_file *f) {
        uint32_t *idx = malloc(MAX(n, 1) * sizeof(uint32_t));
        if (!idx)
                return NULL;
        for (int64_t i = 0; i < n; i++)
                idx[i] = (uint32_t) i;
        qsort_r(idx, (size_t) n, sizeof(uint32_t), cmp, f);
        return idx;
}

/* ---- tensor-info records ---- */

static int parse_tensor(parser *p, int64_t idx, gguf_tensor *t) {
        char what[64], name[PRETTY_MAX];
        uint32_t n_dims, type;
        int r;

        snprintf(what, sizeof what, "tensor #%" PRId64, idx);
        r = read_str(p, GGUF_MAX_STRING_LEN, what, &t->name);
        if (r < 0)
                return r;
        if (t->name.len == 0)
                return set_error(p->err, p->errlen, -EBADMSG, "tensor #%" PRId64 ": empty name", idx);
        pretty(t->name, name);
        if (t->name.len >= GGUF_MAX_NAME)
                return set_error(p->err, p->errlen, -EBADMSG,
                                 "tensor '%s': name of %" PRIu64 " bytes is longer than %d", name, t->name.len,
                                 GGUF_MAX_NAME - 1);
        if (memchr(t->name.p, 0, t->name.len))
                return set_error(p->err, p->errlen, -EBADMSG, "tensor '%s': name contains a NUL byte", name);

        if (!read_u32(p, &n_dims))
                return set_error(p->err, p->errlen, -EBADMSG, "tensor '%s': file truncated before n_dims", name);
        if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
                return set_error(p->err, p->errlen, -EBADMSG, "tensor '%s': n_dims %" PRIu32 " is not in 1..%d",
                                 name, n_dims, GGUF_MAX_DIMS);
        t->n_dims = n_dims;
        for (uint32_t i = 0; i < GGUF_MAX_DIMS; i++) {
                uint64_t v = 1;
                if (i < n_dims && !read_u64(p, &v))
                        return set_error(p->err, p->errlen, -EBADMSG, "tensor '%s': file truncated in ne[%" PRIu32 "]",
                                         name, i);
                if (v < 1 || v > INT64_MAX)
                        return set_error(p->err, p->errlen, -EBADMSG,
                                         "tensor '%s': ne[%" PRIu32 "] = %" PRId64 " is not a positive count", name, i,
                                         (int64_t) v);
                t->ne[i] = (int64_t) v;
        }
        if (!read_u32(p, &type) || !read_u64(p, &t->offset))
                return set_error(p->err, p->errlen, -EBADMSG, "tensor '%s': file truncated in type or offset", name);
        t->type = type;
        return 0;
}

/* Size of a tensor: (ne[0]/blck)·tsz bytes per row (tensor-type.c knows
 * every ggml type's block), times the other dims, each product checked; the
 * total must fit in int64 (like ggml) so that padding it to the alignment
 * cannot wrap either. */
static int tensor_nbytes(parser *p, gguf_tensor *t) {
        char name[PRETTY_MAX];
        const type_traits *tt = type_traits_get(t->type);
        int64_t nel = t->ne[0];
        size_t row;
        uint64_t nbytes;

        pretty(t->name, name);
        if (!tt)
                return set_error(p->err, p->errlen, -EBADMSG, "tensor '%s': unknown tensor type id %" PRIu32, name,
                                 t->type);
        if (t->ne[0] % tt->block_size != 0)
                return set_error(p->err, p->errlen, -EBADMSG,
                                 "tensor '%s': ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRIu32,
                                 name, t->ne[0], tt->name, tt->block_size);
        if (type_row_size(t->type, t->ne[0], &row) < 0 || row > INT64_MAX)
                goto overflow;
        nbytes = row;
        for (int i = 1; i < GGUF_MAX_DIMS; i++) {
                if (MUL_OVERFLOW(nel, t->ne[i], &nel) || MUL_OVERFLOW(nbytes, (uint64_t) t->ne[i], &nbytes) ||
                    nbytes > INT64_MAX)
                        goto overflow;
        }
        if (nbytes > SIZE_MAX)
                goto overflow;
        t->nbytes = nbytes;
        return 0;
overflow:
        return set_error(p->err, p->errlen, -EBADMSG,
                         "tensor '%s': element count or byte size (%" PRId64 " x %" PRId64 " x %" PRId64 " x %" PRId64
                         " of %s) overflows 63 bits",
                         name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], tt->name);
}

/* ---- the whole file ---- */

static int parse_alignment(parser *p, gguf_file *f) {
        int64_t i = gguf_lookup_key(f, "general.alignment", strlen("general.alignment"));
        uint32_t a;

        f->alignment = GGUF_DEFAULT_ALIGNMENT;
        if (i < 0)
                return 0;
        if (f->kv[i].type != GGUF_TYPE_UINT32)
                return set_error(p->err, p->errlen, -EBADMSG,
                                 "key 'general.alignment': must be a non-zero power of two UINT32, not %s",
                                 gguf_type_name(f->kv[i].type));
        memcpy(&a, f->kv[i].value, 4);
        a = le32toh(a);
        if (a == 0 || (a & (a - 1)) != 0 || a > GGUF_MAX_ALIGNMENT)
                return set_error(p->err, p->errlen, -EBADMSG,
                                 "key 'general.alignment': must be a non-zero power of two UINT32 up to %" PRIu32
                                 ", not %" PRIu32,
                                 GGUF_MAX_ALIGNMENT, a);
        f->alignment = a;
        return 0;
}

static int parse_header(parser *p, gguf_file *f) {
        const uint8_t *magic;
        uint64_t n_tensors = 0, n_kv = 0;

        if (p->size < HEADER_SIZE)
                return set_error(p->err, p->errlen, -EBADMSG,
                                 "file of %zu bytes is too short for a GGUF header (%d bytes)", p->size, HEADER_SIZE);
        (void) take(p, 4, &magic);
        if (memcmp(magic, "GGUF", 4) != 0)
                return set_error(p->err, p->errlen, -EBADMSG,
                                 "bad magic %02x %02x %02x %02x: not a GGUF file", magic[0], magic[1], magic[2],
                                 magic[3]);
        (void) read_u32(p, &f->version);
        if (f->version != 0 && (f->version & 0xffff) == 0)
                return set_error(p->err, p->errlen, -EPROTONOSUPPORT,
                                 "GGUF version 0x%08" PRIx32 ": big-endian files are not supported", f->version);
        if (f->version != 2 && f->version != 3)
                return set_error(p->err, p->errlen, -EPROTONOSUPPORT,
                                 "GGUF version %" PRIu32 " is not supported (only 2 and 3)", f->version);
        (void) read_u64(p, &n_tensors);
        (void) read_u64(p, &n_kv);

        /* Both sections must fit in what is left, at their smallest record
         * size, before a byte is allocated for them. */
        if (n_kv > INT64_MAX)
                return set_error(p->err, p->errlen, -EBADMSG, "header: negative key count %" PRId64, (int64_t) n_kv);
        if (n_tensors > INT64_MAX)
                return set_error(p->err, p->errlen, -EBADMSG, "header: negative tensor count %" PRId64,
                                 (int64_t) n_tensors);
        if (n_kv > left(p) / KV_MIN_SIZE)
                return set_error(p->err, p->errlen, -EBADMSG,
                                 "header: %" PRIu64 " keys cannot fit in the %zu bytes left", n_kv, left(p));
        if (n_tensors > (left(p) - n_kv * KV_MIN_SIZE) / TENSOR_MIN_SIZE)
                return set_error(p->err, p->errlen, -EBADMSG,
                                 "header: %" PRIu64 " tensors and %" PRIu64 " keys cannot fit in the %zu bytes left",
                                 n_tensors, n_kv, left(p));
        if (n_kv > INT32_MAX || n_tensors > INT32_MAX) /* only in files over 27 GiB */
                return set_error(p->err, p->errlen, -EBADMSG, "header: too many keys or tensors");
        f->n_kv = (int64_t) n_kv;
        f->n_tensors = (int64_t) n_tensors;
        return 0;
}

/* Makes room for element n of an array of at most max elements, doubling:
 * the arrays grow with the records actually read, not with the counts the
 * header declares (a big file with bogus counts costs nothing up front). */
static void *grow(void *arr, size_t *cap, size_t n, size_t max, size_t elem_size) {
        uint8_t *q;
        size_t c;

        if (n < *cap)
                return arr;
        c = MIN(MAX(*cap * 2, (size_t) 64), max);
        q = realloc(arr, c * elem_size);
        if (!q)
                return NULL;
        memset(q + *cap * elem_size, 0, (c - *cap) * elem_size);
        *cap = c;
        return q;
}

static int parse(gguf_file *f, char *err, size_t errlen) {
        parser p = { .base = f->base, .size = f->size, .err = err, .errlen = errlen };
        char name[PRETTY_MAX], name2[PRETTY_MAX];
        int64_t n_kv, n_tensors;
        size_t cap_kv = 0, cap_tensors = 0;
        uint64_t data_size;
        int r;

        r = parse_header(&p, f);
        if (r < 0)
                return r;

        /* f->n_kv and f->n_tensors count the records read so far, so that
         * gguf_close frees exactly those. */
        n_kv = f->n_kv;
        n_tensors = f->n_tensors;
        f->n_kv = f->n_tensors = 0;

        for (int64_t i = 0; i < n_kv; i++) {
                gguf_kv *kv = grow(f->kv, &cap_kv, (size_t) i, (size_t) n_kv, sizeof(gguf_kv));
                if (!kv)
                        return set_error(err, errlen, -ENOMEM, "out of memory");
                f->kv = kv;
                f->n_kv = i + 1;
                r = parse_kv(&p, i, &f->kv[i]);
                if (r < 0)
                        return r;
        }
        f->kv_by_name = sorted_index(f->n_kv, kv_cmp, f);
        if (!f->kv_by_name)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        for (int64_t i = 1; i < f->n_kv; i++) {
                const gguf_kv *a = &f->kv[f->kv_by_name[i - 1]], *b = &f->kv[f->kv_by_name[i]];
                if (str_cmp(a->key, b->key) == 0)
                        return set_error(err, errlen, -EBADMSG, "duplicate key '%s'", pretty(a->key, name));
        }
        r = parse_alignment(&p, f);
        if (r < 0)
                return r;

        for (int64_t i = 0; i < n_tensors; i++) {
                gguf_tensor *t = grow(f->tensors, &cap_tensors, (size_t) i, (size_t) n_tensors, sizeof(gguf_tensor));
                if (!t)
                        return set_error(err, errlen, -ENOMEM, "out of memory");
                f->tensors = t;
                f->n_tensors = i + 1;
                r = parse_tensor(&p, i, &f->tensors[i]);
                if (r < 0)
                        return r;
                r = tensor_nbytes(&p, &f->tensors[i]);
                if (r < 0)
                        return r;
        }
        f->tensor_by_name = sorted_index(f->n_tensors, tensor_name_cmp, f);
        if (!f->tensor_by_name)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        for (int64_t i = 1; i < f->n_tensors; i++) {
                const gguf_tensor *a = &f->tensors[f->tensor_by_name[i - 1]];
                const gguf_tensor *b = &f->tensors[f->tensor_by_name[i]];
                if (str_cmp(a->name, b->name) == 0)
                        return set_error(err, errlen, -EBADMSG, "duplicate tensor name '%s'", pretty(a->name, name));
        }

        /* The data section starts at the next multiple of the alignment.  A
         * file without tensors (a vocabulary) may end before that. */
        f->data_start = p.pos + (f->alignment - p.pos % f->alignment) % f->alignment;
        if (f->data_start > f->size) {
                if (f->n_tensors > 0)
                        return set_error(err, errlen, -EBADMSG,
                                         "data section would start at %" PRIu64 ", past the end of the file (%zu bytes)",
                                         f->data_start, f->size);
                f->data_start = f->size;
        }
        data_size = f->size - f->data_start;

        for (int64_t i = 0; i < f->n_tensors; i++) {
                gguf_tensor *t = &f->tensors[i];
                if (t->offset % f->alignment != 0)
                        return set_error(err, errlen, -EBADMSG,
                                         "tensor '%s': offset %" PRIu64 " is not a multiple of the alignment %zu",
                                         pretty(t->name, name), t->offset, f->alignment);
                if (t->offset > data_size || t->nbytes > data_size - t->offset)
                        return set_error(err, errlen, -EBADMSG,
                                         "tensor '%s': offset+size past end of file (offset %" PRIu64 ", %" PRIu64
                                         " bytes, data section of %" PRIu64 " bytes)",
                                         pretty(t->name, name), t->offset, t->nbytes, data_size);
                /* Kernels read blocks in place through typed pointers: a
                 * tensor must start at a file offset aligned like its blocks
                 * (the largest power of two dividing the block size, at most
                 * 8).  Any file with an alignment of 8 or more passes. */
                {
                        const type_traits *tt = type_traits_get(t->type);
                        uint64_t need = MIN((uint64_t) (tt->type_size & -tt->type_size), UINT64_C(8));
                        if ((f->data_start + t->offset) % need != 0)
                                return set_error(err, errlen, -EBADMSG,
                                                 "tensor '%s': data at file offset %" PRIu64
                                                 " is not aligned to the %" PRIu64 " bytes its %s blocks need",
                                                 pretty(t->name, name), f->data_start + t->offset, need, tt->name);
                }
                t->data = f->base + f->data_start + t->offset;
        }

        /* No two tensors may share bytes: sorted by offset, each must end
         * before the next begins. */
        {
                _cleanup_free_ uint32_t *by_off = sorted_index(f->n_tensors, tensor_offset_cmp, f);
                if (!by_off)
                        return set_error(err, errlen, -ENOMEM, "out of memory");
                for (int64_t i = 1; i < f->n_tensors; i++) {
                        const gguf_tensor *a = &f->tensors[by_off[i - 1]], *b = &f->tensors[by_off[i]];
                        if (b->offset - a->offset < a->nbytes)
                                return set_error(err, errlen, -EBADMSG, "tensors '%s' and '%s' overlap",
                                                 pretty(a->name, name), pretty(b->name, name2));
                }
        }
        return 0;
}

/* ---- opening and closing ---- */

void gguf_close(gguf_file *f) {
        if (!f)
                return;
        if (f->kv)
                for (int64_t i = 0; i < f->n_kv; i++)
                        free(f->kv[i].strs);
        free(f->kv);
        free(f->kv_by_name);
        free(f->tensors);
        free(f->tensor_by_name);
        if (f->mapped)
                munmap((void *) f->base, f->size);
        free(f);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(gguf_file *, gguf_close);

static int open_buffer(const void *data, size_t size, bool mapped, gguf_file **ret, char *err, size_t errlen) {
        _cleanup_(gguf_closep) gguf_file *f = NULL;
        int r;

        f = calloc(1, sizeof(*f));
        if (!f) {
                if (mapped)
                        munmap((void *) data, size);
                return set_error(err, errlen, -ENOMEM, "out of memory");
        }
        f->base = data;
        f->size = size;
        f->mapped = mapped;
        r = parse(f, err, errlen);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(f);
        return 0;
}

int gguf_open_memory(const void *data, size_t size, gguf_file **ret, char *err, size_t errlen) {
        if (!ret || (!data && size > 0))
                return set_error(err, errlen, -EINVAL, "invalid arguments");
        if (!data)
                data = "";
        return open_buffer(data, size, false, ret, err, errlen);
}

int gguf_open_fd(int fd, gguf_file **ret, char *err, size_t errlen) {
        struct stat st;
        void *m;

        if (!ret || fd < 0)
                return set_error(err, errlen, -EINVAL, "invalid arguments");
        if (fstat(fd, &st) < 0)
                return set_error(err, errlen, -errno, "cannot stat the model file: %m");
        if (S_ISDIR(st.st_mode))
                return set_error(err, errlen, -EISDIR, "the model is a directory");
        if (!S_ISREG(st.st_mode))
                return set_error(err, errlen, -EINVAL, "the model is not a regular file");
        if (st.st_size < HEADER_SIZE)
                return set_error(err, errlen, -EBADMSG,
                                 "file of %jd bytes is too short for a GGUF header (%d bytes)", (intmax_t) st.st_size,
                                 HEADER_SIZE);
        if ((uint64_t) st.st_size > SIZE_MAX)
                return set_error(err, errlen, -EFBIG, "file too large to map");
        m = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
                return set_error(err, errlen, -errno, "cannot map the model file: %m");
        return open_buffer(m, (size_t) st.st_size, true, ret, err, errlen);
}

int gguf_open_path(const char *path, gguf_file **ret, char *err, size_t errlen) {
        _cleanup_close_ int fd = -1;
        int r;

        if (!path || !ret)
                return set_error(err, errlen, -EINVAL, "invalid arguments");
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return set_error(err, errlen, -errno, "cannot open %s: %m", path);
        r = gguf_open_fd(fd, ret, err, errlen);
        if (r < 0 && err && errlen > 0) {
                /* Say which file. */
                char msg[512];
                snprintf(msg, sizeof msg, "%s", err);
                snprintf(err, errlen, "%s: %s", path, msg);
        }
        return r;
}

/* ---- file-level accessors ---- */

uint32_t gguf_version(const gguf_file *f) { return f->version; }
size_t gguf_alignment(const gguf_file *f) { return f->alignment; }

const void *gguf_file_data(const gguf_file *f, size_t *size) {
        if (size)
                *size = f->size;
        return f->base;
}

int64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }

const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t idx) {
        if (idx < 0 || idx >= f->n_tensors)
                return NULL;
        return &f->tensors[idx];
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
        gguf_str s = { .p = name, .len = strlen(name) };
        size_t lo = 0, hi = (size_t) f->n_tensors;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const gguf_tensor *t = &f->tensors[f->tensor_by_name[mid]];
                int c = str_cmp(t->name, s);
                if (c == 0)
                        return t;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

int64_t gguf_lookup_key(const gguf_file *f, const char *key, size_t len) {
        gguf_str s = { .p = key, .len = len };
        size_t lo = 0, hi = (size_t) f->n_kv;

        /* During parsing the index does not exist yet: scan. */
        if (!f->kv_by_name) {
                for (int64_t i = 0; i < f->n_kv; i++)
                        if (f->kv[i].key.p && str_cmp(f->kv[i].key, s) == 0)
                                return i;
                return -ENOENT;
        }
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                uint32_t i = f->kv_by_name[mid];
                int c = str_cmp(f->kv[i].key, s);
                if (c == 0)
                        return i;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -ENOENT;
}

bool gguf_str_eq(gguf_str s, const char *c) {
        size_t n = strlen(c);
        return s.len == n && (n == 0 || memcmp(s.p, c, n) == 0);
}
