/* SPDX-License-Identifier: MIT */
/* The load-time copy of a model's weights (weights-copy.h): the file's
 * image, with the byte ranges of the tensors left in the file ("holes")
 * never written. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "macro.h"
#include "weights-arena.h"
#include "weights-copy.h"

typedef struct hole {
        uint64_t start, end; /* file offsets of the bytes left out of a tensor */
        gguf_str name;
        uint64_t kept;       /* its bytes before them, in the copy */
} hole;

static int hole_cmp(const void *a, const void *b) {
        const hole *x = a, *y = b;
        return x->start < y->start ? -1 : x->start > y->start;
}

/* What is left out of g's tensors, by file offset (GGUF tensors never
 * overlap: gguf.h); h has room for every tensor. */
static size_t find_holes(const gguf_file *g, weights_copied_fn copied, const char *matformer, hole *h) {
        size_t size, n = 0;
        const uint8_t *base = gguf_file_data(g, &size);

        for (int64_t i = 0; copied && i < gguf_n_tensors(g); i++) {
                const gguf_tensor *t = gguf_tensor_at(g, i);
                uint64_t kept = t->nbytes > 0 ? copied(g, t, matformer) : 0;
                if (kept < t->nbytes) {
                        uint64_t start = (uint64_t)((const uint8_t *)t->data - base);
                        h[n++] = (hole){ .start = start + kept, .end = start + t->nbytes, .name = t->name, .kept = kept };
                }
        }
        qsort(h, n, sizeof *h, hole_cmp);
        return n;
}

static int pread_at(int fd, uint8_t *dst, size_t len, uint64_t off) {
        for (size_t done = 0; done < len;) {
                ssize_t k = pread(fd, dst + done, MIN(len - done, (size_t)64 << 20), (off_t)(off + done));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                done += (size_t)k;
        }
        return 0;
}

/* Every byte of the file but the holes', at its offset in dst. */
static int copy_gaps(int fd, uint8_t *dst, size_t size, const hole *h, size_t n) {
        uint64_t at = 0;
        int r;

        for (size_t i = 0; i <= n; i++) {
                uint64_t end = i < n ? h[i].start : size;
                if (end > at && (r = pread_at(fd, dst + at, (size_t)(end - at), at)) < 0)
                        return r;
                if (i < n)
                        at = h[i].end;
        }
        return 0;
}

/* The gaps between holes in memory, rounded out to whole pages: a page
 * shared by a gap and a hole belongs to the gap (it is written); the
 * hole's whole pages are never touched. */
static int protect_gaps(uint8_t *data, size_t size, const hole *h, size_t n, int prot) {
        uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
        uint64_t at = 0;

        for (size_t i = 0; i <= n; i++) {
                uint64_t end = i < n ? h[i].start : size;
                if (end > at) {
                        uintptr_t a = (uintptr_t)(data + at) & ~(ps - 1);
                        uintptr_t b = ((uintptr_t)(data + end) + ps - 1) & ~(ps - 1);
                        if (mprotect((void *)a, b - a, prot) < 0)
                                return -errno;
                }
                if (i < n)
                        at = h[i].end;
        }
        return 0;
}

/* The arena block's name says what it leaves out (a hash of the tensors'
 * names and of how much of each it keeps), so an image with other holes is
 * never taken for this one:
 * "gguf.image" (the whole file, as for llama) or "gguf.image-x<hash>". */
static void block_name(const hole *h, size_t n, char *buf, size_t len) {
        uint64_t x = 0xcbf29ce484222325ull;

        if (n == 0) {
                snprintf(buf, len, "gguf.image");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                for (uint64_t k = 0; k <= h[i].name.len; k++) {
                        x ^= k < h[i].name.len ? (uint8_t)h[i].name.p[k] : 0;
                        x *= 0x100000001b3ull;
                }
                for (int k = 0; h[i].kept && k < 8; k++) {
                        x ^= (uint8_t)(h[i].kept >> (8 * k));
                        x *= 0x100000001b3ull;
                }
        }
        snprintf(buf, len, "gguf.image-x%016llx", (unsigned long long)x);
}

/* 1: in the arena; 0: no arena block; <0: it could not be filled. */
static int copy_arena(int fd, size_t size, const hole *h, size_t n, weights_copy *c) {
        weights_arena *a = weights_arena_default();
        weights_source src;
        bool fill = false;
        char name[WEIGHTS_ARENA_NAME_MAX];

        if (!a || weights_source_from_fd(fd, &src) < 0)
                return 0;
        block_name(h, n, name, sizeof name);
        uint8_t *b = weights_arena_block(a, &src, name, 1, size, &fill);
        if (!b)
                return 0;
        /* before the copy writes next to them */
        for (size_t i = 0; i < n; i++)
                weights_arena_small_pages(a, b + h[i].start, (size_t)(h[i].end - h[i].start));
        if (fill) {
                int r = copy_gaps(fd, b, size, h, n);
                if (r < 0)
                        return r;
        }
        c->image = b;
        c->in_arena = true;
        return 1;
}

