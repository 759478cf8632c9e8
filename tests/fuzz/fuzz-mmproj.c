/* SPDX-License-Identifier: MIT */
/* libFuzzer harness for the mmproj loader (daemon/engine/vision-load.c):
 * open the input; when it is accepted and small, run the encoder on a
 * constant image, so that every shape the loader lets through is one the
 * forward pass can index.  Seeds: tests/fuzz/corpus/mmproj/ (sotto-mkmmproj
 * --preset gemma3-micro in F32, F16 and Q8_0). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vision.h"

static volatile float sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        vision_model *m = NULL;
        char err[256] = "";

        /* the loader wants the alignment a mapping has */
        void *buf = aligned_alloc(64, (size + 64) & ~(size_t)63);
        if (!buf)
                return 0;
        memcpy(buf, data, size);
        if (vision_model_open_memory(buf, size, &m, err, sizeof err) < 0) {
                free(buf);
                if (!err[0])
                        abort(); /* every failure explains itself */
                return 0;
        }
        uint32_t s = vision_model_image_size(m);
        int64_t n_out = (int64_t)vision_model_n_tokens(m) * vision_model_n_embd_out(m);
        if (s <= 64 && vision_model_n_embd(m) <= 256 && vision_model_n_layer(m) <= 4 && n_out <= 65536) {
                vision_ctx *c;
                float *img = calloc((size_t)3 * s * s, sizeof(float));
                float *out = malloc((size_t)n_out * sizeof(float));
                if (img && out && vision_ctx_new(m, 1, &c) >= 0) {
                        if (vision_encode(c, img, s, s, out) >= 0)
                                sink += out[0] + out[n_out - 1];
                        vision_ctx_free(c);
                }
                free(img);
                free(out);
        }
        vision_model_free(m);
        free(buf);
        return 0;
}
