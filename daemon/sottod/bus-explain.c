/* SPDX-License-Identifier: MIT */
/* org.sotto.Sotto1.Vision.Explain and org.sotto.Sotto1.Chat.SendImage: an
 * image handed over as a file descriptor, a question, an answer streamed
 * like Text.Ask's.
 *
 * sottod never parses the image.  It only reads its bytes: from a regular
 * file (size checked first) or a pipe, at most MaxImageBytes, without
 * blocking its event loop (a pipe is watched with epoll and must deliver
 * within a deadline; a file is read a slice per loop iteration).  Sockets,
 * devices (/dev/zero), directories and fds not open for reading are refused
 * before anything is read.  The bytes then go to the sandboxed worker, which
 * decodes them under daemon/media's limits. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/sottod/authorize.h"
#include "daemon/sottod/bus-errors.h"
#include "daemon/sottod/log.h"
#include "daemon/sottod/manager.h"
#include "daemon/sottod/options.h"
#include "daemon/sottod/quota-manager.h"

#define MAX_IMAGE_LOADS 16u     /* images being read at once, in all */
#define MAX_IMAGE_LOADS_CALLER 2u
#define FILE_SLICE (1u << 20)   /* bytes of a regular file read per loop iteration */

struct ImageLoad {
        Manager *manager;
        sd_bus_message *call;   /* holds the output fd until the request takes it */
        char *sender;
        uint64_t chat_id;       /* 0: Explain; else the chat, looked up again at the end */
        char *question;
        gen_params params;
        int out_fd;             /* the caller's, owned by call */
        int fd;                 /* our copy of the image fd */
        bool pipe;
        uint8_t *buf;
        size_t len, cap, max;
        sd_event_source *io, *timer;
        ImageLoad *next, *prev;
};

static ImageLoad *image_load_free(ImageLoad *l) {
        if (!l)
                return NULL;
        Manager *m = l->manager;
        if (l->prev)
                l->prev->next = l->next;
        else if (m->image_loads == l)
                m->image_loads = l->next;
        if (l->next)
                l->next->prev = l->prev;
        m->n_image_loads--;
        sd_event_source_disable_unref(l->io);
        sd_event_source_disable_unref(l->timer);
        if (l->fd >= 0)
                close(l->fd);
        sd_bus_message_unref(l->call);
        free(l->sender);
        free(l->question);
        gen_params_done(&l->params);
        free(l->buf);
        free(l);
        return NULL;
}

void image_loads_free(Manager *m) {
        while (m->image_loads)
                image_load_free(m->image_loads);
}

int manager_open_mmproj(Manager *m) {
        struct stat st;
        int fd = -1;

        if (m->config.mmproj_path) {
                fd = open(m->config.mmproj_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return log_error_errno(-errno, "cannot open the vision model %s: %m", m->config.mmproj_path);
                if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                        close(fd);
                        return log_error_errno(-EINVAL, "the vision model %s is not a regular file",
                                               m->config.mmproj_path);
                }
        }
        if (m->mmproj_fd >= 0)
                close(m->mmproj_fd);
        m->mmproj_fd = fd;
        return 0;
}

static const char *fd_kind(mode_t mode) {
        return S_ISSOCK(mode)  ? "socket"
               : S_ISCHR(mode) ? "character device"
               : S_ISBLK(mode) ? "block device"
               : S_ISDIR(mode) ? "directory"
               : S_ISLNK(mode) ? "symbolic link"
                               : "special file";
}

/* ---- the end of a load ---- */

static void load_reply_error(ImageLoad *l, const char *name, const char *fmt, ...) _printf_(3, 4);
static void load_reply_error(ImageLoad *l, const char *name, const char *fmt, ...) {
        char msg[300];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        int r = sd_bus_reply_method_errorf(l->call, name, "%s", msg);
        if (r < 0)
                log_full_errno(LOG_DEBUG, r, "cannot reply to %s: %m", l->sender);
        image_load_free(l);
}

