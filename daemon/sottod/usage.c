/* SPDX-License-Identifier: MIT */
/* The usage file: text, one application per line, replaced atomically. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/sottod/log.h"
#include "daemon/sottod/usage.h"
#include "macro.h"

#define USAGE_FILE "usage"
#define USAGE_HEADER "# sotto usage v1: uid kind requests prompt-tokens generated-tokens audio-seconds images app-id\n"
#define USAGE_MAX_FILE (16u << 20)

static void put_escaped(FILE *f, const char *s) {
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p <= ' ' || *p == '%' || *p >= 0x7f)
                        fprintf(f, "%%%02X", *p);
                else
                        fputc(*p, f);
}

int usage_format(FILE *f, const UsageEntry *e, size_t n) {
        fputs(USAGE_HEADER, f);
        for (size_t i = 0; i < n; i++) {
                fprintf(f, "%u %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %.3f %" PRIu64 " ", (unsigned)e[i].uid,
                        e[i].kind, e[i].c->requests, e[i].c->prompt_tokens, e[i].c->generated_tokens,
                        e[i].c->audio_seconds, e[i].c->images);
                put_escaped(f, e[i].app_id);
                fputc('\n', f);
        }
        return ferror(f) ? -EIO : 0;
}

static int unescape(const char *s, size_t len, char *buf, size_t size) {
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (c == '%') {
                        if (len - i < 3)
                                return -EINVAL;
                        char hex[3] = { s[i + 1], s[i + 2], 0 }, *end;
                        unsigned long v = strtoul(hex, &end, 16);
                        if (*end || v == 0)
                                return -EINVAL;
                        c = (char)v;
                        i += 2;
                } else if ((unsigned char)c <= ' ')
                        return -EINVAL;
                if (o + 1 >= size)
                        return -ENAMETOOLONG;
                buf[o++] = c;
        }
        buf[o] = 0;
        return o > 0 ? 0 : -EINVAL;
}

static int parse_line(const char *line, size_t len, uid_t *uid, char *kind, size_t kind_size, UsageCounters *c,
                      char *app, size_t app_size) {
        char buf[512];
        unsigned u;
        int used = 0;
        /* the numbers and kind come first and are short */
        size_t head = MIN(len, sizeof buf - 1);
        memcpy(buf, line, head);
        buf[head] = 0;
        char kind_buf[32];
        if (sscanf(buf, "%u %31s %" SCNu64 " %" SCNu64 " %" SCNu64 " %lf %" SCNu64 " %n", &u, kind_buf, &c->requests,
                   &c->prompt_tokens, &c->generated_tokens, &c->audio_seconds, &c->images, &used) != 7 ||
            used <= 0 || (size_t)used >= len)
                return -EINVAL;
        if (!(c->audio_seconds >= 0 && c->audio_seconds < 1e15))
                return -EINVAL;
        if (strlen(kind_buf) >= kind_size)
                return -EINVAL;
        strcpy(kind, kind_buf);
        *uid = (uid_t)u;
        return unescape(line + used, len - (size_t)used, app, app_size);
}

int usage_parse(const char *text, usage_add_t add, void *userdata) {
        int n = 0, lineno = 0;
        for (const char *line = text; *line;) {
                const char *end = strchrnul(line, '\n');
                size_t len = (size_t)(end - line);
                lineno++;
                if (len > 0 && *line != '#') {
                        UsageCounters c = {};
                        char kind[32], app[4096];
                        uid_t uid;
                        if (parse_line(line, len, &uid, kind, sizeof kind, &c, app, sizeof app) < 0)
                                log_warning("usage file line %d is malformed; skipped", lineno);
                        else {
                                int r = add(userdata, uid, kind, app, &c);
                                if (r < 0)
                                        return r;
                                n++;
                        }
                }
                line = *end ? end + 1 : end;
        }
        return n;
}

int usage_save(const char *dir, const UsageEntry *entries, size_t n) {
        _cleanup_free_ char *tmp = NULL, *path = NULL;
        if (asprintf(&tmp, "%s/." USAGE_FILE ".tmp", dir) < 0 || asprintf(&path, "%s/" USAGE_FILE, dir) < 0)
                return -ENOMEM;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        FILE *f = fdopen(fd, "w");
        if (!f) {
                int r = -errno;
                close(fd);
                unlink(tmp);
                return r;
        }
        int r = usage_format(f, entries, n);
        if (fflush(f) != 0 || r < 0)
                r = -EIO;
        else if (fsync(fileno(f)) < 0)
                r = -errno;
        if (fclose(f) != 0 && r >= 0)
                r = -EIO;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        /* The rename itself must reach the disk too. */
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void)fsync(dfd);
        return 0;
}

int usage_load(const char *dir, usage_add_t add, void *userdata) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/" USAGE_FILE, dir) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_size > USAGE_MAX_FILE)
                return -EINVAL;
        text = malloc((size_t)st.st_size + 1);
        if (!text)
                return -ENOMEM;
        size_t got = 0;
        while (got < (size_t)st.st_size) {
                ssize_t k = read(fd, text + got, (size_t)st.st_size - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                got += (size_t)k;
        }
        text[got] = 0;
        if (strlen(text) != got)
                return -EINVAL;
        return usage_parse(text, add, userdata);
}
