/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/media/image-preprocess.h"
#include "daemon/media/image.h"
#include "daemon/worker/worker-image.h"
#include "macro.h"

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- the vision side of the model ---- */

struct worker_vision {
        VisionPreprocessParams pre;
        bool encoder; /* false until the engine has a vision tower for this file */
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
        (void)n_threads;
        *ret = v;
        return 0;
}

worker_vision *worker_vision_free(worker_vision *v) {
        free(v);
        return NULL;
}

uint32_t worker_vision_caps(const worker_vision *v) {
        return v && v->encoder ? WIRE_CAP_IMAGE : 0;
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

int worker_explain_prepare(const worker_vision *v, const engine_model *model, const uint8_t *image, size_t size,
                           const char *question, size_t question_len, bool first_turn, worker_explain_prompt *ret,
                           char *err, size_t errlen) {
        _cleanup_(image_freep) Image *img = NULL;
        _cleanup_(vision_input_freep) VisionInput *in = NULL;
        char why[200] = "";
        ImageLimits limits;
        uint64_t t0, t1, t2;
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
        r = vision_preprocess(img, &v->pre, &in);
        if (r < 0)
                return fail(err, errlen, r == -ENOMEM ? WIRE_ERR_ENGINE : WIRE_ERR_INVALID,
                                 "the image cannot be prepared for the vision encoder: %s", strerror(-r));
        t2 = now_usec();
        ret->decode_usec = t1 - t0;
        ret->preprocess_usec = t2 - t1;
        ret->width = img->width;
        ret->height = img->height;
        (void)model, (void)question, (void)question_len, (void)first_turn;

        if (!v->encoder)
                return fail(err, errlen, WIRE_ERR_UNAVAILABLE,
                                 "vision encoder not available (the %ux%u image decoded in %.1f ms and was prepared as "
                                 "%u square%s of %u pixels, but this build has no encoder for the projector)",
                                 img->width, img->height, ret->decode_usec / 1e3, in->n_images,
                                 in->n_images == 1 ? "" : "s", in->image_size);
        return fail(err, errlen, WIRE_ERR_UNAVAILABLE, "vision encoder not available");
}
