/* SPDX-License-Identifier: MIT */
/* The vocabulary of a Whisper model: id -> bytes from the file (plus the
 * synthesized special-token names), bytes -> id for the few lookups
 * whisper.cpp does (" ", the non-speech symbols), and the language table. */
#include <string.h>

#include "whisper-impl.h"

/* Language codes in token order (whisper.cpp's g_lang ids). */
static const char *const lang_codes[] = {
        "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id",
        "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg",
        "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br",
        "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so",
        "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt",
        "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue",
};

const char *whisper_lang_code(int id) {
        if (id < 0 || (size_t)id >= ELEMENTSOF(lang_codes))
                return NULL;
        return lang_codes[id];
}

int whisper_lang_id(const char *code) {
        if (!code)
                return -1;
        for (size_t i = 0; i < ELEMENTSOF(lang_codes); i++)
                if (strcmp(lang_codes[i], code) == 0)
                        return (int)i;
        return -1;
}

int whisper_lang_count(const whisper_model *m) { return m->sp.n_langs; }

static uint32_t hash_bytes(const char *s, size_t n) {
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < n; i++)
                h = (h ^ (uint8_t)s[i]) * 16777619u;
        return h;
}

const char *whisper_token_bytes(const whisper_model *m, int32_t id, size_t *len) {
        const whisper_vocab *v = &m->vocab;
        if (id < 0 || id >= v->n)
                return NULL;
        *len = v->offset[id + 1] - v->offset[id];
        return v->bytes + v->offset[id];
}

int32_t whisper_token_lookup(const whisper_model *m, const char *s, size_t len) {
        const whisper_vocab *v = &m->vocab;
        uint32_t mask = v->hash_size - 1;
        for (uint32_t h = hash_bytes(s, len) & mask;; h = (h + 1) & mask) {
                int32_t id = v->hash[h];
                if (id < 0)
                        return -1;
                size_t n = v->offset[id + 1] - v->offset[id];
                if (n == len && memcmp(v->bytes + v->offset[id], s, len) == 0)
                        return id;
        }
}

/* Build the hash; on duplicate pieces the later id wins, like the
 * std::map in whisper.cpp. */
int whisper_vocab_finish(whisper_model *m, char *err, size_t errlen) {
        whisper_vocab *v = &m->vocab;
        uint32_t size = 1;
        while (size < 2u * (uint32_t)v->n)
                size <<= 1;
        v->hash = malloc(size * sizeof *v->hash);
        if (!v->hash)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        v->hash_size = size;
        memset(v->hash, 0xff, size * sizeof *v->hash);
        for (int32_t id = 0; id < v->n; id++) {
                const char *s = v->bytes + v->offset[id];
                size_t n = v->offset[id + 1] - v->offset[id];
                for (uint32_t h = hash_bytes(s, n) & (size - 1);; h = (h + 1) & (size - 1)) {
                        int32_t o = v->hash[h];
                        if (o < 0 || (v->offset[o + 1] - v->offset[o] == n && memcmp(v->bytes + v->offset[o], s, n) == 0)) {
                                v->hash[h] = id;
                                break;
                        }
                }
        }
        m->sp.space = whisper_token_lookup(m, " ", 1);
        return 0;
}

void whisper_vocab_done(whisper_vocab *v) {
        free(v->offset);
        free(v->bytes);
        free(v->hash);
}
