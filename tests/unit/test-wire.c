/* SPDX-License-Identifier: MIT */
/* The sottod <-> worker protocol: every message round-trips, every
 * truncation and every oversized length is refused, UTF-8 validation. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/common/wire.h"
#include "test.h"

static void test_generate_roundtrip(void) {
        wire_buf b = {};
        gen_params p;
        gen_params_default(&p);
        p.temperature = 0;
        p.seed = 0x1122334455667788ull;
        p.max_tokens = 77;
        p.raw = true;
        p.n_stop = 2;
        p.stop[0] = strdup("\n\n");
        p.stop[1] = strdup("The end");
        wire_generate g = { .req_id = 5, .chat_id = 9, .params = p, .prompt = "héllo", .prompt_len = 6 };
        CHECK_OK(wire_encode_generate(&b, &g));
        uint32_t type, len;
        CHECK_EQ_INT(wire_parse_header(b.data, b.len, &type, &len), 1);
        CHECK_EQ_INT(type, WIRE_GENERATE);
        CHECK_EQ_INT(len + WIRE_HEADER_SIZE, b.len);
        wire_generate d;
        CHECK_OK(wire_decode_generate(b.data + WIRE_HEADER_SIZE, len, &d));
        CHECK(d.req_id == 5 && d.chat_id == 9 && d.params.seed == p.seed && d.params.max_tokens == 77 && d.params.raw);
        CHECK(d.params.n_stop == 2 && !strcmp(d.params.stop[1], "The end"));
        CHECK(d.prompt_len == 6 && !memcmp(d.prompt, "héllo", 6));
        gen_params_done(&d.params);
        /* Every truncation is refused, never read past. */
        for (uint32_t n = 0; n < len; n++) {
                uint8_t *copy = malloc(n ? n : 1);
                memcpy(copy, b.data + WIRE_HEADER_SIZE, n);
                CHECK(wire_decode_generate(copy, n, &d) < 0);
                free(copy);
        }
        /* Out-of-range parameters from the other side are refused too. */
        uint8_t *bad = malloc(len);
        memcpy(bad, b.data + WIRE_HEADER_SIZE, len);
        float nan = __builtin_nanf("");
        memcpy(bad + 16, &nan, 4); /* temperature */
        CHECK(wire_decode_generate(bad, len, &d) < 0);
        free(bad);
        gen_params_done(&p);
        wire_buf_free(&b);
}

static void test_done_ready_text(void) {
        wire_buf b = {};
        wire_done d = { .req_id = 3, .status = WIRE_ERR_CONTEXT_FULL, .stop_reason = WIRE_STOP_NONE, .n_prompt = 10 };
        strcpy(d.message, "too long");
        CHECK_OK(wire_encode_done(&b, &d));
        wire_done e;
        CHECK_OK(wire_decode_done(b.data + 8, b.len - 8, &e));
        CHECK(e.req_id == 3 && e.status == WIRE_ERR_CONTEXT_FULL && !strcmp(e.message, "too long"));
        /* A status outside the enum is a violation. */
        b.data[8 + 8] = 77;
        CHECK(wire_decode_done(b.data + 8, b.len - 8, &e) < 0);
        wire_buf_free(&b);

        wire_ready r = { .n_ctx = 512, .n_ctx_train = 512, .n_vocab = 32000, .pid = 42 };
        strcpy(r.arch, "llama");
        strcpy(r.name, "stories");
        CHECK_OK(wire_encode_ready(&b, &r));
        wire_ready r2;
        CHECK_OK(wire_decode_ready(b.data + 8, b.len - 8, &r2));
        CHECK(r2.n_ctx == 512 && !strcmp(r2.name, "stories"));
        wire_buf_free(&b);

        CHECK_OK(wire_encode_text(&b, 7, 3, "abc", 3));
        wire_text t;
        CHECK_OK(wire_decode_text(b.data + 8, b.len - 8, &t));
        CHECK(t.req_id == 7 && t.n_tokens == 3 && t.len == 3 && !memcmp(t.text, "abc", 3));
        /* A length field pointing past the frame. */
        b.data[8 + 12] = 200;
        CHECK(wire_decode_text(b.data + 8, b.len - 8, &t) < 0);
        wire_buf_free(&b);
}

