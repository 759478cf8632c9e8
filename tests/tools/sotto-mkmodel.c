/* SPDX-License-Identifier: MIT */
/* sotto-mkmodel: write a random-weight GGUF model of a known shape, loadable
 * by sotto's engine and by llama.cpp, for tests and benchmarks at real
 * sizes.
 *
 *   sotto-mkmodel --arch ARCH --preset NAME --type TYPE [--seed N] [--threads N] OUT.gguf
 *   sotto-mkmodel --list */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "mkmodel-model.h"
#include "mkmodel-quant.h"
#include "mkmodel-write.h"
#include "tensor-type.h"

static void usage(FILE *f) {
        fprintf(f,
                "usage: sotto-mkmodel [--arch ARCH] --preset NAME --type TYPE [--seed N] [--threads N] OUT.gguf\n"
                "       sotto-mkmodel --list\n");
}

static void list(void) {
        printf("presets:\n");
        for (size_t i = 0; i < mk_n_presets; i++) {
                const mk_preset *p = &mk_presets[i];
                printf("  %-12s %-8s n_embd %u, %u layers, %u/%u heads of %u, n_ff %u, vocab %u%s\n", p->name,
                       p->arch, p->n_embd, p->n_layer, p->n_head, p->n_head_kv, p->head_dim, p->n_ff, p->n_vocab,
                       p->tied_output ? ", tied output" : "");
        }
        printf("types:");
        for (size_t i = 0; i < mk_n_ftypes; i++)
                printf(" %s", mk_ftypes[i].name);
        printf("\n");
}

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int run(int argc, char **argv) {
        static const struct option opts[] = {
                { "arch", required_argument, NULL, 'a' },
                { "preset", required_argument, NULL, 'p' },
                { "type", required_argument, NULL, 't' },
                { "seed", required_argument, NULL, 's' },
                { "threads", required_argument, NULL, 'j' },
                { "list", no_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *arch = NULL, *preset = NULL, *type = NULL;
        uint64_t seed = 1;
        long n_threads = sysconf(_SC_NPROCESSORS_ONLN);
        char *end;
        int c;

        while ((c = getopt_long(argc, argv, "a:p:t:s:j:lh", opts, NULL)) >= 0) {
                switch (c) {
                case 'a': arch = optarg; break;
                case 'p': preset = optarg; break;
                case 't': type = optarg; break;
                case 's':
                        errno = 0;
                        seed = strtoull(optarg, &end, 0);
                        if (errno || *end || !*optarg) {
                                fprintf(stderr, "bad --seed '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case 'j':
                        n_threads = strtol(optarg, &end, 10);
                        if (*end || n_threads < 1 || n_threads > 64) {
                                fprintf(stderr, "bad --threads '%s' (1..64)\n", optarg);
                                return 2;
                        }
                        break;
                case 'l': list(); return 0;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (!preset || !type || optind != argc - 1) {
                usage(stderr);
                return 2;
        }
        const mk_preset *p = mk_preset_find(preset);
        if (!p) {
                fprintf(stderr, "unknown preset '%s' (see --list)\n", preset);
                return 2;
        }
        if (arch && strcmp(arch, p->arch) != 0) {
                fprintf(stderr, "preset %s is of architecture %s, not %s\n", p->name, p->arch, arch);
                return 2;
        }
        const mk_ftype *ft = mk_ftype_find(type);
        if (!ft) {
                fprintf(stderr, "unknown type '%s' (see --list)\n", type);
                return 2;
        }

        char err[256];
        _cleanup_(mk_model_done) mk_model m = {};
        int r = mk_model_plan(&m, p, ft, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
        }
        double t0 = now();
        r = mk_model_write(&m, argv[optind], seed, (int)MAX(1L, n_threads), err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
        }

        uint64_t bytes = 0, by_type[TYPE_COUNT] = {};
        for (size_t i = 0; i < m.n_tensors; i++) {
                bytes += m.tensors[i].nbytes;
                by_type[m.tensors[i].type] += m.tensors[i].nbytes;
        }
        fprintf(stderr, "%s: %s %s seed %" PRIu64 ", %zu tensors, %.1f MiB of weights (", argv[optind], p->name,
                ft->name, seed, m.n_tensors, bytes / 1048576.0);
        const char *sep = "";
        for (uint32_t t = 0; t < TYPE_COUNT; t++)
                if (by_type[t]) {
                        fprintf(stderr, "%s%s %.1f", sep, mk_type_name(t), by_type[t] / 1048576.0);
                        sep = ", ";
                }
        fprintf(stderr, "), %.1f s with %ld threads\n", now() - t0, n_threads);
        return 0;
}

int main(int argc, char **argv) { return run(argc, argv); }
