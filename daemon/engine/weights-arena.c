/* SPDX-License-Identifier: MIT */
/* The derived-weights arena (weights-arena.h).
 *
 * The memfd: a 64 KiB header (format, sources, table of contents, a
 * checksum of all of it), then the blocks, each 64-byte aligned, the file
 * a whole number of pages.
 *
 * Every mapping of it starts at a 2 MiB boundary and asks for huge pages
 * (MADV_HUGEPAGE): where the kernel gives shared memory huge pages
 * (/sys/kernel/mm/transparent_hugepage/shmem_enabled: always, within_size,
 * or advise), the weights are read through 2 MiB mappings, and decoding
 * E2B is 4-10 % faster than on 4 KiB pages, as fast as from the private
 * copy (tests/bench/REFERENCE.md, run 15).  Where it does not (never, the
 * usual default), nothing changes.  Stretches that nobody touches are kept
 * out of huge pages (weights_arena_small_pages).
 *
 * Building: a range of address space is reserved up front (PROT_NONE), the
 * memfd grows by ftruncate and each new stretch is mapped writable at its
 * place in the reservation, so a loader's pointer never moves.  Sealing
 * (F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE|F_SEAL_SEAL) happens with the
 * writable mapping gone, and the memfd comes back read-only at the same
 * addresses: from then on nobody, not even this process, can change a byte
 * of it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "weights-arena.h"

#define ARENA_MAGIC "SOTTOWA\x01"
#define ARENA_FORMAT 1u
#define ARENA_HEADER_SIZE 65536u
#define ARENA_ALIGN 64u
#define ARENA_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)
#define ARENA_MAX_SIZE (1ull << 40)

typedef struct arena_entry {
        char name[WEIGHTS_ARENA_NAME_MAX];
        uint32_t source; /* index into the header's sources */
        uint32_t version;
        uint64_t offset, size;
} arena_entry;

typedef struct arena_header {
        char magic[8];
        uint32_t format;
        uint32_t n_sources;
        uint32_t n_blocks;
        uint32_t page_size;
        uint64_t total_size;
        uint64_t checksum; /* FNV-1a 64 of the header and entries, this field zero */
        weights_source sources[WEIGHTS_ARENA_MAX_SOURCES];
} arena_header;

#define ARENA_MAX_BLOCKS ((ARENA_HEADER_SIZE - sizeof(arena_header)) / sizeof(arena_entry))

struct weights_arena {
        weights_arena_mode mode;
        int fd;              /* the memfd we built, -1 otherwise */
        uint8_t *base;       /* building: the reservation; mapped: the mapping */
        size_t reserved;     /* building: bytes of address space reserved */
        size_t mapped;       /* bytes of the memfd mapped at base */
        size_t used;         /* building: end of the last block */
        bool sealed;
        size_t n_sources;
        weights_source sources[WEIGHTS_ARENA_MAX_SOURCES];
        uint32_t n_blocks, n_private;
        arena_entry *entries; /* building: kept here until sealing; mapped: in the header */
        struct { size_t offset, len; } *small; /* weights_arena_small_pages, page-aligned */
        size_t n_small;
        char status[200];
};

static weights_arena *default_arena;

#define HUGE_PAGE ((size_t)2 << 20)

/* Address space for len bytes at a 2 MiB boundary, PROT_NONE, the slack
 * around it returned. */
