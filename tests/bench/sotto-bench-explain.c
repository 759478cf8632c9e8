/* SPDX-License-Identifier: MIT */
/* sotto-bench-explain: one image question through the worker's own code
 * (daemon/worker/worker-image.c: decode, preprocess, encode, the Gemma 3
 * prompt with the soft tokens) and the engine, outside the daemon: the
 * time of each step, and with --generate the greedy answer, which the
 * daemon must give byte for byte (tests/integration/explain-e2e.sh).
 *
 *   sotto-bench-explain [-t THREADS] [-r REPS] [-n GENERATE] [--json] [--text]
 *                       MODEL.gguf MMPROJ.gguf IMAGE [QUESTION]
 *
 * Steps timed (medians over REPS): decode, preprocess, encode (every
 * encoder pass), prefill (the whole prompt, image rows included), first
 * token (the call to the first token: all of the above plus sampling). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/media/image.h"
#include "daemon/worker/worker-chat.h"
#include "daemon/worker/worker-image.h"
#include "engine.h"
#include "macro.h"
#include "tokenizer.h"

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static double median_ms(uint64_t *v, int n) {
        qsort(v, (size_t)n, sizeof *v, cmp_u64);
        return (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) / 1e3;
}

typedef struct run {
        uint64_t decode, preprocess, encode, prefill, first;
        size_t n_prompt, n_images, n_soft;
        uint32_t width, height;
} run;

/* One question: prepare as the worker does, prefill as the worker does
 * (text in chunks of 64, each image block in one bidirectional piece),
 * then greedy decoding of n_gen tokens into text. */
static int one(engine_model *model, worker_vision *vision, const uint8_t *image, size_t size, const char *question,
               int n_gen, run *out, char **text) {
        _cleanup_(worker_explain_prompt_done) worker_explain_prompt p = {};
        const tokenizer *tok = engine_model_tokenizer(model);
        int32_t n_vocab = engine_model_n_vocab(model);
        engine_session_params sp;
        engine_session *s = NULL;
        char err[512] = "";
        float *logits = malloc(sizeof(float) * (size_t)n_vocab);
        int r;

        if (!logits)
                return -ENOMEM;
        uint64_t t0 = now_usec();
        r = worker_explain_prepare(vision, model, image, size, question, strlen(question), true, false, NULL, NULL, &p, err,
                                   sizeof err);
        if (r != 0) {
                fprintf(stderr, "sotto-bench-explain: %s\n", err);
                free(logits);
                return -EINVAL;
        }
        engine_session_default_params(&sp);
        r = engine_session_new(model, &sp, &s, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "sotto-bench-explain: %s\n", err);
                free(logits);
                return r;
        }
        uint64_t t1 = now_usec();
        for (size_t pos = 0; pos < p.n_tokens;) {
                const float *embd;
                size_t n = worker_explain_next(&p, pos, p.n_tokens, 64, &embd);
                bool last = pos + n == p.n_tokens;
                r = embd ? engine_session_eval_embd(s, embd, (int32_t)n, true, false, last ? logits : NULL)
                         : engine_session_eval(s, p.tokens + pos, (int32_t)n, false, last ? logits : NULL);
                if (r < 0) {
                        fprintf(stderr, "sotto-bench-explain: the engine failed: %s\n", strerror(-r));
                        goto out;
                }
                pos += n;
        }
        uint64_t t2 = now_usec();
        /* Greedy: the daemon's sampler at temperature 0 takes the argmax. */
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap);
        detok_stream ds;
        detok_stream_init(&ds);
        ds.first = false;
        for (int i = 0; buf && i < n_gen; i++) {
                int32_t best = 0;
                for (int32_t v = 1; v < n_vocab; v++)
                        if (logits[v] > logits[best])
                                best = v;
                if (i == 0)
                        out->first = now_usec() - t0;
                if (worker_chat_is_end(tok, best))
                        break;
                char piece[1024];
                int k = detok_stream_push(tok, &ds, best, piece, sizeof piece);
                if (k > 0) {
                        if (len + (size_t)k + 64 > cap) {
                                char *nb = realloc(buf, cap *= 2);
                                if (!nb)
                                        break;
                                buf = nb;
                        }
                        memcpy(buf + len, piece, (size_t)k);
                        len += (size_t)k;
                }
                if (i + 1 < n_gen && (r = engine_session_eval(s, &best, 1, false, logits)) < 0)
                        break;
        }
        if (n_gen == 0)
                out->first = t2 - t0;
        if (buf) {
                int k = detok_stream_flush(&ds, buf + len, cap - len);
                len += k > 0 ? (size_t)k : 0;
                buf[len] = 0;
        }
        *text = buf;
        out->decode = p.decode_usec;
        out->preprocess = p.preprocess_usec;
        out->encode = p.encode_usec;
        out->prefill = t2 - t1;
        out->n_prompt = p.n_tokens;
        out->n_images = p.n_images;
        out->n_soft = p.n_images * p.n_image_tokens;
        out->width = p.width;
        out->height = p.height;
        r = 0;