static void load_complete(ImageLoad *l) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Manager *m = l->manager;
        Chat *chat = NULL;
        int r;

        l->io = sd_event_source_disable_unref(l->io);
        l->timer = sd_event_source_disable_unref(l->timer);
        if (l->len == 0)
                return load_reply_error(l, SOTTO_ERROR_INVALID_INPUT, "The image is empty (0 bytes were read).");
        if (l->chat_id) {
                /* The chat may have been closed while the image was read. */
                for (Chat *c = m->chats; c; c = c->next)
                        if (c->id == l->chat_id && STREQ(c->owner->name, l->sender))
                                chat = c;
                if (!chat)
                        return load_reply_error(l, SOTTO_ERROR_CANCELLED,
                                                "The chat was closed while its image was being read.");
        }
        r = submit_request_image(m, l->call, chat, l->question, &l->params, l->out_fd, TAKE_PTR(l->buf), l->len,
                                 &error);
        if (r < 0) {
                if (!sd_bus_error_is_set(&error))
                        sd_bus_error_set_errno(&error, r);
                (void)sd_bus_reply_method_error(l->call, &error);
        }
        /* r > 0: the request replies when it ends. */
        image_load_free(l);
}

/* Reads what is there; 1 when the load ended (replied or submitted). */
static int load_read(ImageLoad *l, size_t budget) {
        while (budget > 0) {
                if (l->len == l->cap) {
                        /* Grow towards max + 1: one byte past it shows that it is too large. */
                        size_t cap = MIN(MAX(l->cap * 2, (size_t)65536), l->max + 1);
                        if (cap <= l->cap) {
                                load_reply_error(l, SOTTO_ERROR_INVALID_INPUT,
                                                 "The image is larger than the limit of %zu bytes.", l->max);
                                return 1;
                        }
                        uint8_t *p = realloc(l->buf, cap);
                        if (!p) {
                                load_reply_error(l, SOTTO_ERROR_BUSY, "Out of memory reading the image.");
                                return 1;
                        }
                        l->buf = p;
                        l->cap = cap;
                }
                size_t want = MIN(l->cap - l->len, budget);
                ssize_t n = read(l->fd, l->buf + l->len, want);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        load_reply_error(l, SOTTO_ERROR_INVALID_INPUT, "The image cannot be read: %s.",
                                         strerror(errno));
                        return 1;
                }
                if (n == 0) {
                        load_complete(l);
                        return 1;
                }
                l->len += (size_t)n;
                budget -= (size_t)n;
                if (l->len > l->max) {
                        load_reply_error(l, SOTTO_ERROR_INVALID_INPUT,
                                         "The image is larger than the limit of %zu bytes.", l->max);
                        return 1;
                }
        }
        return 0;
}

static int on_pipe(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        /* EPOLLHUP: the writer is gone; what is left is read, then EOF. */
        (void)load_read(userdata, SIZE_MAX);
        return 0;
}

/* A regular file: one slice per loop iteration, so that other callers are
 * served in between. */
static int on_file_slice(sd_event_source *s, void *userdata) {
        (void)load_read(userdata, FILE_SLICE);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        ImageLoad *l = userdata;
        load_reply_error(l, SOTTO_ERROR_INVALID_INPUT,
                         "The image did not arrive within %.0f s (%zu bytes were read); close the pipe's write end "
                         "once it is written.",
                         l->manager->config.image_timeout_usec / 1e6, l->len);
        return 0;
}

/* ---- the images-per-hour quota ---- */

/* An image costs one unit of the application's ImagesPerHour bucket, taken
 * when the call is accepted (an image that then fails to decode was still
 * work).  Unlike tokens, the cost is known beforehand, so the bucket must
 * hold a whole image: N per hour means N, not N + 1. */
