/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/media/image-preprocess.h"
#include "daemon/media/image.h"
#include "daemon/worker/worker-chat.h"
#include "daemon/worker/worker-image-prompt.h"
#include "daemon/worker/worker-image.h"
#include "macro.h"
#include "vision.h"

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- the vision side of the model ---- */

struct worker_vision {
        VisionPreprocessParams pre;
        vision_model *model;   /* NULL when the file could not be used: see why */
        vision_ctx *ctx;
        int32_t n_tokens, n_embd_out;
        bool prompt_ready;     /* the engine can take the embeddings in a prompt */
        bool busy;             /* a job holds the context (main thread only) */
        char why[WIRE_MAX_NAME];
};

int worker_vision_load(int fd, const engine_model *model, int n_threads, worker_vision **ret, char *err,
                       size_t errlen) {
        struct stat st;

        *ret = NULL;
        if (fd < 0)
                return 0;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return set_error(err, errlen, -EBADF, "the vision model (mmproj) fd is not a regular file");
        worker_vision *v = calloc(1, sizeof *v);
        if (!v)
                return set_error(err, errlen, -ENOMEM, "out of memory");
        /* The preprocessing follows the text model's family. */
        const char *arch = engine_model_arch(model);
        if (arch && strcmp(arch, "gemma3n") == 0)
                vision_preprocess_params_gemma3n(&v->pre);
        else
                vision_preprocess_params_gemma3(&v->pre);

        /* A projector that cannot be used leaves the worker serving text:
         * Explain then says why (and the log has it). */
        char why[WIRE_MAX_NAME - 64] = "";
        int r = vision_model_open_fd(fd, &v->model, why, sizeof why);
        if (r < 0) {
                snprintf(v->why, sizeof v->why, "the vision projector cannot be used: %s", why);
                fprintf(stderr, "sotto-worker: %s\n", v->why);
                *ret = v;
                return 0;
        }
        v->pre.image_size = vision_model_image_size(v->model);
        vision_model_image_norm(v->model, v->pre.mean, v->pre.std);
        v->n_tokens = vision_model_n_tokens(v->model);
        v->n_embd_out = vision_model_n_embd_out(v->model);
        /* The soft tokens must fit the text model: its width, and an
         * architecture that takes embeddings (engine.h). */
        if (v->n_embd_out != engine_model_n_embd(model))
                snprintf(v->why, sizeof v->why,
                         "the vision projector gives rows of %d, the text model (%s) takes rows of %d: they do not "
                         "belong together", v->n_embd_out, arch ? arch : "?", engine_model_n_embd(model));
        else if (!arch || strcmp(arch, "gemma3") != 0)
                snprintf(v->why, sizeof v->why, "the text model (%s) takes no image embeddings (only gemma3 does)",
                         arch ? arch : "?");
        else
                v->prompt_ready = true;
        r = vision_ctx_new(v->model, n_threads, &v->ctx);
        if (r < 0) {
                snprintf(v->why, sizeof v->why, "the vision encoder cannot be set up: %s", strerror(-r));
                fprintf(stderr, "sotto-worker: %s\n", v->why);
                vision_model_free(v->model);
                v->model = NULL;
        }
        *ret = v;
        return 0;
}

worker_vision *worker_vision_free(worker_vision *v) {
        if (v) {
                vision_ctx_free(v->ctx);
                vision_model_free(v->model);
                free(v);
        }
        return NULL;
}

uint32_t worker_vision_caps(const worker_vision *v) {
        return v && v->model && v->prompt_ready ? WIRE_CAP_IMAGE : 0;
}

/* ---- staging ---- */

int worker_image_stage_add(worker_image_stage *s, const uint8_t *payload, size_t len) {
        wire_image_data d;
        if (wire_decode_image_data(payload, len, &d) < 0)
                return -EBADMSG;
        if (s->len > 0 && s->req_id != d.req_id)
                return -EBADMSG; /* one image at a time, each followed by its EXPLAIN */
        if (s->len + d.len > WIRE_MAX_IMAGE)
                return -EBADMSG;
        if (s->len + d.len > s->cap) {
                size_t cap = MAX(s->cap * 2, s->len + d.len);
                cap = MIN(cap, (size_t)WIRE_MAX_IMAGE);
                uint8_t *p = realloc(s->data, cap);
                if (!p)
                        return -ENOMEM;
                s->data = p;
                s->cap = cap;
        }
        memcpy(s->data + s->len, d.data, d.len);
        s->len += d.len;
        s->req_id = d.req_id;
        return 0;
}

