/* SPDX-License-Identifier: MIT */
/* The model generator's own weight quantizers: plain round-to-nearest per
 * block, written from the block layouts in specs/gguf.md §3.  They are kept
 * apart from the engine's kernels on purpose, so that a file written here
 * is an independent check of the engine's dequantizers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True for the types the generator writes: F32 F16 BF16 Q8_0 Q4_0 Q4_K
 * Q5_K Q6_K. */
bool mk_type_writable(uint32_t type);
/* Elements per block and bytes per block (0 for a type we do not write). */
uint32_t mk_type_block(uint32_t type);
const char *mk_type_name(uint32_t type); /* "?" for others */
uint32_t mk_type_size(uint32_t type);
/* Bytes of a row of n elements; 0 if n is not a multiple of the block. */
size_t mk_row_size(uint32_t type, int64_t n);

/* Quantize one row of n floats (a multiple of the block size) into y. */
void mk_quantize_row(uint32_t type, const float *x, void *y, int64_t n);

uint16_t mk_fp32_to_fp16(float f); /* round to nearest even */
uint16_t mk_fp32_to_bf16(float f); /* round to nearest even */
