/* SPDX-License-Identifier: MIT */
/* Loading a model: open the GGUF (mapped read-only, shared), copy its
 * weights into fresh memory (weights-copy.h; SOTTO_WEIGHTS=map keeps the
 * mapping), pick the architecture from general.architecture, load the
 * tokenizer, and let the architecture read its hyperparameters and bind its
 * weights in place, in the copy or in the mapping (model_tensor_data). */
#include <cblas.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "macro.h"
#include "model.h"
#include "tensor-type.h"

/* ---- the architectures we know: one line each ---- */

static const arch_ops *const arch_table[] = {
        &arch_llama,
        &arch_gemma3,
        &arch_gemma3n,
};

const arch_ops *arch_find(const char *name, size_t len) {
        for (size_t i = 0; i < ELEMENTSOF(arch_table); i++)
                if (strlen(arch_table[i]->name) == len && memcmp(arch_table[i]->name, name, len) == 0)
                        return arch_table[i];
        return NULL;
}

/* ---- metadata helpers ---- */

static int arch_key(const engine_model *m, const char *suffix, char *buf, size_t len) {
        int n = snprintf(buf, len, "%s.%s", m->arch_name, suffix);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int model_get_u32(const engine_model *m, const char *suffix, bool required, uint32_t *ret, char *err,
                  size_t errlen) {
        char key[256];
        int r;

        r = arch_key(m, suffix, key, sizeof key);
        if (r < 0)
                return set_error(err, errlen, r, "metadata key name too long: %s", suffix);
        r = gguf_get_u32(m->gguf, key, ret);
        if (r == -ENOENT && !required)
                return r;
        if (r < 0)
                return set_error(err, errlen, r == -ENOENT ? -EINVAL : r, "metadata key %s: %s", key,
                                 r == -ENOENT ? "missing" : "not an unsigned 32-bit integer");
        return 0;
}

int model_get_f32(const engine_model *m, const char *suffix, bool required, float *ret, char *err, size_t errlen) {
        char key[256];
        int r;

        r = arch_key(m, suffix, key, sizeof key);
        if (r < 0)
                return set_error(err, errlen, r, "metadata key name too long: %s", suffix);
        r = gguf_get_f32(m->gguf, key, ret);
        if (r == -ENOENT && !required)
                return r;
        if (r < 0)
                return set_error(err, errlen, r == -ENOENT ? -EINVAL : r, "metadata key %s: %s", key,
                                 r == -ENOENT ? "missing" : "not a float");
        if (!isfinite(*ret))
                return set_error(err, errlen, -EINVAL, "metadata key %s: not a finite number", key);
        return 0;
}

static int bind_tensor(const engine_model *m, const char *name, const gguf_tensor **ret, bool optional, char *err,
                       size_t errlen) {
        const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
        if (!t) {
                *ret = NULL;
                if (optional)
                        return 0;
                return set_error(err, errlen, -EINVAL, "tensor %s is missing", name);
        }
        *ret = t;
        return 0;
}

int model_bind_weight(const engine_model *m, weight *w, bool optional, int64_t n_in, int64_t n_out, char *err,
                      size_t errlen, const char *fmt, ...) {
        const gguf_tensor *t;
        char name[128];
        va_list ap;
        size_t row;
        int r;

        va_start(ap, fmt);
        vsnprintf(name, sizeof name, fmt, ap);
        va_end(ap);

        *w = (weight){};
        r = bind_tensor(m, name, &t, optional, err, errlen);
        if (r < 0 || !t)
                return r;
        if (t->n_dims > 2 || t->ne[0] != n_in || t->ne[1] != n_out)
                return set_error(err, errlen, -EINVAL,
                                 "tensor %s has shape [%" PRId64 ", %" PRId64 "], expected [%" PRId64 ", %" PRId64 "]",
                                 name, t->ne[0], t->ne[1], n_in, n_out);
        if (!type_is_supported(t->type))
                return set_error(err, errlen, -EOPNOTSUPP, "tensor %s: type %s is not supported", name,
                                 type_name(t->type));
        r = type_row_size(t->type, n_in, &row);
        if (r < 0)
                return set_error(err, errlen, r, "tensor %s: %" PRId64 " columns do not fit type %s", name, n_in,
                                 type_name(t->type));
        if ((uint64_t)row * (uint64_t)n_out > t->nbytes)
                return set_error(err, errlen, -EINVAL, "tensor %s is shorter than its shape", name);
        *w = (weight){
                .name = t->name.p, /* only for messages; not NUL-terminated in the file */
                .type = t->type,
                .n_in = n_in,
                .n_out = n_out,
                .row_bytes = row,
                .data = model_tensor_data(m, t),
        };
        return 0;
}

int model_bind_vector(const engine_model *m, const float **v, int64_t n, char *err, size_t errlen, const char *fmt,
                      ...) {
        const gguf_tensor *t;
        char name[128];
        va_list ap;
        int r;

        va_start(ap, fmt);
        vsnprintf(name, sizeof name, fmt, ap);
        va_end(ap);

        r = bind_tensor(m, name, &t, false, err, errlen);
        if (r < 0)
                return r;
        if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
                return set_error(err, errlen, -EINVAL, "tensor %s has %" PRId64 " elements, expected %" PRId64, name,
                                 t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3], n);
        if (t->type != TYPE_F32)
                return set_error(err, errlen, -EOPNOTSUPP, "tensor %s: type %s, expected F32", name,
                                 type_name(t->type));
        if (t->nbytes < (uint64_t)n * sizeof(float) || ((uintptr_t)t->data & (sizeof(float) - 1)))
                return set_error(err, errlen, -EINVAL, "tensor %s is short or misaligned", name);
        *v = model_tensor_data(m, t);
        return 0;
}

