/* SPDX-License-Identifier: MIT */
/* sotto-engine: the engine on the command line, for developers and checks.
 *
 *   sotto-engine logits   MODEL.gguf TOKENS.i32 OUT.f32   float32 LE logits [n_tokens][n_vocab]
 *   sotto-engine greedy   MODEL.gguf TOKENS.i32 N         N greedy ids, space-separated
 *   sotto-engine tokenize MODEL.gguf TEXT [--no-bos]      token ids, space-separated
 *   sotto-engine generate MODEL.gguf PROMPT N [sampling]  streams the prompt and N new tokens
 *   sotto-engine chat     MODEL.gguf N TURN...  a conversation in the Gemma chat template: for each
 *                         user TURN, one JSON line with the answer (at most N tokens) and its counts
 *
 * Options (anywhere): -t/--threads N; for generate --temp T (0: greedy,
 * the default), --top-k K, --top-p P, --min-p P, --repeat-penalty R,
 * --repeat-last-n N, --seed S. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(engine_model *, engine_model_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(engine_session *, engine_session_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(engine_sampler *, engine_sampler_free);

static struct {
        int n_threads;
        bool no_bos;
        engine_sampler_params sp;
} arg;

static int usage(void) {
        fprintf(stderr,
                "usage: sotto-engine [-t N] COMMAND ...\n"
                "  logits   MODEL.gguf TOKENS.i32 OUT.f32   logits of every position (float32 LE)\n"
                "  greedy   MODEL.gguf TOKENS.i32 N         N greedy token ids after TOKENS\n"
                "  tokenize MODEL.gguf TEXT [--no-bos]      token ids of TEXT\n"
                "  generate MODEL.gguf PROMPT N             stream N tokens of text after PROMPT\n"
                "           [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]\n"
                "           [--repeat-last-n N] [--seed S]   (default: greedy)\n"
                "  chat     MODEL.gguf N TURN...        answer each user TURN in the chat template, one\n"
                "                                       JSON line per turn (same sampling options)\n");
        return 2;
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_int(const char *s, long lo, long hi, long *ret) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < lo || v > hi)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_float(const char *s, float *ret) {
        char *end;
        errno = 0;
        float v = strtof(s, &end);
        if (errno || end == s || *end || isnan(v))
                return -EINVAL;
        *ret = v;
        return 0;
}

static int load_model(const char *path, engine_model **ret) {
        engine_model_params mp;
        char err[512] = "";
        int r;

        engine_model_default_params(&mp);
        mp.n_threads = arg.n_threads;
        r = engine_model_load_path(path, &mp, ret, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "sotto-engine: %s: %s\n", path, err[0] ? err : strerror(-r));
        return r;
}

static int new_session(const engine_model *m, int64_t n_ctx, engine_session **ret) {
        engine_session_params sp;
        char err[512] = "";
        int r;

        if (n_ctx > INT32_MAX) {
                fprintf(stderr, "sotto-engine: %" PRId64 " positions is too many\n", n_ctx);
                return -E2BIG;
        }
        engine_session_default_params(&sp);
        sp.n_ctx = (int32_t)n_ctx;
        r = engine_session_new(m, &sp, ret, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "sotto-engine: cannot create a session: %s\n", err[0] ? err : strerror(-r));
        return r;
}

/* Token ids from a file of int32 LE. */
static int read_tokens(const char *path, int32_t **ret, int32_t *n_ret) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ int32_t *t = NULL;
        long size;

        f = fopen(path, "rb");
        if (!f) {
                fprintf(stderr, "sotto-engine: cannot open %s: %m\n", path);
                return -errno;
        }
        if (fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
                fprintf(stderr, "sotto-engine: cannot read %s: %m\n", path);
                return -EIO;
        }
        if (size == 0 || size % 4 != 0 || size / 4 > INT32_MAX) {
                fprintf(stderr, "sotto-engine: %s: %ld bytes is not a non-empty array of int32\n", path, size);
                return -EINVAL;
        }
        t = malloc((size_t)size);
        if (!t)
                return -ENOMEM;
        if (fread(t, 1, (size_t)size, f) != (size_t)size) {
                fprintf(stderr, "sotto-engine: cannot read %s\n", path);
                return -EIO;
        }
        *n_ret = (int32_t)(size / 4);
        *ret = TAKE_PTR(t);
        return 0;
}

