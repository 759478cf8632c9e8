/* SPDX-License-Identifier: MIT */
/* sotto.conf reader: sections and keys, [Defaults] and [App] merged,
 * drop-ins in lexical order overriding the main file, and every kind of
 * broken line refused with file:line and a reason. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/sottod/config.h"
#include "test.h"

static int parse(const char *text, ManagerConfig *c, QuotaConfig *q, char *err, size_t errlen) {
        return config_parse(text, strlen(text), "t.conf", c, q, err, errlen);
}

static void expect_error(const char *text, const char *want) {
        ManagerConfig c = {};
        QuotaConfig q;
        char err[1024] = "";
        quota_config_init(&q);
        int r = parse(text, &c, &q, err, sizeof err);
        CHECK_MSG(r < 0, "accepted: %s", text);
        CHECK_MSG(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
        free(c.model_path);
        quota_config_done(&q);
}

static void test_good(void) {
        ManagerConfig c = { .max_active = 8 };
        QuotaConfig q;
        QuotaLimits l;
        char err[1024] = "";
        quota_config_init(&q);
        const char *text = "# comment\n"
                           "; another\n"
                           "Model = /m/a.gguf\n" /* before any section: [Daemon] */
                           "\n"
                           "[Daemon]\r\n"
                           "  MaxActive=3  \n"
                           "ContextSize = 2048\n"
                           "Threads = 2\n"
                           "MaxRequestsPerCaller = 5\n"
                           "[Defaults]\n"
                           "PromptTokensPerMinute = 6000\n"
                           "GeneratedTokensPerMinute = 3000\n"
                           "MaxConcurrentRequests = 4\n"
                           "Priority = interactive\n"
                           "[App org.example.Batch]\n"
                           "Priority = background\n"
                           "GeneratedTokensPerMinute = 600\n"
                           "MaxAnswerTokens = 256\n"
                           "MaxPromptTokens = 1024\n"
                           "AudioSecondsPerHour = 600\n"
                           "ImagesPerHour = unlimited\n"
                           "[App /usr/bin/my-script]\n"
                           "Priority = idle\n";
        CHECK_OK(parse(text, &c, &q, err, sizeof err));
        CHECK(!strcmp(c.model_path, "/m/a.gguf"));
        CHECK_EQ_INT(c.max_active, 3);
        CHECK_EQ_INT(c.n_ctx, 2048);
        CHECK_EQ_INT(c.n_threads, 2);
        CHECK_EQ_INT(c.max_per_caller, 5);

        quota_config_lookup(&q, "org.example.Other", &l);
        CHECK_EQ_INT(l.rate[QUOTA_PROMPT_TOKENS], 6000);
        CHECK_EQ_INT(l.rate[QUOTA_GENERATED_TOKENS], 3000);
        CHECK_EQ_INT(l.max_concurrent, 4);
        CHECK_EQ_INT(l.priority, PRIORITY_INTERACTIVE);
        CHECK_EQ_INT(l.max_answer_tokens, 0);

        quota_config_lookup(&q, "org.example.Batch", &l);
        CHECK_EQ_INT(l.rate[QUOTA_PROMPT_TOKENS], 6000); /* from [Defaults] */
        CHECK_EQ_INT(l.rate[QUOTA_GENERATED_TOKENS], 600);
        CHECK_EQ_INT(l.rate[QUOTA_AUDIO_SECONDS], 600);
        CHECK_EQ_INT(l.rate[QUOTA_IMAGES], 0);
        CHECK_EQ_INT(l.max_answer_tokens, 256);
        CHECK_EQ_INT(l.max_prompt_tokens, 1024);
        CHECK_EQ_INT(l.max_concurrent, 4);
        CHECK_EQ_INT(l.priority, PRIORITY_BACKGROUND);

        quota_config_lookup(&q, "/usr/bin/my-script", &l);
        CHECK_EQ_INT(l.priority, PRIORITY_IDLE);

        /* SetQuota */
        CHECK_OK(quota_config_set(&q, "org.example.Other", "PromptTokensPerMinute", "10", err, sizeof err));
        quota_config_lookup(&q, "org.example.Other", &l);
        CHECK_EQ_INT(l.rate[QUOTA_PROMPT_TOKENS], 10);
        CHECK_EQ_INT(l.rate[QUOTA_GENERATED_TOKENS], 3000);
        CHECK_EQ_INT(quota_config_set(&q, "x", "Bogus", "1", err, sizeof err), -EINVAL);
        CHECK(strstr(err, "unknown key 'Bogus'"));
        CHECK_EQ_INT(quota_config_set(&q, "x", "Priority", "urgent", err, sizeof err), -EINVAL);
        CHECK_EQ_INT(quota_config_set(&q, NULL, "MaxConcurrentRequests", "-1", err, sizeof err), -EINVAL);
        CHECK_OK(quota_config_set(&q, NULL, "MaxConcurrentRequests", "2", err, sizeof err));
        quota_config_lookup(&q, "nobody.set.this", &l);
        CHECK_EQ_INT(l.max_concurrent, 2);

        free(c.model_path);
        quota_config_done(&q);
}

