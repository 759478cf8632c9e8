/* SPDX-License-Identifier: MIT */
/* Model and session set-up shared by the engine's golden-data tests: each
 * fails the test with the engine's message instead of returning an error. */
#pragma once

#include "engine.h"
#include "test.h"

static inline engine_model *test_load_model(const char *path, int n_threads) {
        char err[512] = "";
        engine_model_params mp;
        engine_model *m = NULL;

        engine_model_default_params(&mp);
        mp.n_threads = n_threads;
        int r = engine_model_load_path(path, &mp, &m, err, sizeof err);
        CHECK_MSG(r >= 0, "%s: %s", path, err);
        return m;
}

static inline engine_session *test_new_session(const engine_model *m, int32_t n_ctx) {
        engine_session_params sp;
        engine_session *s = NULL;
        char err[512] = "";

        engine_session_default_params(&sp);
        sp.n_ctx = n_ctx;
        int r = engine_session_new(m, &sp, &s, err, sizeof err);
        CHECK_MSG(r >= 0, "session: %s", err);
        return s;
}