/* Speech recognition frames: round trips, then every length and range
 * check from the other side. */
static void test_audio(void) {
        wire_buf b = {};
        wire_audio_start a = { .req_id = 9, .format = WIRE_AUDIO_F32LE, .rate = 16000, .channels = 1,
                               .flags = WIRE_AUDIO_PARTIALS | WIRE_AUDIO_LIVE, .partial_ms = 500, .max_seconds = 60 };
        strcpy(a.language, "en");
        CHECK_OK(wire_encode_audio_start(&b, &a));
        wire_audio_start a2;
        CHECK_OK(wire_decode_audio_start(b.data + 8, b.len - 8, &a2));
        CHECK(a2.req_id == 9 && a2.format == WIRE_AUDIO_F32LE && a2.rate == 16000 && a2.flags == a.flags &&
              a2.partial_ms == 500 && a2.max_seconds == 60 && !strcmp(a2.language, "en"));
        /* unknown flag, unknown format, live WAV, odd language, short frame */
        uint8_t *p = b.data + 8;
        size_t n = b.len - 8;
        p[20] = 0x80;
        CHECK(wire_decode_audio_start(p, n, &a2) < 0);
        p[20] = WIRE_AUDIO_PARTIALS | WIRE_AUDIO_LIVE;
        p[8] = 7;
        CHECK(wire_decode_audio_start(p, n, &a2) < 0);
        p[8] = WIRE_AUDIO_WAV;
        CHECK(wire_decode_audio_start(p, n, &a2) < 0);
        p[8] = WIRE_AUDIO_F32LE;
        p[n - 1] = '/';
        CHECK(wire_decode_audio_start(p, n, &a2) < 0);
        p[n - 1] = 'n';
        CHECK_OK(wire_decode_audio_start(p, n, &a2));
        CHECK(wire_decode_audio_start(p, n - 1, &a2) < 0);
        wire_buf_free(&b);
        a.flags = WIRE_AUDIO_LIVE;
        a.channels = 2;
        CHECK(wire_encode_audio_start(&b, &a) == -EINVAL);
        a.channels = 1;
        a.partial_ms = 50;
        CHECK(wire_encode_audio_start(&b, &a) == -EINVAL);
        wire_buf_free(&b);

        uint8_t pcm[64];
        for (size_t i = 0; i < sizeof pcm; i++)
                pcm[i] = (uint8_t)i;
        CHECK_OK(wire_encode_audio_data(&b, 4, pcm, sizeof pcm));
        wire_audio_data d;
        CHECK_OK(wire_decode_audio_data(b.data + 8, b.len - 8, &d));
        CHECK(d.req_id == 4 && d.len == sizeof pcm && !memcmp(d.data, pcm, sizeof pcm));
        b.data[8 + 8] = 65; /* length one past the frame */
        CHECK(wire_decode_audio_data(b.data + 8, b.len - 8, &d) < 0);
        wire_buf_free(&b);
        CHECK(wire_encode_audio_data(&b, 4, pcm, WIRE_MAX_AUDIO_CHUNK + 1) == -EMSGSIZE);
        wire_buf_free(&b);

        wire_audio_text t = { .req_id = 5, .kind = WIRE_AUDIO_FINAL, .start = 100, .end = 16100,
                              .compute_usec = 1234, .latency_usec = 1300, .n_tokens = 3, .tokens = { 50257, 7, 9 }, .text = "h\xc3\xa9",
                              .len = 3 };
        CHECK_OK(wire_encode_audio_text(&b, &t));
        wire_audio_text t2;
        CHECK_OK(wire_decode_audio_text(b.data + 8, b.len - 8, &t2));
        CHECK(t2.req_id == 5 && t2.kind == WIRE_AUDIO_FINAL && t2.start == 100 && t2.end == 16100 &&
              t2.compute_usec == 1234 && t2.latency_usec == 1300 && t2.n_tokens == 3 && t2.tokens[0] == 50257 && t2.tokens[2] == 9 &&
              t2.len == 3 && !memcmp(t2.text, "h\xc3\xa9", 3));
        p = b.data + 8;
        n = b.len - 8;
        /* the text cut in the middle of a character */
        CHECK(wire_decode_audio_text(p, n - 1, &t2) < 0);
        p[n - 1] = 0xff;
        CHECK(wire_decode_audio_text(p, n, &t2) < 0);
        p[n - 1] = 0xa9;
        /* a token count past the limit or past the frame */
        p[48] = 0xff;
        CHECK(wire_decode_audio_text(p, n, &t2) < 0);
        p[48] = 4;
        CHECK(wire_decode_audio_text(p, n, &t2) < 0);
        p[48] = 3;
        /* start after end, unknown kind */
        p[16] = 0xff, p[17] = 0xff;
        CHECK(wire_decode_audio_text(p, n, &t2) < 0);
        p[16] = 100, p[17] = 0;
        p[8] = 2;
        CHECK(wire_decode_audio_text(p, n, &t2) < 0);
        p[8] = 1;
        CHECK_OK(wire_decode_audio_text(p, n, &t2));
        wire_buf_free(&b);
        t.text = "\xc3";
        t.len = 1;
        CHECK(wire_encode_audio_text(&b, &t) == -EINVAL);
        wire_buf_free(&b);
}