static int eval(engine_session *s, const int32_t *tokens, int32_t n, bool all, float *logits) {
        int r = engine_session_eval(s, tokens, n, all, logits);
        if (r == -EINVAL)
                fprintf(stderr, "sotto-engine: a token id is outside the vocabulary\n");
        else if (r == -ENOSPC)
                fprintf(stderr, "sotto-engine: the context is full\n");
        else if (r < 0)
                fprintf(stderr, "sotto-engine: evaluation failed: %s\n", strerror(-r));
        return r;
}

/* ---- logits ---- */

static int cmd_logits(char **argv) {
        _cleanup_(engine_model_freep) engine_model *m = NULL;
        _cleanup_(engine_session_freep) engine_session *s = NULL;
        _cleanup_free_ int32_t *tokens = NULL;
        _cleanup_free_ float *logits = NULL;
        _cleanup_fclose_ FILE *out = NULL;
        int32_t n;
        size_t n_vocab, total;
        int r;

        if ((r = read_tokens(argv[1], &tokens, &n)) < 0 || (r = load_model(argv[0], &m)) < 0 ||
            (r = new_session(m, n, &s)) < 0)
                return r;
        n_vocab = (size_t)engine_model_n_vocab(m);
        if (MUL_OVERFLOW(n_vocab, (size_t)n, &total) || !(logits = malloc(total * sizeof(float)))) {
                fprintf(stderr, "sotto-engine: out of memory for %d x %zu logits\n", n, n_vocab);
                return -ENOMEM;
        }
        if ((r = eval(s, tokens, n, true, logits)) < 0)
                return r;
        out = fopen(argv[2], "wb");
        if (!out || fwrite(logits, sizeof(float), total, out) != total || fflush(out) != 0) {
                fprintf(stderr, "sotto-engine: cannot write %s: %m\n", argv[2]);
                return -EIO;
        }
        return 0;
}

/* ---- greedy ---- */

static int32_t argmax(const float *x, int32_t n) {
        int32_t best = 0;
        for (int32_t i = 1; i < n; i++)
                if (x[i] > x[best])
                        best = i;
        return best;
}

static int cmd_greedy(char **argv) {
        _cleanup_(engine_model_freep) engine_model *m = NULL;
        _cleanup_(engine_session_freep) engine_session *s = NULL;
        _cleanup_free_ int32_t *tokens = NULL;
        _cleanup_free_ float *logits = NULL;
        int32_t n, n_vocab;
        long count;
        int r;

        if (parse_int(argv[2], 0, INT32_MAX, &count) < 0) {
                fprintf(stderr, "sotto-engine: '%s' is not a token count\n", argv[2]);
                return -EINVAL;
        }
        if ((r = read_tokens(argv[1], &tokens, &n)) < 0 || (r = load_model(argv[0], &m)) < 0 ||
            (r = new_session(m, (int64_t)n + count, &s)) < 0)
                return r;
        n_vocab = engine_model_n_vocab(m);
        logits = malloc((size_t)n_vocab * sizeof(float));
        if (!logits)
                return -ENOMEM;

        /* the prompt in one batch, then one token per step */
        if ((r = eval(s, tokens, n, false, logits)) < 0)
                return r;
        for (long i = 0; i < count; i++) {
                int32_t id = argmax(logits, n_vocab);
                printf("%s%" PRId32, i ? " " : "", id);
                if (i + 1 < count && (r = eval(s, &id, 1, false, logits)) < 0)
                        return r;
        }
        printf("\n");
        return fflush(stdout) == 0 ? 0 : -EIO;
}

/* ---- tokenize ---- */

static int tokenize(const engine_model *m, const char *text, bool add_special, int32_t **ret, size_t *n) {
        int r = tokenizer_encode(engine_model_tokenizer(m), text, strlen(text), add_special, true, ret, n);
        if (r < 0)
                fprintf(stderr, "sotto-engine: cannot tokenize the text: %s\n", strerror(-r));
        return r;
}

/* Only the vocabulary is needed, so vocabulary-only GGUFs work too. */
static int cmd_tokenize(char **argv) {
        _cleanup_free_ int32_t *ids = NULL;
        gguf_file *g = NULL;
        tokenizer *tok = NULL;
        char err[512] = "";
        size_t n;
        int r;

        r = gguf_open_path(argv[0], &g, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "sotto-engine: %s: %s\n", argv[0], err[0] ? err : strerror(-r));
                return r;
        }
        r = tokenizer_load(g, &tok, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "sotto-engine: %s: %s\n", argv[0], err[0] ? err : strerror(-r));
                gguf_close(g);
                return r;
        }
        r = tokenizer_encode(tok, argv[1], strlen(argv[1]), !arg.no_bos, true, &ids, &n);
        if (r < 0)
                fprintf(stderr, "sotto-engine: cannot tokenize the text: %s\n", strerror(-r));
        else {
                for (size_t i = 0; i < n; i++)
                        printf("%s%" PRId32, i ? " " : "", ids[i]);
                printf("\n");
                r = fflush(stdout) == 0 ? 0 : -EIO;
        }
        tokenizer_free(tok);
        gguf_close(g);
        return r;
}

