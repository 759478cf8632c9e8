/* SPDX-License-Identifier: MIT */
/* sotto-capture: records 16 kHz mono float32 from the caller's PipeWire,
 * over a connection fd the caller opened, and writes the samples to an
 * output fd.  PipeWire converts to our format (set in the stream params).
 * The real-time callback only copies into a lock-free ring and signals the
 * main loop, which writes to the pipe.  Once the stream is set up the
 * process drops privileges and installs the worker's seccomp filter.
 *
 * usage: sotto-capture --pipewire-fd N --output-fd N [--control-fd N]
 *            [--status-fd N] [--target NODE] [--user USER]
 *
 * It ends with one status line "sotto-capture: stop: REASON" on the status
 * fd (default stderr) and an exit code that names the same reason. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pipewire/pipewire.h>
#include <spa/param/audio/format-utils.h>

#include "daemon/capture/capture.h"
#include "daemon/capture/ring.h"
#include "daemon/common/privs.h"
#include "daemon/worker/sandbox.h"
#include "macro.h"

#define RATE 16000
#define RING_SAMPLES (1u << 17)         /* about 8 s: the pipe's reader may lag */

struct capture {
        struct pw_main_loop *loop;
        struct pw_context *context;
        struct pw_core *core;
        struct spa_hook core_listener;
        struct pw_registry *registry;
        struct spa_hook registry_listener;
        struct pw_stream *stream;
        struct spa_hook stream_listener;
        struct spa_source *wake;        /* signalled by the process callback */
        struct spa_source *out_io;
        struct ring ring;
        _Atomic uint64_t dropped;       /* samples the full ring refused */
        int out_fd, status_fd;
        const char *user;
        bool sandboxed, out_waiting;
        uint32_t source_id;             /* the node our stream is linked from */
        uint32_t link_id;
        enum capture_stop reason;
        char reason_detail[300];
};

static void stop(struct capture *c, enum capture_stop reason, const char *detail) {
        if (c->reason != CAPTURE_RUNNING)
                return;
        c->reason = reason;
        snprintf(c->reason_detail, sizeof(c->reason_detail), "%s", detail ? detail : "");
        pw_main_loop_quit(c->loop);
}

/* Real-time thread: no allocation, no lock, no log, no blocking call. */
static void on_process(void *data) {
        struct capture *c = data;
        struct pw_buffer *b = pw_stream_dequeue_buffer(c->stream);
        struct spa_data *d;
        uint32_t off, size, n, w;

        if (!b)
                return;
        d = &b->buffer->datas[0];
        if (d->data && d->chunk) {
                off = SPA_MIN(d->chunk->offset, d->maxsize);
                size = SPA_MIN(d->chunk->size, d->maxsize - off);
                n = size / sizeof(float);
                w = ring_write(&c->ring, SPA_PTROFF(d->data, off, const float), n);
                if (w < n)
                        atomic_fetch_add_explicit(&c->dropped, n - w, memory_order_relaxed);
                if (w > 0)
                        pw_loop_signal_event(pw_main_loop_get_loop(c->loop), c->wake);
        }
        pw_stream_queue_buffer(c->stream, b);
}

/* Main loop: move what the ring holds into the pipe, without blocking. */
static void drain(struct capture *c) {
        const float *a, *b;
        uint32_t na, nb;

        while (ring_peek(&c->ring, &a, &na, &b, &nb) > 0) {
                /* Write whole samples only; a partial write keeps the rest. */
                ssize_t k = write(c->out_fd, a, (size_t) na * sizeof(float));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        stop(c, errno == EPIPE ? CAPTURE_READER_CLOSED : CAPTURE_ERROR, strerror(errno));
                        return;
                }
                if (k % sizeof(float)) {
                        /* A pipe write of a multiple of 4 that is split keeps 4-byte
                         * boundaries only up to PIPE_BUF; finish the sample. */
                        const char *p = (const char *) a + k;
                        size_t rest = sizeof(float) - (size_t) (k % sizeof(float));
                        while (rest > 0) {
                                ssize_t m = write(c->out_fd, p, rest);
                                if (m < 0 && errno == EAGAIN)
                                        continue;
                                if (m < 0) {
                                        stop(c, errno == EPIPE ? CAPTURE_READER_CLOSED : CAPTURE_ERROR,
                                             strerror(errno));
                                        return;
                                }
                                p += m;
                                rest -= (size_t) m;
                                k += m;
                        }
                }
                ring_consume(&c->ring, (uint32_t) (k / sizeof(float)));
        }
        bool pending = ring_peek(&c->ring, &a, &na, &b, &nb) > 0;
        if (pending != c->out_waiting) {
                c->out_waiting = pending;
                pw_loop_update_io(pw_main_loop_get_loop(c->loop), c->out_io,
                                  SPA_IO_ERR | SPA_IO_HUP | (pending ? SPA_IO_OUT : 0));
        }
}

