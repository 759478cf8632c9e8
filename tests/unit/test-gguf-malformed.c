/* SPDX-License-Identifier: MIT */
/* The GGUF reader against hostile files.
 *
 * Every case is built here, in memory, by the small writer in
 * gguf-builder.h: a valid file broken in one precise way.  Each must be
 * rejected with the expected -errno and a message naming what is wrong, in
 * under 10 ms and under 1 MiB of extra heap, whatever sizes it declares.
 * The plain build counts heap bytes by interposing malloc; the ASan build
 * checks for overreads, leaks and undefined behaviour instead.  Then every
 * prefix of a valid file must be rejected, and every single-byte corruption
 * must be either rejected or read without fault.
 *
 *   test-gguf-malformed --write-corpus DIR   writes the cases as fuzz seeds */

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include "gguf-builder.h"
#include "gguf.h"
#include "macro.h"
#include "test.h"

#define TIME_LIMIT_NS (10 * 1000 * 1000)
#define MEM_LIMIT (1024 * 1024)

/* ---- heap accounting (plain build only) ---- */

#if defined(__SANITIZE_ADDRESS__)
#define COUNT_HEAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COUNT_HEAP 0
#endif
#endif
#ifndef COUNT_HEAP
#define COUNT_HEAP 1
#endif

#if COUNT_HEAP
/* glibc's own allocator under our wrappers; the sizes counted are the
 * usable sizes of the chunks, so blocks allocated elsewhere (aligned
 * allocations in libraries) are still freed and counted correctly. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static long long heap_now, heap_peak;

static void heap_add(long long n) {
        heap_now += n;
        if (heap_now > heap_peak)
                heap_peak = heap_now;
}

void *malloc(size_t n) {
        void *p = __libc_malloc(n);
        if (p)
                heap_add((long long) malloc_usable_size(p));
        return p;
}

void *calloc(size_t n, size_t m) {
        void *p = __libc_calloc(n, m);
        if (p)
                heap_add((long long) malloc_usable_size(p));
        return p;
}

void *realloc(void *old, size_t n) {
        long long before = old ? (long long) malloc_usable_size(old) : 0;
        void *p = __libc_realloc(old, n);
        if (p) {
                heap_add(-before);
                heap_add((long long) malloc_usable_size(p));
        } else if (n == 0)
                heap_add(-before);
        return p;
}

void free(void *p) {
        if (p)
                heap_add(-(long long) malloc_usable_size(p));
        __libc_free(p);
}
#endif

/* ---- the cases ---- */

static void arch_kv(gb *b) { gb_kv_str(b, "general.architecture", "llama"); }

/* A well-formed file of one F32 tensor [n] called name, for tensor cases
 * that change one field: header, arch key, the info given, padding, data. */
static void one_tensor(gb *b, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type,
                       uint64_t offset, size_t data) {
        gb_header(b, 3, 1, 1);
        arch_kv(b);
        gb_tensor(b, name, n_dims, ne, type, offset);
        gb_pad(b, 32);
        gb_zeros(b, data);
}

/* header */
static void c_empty(gb *b) { (void) b; }
static void c_short_header(gb *b) { gb_header(b, 3, 0, 0), b->n = 23; }
static void c_bad_magic(gb *b) { gb_header(b, 3, 0, 0), b->p[3] = 'G'; }
static void c_magic_lower(gb *b) { gb_header(b, 3, 0, 0), memcpy(b->p, "gguf", 4); }
static void c_version0(gb *b) { gb_header(b, 0, 0, 0); }
static void c_version1(gb *b) { gb_header(b, 1, 0, 0); }
static void c_version4(gb *b) { gb_header(b, 4, 0, 0); }
static void c_big_endian(gb *b) { gb_header(b, 0x03000000, 0, 0); }
static void c_nkv_2p63(gb *b) { gb_header(b, 3, 0, UINT64_C(1) << 63), arch_kv(b); }
static void c_ntensors_2p63(gb *b) { gb_header(b, 3, UINT64_C(1) << 63, 1), arch_kv(b); }
static void c_nkv_minus1(gb *b) { gb_header(b, 3, 0, UINT64_MAX), arch_kv(b); }
static void c_ntensors_minus1(gb *b) { gb_header(b, 3, UINT64_MAX, 0); }
static void c_nkv_2p62(gb *b) { gb_header(b, 3, 0, UINT64_C(1) << 62), arch_kv(b); }
static void c_ntensors_2p40(gb *b) { gb_header(b, 3, UINT64_C(1) << 40, 1), arch_kv(b); }
static void c_nkv_too_many(gb *b) { gb_header(b, 3, 0, 3), arch_kv(b); } /* 3 declared, 1 present */

