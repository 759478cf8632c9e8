/* SPDX-License-Identifier: MIT */
/* Random-weight Gemma 3 vision projector ("mmproj") GGUF files with the
 * keys and tensor names of llama.cpp's converter (specs/vision-siglip.md
 * §2-3), for tests and benchmarks: tests/tools/sotto-mkmmproj.c is the
 * command, the unit tests call mk_mmproj_write directly.  Edits make
 * malformed variants for the loader's tests. */
#pragma once

#include <stdint.h>
#include <stdio.h>

typedef struct mk_mmproj_preset {
        const char *name;
        uint32_t image_size, patch_size, n_embd, n_ff, n_layer, n_head, proj_dim;
        uint32_t scale_factor; /* 0: key absent (llama.cpp's default 4) */
        const char *what;
} mk_mmproj_preset;

/* Changes to the file a preset gives; NULL/0 fields change nothing. */
typedef struct mk_mmproj_edit {
        const char *skip_key;      /* this key is not written */
        const char *u32_key;       /* this integer key is written as u32_val (added if absent) */
        uint32_t u32_val;
        const char *projector;     /* clip.projector_type */
        const char *skip_tensor;   /* this tensor is not written */
        const char *bad_tensor;    /* this tensor gets one row more (ne[1] + 1) */
        const char *extra_tensor;  /* an extra F32 tensor of n_embd */
} mk_mmproj_edit;

const mk_mmproj_preset *mk_mmproj_preset_find(const char *name);
void mk_mmproj_list(FILE *f);
/* type: TYPE_F32, TYPE_F16 or TYPE_Q8_0.  Written through a temporary
 * file renamed at the end.  -errno with a sentence in err. */
int mk_mmproj_write(const mk_mmproj_preset *p, uint32_t type, uint64_t seed, const mk_mmproj_edit *edit,
                    const char *path, char *err, size_t errlen);
