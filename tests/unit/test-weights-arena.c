/* SPDX-License-Identifier: MIT */
/* The derived-weights arena: a build is sealed and read back by a second
 * opener without copying; an offer that is unsealed, half sealed, for other
 * files or with a damaged table of contents is refused and a build begins.
 * Both mappings start at a 2 MiB boundary, and where the kernel gives shared
 * memory huge pages a large block is read through 2 MiB mappings. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "weights-arena.h"

#define SEALS_ALL (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

static int source_file(const char *name, size_t size, weights_source *src) {
        int fd = memfd_create(name, MFD_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_OK(ftruncate(fd, (off_t)size));
        CHECK_OK(weights_source_from_fd(fd, src));
        return fd;
}

/* A copy of the memfd `fd`, byte `flip` (if >= 0) inverted, with `seals`. */
static int copy_of(int fd, long flip, int seals) {
        struct stat st;
        CHECK_OK(fstat(fd, &st));
        uint8_t *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        CHECK(p != MAP_FAILED);
        int c = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        CHECK(c >= 0);
        CHECK_EQ_INT(write(c, p, (size_t)st.st_size), st.st_size);
        munmap(p, (size_t)st.st_size);
        if (flip >= 0) {
                uint8_t b;
                CHECK_EQ_INT(pread(c, &b, 1, flip), 1);
                b ^= 0xff;
                CHECK_EQ_INT(pwrite(c, &b, 1, flip), 1);
        }
        if (seals)
                CHECK_OK(fcntl(c, F_ADD_SEALS, seals));
        return c;
}

static void expect_refused(int offered, const weights_source *src, size_t n, const char *why) {
        weights_arena *a;
        char err[256];
        bool fill;
        CHECK_OK(weights_arena_open(offered, src, n, &a, err, sizeof err));
        CHECK_EQ_INT(weights_arena_get_mode(a), WEIGHTS_ARENA_BUILDING);
        CHECK_MSG(strstr(weights_arena_status(a), why), "status '%s', want '%s'", weights_arena_status(a), why);
        /* A new build: the blocks must be made again. */
        CHECK(weights_arena_block(a, &src[0], "one", 1, 1000, &fill) && fill);
        weights_arena_free(a);
}

#define HUGE_PAGE ((uintptr_t)2 << 20)
#define HEADER_SIZE 65536 /* the first block starts right after it */

/* ShmemPmdMapped of the mapping that holds p, in kB (-1: not found). */
static long pmd_mapped_kb(const void *p) {
        char line[512];
        long kb = -1;
        bool in = false;
        FILE *f = fopen("/proc/self/smaps", "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof line, f)) {
                unsigned long lo, hi;
                if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
                        in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
                else if (in && sscanf(line, "ShmemPmdMapped: %ld kB", &kb) == 1)
                        break;
        }
        fclose(f);
        return kb;
}

/* A block of 8 MiB, built and then mapped by a second opener: both through
 * huge pages when the kernel allows them for shared memory. */
static void test_huge_pages(const weights_source *src) {
        const size_t size = 8u << 20;
        char err[256];
        bool fill;
        weights_arena *a, *b;

        CHECK_OK(weights_arena_open(-1, src, 1, &a, err, sizeof err));
        uint8_t *big = weights_arena_block(a, &src[0], "big", 1, size, &fill);
        CHECK(big && fill && ((uintptr_t)big - HEADER_SIZE) % HUGE_PAGE == 0);
        memset(big, 0x5a, size);
        CHECK_OK(weights_arena_seal(a, err, sizeof err));
        CHECK_OK(weights_arena_open(weights_arena_fd(a), src, 1, &b, err, sizeof err));
        const uint8_t *big_b = weights_arena_block(b, &src[0], "big", 1, size, &fill);
        CHECK(big_b && !fill && ((uintptr_t)big_b - HEADER_SIZE) % HUGE_PAGE == 0);
        /* read through both mappings, so that they are mapped at all */
        size_t n = 0;
        for (size_t i = 0; i < size; i += 4096)
                n += (big[i] == 0x5a) + (big_b[i] == 0x5a);
        CHECK_EQ_INT(n, 2 * size / 4096);
        if (weights_arena_huge_pages()) {
                long kb_a = pmd_mapped_kb(big + size / 2), kb_b = pmd_mapped_kb(big_b + size / 2);
                /* of 8 MiB from 64 KiB on: the three whole 2 MiB pages at least */
                CHECK_MSG(kb_a >= 6144 && kb_b >= 6144, "huge-page mapped: builder %ld kB, opener %ld kB", kb_a,
                          kb_b);
                printf("huge pages: builder %ld kB, opener %ld kB of the 8 MiB block\n", kb_a, kb_b);
        } else
                printf("huge pages: not checked, shmem_enabled gives shared memory none here\n");
        weights_arena_free(b);
        weights_arena_free(a);

        /* A stretch left out: written around, it stays out of memory, in
         * the builder and after sealing (mincore: the memfd's pages). */
        enum { lo = 3 << 20, hi = 5 << 20 }; /* inside the block, across a 2 MiB boundary */
        CHECK_OK(weights_arena_open(-1, src, 1, &a, err, sizeof err));
        big = weights_arena_block(a, &src[0], "big", 1, size, &fill);
        CHECK(big && fill);
        weights_arena_small_pages(a, big + lo, hi - lo);
        memset(big, 0x5a, lo);
        memset(big + hi, 0x5a, size - hi);
        CHECK_OK(weights_arena_seal(a, err, sizeof err));
        /* read around it through the read-only mapping */
        n = 0;
        for (size_t i = 0; i < size; i += 4096)
                n += i < lo || i >= hi ? big[i] == 0x5a : 0;
        CHECK_EQ_INT(n, (size - (hi - lo)) / 4096);
        unsigned char vec[(hi - lo) / 4096];
        CHECK_OK(mincore(big + lo, hi - lo, vec));
        size_t resident = 0;
        for (size_t i = 0; i < sizeof vec; i++)
                resident += vec[i] & 1;
        CHECK_MSG(resident == 0, "%zu of %d pages of the left-out stretch in memory", resident, (hi - lo) / 4096);
        weights_arena_free(a);
}