/* keys */
static void c_key_len_max(gb *b) { gb_header(b, 3, 0, 1), gb_u64(b, UINT64_MAX), gb_zeros(b, 16); }
static void c_key_len_past_end(gb *b) { gb_header(b, 3, 0, 1), gb_u64(b, 1000), gb_zeros(b, 40); }
static void c_key_empty(gb *b) { gb_header(b, 3, 0, 1), gb_kv_u32(b, "", 1); }
static void c_key_nul(gb *b) { gb_header(b, 3, 0, 1), gb_strn(b, "gen\0ral", 7), gb_u32(b, 4), gb_u32(b, 1); }
static void c_type_13(gb *b) { gb_header(b, 3, 0, 1), gb_key(b, "x.y", 13), gb_zeros(b, 8); }
static void c_type_max(gb *b) { gb_header(b, 3, 0, 1), gb_key(b, "x.y", UINT32_MAX), gb_zeros(b, 8); }
static void c_str_len_max(gb *b) { gb_header(b, 3, 0, 1), gb_key(b, "general.name", 8), gb_u64(b, UINT64_MAX), gb_zeros(b, 8); }
static void c_str_len_2p63(gb *b) { gb_header(b, 3, 0, 1), gb_key(b, "general.name", 8), gb_u64(b, UINT64_C(1) << 63); }
static void c_str_past_end(gb *b) { gb_header(b, 3, 0, 1), gb_key(b, "general.name", 8), gb_u64(b, 9), gb_bytes(b, "llama", 5); }
static void c_scalar_truncated(gb *b) { gb_header(b, 3, 0, 1), gb_key(b, "x.u64", 10), gb_zeros(b, 3); }
static void c_type_truncated(gb *b) { gb_header(b, 3, 0, 1), gb_str(b, "general.name"), gb_zeros(b, 2); }
static void c_arr_2p62_u8(gb *b) { gb_header(b, 3, 0, 1), gb_kv_arr(b, "x.arr", 0, UINT64_C(1) << 62), gb_zeros(b, 16); }
static void c_arr_2p62_str(gb *b) { gb_header(b, 3, 0, 1), gb_kv_arr(b, "tokenizer.ggml.tokens", 8, UINT64_C(1) << 62), gb_zeros(b, 16); }
static void c_arr_max_count(gb *b) { gb_header(b, 3, 0, 1), gb_kv_arr(b, "x.arr", 6, UINT64_MAX), gb_zeros(b, 16); }
static void c_arr_u64_past_end(gb *b) { gb_header(b, 3, 0, 1), gb_kv_arr(b, "x.arr", 10, 1 << 29), gb_zeros(b, 64); }
static void c_arr_str_count(gb *b) {
        gb_header(b, 3, 0, 1), gb_kv_arr(b, "tokenizer.ggml.tokens", 8, 1000);
        for (int i = 0; i < 10; i++)
                gb_str(b, "ab");
}
static void c_arr_str_elem_len(gb *b) {
        gb_header(b, 3, 0, 1), gb_kv_arr(b, "tokenizer.ggml.tokens", 8, 3);
        gb_str(b, "<pad>"), gb_str(b, "<eos>"), gb_u64(b, UINT64_MAX - 7), gb_zeros(b, 24);
}
static void c_arr_nested(gb *b) { gb_header(b, 3, 0, 1), gb_kv_arr(b, "x.arr", 9, 1), gb_u32(b, 4), gb_u64(b, 1), gb_u32(b, 7); }
static void c_arr_elem_type(gb *b) { gb_header(b, 3, 0, 1), gb_kv_arr(b, "x.arr", 13, 1), gb_zeros(b, 8); }
static void c_arr_header_truncated(gb *b) { gb_header(b, 3, 0, 1), gb_key(b, "x.arr", 9), gb_u32(b, 4), gb_zeros(b, 4); }
static void c_dup_key(gb *b) { gb_header(b, 3, 0, 3), arch_kv(b), gb_kv_u32(b, "llama.block_count", 2), gb_kv_str(b, "general.architecture", "gemma3"); }
static void c_align_0(gb *b) { gb_header(b, 3, 0, 2), arch_kv(b), gb_kv_u32(b, "general.alignment", 0); }
static void c_align_3(gb *b) { gb_header(b, 3, 0, 2), arch_kv(b), gb_kv_u32(b, "general.alignment", 3); }
static void c_align_2p31(gb *b) { gb_header(b, 3, 0, 2), arch_kv(b), gb_kv_u32(b, "general.alignment", UINT32_C(1) << 31); }
static void c_align_u64(gb *b) { gb_header(b, 3, 0, 2), arch_kv(b), gb_key(b, "general.alignment", 10), gb_u64(b, 32); }
static void c_align_str(gb *b) { gb_header(b, 3, 0, 2), arch_kv(b), gb_kv_str(b, "general.alignment", "32"); }
static void c_align_i32(gb *b) { gb_header(b, 3, 0, 2), arch_kv(b), gb_key(b, "general.alignment", 5), gb_u32(b, 32); }