static void test_errors(void) {
        expect_error("Model = /x\nthis line is broken\n", "t.conf:2: expected key = value");
        expect_error("[Daemon]\nBogusKey = 1\n", "t.conf:2: unknown key 'BogusKey'");
        expect_error("[Defaults]\nMaxActive = 1\n", "t.conf:2: unknown key 'MaxActive'");
        expect_error("[Nope]\n", "t.conf:1: unknown section [Nope]");
        expect_error("\n\n[Daemon\n", "t.conf:3: a section header must end with ']'");
        expect_error("[App ]\n", "t.conf:1: [App <AppID>] needs");
        expect_error("[App a b]\n", "t.conf:1: [App <AppID>] needs");
        expect_error("[App]\n", "t.conf:1: unknown section [App]");
        expect_error("[Defaults]\nPromptTokensPerMinute = -5\n", "t.conf:2: PromptTokensPerMinute must be a whole number");
        expect_error("[Defaults]\nPromptTokensPerMinute = 5k\n", "t.conf:2:");
        expect_error("[Defaults]\nPromptTokensPerMinute = 99999999999999999999\n", "t.conf:2:");
        expect_error("[Defaults]\nPromptTokensPerMinute = 1000000001\n", "t.conf:2:");
        expect_error("[Defaults]\nPromptTokensPerMinute =\n", "t.conf:2:");
        expect_error("[Defaults]\nPriority = urgent\n", "t.conf:2: Priority must be interactive, background or idle");
        expect_error("[Daemon]\nMaxActive = 257\n", "t.conf:2: bad value for MaxActive");
        expect_error("[Daemon]\nModel =\n", "t.conf:2: Model= needs a path");
        expect_error("= 5\n", "t.conf:1: expected key = value: the key is missing");
        expect_error("Max Active = 5\n", "t.conf:1: expected key = value: 'Max Active' is not a key");
        expect_error("\xef\xbb\xbf[Daemon]\n", "t.conf:1: a byte-order mark");
        expect_error("[Daemon]\n\xff\n", "t.conf:0: not valid UTF-8");
        /* a NUL byte: its line */
        ManagerConfig c = {};
        QuotaConfig q;
        char err[256];
        quota_config_init(&q);
        CHECK(config_parse("a=1\nb\0c\n", 7, "t.conf", &c, &q, err, sizeof err) < 0);
        CHECK_MSG(strstr(err, "t.conf:2: a NUL byte"), "%s", err);
        quota_config_done(&q);
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "w");
        CHECK(f);
        fputs(text, f);
        fclose(f);
}

static void test_dropins(void) {
        char dir[] = "/tmp/test-config-XXXXXX", path[256], main_file[256];
        CHECK(mkdtemp(dir));
        snprintf(main_file, sizeof main_file, "%s/sotto.conf", dir);
        write_file(main_file, "[Daemon]\nMaxActive = 2\n[Defaults]\nGeneratedTokensPerMinute = 100\n");
        snprintf(path, sizeof path, "%s/sotto.conf.d", dir);
        CHECK(mkdir(path, 0755) == 0);
        snprintf(path, sizeof path, "%s/sotto.conf.d/20-b.conf", dir);
        write_file(path, "[Defaults]\nGeneratedTokensPerMinute = 300\n[App a]\nPriority = idle\n");
        snprintf(path, sizeof path, "%s/sotto.conf.d/10-a.conf", dir);
        write_file(path, "[Defaults]\nGeneratedTokensPerMinute = 200\n[App a]\nPriority = background\n"
                         "MaxAnswerTokens = 9\n");
        snprintf(path, sizeof path, "%s/sotto.conf.d/30-ignored.conf.disabled", dir);
        write_file(path, "garbage\n");

        ManagerConfig c = {};
        QuotaConfig q;
        QuotaLimits l;
        char err[1024] = "";
        quota_config_init(&q);
        CHECK_OK(config_load_all(main_file, NULL, &c, &q, err, sizeof err));
        CHECK_EQ_INT(c.max_active, 2);
        quota_config_lookup(&q, "a", &l);
        CHECK_EQ_INT(l.rate[QUOTA_GENERATED_TOKENS], 300); /* 20-b after 10-a after the main file */
        CHECK_EQ_INT(l.priority, PRIORITY_IDLE);
        CHECK_EQ_INT(l.max_answer_tokens, 9);
        quota_config_done(&q);

        /* a broken drop-in: its own file:line */
        snprintf(path, sizeof path, "%s/sotto.conf.d/15-broken.conf", dir);
        write_file(path, "[Defaults]\n\nPriority = soon\n");
        quota_config_init(&q);
        CHECK(config_load_all(main_file, NULL, &c, &q, err, sizeof err) < 0);
        CHECK_MSG(strstr(err, "sotto.conf.d/15-broken.conf:3: Priority must be"), "%s", err);
        quota_config_done(&q);

        /* an explicit drop-in directory; a missing one is fine */
        quota_config_init(&q);
        snprintf(path, sizeof path, "%s/none", dir);
        CHECK_OK(config_load_all(main_file, path, &c, &q, err, sizeof err));
        quota_config_done(&q);
        /* a missing main file is not */
        quota_config_init(&q);
        snprintf(path, sizeof path, "%s/missing.conf", dir);
        CHECK(config_load_all(path, NULL, &c, &q, err, sizeof err) == -ENOENT);
        CHECK(strstr(err, "missing.conf: cannot read"));
        quota_config_done(&q);

        free(c.model_path);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
}

