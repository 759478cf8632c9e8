/* SPDX-License-Identifier: MIT */
/* The GGUF reader on well-formed files: a synthetic file exercising every
 * value type and accessor, then every GGUF of the shared golden data. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "gguf-builder.h"
#include "gguf.h"
#include "macro.h"
#include "tensor-type.h"
#include "test.h"

/* ---- a synthetic file with every value type ---- */

static void build_sample(gb *b) {
        int64_t ne_a[2] = { 64, 3 }, ne_b[1] = { 256 }, ne_c[3] = { 32, 2, 2 };

        gb_header(b, 3, 3, 22);
        gb_kv_str(b, "general.architecture", "llama");
        gb_key(b, "u8", 0), gb_u8(b, 200);
        gb_key(b, "i8", 1), gb_u8(b, 0xff); /* -1 */
        gb_key(b, "u16", 2), gb_u16(b, 65535);
        gb_key(b, "i16", 3), gb_u16(b, 0x8000); /* -32768 */
        gb_kv_u32(b, "u32", 4000000000u);
        gb_key(b, "i32", 5), gb_u32(b, (uint32_t) -7);
        gb_key(b, "f32", 6), gb_f32(b, 1e-6f);
        gb_key(b, "bool", 7), gb_u8(b, 1);
        gb_key(b, "u64", 10), gb_u64(b, UINT64_C(1) << 63);
        gb_key(b, "i64", 11), gb_u64(b, (uint64_t) INT64_MIN);
        gb_key(b, "f64", 12), gb_f64(b, 0.25);
        gb_key(b, "f64.big", 12), gb_f64(b, 1e300);
        gb_key(b, "f64.inf", 12), gb_f64(b, -INFINITY);
        gb_kv_arr(b, "arr.i32", 5, 4);
        for (int i = 0; i < 4; i++)
                gb_u32(b, (uint32_t) (i * 10 - 10));
        gb_kv_arr(b, "arr.f32", 6, 2);
        gb_f32(b, 1.5f), gb_f32(b, INFINITY);
        gb_kv_arr(b, "arr.bool", 7, 3);
        gb_u8(b, 1), gb_u8(b, 0), gb_u8(b, 1);
        gb_kv_arr(b, "arr.str", 8, 3);
        gb_str(b, "<pad>"), gb_str(b, ""), gb_strn(b, "a\0b", 3);
        gb_kv_arr(b, "arr.empty", 4, 0);
        gb_kv_arr(b, "arr.u64", 10, 2);
        gb_u64(b, 5), gb_u64(b, UINT64_MAX);
        gb_kv_u32(b, "general.alignment", 64);
        gb_key(b, "empty.str", 8), gb_str(b, "");

        gb_tensor(b, "a", 2, ne_a, 8, 0);         /* Q8_0: 2 blocks/row, 3 rows = 204 bytes */
        gb_tensor(b, "b", 1, ne_b, 12, 256);      /* Q4_K: 144 bytes */
        gb_tensor(b, "c.weight", 3, ne_c, 0, 448);  /* F32: 512 bytes */
        gb_pad(b, 64);
        for (int i = 0; i < 448 + 512; i++)
                gb_u8(b, (uint8_t) i);
}