/* tensors */
static const int64_t NE64[4] = { 64, 1, 1, 1 };
static void c_ndims_0(gb *b) { one_tensor(b, "blk.0.attn_q.weight", 0, NE64, 0, 0, 256); }
static void c_ndims_5(gb *b) {
        static const int64_t ne[5] = { 64, 1, 1, 1, 1 };
        one_tensor(b, "blk.0.attn_q.weight", 5, ne, 0, 0, 256);
}
static void c_ndims_max(gb *b) {
        gb_header(b, 3, 1, 1), arch_kv(b), gb_str(b, "blk.0.attn_q.weight"), gb_u32(b, UINT32_MAX);
        for (int i = 0; i < 6; i++)
                gb_u64(b, 64);
        gb_u32(b, 0), gb_u64(b, 0), gb_pad(b, 32), gb_zeros(b, 256);
}
static void c_ne_zero(gb *b) { one_tensor(b, "blk.0.attn_q.weight", 2, (int64_t[]) { 64, 0 }, 0, 0, 256); }
static void c_ne_negative(gb *b) { one_tensor(b, "blk.0.attn_q.weight", 2, (int64_t[]) { -64, 2 }, 0, 0, 256); }
static void c_nel_wraps(gb *b) {
        one_tensor(b, "token_embd.weight", 4, (int64_t[]) { 1 << 16, 1 << 16, 1 << 16, 1 << 16 }, 24, 0, 256);
}
static void c_nbytes_wraps(gb *b) { /* 2^62 F32 elements: 2^64 bytes */
        one_tensor(b, "token_embd.weight", 1, (int64_t[]) { INT64_C(1) << 62 }, 0, 0, 256);
}
static void c_nbytes_2p63(gb *b) { /* 2^61 F32: 2^63 bytes, past int64 */
        one_tensor(b, "token_embd.weight", 1, (int64_t[]) { INT64_C(1) << 61 }, 0, 0, 256);
}
static void c_nbytes_quant_wraps(gb *b) { /* Q4_K rows of 2^56 elements, times 2^10 rows */
        one_tensor(b, "blk.0.ffn_up.weight", 2, (int64_t[]) { INT64_C(1) << 56, 1 << 10 }, 12, 0, 256);
}
static void c_nbytes_padding_wraps(gb *b) { /* INT64_MAX bytes of I8: padding it to 32 would wrap 63 bits */
        one_tensor(b, "blk.0.ffn_up.weight", 1, (int64_t[]) { INT64_MAX }, 24, 0, 256);
}
static void c_q4_0_ne0(gb *b) { one_tensor(b, "blk.0.attn_k.weight", 2, (int64_t[]) { 33, 2 }, 2, 0, 256); }
static void c_q4_k_ne0(gb *b) { one_tensor(b, "blk.0.attn_k.weight", 2, (int64_t[]) { 32, 2 }, 12, 0, 256); }
static void c_type_4(gb *b) { one_tensor(b, "output.weight", 1, NE64, 4, 0, 256); }
static void c_type_31(gb *b) { one_tensor(b, "output.weight", 1, NE64, 31, 0, 256); }
static void c_type_40(gb *b) { one_tensor(b, "output.weight", 1, NE64, 40, 0, 256); }
static void c_ttype_max(gb *b) { one_tensor(b, "output.weight", 1, NE64, UINT32_MAX, 0, 256); }
static void c_offset_unaligned(gb *b) { one_tensor(b, "output.weight", 1, NE64, 0, 16, 512); }
static void c_past_end(gb *b) { one_tensor(b, "blk.0.attn_q.weight", 1, NE64, 0, 0, 255); }
static void c_offset_wraps(gb *b) { one_tensor(b, "blk.0.attn_q.weight", 1, NE64, 0, UINT64_MAX - 31, 256); }
static void c_offset_at_end(gb *b) { one_tensor(b, "blk.0.attn_q.weight", 1, NE64, 0, 256, 256); }
static void c_offset_2p63(gb *b) { one_tensor(b, "blk.0.attn_q.weight", 1, NE64, 0, UINT64_C(1) << 63, 256); }
static void two_tensors(gb *b, const char *n0, uint64_t off0, const char *n1, uint64_t off1, size_t data) {
        gb_header(b, 3, 2, 1);
        arch_kv(b);
        gb_tensor(b, n0, 1, NE64, 0, off0);
        gb_tensor(b, n1, 1, NE64, 0, off1);
        gb_pad(b, 32);
        gb_zeros(b, data);
}
static void c_overlap(gb *b) { two_tensors(b, "blk.0.attn_q.weight", 0, "blk.0.attn_k.weight", 128, 512); }
static void c_overlap_same(gb *b) { two_tensors(b, "blk.0.attn_q.weight", 256, "blk.0.attn_k.weight", 256, 512); }
static void c_dup_tensor(gb *b) { two_tensors(b, "blk.0.attn_q.weight", 0, "blk.0.attn_q.weight", 256, 512); }
static void c_name_64(gb *b) {
        char name[65];
        memset(name, 'a', 64);
        memcpy(name, "blk.0.", 6);
        name[64] = 0;
        one_tensor(b, name, 1, NE64, 0, 0, 256);
}
static void c_name_len_max(gb *b) { gb_header(b, 3, 1, 1), arch_kv(b), gb_u64(b, UINT64_MAX), gb_zeros(b, 64); }
static void c_name_empty(gb *b) { one_tensor(b, "", 1, NE64, 0, 0, 256); }
static void c_ne_truncated(gb *b) {
        gb_header(b, 3, 1, 1), arch_kv(b), gb_str(b, "output.weight"), gb_u32(b, 4), gb_u64(b, 64), gb_u64(b, 2), gb_zeros(b, 4);
}
static void c_data_start_past_end(gb *b) { /* infos fine, data section missing */
        gb_header(b, 3, 1, 1), arch_kv(b), gb_tensor(b, "output.weight", 1, NE64, 0, 0);
        if (b->n % 32 == 0) { /* infos must end off the alignment */
                gb_free(b);
                gb_header(b, 3, 1, 1), arch_kv(b), gb_tensor(b, "output.weight2", 1, NE64, 0, 0);
        }
        while (b->n % 32 != 31)
                gb_zeros(b, 1);
}
static void c_ntensors_too_many(gb *b) {
        gb_header(b, 3, 4, 1), arch_kv(b), gb_tensor(b, "output.weight", 1, NE64, 0, 0), gb_pad(b, 32), gb_zeros(b, 256);
}
static void c_align_big_tensor(gb *b) { /* 2^24 alignment: tiny file cannot reach its data section */
        gb_header(b, 3, 1, 2), arch_kv(b), gb_kv_u32(b, "general.alignment", 1 << 24);
        gb_tensor(b, "output.weight", 1, NE64, 0, 0), gb_pad(b, 32), gb_zeros(b, 256);
}

