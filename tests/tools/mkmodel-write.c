/* SPDX-License-Identifier: MIT */
/* Drawing the weights and streaming them into the file.
 *
 * Tensors are written one after the other in batches of rows (~32 MiB of
 * output); the rows of a batch are shared among threads through an atomic
 * counter, then the batch is written with pwrite.  Every row draws from its
 * own PRNG stream (seed, tensor index, row), so the bytes of a file depend
 * only on (preset, type, seed). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf-writer.h"
#include "macro.h"
#include "mkmodel-model.h"
#include "mkmodel-quant.h"
#include "mkmodel-rng.h"
#include "mkmodel-write.h"

#define BATCH_BYTES (32u << 20)
#define WEIGHT_STD 0.02f

typedef struct batch {
        const mk_tensor *t;
        uint64_t seed, t_index;
        int64_t row0, n_rows;
        size_t row_bytes;
        uint8_t *out;
        atomic_llong next;
        atomic_int error;
} batch;

static void *worker(void *arg) {
        batch *b = arg;
        float *x = malloc((size_t)b->t->ne[0] * sizeof *x);
        if (!x) {
                atomic_store(&b->error, -ENOMEM);
                return NULL;
        }
        for (;;) {
                int64_t r = atomic_fetch_add(&b->next, 1);
                if (r >= b->n_rows)
                        break;
                mk_rng rng;
                mk_rng_init(&rng, b->seed, b->t_index, (uint64_t)(b->row0 + r));
                float base = b->t->init == MK_INIT_NORM ? 1.0f : 0.0f;
                for (int64_t i = 0; i < b->t->ne[0]; i++)
                        x[i] = base + WEIGHT_STD * mk_rng_normal(&rng); /* ne[0] may be odd */
                mk_quantize_row(b->t->type, x, b->out + (size_t)r * b->row_bytes, b->t->ne[0]);
        }
        free(x);
        return NULL;
}

static int write_tensor(int fd, uint64_t data_start, const mk_tensor *t, uint64_t t_index, uint64_t seed,
                        int n_threads, uint8_t *buf) {
        size_t row_bytes = mk_row_size(t->type, t->ne[0]);
        int64_t n_rows = t->ne[1] * t->ne[2] * t->ne[3];
        int64_t per_batch = MAX((int64_t)1, (int64_t)(BATCH_BYTES / row_bytes));

        for (int64_t row0 = 0; row0 < n_rows; row0 += per_batch) {
                batch b = {
                        .t = t, .seed = seed, .t_index = t_index, .row0 = row0,
                        .n_rows = MIN(per_batch, n_rows - row0), .row_bytes = row_bytes, .out = buf,
                };
                int nth = (int)MIN((int64_t)n_threads, b.n_rows);
                pthread_t th[64];
                int started = 0;
                for (int i = 1; i < nth; i++) {
                        if (pthread_create(&th[started], NULL, worker, &b) != 0)
                                break; /* the threads we have finish the batch */
                        started++;
                }
                worker(&b);
                for (int i = 0; i < started; i++)
                        pthread_join(th[i], NULL);
                if (atomic_load(&b.error) < 0)
                        return atomic_load(&b.error);
                int r = mk_pwrite_all(fd, buf, (size_t)b.n_rows * row_bytes, data_start + t->offset + (uint64_t)row0 * row_bytes);
                if (r < 0)
                        return r;
        }
        return 0;
}

int mk_model_write(const mk_model *m, const char *path, uint64_t seed, int n_threads, char *err, size_t errlen) {
        n_threads = MAX(1, MIN(n_threads, 64));
        /* Write next to the target and rename at the end: an interrupted run
         * never leaves a short file under the final name. */
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return set_error(err, errlen, -errno, "cannot create %s: %m", tmp);

        uint64_t data_start;
        int r = mk_gguf_write_header(m->gguf, fd, &data_start);
        _cleanup_free_ uint8_t *buf = r >= 0 ? malloc(BATCH_BYTES + (64u << 10)) : NULL;
        if (r >= 0 && !buf)
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < m->n_tensors; i++) {
                /* a row can exceed the batch (F32 vocab rows do not, but be safe) */
                size_t row = mk_row_size(m->tensors[i].type, m->tensors[i].ne[0]);
                if (row > BATCH_BYTES) {
                        r = -E2BIG;
                        break;
                }
                r = write_tensor(fd, data_start, &m->tensors[i], i, seed, n_threads, buf);
        }
        if (r < 0) {
                unlink(tmp);
                return set_error(err, errlen, r, "writing %s failed: %s", path, strerror(-r));
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                unlink(tmp);
                return set_error(err, errlen, r, "cannot rename %s to %s: %m", tmp, path);
        }
        return 0;
}

int mk_model_write_preset(const char *preset, const char *ftype, const char *path, uint64_t seed, char *err,
                          size_t errlen) {
        const mk_preset *p = mk_preset_find(preset);
        const mk_ftype *ft = mk_ftype_find(ftype);
        mk_model m = {};
        int r;

        if (!p || !ft) {
                snprintf(err, errlen, "unknown preset %s or type %s", preset, ftype);
                return -EINVAL;
        }
        r = mk_model_plan(&m, p, ft, err, errlen);
        if (r >= 0)
                r = mk_model_write(&m, path, seed, 1, err, errlen);
        mk_model_done(&m);
        return r;
}