static void test_header_limits(void) {
        uint8_t h[8] = { 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f };
        uint32_t type, len;
        CHECK_EQ_INT(wire_parse_header(h, 8, &type, &len), -EBADMSG);
        CHECK_EQ_INT(wire_parse_header(h, 7, &type, &len), 0);
        uint8_t ok[8] = { 2, 0, 0, 0, 8, 0, 0, 0 };
        CHECK_EQ_INT(wire_parse_header(ok, 8, &type, &len), 0); /* complete header, payload missing */
}

static void test_conn(void) {
        int sp[2];
        CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
        wire_conn a, b;
        wire_conn_init(&a, sp[0]);
        wire_conn_init(&b, sp[1]);
        /* Many frames, one of them large, through a non-blocking pair. */
        char *big = malloc(WIRE_MAX_TEXT);
        memset(big, 'x', WIRE_MAX_TEXT);
        for (int i = 0; i < 50; i++)
                CHECK_OK(wire_encode_text(&a.out, (uint64_t)i, (uint32_t)i, big, i == 25 ? WIRE_MAX_TEXT : 1));
        int got = 0;
        while (got < 50) {
                int r = wire_conn_flush(&a);
                CHECK(r >= 0);
                CHECK_OK(wire_conn_read(&b));
                uint32_t type;
                const uint8_t *p;
                size_t len;
                while (wire_conn_next(&b, &type, &p, &len) > 0) {
                        wire_text t;
                        CHECK_OK(wire_decode_text(p, len, &t));
                        CHECK_EQ_INT(t.req_id, got);
                        CHECK_EQ_INT(t.len, got == 25 ? WIRE_MAX_TEXT : 1);
                        got++;
                }
        }
        wire_conn_done(&a);
        CHECK_EQ_INT(wire_conn_read(&b), -EPIPE);
        wire_conn_done(&b);
        free(big);
}

