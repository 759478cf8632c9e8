/* SPDX-License-Identifier: MIT */
/* The Gemma 3 vision encoder (daemon/engine/vision*.c) against llama.cpp's
 * clip on random-weight mmproj files, and its loader on malformed ones.
 *
 * The files are written here by tests/tools/mkmmproj.c (the same bytes
 * sotto-mkmmproj writes: a file hash below catches a generator change);
 * the image is tests/tools/vision-pattern.h; the reference embeddings in
 * tests/data/vision/ came from llama.cpp's clip_encode_float_image on the
 * same files and pixels (tests/data/vision/README.md says how).
 *
 * Tolerances (absolute; the embeddings reach |3.8|), from the errors
 * measured on this machine, with margin for other CPUs' kernels:
 *   F32  measured 5.4e-5 -> 5e-4: only summation order differs (OpenBLAS
 *        vs ggml blocking, exp polynomial); 10x covers AVX2-only machines.
 *   F16  measured 1.2e-3 -> 5e-3: activations are rounded to F16 before
 *        each product as in ggml, so a 1-ulp difference upstream flips
 *        an F16 rounding (2^-11 relative) now and then.
 *   Q8_0 measured 2.3e-3 -> 2e-2: activations quantized to Q8_0 (int8
 *        path, as ggml); without AVX-512 VNNI our product runs sgemm on
 *        float activations instead, ~1/254 relative per product.
 * A real mistake (a missing bias, a transposed head, a wrong pool order)
 * moves values by 0.1 to several units. */
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "macro.h"
#include "tensor-type.h"
#include "test.h"
#include "tests/tools/mkmmproj.h"
#include "tests/tools/vision-pattern.h"
#include "vision.h"

#define DATA "tests/data/vision"

static char dir[] = "/tmp/test-vision-XXXXXX";

static uint64_t fnv1a_file(const char *path) {
        size_t n;
        _cleanup_free_ uint8_t *p = test_read_file(path, &n);
        CHECK(p);
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < n; i++)
                h = (h ^ p[i]) * 0x100000001b3ull;
        return h;
}

static void make(const char *preset, uint32_t type, const mk_mmproj_edit *edit, char *path, size_t n) {
        char err[256];
        snprintf(path, n, "%s/%s-%s.gguf", dir, preset, type_name(type));
        int r = mk_mmproj_write(mk_mmproj_preset_find(preset), type, 1, edit, path, err, sizeof err);
        CHECK_MSG(r >= 0, "%s", err);
}

static bool abort_now(void *userdata) {
        int *calls = userdata;
        return ++*calls >= 2;
}

