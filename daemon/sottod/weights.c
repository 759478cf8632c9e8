/* SPDX-License-Identifier: MIT */
/* What sottod keeps of its workers between their lives: the sealed memfd of
 * derived weights that the first worker of a set of model files built
 * (daemon/engine/weights-arena.h), handed to every later worker of the same
 * files so that all of them map one copy; and the decoding counters of the
 * workers (continuous batching), summed over the daemon's life.
 *
 * sottod never looks into the memfd: it checks only what the kernel vouches
 * for (a regular file with the seals that make it immutable, of the size
 * announced), takes it only before the worker's READY (before that worker
 * has seen any request), and keys it by the identity of the files it opened
 * itself.  The worker that maps it checks its header again. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/sottod/log.h"
#include "daemon/sottod/manager.h"

#define WEIGHTS_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

void weights_key_of(Manager *m, WeightsKey *k) {
        int fds[3] = { m->model_fd, m->mmproj_fd, m->whisper_fd };
        *k = (WeightsKey) {};
        for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                struct stat st;
                if (fds[i] < 0 || fstat(fds[i], &st) < 0)
                        continue;
                k->file[i] = (typeof(k->file[i])) { .dev = st.st_dev, .ino = st.st_ino, .size = (uint64_t)st.st_size,
                                                    .mtime_sec = st.st_mtim.tv_sec,
                                                    .mtime_nsec = st.st_mtim.tv_nsec };
        }
}

int weights_fd_for(Manager *m, const WeightsKey *k) {
        if (m->weights_fd < 0)
                return -1;
        if (memcmp(&m->weights_key, k, sizeof *k) == 0)
                return m->weights_fd;
        /* Other files now: the old copy lives on only in the workers that
         * map it. */
        log_info("dropping the shared derived weights of the previous model files");
        close(m->weights_fd);
        m->weights_fd = -1;
        return -1;
}

/* The memory the shared memfd holds: its allocated pages, not its size.
 * A Gemma 3n image leaves its per-layer-embedding table as a hole that
 * costs nothing (daemon/engine/weights-copy.h), over a GB at E2B. */
uint64_t weights_shared_memory(Manager *m) {
        struct stat st;

        if (m->weights_fd < 0 || fstat(m->weights_fd, &st) < 0)
                return 0;
        return (uint64_t)st.st_blocks * 512u;
}

int worker_take_weights(Worker *w, const uint8_t *payload, size_t len) {
        Manager *m = w->manager;
        wire_weights x;
        struct stat st;

        if (w->ready || w->weights_sent || wire_decode_weights(payload, len, &x) < 0)
                return -EBADMSG;
        w->weights_sent = true;
        _cleanup_close_ int fd = wire_conn_take_fd(&w->conn);
        if (fd < 0)
                return -EBADMSG;
        int seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || (seals & WEIGHTS_SEALS) != WEIGHTS_SEALS || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
            (uint64_t)st.st_size != x.size) {
                log_warning("worker %d sent derived weights that are not a sealed memfd of %llu bytes", (int)w->pid,
                            (unsigned long long)x.size);
                return -EBADMSG;
        }
        if (w != m->worker)
                return 0; /* a worker of files no longer current: its copy is not kept */
        if (m->weights_fd >= 0)
                close(m->weights_fd);
        m->weights_fd = TAKE_FD(fd);
        m->weights_key = w->weights_key;
        m->stats.weights_builds++;
        log_info("worker %d built the shared derived weights: %u blocks, %.1f MiB (%.1f MiB in memory); later "
                 "workers map them", (int)w->pid, x.n_blocks, x.size / 1048576.0,
                 weights_shared_memory(m) / 1048576.0);
        return 0;
}

int worker_take_stats(Worker *w, const uint8_t *payload, size_t len) {
        wire_stats x;
        if (wire_decode_stats(payload, len, &x) < 0)
                return -EBADMSG;
        /* Counters since the worker started only grow. */
        if (x.decode_steps < w->decode.decode_steps || x.batched_steps < w->decode.batched_steps ||
            x.batched_tokens < w->decode.batched_tokens || x.max_batch < w->decode.max_batch)
                return -EBADMSG;
        w->decode = x;
        return 0;
}

static void stats_add(wire_stats *a, const wire_stats *b) {
        a->decode_steps += b->decode_steps;
        a->batched_steps += b->batched_steps;
        a->batched_tokens += b->batched_tokens;
        a->max_batch = MAX(a->max_batch, b->max_batch);
}

void worker_stats_retire(Worker *w) {
        stats_add(&w->manager->stats.decode_retired, &w->decode);
        w->decode = (wire_stats) {};
}

void decode_stats_total(Manager *m, wire_stats *ret) {
        *ret = m->stats.decode_retired;
        if (m->worker)
                stats_add(ret, &m->worker->decode);
        for (Worker *w = m->old_workers; w; w = w->next)
                stats_add(ret, &w->decode);
}