int worker_image_stage_take(worker_image_stage *s, uint64_t req_id, uint32_t size, uint8_t **ret) {
        if (s->len == 0 || s->req_id != req_id || s->len != size)
                return -EBADMSG;
        *ret = TAKE_PTR(s->data);
        *s = (worker_image_stage){};
        return 0;
}

void worker_image_stage_done(worker_image_stage *s) {
        free(s->data);
        *s = (worker_image_stage){};
}

/* ---- the first step of an EXPLAIN ---- */

/* Like set_error(), but returns the (positive) wire status. */
_printf_(4, 5) static int fail(char *err, size_t errlen, enum wire_status status, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        return (int)status;
}

void worker_explain_prompt_done(worker_explain_prompt *p) {
        free(p->tokens);
        free(p->embd);
        free(p->image_pos);
        *p = (worker_explain_prompt){};
}

size_t worker_explain_next(const worker_explain_prompt *p, size_t pos, size_t n_prompt, size_t max,
                           const float **embd) {
        size_t n = MIN(max, n_prompt - pos);
        *embd = NULL;
        for (size_t k = 0; k < p->n_images; k++) {
                size_t at = p->image_pos[k];
                if (at == pos) {
                        *embd = p->embd + k * p->n_image_tokens * p->n_embd;
                        return p->n_image_tokens;
                }
                if (at > pos && at - pos < n)
                        n = at - pos;
        }
        return n;
}

/* The user turn of an EXPLAIN (worker-image-prompt.h), in a chat after
 * its earlier turns: first_turn when the session is empty, turn_open when
 * the model's last answer there was cut off (it gets its <end_of_turn>). */
static int build_prompt(const engine_model *model, const char *question, size_t question_len, bool first_turn,
                        bool turn_open, size_t n_images, size_t n_soft, worker_explain_prompt *p, char *err,
                        size_t errlen) {
        worker_chat_turn t = { .first = first_turn, .turn_open = turn_open && !first_turn };
        char why[200] = "";
        int r;

        r = worker_image_prompt(engine_model_tokenizer(model), question, question_len, &t, n_images, n_soft,
                                &p->tokens, &p->n_tokens, &p->image_pos, why, sizeof why);
        if (r < 0)
                return fail(err, errlen, r == -EINVAL ? WIRE_ERR_INVALID : WIRE_ERR_ENGINE, "%s", why);
        p->n_images = n_images;
        p->n_image_tokens = n_soft;
        return 0;
}

int worker_explain_prepare(worker_vision *v, const engine_model *model, const uint8_t *image, size_t size,
                           const char *question, size_t question_len, bool first_turn, bool turn_open,
                           vision_abort_fn abort_cb,
                           void *abort_userdata, worker_explain_prompt *ret, char *err, size_t errlen) {
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_(vision_input_freep) VisionInput *in = NULL;
        char why[200] = "";
        ImageLimits limits;
        uint64_t t0, t1, t2, t3;
        int r;

        *ret = (worker_explain_prompt){};
        if (!v)
                return fail(err, errlen, WIRE_ERR_UNAVAILABLE,
                            "the model has no vision: sottod runs it without a projector (--mmproj, VisionModel=)");

        /* The decoder's limits are checked from the headers before anything
         * proportional to the image is allocated. */
        image_limits_default(&limits);
        limits.max_file_size = WIRE_MAX_IMAGE;
        t0 = now_usec();
        r = image_decode_memory(image, size, &limits, &img, why, sizeof why);
        if (r < 0)
                return fail(err, errlen, WIRE_ERR_INVALID, "the image cannot be used (%s): %s",
                            image_error_name(image_error_from_errno(r)), why);
        t1 = now_usec();
        ret->decode_usec = t1 - t0;
        ret->width = img->width;
        ret->height = img->height;
        if (!v->model)
                return fail(err, errlen, WIRE_ERR_UNAVAILABLE, "%s (the %ux%u image decoded in %.1f ms)", v->why,
                            img->width, img->height, ret->decode_usec / 1e3);

        r = vision_preprocess(img, &v->pre, &in);
        if (r < 0)
                return fail(err, errlen, r == -ENOMEM ? WIRE_ERR_ENGINE : WIRE_ERR_INVALID,
                            "the image cannot be prepared for the vision encoder: %s", strerror(-r));
        t2 = now_usec();
        ret->preprocess_usec = t2 - t1;

        /* One encoder pass per square (the whole image, then the crops). */
        size_t n_soft = (size_t)v->n_tokens, width = (size_t)v->n_embd_out;
        ret->embd = malloc((size_t)in->n_images * n_soft * width * sizeof(float));
        if (!ret->embd)
                return fail(err, errlen, WIRE_ERR_ENGINE, "out of memory");
        ret->n_embd = width;
        vision_ctx_set_abort(v->ctx, abort_cb, abort_userdata);
        for (uint32_t i = 0; i < in->n_images; i++) {
                r = vision_encode(v->ctx, vision_input_image(in, i), in->image_size, in->image_size,
                                  ret->embd + (size_t)i * n_soft * width);
                if (r == -ECANCELED)
                        return fail(err, errlen, WIRE_ERR_CANCELLED, "cancelled");
                if (r < 0)
                        return fail(err, errlen, WIRE_ERR_ENGINE, "the vision encoder failed: %s", strerror(-r));
        }
        t3 = now_usec();
        ret->encode_usec = t3 - t2;

        r = build_prompt(model, question, question_len, first_turn, turn_open, in->n_images, n_soft, ret, err,
                         errlen);
        if (r != 0)
                return r;
        if (!v->prompt_ready)
                return fail(err, errlen, WIRE_ERR_UNAVAILABLE,
                            "%s (the %ux%u image: decoded in %.1f ms, %u square%s of %u pixels, encoded in %.1f ms to "
                            "%zu soft tokens)", v->why, img->width, img->height, ret->decode_usec / 1e3, in->n_images,
                            in->n_images == 1 ? "" : "s", in->image_size, ret->encode_usec / 1e3,
                            (size_t)in->n_images * n_soft);
        return 0;
}