/* ---- generate ---- */

static int cmd_generate(char **argv) {
        _cleanup_(engine_model_freep) engine_model *m = NULL;
        _cleanup_(engine_session_freep) engine_session *s = NULL;
        _cleanup_(engine_sampler_freep) engine_sampler *smp = NULL;
        _cleanup_free_ int32_t *ids = NULL;
        _cleanup_free_ float *logits = NULL;
        const tokenizer *tok;
        detok_stream ds;
        char piece[256];
        size_t n_prompt;
        int32_t n_vocab, n_gen = 0;
        long count;
        double t0, t1, t2;
        int r;

        if (parse_int(argv[2], 0, INT32_MAX, &count) < 0) {
                fprintf(stderr, "sotto-engine: '%s' is not a token count\n", argv[2]);
                return -EINVAL;
        }
        if ((r = load_model(argv[0], &m)) < 0 || (r = tokenize(m, argv[1], true, &ids, &n_prompt)) < 0)
                return r;
        if (n_prompt == 0) {
                fprintf(stderr, "sotto-engine: the prompt is empty\n");
                return -EINVAL;
        }
        int64_t n_ctx = MIN((int64_t)n_prompt + count, (int64_t)MAX(engine_model_n_ctx_train(m), (int32_t)n_prompt));
        if ((r = new_session(m, n_ctx, &s)) < 0)
                return r;
        tok = engine_model_tokenizer(m);
        n_vocab = engine_model_n_vocab(m);
        logits = malloc((size_t)n_vocab * sizeof(float));
        if (!logits)
                return -ENOMEM;
        r = engine_sampler_new(&arg.sp, n_vocab, &smp);
        if (r < 0) {
                fprintf(stderr, "sotto-engine: bad sampling parameters\n");
                return r;
        }

        printf("%s", argv[1]);
        fflush(stdout);
        for (size_t i = 0; i < n_prompt; i++)
                engine_sampler_accept(smp, ids[i]);

        t0 = now_s();
        if ((r = eval(s, ids, (int32_t)n_prompt, false, logits)) < 0)
                return r;
        t1 = now_s();

        detok_stream_init(&ds);
        ds.first = false; /* the prompt text was printed as given */
        for (; n_gen < count; n_gen++) {
                int32_t id = engine_sampler_sample(smp, logits);
                if (tokenizer_is_eog(tok, id))
                        break;
                engine_sampler_accept(smp, id);
                r = detok_stream_push(tok, &ds, id, piece, sizeof piece);
                if (r > 0)
                        fwrite(piece, 1, (size_t)r, stdout);
                fflush(stdout);
                if (n_gen + 1 == count)
                        continue;
                if (engine_session_n_past(s) >= engine_session_n_ctx(s)) {
                        fprintf(stderr, "\nsotto-engine: the context (%d) is full\n", engine_session_n_ctx(s));
                        n_gen++;
                        break;
                }
                if ((r = eval(s, &id, 1, false, logits)) < 0)
                        return r;
        }
        r = detok_stream_flush(&ds, piece, sizeof piece);
        if (r > 0)
                fwrite(piece, 1, (size_t)r, stdout);
        printf("\n");
        fflush(stdout);
        t2 = now_s();

        fprintf(stderr, "sotto-engine: %zu prompt tokens in %.3f s (%.1f t/s), %d generated in %.3f s (%.1f t/s), %d threads\n",
                n_prompt, t1 - t0, (double)n_prompt / MAX(t1 - t0, 1e-9), n_gen, t2 - t1,
                (double)n_gen / MAX(t2 - t1, 1e-9), engine_model_n_threads(m));
        return 0;
}

/* ---- chat ---- */

/* The conversation as the reference builds it: the template rendered as
 * text and tokenized with control tokens recognized (the worker splices the
 * markers in by id instead, daemon/worker/worker-chat.c; both must agree).
 * Each answer stays in the context for the next turn; one that did not end
 * on <end_of_turn> is closed before the next user turn. */