static int charge_image(Manager *m, Caller *c, sd_bus_error *error) {
        App *a = c->app;
        if (!a || a->limits.rate[QUOTA_IMAGES] == 0)
                return 0;
        uint64_t rate = a->limits.rate[QUOTA_IMAGES], period = quota_kind_period_usec(QUOTA_IMAGES), now = now_usec();
        double level = bucket_level(&a->state.bucket[QUOTA_IMAGES], rate, period, now);
        if (level < 1.0) {
                char head[128];
                double x = (1.0 - level) * (double)period / (double)rate;
                uint64_t wait = (uint64_t)x; /* rounded up, without libm */
                if ((double)wait < x)
                        wait++;
                quota_format_error(head, sizeof head, quota_kind_to_string(QUOTA_IMAGES), wait);
                log_info("uid %u %s refused: %s", (unsigned)a->uid, a->app_id, head);
                return sd_bus_error_setf(error, SOTTO_ERROR_QUOTA_EXCEEDED,
                                         "%s: this application has used its %llu images per hour; try again in %llu s.",
                                         head, (unsigned long long)rate,
                                         (unsigned long long)quota_retry_seconds(wait));
        }
        int r = quota_charge(m, c, QUOTA_IMAGES, 1.0, NULL);
        return r == -EDQUOT ? sd_bus_error_setf(error, SOTTO_ERROR_QUOTA_EXCEEDED,
                                                "limit=ImagesPerHour: this application has used its images per hour.")
                            : r;
}

/* ---- the methods ---- */

