/* SPDX-License-Identifier: MIT */
/* The framed sottod <-> worker protocol: arbitrary bytes arrive on the
 * socket; framing and every decoder must refuse garbage without reading out
 * of bounds, leaking or asserting. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/common/wire.h"

/* Speech recognition frames: what a decoder accepts encodes back to the
 * same bytes. */
static bool decode_audio(uint32_t type, const uint8_t *p, size_t len) {
        wire_buf b = {};
        switch (type) {
        case WIRE_AUDIO_START: {
                wire_audio_start a;
                if (wire_decode_audio_start(p, len, &a) >= 0 &&
                    (wire_encode_audio_start(&b, &a) < 0 || b.len - WIRE_HEADER_SIZE != len ||
                     memcmp(b.data + WIRE_HEADER_SIZE, p, len) != 0))
                        abort();
                break;
        }
        case WIRE_AUDIO_DATA: {
                wire_audio_data d;
                if (wire_decode_audio_data(p, len, &d) >= 0 &&
                    (wire_encode_audio_data(&b, d.req_id, d.data, d.len) < 0 || b.len - WIRE_HEADER_SIZE != len ||
                     memcmp(b.data + WIRE_HEADER_SIZE, p, len) != 0))
                        abort();
                break;
        }
        case WIRE_AUDIO_TEXT: {
                wire_audio_text t;
                if (wire_decode_audio_text(p, len, &t) >= 0 &&
                    (wire_encode_audio_text(&b, &t) < 0 || b.len - WIRE_HEADER_SIZE != len ||
                     memcmp(b.data + WIRE_HEADER_SIZE, p, len) != 0))
                        abort();
                break;
        }
        default:
                return false;
        }
        wire_buf_free(&b);
        return true;
}

static void decode_all(uint32_t type, const uint8_t *p, size_t len) {
        wire_generate g;
        wire_done d;
        wire_ready r;
        wire_text t;
        uint64_t v;
        if (decode_audio(type, p, len))
                return;
        switch (type % 8) {
        case 0:
                if (wire_decode_generate(p, len, &g) >= 0) {
                        /* Re-encoding what was accepted must give it back. */
                        wire_buf b = {};
                        if (wire_encode_generate(&b, &g) >= 0) {
                                wire_generate g2;
                                if (wire_decode_generate(b.data + WIRE_HEADER_SIZE, b.len - WIRE_HEADER_SIZE, &g2) < 0 ||
                                    g2.prompt_len != g.prompt_len || memcmp(g2.prompt, g.prompt, g.prompt_len) != 0)
                                        abort();
                                gen_params_done(&g2.params);
                        }
                        wire_buf_free(&b);
                        gen_params_done(&g.params);
                }
                break;
        case 1: (void)wire_decode_done(p, len, &d); break;
        case 2: (void)wire_decode_ready(p, len, &r); break;
        case 3: (void)wire_decode_text(p, len, &t); break;
        case 4: (void)wire_decode_u64(p, len, &v); break;
        case 5: {
                wire_explain x;
                if (wire_decode_explain(p, len, &x) >= 0)
                        gen_params_done(&x.gen.params);
                break;
        }
        case 6: {
                wire_image_data id;
                (void)wire_decode_image_data(p, len, &id);
                break;
        }
        default: {
                /* WIRE_WEIGHTS and WIRE_STATS share the last slot. */
                wire_weights ww;
                wire_stats ws;
                (void)wire_decode_weights(p, len, &ww);
                if (wire_decode_stats(p, len, &ws) >= 0 && ws.batched_steps > ws.decode_steps)
                        abort();
                (void)utf8_is_valid((const char *)p, len);
                break;
        }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* 1. Each decoder on the raw payload. */
        if (size > 0)
                decode_all(data[0], data + 1, size - 1);

        /* 2. The same bytes as a stream through a connection. */
        int sp[2];
        if (size > 200000 || socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
                return 0;
        wire_conn c;
        wire_conn_init(&c, sp[0]);
        size_t off = 0;
        while (off < size) {
                ssize_t n = write(sp[1], data + off, size - off);
                if (n <= 0)
                        break;
                off += (size_t)n;
                if (off == size)
                        close(sp[1]), sp[1] = -1;
                for (;;) {
                        int r = wire_conn_read(&c);
                        uint32_t type;
                        const uint8_t *p;
                        size_t len;
                        int k;
                        while ((k = wire_conn_next(&c, &type, &p, &len)) > 0)
                                decode_all(type, p, len);
                        if (r < 0 || k < 0)
                                goto out;
                        if (c.in_len - c.in_consumed == 0 || sp[1] >= 0)
                                break;
                }
        }
out:
        if (sp[1] >= 0)
                close(sp[1]);
        wire_conn_done(&c);
        return 0;
}
