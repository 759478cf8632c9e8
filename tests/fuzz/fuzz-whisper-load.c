/* SPDX-License-Identifier: MIT */
/* libFuzzer harness for the whisper.cpp model loader (ggml-*.bin): parse
 * the input; when it is accepted, read back every vocabulary piece and look
 * each up again.  Seeds: tests/fuzz/corpus/whisper-load/ (sotto-mkwhisper
 * output: header and vocabulary, an encoder-only prefix, short prefixes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "whisper.h"

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        whisper_model *m = NULL;
        char err[256];

        if (whisper_model_load_buffer(data, size, &m, err, sizeof err) < 0) {
                if (!err[0])
                        abort(); /* every failure explains itself */
                return 0;
        }
        const whisper_hparams *hp = whisper_model_hparams(m);
        for (int32_t id = 0; id < hp->n_vocab; id++) {
                size_t len;
                const char *b = whisper_token_bytes(m, id, &len);
                if (!b)
                        abort();
                if (len)
                        sink += (uint8_t)b[0] + (uint8_t)b[len - 1];
                int32_t back = whisper_token_lookup(m, b, len);
                if (back < id) /* the last id with these bytes wins */
                        abort();
        }
        whisper_model_free(m);
        return 0;
}