/* Encode the pattern with threads, compare with the reference. */
static void check_ref(const char *preset, uint32_t type, uint64_t file_hash, double tol) {
        char path[512], err[256], ref_path[512];
        make(preset, type, NULL, path, sizeof path);
        CHECK_MSG(fnv1a_file(path) == file_hash,
                  "%s: the generator's output changed (hash %016" PRIx64 "); the reference embeddings in " DATA
                  " belong to the old bytes: regenerate them (README.md there)", path, fnv1a_file(path));

        vision_model *m;
        int r = vision_model_open_path(path, &m, err, sizeof err);
        CHECK_MSG(r >= 0, "%s", err);
        CHECK(strcmp(vision_model_projector(m), "gemma3") == 0);
        const uint32_t S = vision_model_image_size(m);
        const size_t n = (size_t)vision_model_n_tokens(m) * vision_model_n_embd_out(m);
        float mean[3], std[3];
        vision_model_image_norm(m, mean, std);
        CHECK(mean[0] == 0.5f && std[2] == 0.5f);

        _cleanup_free_ float *img = malloc((size_t)3 * S * S * sizeof(float));
        _cleanup_free_ float *out = malloc(n * sizeof(float));
        _cleanup_free_ float *out1 = malloc(n * sizeof(float));
        CHECK(img && out && out1);
        vision_pattern_chw(S, mean, std, img);

        vision_ctx *c;
        CHECK_OK(vision_ctx_new(m, 2, &c));
        CHECK_OK(vision_encode(c, img, S, S, out));
        /* a second run on the same context gives the same floats */
        CHECK_OK(vision_encode(c, img, S, S, out1));
        CHECK(memcmp(out, out1, n * sizeof(float)) == 0);
        CHECK_EQ_INT(vision_encode(c, img, S - 1, S, out1), -EINVAL);
        int calls = 0;
        vision_ctx_set_abort(c, abort_now, &calls);
        CHECK_EQ_INT(vision_encode(c, img, S, S, out1), -ECANCELED);
        vision_ctx_free(c);

        /* one thread: the work is split by rows and heads, never inside a
         * sum, but OpenBLAS's Haswell and Zen kernels (what 0.3.21 runs on
         * AMD CPUs) round a row's sum differently at different places in
         * a call, so the split shows there: within the type's tolerance
         * against the reference, which is about such differences (AMD Zen
         * 5: F32 4e-5, F16 1e-3; elsewhere 0) */
        CHECK_OK(vision_ctx_new(m, 1, &c));
        CHECK_OK(vision_encode(c, img, S, S, out1));
        vision_ctx_free(c);
        double d_threads = 0;
        for (size_t i = 0; i < n; i++)
                d_threads = fmax(d_threads, fabs((double)out[i] - out1[i]));
        printf("%s %s: 1 and 2 threads differ by %.3g\n", preset, type_name(type), d_threads);
        CHECK_MSG(d_threads <= tol, "%s %s: 1 and 2 threads differ by %g", preset, type_name(type), d_threads);

        snprintf(ref_path, sizeof ref_path, DATA "/%s-%s.emb.f32", preset, type_name(type));
        size_t ref_bytes;
        _cleanup_free_ float *ref = test_read_file(ref_path, &ref_bytes);
        CHECK_MSG(ref && ref_bytes == n * sizeof(float), "%s: %zu floats expected", ref_path, n);

        double max_abs = 0, sum2 = 0, ref_max = 0;
        for (size_t i = 0; i < n; i++) {
                double d = fabs((double)out[i] - ref[i]);
                max_abs = fmax(max_abs, d);
                sum2 += d * d;
                ref_max = fmax(ref_max, fabs(ref[i]));
                CHECK(isfinite(out[i]));
        }
        printf("%s %s: %d tokens x %d, max |ref| %.3f, max abs err %.3g, rms err %.3g (tolerance %.3g)\n", preset,
               type_name(type), vision_model_n_tokens(m), vision_model_n_embd_out(m), ref_max, max_abs,
               sqrt(sum2 / n), tol);
        CHECK_MSG(max_abs <= tol, "%s %s: max abs err %g > %g", preset, type_name(type), max_abs, tol);
        CHECK(ref_max > 1.0); /* the reference is not degenerate */
        vision_model_free(m);
}

/* A malformed variant must be refused with this errno and a sentence
 * containing what. */
static void check_bad(const mk_mmproj_edit *edit, int want, const char *what) {
        char path[512], err[256] = "";
        make("gemma3-tiny", TYPE_F16, edit, path, sizeof path);
        vision_model *m = NULL;
        int r = vision_model_open_path(path, &m, err, sizeof err);
        printf("refused (%s): %s\n", strerror(-r), err);
        CHECK_MSG(r == want, "got %d (%s), want %d: %s", r, strerror(-r), want, err);
        CHECK(!m);
        CHECK_MSG(strstr(err, what), "'%s' not in: %s", what, err);
        unlink(path);
}