static int turn_text(const char *turn, bool first, bool open, char **ret) {
        size_t n = strlen(turn);
        while (n > 0 && strchr(" \t\n\r\v\f", turn[0])) {
                turn++;
                n--;
        }
        while (n > 0 && strchr(" \t\n\r\v\f", turn[n - 1]))
                n--;
        if (asprintf(ret, "%s%s<start_of_turn>user\n%.*s<end_of_turn>\n<start_of_turn>model\n",
                     open ? "<end_of_turn>" : "", first ? "" : "\n", (int)n, turn) < 0)
                return -ENOMEM;
        return 0;
}

static void put_json_string(const char *s, size_t n) {
        putchar('"');
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '"' || c == '\\')
                        printf("\\%c", c);
                else if (c < 0x20)
                        printf("\\u%04x", c);
                else
                        putchar(c);
        }
        putchar('"');
}

static int cmd_chat(char **argv, int argc) {
        _cleanup_(engine_model_freep) engine_model *m = NULL;
        _cleanup_(engine_session_freep) engine_session *s = NULL;
        _cleanup_(engine_sampler_freep) engine_sampler *smp = NULL;
        _cleanup_free_ float *logits = NULL;
        const tokenizer *tok;
        int32_t n_vocab;
        bool open = false;
        long count;
        int r;

        if (parse_int(argv[1], 1, INT32_MAX, &count) < 0) {
                fprintf(stderr, "sotto-engine: '%s' is not a token count\n", argv[1]);
                return -EINVAL;
        }
        if ((r = load_model(argv[0], &m)) < 0)
                return r;
        tok = engine_model_tokenizer(m);
        if (tokenizer_find(tok, "<start_of_turn>") < 0 || tokenizer_find(tok, "<end_of_turn>") < 0) {
                fprintf(stderr, "sotto-engine: %s has no chat template (no <start_of_turn>)\n", argv[0]);
                return -EOPNOTSUPP;
        }
        if ((r = new_session(m, MAX(MIN(engine_model_n_ctx_train(m), 4096), 64), &s)) < 0)
                return r;
        n_vocab = engine_model_n_vocab(m);
        logits = malloc((size_t)n_vocab * sizeof(float));
        if (!logits)
                return -ENOMEM;

        for (int k = 2; k < argc; k++) {
                _cleanup_free_ char *text = NULL, *answer = NULL;
                _cleanup_free_ int32_t *ids = NULL;
                size_t n_ids, len = 0;
                detok_stream ds;
                char piece[1024];
                int32_t n_gen = 0, id;
                const char *why = "max-tokens";

                if ((r = turn_text(argv[k], k == 2, open, &text)) < 0 ||
                    (r = tokenize(m, text, k == 2, &ids, &n_ids)) < 0)
                        return r;
                /* each turn its own sampler, as each request in the worker */
                engine_sampler_free(smp);
                smp = NULL;
                if ((r = engine_sampler_new(&arg.sp, n_vocab, &smp)) < 0) {
                        fprintf(stderr, "sotto-engine: bad sampling parameters\n");
                        return r;
                }
                for (size_t i = 0; i < n_ids; i++)
                        engine_sampler_accept(smp, ids[i]);
                if ((r = eval(s, ids, (int32_t)n_ids, false, logits)) < 0)
                        return r;
                answer = malloc(1);
                if (!answer)
                        return -ENOMEM;
                detok_stream_init(&ds);
                ds.first = false;
                open = true;
                for (;;) {
                        id = engine_sampler_sample(smp, logits);
                        bool end = tokenizer_is_eog(tok, id);
                        if (!end) {
                                n_gen++;
                                engine_sampler_accept(smp, id);
                                r = detok_stream_push(tok, &ds, id, piece, sizeof piece);
                                if (r < 0)
                                        return r;
                                char *p = realloc(answer, len + (size_t)r + 16);
                                if (!p)
                                        return -ENOMEM;
                                answer = p;
                                memcpy(answer + len, piece, (size_t)r);
                                len += (size_t)r;
                        }
                        if (end || n_gen >= count || engine_session_n_past(s) >= engine_session_n_ctx(s)) {
                                /* the last token stays in the context */
                                if (engine_session_n_past(s) < engine_session_n_ctx(s)) {
                                        if ((r = eval(s, &id, 1, false, NULL)) < 0)
                                                return r;
                                        open = !end;
                                }
                                if (end)
                                        why = "end-of-text";
                                else if (n_gen < count)
                                        why = "context-full";
                                break;
                        }
                        if ((r = eval(s, &id, 1, false, logits)) < 0)
                                return r;
                }
                r = detok_stream_flush(&ds, piece, sizeof piece);
                if (r > 0) {
                        memcpy(answer + len, piece, (size_t)MIN(r, 16));
                        len += (size_t)MIN(r, 16);
                }
                printf("{\"text\":");
                put_json_string(answer, len);
                printf(",\"prompt-tokens\":%zu,\"generated-tokens\":%d,\"stop-reason\":\"%s\"}\n", n_ids, n_gen,
                       why);
        }
        return fflush(stdout) == 0 ? 0 : -EIO;
}