static void c_align_1_f32_odd(gb *b) { /* alignment 1 is legal, but an F32 tensor at an odd file offset is not */
        gb_header(b, 3, 1, 2), arch_kv(b), gb_kv_u32(b, "general.alignment", 1);
        gb_tensor(b, "output_norm.weight", 1, NE64, 0, 0);
        if (b->n % 2 == 0)
                gb_free(b), gb_header(b, 3, 1, 2), arch_kv(b), gb_kv_u32(b, "general.alignment", 1),
                        gb_tensor(b, "output_norm.weight1", 1, NE64, 0, 0);
        gb_zeros(b, 256);
}

/* A 4 MiB file whose header declares as many records as could fit, with
 * one real record followed by zeros: memory must follow the records read. */
#define BIG (4u << 20)
static void c_nkv_max_big(gb *b) {
        gb_header(b, 3, 0, (BIG - 24) / 13), arch_kv(b), gb_zeros(b, BIG - b->n);
}
static void c_ntensors_max_big(gb *b) {
        gb_header(b, 3, (BIG - 24 - 45) / 32, 1), arch_kv(b), gb_tensor(b, "output.weight", 1, NE64, 0, 0);
        gb_zeros(b, BIG - b->n);
}
static void c_arr_max_big(gb *b) { /* 2^19 strings declared, 3 present */
        gb_header(b, 3, 0, 1), gb_kv_arr(b, "tokenizer.ggml.tokens", 8, (BIG - 128) / 8);
        gb_str(b, "a"), gb_str(b, "b"), gb_u64(b, UINT64_MAX);
        gb_zeros(b, BIG - b->n);
}

typedef struct mcase {
        const char *name;
        void (*build)(gb *b);
        int r;           /* expected return */
        const char *msg; /* must appear in the message */
} mcase;