static void test_utf8(void) {
        CHECK(utf8_is_valid("", 0));
        CHECK(utf8_is_valid("héllo wörld €𝄞", strlen("héllo wörld €𝄞")));
        CHECK(!utf8_is_valid("\xc3", 1));             /* truncated */
        CHECK(!utf8_is_valid("\xc0\xaf", 2));         /* overlong */
        CHECK(!utf8_is_valid("\xed\xa0\x80", 3));     /* surrogate */
        CHECK(!utf8_is_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
        CHECK(!utf8_is_valid("\xff", 1));
}

static void test_params_check(void) {
        gen_params p;
        char err[160];
        gen_params_default(&p);
        CHECK_OK(gen_params_check(&p, err, sizeof err));
        p.max_tokens = 0;
        CHECK(gen_params_check(&p, err, sizeof err) < 0);
        gen_params_default(&p);
        p.top_p = 0;
        CHECK(gen_params_check(&p, err, sizeof err) < 0);
}

/* An image of 9 MiB goes as three IMAGE_DATA frames (4 + 4 + 1 MiB) and
 * the EXPLAIN; each decodes back, truncations and a zero size are refused. */
static void test_explain(void) {
        wire_buf b = {};
        size_t size = 9u << 20;
        uint8_t *img = malloc(size);
        for (size_t i = 0; i < size; i++)
                img[i] = (uint8_t)(i * 131 + 7);
        wire_explain x = { .gen = { .req_id = 42, .chat_id = 3, .prompt = "what?", .prompt_len = 5 },
                           .image_size = (uint32_t)size };
        gen_params_default(&x.gen.params);
        CHECK_OK(wire_encode_explain(&b, &x, img));
        size_t off = 0, got = 0;
        int n_data = 0;
        uint32_t type, len;
        while (off < b.len) {
                CHECK_EQ_INT(wire_parse_header(b.data + off, b.len - off, &type, &len), 1);
                const uint8_t *pl = b.data + off + WIRE_HEADER_SIZE;
                if (type == WIRE_IMAGE_DATA) {
                        wire_image_data d;
                        CHECK_OK(wire_decode_image_data(pl, len, &d));
                        CHECK(d.req_id == 42 && d.len <= WIRE_MAX_IMAGE_CHUNK);
                        CHECK(!memcmp(d.data, img + got, d.len));
                        got += d.len;
                        n_data++;
                        CHECK(wire_decode_image_data(pl, len - 1, &d) < 0);
                } else {
                        CHECK_EQ_INT(type, WIRE_EXPLAIN);
                        CHECK(off + WIRE_HEADER_SIZE + len == b.len); /* the EXPLAIN comes last */
                        wire_explain e;
                        CHECK_OK(wire_decode_explain(pl, len, &e));
                        CHECK(e.gen.req_id == 42 && e.gen.chat_id == 3 && e.image_size == size);
                        CHECK(e.gen.prompt_len == 5 && !memcmp(e.gen.prompt, "what?", 5));
                        gen_params_done(&e.gen.params);
                        for (uint32_t k = 0; k < len; k++)
                                CHECK(wire_decode_explain(pl, k, &e) < 0);
                        uint8_t *zero = malloc(len);
                        memcpy(zero, pl, len);
                        memset(zero + len - 4, 0, 4); /* image_size 0 */
                        CHECK(wire_decode_explain(zero, len, &e) < 0);
                        free(zero);
                }
                off += WIRE_HEADER_SIZE + len;
        }
        CHECK_EQ_INT(n_data, 3);
        CHECK(got == size);
        /* Nothing is encoded for an image over the limit or of no bytes. */
        size_t before = b.len;
        x.image_size = WIRE_MAX_IMAGE + 1;
        CHECK(wire_encode_explain(&b, &x, img) < 0);
        x.image_size = 0;
        CHECK(wire_encode_explain(&b, &x, img) < 0);
        CHECK(b.len == before);
        free(img);
        wire_buf_free(&b);
}

/* WIRE_WEIGHTS carries a memfd as SCM_RIGHTS; WIRE_STATS counters that
 * cannot be true are refused. */
static void test_weights_stats(void) {
        int sp[2];
        CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
        wire_conn a, b;
        wire_conn_init(&a, sp[0]);
        wire_conn_init(&b, sp[1]);
        int mfd = memfd_create("w", MFD_CLOEXEC);
        CHECK(mfd >= 0);
        CHECK_OK(ftruncate(mfd, 12345));
        wire_buf f = {};
        wire_weights w = { .size = 12345, .n_blocks = 3 };
        CHECK_OK(wire_encode_weights(&f, &w));
        CHECK_OK(wire_conn_send_fd(&a, &f, mfd));
        wire_buf_free(&f);
        wire_stats st = { .decode_steps = 10, .batched_steps = 4, .batched_tokens = 9, .max_batch = 3 };
        CHECK_OK(wire_encode_stats(&a.out, &st));
        CHECK_EQ_INT(wire_conn_flush(&a), 0);
        CHECK_OK(wire_conn_read(&b));
        uint32_t type;
        const uint8_t *p;
        size_t len;
        int got = 0;
        for (int i = 0; i < 2; i++) {
                while (wire_conn_next(&b, &type, &p, &len) == 0)
                        CHECK_OK(wire_conn_read(&b));
                if (type == WIRE_WEIGHTS) {
                        wire_weights d;
                        CHECK_OK(wire_decode_weights(p, len, &d));
                        CHECK_EQ_INT(d.size, 12345);
                        CHECK_EQ_INT(d.n_blocks, 3);
                        int fd = wire_conn_take_fd(&b);
                        struct stat s1, s2;
                        CHECK(fd >= 0 && fstat(fd, &s1) == 0 && fstat(mfd, &s2) == 0);
                        CHECK_EQ_INT(s1.st_ino, s2.st_ino);
                        CHECK_EQ_INT(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
                        close(fd);
                        CHECK_EQ_INT(wire_conn_take_fd(&b), -1);
                        got |= 1;
                } else {
                        CHECK_EQ_INT(type, WIRE_STATS);
                        wire_stats d;
                        CHECK_OK(wire_decode_stats(p, len, &d));
                        CHECK_EQ_INT(d.decode_steps, 10);
                        CHECK_EQ_INT(d.batched_steps, 4);
                        CHECK_EQ_INT(d.batched_tokens, 9);
                        CHECK_EQ_INT(d.max_batch, 3);
                        got |= 2;
                }
        }
        CHECK_EQ_INT(got, 3);
        /* Impossible counters. */
        wire_stats bad[] = {
                { .decode_steps = 1, .batched_steps = 2, .batched_tokens = 4, .max_batch = 2 }, /* more batched than all */
                { .decode_steps = 5, .batched_steps = 2, .batched_tokens = 3, .max_batch = 2 }, /* < 2 per batch */
                { .decode_steps = 5, .batched_steps = 2, .batched_tokens = 9, .max_batch = 2 }, /* > max per batch */
                { .decode_steps = 5, .batched_steps = 1, .batched_tokens = 2, .max_batch = 1 },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                wire_buf e = {};
                wire_stats d;
                CHECK_OK(wire_encode_stats(&e, &bad[i]));
                CHECK_MSG(wire_decode_stats(e.data + WIRE_HEADER_SIZE, e.len - WIRE_HEADER_SIZE, &d) == -EBADMSG,
                          "bad stats %zu accepted", i);
                wire_buf_free(&e);
        }
        /* An empty arena or an absurd size is no arena. */
        wire_buf e = {};
        wire_weights zero = { .size = 0, .n_blocks = 1 };
        CHECK_OK(wire_encode_weights(&e, &zero));
        CHECK(wire_decode_weights(e.data + WIRE_HEADER_SIZE, e.len - WIRE_HEADER_SIZE, &w) == -EBADMSG);
        wire_buf_free(&e);
        close(mfd);
        wire_conn_done(&a);
        wire_conn_done(&b);
}

int main(void) {
        test_weights_stats();
        test_explain();
        test_generate_roundtrip();
        test_done_ready_text();
        test_header_limits();
        test_conn();
        test_utf8();
        test_params_check();
        test_audio();
        return 0;
}
