/* SPDX-License-Identifier: MIT */
/* Usage accounting per application: counts only (requests, prompt tokens,
 * generated tokens, audio seconds, images), never any prompt or answer
 * content.  Kept in STATE_DIR/usage, a small text file replaced atomically
 * (temporary file, fsync, rename, fsync of the directory), written at most
 * once a second while something changed and on exit, so a SIGKILL loses at
 * most the last second. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct UsageCounters {
        uint64_t requests;
        uint64_t prompt_tokens;
        uint64_t generated_tokens;
        double audio_seconds;
        uint64_t images;
} UsageCounters;

typedef struct UsageEntry {
        uid_t uid;
        const char *app_id;
        const char *kind; /* identity_kind_to_string() */
        const UsageCounters *c;
} UsageEntry;

/* Serialization (pure, unit-tested).  One line per entry:
 *   uid kind requests prompt generated audio images app-id
 * with the app ID percent-escaped (it may be an executable path). */
int usage_format(FILE *f, const UsageEntry *entries, size_t n);
/* Calls add() for every valid line; a malformed line is skipped with a
 * warning (one bad line must not lose everyone's usage). Returns the number
 * of entries read or -errno. */
typedef int (*usage_add_t)(void *userdata, uid_t uid, const char *kind, const char *app_id, const UsageCounters *c);
int usage_parse(const char *text, usage_add_t add, void *userdata);

/* Atomic replacement of dir/usage with the entries. */
int usage_save(const char *dir, const UsageEntry *entries, size_t n);
/* Reads dir/usage; a missing file is 0 entries. */
int usage_load(const char *dir, usage_add_t add, void *userdata);