static const mcase cases[] = {
        { "empty-file", c_empty, -EBADMSG, "too short" },
        { "short-header", c_short_header, -EBADMSG, "too short" },
        { "bad-magic", c_bad_magic, -EBADMSG, "bad magic" },
        { "magic-lowercase", c_magic_lower, -EBADMSG, "not a GGUF file" },
        { "version-0", c_version0, -EPROTONOSUPPORT, "version 0 is not supported" },
        { "version-1", c_version1, -EPROTONOSUPPORT, "version 1 is not supported" },
        { "version-4", c_version4, -EPROTONOSUPPORT, "version 4 is not supported" },
        { "version-big-endian", c_big_endian, -EPROTONOSUPPORT, "big-endian" },
        { "n-kv-2^63", c_nkv_2p63, -EBADMSG, "negative key count" },
        { "n-tensors-2^63", c_ntensors_2p63, -EBADMSG, "negative tensor count" },
        { "n-kv-minus-1", c_nkv_minus1, -EBADMSG, "negative key count -1" },
        { "n-tensors-minus-1", c_ntensors_minus1, -EBADMSG, "negative tensor count -1" },
        { "n-kv-2^62", c_nkv_2p62, -EBADMSG, "4611686018427387904 keys cannot fit" },
        { "n-tensors-2^40", c_ntensors_2p40, -EBADMSG, "1099511627776 tensors" },
        { "n-kv-322638-in-4MiB-of-zeros", c_nkv_max_big, -EBADMSG, "key #1: empty name" },
        { "n-tensors-131069-in-4MiB-of-zeros", c_ntensors_max_big, -EBADMSG, "tensor #1: empty name" },
        { "array-524272-strings-3-present", c_arr_max_big, -EBADMSG, "key 'tokenizer.ggml.tokens' element 2" },
        { "n-kv-more-than-present", c_nkv_too_many, -EBADMSG, "key #1: file truncated" },
        { "key-length-2^64-1", c_key_len_max, -EBADMSG, "key #0: string length 18446744073709551615" },
        { "key-length-past-end", c_key_len_past_end, -EBADMSG, "key #0: string length 1000 at offset 24 exceeds" },
        { "key-empty", c_key_empty, -EBADMSG, "key #0: empty name" },
        { "key-with-nul", c_key_nul, -EBADMSG, "key 'gen\\x00ral': name contains a NUL byte" },
        { "value-type-13", c_type_13, -EBADMSG, "key 'x.y': unknown value type 13" },
        { "value-type-2^32-1", c_type_max, -EBADMSG, "key 'x.y': unknown value type 4294967295" },
        { "string-length-2^64-1", c_str_len_max, -EBADMSG, "key 'general.name': string length 18446744073709551615" },
        { "string-length-2^63", c_str_len_2p63, -EBADMSG, "key 'general.name': string length 9223372036854775808" },
        { "string-past-end", c_str_past_end, -EBADMSG, "key 'general.name': string length 9" },
        { "scalar-truncated", c_scalar_truncated, -EBADMSG, "key 'x.u64': file truncated in its UINT64 value" },
        { "type-truncated", c_type_truncated, -EBADMSG, "key 'general.name': file truncated before its type" },
        { "array-2^62-uint8", c_arr_2p62_u8, -EBADMSG, "key 'x.arr': array of 4611686018427387904 elements" },
        { "array-2^62-strings", c_arr_2p62_str, -EBADMSG, "key 'tokenizer.ggml.tokens': array of 4611686018427387904" },
        { "array-2^64-1-floats", c_arr_max_count, -EBADMSG, "key 'x.arr': array of 18446744073709551615" },
        { "array-2^29-uint64-past-end", c_arr_u64_past_end, -EBADMSG, "536870912 UINT64 elements does not fit" },
        { "array-1000-strings-in-40-bytes", c_arr_str_count, -EBADMSG, "1000 STRING elements does not fit" },
        { "array-string-element-length", c_arr_str_elem_len, -EBADMSG, "key 'tokenizer.ggml.tokens' element 2: string length" },
        { "array-nested", c_arr_nested, -EBADMSG, "key 'x.arr': nested arrays" },
        { "array-element-type-13", c_arr_elem_type, -EBADMSG, "key 'x.arr': unknown array element type 13" },
        { "array-header-truncated", c_arr_header_truncated, -EBADMSG, "key 'x.arr': file truncated in the array header" },
        { "duplicate-key", c_dup_key, -EBADMSG, "duplicate key 'general.architecture'" },
        { "alignment-0", c_align_0, -EBADMSG, "key 'general.alignment': must be a non-zero power of two UINT32" },
        { "alignment-3", c_align_3, -EBADMSG, "key 'general.alignment': must be a non-zero power of two UINT32" },
        { "alignment-2^31", c_align_2p31, -EBADMSG, "not 2147483648" },
        { "alignment-uint64", c_align_u64, -EBADMSG, "UINT32, not UINT64" },
        { "alignment-string", c_align_str, -EBADMSG, "UINT32, not STRING" },
        { "alignment-int32", c_align_i32, -EBADMSG, "UINT32, not INT32" },
        { "alignment-2^24-past-end", c_align_big_tensor, -EBADMSG, "data section would start at 16777216" },
        { "n-dims-0", c_ndims_0, -EBADMSG, "tensor 'blk.0.attn_q.weight': n_dims 0 is not in 1..4" },
        { "n-dims-5", c_ndims_5, -EBADMSG, "tensor 'blk.0.attn_q.weight': n_dims 5 is not in 1..4" },
        { "n-dims-2^32-1", c_ndims_max, -EBADMSG, "n_dims 4294967295 is not in 1..4" },
        { "ne-zero", c_ne_zero, -EBADMSG, "tensor 'blk.0.attn_q.weight': ne[1] = 0 is not a positive count" },
        { "ne-negative", c_ne_negative, -EBADMSG, "ne[0] = -64 is not a positive count" },
        { "element-count-wraps", c_nel_wraps, -EBADMSG, "tensor 'token_embd.weight': element count or byte size" },
        { "byte-size-wraps-2^64", c_nbytes_wraps, -EBADMSG, "tensor 'token_embd.weight': element count or byte size" },
        { "byte-size-2^63", c_nbytes_2p63, -EBADMSG, "overflows 63 bits" },
        { "quant-byte-size-wraps", c_nbytes_quant_wraps, -EBADMSG, "tensor 'blk.0.ffn_up.weight': element count" },
        { "padded-size-would-wrap", c_nbytes_padding_wraps, -EBADMSG, "tensor 'blk.0.ffn_up.weight': offset+size past end of file" },
        { "q4_0-ne0-33", c_q4_0_ne0, -EBADMSG, "ne[0] = 33 is not a multiple of the q4_0 block size 32" },
        { "q4_k-ne0-32", c_q4_k_ne0, -EBADMSG, "ne[0] = 32 is not a multiple of the q4_K block size 256" },
        { "tensor-type-4", c_type_4, -EBADMSG, "tensor 'output.weight': unknown tensor type id 4" },
        { "tensor-type-31", c_type_31, -EBADMSG, "unknown tensor type id 31" },
        { "tensor-type-40", c_type_40, -EBADMSG, "unknown tensor type id 40" },
        { "tensor-type-2^32-1", c_ttype_max, -EBADMSG, "unknown tensor type id 4294967295" },
        { "offset-unaligned", c_offset_unaligned, -EBADMSG, "offset 16 is not a multiple of the alignment 32" },
        { "offset-size-past-end", c_past_end, -EBADMSG, "tensor 'blk.0.attn_q.weight': offset+size past end of file" },
        { "offset-wraps", c_offset_wraps, -EBADMSG, "tensor 'blk.0.attn_q.weight': offset+size past end of file" },
        { "offset-at-end", c_offset_at_end, -EBADMSG, "offset+size past end of file (offset 256" },
        { "offset-2^63", c_offset_2p63, -EBADMSG, "offset+size past end of file" },
        { "alignment-1-f32-at-odd-offset", c_align_1_f32_odd, -EBADMSG, "is not aligned to the 4 bytes its f32 blocks need" },
        { "tensors-overlap", c_overlap, -EBADMSG, "tensors 'blk.0.attn_q.weight' and 'blk.0.attn_k.weight' overlap" },
        { "tensors-same-offset", c_overlap_same, -EBADMSG, "overlap" },
        { "duplicate-tensor", c_dup_tensor, -EBADMSG, "duplicate tensor name 'blk.0.attn_q.weight'" },
        { "tensor-name-64-bytes", c_name_64, -EBADMSG, "name of 64 bytes is longer than 63" },
        { "tensor-name-length-2^64-1", c_name_len_max, -EBADMSG, "tensor #0: string length 18446744073709551615" },
        { "tensor-name-empty", c_name_empty, -EBADMSG, "tensor #0: empty name" },
        { "tensor-ne-truncated", c_ne_truncated, -EBADMSG, "tensor 'output.weight': file truncated in ne[2]" },
        { "data-section-past-end", c_data_start_past_end, -EBADMSG, "data section would start at" },
        { "n-tensors-more-than-present", c_ntensors_too_many, -EBADMSG, "tensor #1" },
};

