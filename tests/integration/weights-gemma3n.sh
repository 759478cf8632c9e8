#!/bin/bash
# A Gemma 3n model through the worker: its weights are copied into the
# shared derived-weights memfd, all but the per-layer-embedding table,
# which stays in the model file (daemon/engine/weights-copy.h):
# - the memfd holds the file's bytes without the table: its allocated size
#   (st_blocks of the fd sottod keeps) is the file's minus the table's, give
#   or take the arena's 64 KiB header and the pages at the table's edges;
# - the worker answers as sotto-engine does from the plain file mapping
#   (SOTTO_WEIGHTS=map), greedy, token for token;
# - a worker restarted after SIGKILL maps the same memfd, adds nothing to
#   it, and answers the same.
. "$(dirname "$0")/lib/common.sh"
svc_setup weights-gemma3n
E="$BUILD/sotto-engine"
[ -x "$BUILD/sotto-mkmodel" ] && [ -x "$E" ] && [ -x "$BUILD/sotto-worker" ] && [ -x "$BUILD/sotto-bench-mem" ] ||
	skip "sotto-mkmodel, sotto-engine, sotto-bench-mem or sotto-worker not built"
command -v jq >/dev/null || skip "jq is not installed"

M="$SVC_DIR/gemma3n-tiny.gguf"
svc_tiny_gemma3n 4
# the file's and the table's sizes in MiB (0.1 MiB steps)
SOTTO_WEIGHTS=map "$BUILD/sotto-bench-mem" -t 1 -c 64 -b 32 -n 1 --json "$M" > "$SVC_DIR/mem.json" ||
	fail "sotto-bench-mem: exit $?"
file_kib=$(( $(stat -c %s "$M") >> 10 ))
ple_kib=$(jq '.ple_mib * 1024 | floor' "$SVC_DIR/mem.json")
[ "$ple_kib" -gt 1024 ] || fail "the per-layer-embedding table is only $ple_kib KiB"

svc_bus session
svc_start_sottod --model "$M" --worker "$BUILD/sotto-worker" --threads 1 --context 512
S() { "$SOTTO" --address "$BUS_ADDRESS" "$@"; }
grep -q "built a shared arena" "$SVC_DIR/sottod.log" || fail "the worker built no shared arena: $(cat "$SVC_DIR/sottod.log")"

# The memfd's allocated KiB, from the fd sottod keeps to hand it on.
memfd_kib() {
	local fd
	fd=$(ls -l "/proc/$SOTTOD_PID/fd" | awk '/memfd:sotto-weights/ {print $9; exit}')
	[ -n "$fd" ] || fail "sottod holds no sotto-weights memfd"
	echo $(( $(stat -L -c '%b * %B' "/proc/$SOTTOD_PID/fd/$fd") >> 10 ))
}
held=$(memfd_kib)
want=$((file_kib - ple_kib))
note "memfd: $held KiB allocated; file $file_kib KiB, per-layer table $ple_kib KiB, so $want KiB expected"
# +64 KiB header, a page at each edge of the table, 0.1 MiB rounding of the table's size
[ "$held" -le $((want + 64 + 8 + 103)) ] || fail "the memfd holds $held KiB: the table was copied too (want about $want)"
[ "$held" -ge $((want - 103)) ] || fail "the memfd holds $held KiB, less than the weights without the table ($want)"
# GetStatistics reports that memory, not the memfd's size with the hole.
stat_kib=$(( $(svc_stat weights-shared-bytes) >> 10 ))
[ "$stat_kib" = "$held" ] || fail "weights-shared-bytes says $stat_kib KiB, the memfd holds $held KiB"

ask() { S --json ask --max-tokens 12 --temperature 0 "$1" | jq -c '[.text, .statistics["generated-tokens"]]'; }
engine() { SOTTO_WEIGHTS=map "$E" -t 1 chat "$M" 12 "$1" | jq -c '[.text, .["generated-tokens"]]'; }
Q="Tell me about the weather"
got=$(ask "$Q") || fail "sotto ask: exit $?"
want=$(engine "$Q") || fail "sotto-engine chat: exit $?"
note "ask: $got"
[ "$got" = "$want" ] || fail "the worker answers '$got', the file mapping '$want'"

# ---- a restarted worker maps the same memfd ----
w1=$(worker_pid)
ino1=$(grep 'memfd:sotto-weights' "/proc/$w1/maps" | awk '{print $5}' | sort -u)
[ -n "$ino1" ] || fail "worker $w1 maps no sotto-weights memfd"
kill -9 "$w1"
i=0; while w2=$(worker_pid); [ -z "$w2" ] || [ "$w2" = "$w1" ] || [ "$w2" = 0 ]; do
	i=$((i+1)); [ $i -gt 200 ] && fail "no new worker"; sleep 0.05
done
svc_wait_ready 20
ino2=$(grep 'memfd:sotto-weights' "/proc/$w2/maps" | awk '{print $5}' | sort -u)
[ "$ino2" = "$ino1" ] || fail "the restarted worker maps memfd '$ino2', the first one mapped '$ino1'"
grep -q "mapped the shared arena" "$SVC_DIR/sottod.log" || fail "the restarted worker did not map the shared arena"
[ "$(memfd_kib)" = "$held" ] || fail "the memfd grew: $(memfd_kib) KiB, was $held"
[ "$(ask "$Q")" = "$got" ] || fail "the restarted worker answers differently"
note "restarted worker $w2 maps the same memfd (inode $ino2) and answers the same"
svc_stop_sottod
echo PASS
