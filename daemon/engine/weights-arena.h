/* SPDX-License-Identifier: MIT */
/* The derived-weights arena: weights that a loader cannot use in place from
 * the model file (whisper.cpp's unaligned legacy tensors, F16 matrices the
 * vision tower wants in F32) are built once into a sealed memfd that every
 * worker of the same files maps read-only and shared, so N workers (a
 * restart, a reload draining next to its successor) hold one copy.
 *
 * The process that builds the arena hands the memfd on (weights_arena_fd);
 * a later process offers it back to weights_arena_open, which checks the
 * seals and the header (format, the identity of every source file: st_dev,
 * st_ino, size, mtime; the table of contents and its checksum) before it
 * maps it.  Any mismatch means a fresh build, never trust.
 *
 * Loaders ask for a named block (weights_arena_block): either it is already
 * there (read-only, nothing to do) or they get writable room to fill before
 * weights_arena_seal.  NULL means "no arena here": the loader allocates
 * privately as before, so engine users without a worker need nothing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEIGHTS_ARENA_MAX_SOURCES 8
#define WEIGHTS_ARENA_NAME_MAX 64 /* block names, NUL included */

typedef struct weights_source {
        uint64_t dev, ino, size;
        int64_t mtime_sec, mtime_nsec; /* all zero: no file in this slot */
} weights_source;

/* The identity of an open model file; fd < 0 gives the empty slot. */
int weights_source_from_fd(int fd, weights_source *ret);

typedef struct weights_arena weights_arena;

typedef enum weights_arena_mode {
        WEIGHTS_ARENA_BUILDING, /* a fresh memfd, filled by the loaders */
        WEIGHTS_ARENA_MAPPED,   /* an offered memfd, checked and mapped */
} weights_arena_mode;

/* offered_fd: an arena built earlier (not taken; -1: none).  sources: the
 * files whose derived weights may go in, in a fixed order.  Never fails on a
 * bad offer: that is logged in weights_arena_status and a build begins. */
int weights_arena_open(int offered_fd, const weights_source *sources, size_t n_sources, weights_arena **ret,
                       char *err, size_t errlen);
/* Room for block `name` (format `version`) derived from `src`, size bytes,
 * 64-byte aligned.  *fill is set true when the caller must write it (before
 * weights_arena_seal), false when it is already there (then read-only).
 * NULL: not in this arena (no arena, unknown source, out of room, or a
 * mapped arena without it): allocate privately. */
void *weights_arena_block(weights_arena *a, const weights_source *src, const char *name, uint32_t version, size_t size,
                          bool *fill);
/* A stretch of a block that is never written nor read (a tensor left out
 * of a copy): the arena asks for 2 MiB pages, and a write next to such a
 * stretch would otherwise bring the whole 2 MiB page around it into
 * memory, or khugepaged would later.  Kept in 4 KiB pages (its whole
 * pages untouched), in this mapping and, after sealing, in the read-only
 * one; a mapped arena's user says it again for its own mapping. */
void weights_arena_small_pages(weights_arena *a, const void *p, size_t len);
/* Whether the kernel gives the arena's mappings 2 MiB pages: shmem_enabled
 * (/sys/kernel/mm/transparent_hugepage) says always, within_size, advise
 * or force.  Reads /sys. */
bool weights_arena_huge_pages(void);
/* After the loaders: a building arena gets its header, becomes read-only at
 * the same addresses and is sealed.  Nothing to do for a mapped one. */
int weights_arena_seal(weights_arena *a, char *err, size_t errlen);
/* The sealed memfd to hand on: only when this process built it (else -1). */
int weights_arena_fd(const weights_arena *a);
weights_arena_mode weights_arena_get_mode(const weights_arena *a);
size_t weights_arena_size(const weights_arena *a);     /* bytes of the memfd */
uint32_t weights_arena_n_blocks(const weights_arena *a);
uint32_t weights_arena_n_private(const weights_arena *a); /* blocks the loaders had to keep privately */
const char *weights_arena_status(const weights_arena *a); /* why an offer was refused, "" otherwise */
/* Unmaps it: only once nothing derived from it is used any more. */
void weights_arena_free(weights_arena *a);

/* The loaders are reached through several modules (the vision tower from
 * the worker's image code, Whisper from its main): the worker sets the one
 * arena of the process here before it loads anything. */
void weights_arena_set_default(weights_arena *a);
weights_arena *weights_arena_default(void);