out:
        engine_session_free(s);
        free(logits);
        return r < 0 ? r : 0;
}

int main(int argc, char **argv) {
        int threads = 2, reps = 3, n_gen = 1, c;
        bool json = false, text_only = false;
        static const struct option opts[] = {
                { "threads", required_argument, NULL, 't' }, { "reps", required_argument, NULL, 'r' },
                { "generate", required_argument, NULL, 'n' }, { "json", no_argument, NULL, 'j' },
                { "text", no_argument, NULL, 'x' },          {},
        };
        while ((c = getopt_long(argc, argv, "t:r:n:", opts, NULL)) >= 0)
                switch (c) {
                case 't': threads = atoi(optarg); break;
                case 'r': reps = atoi(optarg); break;
                case 'n': n_gen = atoi(optarg); break;
                case 'j': json = true; break;
                case 'x': text_only = true; break;
                default: return 2;
                }
        if (argc - optind < 3 || reps < 1 || n_gen < 0) {
                fprintf(stderr, "usage: sotto-bench-explain [-t THREADS] [-r REPS] [-n GENERATE] [--json] [--text] "
                                "MODEL.gguf MMPROJ.gguf IMAGE [QUESTION]\n");
                return 2;
        }
        const char *model_path = argv[optind], *mmproj_path = argv[optind + 1], *image_path = argv[optind + 2];
        const char *question = argc - optind > 3 ? argv[optind + 3] : "";
        char err[512] = "";
        engine_model_params mp;
        engine_model *model = NULL;
        worker_vision *vision = NULL;
        void *image = NULL;
        size_t size = 0;

        engine_model_default_params(&mp);
        mp.n_threads = threads;
        if (engine_model_load_path(model_path, &mp, &model, err, sizeof err) < 0) {
                fprintf(stderr, "sotto-bench-explain: %s: %s\n", model_path, err);
                return 1;
        }
        int fd = open(mmproj_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || worker_vision_load(fd, model, threads, &vision, err, sizeof err) < 0) {
                fprintf(stderr, "sotto-bench-explain: %s: %s\n", mmproj_path, fd < 0 ? strerror(errno) : err);
                return 1;
        }
        close(fd);
        fd = open(image_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || image_read_fd(fd, 64u << 20, 0, &image, &size, err, sizeof err) < 0) {
                fprintf(stderr, "sotto-bench-explain: %s: %s\n", image_path, fd < 0 ? strerror(errno) : err);
                return 1;
        }
        close(fd);

        uint64_t dec[64], pre[64], enc[64], pf[64], first[64];
        run rn = {};
        char *text = NULL;
        reps = MIN(reps, 64);
        for (int i = 0; i < reps; i++) {
                free(text);
                text = NULL;
                if (one(model, vision, image, size, question, n_gen, &rn, &text) < 0)
                        return 1;
                dec[i] = rn.decode, pre[i] = rn.preprocess, enc[i] = rn.encode, pf[i] = rn.prefill, first[i] = rn.first;
        }
        if (text_only)
                fputs(text ? text : "", stdout);
        else if (json)
                printf("{\"image\":\"%ux%u\",\"threads\":%d,\"reps\":%d,\"squares\":%zu,\"soft_tokens\":%zu,"
                       "\"prompt_tokens\":%zu,\"decode_ms\":%.2f,\"preprocess_ms\":%.2f,\"encode_ms\":%.2f,"
                       "\"prefill_ms\":%.2f,\"first_token_ms\":%.2f}\n",
                       rn.width, rn.height, threads, reps, rn.n_images, rn.n_soft, rn.n_prompt, median_ms(dec, reps),
                       median_ms(pre, reps), median_ms(enc, reps), median_ms(pf, reps), median_ms(first, reps));
        else
                printf("%ux%u image, %d threads, median of %d: decode %.1f ms, preprocess %.1f ms, encode %.1f ms "
                       "(%zu square%s, %zu soft tokens), prefill %.1f ms (%zu tokens), first token %.1f ms\n",
                       rn.width, rn.height, threads, reps, median_ms(dec, reps), median_ms(pre, reps),
                       median_ms(enc, reps), rn.n_images, rn.n_images == 1 ? "" : "s", rn.n_soft, median_ms(pf, reps),
                       rn.n_prompt, median_ms(first, reps));
        free(text);
        free(image);
        worker_vision_free(vision);
        engine_model_free(model);
        return 0;
}
