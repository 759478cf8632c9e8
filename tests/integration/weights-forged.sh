#!/bin/bash
# Derived weights that do not check out are never used (the worker built
# with test hooks plays the part of a broken or hostile peer):
# - SOTTO_TEST_WEIGHTS=skew: the restarted worker checks the memfd sottod
#   offers against other file identities: it refuses it, builds its own,
#   and sottod keeps the new one; the answers stay the same;
# - SOTTO_TEST_WEIGHTS=unsealed: a worker hands sottod a writable memfd:
#   sottod refuses it (not sealed), kills that worker for breaking the
#   protocol, keeps nothing, and stays up.
. "$(dirname "$0")/lib/common.sh"
svc_setup weights-forged
svc_bus session
MODEL="$SHARED/models/stories260K.gguf"
[ -f "$MODEL" ] || skip "no $MODEL (set SHARED to the golden data)"
WORKER="$BUILD/tests/sotto-worker-testhooks"
[ -x "$WORKER" ] || skip "no $WORKER"
svc_tiny_whisper
ARGS="--model $MODEL --whisper-model $SVC_DIR/tiny.bin --worker $WORKER --threads 1"
memfd_of() { grep 'memfd:sotto-weights' "/proc/$1/maps" | awk '{print $5}' | sort -u; }
ask() { "$SOTTO" --address "$BUS_ADDRESS" ask --temperature 0 --max-tokens 16 "Once upon a time"; }

# ---- a memfd for other files: refused by the worker, rebuilt ----
SOTTO_TEST_WEIGHTS=skew svc_start_sottod $ARGS
w1=$(worker_pid)
ino1=$(memfd_of "$w1")
[ -n "$ino1" ] || fail "worker $w1 maps no derived-weights memfd"
[ "$(svc_stat weights-builds)" = 1 ] || fail "weights-builds $(svc_stat weights-builds) after the first worker"
ref=$(ask) || fail "ask"
kill -9 "$w1"
i=0; while w2=$(worker_pid); [ -z "$w2" ] || [ "$w2" = "$w1" ] || [ "$w2" = 0 ]; do
	i=$((i+1)); [ $i -gt 200 ] && fail "no new worker"; sleep 0.05
done
svc_wait_ready 20
grep -q "test hook: the offered weights arena was refused (other model files)" "$SVC_DIR/sottod.log" ||
	fail "the worker did not refuse the memfd of other files"
[ "$(svc_stat weights-handed)" = 1 ] || fail "weights-handed $(svc_stat weights-handed)"
i=0; while [ "$(svc_stat weights-builds)" != 2 ]; do
	i=$((i+1)); [ $i -gt 100 ] && fail "weights-builds $(svc_stat weights-builds): the rebuilt memfd was not kept"; sleep 0.05
done
ino2=$(memfd_of "$w2")
[ -n "$ino2" ] && [ "$ino2" != "$ino1" ] || fail "worker $w2 maps memfd '$ino2' (first: '$ino1'), want a new one"
[ "$(ask)" = "$ref" ] || fail "the worker with rebuilt weights answers differently"
note "worker $w2 refused the offered memfd (inode $ino1), built inode $ino2, sottod keeps it; same answer"
svc_stop_sottod

# ---- an unsealed memfd: refused by sottod ----
svc_user
SOTTO_TEST_WEIGHTS=unsealed "$SOTTOD" --address "$BUS_ADDRESS" --user "$SVC_USER" $ARGS >> "$SVC_DIR/sottod2.log" 2>&1 &
SOTTOD_PID=$!
PIDS="$SOTTOD_PID $PIDS"
i=0; while ! grep -q "sent derived weights that are not a sealed memfd" "$SVC_DIR/sottod2.log"; do
	i=$((i+1)); [ $i -gt 400 ] && fail "sottod took an unsealed memfd: $(tail -n 20 "$SVC_DIR/sottod2.log")"; sleep 0.05
done
i=0; while ! grep -q "because it broke the protocol" "$SVC_DIR/sottod2.log"; do
	i=$((i+1)); [ $i -gt 200 ] && fail "the worker that sent it was not killed: $(tail -n 20 "$SVC_DIR/sottod2.log")"
	sleep 0.05
done
kill -0 "$SOTTOD_PID" || fail "sottod died"
[ "$(svc_stat weights-shared-bytes)" = 0 ] || fail "sottod keeps $(svc_stat weights-shared-bytes) bytes of unsealed weights"
[ "$(svc_stat weights-builds)" = 0 ] || fail "weights-builds $(svc_stat weights-builds)"
ready=$(grep -c "ready:" "$SVC_DIR/sottod2.log" || true)
[ "$ready" = 0 ] || fail "a worker that sent an unsealed memfd got to serve"
note "unsealed memfd refused: $(grep -m1 'not a sealed memfd' "$SVC_DIR/sottod2.log")"
svc_stop_sottod
echo PASS