/* ---- running one buffer ---- */

static long long now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long worst_ns, worst_mem;
static char worst_ns_name[64], worst_mem_name[64];

/* Opens an exact-size heap copy (so ASan sees any overread) and measures
 * time and heap.  Returns the result; err gets the message. */
static int try_open(const char *name, const uint8_t *p, size_t n, char *err, size_t errlen) {
        long long best = -1, mem = 0;
        int r = 0;

        /* Timing on a shared machine is noisy (a preempted run takes a whole
         * time slice): each case runs three times, five if still over the
         * limit, and the best run is what counts and is reported.  Real
         * super-linear work would be slow every time. */
        for (int attempt = 0; attempt < 5; attempt++) {
                uint8_t *copy = malloc(n ? n : 1);
                gguf_file *f = NULL;
                long long t0, t1;

                CHECK(copy);
                if (n)
                        memcpy(copy, p, n);
                err[0] = 0;
#if COUNT_HEAP
                long long base = heap_now;
                heap_peak = heap_now;
#endif
                t0 = now_ns();
                r = gguf_open_memory(copy, n, &f, err, errlen);
                t1 = now_ns();
#if COUNT_HEAP
                mem = heap_peak - base;
#endif
                gguf_close(f);
                free(copy);
                if (best < 0 || t1 - t0 < best)
                        best = t1 - t0;
                if (attempt >= 2 && best < TIME_LIMIT_NS)
                        break;
        }
        CHECK_MSG(best < TIME_LIMIT_NS, "%s: took %lld ns", name, best);
        CHECK_MSG(mem < MEM_LIMIT, "%s: used %lld bytes of heap", name, mem);
        if (best > worst_ns) {
                worst_ns = best;
                snprintf(worst_ns_name, sizeof worst_ns_name, "%s", name);
        }
        if (mem > worst_mem) {
                worst_mem = mem;
                snprintf(worst_mem_name, sizeof worst_mem_name, "%s", name);
        }
        return r;
}

