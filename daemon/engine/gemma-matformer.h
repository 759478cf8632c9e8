/* SPDX-License-Identifier: MIT */
/* MatFormer selection for Gemma 3n: a smaller model nested in a larger
 * one, made of a subset of its layers, each with a narrower feed-forward
 * (the first F' units: the first F' rows of gate and up, the first F'
 * columns of down), as the published mix-and-match configurations describe.
 * The weights are used in place; nothing is copied.
 *
 * engine_model_params.matformer is a list of ';'-separated settings:
 *   skip=LIST   layers of the file to leave out: indices and ranges a-b,
 *               separated by ','  (e.g. "skip=20-24")
 *   ff=N        every kept layer's feed-forward width
 *   ff=N,N,...  one width per kept layer, in order
 * e.g. "skip=20-24;ff=8192" takes a 30-layer, 8192-wide model out of a
 * 35-layer, 16384-wide E4B file. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct gemma_matformer {
        int32_t n_layer; /* kept layers */
        int32_t *layer;  /* [n_layer] the file's index of kept layer i */
        int32_t *n_ff;   /* [n_layer] its width, 0: the file's */
} gemma_matformer;

/* An empty or NULL spec keeps every layer at full width. */
int gemma_matformer_parse(const char *spec, int32_t n_layer_file, gemma_matformer *ret, char *err, size_t errlen);
void gemma_matformer_done(gemma_matformer *mf);