static void check_sample(const gguf_file *f, const void *base) {
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
        float x;
        bool bo;
        gguf_str s;
        gguf_type et;
        uint64_t n;
        const void *data;
        const gguf_tensor *t;
        size_t size;

        CHECK_EQ_INT(gguf_version(f), 3);
        CHECK_EQ_INT(gguf_alignment(f), 64);
        CHECK_EQ_INT(gguf_n_kv(f), 22);
        CHECK_EQ_INT(gguf_n_tensors(f), 3);
        CHECK(gguf_file_data(f, &size) == base);

        /* keys by index and by name */
        CHECK(gguf_str_eq(gguf_key_name(f, 0), "general.architecture"));
        CHECK_EQ_INT(gguf_key_type(f, 0), GGUF_TYPE_STRING);
        CHECK_EQ_INT(gguf_find_key(f, "general.architecture"), 0);
        CHECK_EQ_INT(gguf_find_key(f, "u8"), 1);
        CHECK_EQ_INT(gguf_find_key(f, "empty.str"), 21);
        CHECK_EQ_INT(gguf_find_key(f, "nope"), -ENOENT);
        CHECK_EQ_INT(gguf_find_key(f, "u"), -ENOENT);
        CHECK_EQ_INT(gguf_find_key(f, "u88"), -ENOENT);
        CHECK_EQ_INT(gguf_key_type(f, 22), _GGUF_TYPE_MAX);
        CHECK_EQ_INT(gguf_key_name(f, -1).len, 0);

        CHECK_OK(gguf_get_str(f, "general.architecture", &s));
        CHECK(gguf_str_eq(s, "llama"));
        CHECK_OK(gguf_get_str(f, "empty.str", &s));
        CHECK(s.len == 0 && gguf_str_eq(s, ""));
        CHECK_EQ_INT(gguf_get_str(f, "u8", &s), -EINVAL);
        CHECK_EQ_INT(gguf_get_str(f, "missing", &s), -ENOENT);

        /* integers of every width, range-checked */
        CHECK_OK(gguf_get_u32(f, "u8", &u32));
        CHECK_EQ_INT(u32, 200);
        CHECK_OK(gguf_get_i32(f, "u8", &i32));
        CHECK_EQ_INT(i32, 200);
        CHECK_EQ_INT(gguf_get_u32(f, "i8", &u32), -ERANGE);
        CHECK_OK(gguf_get_i32(f, "i8", &i32));
        CHECK_EQ_INT(i32, -1);
        CHECK_OK(gguf_get_i64(f, "i16", &i64));
        CHECK_EQ_INT(i64, -32768);
        CHECK_OK(gguf_get_u64(f, "u16", &u64));
        CHECK_EQ_INT(u64, 65535);
        CHECK_OK(gguf_get_u32(f, "u32", &u32));
        CHECK(u32 == 4000000000u);
        CHECK_EQ_INT(gguf_get_i32(f, "u32", &i32), -ERANGE);
        CHECK_OK(gguf_get_i64(f, "u32", &i64));
        CHECK_EQ_INT(i64, 4000000000LL);
        CHECK_OK(gguf_get_i32(f, "i32", &i32));
        CHECK_EQ_INT(i32, -7);
        CHECK_EQ_INT(gguf_get_u64(f, "i32", &u64), -ERANGE);
        CHECK_OK(gguf_get_u64(f, "u64", &u64));
        CHECK(u64 == UINT64_C(1) << 63);
        CHECK_EQ_INT(gguf_get_i64(f, "u64", &i64), -ERANGE);
        CHECK_EQ_INT(gguf_get_u32(f, "u64", &u32), -ERANGE);
        CHECK_OK(gguf_get_i64(f, "i64", &i64));
        CHECK(i64 == INT64_MIN);
        CHECK_EQ_INT(gguf_get_i32(f, "i64", &i32), -ERANGE);
        CHECK_OK(gguf_get_u32(f, "bool", &u32));
        CHECK_EQ_INT(u32, 1);
        CHECK_EQ_INT(gguf_get_u32(f, "f32", &u32), -EINVAL);
        CHECK_EQ_INT(gguf_get_u32(f, "general.architecture", &u32), -EINVAL);
        CHECK_EQ_INT(gguf_get_u32(f, "arr.i32", &u32), -EINVAL);
        CHECK_EQ_INT(gguf_get_u32(f, "missing", &u32), -ENOENT);

        /* floats and booleans */
        CHECK_OK(gguf_get_f32(f, "f32", &x));
        CHECK(x == 1e-6f);
        CHECK_OK(gguf_get_f32(f, "f64", &x));
        CHECK(x == 0.25f);
        CHECK_EQ_INT(gguf_get_f32(f, "f64.big", &x), -ERANGE);
        CHECK_OK(gguf_get_f32(f, "f64.inf", &x));
        CHECK(isinf(x) && x < 0);
        CHECK_EQ_INT(gguf_get_f32(f, "u32", &x), -EINVAL);
        CHECK_OK(gguf_get_bool(f, "bool", &bo));
        CHECK(bo);
        CHECK_EQ_INT(gguf_get_bool(f, "u8", &bo), -ERANGE);
        CHECK_EQ_INT(gguf_get_bool(f, "f32", &bo), -EINVAL);

        /* arrays */
        CHECK_OK(gguf_get_arr(f, "arr.i32", &et, &n, &data));
        CHECK(et == GGUF_TYPE_INT32 && n == 4 && data);
        for (uint64_t i = 0; i < 4; i++) {
                CHECK_OK(gguf_get_arr_i64(f, "arr.i32", i, &i64));
                CHECK_EQ_INT(i64, (int64_t) i * 10 - 10);
        }
        CHECK_EQ_INT(gguf_get_arr_i64(f, "arr.i32", 4, &i64), -ERANGE);
        CHECK_EQ_INT(gguf_get_arr_i64(f, "arr.i32", UINT64_MAX, &i64), -ERANGE);
        CHECK_EQ_INT(gguf_get_arr_f32(f, "arr.i32", 0, &x), -EINVAL);
        CHECK_EQ_INT(gguf_get_arr_str(f, "arr.i32", 0, &s), -EINVAL);
        CHECK_OK(gguf_get_arr_f32(f, "arr.f32", 0, &x));
        CHECK(x == 1.5f);
        CHECK_OK(gguf_get_arr_f32(f, "arr.f32", 1, &x));
        CHECK(isinf(x));
        CHECK_OK(gguf_get_arr_i64(f, "arr.bool", 2, &i64));
        CHECK_EQ_INT(i64, 1);
        CHECK_OK(gguf_get_arr(f, "arr.str", &et, &n, &data));
        CHECK(et == GGUF_TYPE_STRING && n == 3 && data == NULL);
        CHECK_OK(gguf_get_arr_str(f, "arr.str", 0, &s));
        CHECK(gguf_str_eq(s, "<pad>"));
        CHECK_OK(gguf_get_arr_str(f, "arr.str", 1, &s));
        CHECK(s.len == 0);
        CHECK_OK(gguf_get_arr_str(f, "arr.str", 2, &s));
        CHECK(s.len == 3 && memcmp(s.p, "a\0b", 3) == 0);
        CHECK_EQ_INT(gguf_get_arr_str(f, "arr.str", 3, &s), -ERANGE);
        CHECK_EQ_INT(gguf_get_arr_i64(f, "arr.str", 0, &i64), -EINVAL);
        CHECK_OK(gguf_get_arr(f, "arr.empty", &et, &n, NULL));
        CHECK(et == GGUF_TYPE_UINT32 && n == 0);
        CHECK_EQ_INT(gguf_get_arr_i64(f, "arr.empty", 0, &i64), -ERANGE);
        CHECK_OK(gguf_get_arr_i64(f, "arr.u64", 0, &i64));
        CHECK_EQ_INT(i64, 5);
        CHECK_EQ_INT(gguf_get_arr_i64(f, "arr.u64", 1, &i64), -ERANGE);
        CHECK_EQ_INT(gguf_get_arr(f, "u8", &et, &n, &data), -EINVAL);
        CHECK_EQ_INT(gguf_get_arr(f, "missing", &et, &n, &data), -ENOENT);
        /* scalar or array */
        CHECK_OK(gguf_get_i64_at(f, "u8", 7, &i64));
        CHECK_EQ_INT(i64, 200);
        CHECK_OK(gguf_get_i64_at(f, "arr.i32", 2, &i64));
        CHECK_EQ_INT(i64, 10);
        CHECK_EQ_INT(gguf_get_i64_at(f, "arr.i32", 4, &i64), -ERANGE);
        CHECK_EQ_INT(gguf_get_i64_at(f, "f32", 0, &i64), -EINVAL);
        CHECK_EQ_INT(gguf_get_i64_at(f, "arr.str", 0, &i64), -EINVAL);
        CHECK_EQ_INT(gguf_get_i64_at(f, "missing", 0, &i64), -ENOENT);
        CHECK_OK(gguf_get_f32_at(f, "f64", 3, &x));
        CHECK(x == 0.25f);
        CHECK_OK(gguf_get_f32_at(f, "arr.f32", 0, &x));
        CHECK(x == 1.5f);
        CHECK_EQ_INT(gguf_get_f32_at(f, "arr.f32", 2, &x), -ERANGE);
        CHECK_EQ_INT(gguf_get_f32_at(f, "u8", 0, &x), -EINVAL);
        CHECK_EQ_INT(gguf_get_f32_at(f, "missing", 0, &x), -ENOENT);
        /* by key index */
        int k = gguf_find_key(f, "arr.str");
        CHECK_OK(k);
        CHECK_OK(gguf_kv_arr(f, k, &et, &n, NULL));
        CHECK_EQ_INT(n, 3);
        CHECK_OK(gguf_kv_arr_str(f, k, 0, &s));
        CHECK(gguf_str_eq(s, "<pad>"));
        CHECK_EQ_INT(gguf_kv_arr_str(f, 99, 0, &s), -ENOENT);
        CHECK_OK(gguf_kv_arr_i64(f, gguf_find_key(f, "arr.i32"), 3, &i64));
        CHECK_EQ_INT(i64, 20);
        CHECK_OK(gguf_kv_arr_f32(f, gguf_find_key(f, "arr.f32"), 0, &x));
        CHECK(x == 1.5f);

        /* tensors: data section at the 64-byte boundary after the infos */
        t = gguf_find_tensor(f, "a");
        CHECK(t && t == gguf_tensor_at(f, 0));
        CHECK_EQ_INT(t->n_dims, 2);
        CHECK(t->ne[0] == 64 && t->ne[1] == 3 && t->ne[2] == 1 && t->ne[3] == 1);
        CHECK_EQ_INT(t->type, 8);
        CHECK_EQ_INT(t->nbytes, 2 * 34 * 3);
        CHECK_EQ_INT(((const uint8_t *) t->data - (const uint8_t *) base) % 64, 0);
        CHECK_EQ_INT(((const uint8_t *) t->data)[1], 1);
        t = gguf_find_tensor(f, "b");
        CHECK(t && t->nbytes == 144 && t->type == 12);
        CHECK_EQ_INT(((const uint8_t *) t->data)[0], 0);
        t = gguf_find_tensor(f, "c.weight");
        CHECK(t && t->nbytes == 32 * 2 * 2 * 4 && t->n_dims == 3 && t->ne[3] == 1);
        CHECK_EQ_INT((const uint8_t *) t->data + t->nbytes - (const uint8_t *) base, size);
        CHECK(gguf_find_tensor(f, "c") == NULL);
        CHECK(gguf_find_tensor(f, "") == NULL);
        CHECK(gguf_tensor_at(f, 3) == NULL && gguf_tensor_at(f, -1) == NULL);
}

