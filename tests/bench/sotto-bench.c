/* SPDX-License-Identifier: MIT */
/* sotto-bench: prompt-processing and generation speed of a model on the
 * engine API, against the machine's memory bandwidth.
 *
 *   sotto-bench [-t THREADS] [-p 512] [-n 128] [-c CONTEXT] [-r REPS] [--batch] [--json] MODEL.gguf
 *   sotto-bench [-t THREADS] --bandwidth [--json]
 *
 * --batch adds generation with 1, 2 and 4 sessions advanced together by
 * engine_session_eval_batch (continuous batching): aggregate tokens/s.
 *
 * The method follows llama-bench so the figures compare: a warm-up, then
 * REPS runs of each test from an empty cache; pp = one evaluation of P
 * tokens (BOS + random ids), tg = N evaluations of one token.  Generation
 * reads every weight once per token and the cached keys and values of the
 * positions it attends to, so its speed is bounded by bandwidth / (weight
 * bytes + KV bytes, the latter counted by the engine as it reads them);
 * tg_bound_fraction says how close we come (tg_bound_fraction_weights:
 * against the weights' bytes alone, as before run 16 of REFERENCE.md). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "gguf.h"
#include "macro.h"
#include "sotto-bench-bw.h"
#include "tensor-type.h"

#define MAX_REPS 50

typedef struct opts {
        int n_threads, n_prompt, n_gen, n_ctx, reps;
        bool json, bandwidth_only, batch;
        const char *model;
} opts;

typedef struct result {
        double pp_tps, tg_tps;
        double pp_all[MAX_REPS], tg_all[MAX_REPS];
        uint64_t bytes_per_token;   /* weights */
        double kv_bytes_per_token;  /* cached keys and values, mean over the tg reps */
        double peak_rss_mib;
        /* per tg rep: the bandwidth read just before and just after it
         * (mean), and the rep's fraction of the bound at that bandwidth */
        double bw_all[MAX_REPS], bw_plain_all[MAX_REPS], bw_streams_all[MAX_REPS], frac_all[MAX_REPS];
        double frac_weights_all[MAX_REPS]; /* the same for the weights' bytes alone */
        size_t bw_buf_bytes;
        char name[128], arch[32];
        char paths[256]; /* "Q4_K:int8 Q6_K:sgemm" */
        bool finite;
        double batch_tps[3]; /* --batch: aggregate tok/s of 1, 2, 4 sessions */
} result;

static const int batch_sizes[3] = { 1, 2, 4 };

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(const double *v, int n) {
        double s[MAX_REPS];
        memcpy(s, v, n * sizeof *s);
        qsort(s, n, sizeof *s, cmp_double);
        return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Peak resident set: VmHWM (KiB), else ru_maxrss (KiB on Linux). */
static double peak_rss_mib(void) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
        char line[256];
        unsigned long long kib;
        while (f && fgets(line, sizeof line, f))
                if (sscanf(line, "VmHWM: %llu kB", &kib) == 1)
                        return kib / 1024.0;
        struct rusage ru;
        return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : 0;
}

/* The bandwidth probe's buffer counts in VmHWM while it exists: after
 * freeing it, reset the mark (clear_refs 5, Linux 4.0) so that later
 * peaks are the model's own; the caller keeps the peak from before. */
static void reset_peak_rss(void) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/clear_refs", "we");
        if (f)
                fputs("5", f);
}

/* The weight types of the model's matrices (from the file), so that the
 * matmul path can be reported per type. */
static int matrix_types(const char *path, bool used[TYPE_COUNT]) {
        gguf_file *f;
        int r = gguf_open_path(path, &f, NULL, 0);
        if (r < 0)
                return r;
        for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
                const gguf_tensor *t = gguf_tensor_at(f, i);
                if (t->n_dims >= 2 && t->type < TYPE_COUNT)
                        used[t->type] = true;
        }
        gguf_close(f);
        return 0;
}