static void *reserve_aligned(size_t len) {
        uint8_t *p = mmap(NULL, len + HUGE_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
                return MAP_FAILED;
        uint8_t *base = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
        if (base > p)
                munmap(p, (size_t)(base - p));
        munmap(base + len, (size_t)(p + HUGE_PAGE - base));
        return base;
}

/* A mapping of the memfd in place of part of a reservation, huge pages
 * asked for (best effort: the kernel may not give shared memory any). */
static int map_fixed(uint8_t *at, size_t len, int prot, int fd, size_t offset) {
        if (mmap(at, len, prot, MAP_SHARED | MAP_FIXED, fd, (off_t)offset) == MAP_FAILED)
                return -errno;
        (void)madvise(at, len, MADV_HUGEPAGE);
        return 0;
}

void weights_arena_set_default(weights_arena *a) { default_arena = a; }
weights_arena *weights_arena_default(void) { return default_arena; }

int weights_source_from_fd(int fd, weights_source *ret) {
        struct stat st;
        *ret = (weights_source) {};
        if (fd < 0)
                return 0;
        if (fstat(fd, &st) < 0)
                return -errno;
        *ret = (weights_source) { .dev = st.st_dev, .ino = st.st_ino, .size = (uint64_t)st.st_size,
                                  .mtime_sec = st.st_mtim.tv_sec, .mtime_nsec = st.st_mtim.tv_nsec };
        return 0;
}

static bool source_eq(const weights_source *a, const weights_source *b) {
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_sec == b->mtime_sec &&
               a->mtime_nsec == b->mtime_nsec;
}

static bool source_empty(const weights_source *s) {
        static const weights_source zero = {};
        return source_eq(s, &zero);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
        const uint8_t *b = p;
        for (size_t i = 0; i < n; i++) {
                h ^= b[i];
                h *= 0x100000001b3ull;
        }
        return h;
}

/* The checksum of header + entries with the checksum field taken as zero. */
static uint64_t toc_checksum(const arena_header *h, const arena_entry *e, uint32_t n) {
        arena_header c = *h;
        c.checksum = 0;
        uint64_t x = fnv1a(0xcbf29ce484222325ull, &c, sizeof c);
        return fnv1a(x, e, (size_t)n * sizeof *e);
}

/* ---- an offered arena: checked before anything in it is used ---- */

static int refuse(weights_arena *a, const char *why) {
        snprintf(a->status, sizeof a->status, "the offered weights arena was refused (%s); building a new one", why);
        return -EBADMSG;
}

static int try_map(weights_arena *a, int fd) {
        struct stat st;
        long page = sysconf(_SC_PAGESIZE);

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return refuse(a, "not a regular file");
        int seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || (seals & ARENA_SEALS) != ARENA_SEALS)
                return refuse(a, "not a sealed memfd");
        if (st.st_size < (off_t)ARENA_HEADER_SIZE || (uint64_t)st.st_size > ARENA_MAX_SIZE ||
            st.st_size % page != 0)
                return refuse(a, "bad size");
        size_t size = (size_t)st.st_size;
        uint8_t *p = reserve_aligned(size);
        if (p == MAP_FAILED)
                return refuse(a, "cannot map it");
        if (map_fixed(p, size, PROT_READ, fd, 0) < 0) {
                munmap(p, size);
                return refuse(a, "cannot map it");
        }
        a->base = p;
        a->mapped = size;

        /* The seals make it immutable, so what is checked now stays true. */
        const arena_header *h = (const arena_header *)p;
        const arena_entry *e = (const arena_entry *)(p + sizeof *h);
        if (memcmp(h->magic, ARENA_MAGIC, sizeof h->magic) != 0 || h->format != ARENA_FORMAT)
                return refuse(a, "another format");
        if (h->page_size != (uint32_t)page || h->total_size != size)
                return refuse(a, "sizes disagree");
        if (h->n_sources != a->n_sources)
                return refuse(a, "other model files");
        for (size_t i = 0; i < a->n_sources; i++)
                if (!source_eq(&h->sources[i], &a->sources[i]))
                        return refuse(a, "other model files");
        if (h->n_blocks > ARENA_MAX_BLOCKS)
                return refuse(a, "too many blocks");
        if (toc_checksum(h, e, h->n_blocks) != h->checksum)
                return refuse(a, "bad checksum");
        uint64_t end = ARENA_HEADER_SIZE;
        for (uint32_t i = 0; i < h->n_blocks; i++) {
                uint64_t last;
                if (!memchr(e[i].name, 0, sizeof e[i].name) || e[i].source >= h->n_sources ||
                    e[i].offset % ARENA_ALIGN != 0 || e[i].offset < end ||
                    ADD_OVERFLOW(e[i].offset, e[i].size, &last) || last > size)
                        return refuse(a, "bad table of contents");
                end = last;
        }
        a->n_blocks = h->n_blocks;
        a->entries = (arena_entry *)e;
        a->mode = WEIGHTS_ARENA_MAPPED;
        a->sealed = true;
        return 0;
}

/* ---- building ---- */

