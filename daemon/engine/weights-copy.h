/* SPDX-License-Identifier: MIT */
/* The load-time copy of a model file's weights into fresh memory.
 *
 * Decoding reads every weight once per token, and on this kind of machine
 * the page cache's pages of a file mapping read at about half the speed of
 * freshly allocated memory holding the same bytes (tests/bench/REFERENCE.md,
 * "Why the copy is faster"), so the loader copies the file once (~0.3 s per
 * GB from the page cache).  In a worker the copy is a block of the
 * derived-weights arena (weights-arena.h): one sealed memfd that sottod
 * hands to every later worker of the same file.  Elsewhere (sotto-bench,
 * sotto-engine) it is private anonymous memory in 2 MiB pages.
 *
 * The copy is the file's image: every byte at its file offset, so the GGUF
 * reader opens it as it would the file and every tensor pointer it gives is
 * into the copy.  Some tensors are better left in the file: Gemma 3n reads
 * one row of its per-layer-embedding table per token (most of E2B's bytes),
 * with pread from the file (weights_copy_read) so that none of it is
 * mapped into the process (a copy would hold all of it); a MatFormer
 * selection never reads the layers it skips, nor the rows of gate and up
 * past the width it keeps.  Those byte ranges are never written into the
 * image: an untouched stretch of anonymous memory or of a memfd costs
 * nothing, so the image holds only the other tensors' memory, and it needs
 * no table of its own to find a tensor (a compact block of the other
 * tensors would need one, and a remapped pointer per tensor).  In the
 * private copy those ranges are PROT_NONE, so a read through the image of
 * a left-out tensor faults instead of returning zeros.  Their readers get
 * the file mapping through weights_copy_tensor_data, and may read it with
 * weights_copy_read. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef struct weights_hole {
        uint64_t start, end; /* file offsets of a left-out tensor's bytes */
} weights_hole;

typedef struct weights_copy {
        const uint8_t *image; /* the file's bytes at their offsets; NULL: no copy */
        size_t size;
        bool in_arena;        /* a block of the shared arena (else private, map below) */
        void *map;            /* the private copy's anonymous mapping */
        size_t map_len;
        const uint8_t *file;  /* the file mapped read-only, when tensors were left out */
        size_t file_len;
        int file_fd;          /* with file: the file, for weights_copy_read (-1: none) */
        weights_hole *holes;  /* [n_left_out] by offset: the bytes left out (of a tensor, all or a tail) */
        uint32_t n_left_out;
} weights_copy;

/* How many leading bytes of t the copy holds (arch_ops.copied_bytes). */
typedef uint64_t (*weights_copied_fn)(const gguf_file *g, const gguf_tensor *t, const char *matformer);

/* Copy the file behind fd (g: its GGUF, open on the file mapping) leaving
 * out what copied (may be NULL: nothing) says: whole tensors, or the tails
 * of matrices a MatFormer selection narrows.  1: a copy is in *ret; 0:
 * none (no memory for it, or an alignment the arena cannot keep): the
 * mapping serves; <0: an arena block could not be filled (it must not be
 * sealed and shared so). */
int weights_copy_make(int fd, const gguf_file *g, weights_copied_fn copied, const char *matformer,
                      weights_copy *ret);

/* Where the bytes of t (a tensor of the GGUF open on the image, or on the
 * mapping when there is no copy) are to be read: in the file mapping for a
 * tensor left out of the image, else t->data. */
const void *weights_copy_tensor_data(const weights_copy *c, const gguf_tensor *t);

/* Copy len bytes at p, a place in the file mapping, into buf with pread:
 * unlike a read through the mapping, nothing gets mapped into the process
 * (no page faults, no pages to release).  -ENOENT when there is no file
 * descriptor or p is not in the mapping. */
int weights_copy_read(const weights_copy *c, const void *p, size_t len, void *buf);

void weights_copy_done(weights_copy *c);