static void fill_tokens(int32_t *tok, int n, int32_t bos, int32_t n_vocab, uint64_t *state) {
        for (int i = 0; i < n; i++) {
                *state = *state * 6364136223846793005ull + 1442695040888963407ull;
                tok[i] = (int32_t)(3 + (*state >> 33) % (uint64_t)(n_vocab - 3));
        }
        if (bos >= 0)
                tok[0] = bos;
}

static bool all_finite(const float *v, int n) {
        for (int i = 0; i < n; i++)
                if (!isfinite(v[i]))
                        return false;
        return true;
}

static int bench_model(const opts *o, result *res) {
        _cleanup_(bw_probe_freep) bw_probe *probe = NULL;
        char err[512];
        engine_model_params mp;
        engine_model_default_params(&mp);
        mp.n_threads = o->n_threads;
        engine_model *m = NULL;
        int r = engine_model_load_path(o->model, &mp, &m, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", o->model, err);
                return r;
        }
        snprintf(res->name, sizeof res->name, "%s", engine_model_name(m));
        snprintf(res->arch, sizeof res->arch, "%s", engine_model_arch(m));
        res->bytes_per_token = engine_model_bytes_per_token(m);

        engine_session_params sp;
        engine_session_default_params(&sp);
        sp.n_ctx = o->n_ctx > 0 ? o->n_ctx : o->n_prompt + o->n_gen;
        engine_session *s = NULL;
        r = engine_session_new(m, &sp, &s, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", o->model, err);
                engine_model_free(m);
                return r;
        }

        int32_t n_vocab = engine_model_n_vocab(m), bos = tokenizer_bos(engine_model_tokenizer(m));
        int n_tok = MAX(o->n_prompt, o->n_gen);
        _cleanup_free_ int32_t *tok = malloc(sizeof *tok * MAX(n_tok, 1));
        _cleanup_free_ float *logits = malloc(sizeof *logits * n_vocab);
        if (!tok || !logits) {
                r = -ENOMEM;
                goto out;
        }
        uint64_t rng = 1;
        res->finite = true;

        /* pp: warm-up, then reps from an empty cache */
        for (int i = -1; o->n_prompt > 0 && i < o->reps; i++) {
                fill_tokens(tok, o->n_prompt, bos, n_vocab, &rng);
                engine_session_rewind(s, 0);
                double t0 = now();
                r = engine_session_eval(s, tok, o->n_prompt, false, logits);
                double t1 = now();
                if (r < 0) {
                        fprintf(stderr, "%s: prompt evaluation failed: %s\n", o->model, strerror(-r));
                        goto out;
                }
                res->finite &= all_finite(logits, n_vocab);
                if (i >= 0)
                        res->pp_all[i] = o->n_prompt / (t1 - t0);
        }
        /* which path the prompt's matmuls took, per weight type */
        bool used[TYPE_COUNT] = {};
        if (matrix_types(o->model, used) >= 0) {
                size_t len = 0;
                for (uint32_t t = 0; t < TYPE_COUNT; t++)
                        if (used[t] && len < sizeof res->paths)
                                len += snprintf(res->paths + len, sizeof res->paths - len, "%s%s:%s",
                                                len ? " " : "", type_name(t),
                                                o->n_prompt > 1 ? engine_model_matmul_path_name(m, t) : "-");
        }

        /* tg: warm-up, then reps of n_gen single-token evaluations from an
         * empty cache, each between two reads of the bandwidth probe: the
         * machine's bandwidth drifts with other load within seconds, so
         * each rep is set against the bandwidth of its own moment */
        double peak_before_probe = peak_rss_mib();
        if (o->n_gen > 0) {
                r = bw_probe_new(o->n_threads, &probe);
                if (r < 0) {
                        fprintf(stderr, "bandwidth probe: %s\n", strerror(-r));
                        goto out;
                }
                res->bw_buf_bytes = bw_probe_bytes(probe);
        }
        for (int i = -1; o->n_gen > 0 && i < o->reps; i++) {
                int n = i < 0 ? 1 : o->n_gen;
                double p0, s0, p1, s1;
                fill_tokens(tok, n, bos, n_vocab, &rng);
                engine_session_rewind(s, 0);
                double b0 = i >= 0 ? bw_probe_once(probe, &p0, &s0) : 0;
                uint64_t kv0 = engine_session_kv_bytes_read(s);
                double t0 = now();
                for (int k = 0; k < n && r >= 0; k++)
                        r = engine_session_eval(s, &tok[k], 1, false, logits);
                double t1 = now();
                if (r < 0) {
                        fprintf(stderr, "%s: generation failed: %s\n", o->model, strerror(-r));
                        goto out;
                }
                res->finite &= all_finite(logits, n_vocab);
                if (i < 0)
                        continue;
                double b1 = bw_probe_once(probe, &p1, &s1);
                double kv = (double)(engine_session_kv_bytes_read(s) - kv0) / n;
                res->kv_bytes_per_token += kv / o->reps;
                res->tg_all[i] = n / (t1 - t0);
                res->bw_all[i] = (b0 + b1) / 2;
                res->bw_plain_all[i] = (p0 + p1) / 2;
                res->bw_streams_all[i] = (s0 + s1) / 2;
                res->frac_all[i] = res->tg_all[i] * (res->bytes_per_token + kv) / (res->bw_all[i] * 1e9);
                res->frac_weights_all[i] = res->tg_all[i] * res->bytes_per_token / (res->bw_all[i] * 1e9);
        }
        if (probe) {
                bw_probe_free(probe);
                probe = NULL;
                reset_peak_rss();
        }
        /* --batch: B sessions advanced together by engine_session_eval_batch
         * (continuous batching), n_gen steps from empty caches; aggregate
         * tokens/s = B * n_gen / time, median of the reps */
        for (int bi = 0; o->batch && o->n_gen > 0 && bi < 3; bi++) {
                int B = batch_sizes[bi];
                engine_session *bs[4] = {};
                _cleanup_free_ float *bl = malloc(sizeof *bl * n_vocab * B);
                double all[MAX_REPS];
                for (int k = 0; k < B && r >= 0; k++)
                        r = engine_session_new(m, &sp, &bs[k], err, sizeof err);
                if (!bl)
                        r = -ENOMEM;
                for (int i = -1; r >= 0 && i < o->reps; i++) {
                        int n = i < 0 ? 1 : o->n_gen;
                        for (int k = 0; k < B; k++)
                                engine_session_rewind(bs[k], 0);
                        double t0 = now();
                        for (int step = 0; step < n && r >= 0; step++) {
                                int32_t bt[4];
                                fill_tokens(bt, B, -1, n_vocab, &rng);
                                r = engine_session_eval_batch(bs, bt, B, bl);
                        }
                        double t1 = now();
                        if (i >= 0)
                                all[i] = (double)B * n / (t1 - t0);
                }
                for (int k = 0; k < B; k++)
                        engine_session_free(bs[k]);
                if (r < 0) {
                        fprintf(stderr, "%s: batched generation failed: %s\n", o->model, strerror(-r));
                        goto out;
                }
                res->batch_tps[bi] = median(all, o->reps);
        }
        res->pp_tps = o->n_prompt > 0 ? median(res->pp_all, o->reps) : 0;
        res->tg_tps = o->n_gen > 0 ? median(res->tg_all, o->reps) : 0;
        res->peak_rss_mib = MAX(peak_before_probe, peak_rss_mib());
        r = 0;
out:
        engine_session_free(s);
        engine_model_free(m);
        return r;
}