int main(void) {
        weights_source src[2], other;
        char err[256];
        bool fill;
        int f0 = source_file("model", 4096, &src[0]);
        int f1 = source_file("speech", 8192, &src[1]);
        int f2 = source_file("other", 4096, &other);

        /* ---- build ---- */
        weights_arena *a;
        CHECK_OK(weights_arena_open(-1, src, 2, &a, err, sizeof err));
        CHECK_EQ_INT(weights_arena_get_mode(a), WEIGHTS_ARENA_BUILDING);
        CHECK_EQ_INT(weights_arena_fd(a), -1); /* nothing to hand on before sealing */
        uint8_t *one = weights_arena_block(a, &src[0], "one", 1, 1000, &fill);
        CHECK(one && fill && (uintptr_t)one % 64 == 0);
        for (int i = 0; i < 1000; i++)
                one[i] = (uint8_t)i;
        /* Large enough to grow the memfd past several pages. */
        float *two = weights_arena_block(a, &src[1], "two", 3, 300000 * sizeof(float), &fill);
        CHECK(two && fill && (uintptr_t)two % 64 == 0);
        for (int i = 0; i < 300000; i++)
                two[i] = (float)i * 0.5f;
        CHECK(!weights_arena_block(a, &other, "x", 1, 16, &fill)); /* not one of its files */
        CHECK(!weights_arena_block(a, NULL, "x", 1, 16, &fill));
        CHECK_EQ_INT(weights_arena_n_private(a), 2);
        CHECK_OK(weights_arena_seal(a, err, sizeof err));
        int fd = weights_arena_fd(a);
        CHECK(fd >= 0);
        CHECK_EQ_INT(fcntl(fd, F_GET_SEALS) & SEALS_ALL, SEALS_ALL);
        /* Same addresses, same bytes after sealing; nobody can write. */
        CHECK_EQ_INT(one[999], (uint8_t)999);
        CHECK(two[299999] == 299999 * 0.5f);
        CHECK(write(fd, "x", 1) < 0 && errno == EPERM);
        CHECK(ftruncate(fd, 1 << 20) < 0 && errno == EPERM);
        CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
        CHECK(!weights_arena_block(a, &src[0], "late", 1, 16, &fill)); /* sealed: no new block */

        /* ---- a second opener maps it ---- */
        weights_arena *b;
        CHECK_OK(weights_arena_open(fd, src, 2, &b, err, sizeof err));
        CHECK_EQ_INT(weights_arena_get_mode(b), WEIGHTS_ARENA_MAPPED);
        CHECK_EQ_INT(weights_arena_n_blocks(b), 2);
        CHECK_EQ_INT(weights_arena_fd(b), -1); /* only the builder hands it on */
        const uint8_t *one_b = weights_arena_block(b, &src[0], "one", 1, 1000, &fill);
        CHECK(one_b && !fill && one_b != one && memcmp(one_b, one, 1000) == 0);
        const float *two_b = weights_arena_block(b, &src[1], "two", 3, 300000 * sizeof(float), &fill);
        CHECK(two_b && !fill && memcmp(two_b, two, 300000 * sizeof(float)) == 0);
        /* Another version, size, name or file is not that block. */
        CHECK(!weights_arena_block(b, &src[1], "two", 4, 300000 * sizeof(float), &fill));
        CHECK(!weights_arena_block(b, &src[1], "two", 3, 4, &fill));
        CHECK(!weights_arena_block(b, &src[0], "two", 3, 300000 * sizeof(float), &fill));
        CHECK_EQ_INT(weights_arena_n_private(b), 3);
        weights_arena_free(b);

        /* ---- forgeries and mismatches ---- */
        int c = copy_of(fd, -1, 0);
        expect_refused(c, src, 2, "not a sealed memfd");
        close(c);
        c = copy_of(fd, -1, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL); /* writable */
        expect_refused(c, src, 2, "not a sealed memfd");
        close(c);
        c = copy_of(fd, 400, SEALS_ALL); /* a block name in the table of contents */
        expect_refused(c, src, 2, "bad checksum");
        close(c);
        c = copy_of(fd, 0, SEALS_ALL); /* the magic */
        expect_refused(c, src, 2, "another format");
        close(c);
        /* The files changed: other identity. */
        weights_source moved[2] = { src[0], src[1] };
        moved[1].mtime_nsec++;
        expect_refused(fd, moved, 2, "other model files");
        expect_refused(fd, src, 1, "other model files");
        moved[1] = other;
        expect_refused(fd, moved, 2, "other model files");
        /* Not a memfd at all. */
        expect_refused(f0, src, 2, "not a sealed memfd");

        test_huge_pages(src);

        /* ---- no arena: the loaders allocate for themselves ---- */
        CHECK(!weights_arena_block(NULL, &src[0], "one", 1, 1000, &fill) && fill);
        weights_arena_free(a);
        close(f0);
        close(f1);
        close(f2);
        return 0;
}