/* The mapping must be read-only and shared with the page cache. */
static void check_mapping_shared(const void *base) {
        _cleanup_fclose_ FILE *maps = fopen("/proc/self/maps", "re");
        char line[512];
        bool found = false;

        if (!maps)
                return;
        while (fgets(line, sizeof line, maps)) {
                unsigned long lo, hi;
                char perms[5];
                if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3)
                        continue;
                if ((uintptr_t) base >= lo && (uintptr_t) base < hi) {
                        CHECK_MSG(strcmp(perms, "r--s") == 0, "mapping is %s, want r--s", perms);
                        found = true;
                }
        }
        CHECK(found);
}

static void test_sample(void) {
        gb b = { 0 };
        gguf_file *f = NULL;
        char err[256] = "", path[] = "/tmp/test-gguf-XXXXXX";
        int fd;

        build_sample(&b);
        CHECK_MSG(gguf_open_memory(b.p, b.n, &f, err, sizeof err) == 0, "%s", err);
        check_sample(f, b.p);
        gguf_close(f);

        /* The same bytes through a file: mapped, not copied. */
        fd = mkstemp(path);
        CHECK(fd >= 0);
        CHECK(write(fd, b.p, b.n) == (ssize_t) b.n);
        CHECK_MSG(gguf_open_fd(fd, &f, err, sizeof err) == 0, "%s", err);
        close(fd); /* the mapping outlives the fd */
        check_mapping_shared(gguf_file_data(f, NULL));
        check_sample(f, gguf_file_data(f, NULL));
        gguf_close(f);
        CHECK_MSG(gguf_open_path(path, &f, err, sizeof err) == 0, "%s", err);
        check_sample(f, gguf_file_data(f, NULL));
        gguf_close(f);
        unlink(path);

        CHECK_EQ_INT(gguf_open_path("/nonexistent/x.gguf", &f, err, sizeof err), -ENOENT);
        CHECK(strstr(err, "/nonexistent/x.gguf"));
        CHECK_EQ_INT(gguf_open_path("/tmp", &f, err, sizeof err), -EISDIR);
        CHECK_EQ_INT(gguf_open_fd(-1, &f, NULL, 0), -EINVAL);
        /* only regular files are mapped */
        int pfd[2];
        CHECK(pipe(pfd) == 0);
        CHECK_EQ_INT(gguf_open_fd(pfd[0], &f, err, sizeof err), -EINVAL);
        close(pfd[0]), close(pfd[1]);
        CHECK_EQ_INT(gguf_open_path("/dev/null", &f, err, sizeof err), -EINVAL);
        CHECK(strstr(err, "/dev/null: the model is not a regular file"));
        gguf_close(NULL);
        gb_free(&b);
}

