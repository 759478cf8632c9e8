/* SPDX-License-Identifier: MIT */
/* sotto-bench-mem: resident memory of a model at a full context.
 *
 *   sotto-bench-mem [-t THREADS] [-c 4096] [-b 512] [-n 16] [--json] MODEL.gguf
 *
 * Loads the model, fills a session of -c positions: random ids (BOS first)
 * evaluated in chunks of -b, then -n single-token steps up to the last
 * position, so the KV cache is used to its end as in a long conversation.
 * Then reports, from the kernel's own accounts of this process:
 *   - peak RSS (VmHWM), and the RSS now split into anonymous memory (KV
 *     cache, activations, logits, the engine's own copies, among them the
 *     weights copied at load: daemon/engine/weights-copy.h) and file pages
 *     (what is read from the mapped model in place: the per-layer-embedding
 *     rows, or every weight with SOTTO_WEIGHTS=map; shared with every
 *     process that maps the same file through the page cache, clean, so the
 *     kernel can drop them under pressure instead of swapping);
 *   - the model file mapping's RSS (/proc/self/smaps), and how much of the
 *     per-layer-embedding table (per_layer_token_embd, most of Gemma 3n's
 *     parameters) is mapped into this process (/proc/self/pagemap present
 *     bits over the table's pages): only the rows of the tokens seen should
 *     be, plus the kernel's fault-around neighbours. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "gguf.h"
#include "macro.h"

typedef struct mem_status {
        double hwm, anon, file, shmem; /* MiB */
} mem_status;

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void read_status(mem_status *m) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
        char line[256];
        unsigned long long kib;

        *m = (mem_status){};
        while (f && fgets(line, sizeof line, f)) {
                if (sscanf(line, "VmHWM: %llu kB", &kib) == 1)
                        m->hwm = kib / 1024.0;
                else if (sscanf(line, "RssAnon: %llu kB", &kib) == 1)
                        m->anon = kib / 1024.0;
                else if (sscanf(line, "RssFile: %llu kB", &kib) == 1)
                        m->file = kib / 1024.0;
                else if (sscanf(line, "RssShmem: %llu kB", &kib) == 1)
                        m->shmem = kib / 1024.0;
        }
}

/* The mapping of path that starts at file offset 0 (the engine maps the
 * whole file once): its start address and its Rss in MiB. */
static int file_mapping(const char *path, uintptr_t *start, double *rss_mib) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/smaps", "re");
        char line[PATH_MAX + 256], name[PATH_MAX];
        bool in = false, found = false;
        unsigned long long a, b, off, kib;

        if (!f)
                return -errno;
        *rss_mib = 0;
        while (fgets(line, sizeof line, f)) {
                name[0] = 0;
                if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %4095[^\n]", &a, &b, &off, name) >= 3 &&
                    strchr(line, '-') < strchr(line, ' ')) {
                        char *p = name;
                        while (*p == ' ')
                                p++;
                        in = strcmp(p, path) == 0;
                        if (in && off == 0 && !found) {
                                *start = (uintptr_t)a;
                                found = true;
                        }
                } else if (in && sscanf(line, "Rss: %llu kB", &kib) == 1)
                        *rss_mib += kib / 1024.0;
        }
        return found ? 0 : -ENOENT;
}

/* Pages of [addr, addr + len) present in this process's page tables. */
static int64_t pages_present(uintptr_t addr, uint64_t len, int64_t *n_pages) {
        _cleanup_close_ int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        long ps = sysconf(_SC_PAGESIZE);
        uint64_t first = addr / (uint64_t)ps, last = (addr + len + (uint64_t)ps - 1) / (uint64_t)ps;
        uint64_t buf[4096];
        int64_t present = 0;

        if (fd < 0)
                return -errno;
        *n_pages = (int64_t)(last - first);
        for (uint64_t p = first; p < last;) {
                size_t n = MIN((uint64_t)ELEMENTSOF(buf), last - p);
                ssize_t k = pread(fd, buf, n * sizeof(uint64_t), (off_t)(p * sizeof(uint64_t)));
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                for (size_t i = 0; i < (size_t)k / sizeof(uint64_t); i++)
                        present += (buf[i] >> 63) & 1;
                p += (size_t)k / sizeof(uint64_t);
        }
        return present;
}