static void on_wake(void *data, uint64_t count) {
        drain(data);
}

static void on_out_io(void *data, int fd, uint32_t mask) {
        struct capture *c = data;

        if (mask & (SPA_IO_ERR | SPA_IO_HUP)) {
                stop(c, CAPTURE_READER_CLOSED, "the output pipe was closed");
                return;
        }
        if (mask & SPA_IO_OUT)
                drain(c);
}

static void on_control(void *data, int fd, uint32_t mask) {
        struct capture *c = data;
        char buf[16];
        ssize_t k = read(fd, buf, sizeof(buf));

        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        /* A stop byte, or the control end closed: either way we are done. */
        stop(c, CAPTURE_STOPPED, k > 0 ? "stop requested" : "control fd closed");
}

static void on_signal(void *data, int signo) {
        stop(data, CAPTURE_STOPPED, signo == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void enter_sandbox(struct capture *c) {
        char err[256];
        int r;

        if (c->sandboxed)
                return;
        r = privs_drop(c->user, err, sizeof(err));
        if (r < 0) {
                stop(c, CAPTURE_ERROR, err);
                return;
        }
        r = sandbox_apply(err, sizeof(err));
        if (r < 0) {
                stop(c, CAPTURE_ERROR, err);
                return;
        }
        c->sandboxed = true;
}

static void on_state_changed(void *data, enum pw_stream_state old, enum pw_stream_state state, const char *error) {
        struct capture *c = data;

        switch (state) {
        case PW_STREAM_STATE_PAUSED:
        case PW_STREAM_STATE_STREAMING:
                /* The stream's plugins are loaded and its node exists: from
                 * here on nothing needs a path or a new socket. */
                enter_sandbox(c);
                break;
        case PW_STREAM_STATE_ERROR:
                stop(c, CAPTURE_ERROR, error ? error : "stream error");
                break;
        case PW_STREAM_STATE_UNCONNECTED:
                if (old != PW_STREAM_STATE_UNCONNECTED)
                        stop(c, CAPTURE_SOURCE_VANISHED, "the stream was disconnected");
                break;
        default:
                break;
        }
}

static const struct pw_stream_events stream_events = {
        PW_VERSION_STREAM_EVENTS,
        .state_changed = on_state_changed,
        .process = on_process,
};

/* The link that feeds our stream names its source node; when that node
 * goes, the capture has lost its source. */
static void on_global(void *data, uint32_t id, uint32_t permissions, const char *type, uint32_t version,
                      const struct spa_dict *props) {
        struct capture *c = data;
        const char *in, *out;
        uint32_t self = pw_stream_get_node_id(c->stream);

        if (!props || self == SPA_ID_INVALID || strcmp(type, PW_TYPE_INTERFACE_Link) != 0)
                return;
        in = spa_dict_lookup(props, PW_KEY_LINK_INPUT_NODE);
        out = spa_dict_lookup(props, PW_KEY_LINK_OUTPUT_NODE);
        if (!in || !out || (uint32_t) strtoul(in, NULL, 10) != self)
                return;
        c->source_id = (uint32_t) strtoul(out, NULL, 10);
        c->link_id = id;
}

static void on_global_remove(void *data, uint32_t id) {
        struct capture *c = data;

        if (c->source_id != SPA_ID_INVALID && id == c->source_id)
                stop(c, CAPTURE_SOURCE_VANISHED, "the source node was removed");
}

static const struct pw_registry_events registry_events = {
        PW_VERSION_REGISTRY_EVENTS,
        .global = on_global,
        .global_remove = on_global_remove,
};

static void on_core_error(void *data, uint32_t id, int seq, int res, const char *message) {
        struct capture *c = data;

        if (id == PW_ID_CORE)
                stop(c, res == -EPIPE ? CAPTURE_DISCONNECTED : CAPTURE_ERROR, message);
}

static const struct pw_core_events core_events = {
        PW_VERSION_CORE_EVENTS,
        .error = on_core_error,
};

static int parse_fd(const char *s) {
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v < 0 || v > 1 << 20 || fcntl((int) v, F_GETFD) < 0)
                return -EBADF;
        return (int) v;
}

static void usage(void) {
        fprintf(stderr, "usage: sotto-capture --pipewire-fd N --output-fd N [--control-fd N] [--status-fd N]\n"
                        "                     [--target NODE] [--user USER]\n");
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "pipewire-fd", required_argument, NULL, 'p' },
                { "output-fd", required_argument, NULL, 'o' },
                { "control-fd", required_argument, NULL, 'c' },
                { "status-fd", required_argument, NULL, 's' },
                { "target", required_argument, NULL, 't' },
                { "user", required_argument, NULL, 'u' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct capture c = { .out_fd = -1, .status_fd = STDERR_FILENO, .source_id = SPA_ID_INVALID,
                             .link_id = SPA_ID_INVALID, .reason = CAPTURE_RUNNING, .user = "sotto" };
        int pw_fd = -1, control_fd = -1, opt, r;
        const char *target = NULL;
        uint8_t pod_buf[1024];
        struct spa_pod_builder pb = SPA_POD_BUILDER_INIT(pod_buf, sizeof(pod_buf));
        const struct spa_pod *params[1];
        struct pw_properties *props;
        struct pw_loop *l;
        uint64_t dropped;

        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                int *dst = NULL;
                switch (opt) {
                case 'p': dst = &pw_fd; break;
                case 'o': dst = &c.out_fd; break;
                case 'c': dst = &control_fd; break;
                case 's': dst = &c.status_fd; break;
                case 't': target = optarg; break;
                case 'u': c.user = optarg; break;
                case 'h': usage(); return 0;
                default: usage(); return CAPTURE_ERROR;
                }
                if (dst && (*dst = parse_fd(optarg)) < 0) {
                        fprintf(stderr, "sotto-capture: %s is not an open fd\n", optarg);
                        return CAPTURE_ERROR;
                }
        }
        if (pw_fd < 0 || c.out_fd < 0 || optind != argc) {
                usage();
                return CAPTURE_ERROR;
        }
        signal(SIGPIPE, SIG_IGN);
        if (fcntl(c.out_fd, F_SETFL, fcntl(c.out_fd, F_GETFL) | O_NONBLOCK) < 0 ||
            (control_fd >= 0 && fcntl(control_fd, F_SETFL, fcntl(control_fd, F_GETFL) | O_NONBLOCK) < 0)) {
                capture_report(c.status_fd, CAPTURE_ERROR, strerror(errno));
                return CAPTURE_ERROR;
        }
        r = ring_init(&c.ring, RING_SAMPLES);
        if (r < 0) {
                capture_report(c.status_fd, CAPTURE_ERROR, strerror(-r));
                return CAPTURE_ERROR;
        }
        atomic_init(&c.dropped, 0);

        pw_init(&argc, &argv);
        c.loop = pw_main_loop_new(NULL);
        if (!c.loop) {
                capture_report(c.status_fd, CAPTURE_ERROR, "cannot create the main loop");
                return CAPTURE_ERROR;
        }
        l = pw_main_loop_get_loop(c.loop);
        pw_loop_add_signal(l, SIGTERM, on_signal, &c);
        pw_loop_add_signal(l, SIGINT, on_signal, &c);
        c.wake = pw_loop_add_event(l, on_wake, &c);
        c.out_io = pw_loop_add_io(l, c.out_fd, SPA_IO_ERR | SPA_IO_HUP, false, on_out_io, &c);
        if (control_fd >= 0)
                pw_loop_add_io(l, control_fd, SPA_IO_IN | SPA_IO_ERR | SPA_IO_HUP, false, on_control, &c);

        c.context = pw_context_new(l, NULL, 0);
        if (!c.context) {
                capture_report(c.status_fd, CAPTURE_ERROR, "cannot create the PipeWire context");
                return CAPTURE_ERROR;
        }
        c.core = pw_context_connect_fd(c.context, pw_fd, NULL, 0);
        if (!c.core) {
                capture_report(c.status_fd, CAPTURE_DISCONNECTED, strerror(errno));
                return CAPTURE_DISCONNECTED;
        }
        pw_core_add_listener(c.core, &c.core_listener, &core_events, &c);

        props = pw_properties_new(PW_KEY_MEDIA_TYPE, "Audio", PW_KEY_MEDIA_CATEGORY, "Capture",
                                  PW_KEY_MEDIA_ROLE, "Communication", PW_KEY_NODE_NAME, "sotto-capture",
                                  PW_KEY_APP_NAME, "sotto", PW_KEY_NODE_DONT_RECONNECT, "true", NULL);
        if (target)
                pw_properties_set(props, PW_KEY_TARGET_OBJECT, target);
        c.stream = pw_stream_new(c.core, "sotto-capture", props);
        if (!c.stream) {
                capture_report(c.status_fd, CAPTURE_ERROR, "cannot create the stream");
                return CAPTURE_ERROR;
        }
        pw_stream_add_listener(c.stream, &c.stream_listener, &stream_events, &c);
        c.registry = pw_core_get_registry(c.core, PW_VERSION_REGISTRY, 0);
        pw_registry_add_listener(c.registry, &c.registry_listener, &registry_events, &c);

        params[0] = spa_format_audio_raw_build(&pb, SPA_PARAM_EnumFormat,
                        &SPA_AUDIO_INFO_RAW_INIT(.format = SPA_AUDIO_FORMAT_F32, .rate = RATE, .channels = 1,
                                                 .position = { SPA_AUDIO_CHANNEL_MONO }));
        r = pw_stream_connect(c.stream, PW_DIRECTION_INPUT, PW_ID_ANY,
                              PW_STREAM_FLAG_AUTOCONNECT | PW_STREAM_FLAG_MAP_BUFFERS | PW_STREAM_FLAG_RT_PROCESS,
                              params, 1);
        if (r < 0) {
                capture_report(c.status_fd, CAPTURE_ERROR, strerror(-r));
                return CAPTURE_ERROR;
        }

        pw_main_loop_run(c.loop);

        if (c.reason == CAPTURE_RUNNING)
                stop(&c, CAPTURE_ERROR, "main loop ended");
        /* Whatever the ring still holds goes out (a stop request keeps the
         * tail of the speech); not when the reader has gone. */
        if (c.reason == CAPTURE_STOPPED || c.reason == CAPTURE_SOURCE_VANISHED) {
                pw_stream_set_active(c.stream, false);
                fcntl(c.out_fd, F_SETFL, fcntl(c.out_fd, F_GETFL) & ~O_NONBLOCK);
                drain(&c);
        }
        dropped = atomic_load(&c.dropped);
        if (dropped > 0) {
                char msg[256];
                snprintf(msg, sizeof(msg), "%s; %llu samples dropped (reader too slow)", c.reason_detail,
                         (unsigned long long) dropped);
                capture_report(c.status_fd, c.reason, msg);
        } else
                capture_report(c.status_fd, c.reason, c.reason_detail);
        /* Exit without tearing the PipeWire objects down: the sandbox may
         * refuse what a clean disconnect would try, and the kernel closes
         * every fd anyway. */
        _exit(c.reason);
}
