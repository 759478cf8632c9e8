/* SPDX-License-Identifier: MIT */
/* The candidate merges of both tokenizers' bigram merging, kept in a binary
 * max-heap: the best priority first, the leftmost pair among equals.
 * SentencePiece uses the merged token's score (higher first); BPE the
 * negated merge rank (lower rank first; a double holds every int32 exactly). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct merge_pair {
        double priority;
        int32_t left, right;
        uint32_t size; /* bytes of left + right when pushed; stale if changed */
} merge_pair;

static inline bool merge_pair_before(const merge_pair *a, const merge_pair *b) {
        return a->priority > b->priority || (a->priority == b->priority && a->left < b->left);
}

static inline void merge_heap_push(merge_pair *h, size_t *n, merge_pair p) {
        size_t i = (*n)++;
        while (i > 0) {
                size_t parent = (i - 1) / 2;
                if (!merge_pair_before(&p, &h[parent]))
                        break;
                h[i] = h[parent];
                i = parent;
        }
        h[i] = p;
}

/* Only with *n > 0. */
static inline merge_pair merge_heap_pop(merge_pair *h, size_t *n) {
        merge_pair top = h[0], last = h[--*n];
        size_t i = 0;
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= *n)
                        break;
                if (c + 1 < *n && merge_pair_before(&h[c + 1], &h[c]))
                        c++;
                if (!merge_pair_before(&h[c], &last))
                        break;
                h[i] = h[c];
                i = c;
        }
        if (*n > 0)
                h[i] = last;
        return top;
}
