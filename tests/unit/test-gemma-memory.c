/* SPDX-License-Identifier: MIT */
/* Gemma 3n's memory promise: the per-layer-embedding table (most of E2B's
 * parameters) stays in the mapped file.  A gemma3n-tiny file is written
 * here (sotto-mkmodel's preset); after prompts and single steps over many
 * different tokens, the pages of the table that this process has mapped
 * (/proc/self/pagemap present bits) must be the two partial boundary pages
 * at most, not the rows that were read nor their neighbours: with the
 * weights copied the rows are read with pread, with SOTTO_WEIGHTS=map
 * through the mapping and released (without the release in
 * arch-gemma3n.c, 361 of the 408 pages stay mapped here).  Both give the
 * same logits. */
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "engine.h"
#include "gguf.h"
#include "macro.h"
#include "tests/tools/mkmodel-model.h"
#include "tests/tools/mkmodel-write.h"
#include "test.h"

/* Start of the mapping of path at file offset 0, from /proc/self/maps. */
static uintptr_t mapping_start(const char *path) {
        FILE *f = fopen("/proc/self/maps", "re");
        char line[PATH_MAX + 256], name[PATH_MAX];
        unsigned long long a, b, off;
        uintptr_t start = 0;

        CHECK(f);
        while (fgets(line, sizeof line, f)) {
                name[0] = 0;
                if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %4095s", &a, &b, &off, name) == 4 && off == 0 &&
                    strcmp(name, path) == 0) {
                        start = (uintptr_t)a;
                        break;
                }
        }
        fclose(f);
        return start;
}

static int64_t pages_present(uintptr_t addr, uint64_t len) {
        int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE), e;
        int64_t present = 0;

        CHECK(fd >= 0);
        for (uint64_t p = addr / ps; p < (addr + len + ps - 1) / ps; p++) {
                CHECK_EQ_INT(pread(fd, &e, sizeof e, (off_t)(p * sizeof e)), (ssize_t)sizeof e);
                present += (int64_t)(e >> 63);
        }
        close(fd);
        return present;
}

/* Prompts and single steps over 448 different tokens; the pages of the
 * table mapped afterwards must be the two boundary pages at most.  The
 * last step's logits, for comparison between the two ways of reading. */
static float *run_tokens(const char *path, uint64_t ple_off, uint64_t ple_bytes, const char *how, int32_t *ret_v) {
        engine_model_params mp;
        engine_model *m;
        char err[256] = "";

        engine_model_default_params(&mp);
        mp.n_threads = 1;
        CHECK_OK(engine_model_load_path(path, &mp, &m, err, sizeof err));
        uintptr_t start = mapping_start(path);
        CHECK_MSG(start != 0, "no mapping of %s in /proc/self/maps", path);

        engine_session_params sp;
        engine_session *s;
        engine_session_default_params(&sp);
        sp.n_ctx = 512;
        CHECK_OK(engine_session_new(m, &sp, &s, err, sizeof err));
        int32_t V = engine_model_n_vocab(m), tok[448];
        float *logits = malloc(sizeof(float) * (size_t)V);
        CHECK(logits);
        for (int i = 0; i < 448; i++)
                tok[i] = 363 + (i * 131) % (V - 363); /* every row of the pieces, spread over the table */
        tok[0] = 2;
        CHECK_OK(engine_session_eval(s, tok, 400, false, logits));
        for (int i = 400; i < 448; i++)
                CHECK_OK(engine_session_eval(s, &tok[i], 1, false, logits));

        int64_t n = pages_present(start + ple_off, ple_bytes);
        printf("per-layer-embedding table, %s: %lld of %llu pages mapped after 448 tokens\n", how, (long long)n,
               (unsigned long long)((ple_bytes + 4095) / 4096));
        CHECK_MSG(n <= 2, "%s: %lld pages of the per-layer-embedding table stay mapped", how, (long long)n);

        engine_session_free(s);
        engine_model_free(m);
        *ret_v = V;
        return logits;
}

int main(void) {
        char dir[] = "/tmp/test-gemma-memory-XXXXXX", path[PATH_MAX], err[256] = "";
        CHECK(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/gemma3n-tiny.gguf", dir);

        CHECK_OK(mk_model_write_preset("gemma3n-tiny", "Q8_0", path, 3, err, sizeof err));

        /* where the table lies in the file */
        gguf_file *g;
        size_t size;
        uint64_t ple_off = 0, ple_bytes = 0;
        CHECK_OK(gguf_open_path(path, &g, err, sizeof err));
        const uint8_t *base = gguf_file_data(g, &size);
        const gguf_tensor *t = gguf_find_tensor(g, "per_layer_token_embd.weight");
        if (t) {
                ple_off = (uint64_t)((const uint8_t *)t->data - base);
                ple_bytes = t->nbytes;
        }
        gguf_close(g);
        CHECK(ple_bytes > 64 * 4096);

        /* the copy reads the rows with pread; SOTTO_WEIGHTS=map reads
         * them through the mapping and releases the pages */
        int32_t V = 0;
        float *logits[2] = { NULL, NULL };
        for (int mode = 0; mode < 2; mode++) {
                if (mode == 1)
                        CHECK_OK(setenv("SOTTO_WEIGHTS", "map", 1));
                logits[mode] = run_tokens(path, ple_off, ple_bytes, mode ? "mapping" : "copy", &V);
        }
        CHECK_OK(unsetenv("SOTTO_WEIGHTS"));
        CHECK_MSG(memcmp(logits[0], logits[1], sizeof(float) * (size_t)V) == 0,
                  "the rows read with pread and through the mapping give different logits");
        free(logits[0]);
        free(logits[1]);
        unlink(path);
        rmdir(dir);
        return 0;
}