static void fill_tokens(int32_t *tok, int n, int32_t n_vocab, uint64_t *state) {
        for (int i = 0; i < n; i++) {
                *state = *state * 6364136223846793005ull + 1442695040888963407ull;
                tok[i] = (int32_t)(3 + (*state >> 33) % (uint64_t)(n_vocab - 3));
        }
}

static int parse_int(const char *s, int lo, int hi, int *ret) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || *end || !*s || v < lo || v > hi)
                return -EINVAL;
        *ret = (int)v;
        return 0;
}

static int run(int argc, char **argv) {
        static const struct option lopts[] = {
                { "threads", required_argument, NULL, 't' }, { "ctx", required_argument, NULL, 'c' },
                { "batch", required_argument, NULL, 'b' },   { "gen", required_argument, NULL, 'n' },
                { "json", no_argument, NULL, 'j' },          { "help", no_argument, NULL, 'h' },
                {},
        };
        int n_threads = 2, n_ctx = 4096, n_batch = 512, n_gen = 16, c, r;
        bool json = false;

        while ((c = getopt_long(argc, argv, "t:c:b:n:h", lopts, NULL)) >= 0) {
                r = 0;
                switch (c) {
                case 't': r = parse_int(optarg, 1, 256, &n_threads); break;
                case 'c': r = parse_int(optarg, 2, 1 << 20, &n_ctx); break;
                case 'b': r = parse_int(optarg, 1, 1 << 16, &n_batch); break;
                case 'n': r = parse_int(optarg, 0, 1 << 20, &n_gen); break;
                case 'j': json = true; break;
                case 'h':
                        printf("usage: sotto-bench-mem [-t THREADS] [-c 4096] [-b 512] [-n 16] [--json] MODEL.gguf\n");
                        return 0;
                default: return -EINVAL;
                }
                if (r < 0) {
                        fprintf(stderr, "bad value '%s' for -%c\n", optarg, c);
                        return r;
                }
        }
        if (optind != argc - 1 || n_gen >= n_ctx) {
                fprintf(stderr, "usage: sotto-bench-mem [-t THREADS] [-c 4096] [-b 512] [-n 16] [--json] MODEL.gguf\n");
                return -EINVAL;
        }
        char path[PATH_MAX];
        if (!realpath(argv[optind], path)) {
                fprintf(stderr, "%s: %m\n", argv[optind]);
                return -errno;
        }

        /* the per-layer-embedding table's place in the file */
        uint64_t ple_off = 0, ple_bytes = 0, data_off = 0, file_size = 0;
        {
                gguf_file *g;
                char err[512] = "";
                size_t size;
                r = gguf_open_path(path, &g, err, sizeof err);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", path, err);
                        return r;
                }
                const uint8_t *base = gguf_file_data(g, &size);
                file_size = size;
                for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
                        const gguf_tensor *t = gguf_tensor_at(g, i);
                        if (t->name.len == strlen("per_layer_token_embd.weight") &&
                            memcmp(t->name.p, "per_layer_token_embd.weight", t->name.len) == 0) {
                                ple_off = (uint64_t)((const uint8_t *)t->data - base);
                                ple_bytes = t->nbytes;
                        }
                }
                (void)data_off;
                gguf_close(g);
        }

        engine_model_params mp;
        engine_model_default_params(&mp);
        mp.n_threads = n_threads;
        engine_model *m = NULL;
        char err[512] = "";
        r = engine_model_load_path(path, &mp, &m, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, err);
                return r;
        }
        mem_status loaded;
        read_status(&loaded);

        engine_session_params sp;
        engine_session_default_params(&sp);
        sp.n_ctx = n_ctx;
        engine_session *s = NULL;
        r = engine_session_new(m, &sp, &s, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, err);
                engine_model_free(m);
                return r;
        }
        int32_t n_vocab = engine_model_n_vocab(m);
        int32_t *tok = malloc(sizeof *tok * (size_t)n_ctx);
        float *logits = malloc(sizeof *logits * (size_t)n_vocab);
        uint64_t rng = 7;
        double t0 = now(), t_prompt;
        int n_prompt = n_ctx - n_gen;

        r = tok && logits ? 0 : -ENOMEM;
        if (r >= 0) {
                fill_tokens(tok, n_ctx, n_vocab, &rng);
                tok[0] = tokenizer_bos(engine_model_tokenizer(m));
        }
        for (int at = 0; r >= 0 && at < n_prompt; at += n_batch) {
                int k = MIN(n_batch, n_prompt - at);
                r = engine_session_eval(s, tok + at, k, false, at + k == n_prompt ? logits : NULL);
        }
        t_prompt = now();
        for (int i = n_prompt; r >= 0 && i < n_ctx; i++)
                r = engine_session_eval(s, &tok[i], 1, false, logits);
        double t_end = now();
        if (r < 0) {
                fprintf(stderr, "%s: evaluation failed at %d of %d positions: %s\n", path, engine_session_n_past(s),
                        n_ctx, strerror(-r));
                goto out;
        }

        mem_status full;
        read_status(&full);
        uintptr_t start = 0;
        double map_rss = 0;
        int64_t ple_pages = 0, ple_present = -1;
        if (file_mapping(path, &start, &map_rss) >= 0 && ple_bytes > 0)
                ple_present = pages_present(start + ple_off, ple_bytes, &ple_pages);
        long ps = sysconf(_SC_PAGESIZE);
        double ple_mib = ple_bytes / 1048576.0, ple_res = ple_present > 0 ? ple_present * (double)ps / 1048576.0 : 0;

        if (json) {
                printf("{\"model\":\"%s\",\"arch\":\"%s\",\"threads\":%d,\"n_ctx\":%d,\"n_past\":%d,"
                       "\"prompt_tps\":%.2f,\"gen_tps\":%.2f,\"peak_rss_mib\":%.1f,\"anon_mib\":%.1f,"
                       "\"file_mib\":%.1f,\"shmem_mib\":%.1f,\"loaded_anon_mib\":%.1f,\"loaded_file_mib\":%.1f,"
                       "\"model_file_mib\":%.1f,\"model_map_rss_mib\":%.1f,\"ple_mib\":%.1f,"
                       "\"ple_resident_mib\":%.2f,\"bytes_per_token\":%" PRIu64 "}\n",
                       strrchr(path, '/') ? strrchr(path, '/') + 1 : path, engine_model_arch(m), n_threads, n_ctx,
                       engine_session_n_past(s), n_prompt / (t_prompt - t0),
                       n_gen > 0 ? n_gen / (t_end - t_prompt) : 0.0, full.hwm, full.anon, full.file, full.shmem,
                       loaded.anon, loaded.file, file_size / 1048576.0, map_rss, ple_mib, ple_res,
                       engine_model_bytes_per_token(m));
        } else {
                printf("model            %s (%s), %d threads\n", path, engine_model_arch(m), n_threads);
                printf("context          %d positions filled (%d in chunks of %d at %.2f tok/s, %d single steps at %.2f tok/s)\n",
                       engine_session_n_past(s), n_prompt, n_batch, n_prompt / (t_prompt - t0), n_gen,
                       n_gen > 0 ? n_gen / (t_end - t_prompt) : 0.0);
                printf("peak RSS         %.1f MiB (VmHWM)\n", full.hwm);
                printf("RSS now          anon %.1f + file %.1f + shmem %.1f MiB (after load: anon %.1f, file %.1f)\n",
                       full.anon, full.file, full.shmem, loaded.anon, loaded.file);
                printf("model mapping    %.1f MiB resident of a %.1f MiB file; weights read per token %.1f MiB\n",
                       map_rss, file_size / 1048576.0, engine_model_bytes_per_token(m) / 1048576.0);
                if (ple_bytes > 0)
                        printf("per-layer embd   %.2f MiB mapped of the %.1f MiB table (%" PRId64 " of %" PRId64 " pages)\n",
                               ple_res, ple_mib, ple_present, ple_pages);
        }
out:
        free(tok);
        free(logits);
        engine_session_free(s);
        engine_model_free(m);
        return r;
}

int main(int argc, char **argv) {
        return run(argc, argv) < 0 ? 1 : 0;
}