/* Every ggml type id: accepted with the right size exactly when
 * tensor-type.c knows it (the removed ids 4, 5, 31-33, 36-38 and those past
 * 39 are not). */
static void test_all_types(void) {
        int known = 0;
        for (uint32_t type = 0; type < 64; type++) {
                const type_traits *tt = type_traits_get(type);
                int64_t ne[2] = { 512, 3 };
                gguf_file *f = NULL;
                char err[256] = "";
                gb b = { 0 };
                int r;

                gb_header(&b, 2, 1, 1); /* version 2 reads the same */
                gb_kv_str(&b, "general.architecture", "llama");
                gb_tensor(&b, "w", 2, ne, type, 0);
                gb_pad(&b, 32);
                gb_zeros(&b, 512 * 3 * 8);
                r = gguf_open_memory(b.p, b.n, &f, err, sizeof err);
                if (tt) {
                        CHECK_MSG(r == 0, "type %u: %s", type, err);
                        CHECK_EQ_INT(gguf_version(f), 2);
                        CHECK_EQ_INT(gguf_tensor_at(f, 0)->nbytes, 512 / tt->block_size * tt->type_size * 3);
                        known++;
                } else {
                        CHECK_EQ_INT(r, -EBADMSG);
                        CHECK(strstr(err, "unknown tensor type id"));
                }
                gguf_close(f);
                gb_free(&b);
        }
        CHECK_EQ_INT(known, 40 - 8);
}