/* ---- on a thread ---- */

struct worker_explain_job {
        worker_vision *v;
        const engine_model *model;
        uint8_t *image;
        size_t size;
        char *question;
        size_t question_len;
        bool first_turn, turn_open;
        pthread_t thread;
        atomic_bool done, abort;
        int status;
        worker_explain_prompt prompt;
        char err[WIRE_MAX_NAME];
};

static bool job_abort(void *userdata) {
        worker_explain_job *j = userdata;
        return atomic_load(&j->abort);
}

static void *job_run(void *userdata) {
        worker_explain_job *j = userdata;
        j->status = worker_explain_prepare(j->v, j->model, j->image, j->size, j->question, j->question_len,
                                           j->first_turn, j->turn_open, job_abort, j, &j->prompt, j->err,
                                           sizeof j->err);
        atomic_store(&j->done, true);
        return NULL;
}

int worker_explain_start(worker_vision *v, const engine_model *model, uint8_t *image, size_t size,
                         const char *question, size_t question_len, bool first_turn, bool turn_open,
                         worker_explain_job **ret) {
        if (v && v->busy)
                return -EBUSY; /* image not taken */
        worker_explain_job *j = calloc(1, sizeof *j);
        if (!j) {
                free(image);
                return -ENOMEM;
        }
        *j = (worker_explain_job){ .v = v, .model = model, .image = image, .size = size, .first_turn = first_turn,
                                   .turn_open = turn_open,
                                   .question_len = question_len };
        j->question = strndup(question, question_len);
        if (!j->question) {
                free(image);
                free(j);
                return -ENOMEM;
        }
        atomic_init(&j->done, false);
        atomic_init(&j->abort, false);
        int r = pthread_create(&j->thread, NULL, job_run, j);
        if (r != 0) {
                free(j->question);
                free(image);
                free(j);
                return -r;
        }
        if (v)
                v->busy = true;
        *ret = j;
        return 0;
}

int worker_explain_poll(worker_explain_job *j, worker_explain_prompt *ret, char *err, size_t errlen) {
        if (!atomic_load(&j->done))
                return -EAGAIN;
        pthread_join(j->thread, NULL);
        j->thread = 0;
        if (j->v)
                j->v->busy = false;
        *ret = j->prompt;
        j->prompt = (worker_explain_prompt){};
        snprintf(err, errlen, "%s", j->err);
        int status = j->status;
        worker_explain_free(j);
        return status;
}

worker_explain_job *worker_explain_free(worker_explain_job *j) {
        if (!j)
                return NULL;
        if (j->thread) {
                atomic_store(&j->abort, true);
                pthread_join(j->thread, NULL);
                if (j->v)
                        j->v->busy = false;
        }
        worker_explain_prompt_done(&j->prompt);
        free(j->image);
        free(j->question);
        free(j);
        return NULL;
}
