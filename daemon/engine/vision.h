/* SPDX-License-Identifier: MIT */
/* Vision towers from the reference's multimodal projector files ("mmproj"
 * GGUF, specs/vision-siglip.md): an image in, the soft-token embeddings the
 * text model takes in place of token embeddings out.
 *
 * Supported: Gemma 3 (clip.projector_type "gemma3": SigLIP ViT, 4x4 average
 * pool, soft-embedding RMSNorm, projection to the text hidden size).  Other
 * projector types (Gemma 3n's "gemma3nv" MobileNet-V5 included) are refused
 * with -EOPNOTSUPP and a sentence naming them.
 *
 * As for text models: the model is opaque and read-only (weights stay in
 * the mapped file; any number of contexts may use it), a context holds the
 * mutable buffers and threads of one encoder run at a time.
 *
 * Usage, with daemon/media preparing the pixels:
 *
 *   vision_model_open_fd(fd, &vm, err, sizeof err);
 *   VisionPreprocessParams pp; vision_preprocess_params_gemma3(&pp);
 *   pp.image_size = vision_model_image_size(vm);
 *   vision_model_image_norm(vm, pp.mean, pp.std);
 *   vision_preprocess(img, &pp, &in);            // 1 + pan-and-scan crops
 *   vision_ctx_new(vm, n_threads, &vc);
 *   for each image i of in:
 *           vision_encode(vc, vision_input_image(in, i), in->image_size, in->image_size,
 *                         emb + i * vision_model_n_tokens(vm) * vision_model_n_embd_out(vm));
 *
 * then place the embeddings in the prompt between <start_of_image> and
 * <end_of_image> with engine_session_eval_embd(s, emb, 256, true, ...)
 * (engine.h; specs/vision-siglip.md §7), after checking that
 * vision_model_n_embd_out() equals engine_model_n_embd(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vision_model vision_model;
typedef struct vision_ctx vision_ctx;

/* ---- model ---- */

/* Open and validate an mmproj file: every key the encoder uses is checked
 * for type and range, every tensor's shape and type against the metadata,
 * before anything is computed.  -EBADMSG (malformed), -EOPNOTSUPP (a
 * projector or tensor type we do not run), -ENOMEM; err gets a sentence.
 * The fd is not taken: the mapping outlives it. */
int vision_model_open_fd(int fd, vision_model **ret, char *err, size_t errlen);
int vision_model_open_path(const char *path, vision_model **ret, char *err, size_t errlen);
/* From a buffer the caller keeps alive while the model lives (fuzzing). */
int vision_model_open_memory(const void *data, size_t size, vision_model **ret, char *err, size_t errlen);
void vision_model_free(vision_model *m);

const char *vision_model_projector(const vision_model *m); /* "gemma3" */
/* The side of the square input image, in pixels (896 for Gemma 3). */
uint32_t vision_model_image_size(const vision_model *m);
/* Normalisation the file asks for: v = (u8 / 255 - mean[c]) / std[c]. */
void vision_model_image_norm(const vision_model *m, float mean[3], float std[3]);
/* Soft tokens one image gives (256 for Gemma 3) and their width (the text
 * model's hidden size; check it against the text model before use). */
int32_t vision_model_n_tokens(const vision_model *m);
int32_t vision_model_n_embd_out(const vision_model *m);
/* Encoder size, for messages and benchmarks. */
int32_t vision_model_n_layer(const vision_model *m);
int32_t vision_model_n_embd(const vision_model *m);
uint64_t vision_model_n_params(const vision_model *m);

/* ---- encoder runs ---- */

typedef bool (*vision_abort_fn)(void *userdata); /* true: stop now */

/* n_threads: 0 = number of online CPUs.  Buffers for one image (about
 * 220 MiB at Gemma 3's size, with 2 threads) are allocated here, once: keep
 * a context only while images are coming. */
int vision_ctx_new(const vision_model *m, int n_threads, vision_ctx **ret);
void vision_ctx_free(vision_ctx *c);
/* Polled between layers: vision_encode then returns -ECANCELED. */
void vision_ctx_set_abort(vision_ctx *c, vision_abort_fn fn, void *userdata);

/* pixels: planar CHW float32, 3 x height x width, already resized and
 * normalised (daemon/media/image-preprocess.h); width and height must equal
 * vision_model_image_size().  out: vision_model_n_tokens() rows of
 * vision_model_n_embd_out() floats, row t = soft token t in reading order
 * (t = row * side + column of the pooled grid).  These are raw input
 * embeddings: Gemma does not scale them by sqrt(n_embd).
 * -EINVAL for a wrong size, -ECANCELED when the abort callback fired. */
int vision_encode(vision_ctx *c, const float *pixels, uint32_t width, uint32_t height, float *out);