static void test_cases(void) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const mcase *c = &cases[i];
                gb b = { 0 };
                char err[512];
                int r;

                c->build(&b);
                r = try_open(c->name, b.p, b.n, err, sizeof err);
                CHECK_MSG(r == c->r, "%s: returned %d (%s), want %d; message: %s", c->name, r, strerror(-r), c->r,
                          err);
                CHECK_MSG(strstr(err, c->msg), "%s: message \"%s\" lacks \"%s\"", c->name, err, c->msg);
                printf("ok %-32s %s\n", c->name, err);
                gb_free(&b);
        }
}

/* ---- prefixes and corruptions of a valid file ---- */

/* Every value type, a string array, alignment 32 and two tensors whose data
 * ends the file: any proper prefix is invalid. */
static void build_valid(gb *b) {
        gb_header(b, 3, 2, 12);
        arch_kv(b);
        gb_kv_u32(b, "general.alignment", 32);
        gb_key(b, "x.u8", 0), gb_u8(b, 7);
        gb_key(b, "x.i16", 3), gb_u16(b, 0xfffe);
        gb_key(b, "x.f32", 6), gb_f32(b, 0.5f);
        gb_key(b, "x.bool", 7), gb_u8(b, 1);
        gb_key(b, "x.u64", 10), gb_u64(b, 1234567890123ULL);
        gb_key(b, "x.f64", 12), gb_f64(b, -2.5);
        gb_kv_arr(b, "x.i32s", 5, 3), gb_u32(b, 1), gb_u32(b, 2), gb_u32(b, 3);
        gb_kv_arr(b, "tokenizer.ggml.tokens", 8, 3), gb_str(b, "<s>"), gb_str(b, ""), gb_str(b, "hello");
        gb_kv_arr(b, "x.empty", 4, 0);
        gb_key(b, "x.i64", 11), gb_u64(b, (uint64_t) -5);
        gb_tensor(b, "t0.weight", 2, (int64_t[]) { 8, 2 }, 0, 0);
        gb_tensor(b, "t1.weight", 1, (int64_t[]) { 32 }, 8, 64);
        gb_pad(b, 32);
        for (int i = 0; i < 64 + 34; i++)
                gb_u8(b, (uint8_t) (i * 7));
}

/* A second valid seed: version 2, alignment 64, tensors of 1 to 4 dims in
 * several block types. */
static void build_valid_quant(gb *b) {
        gb_header(b, 2, 4, 3);
        arch_kv(b);
        gb_kv_u32(b, "general.alignment", 64);
        gb_kv_arr(b, "llama.feed_forward_length", 5, 2), gb_u32(b, 256), gb_u32(b, 512);
        gb_tensor(b, "q4_0", 2, (int64_t[]) { 64, 2 }, 2, 0);             /* 72 bytes */
        gb_tensor(b, "q4_k", 3, (int64_t[]) { 256, 1, 2 }, 12, 128);       /* 288 */
        gb_tensor(b, "f16", 4, (int64_t[]) { 4, 2, 2, 2 }, 1, 448);        /* 64 */
        gb_tensor(b, "bf16", 1, (int64_t[]) { 8 }, 30, 512);               /* 16 */
        gb_pad(b, 64);
        for (int i = 0; i < 528; i++)
                gb_u8(b, (uint8_t) (i * 13));
}

static void test_prefixes(void (*build)(gb *b), int64_t n_tensors) {
        gb b = { 0 };
        gguf_file *f = NULL;
        char err[512];

        build(&b);
#if COUNT_HEAP
        long long base = heap_now;
        heap_peak = heap_now;
#endif
        CHECK_MSG(gguf_open_memory(b.p, b.n, &f, err, sizeof err) == 0, "%s", err);
#if COUNT_HEAP
        /* the counter must see the reader's allocations, or it proves nothing */
        CHECK_MSG(heap_peak - base > 12 * 16, "heap counter saw %lld bytes", heap_peak - base);
#endif
        CHECK_EQ_INT(gguf_n_tensors(f), n_tensors);
        gguf_close(f);

        for (size_t n = 0; n < b.n; n++) {
                char name[64];
                int r;
                snprintf(name, sizeof name, "prefix-%zu", n);
                r = try_open(name, b.p, n, err, sizeof err);
                CHECK_MSG(r == -EBADMSG, "prefix of %zu bytes: returned %d, message: %s", n, r, err);
                CHECK_MSG(err[0], "prefix of %zu bytes: no message", n);
        }
        printf("ok every proper prefix (%zu) of a %zu-byte valid file rejected\n", b.n, b.n);
        gb_free(&b);
}