/* general.alignment 1 is legal: tensors may sit anywhere their blocks'
 * own alignment allows. */
static void test_alignment_1(void) {
        gb b = { 0 };
        gguf_file *f = NULL;
        char err[256] = "";
        size_t data_start, k;

        gb_header(&b, 3, 2, 2);
        gb_kv_str(&b, "general.architecture", "llama");
        gb_kv_u32(&b, "general.alignment", 1);
        gb_tensor(&b, "a", 1, (int64_t[]) { 1 }, 24, 0); /* one I8 */
        data_start = b.n + 8 + 1 + 4 + 8 + 4 + 8;         /* after b's info */
        k = 1 + (4 - (data_start + 1) % 4) % 4;           /* first F32-aligned offset > 0 */
        gb_tensor(&b, "b", 1, (int64_t[]) { 4 }, 0, k);
        CHECK_EQ_INT(b.n, data_start);
        gb_zeros(&b, k + 16);
        CHECK_MSG(gguf_open_memory(b.p, b.n, &f, err, sizeof err) == 0, "%s", err);
        CHECK_EQ_INT(gguf_alignment(f), 1);
        CHECK_EQ_INT((const uint8_t *) gguf_find_tensor(f, "a")->data - b.p, data_start);
        CHECK_EQ_INT(((const uint8_t *) gguf_find_tensor(f, "b")->data - b.p) % 4, 0);
        gguf_close(f);
        gb_free(&b);
}

/* ---- the shared golden files ---- */

static void check_tensors_inside(const gguf_file *f, const char *path) {
        size_t size;
        const uint8_t *base = gguf_file_data(f, &size);
        uint64_t total = 0;

        for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
                const gguf_tensor *t = gguf_tensor_at(f, i);
                const uint8_t *d = t->data;
                char name[128];

                CHECK(t->n_dims >= 1 && t->n_dims <= 4);
                CHECK_MSG(d >= base && t->nbytes <= size && (size_t) (d - base) <= size - t->nbytes,
                          "%s: tensor %" PRId64 " outside the file", path, i);
                CHECK_EQ_INT((size_t) (d - base) % gguf_alignment(f), 0);
                snprintf(name, sizeof name, "%.*s", (int) t->name.len, t->name.p);
                CHECK(gguf_find_tensor(f, name) == t);
                total += t->nbytes;
        }
        CHECK(total <= size);
}

