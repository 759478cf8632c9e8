/* SPDX-License-Identifier: MIT */
/* A minimal unit-test harness: each test file is one program; a failed
 * check prints file:line and exits 1; exit 77 means skipped. */
#pragma once

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EXIT_TEST_SKIP 77

#define CHECK(cond)                                                                            \
        do {                                                                                   \
                if (!(cond)) {                                                                 \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                        exit(1);                                                               \
                }                                                                              \
        } while (0)

#define CHECK_MSG(cond, ...)                                                                   \
        do {                                                                                   \
                if (!(cond)) {                                                                 \
                        fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
                        fprintf(stderr, __VA_ARGS__);                                          \
                        fputc('\n', stderr);                                                   \
                        exit(1);                                                               \
                }                                                                              \
        } while (0)

#define CHECK_EQ_INT(a, b)                                                                       \
        do {                                                                                     \
                long long _a = (long long)(a), _b = (long long)(b);                              \
                CHECK_MSG(_a == _b, "%s = %lld, %s = %lld", #a, _a, #b, _b);                     \
        } while (0)

#define CHECK_OK(r)                                                                              \
        do {                                                                                     \
                long long _r = (long long)(r);                                                   \
                CHECK_MSG(_r >= 0, "%s returned %lld (%s)", #r, _r, strerror((int)-_r));          \
        } while (0)

/* The shared golden data (../shared), or skip the whole test with a reason. */
static inline const char *test_shared_dir(void) {
        const char *d = getenv("SHARED");
        static char buf[4096];
        struct stat st;
        if (!d || !*d) {
                snprintf(buf, sizeof buf, "%s", "../shared");
                d = buf;
        }
        if (stat(d, &st) < 0 || !S_ISDIR(st.st_mode)) {
                printf("skipped: shared golden data not found at %s (set SHARED=)\n", d);
                exit(EXIT_TEST_SKIP);
        }
        return d;
}

/* Read a whole file; NULL on error. */
static inline void *test_read_file(const char *path, size_t *size) {
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        void *p = malloc(n > 0 ? (size_t)n : 1);
        if (p && n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n) {
                free(p);
                p = NULL;
        }
        fclose(f);
        if (p && size)
                *size = (size_t)n;
        return p;
}