static const char *base_name(const char *p) {
        const char *s = strrchr(p, '/');
        return s ? s + 1 : p;
}

/* A JSON string: the few characters file names might need escaped. */
static void json_str(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        fprintf(f, "\\%c", *s);
                else if ((unsigned char)*s < 0x20)
                        fprintf(f, "\\u%04x", *s);
                else
                        fputc(*s, f);
        }
        fputc('"', f);
}

static void print_reps(const double *v, int n) {
        for (int i = 0; i < n; i++)
                printf("%s%.2f", i ? " " : "", v[i]);
}

static void usage(FILE *f) {
        fprintf(f, "usage: sotto-bench [-t THREADS] [-p 512] [-n 128] [-c CONTEXT] [-r REPS] [--batch] [--json] MODEL.gguf\n"
                   "       sotto-bench [-t THREADS] --bandwidth [--json]\n");
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
                { "threads", required_argument, NULL, 't' },
                { "prompt", required_argument, NULL, 'p' },
                { "gen", required_argument, NULL, 'n' },
                { "ctx", required_argument, NULL, 'c' },
                { "reps", required_argument, NULL, 'r' },
                { "json", no_argument, NULL, 'j' },
                { "bandwidth", no_argument, NULL, 'b' },
                { "batch", no_argument, NULL, 'B' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        opts o = { .n_threads = (int)MAX(1L, sysconf(_SC_NPROCESSORS_ONLN)), .n_prompt = 512, .n_gen = 128, .reps = 3 };
        int c;
        while ((c = getopt_long(argc, argv, "t:p:n:c:r:h", lopts, NULL)) >= 0) {
                int r = 0;
                switch (c) {
                case 't': r = parse_int(optarg, 1, 256, &o.n_threads); break;
                case 'p': r = parse_int(optarg, 0, 1 << 20, &o.n_prompt); break;
                case 'n': r = parse_int(optarg, 0, 1 << 20, &o.n_gen); break;
                case 'c': r = parse_int(optarg, 1, 1 << 24, &o.n_ctx); break;
                case 'r': r = parse_int(optarg, 3, MAX_REPS, &o.reps); break;
                case 'j': o.json = true; break;
                case 'b': o.bandwidth_only = true; break;
                case 'B': o.batch = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
                if (r < 0) {
                        fprintf(stderr, "bad value '%s' for -%c\n", optarg, c);
                        return 2;
                }
        }
        if (o.bandwidth_only ? optind != argc : optind != argc - 1) {
                usage(stderr);
                return 2;
        }
        if (!o.bandwidth_only)
                o.model = argv[optind];

        result res = {};
        if (o.model && bench_model(&o, &res) < 0)
                return 1;

        bw_result bw;
        double bound_tps = 0, fraction = 0, fraction_weights = 0;
        if (o.model && o.n_gen > 0) {
                /* the medians of the reps' own figures */
                bw = (bw_result) {
                        .gbs = median(res.bw_all, o.reps),
                        .plain_gbs = median(res.bw_plain_all, o.reps),
                        .streams_gbs = median(res.bw_streams_all, o.reps),
                        .buf_bytes = res.bw_buf_bytes,
                        .runs = o.reps,
                };
                double read = (double)res.bytes_per_token + res.kv_bytes_per_token;
                bound_tps = read > 0 ? bw.gbs * 1e9 / read : 0;
                fraction = median(res.frac_all, o.reps);
                fraction_weights = median(res.frac_weights_all, o.reps);
        } else {
                int r = bw_measure(o.n_threads, 5, &bw);
                if (r < 0) {
                        fprintf(stderr, "bandwidth measurement failed: %s\n", strerror(-r));
                        return 1;
                }
        }

        if (o.json) {
                printf("{\"model\":");
                json_str(stdout, o.model ? base_name(o.model) : "");
                printf(",\"threads\":%d", o.n_threads);
                if (o.model) {
                        printf(",\"name\":");
                        json_str(stdout, res.name);
                        printf(",\"arch\":");
                        json_str(stdout, res.arch);
                        printf(",\"n_prompt\":%d,\"n_gen\":%d,\"reps\":%d", o.n_prompt, o.n_gen, o.reps);
                        printf(",\"pp_tps\":%.3f,\"tg_tps\":%.3f", res.pp_tps, res.tg_tps);
                }
                printf(",\"bandwidth_gbs\":%.3f,\"bandwidth_plain_gbs\":%.3f,\"bandwidth_streams_gbs\":%.3f"
                       ",\"bandwidth_buffer_mib\":%zu",
                       bw.gbs, bw.plain_gbs, bw.streams_gbs, bw.buf_bytes >> 20);
                if (o.model) {
                        printf(",\"bytes_per_token\":%" PRIu64 ",\"kv_bytes_per_token\":%.0f,\"tg_bound_tps\":%.3f"
                               ",\"tg_bound_fraction\":%.4f,\"tg_bound_fraction_weights\":%.4f",
                               res.bytes_per_token, res.kv_bytes_per_token, bound_tps, fraction, fraction_weights);
                        printf(",\"peak_rss_mib\":%.1f,\"pp_matmul_path\":", res.peak_rss_mib);
                        json_str(stdout, res.paths);
                        printf(",\"logits_finite\":%s", res.finite ? "true" : "false");
                        for (int bi = 0; o.batch && bi < 3; bi++)
                                printf(",\"tg_batch%d_tps\":%.3f", batch_sizes[bi], res.batch_tps[bi]);
                }
                printf("}\n");
                return o.model && !res.finite ? 1 : 0;
        }

        if (o.model) {
                printf("model            %s (%s, %s)\n", o.model, res.name, res.arch);
                printf("threads          %d\n", o.n_threads);
                printf("pp%-5d          %.2f tok/s (median of ", o.n_prompt, res.pp_tps);
                print_reps(res.pp_all, o.reps);
                printf(")\ntg%-5d          %.2f tok/s (median of ", o.n_gen, res.tg_tps);
                print_reps(res.tg_all, o.reps);
                printf(")\n");
        }
        if (o.model && o.n_gen > 0)
                printf("bandwidth        %.2f GB/s (median over the %d tg reps of reads of %zu MiB just before and after "
                       "each, %d threads)\n",
                       bw.gbs, bw.runs, bw.buf_bytes >> 20, o.n_threads);
        else
                printf("bandwidth        %.2f GB/s (median of %d reads of %zu MiB, %d threads; min %.2f max %.2f; LLC "
                       "%zu MiB)\n",
                       bw.gbs, bw.runs, bw.buf_bytes >> 20, o.n_threads, bw.min_gbs, bw.max_gbs, bw.llc_bytes >> 20);
        printf("                 the faster of one plain stream per thread (%.2f) and four prefetched (%.2f)\n",
               bw.plain_gbs, bw.streams_gbs);
        if (o.model) {
                printf("bytes/token      %.1f MiB of weights + %.2f MiB of cached keys and values (mean over the "
                       "tg reps)\n",
                       res.bytes_per_token / 1048576.0, res.kv_bytes_per_token / 1048576.0);
                printf("tg bound         %.2f tok/s at that bandwidth: tg reaches %.1f%% of it (median of the "
                       "reps' fractions; %.1f%% of the weights' bound alone)\n",
                       bound_tps, 100 * fraction, 100 * fraction_weights);
                printf("peak RSS         %.1f MiB\n", res.peak_rss_mib);
                printf("pp matmul path   %s\n", res.paths);
                for (int bi = 0; o.batch && bi < 3; bi++)
                        printf("tg batch of %d    %.2f tok/s in all (%.2f per session)\n", batch_sizes[bi],
                               res.batch_tps[bi], res.batch_tps[bi] / batch_sizes[bi]);
                if (!res.finite)
                        printf("WARNING          non-finite logits\n");
        }
        return o.model && !res.finite ? 1 : 0;
}

int main(int argc, char **argv) { return run(argc, argv); }
