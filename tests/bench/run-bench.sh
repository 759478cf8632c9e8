#!/bin/sh
# `make bench`: generates models at real sizes with sotto-mkmodel into
# build/models/ and runs sotto-bench on them.
set -eu
BUILD=${BUILD:-build}
echo "bench: nothing to measure yet" >&2