static int start_load(Manager *m, sd_bus_message *msg, Chat *chat, int image_fd, const char *question, gen_params *p,
                      int out_fd, sd_bus_error *error) {
        const char *sender = sd_bus_message_get_sender(msg) ?: ":unknown";
        struct stat st;
        int r;

        /* Everything that can be said at once is said before reading. */
        if (m->stopping)
                return sd_bus_error_setf(error, SOTTO_ERROR_SHUTTING_DOWN, "sottod is stopping; try again later.");
        if (m->mmproj_fd < 0)
                return sd_bus_error_setf(error, SOTTO_ERROR_MODEL_UNAVAILABLE,
                                         "The model has no vision: sottod runs without a vision projector "
                                         "(start it with --mmproj PATH or set VisionModel= in sotto.conf).");
        if (STREQ(m->state, "failed"))
                return sd_bus_error_setf(error, SOTTO_ERROR_MODEL_UNAVAILABLE, "No model is available: %s.",
                                         m->state_reason);
        size_t qlen = strlen(question);
        if (qlen > m->config.max_prompt_bytes)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                         "The question is %zu bytes; the limit is %u bytes.", qlen,
                                         m->config.max_prompt_bytes);
        if (!utf8_is_valid(question, qlen))
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "The question is not valid UTF-8.");
        if (chat && chat->turn)
                return sd_bus_error_setf(error, SOTTO_ERROR_BUSY, "This chat is answering already; one turn at a time.");
        if (chat && chat->lost)
                return sd_bus_error_setf(error, SOTTO_ERROR_WORKER_FAILED,
                                         "This chat's context was lost when the inference worker stopped; open a new chat.");
        int out = take_output_fd(out_fd, error);
        if (out < 0)
                return out;
        close(out); /* checked; the request takes its own copy at the end */

        if (fstat(image_fd, &st) < 0)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "The image fd cannot be used: %s.",
                                         strerror(errno));
        if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                         "The image fd must be a regular file or a pipe, not a %s.",
                                         fd_kind(st.st_mode));
        int fl = fcntl(image_fd, F_GETFL);
        if (fl < 0 || (fl & O_ACCMODE) == O_WRONLY)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                         "The image fd is not open for reading%s.",
                                         S_ISFIFO(st.st_mode) ? " (it is the write end of a pipe)" : "");
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > m->config.max_image_bytes)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT,
                                         "The image file is %jd bytes, more than the limit of %u bytes.",
                                         (intmax_t)st.st_size, m->config.max_image_bytes);
        if (S_ISREG(st.st_mode) && st.st_size == 0)
                return sd_bus_error_setf(error, SOTTO_ERROR_INVALID_INPUT, "The image file is empty.");

        uint32_t mine = 0;
        for (ImageLoad *l = m->image_loads; l; l = l->next)
                mine += STREQ(l->sender, sender);
        if (mine >= MAX_IMAGE_LOADS_CALLER || m->n_image_loads >= MAX_IMAGE_LOADS)
                return sd_bus_error_setf(error, SOTTO_ERROR_BUSY,
                                         "Too many images are being read (%u of yours, %u in all); try again when "
                                         "one has been sent.", mine, m->n_image_loads);
        Caller *caller;
        r = caller_get(m, sender, &caller);
        if (r < 0)
                return r;
        r = charge_image(m, caller, error);
        if (r < 0) {
                m->stats.rejected++;
                caller_maybe_free(caller);
                return r;
        }

        ImageLoad *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->manager = m;
        l->fd = -1;
        l->next = m->image_loads;
        if (m->image_loads)
                m->image_loads->prev = l;
        m->image_loads = l;
        m->n_image_loads++;
        l->call = sd_bus_message_ref(msg);
        l->sender = strdup(sender);
        l->question = strdup(question);
        l->chat_id = chat ? chat->id : 0;
        l->out_fd = out_fd;
        l->max = m->config.max_image_bytes;
        l->pipe = S_ISFIFO(st.st_mode);
        l->params = *p; /* takes the stop strings */
        *p = (gen_params){};
        l->fd = fcntl(image_fd, F_DUPFD_CLOEXEC, 3);
        if (!l->sender || !l->question || l->fd < 0) {
                image_load_free(l);
                return -ENOMEM;
        }
        if (l->pipe) {
                /* Handed over: making the shared description non-blocking
                 * affects only a reader the caller gave away. */
                if (fcntl(l->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
                        r = -errno;
                        image_load_free(l);
                        return r;
                }
                r = sd_event_add_io(m->event, &l->io, l->fd, EPOLLIN, on_pipe, l);
                if (r >= 0)
                        r = sd_event_add_time_relative(m->event, &l->timer, CLOCK_MONOTONIC,
                                                       m->config.image_timeout_usec, 0, on_timeout, l);
        } else {
                r = sd_event_add_defer(m->event, &l->io, on_file_slice, l);
                if (r >= 0)
                        r = sd_event_source_set_enabled(l->io, SD_EVENT_ON);
        }
        if (r < 0) {
                image_load_free(l);
                return r;
        }
        return 1; /* replied when read and answered */
}

static int explain(Manager *m, Chat *chat, sd_bus_message *msg, const gen_params *defaults, sd_bus_error *error) {
        const char *question;
        _cleanup_(gen_params_done) gen_params p = {};
        int image_fd, out_fd, r;

        /* Before anything is read or changed (authorize.h). */
        r = authorize(m, msg, SOTTO_ACTION_GENERATE, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* refused, or asked polkit: back here with the answer */
        r = sd_bus_message_read(msg, "hs", &image_fd, &question);
        if (r < 0)
                return r;
        r = options_read(msg, defaults, &p, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "h", &out_fd);
        if (r < 0)
                return r;
        return start_load(m, msg, chat, image_fd, question, &p, out_fd, error);
}

static int method_explain(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return explain(userdata, NULL, msg, NULL, error);
}

int method_chat_send_image(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Chat *c = userdata;
        return explain(c->manager, c, msg, &c->defaults, error);
}

const sd_bus_vtable vision_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("Explain", "hsa{sv}h",
                                 SD_BUS_PARAM(image) SD_BUS_PARAM(question) SD_BUS_PARAM(options) SD_BUS_PARAM(output),
                                 "a{sv}", SD_BUS_PARAM(statistics), method_explain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};