/* Anonymous memory at a 2 MiB boundary, MADV_HUGEPAGE (best effort: THP
 * may be off).  Only the gaps are ever accessible: the holes stay PROT_NONE
 * (and, being separate mappings, are never part of a huge page). */
static int copy_private(int fd, size_t size, const hole *h, size_t n, weights_copy *c) {
        const size_t huge = (size_t)2 << 20;
        size_t len = size + huge;
        int r;

        void *map = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (map == MAP_FAILED)
                return -errno;
        uint8_t *data = (uint8_t *)(((uintptr_t)map + huge - 1) & ~(uintptr_t)(huge - 1));
        (void)madvise(data, size, MADV_HUGEPAGE);
        r = protect_gaps(data, size, h, n, PROT_READ | PROT_WRITE);
        if (r >= 0)
                r = copy_gaps(fd, data, size, h, n);
        if (r >= 0)
                r = protect_gaps(data, size, h, n, PROT_READ);
        if (r < 0) {
                munmap(map, len);
                return r;
        }
        c->image = data;
        c->map = map;
        c->map_len = len;
        return 0;
}

int weights_copy_make(int fd, const gguf_file *g, weights_copied_fn copied, const char *matformer,
                      weights_copy *ret) {
        _cleanup_free_ hole *h = NULL;
        weights_copy c = {};
        size_t size, n = 0;
        int r;

        *ret = (weights_copy){};
        (void)gguf_file_data(g, &size);
        /* Arena blocks are 64-byte aligned: enough for GGUF's usual 32. */
        if (gguf_alignment(g) > 64 || size == 0)
                return 0;
        if (copied && gguf_n_tensors(g) > 0) {
                h = calloc((size_t)gguf_n_tensors(g), sizeof *h);
                if (!h)
                        return 0;
                n = find_holes(g, copied, matformer, h);
        }
        if (n > 0) {
                void *f = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
                if (f == MAP_FAILED)
                        return 0;
                c.file = f;
                c.file_len = size;
                c.file_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3); /* -1: reads go through the mapping */
                c.holes = calloc(n, sizeof *c.holes);
                if (!c.holes) {
                        weights_copy_done(&c);
                        return 0;
                }
                for (size_t i = 0; i < n; i++)
                        c.holes[i] = (weights_hole){ .start = h[i].start, .end = h[i].end };
        }
        c.size = size;
        c.n_left_out = (uint32_t)n;

        /* An arena block that cannot be filled is an error; no memory for
         * a private copy is not: the mapping serves. */
        r = copy_arena(fd, size, h, n, &c);
        if (r < 0 || (r == 0 && copy_private(fd, size, h, n, &c) < 0)) {
                weights_copy_done(&c);
                return MIN(r, 0);
        }
        *ret = c;
        return 1;
}

const void *weights_copy_tensor_data(const weights_copy *c, const gguf_tensor *t) {
        const uint8_t *p = t->data;

        if (!c->image || c->n_left_out == 0 || p < c->image || (size_t)(p - c->image) >= c->size)
                return t->data;
        uint64_t off = (uint64_t)(p - c->image);
        /* the last hole starting at or before off */
        size_t lo = 0, hi = c->n_left_out;
        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;
                if (c->holes[mid].start <= off)
                        lo = mid;
                else
                        hi = mid;
        }
        if (c->holes[lo].start <= off && off < c->holes[lo].end)
                return c->file + off;
        return t->data;
}

int weights_copy_read(const weights_copy *c, const void *p, size_t len, void *buf) {
        const uint8_t *q = p;

        if (!c->file || c->file_fd < 0 || q < c->file || (size_t)(q - c->file) > c->file_len ||
            len > c->file_len - (size_t)(q - c->file))
                return -ENOENT;
        return pread_at(c->file_fd, buf, len, (uint64_t)(q - c->file)); /* -EIO: truncated under us */
}

void weights_copy_done(weights_copy *c) {
        free(c->holes);
        if (c->file && c->file_fd >= 0)
                close(c->file_fd);
        if (c->map)
                munmap(c->map, c->map_len);
        if (c->file)
                munmap((void *)c->file, c->file_len);
        *c = (weights_copy){};
}