/* The file the packages install parses as it is. */
static void test_packaged(void) {
        ManagerConfig c = {};
        QuotaConfig q;
        char err[1024] = "";
        struct stat st;
        if (stat("packaging/sotto.conf", &st) < 0)
                return; /* not run from the source tree */
        quota_config_init(&q);
        CHECK_MSG(config_load_all("packaging/sotto.conf", "/nonexistent", &c, &q, err, sizeof err) == 0, "%s", err);
        free(c.model_path);
        free(c.mmproj_path);
        quota_config_done(&q);
}

/* ReloadConfig parses into a deep copy: parsing the copy changes and frees
 * none of the original's strings (under ASan a shared string is a use after
 * free or a double free here). */
static void test_copy(void) {
        ManagerConfig live = { .max_active = 3, .n_ctx = 77 }, c;
        QuotaConfig q;
        char err[1024] = "";
        live.model_path = strdup("/m/a.gguf");
        live.config_path = strdup("/etc/sotto/sotto.conf");
        live.config_dir = strdup("/etc/sotto/sotto.conf.d");
        live.worker_path = strdup("/usr/libexec/sotto-worker");
        live.whisper_model_path = strdup("/m/w.bin");
        live.user = strdup("sotto");
        live.mmproj_path = strdup("/m/p.gguf");
        CHECK_OK(manager_config_copy(&c, &live));
        char **a[] = { &live.model_path, &live.config_path, &live.config_dir, &live.worker_path,
                       &live.whisper_model_path, &live.user, &live.mmproj_path };
        char **b[] = { &c.model_path, &c.config_path, &c.config_dir, &c.worker_path, &c.whisper_model_path, &c.user,
                       &c.mmproj_path };
        for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
                CHECK(*b[i] && *b[i] != *a[i] && strcmp(*b[i], *a[i]) == 0);
        CHECK_EQ_INT(c.max_active, 3);
        CHECK_EQ_INT(c.n_ctx, 77);
        /* Every path key the parser knows, replaced in the copy. */
        const char *text = "[Daemon]\nModel=/m/b.gguf\nWhisperModel=/m/x.bin\nVisionModel=\nMaxActive=5\n";
        quota_config_init(&q);
        CHECK_MSG(config_parse(text, strlen(text), "t.conf", &c, &q, err, sizeof err) == 0, "%s", err);
        CHECK(strcmp(c.model_path, "/m/b.gguf") == 0 && strcmp(c.whisper_model_path, "/m/x.bin") == 0);
        CHECK(!c.mmproj_path);
        CHECK(strcmp(live.model_path, "/m/a.gguf") == 0 && strcmp(live.whisper_model_path, "/m/w.bin") == 0 &&
              strcmp(live.mmproj_path, "/m/p.gguf") == 0);
        CHECK_EQ_INT(live.max_active, 3);
        manager_config_done(&c);
        CHECK(!c.model_path && !c.user && c.max_active == 0);
        manager_config_done(&live);
        manager_config_done(&live); /* idempotent */
        quota_config_done(&q);
        /* Copy of an empty configuration. */
        ManagerConfig e = {};
        CHECK_OK(manager_config_copy(&c, &e));
        CHECK(!c.model_path && !c.user);
        manager_config_done(&c);
}

int main(void) {
        test_copy();
        test_packaged();
        test_good();
        test_errors();
        test_dropins();
        printf("config: ok\n");
        return 0;
}