const void *model_tensor_data(const engine_model *m, const gguf_tensor *t) {
        return weights_copy_tensor_data(&m->copy, t);
}

/* ---- model ---- */

void engine_model_default_params(engine_model_params *p) {
        *p = (engine_model_params){ .n_threads = 0, .matformer = NULL };
}

static char *strndup_gguf(gguf_str s) {
        if (s.len > 4096)
                s.len = 4096;
        return strndup(s.p, (size_t)s.len);
}

void engine_model_free(engine_model *m) {
        if (!m)
                return;
        if (m->arch && m->arch_data)
                m->arch->unload(m);
        matmul_ctx_free(m->mm);
        tokenizer_free(m->tok);
        gguf_close(m->gguf);
        weights_copy_done(&m->copy);
        pthread_mutex_destroy(&m->lock);
        free(m->arch_name);
        free(m->name);
        free(m);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(engine_model *, engine_model_free);

/* Takes g and the copy its image may be in (both freed on failure). */
static int model_load(gguf_file *g, const engine_model_params *p, weights_copy *copy, engine_model **ret, char *err,
                      size_t errlen) {
        _cleanup_(engine_model_freep) engine_model *m = NULL;
        engine_model_params defaults;
        gguf_str s;
        int r;

        if (!p) {
                engine_model_default_params(&defaults);
                p = &defaults;
        }

        m = calloc(1, sizeof *m);
        if (!m) {
                gguf_close(g);
                weights_copy_done(copy);
                return set_error(err, errlen, -ENOMEM, "out of memory");
        }
        m->gguf = g;
        m->copy = *copy;
        *copy = (weights_copy){};
        pthread_mutex_init(&m->lock, NULL);

        r = gguf_get_str(g, "general.architecture", &s);
        if (r < 0)
                return set_error(err, errlen, -EINVAL, "metadata key general.architecture is missing or not a string");
        m->arch = arch_find(s.p, (size_t)s.len);
        m->arch_name = strndup_gguf(s);
        if (!m->arch_name)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        if (!m->arch)
                return set_error(err, errlen, -EOPNOTSUPP, "architecture '%s' is not supported", m->arch_name);
        m->name = gguf_get_str(g, "general.name", &s) >= 0 ? strndup_gguf(s) : strdup(m->arch_name);
        if (!m->name)
                return set_error(err, errlen, -ENOMEM, "out of memory");

        r = tokenizer_load(g, &m->tok, err, errlen);
        if (r < 0)
                return r;

        m->matformer = p->matformer;
        r = m->arch->load(m, err, errlen);
        m->matformer = NULL;
        if (r < 0)
                return r;
        if (p->matformer && !m->matformer_applied)
                return set_error(err, errlen, -EOPNOTSUPP, "architecture '%s' has no nested sub-models (matformer)",
                                 m->arch_name);

        m->n_threads = p->n_threads > 0 ? p->n_threads : (int)MAX(1L, sysconf(_SC_NPROCESSORS_ONLN));
        /* A thread per MiB of weights read per token at most: below that a
         * product is over before a second thread is woken, and on a busy
         * desktop every pool round trip may wait for a time slice
         * (stories260K, 1.2 MiB: 20 tokens/s on 2 threads of a loaded
         * 2-core machine, 2600 on one). */
        m->n_threads = (int)MIN((uint64_t)m->n_threads, MAX(1u, m->bytes_per_token >> 20));
        /* Our pool splits the work; OpenBLAS must not start threads of its
         * own inside ours. */
        openblas_set_num_threads(1);
        r = matmul_ctx_new(m->n_threads, &m->mm);
        if (r < 0)
                return set_error(err, errlen, r, "cannot start %d threads: %s", m->n_threads, strerror(-r));

        *ret = TAKE_PTR(m);
        return 0;
}

/* Every architecture's weights are copied at load into fresh memory, read
 * at about twice the speed of the file mapping's page-cache pages on this
 * kind of machine (weights-copy.h says where the copy lives and why; what
 * an architecture's copied_bytes leaves out stays in the file: Gemma 3n's
 * per-layer table, and what a MatFormer selection does not read).
 * SOTTO_WEIGHTS=map keeps the mapping. */
static bool want_weights_copy(const gguf_file *g, const arch_ops **ret) {
        const char *e = getenv("SOTTO_WEIGHTS");
        gguf_str s;

        *ret = NULL;
        if (e && strcmp(e, "map") == 0)
                return false;
        if (gguf_get_str(g, "general.architecture", &s) < 0)
                return false;
        *ret = arch_find(s.p, (size_t)s.len);
        return *ret != NULL;
}

int engine_model_load_fd(int fd, const engine_model_params *p, engine_model **ret, char *err, size_t errlen) {
        weights_copy copy = {};
        const arch_ops *arch;
        gguf_file *g = NULL;
        int r;

        r = gguf_open_fd(fd, &g, err, errlen);
        if (r < 0)
                return r;
        if (want_weights_copy(g, &arch)) {
                gguf_file *c = NULL;

                r = weights_copy_make(fd, g, arch->copied_bytes, p ? p->matformer : NULL, &copy);
                if (r < 0) {
                        gguf_close(g);
                        return set_error(err, errlen, r, "cannot copy the model into the shared weights: %s",
                                         strerror(-r));
                }
                if (r > 0) {
                        /* The header is in the image, the tensor data is not
                         * read here: the holes stay untouched. */
                        r = gguf_open_memory(copy.image, copy.size, &c, err, errlen);
                        if (r < 0) { /* cannot differ from the mapping, but checked all the same */
                                weights_copy_done(&copy);
                                gguf_close(g);
                                return r;
                        }
                        gguf_close(g);
                        g = c;
                }
        }
        return model_load(g, p, &copy, ret, err, errlen);
}

int engine_model_load_path(const char *path, const engine_model_params *p, engine_model **ret, char *err,
                           size_t errlen) {
        _cleanup_close_ int fd = -1;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return set_error(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
        return engine_model_load_fd(fd, p, ret, err, errlen);
}

const char *engine_model_arch(const engine_model *m) {
        return m->arch_name;
}

const char *engine_model_name(const engine_model *m) {
        return m->name;
}

int32_t engine_model_n_vocab(const engine_model *m) {
        return m->hp.n_vocab;
}

int32_t engine_model_n_ctx_train(const engine_model *m) {
        return m->hp.n_ctx_train;
}

const tokenizer *engine_model_tokenizer(const engine_model *m) {
        return m->tok;
}

uint64_t engine_model_bytes_per_token(const engine_model *m) {
        return m->bytes_per_token;
}

int engine_model_n_threads(const engine_model *m) {
        return m->n_threads;
}

const char *engine_model_matmul_path_name(const engine_model *m, uint32_t type) {
        return matmul_path_name(matmul_last_path(m->mm, type));
}
