/* SPDX-License-Identifier: MIT */
/* What sotto-mkmodel writes: presets (const table), type choices ("file
 * types", plain or mixed), and the plan of a model: its metadata and its
 * list of tensors with their types, before any weight is drawn.
 *
 * A new architecture is one file (mkmodel-ARCH.c) with a build function and
 * one line in the arch table; a new size is one line in the preset table. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf-writer.h"

typedef struct mk_preset {
        const char *name;       /* --preset */
        const char *arch;       /* general.architecture */
        const char *model_name; /* general.name */
        uint32_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
        float rope_base, rms_eps;
        bool tied_output; /* no output.weight: the logits use token_embd */
} mk_preset;

/* The role of a weight, for mixed types such as Q4_K_M. */
typedef enum mk_role {
        MK_ROLE_TOKEN_EMBD,
        MK_ROLE_OUTPUT,
        MK_ROLE_ATTN_Q,
        MK_ROLE_ATTN_K,
        MK_ROLE_ATTN_V,
        MK_ROLE_ATTN_OUT,
        MK_ROLE_FFN_GATE,
        MK_ROLE_FFN_UP,
        MK_ROLE_FFN_DOWN,
        MK_ROLE_OTHER,
} mk_role;

typedef struct mk_model mk_model;

typedef struct mk_ftype {
        const char *name;   /* --type */
        uint32_t type;      /* the type of every 2-D weight unless the mix says otherwise */
        uint32_t file_type; /* general.file_type (llama_ftype) */
        /* A mix: the type of one weight; NULL = every weight in .type. */
        uint32_t (*choose)(const mk_model *m, mk_role role, int layer, int64_t ne0);
} mk_ftype;

typedef enum mk_init {
        MK_INIT_MATRIX, /* N(0, 0.02) */
        MK_INIT_NORM,   /* 1 + N(0, 0.02) */
} mk_init;

typedef struct mk_tensor {
        char name[64];
        int n_dims;
        int64_t ne[4];
        uint32_t type;
        mk_init init;
        uint64_t offset, nbytes; /* in the data section */
} mk_tensor;

struct mk_model {
        const mk_preset *preset;
        const mk_ftype *ftype;
        mk_gguf *gguf;
        mk_tensor *tensors;
        size_t n_tensors, cap;
        int error; /* first error of an add, reported by mk_model_plan */
        char why[128];
};

typedef struct mk_arch {
        const char *name;
        /* Metadata and tensors of the preset, through the mk_model_* calls. */
        void (*build)(mk_model *m);
} mk_arch;

extern const mk_preset mk_presets[];
extern const size_t mk_n_presets;
extern const mk_ftype mk_ftypes[];
extern const size_t mk_n_ftypes;

const mk_preset *mk_preset_find(const char *name);
const mk_ftype *mk_ftype_find(const char *name); /* case-insensitive */
const mk_arch *mk_arch_find(const char *name);

/* Fill m (metadata into a new writer, the tensor plan with offsets). */
int mk_model_plan(mk_model *m, const mk_preset *p, const mk_ftype *ft, char *err, size_t errlen);
void mk_model_done(mk_model *m);

/* For the arch builders. */
void mk_model_add_weight(mk_model *m, mk_role role, int layer, const char *name, int64_t ne0, int64_t ne1);
void mk_model_add_norm(mk_model *m, const char *name, int64_t n);
/* general.* and a SentencePiece-style vocabulary of preset->n_vocab tokens:
 * <unk> <s> </s>, the 256 byte tokens <0x00>.., then "▁w0", "▁w1", ... */
void mk_model_put_general(mk_model *m);
void mk_model_put_spm_vocab(mk_model *m);

/* The type the file type gives a weight (before any fallback), and a
 * tensor of up to 3 dimensions in an explicit type (for shapes the mix
 * cannot take, and stacked matrices). */
uint32_t mk_model_type_for(const mk_model *m, mk_role role, int layer, int64_t ne0);
void mk_model_add_typed(mk_model *m, const char *name, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
                        uint32_t type, mk_init init);

/* The arch builders. */
void mk_build_llama(mk_model *m);
void mk_build_gemma3(mk_model *m);  /* mkmodel-gemma.c */
void mk_build_gemma3n(mk_model *m); /* mkmodel-gemma.c */