static void test_malformed(void) {
        check_bad(&(mk_mmproj_edit) { .bad_tensor = "v.blk.1.attn_k.weight" }, -EBADMSG, "v.blk.1.attn_k.weight has shape");
        check_bad(&(mk_mmproj_edit) { .bad_tensor = "v.position_embd.weight" }, -EBADMSG, "v.position_embd.weight");
        check_bad(&(mk_mmproj_edit) { .bad_tensor = "mm.input_projection.weight" }, -EBADMSG, "mm.input_projection.weight");
        check_bad(&(mk_mmproj_edit) { .skip_tensor = "v.blk.2.ffn_down.weight" }, -EBADMSG, "v.blk.2.ffn_down.weight is missing");
        check_bad(&(mk_mmproj_edit) { .skip_tensor = "mm.soft_emb_norm.weight" }, -EBADMSG, "mm.soft_emb_norm.weight is missing");
        check_bad(&(mk_mmproj_edit) { .skip_tensor = "v.patch_embd.weight" }, -EBADMSG, "v.patch_embd.weight is missing");
        check_bad(&(mk_mmproj_edit) { .u32_key = "clip.vision.block_count", .u32_val = 4 }, -EBADMSG, "v.blk.3.");
        check_bad(&(mk_mmproj_edit) { .u32_key = "clip.vision.block_count", .u32_val = 2 }, -EBADMSG, "beyond clip.vision.block_count");
        check_bad(&(mk_mmproj_edit) { .u32_key = "clip.vision.block_count", .u32_val = 0 }, -EBADMSG, "out of range");
        check_bad(&(mk_mmproj_edit) { .u32_key = "clip.vision.image_size", .u32_val = 230 }, -EBADMSG, "not a multiple of the patch size");
        check_bad(&(mk_mmproj_edit) { .u32_key = "clip.vision.image_size", .u32_val = 1u << 30 }, -EBADMSG, "out of range");
        check_bad(&(mk_mmproj_edit) { .u32_key = "clip.vision.embedding_length", .u32_val = 130 }, -EBADMSG, "heads do not divide");
        check_bad(&(mk_mmproj_edit) { .u32_key = "clip.vision.feed_forward_length", .u32_val = 345 }, -EBADMSG, "ffn_up.weight has shape");
        check_bad(&(mk_mmproj_edit) { .u32_key = "clip.vision.attention.head_count", .u32_val = 0 }, -EBADMSG, "head_count");
        check_bad(&(mk_mmproj_edit) { .u32_key = "clip.vision.projector.scale_factor", .u32_val = 3 }, -EBADMSG, "does not divide");
        check_bad(&(mk_mmproj_edit) { .u32_key = "clip.vision.projector.scale_factor", .u32_val = 0 }, -EBADMSG, "does not divide");
        check_bad(&(mk_mmproj_edit) { .skip_key = "clip.vision.image_mean" }, -EBADMSG, "image_mean");
        check_bad(&(mk_mmproj_edit) { .skip_key = "clip.vision.attention.layer_norm_epsilon" }, -EBADMSG, "epsilon");
        check_bad(&(mk_mmproj_edit) { .skip_key = "clip.vision.projection_dim" }, -EBADMSG, "projection_dim is missing");
        check_bad(&(mk_mmproj_edit) { .skip_key = "general.architecture" }, -EBADMSG, "not a multimodal projector");
        check_bad(&(mk_mmproj_edit) { .skip_key = "clip.has_vision_encoder" }, -EOPNOTSUPP, "no vision encoder");
        check_bad(&(mk_mmproj_edit) { .projector = "gemma3nv" }, -EOPNOTSUPP, "MobileNet-V5");
        check_bad(&(mk_mmproj_edit) { .projector = "qwen2vl_merger" }, -EOPNOTSUPP, "\"qwen2vl_merger\" is not supported");
        check_bad(&(mk_mmproj_edit) { .extra_tensor = "v.pre_ln.weight" }, -EOPNOTSUPP, "v.pre_ln.weight");
        check_bad(&(mk_mmproj_edit) { .extra_tensor = "v.blk.0.ls1.weight" }, -EOPNOTSUPP, "v.blk.0.ls1.weight");

        /* truncated: the GGUF reader refuses it before we look inside */
        char path[512], err[256];
        make("gemma3-tiny", TYPE_F16, NULL, path, sizeof path);
        struct stat st;
        CHECK(stat(path, &st) == 0);
        CHECK(truncate(path, st.st_size - 100) == 0);
        vision_model *m = NULL;
        int r = vision_model_open_path(path, &m, err, sizeof err);
        printf("refused (%s): %s\n", strerror(-r), err);
        CHECK_EQ_INT(r, -EBADMSG);
        unlink(path);
}

int main(void) {
        CHECK(mkdtemp(dir));
        check_ref("gemma3-tiny", TYPE_F32, 0x8a88b419be8d85aeull, 5e-4);
        check_ref("gemma3-tiny", TYPE_F16, 0xc45a63643b944e14ull, 5e-3);
        check_ref("gemma3-tiny", TYPE_Q8_0, 0xabcaae4f2880731bull, 2e-2);
        check_ref("gemma3-tiny-sf2", TYPE_F32, 0x74d922e0d0c943b1ull, 5e-4);
        test_malformed();
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
        return 0;
}
