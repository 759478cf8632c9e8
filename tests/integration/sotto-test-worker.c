/* SPDX-License-Identifier: MIT */
/* Starts a worker built with test hooks exactly as sottod does (socket on
 * fd 3, model on fd 4), waits until it is set up and sandboxed, then asks it
 * to open a file, create one, and make UNIX and INET sockets (each must be
 * refused) and finally to execute a program (which must kill it).
 *
 *   sotto-test-worker WORKER MODEL [USER] */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/common/wire.h"

static int read_frame(wire_conn *c, uint32_t *type, const uint8_t **p, size_t *len) {
        for (;;) {
                int r = wire_conn_next(c, type, p, len);
                if (r != 0)
                        return r;
                struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
                if (poll(&pfd, 1, 20000) <= 0)
                        return -ETIMEDOUT;
                r = wire_conn_read(c);
                if (r < 0)
                        return r;
        }
}

static void status_line(pid_t pid, const char *key, char *out, size_t n) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "re");
        *out = 0;
        while (f && fgets(line, sizeof line, f))
                if (!strncmp(line, key, strlen(key))) {
                        snprintf(out, n, "%s", line + strlen(key) + 1);
                        out[strcspn(out, "\n")] = 0;
                }
        if (f)
                fclose(f);
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: %s WORKER MODEL [USER]\n", argv[0]);
                return 2;
        }
        int sp[2], failures = 0;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return 2;
        int model = open(argv[2], O_RDONLY | O_CLOEXEC);
        if (model < 0)
                return 2;
        char user[128];
        snprintf(user, sizeof user, "--user=%s", argc > 3 ? argv[3] : "sotto");
        pid_t pid = fork();
        if (pid == 0) {
                int s = fcntl(sp[1], F_DUPFD, 10), m = fcntl(model, F_DUPFD, 10);
                dup2(s, 3);
                dup2(m, 4);
                close_range(5, ~0U, 0);
                execl(argv[1], "sotto-worker", "--socket-fd=3", "--model-fd=4", user, (char *)NULL);
                _exit(127);
        }
        close(sp[1]);
        wire_conn c;
        wire_conn_init(&c, sp[0]);
        uint32_t type;
        const uint8_t *p;
        size_t len;
        /* A worker that built shared weights announces them first. */
        int k = read_frame(&c, &type, &p, &len);
        if (k > 0 && type == WIRE_WEIGHTS)
                k = read_frame(&c, &type, &p, &len);
        if (k <= 0 || type != WIRE_READY) {
                fprintf(stderr, "FAIL: no READY from the worker\n");
                return 1;
        }
        char seccomp[64], nnp[64], uid[128], capeff[64];
        status_line(pid, "Seccomp:", seccomp, sizeof seccomp);
        status_line(pid, "NoNewPrivs:", nnp, sizeof nnp);
        status_line(pid, "Uid:", uid, sizeof uid);
        status_line(pid, "CapEff:", capeff, sizeof capeff);
        printf("worker %d: Seccomp %s, NoNewPrivs %s, Uid %s, CapEff %s\n", (int)pid, seccomp, nnp, uid, capeff);
        if (strcmp(seccomp, "2") != 0 || strcmp(nnp, "1") != 0 || strcmp(capeff, "0000000000000000") != 0) {
                fprintf(stderr, "FAIL: the worker is not sandboxed as it should be\n");
                failures++;
        }
        if (geteuid() == 0 && strncmp(uid, "0", 1) == 0) {
                fprintf(stderr, "FAIL: the worker still runs as root\n");
                failures++;
        }

        wire_put_u32(&c.out, WIRE_TEST_ESCAPE);
        wire_put_u32(&c.out, 0);
        while (wire_conn_flush(&c) > 0)
                ;
        if (read_frame(&c, &type, &p, &len) <= 0 || type != WIRE_TEST_RESULT) {
                fprintf(stderr, "FAIL: no test result (is this a worker with test hooks?)\n");
                return 1;
        }
        wire_reader rd = { p, len };
        char result[512];
        if (wire_get_string(&rd, result, sizeof result) < 0)
                return 1;
        printf("escape attempts: %s\n", result);
        /* Each must have failed with EPERM (-1). */
        for (char *save, *tok = strtok_r(result, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                char *eq = strchr(tok, '=');
                int v = eq ? atoi(eq + 1) : 0;
                if (v != -EPERM) {
                        fprintf(stderr, "FAIL: %s was not refused with EPERM\n", tok);
                        failures++;
                }
        }
        int st;
        if (waitpid(pid, &st, 0) != pid) {
                fprintf(stderr, "FAIL: waitpid\n");
                return 1;
        }
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
                printf("execve: the worker was killed by SIGSYS, as it must be\n");
        else {
                /* The worker may have reported an execve result first. */
                if (read_frame(&c, &type, &p, &len) > 0 && type == WIRE_TEST_RESULT) {
                        wire_reader r2 = { p, len };
                        wire_get_string(&r2, result, sizeof result);
                        fprintf(stderr, "FAIL: the worker survived execve: %s\n", result);
                }
                fprintf(stderr, "FAIL: worker status 0x%x, want killed by SIGSYS\n", st);
                failures++;
        }
        if (access("/tmp/sotto-escape", F_OK) == 0) {
                fprintf(stderr, "FAIL: the worker created /tmp/sotto-escape\n");
                unlink("/tmp/sotto-escape");
                failures++;
        }
        return failures ? 1 : 0;
}
