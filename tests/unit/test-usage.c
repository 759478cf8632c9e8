/* SPDX-License-Identifier: MIT */
/* The usage file: a round trip through save and load (app IDs that are
 * paths with blanks, '%' and newlines), malformed lines skipped without
 * losing the others, and no temporary file left behind. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/sottod/usage.h"
#include "test.h"

typedef struct seen {
        int n;
        uid_t uid[8];
        char app[8][256];
        char kind[8][32];
        UsageCounters c[8];
} seen;

static int add(void *userdata, uid_t uid, const char *kind, const char *app_id, const UsageCounters *c) {
        seen *s = userdata;
        if (s->n >= 8)
                return -E2BIG;
        s->uid[s->n] = uid;
        snprintf(s->app[s->n], sizeof s->app[0], "%s", app_id);
        snprintf(s->kind[s->n], sizeof s->kind[0], "%s", kind);
        s->c[s->n] = *c;
        s->n++;
        return 0;
}

int main(void) {
        char dir[] = "/tmp/test-usage-XXXXXX", path[256];
        CHECK(mkdtemp(dir));

        UsageCounters a = { .requests = 3, .prompt_tokens = 120, .generated_tokens = 4000000000ull,
                            .audio_seconds = 12.5, .images = 2 };
        UsageCounters b = { .requests = 1, .generated_tokens = 7 };
        UsageEntry e[] = {
                { .uid = 1000, .app_id = "org.example.A", .kind = "app", .c = &a },
                { .uid = 0, .app_id = "/opt/my tools/100% \n bot", .kind = "executable", .c = &b },
        };
        seen s = {};
        CHECK_EQ_INT(usage_load(dir, add, &s), 0); /* no file yet */
        CHECK_OK(usage_save(dir, e, 2));
        CHECK_EQ_INT(usage_load(dir, add, &s), 2);
        CHECK_EQ_INT(s.uid[0], 1000);
        CHECK(!strcmp(s.app[0], "org.example.A"));
        CHECK(!strcmp(s.kind[0], "app"));
        CHECK_EQ_INT(s.c[0].requests, 3);
        CHECK_EQ_INT(s.c[0].prompt_tokens, 120);
        CHECK(s.c[0].generated_tokens == 4000000000ull);
        CHECK(s.c[0].audio_seconds == 12.5);
        CHECK_EQ_INT(s.c[0].images, 2);
        CHECK(!strcmp(s.app[1], "/opt/my tools/100% \n bot"));
        CHECK(!strcmp(s.kind[1], "executable"));
        CHECK_EQ_INT(s.c[1].generated_tokens, 7);

        /* nothing but the file itself is left */
        DIR *d = opendir(dir);
        int files = 0;
        for (struct dirent *de; (de = readdir(d));)
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        files++;
        closedir(d);
        CHECK_EQ_INT(files, 1);

        /* malformed lines are skipped, the good ones kept */
        const char *text = "# sotto usage v1\n"
                           "1000 app 1 2 3 0.000 0 org.good.One\n"
                           "garbage\n"
                           "1000 app 1 2 3 -5 0 org.negative.audio\n"
                           "1000 app 1 2 3 nan 0 org.nan.audio\n"
                           "1000 app x 2 3 0 0 org.bad.number\n"
                           "1000 app 1 2 3 0 0 \n"
                           "1000 app 1 2 3 0 0 bad%zzescape\n"
                           "1000 app 1 2 3 0 0 nul%00escape\n"
                           "1001 app 4 5 6 1.500 7 org.good.Two\n";
        seen t = {};
        CHECK_EQ_INT(usage_parse(text, add, &t), 2);
        CHECK(!strcmp(t.app[0], "org.good.One"));
        CHECK(!strcmp(t.app[1], "org.good.Two"));
        CHECK_EQ_INT(t.c[1].images, 7);

        /* a directory that cannot be written */
        snprintf(path, sizeof path, "%s/missing/dir", dir);
        CHECK(usage_save(path, e, 2) < 0);

        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
        printf("usage: ok\n");
        return 0;
}
