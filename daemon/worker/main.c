/* SPDX-License-Identifier: MIT */
/* sotto-worker: started by sottod with the protocol socket and the model
 * file as inherited fds.  Set-up (drop privileges, map the model) happens
 * before the seccomp filter; from then on the worker only computes and talks
 * over its socket. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/common/privs.h"
#include "daemon/worker/sandbox.h"
#include "daemon/worker/worker-image.h"
#include "daemon/worker/worker.h"
#include "engine.h"
#include "macro.h"
#include "weights-arena.h"
#include "whisper.h"

static int parse_int(const char *s, int min, int max, int *ret) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                return -EINVAL;
        *ret = (int)v;
        return 0;
}

#ifdef SOTTO_TEST_HOOKS
/* tests/integration/weights-forged.sh.  SOTTO_TEST_WEIGHTS=skew: the
 * arena sottod offers is checked as if the files had changed since (it must
 * be refused and rebuilt); =unsealed: sottod is handed a writable copy of
 * the arena built (it must refuse it). */
static void weights_test_skew(int *weights_fd, const weights_source *sources, size_t n) {
        const char *e = getenv("SOTTO_TEST_WEIGHTS");
        weights_source skewed[8];
        weights_arena *a = NULL;
        char err[256];

        if (*weights_fd < 0 || !e || strcmp(e, "skew") != 0 || n > ELEMENTSOF(skewed))
                return;
        memcpy(skewed, sources, n * sizeof *sources);
        skewed[0].mtime_nsec ^= 1;
        if (weights_arena_open(*weights_fd, skewed, n, &a, err, sizeof err) >= 0 && *weights_arena_status(a))
                fprintf(stderr, "sotto-worker: test hook: %s\n", weights_arena_status(a));
        weights_arena_free(a);
        close(*weights_fd);
        *weights_fd = -1;
}

static int weights_test_unsealed(int fd) {
        const char *e = getenv("SOTTO_TEST_WEIGHTS");
        struct stat st;

        if (fd < 0 || !e || strcmp(e, "unsealed") != 0 || fstat(fd, &st) < 0)
                return fd;
        int c = memfd_create("sotto-weights", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (c < 0 || ftruncate(c, st.st_size) < 0)
                return fd;
        loff_t in = 0, out = 0;
        while (in < st.st_size && copy_file_range(fd, &in, c, &out, (size_t)(st.st_size - in), 0) > 0)
                ;
        return c; /* leaks the copy: a test build */
}
#endif

static int run(int argc, char **argv) {
        int sock_fd = 3, model_fd = 4, mmproj_fd = -1, n_threads = 0, n_ctx = 0, max_active = 16, max_chats = 64;
        int whisper_fd = -1, weights_fd = -1;
        const char *user = "sotto";
        char err[512] = "";
        static const struct option opts[] = {
                { "socket-fd", required_argument, NULL, 's' }, { "model-fd", required_argument, NULL, 'm' },
                { "threads", required_argument, NULL, 't' },   { "context", required_argument, NULL, 'c' },
                { "user", required_argument, NULL, 'u' },      { "max-active", required_argument, NULL, 'a' },
                { "max-chats", required_argument, NULL, 'C' }, { "mmproj-fd", required_argument, NULL, 'v' },
                { "whisper-model-fd", required_argument, NULL, 'w' },
                { "weights-fd", required_argument, NULL, 'W' },
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 's': r = parse_int(optarg, 0, 65535, &sock_fd); break;
                case 'm': r = parse_int(optarg, 0, 65535, &model_fd); break;
                case 't': r = parse_int(optarg, 0, 1024, &n_threads); break;
                case 'c': r = parse_int(optarg, 0, 1 << 20, &n_ctx); break;
                case 'a': r = parse_int(optarg, 1, 1024, &max_active); break;
                case 'C': r = parse_int(optarg, 0, 4096, &max_chats); break;
                case 'u': user = optarg; r = 0; break;
                case 'v': r = parse_int(optarg, 0, 65535, &mmproj_fd); break;
                case 'w': r = parse_int(optarg, 0, 65535, &whisper_fd); break;
                case 'W': r = parse_int(optarg, 0, 65535, &weights_fd); break;
                default: return -EINVAL;
                }
                if (r < 0) {
                        fprintf(stderr, "sotto-worker: bad option value '%s'\n", optarg);
                        return r;
                }
        }
        /* Die with sottod, whatever happens to it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                return -ESRCH;
        struct stat st;
        if (fstat(sock_fd, &st) < 0 || !S_ISSOCK(st.st_mode) || fstat(model_fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                fprintf(stderr, "sotto-worker: expects the protocol socket on fd %d and the model file on fd %d; "
                                "it is started by sottod\n", sock_fd, model_fd);
                return -EBADF;
        }

        r = privs_drop(user, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "sotto-worker: %s\n", err);
                return r;
        }
        if (n_threads <= 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN); /* reads /sys: before the sandbox */
                n_threads = n > 0 ? (int)MIN(n, 64L) : 1;
        }

        /* The derived weights (weights-arena.h): the arena sottod offers,
         * if it is the one for these very files, else a new one that the
         * loaders below fill and sottod then hands to the next workers. */
        weights_source sources[3];
        weights_arena *arena = NULL;
        int fds[3] = { model_fd, mmproj_fd, whisper_fd };
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                if (weights_source_from_fd(fds[i], &sources[i]) < 0)
                        sources[i] = (weights_source) {};