static void test_vocab(const char *dir) {
        char path[4096], err[256] = "";
        gguf_file *f = NULL;
        gguf_str s;
        gguf_type et;
        uint64_t n;
        float x;
        int64_t v;
        uint64_t bytes = 0;

        CHECK(snprintf(path, sizeof path, "%s/models/gemma3-vocab.gguf", dir) < (int) sizeof path);
        if (access(path, R_OK) < 0) {
                printf("no %s, vocabulary checks skipped\n", path);
                return;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_MSG(gguf_open_path(path, &f, err, sizeof err) == 0, "%s", err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("gemma3-vocab.gguf (262144 tokens) opened in %.2f ms\n",
               (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
        CHECK_OK(gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n, NULL));
        CHECK(et == GGUF_TYPE_STRING);
        CHECK_EQ_INT(n, 262144);
        CHECK_OK(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 0, &s));
        CHECK(gguf_str_eq(s, "<pad>"));
        CHECK_OK(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 2, &s));
        CHECK(gguf_str_eq(s, "<bos>"));
        CHECK_OK(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 262143, &s));
        CHECK(s.len > 0);
        CHECK_EQ_INT(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 262144, &s), -ERANGE);
        /* every element reachable, each inside the file */
        int k = gguf_find_key(f, "tokenizer.ggml.tokens");
        CHECK_OK(k);
        for (uint64_t i = 0; i < n; i++) {
                CHECK_OK(gguf_kv_arr_str(f, k, i, &s));
                bytes += s.len;
        }
        CHECK(bytes > 262144 && bytes < 6511840);
        CHECK_OK(gguf_get_arr(f, "tokenizer.ggml.scores", &et, &n, NULL));
        CHECK(et == GGUF_TYPE_FLOAT32 && n == 262144);
        CHECK_OK(gguf_get_arr_f32(f, "tokenizer.ggml.scores", 262143, &x));
        CHECK_OK(gguf_get_arr_i64(f, "tokenizer.ggml.token_type", 0, &v));
        CHECK_EQ_INT(v, 3); /* <pad> is CONTROL */
        CHECK_OK(gguf_get_i64(f, "tokenizer.ggml.bos_token_id", &v));
        CHECK_EQ_INT(v, 2);
        CHECK_EQ_INT(gguf_n_tensors(f), 0);
        gguf_close(f);
}

static void test_models(const char *dir) {
        char path[4096], err[256] = "";
        gguf_file *f = NULL;
        gguf_str s;
        uint32_t u;
        float x;
        int64_t v;
        const gguf_tensor *t;

        /* llama Q4_K: every 2-D tensor is Q4_K, norms F32 */
        CHECK(snprintf(path, sizeof path, "%s/golden/llama-q4_k.gguf", dir) < (int) sizeof path);
        CHECK_MSG(gguf_open_path(path, &f, err, sizeof err) == 0, "%s", err);
        CHECK_OK(gguf_get_u32(f, "llama.block_count", &u));
        CHECK_EQ_INT(u, 2);
        CHECK_OK(gguf_get_u32(f, "llama.embedding_length", &u));
        CHECK_EQ_INT(u, 256);
        CHECK_EQ_INT(gguf_n_tensors(f), 21);
        t = gguf_find_tensor(f, "token_embd.weight");
        CHECK(t && t->type == 12 && t->ne[0] == 256 && t->ne[1] == 512 && t->nbytes == 512 * 144);
        t = gguf_find_tensor(f, "blk.1.ffn_down.weight");
        CHECK(t && t->type == 12 && t->ne[0] == 768 && t->ne[1] == 256);
        t = gguf_find_tensor(f, "output_norm.weight");
        CHECK(t && t->type == 0 && t->n_dims == 1 && t->nbytes == 1024);
        gguf_close(f);

        /* gemma3n: array hyperparameters and ±inf-capable floats */
        CHECK(snprintf(path, sizeof path, "%s/golden/gemma3n-f16.gguf", dir) < (int) sizeof path);
        CHECK_MSG(gguf_open_path(path, &f, err, sizeof err) == 0, "%s", err);
        CHECK_EQ_INT(gguf_n_tensors(f), 607);
        CHECK_OK(gguf_get_arr_i64(f, "gemma3n.feed_forward_length", 24, &v));
        CHECK_EQ_INT(v, 128);
        CHECK_EQ_INT(gguf_get_u32(f, "gemma3n.feed_forward_length", &u), -EINVAL);
        CHECK_OK(gguf_get_i64_at(f, "gemma3n.feed_forward_length", 3, &v));
        CHECK_EQ_INT(v, 128);
        CHECK_OK(gguf_get_i64_at(f, "gemma3n.block_count", 3, &v));
        CHECK_EQ_INT(v, 25);
        CHECK_OK(gguf_get_i64_at(f, "gemma3n.attention.sliding_window_pattern", 4, &v));
        CHECK_EQ_INT(v, 0); /* layer 4 is global */
        CHECK_OK(gguf_get_arr_f32(f, "gemma3n.activation_sparsity_scale", 0, &x));
        CHECK(fabsf(x - 1.6448533535f) < 1e-5f);
        CHECK_OK(gguf_get_f32(f, "gemma3n.final_logit_softcapping", &x));
        CHECK(x == 30.0f);
        t = gguf_find_tensor(f, "per_layer_token_embd.weight");
        CHECK(t && t->type == 8 && t->nbytes == (uint64_t) 6400 / 32 * 34 * 288);
        gguf_close(f);

        /* stories260K: a real model */
        CHECK(snprintf(path, sizeof path, "%s/models/stories260K.gguf", dir) < (int) sizeof path);
        CHECK_MSG(gguf_open_path(path, &f, err, sizeof err) == 0, "%s", err);
        CHECK_OK(gguf_get_str(f, "general.architecture", &s));
        CHECK(gguf_str_eq(s, "llama"));
        CHECK_EQ_INT(gguf_n_tensors(f), 48);
        CHECK_OK(gguf_get_u32(f, "llama.context_length", &u));
        CHECK_EQ_INT(u, 512);
        gguf_close(f);
}