/* Each byte in turn set to 0x00, 0xff and flipped: the reader must either
 * reject the file or return one whose accessors stay inside it. */
static void test_corruptions(void) {
        gb b = { 0 };
        int accepted = 0, rejected = 0;
        static const int modes[3] = { 0x00, 0xff, -1 };

        build_valid(&b);
        for (size_t i = 0; i < b.n; i++)
                for (int m = 0; m < 3; m++) {
                        uint8_t *copy = malloc(b.n);
                        gguf_file *f = NULL;
                        char err[128];

                        CHECK(copy);
                        memcpy(copy, b.p, b.n);
                        copy[i] = modes[m] < 0 ? (uint8_t) ~copy[i] : (uint8_t) modes[m];
                        if (gguf_open_memory(copy, b.n, &f, err, sizeof err) < 0) {
                                CHECK(err[0]);
                                rejected++;
                        } else {
                                for (int64_t t = 0; t < gguf_n_tensors(f); t++) {
                                        const gguf_tensor *ti = gguf_tensor_at(f, t);
                                        const uint8_t *d = ti->data;
                                        CHECK(d >= copy && (size_t) (d - copy) + ti->nbytes <= b.n);
                                }
                                for (int64_t k = 0; k < gguf_n_kv(f); k++) {
                                        gguf_str s;
                                        uint64_t n;
                                        gguf_type et;
                                        if (gguf_kv_arr(f, k, &et, &n, NULL) == 0 && et == GGUF_TYPE_STRING)
                                                for (uint64_t e = 0; e < n; e++) {
                                                        CHECK_OK(gguf_kv_arr_str(f, k, e, &s));
                                                        CHECK((const uint8_t *) s.p >= copy &&
                                                              (size_t) ((const uint8_t *) s.p - copy) + s.len <= b.n);
                                                }
                                }
                                accepted++;
                        }
                        gguf_close(f);
                        free(copy);
                }
        printf("ok single-byte corruptions: %d rejected, %d still valid\n", rejected, accepted);
        gb_free(&b);
}

/* The message buffer may be small or absent. */
static void test_err_buffers(void) {
        gb b = { 0 };
        gguf_file *f = NULL;
        char small[8];

        c_offset_wraps(&b);
        CHECK_EQ_INT(gguf_open_memory(b.p, b.n, &f, NULL, 0), -EBADMSG);
        CHECK_EQ_INT(gguf_open_memory(b.p, b.n, &f, small, sizeof small), -EBADMSG);
        CHECK_EQ_INT(strlen(small), 7);
        CHECK_EQ_INT(gguf_open_memory(NULL, 5, &f, NULL, 0), -EINVAL);
        CHECK_EQ_INT(gguf_open_memory(NULL, 0, &f, small, sizeof small), -EBADMSG);
        gb_free(&b);
}

static void write_seed(const char *dir, const char *name, const gb *b) {
        char path[4096];
        FILE *out;

        CHECK(snprintf(path, sizeof path, "%s/%s.gguf", dir, name) < (int) sizeof path);
        out = fopen(path, "we");
        CHECK(out && fwrite(b->p, 1, b->n, out) == b->n && fclose(out) == 0);
}

static void write_corpus(const char *dir) {
        gb b = { 0 };
        gguf_file *f = NULL;
        char err[256] = "";

        build_valid(&b);
        write_seed(dir, "valid-small", &b);
        gb_free(&b);
        build_valid_quant(&b);
        CHECK_MSG(gguf_open_memory(b.p, b.n, &f, err, sizeof err) == 0, "%s", err);
        gguf_close(f);
        write_seed(dir, "valid-quant-v2", &b);
        gb_free(&b);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                cases[i].build(&b);
                if (b.n <= 65536) /* the 4 MiB ones would only slow the fuzzer */
                        write_seed(dir, cases[i].name, &b);
                gb_free(&b);
        }
}

int main(int argc, char **argv) {
        if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0) {
                write_corpus(argv[2]);
                return 0;
        }
        test_cases();
        test_prefixes(build_valid, 2);
        test_prefixes(build_valid_quant, 4);
        test_corruptions();
        test_err_buffers();
        printf("%zu malformed cases rejected; worst time %lld us (%s), worst extra heap %lld bytes (%s)%s\n",
               ELEMENTSOF(cases), worst_ns / 1000, worst_ns_name, worst_mem, worst_mem_name,
               COUNT_HEAP ? "" : " [heap not counted under ASan]");
        return 0;
}