#ifdef SOTTO_TEST_HOOKS
        weights_test_skew(&weights_fd, sources, ELEMENTSOF(sources));
#endif
        /* SOTTO_WORKER_SHARED_WEIGHTS=0: private copies, as before the
         * arena (for comparisons: tests/integration/weights-shared.sh). */
        const char *e = getenv("SOTTO_WORKER_SHARED_WEIGHTS");
        if (e && strcmp(e, "0") == 0)
                r = 0;
        else
                r = weights_arena_open(weights_fd, sources, ELEMENTSOF(sources), &arena, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "sotto-worker: no shared derived weights: %s\n", err); /* loaders use the heap */
        else if (arena && *weights_arena_status(arena))
                fprintf(stderr, "sotto-worker: %s\n", weights_arena_status(arena));
        if (weights_fd >= 0)
                close(weights_fd);
        weights_arena_set_default(arena);

        engine_model_params mp;
        engine_model *model = NULL;
        engine_model_default_params(&mp);
        mp.n_threads = n_threads;
        r = engine_model_load_fd(model_fd, &mp, &model, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "sotto-worker: cannot load the model: %s\n", err);
                return r;
        }
        close(model_fd);
        /* The vision projector, when sottod has one: loaded before the sandbox too. */
        worker_vision *vision = NULL;
        r = worker_vision_load(mmproj_fd, model, n_threads, &vision, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "sotto-worker: cannot load the vision model: %s\n", err);
                engine_model_free(model);
                return r;
        }
        if (mmproj_fd >= 0)
                close(mmproj_fd);
        /* The speech model (optional): a failure here leaves text generation
         * serving; speech requests then fail with this sentence. */
        whisper_model *whisper = NULL;
        char whisper_err[256] = "";
        if (whisper_fd >= 0) {
                char e[200] = "";
                if (fstat(whisper_fd, &st) < 0 || !S_ISREG(st.st_mode))
                        snprintf(whisper_err, sizeof whisper_err, "the speech model is not a regular file");
                else if (whisper_model_load_fd(whisper_fd, &whisper, e, sizeof e) < 0)
                        snprintf(whisper_err, sizeof whisper_err, "the speech model could not be loaded: %s", e);
                if (whisper_err[0])
                        fprintf(stderr, "sotto-worker: %s\n", whisper_err);
                close(whisper_fd);
        } else
                snprintf(whisper_err, sizeof whisper_err,
                         "no speech model is configured (WhisperModel= in sotto.conf, or sottod --whisper-model)");
        if (n_ctx <= 0)
                n_ctx = (int)MIN(MAX(engine_model_n_ctx_train(model), 1), 4096);

        int share_fd = -1;
        /* Where sottod's workers share the weights: in 2 MiB pages only if
         * the system allows them for shared memory (weights-arena.c). */
        const char *pages = weights_arena_huge_pages()
                                    ? "2 MiB pages"
                                    : "4 KiB pages: shmem_enabled gives shared memory no huge pages, see sotto.tmpfiles";
        if (arena) {
                r = weights_arena_seal(arena, err, sizeof err);
                if (r < 0) {
                        fprintf(stderr, "sotto-worker: %s\n", err);
                        goto fail;
                }
                double mib = weights_arena_size(arena) / 1048576.0;
                if (weights_arena_get_mode(arena) == WEIGHTS_ARENA_MAPPED)
                        fprintf(stderr, "sotto-worker: derived weights: mapped the shared arena (%u blocks, %.1f MiB, %s), "
                                        "%u blocks private\n", weights_arena_n_blocks(arena), mib, pages,
                                weights_arena_n_private(arena));
                else if ((share_fd = weights_arena_fd(arena)) >= 0)
                        fprintf(stderr, "sotto-worker: derived weights: built a shared arena (%u blocks, %.1f MiB, %s), "
                                        "%u blocks private\n", weights_arena_n_blocks(arena), mib, pages,
                                weights_arena_n_private(arena));
                else {
                        /* Nothing derived (a GGUF text model alone): no arena. */
                        weights_arena_free(arena);
                        arena = NULL;
                }
        }

#ifdef SOTTO_TEST_HOOKS
        share_fd = weights_test_unsealed(share_fd);
#endif
        r = sandbox_apply(err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "sotto-worker: %s\n", err);
                goto fail;
        }

        worker_config cfg = { .n_ctx = n_ctx, .max_active = (uint32_t)max_active, .max_chats = (uint32_t)max_chats,
                              .vision = vision, .whisper = whisper, .whisper_error = whisper_err,
                              .n_threads = n_threads, .weights_fd = share_fd,
                              .weights_size = arena ? weights_arena_size(arena) : 0,
                              .weights_blocks = arena ? weights_arena_n_blocks(arena) : 0 };
        r = worker_run(model, &cfg, sock_fd);
        if (r < 0)
                fprintf(stderr, "sotto-worker: %s\n", strerror(-r));
fail:
        worker_vision_free(vision);
        engine_model_free(model);
        whisper_model_free(whisper);
        weights_arena_free(arena); /* after what points into it */
        return r;
}

int main(int argc, char **argv) {
        return run(argc, argv) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