static int start_build(weights_arena *a, char *err, size_t errlen) {
        long page = sysconf(_SC_PAGESIZE);
        uint64_t total = 0;
        for (size_t i = 0; i < a->n_sources; i++)
                total += a->sources[i].size;
        /* Derived weights are at most a few times their source (F16 -> F32,
         * Q8_0 -> F32 ~ 3.8x); address space only, no memory. */
        uint64_t reserve = MIN(4 * total + (64ull << 20), ARENA_MAX_SIZE);
        reserve = (reserve + (uint64_t)page - 1) / (uint64_t)page * (uint64_t)page;

        a->mode = WEIGHTS_ARENA_BUILDING;
        a->fd = memfd_create("sotto-weights", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (a->fd < 0)
                return set_error(err, errlen, -errno, "cannot create the weights memfd: %m");
        void *p = reserve_aligned((size_t)reserve);
        if (p == MAP_FAILED)
                return set_error(err, errlen, -errno, "cannot reserve address space for the weights: %m");
        a->base = p;
        a->reserved = (size_t)reserve;
        if (ftruncate(a->fd, ARENA_HEADER_SIZE) < 0 ||
            map_fixed(a->base, ARENA_HEADER_SIZE, PROT_READ | PROT_WRITE, a->fd, 0) < 0)
                return set_error(err, errlen, -errno, "cannot map the weights memfd: %m");
        a->mapped = a->used = ARENA_HEADER_SIZE;
        a->entries = calloc(ARENA_MAX_BLOCKS, sizeof *a->entries);
        if (!a->entries)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        return 0;
}

int weights_arena_open(int offered_fd, const weights_source *sources, size_t n_sources, weights_arena **ret,
                       char *err, size_t errlen) {
        if (n_sources > WEIGHTS_ARENA_MAX_SOURCES)
                return set_error(err, errlen, -EINVAL, "too many weight sources");
        weights_arena *a = calloc(1, sizeof *a);
        if (!a)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        a->fd = -1;
        a->n_sources = n_sources;
        memcpy(a->sources, sources, n_sources * sizeof *sources);

        if (offered_fd >= 0 && try_map(a, offered_fd) >= 0) {
                *ret = a;
                return 0;
        }
        if (a->base) {
                munmap(a->base, a->mapped);
                a->base = NULL;
                a->mapped = 0;
        }
        int r = start_build(a, err, errlen);
        if (r < 0) {
                weights_arena_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

static int source_index(const weights_arena *a, const weights_source *src) {
        if (!src || source_empty(src))
                return -1;
        for (size_t i = 0; i < a->n_sources; i++)
                if (source_eq(&a->sources[i], src))
                        return (int)i;
        return -1;
}

void *weights_arena_block(weights_arena *a, const weights_source *src, const char *name, uint32_t version, size_t size,
                          bool *fill) {
        *fill = true;
        if (!a)
                return NULL;
        int s = source_index(a, src);
        if (s < 0 || strlen(name) >= WEIGHTS_ARENA_NAME_MAX) {
                a->n_private++;
                return NULL;
        }
        for (uint32_t i = 0; i < a->n_blocks; i++) {
                const arena_entry *e = &a->entries[i];
                if (e->source == (uint32_t)s && e->version == version && e->size == size && strcmp(e->name, name) == 0) {
                        if (a->mode == WEIGHTS_ARENA_BUILDING)
                                break; /* asked twice while building: keep the copies apart */
                        *fill = false;
                        return a->base + e->offset;
                }
        }
        if (a->mode != WEIGHTS_ARENA_BUILDING || a->sealed || a->n_blocks >= ARENA_MAX_BLOCKS) {
                a->n_private++;
                return NULL;
        }

        long page = sysconf(_SC_PAGESIZE);
        size_t off = align_up_size(a->used, ARENA_ALIGN), end, want;
        if (ADD_OVERFLOW(off, size, &end) || end > a->reserved) {
                a->n_private++;
                return NULL;
        }
        want = align_up_size(end, (size_t)page);
        if (want > a->mapped) {
                if (ftruncate(a->fd, (off_t)want) < 0 ||
                    map_fixed(a->base + a->mapped, want - a->mapped, PROT_READ | PROT_WRITE, a->fd, a->mapped) < 0) {
                        a->n_private++;
                        return NULL;
                }
                a->mapped = want;
        }
        arena_entry *e = &a->entries[a->n_blocks++];
        *e = (arena_entry) { .source = (uint32_t)s, .version = version, .offset = off, .size = size };
        snprintf(e->name, sizeof e->name, "%s", name);
        a->used = end;
        return a->base + off;
}

bool weights_arena_huge_pages(void) {
        char line[256] = "";
        FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "re");

        if (!f)
                return false;
        bool ok = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        return ok && (strstr(line, "[always]") || strstr(line, "[within_size]") || strstr(line, "[advise]") ||
                      strstr(line, "[force]"));
}

void weights_arena_small_pages(weights_arena *a, const void *p, size_t len) {
        uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t lo = ((uintptr_t)p + ps - 1) & ~(ps - 1), hi = ((uintptr_t)p + len) & ~(ps - 1);

        if (!a || hi <= lo || lo < (uintptr_t)a->base || hi > (uintptr_t)a->base + a->mapped)
                return;
        (void)madvise((void *)lo, hi - lo, MADV_NOHUGEPAGE);
        if (a->mode != WEIGHTS_ARENA_BUILDING || a->sealed)
                return;
        /* kept for the read-only mapping that sealing makes; without room
         * it only misses that mapping's advice */
        void *m = reallocarray(a->small, a->n_small + 1, sizeof *a->small);
        if (!m)
                return;
        a->small = m;
        a->small[a->n_small].offset = lo - (uintptr_t)a->base;
        a->small[a->n_small++].len = hi - lo;
}

int weights_arena_seal(weights_arena *a, char *err, size_t errlen) {
        if (!a || a->mode != WEIGHTS_ARENA_BUILDING || a->sealed)
                return 0;
        arena_header h = {
                .format = ARENA_FORMAT,
                .n_sources = (uint32_t)a->n_sources,
                .n_blocks = a->n_blocks,
                .page_size = (uint32_t)sysconf(_SC_PAGESIZE),
                .total_size = a->mapped,
        };
        memcpy(h.magic, ARENA_MAGIC, sizeof h.magic);
        memcpy(h.sources, a->sources, a->n_sources * sizeof *a->sources);
        h.checksum = toc_checksum(&h, a->entries, a->n_blocks);
        memcpy(a->base, &h, sizeof h);
        memcpy(a->base + sizeof h, a->entries, (size_t)a->n_blocks * sizeof *a->entries);

        /* F_SEAL_WRITE wants no shared mapping that may write, and one made
         * read-only from a writable fd still may (VM_MAYWRITE): the range
         * goes back to reserved address space, the memfd is sealed, then
         * mapped read-only at the same addresses (a mapping of a sealed
         * memfd can never become writable).  The rest of the reservation is
         * returned. */
        if (mmap(a->base, a->mapped, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) ==
            MAP_FAILED)
                return set_error(err, errlen, -errno, "cannot unmap the weights: %m");
        if (fcntl(a->fd, F_ADD_SEALS, ARENA_SEALS) < 0)
                return set_error(err, errlen, -errno, "cannot seal the weights memfd: %m");
        int r = map_fixed(a->base, a->mapped, PROT_READ, a->fd, 0);
        if (r < 0)
                return set_error(err, errlen, r, "cannot map the weights read-only: %s", strerror(-r));
        for (size_t i = 0; i < a->n_small; i++)
                (void)madvise(a->base + a->small[i].offset, a->small[i].len, MADV_NOHUGEPAGE);
        if (a->reserved > a->mapped)
                munmap(a->base + a->mapped, a->reserved - a->mapped);
        a->reserved = a->mapped;
        free(a->entries);
        a->entries = (arena_entry *)(a->base + sizeof h);
        a->sealed = true;
        return 0;
}

int weights_arena_fd(const weights_arena *a) {
        return a && a->mode == WEIGHTS_ARENA_BUILDING && a->sealed && a->n_blocks > 0 ? a->fd : -1;
}

weights_arena_mode weights_arena_get_mode(const weights_arena *a) { return a->mode; }
size_t weights_arena_size(const weights_arena *a) { return a->mapped; }
uint32_t weights_arena_n_blocks(const weights_arena *a) { return a->n_blocks; }
uint32_t weights_arena_n_private(const weights_arena *a) { return a->n_private; }
const char *weights_arena_status(const weights_arena *a) { return a->status; }

void weights_arena_free(weights_arena *a) {
        if (!a)
                return;
        if (default_arena == a)
                default_arena = NULL;
        if (a->mode == WEIGHTS_ARENA_BUILDING && !a->sealed)
                free(a->entries);
        free(a->small);
        if (a->base)
                munmap(a->base, MAX(a->reserved, a->mapped));
        if (a->fd >= 0)
                close(a->fd);
        free(a);
}
