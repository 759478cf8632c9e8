/* SPDX-License-Identifier: MIT */
/* sotto dictate and sotto transcribe (sotto-cli-speech.c). */
#pragma once

#include <stdbool.h>

#include "client-lib/sotto.h"

extern sotto_speech_options speech_arg;
extern bool speech_once;

int cmd_dictate(sotto *s, bool json, int argc, char **argv);
int cmd_transcribe(sotto *s, bool json, int argc, char **argv);
/* sotto-cli.c: the exit code for an error (sotto(1)). */
int cli_exit_code(const sd_bus_error *e, int r);
