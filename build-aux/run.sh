#!/bin/sh
# `make run`: the main job.  Until the service lands, this generates text with
# the engine from the default model: ../shared/models/stories260K.gguf when
# present, else the first GGUF in ~/.local/share/sotto/models/ or
# /var/lib/sotto/models/.
set -eu
BUILD=${BUILD:-build}
SHARED=${SHARED:-../shared}

model=""
for m in "$SHARED/models/stories260K.gguf" "$HOME"/.local/share/sotto/models/*.gguf /var/lib/sotto/models/*.gguf; do
	if [ -f "$m" ]; then model=$m; break; fi
done
if [ -z "$model" ]; then
	echo "sotto: no model found. Put a GGUF file (for example a Gemma 3n E2B Q4_K_M download)" >&2
	echo "       into ~/.local/share/sotto/models/ or /var/lib/sotto/models/." >&2
	exit 1
fi
echo "sotto: model $model" >&2
exec "$BUILD/sotto-engine" generate "$model" "Once upon a time" 200