/* ---- main ---- */

static int parse_argv(int argc, char **argv) {
        enum { ARG_NO_BOS = 0x100, ARG_TEMP, ARG_TOP_K, ARG_TOP_P, ARG_MIN_P, ARG_REP, ARG_REP_N, ARG_SEED };
        static const struct option options[] = {
                { "threads", required_argument, NULL, 't' },
                { "no-bos", no_argument, NULL, ARG_NO_BOS },
                { "temp", required_argument, NULL, ARG_TEMP },
                { "top-k", required_argument, NULL, ARG_TOP_K },
                { "top-p", required_argument, NULL, ARG_TOP_P },
                { "min-p", required_argument, NULL, ARG_MIN_P },
                { "repeat-penalty", required_argument, NULL, ARG_REP },
                { "repeat-last-n", required_argument, NULL, ARG_REP_N },
                { "seed", required_argument, NULL, ARG_SEED },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        long v;
        int c;

        engine_sampler_default_params(&arg.sp);
        arg.sp.temperature = 0.0f; /* greedy unless asked */
        while ((c = getopt_long(argc, argv, "t:h", options, NULL)) >= 0) {
                int r = 0;
                switch (c) {
                case 't':
                        r = parse_int(optarg, 1, 1024, &v);
                        arg.n_threads = (int)v;
                        break;
                case ARG_NO_BOS:
                        arg.no_bos = true;
                        break;
                case ARG_TEMP:
                        r = parse_float(optarg, &arg.sp.temperature);
                        break;
                case ARG_TOP_K:
                        r = parse_int(optarg, INT32_MIN, INT32_MAX, &v);
                        arg.sp.top_k = (int32_t)v;
                        break;
                case ARG_TOP_P:
                        r = parse_float(optarg, &arg.sp.top_p);
                        break;
                case ARG_MIN_P:
                        r = parse_float(optarg, &arg.sp.min_p);
                        break;
                case ARG_REP:
                        r = parse_float(optarg, &arg.sp.repeat_penalty);
                        break;
                case ARG_REP_N:
                        r = parse_int(optarg, 0, 1 << 20, &v);
                        arg.sp.repeat_last_n = (int32_t)v;
                        break;
                case ARG_SEED: {
                        char *end;
                        errno = 0;
                        arg.sp.seed = strtoull(optarg, &end, 0);
                        if (errno || end == optarg || *end)
                                r = -EINVAL;
                        break;
                }
                case 'h':
                        usage();
                        exit(0);
                default:
                        return -EINVAL;
                }
                if (r < 0) {
                        fprintf(stderr, "sotto-engine: invalid value '%s' for an option\n", optarg);
                        return r;
                }
        }
        return 0;
}

static int run(int argc, char **argv) {
        static const struct {
                const char *name;
                int n_args;
                int (*fn)(char **argv);
        } cmds[] = {
                { "logits", 3, cmd_logits },
                { "greedy", 3, cmd_greedy },
                { "tokenize", 2, cmd_tokenize },
                { "generate", 3, cmd_generate },
                { "chat", -3, NULL }, /* at least 3: MODEL N TURN... */
        };
        int r;

        r = parse_argv(argc, argv);
        if (r < 0)
                return usage();
        if (optind >= argc)
                return usage();
        for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
                if (strcmp(argv[optind], cmds[i].name) != 0)
                        continue;
                if (cmds[i].n_args < 0) {
                        if (argc - optind - 1 < -cmds[i].n_args) {
                                fprintf(stderr, "sotto-engine: %s takes at least %d arguments\n", cmds[i].name,
                                        -cmds[i].n_args);
                                return usage();
                        }
                        return cmd_chat(argv + optind + 1, argc - optind - 1) < 0 ? 1 : 0;
                }
                if (argc - optind - 1 != cmds[i].n_args) {
                        fprintf(stderr, "sotto-engine: %s takes %d arguments\n", cmds[i].name, cmds[i].n_args);
                        return usage();
                }
                return cmds[i].fn(argv + optind + 1) < 0 ? 1 : 0;
        }
        fprintf(stderr, "sotto-engine: unknown command '%s'\n", argv[optind]);
        return usage();
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