static void test_shared(void) {
        const char *dir = test_shared_dir();
        static const char *const subdirs[] = { "golden", "models" };
        int n_files = 0;

        for (size_t d = 0; d < 2; d++) {
                char dpath[4096];
                DIR *dh;
                struct dirent *de;

                CHECK(snprintf(dpath, sizeof dpath, "%s/%s", dir, subdirs[d]) < (int) sizeof dpath);
                dh = opendir(dpath);
                if (!dh)
                        continue;
                while ((de = readdir(dh))) {
                        size_t l = strlen(de->d_name);
                        char path[8192], err[256] = "";
                        gguf_file *f = NULL, *g = NULL;
                        gguf_str arch;
                        size_t size;
                        void *copy;

                        if (l < 5 || strcmp(de->d_name + l - 5, ".gguf") != 0)
                                continue;
                        CHECK(snprintf(path, sizeof path, "%s/%s", dpath, de->d_name) < (int) sizeof path);
                        CHECK_MSG(gguf_open_path(path, &f, err, sizeof err) == 0, "%s", err);
                        CHECK_OK(gguf_get_str(f, "general.architecture", &arch));
                        CHECK_MSG(gguf_str_eq(arch, "llama") || gguf_str_eq(arch, "gemma3") ||
                                          gguf_str_eq(arch, "gemma3n") || gguf_str_eq(arch, "qwen2") ||
                                          gguf_str_eq(arch, "qwen3"),
                                  "%s: architecture %.*s", path, (int) arch.len, arch.p);
                        CHECK(gguf_version(f) == 3);
                        check_tensors_inside(f, path);

                        /* The same file from memory parses identically. */
                        copy = test_read_file(path, &size);
                        CHECK(copy);
                        CHECK_MSG(gguf_open_memory(copy, size, &g, err, sizeof err) == 0, "%s", err);
                        CHECK_EQ_INT(gguf_n_kv(g), gguf_n_kv(f));
                        CHECK_EQ_INT(gguf_n_tensors(g), gguf_n_tensors(f));
                        for (int64_t i = 0; i < gguf_n_tensors(f); i++)
                                CHECK(gguf_tensor_at(g, i)->nbytes == gguf_tensor_at(f, i)->nbytes &&
                                      gguf_tensor_at(g, i)->offset == gguf_tensor_at(f, i)->offset);
                        gguf_close(g);
                        free(copy);
                        printf("ok %s: %" PRId64 " keys, %" PRId64 " tensors, arch %.*s\n", de->d_name,
                               gguf_n_kv(f), gguf_n_tensors(f), (int) arch.len, arch.p);
                        gguf_close(f);
                        n_files++;
                }
                closedir(dh);
        }
        CHECK_MSG(n_files >= 10, "only %d GGUF files found under %s", n_files, dir);
        test_models(dir);
        test_vocab(dir);
}

int main(void) {
        test_sample();
        test_all_types();
        test_alignment_1();
        test_shared();
        return 0;
}
