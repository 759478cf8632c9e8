#!/bin/sh
# `make bench`: generates models at real sizes with sotto-mkmodel into
# build/models/ and runs sotto-bench on them.
set -eu
BUILD=${BUILD:-build}
echo "bench: nothing to measure yet" >&2
# The service: sottod ready time and PSS with 4 chats on the 1B Q4_0 model.
BUILD=$BUILD tests/bench/service.sh
