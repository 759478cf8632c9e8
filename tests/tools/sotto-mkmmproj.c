/* SPDX-License-Identifier: MIT */
/* sotto-mkmmproj: write a random-weight Gemma 3 vision projector ("mmproj")
 * GGUF (tests/tools/mkmmproj.h), loadable by llama.cpp's clip and by
 * sotto's vision encoder.
 *
 *   sotto-mkmmproj --preset NAME --type F32|F16|Q8_0 [--seed N] [--proj-dim N] [--layers N] OUT.gguf
 *   sotto-mkmmproj --list */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "mkmmproj.h"
#include "tensor-type.h"

static void usage(FILE *f) {
        fprintf(f, "usage: sotto-mkmmproj --preset NAME --type F32|F16|Q8_0 [--seed N] [--proj-dim N] [--layers N] OUT.gguf\n"
                   "       sotto-mkmmproj --list\n");
}

static int run(int argc, char **argv) {
        static const struct option opts[] = {
                { "preset", required_argument, NULL, 'p' },
                { "type", required_argument, NULL, 't' },
                { "seed", required_argument, NULL, 's' },
                { "proj-dim", required_argument, NULL, 'd' },
                { "layers", required_argument, NULL, 'L' },
                { "list", no_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *preset = NULL, *type = NULL;
        uint64_t seed = 1;
        long proj_dim = 0, layers = 0;
        char *end;
        int c;

        while ((c = getopt_long(argc, argv, "p:t:s:d:L:lh", opts, NULL)) >= 0) {
                switch (c) {
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
                case 'd':
                        proj_dim = strtol(optarg, &end, 10);
                        if (*end || proj_dim < 1 || proj_dim > 65536) {
                                fprintf(stderr, "bad --proj-dim '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case 'L':
                        layers = strtol(optarg, &end, 10);
                        if (*end || layers < 1 || layers > 200) {
                                fprintf(stderr, "bad --layers '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case 'l':
                        mk_mmproj_list(stdout);
                        printf("types: F32 F16 Q8_0\n");
                        return 0;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (!preset || !type || optind != argc - 1) {
                usage(stderr);
                return 2;
        }
        const mk_mmproj_preset *ps = mk_mmproj_preset_find(preset);
        if (!ps) {
                fprintf(stderr, "unknown preset '%s' (see --list)\n", preset);
                return 2;
        }
        mk_mmproj_preset custom = *ps;
        if (proj_dim)
                custom.proj_dim = (uint32_t)proj_dim;
        if (layers)
                custom.n_layer = (uint32_t)layers;
        uint32_t t;
        if (strcasecmp(type, "F32") == 0)
                t = TYPE_F32;
        else if (strcasecmp(type, "F16") == 0)
                t = TYPE_F16;
        else if (strcasecmp(type, "Q8_0") == 0)
                t = TYPE_Q8_0;
        else {
                fprintf(stderr, "unknown type '%s' (F32, F16, Q8_0)\n", type);
                return 2;
        }
        char err[256];
        if (mk_mmproj_write(&custom, t, seed, NULL, argv[optind], err, sizeof err) < 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
        }
        fprintf(stderr, "%s: %s %s seed %" PRIu64 "\n", argv[optind], ps->name, type, seed);
        return 0;
}

int main(int argc, char **argv) { return run(argc, argv); }
