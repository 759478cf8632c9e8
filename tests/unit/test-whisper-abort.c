/* SPDX-License-Identifier: MIT */
/* Aborting a transcription midway (whisper_state_set_abort): the abort
 * callback is consulted before every encoder layer, before the
 * cross-attention K/V and before every decoder call, and the first true
 * stops the call there with -ECANCELED.  Checked by ordering, not time:
 *   - a run with a counting callback gives the number of checks N of a
 *     whole transcription (encoder: 1 + layers + 1; then one per decode);
 *   - for k in the encoder, at the first decoder call and deep into
 *     decoding, the callback answering true at its k-th call makes
 *     whisper_transcribe return -ECANCELED after exactly k calls: nothing
 *     runs past the check that said stop;
 *   - an aborted encode leaves no window encoded (no decoding on half the
 *     cross-attention K/V);
 *   - the same state, without the abort, then gives the tokens of an
 *     uninterrupted run. */
#include <errno.h>

#include "macro.h"
#include "wav.h"
#include "whisper.h"
#include "whisper-test-util.h"

typedef struct counter {
        int calls;
        int stop_at; /* 0: never */
} counter;

static bool count_cb(void *userdata) {
        counter *c = userdata;
        c->calls++;
        return c->stop_at > 0 && c->calls >= c->stop_at;
}

static void run(whisper_state *s, const float *pcm, size_t n, counter *c, int expect_r, whisper_result *res) {
        whisper_params p;
        whisper_default_params(&p);
        p.language = "auto"; /* detection's decode is checked too */
        p.max_tokens = 48;
        c->calls = 0;
        whisper_state_set_abort(s, c->stop_at >= 0 ? count_cb : NULL, c);
        int r = whisper_transcribe(s, &p, pcm, n, res);
        CHECK_MSG(r == expect_r, "whisper_transcribe: %d, want %d (stop at %d, %d calls)", r, expect_r, c->stop_at,
                  c->calls);
}

int main(void) {
        const char *args[] = { "--shape", "tiny", "--type", "f16", "--seed", "1", NULL };
        _cleanup_free_ char *path = wt_make_model("tiny.bin", args);
        char err[256];
        size_t size, n;
        float *pcm;

        void *wav = test_read_file("tests/data/whisper/speech.wav", &size);
        if (!wav) {
                printf("skipped: tests/data/whisper/speech.wav not found (run from the top of the source tree)\n");
                return EXIT_TEST_SKIP;
        }
        CHECK_MSG(wav_decode(wav, size, 16000, &pcm, &n, err, sizeof err) == 0, "%s", err);
        free(wav);

        whisper_model *m = NULL;
        whisper_state *s = NULL;
        CHECK_MSG(whisper_model_load_path(path, &m, err, sizeof err) == 0, "%s", err);
        whisper_state_params sp;
        whisper_state_default_params(&sp);
        sp.n_threads = 2;
        sp.audio_ctx = 512; /* a shorter window: the same code, faster */
        CHECK_MSG(whisper_state_new(m, &sp, &s, err, sizeof err) == 0, "%s", err);
        const int n_layer = whisper_model_hparams(m)->n_audio_layer;

        /* The whole run, counting the checks. */
        counter c = { 0, 0 };
        whisper_result ref;
        run(s, pcm, n, &c, 0, &ref);
        const int total = c.calls;
        CHECK(ref.n_tokens > 0);
        /* detection: encode (2 + layers), decode [sot]; then the prompt and
         * one decode per token but the last (the window is encoded once) */
        const int enc_checks = 2 + n_layer;
        CHECK_MSG(total >= enc_checks + 2, "only %d abort checks", total);
        printf("whole run: %d abort checks (%d in the encoder), %d tokens\n", total, enc_checks, ref.n_tokens);

        int stops[] = { 1, 2, enc_checks - 1, enc_checks, enc_checks + 1, enc_checks + 2, total / 2, total };
        for (size_t i = 0; i < ELEMENTSOF(stops); i++) {
                whisper_result res;
                c = (counter){ 0, stops[i] };
                run(s, pcm, n, &c, -ECANCELED, &res);
                CHECK_MSG(c.calls == stops[i], "stop at check %d: %d checks were made", stops[i], c.calls);
                if (stops[i] <= enc_checks) {
                        /* stopped inside the encoder: nothing is encoded */
                        CHECK(whisper_encoder_output(s, NULL, NULL) == NULL);
                        int32_t tok = whisper_model_special(m)->sot;
                        whisper_state_set_abort(s, NULL, NULL);
                        CHECK_EQ_INT(whisper_decode(s, &tok, 1, 0, NULL), -ENODATA);
                }
                whisper_result_clear(&res);
                printf("stopped at check %d of %d: -ECANCELED after exactly %d checks\n", stops[i], total, c.calls);
        }

        /* The state serves on: the same tokens as the first run. */
        c = (counter){ 0, 0 };
        whisper_result again;
        run(s, pcm, n, &c, 0, &again);
        CHECK_EQ_INT(again.n_tokens, ref.n_tokens);
        for (int32_t i = 0; i < ref.n_tokens; i++)
                CHECK_EQ_INT(again.tokens[i].id, ref.tokens[i].id);
        CHECK_EQ_INT(c.calls, total);
        printf("after the aborts: the same %d tokens, %d checks\n", again.n_tokens, c.calls);

        whisper_result_clear(&again);
        whisper_result_clear(&ref);
        whisper_state_free(s);
        whisper_model_free(m);
        free(pcm);
        unlink(path);
        wt_cleanup_tmpdir();
        return 0;
}
