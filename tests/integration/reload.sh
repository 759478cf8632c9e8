#!/bin/bash
# SIGHUP while answers are being generated: the model file is opened again
# and a new worker loads it; the requests in flight finish on the old model
# (their text is the old model's, complete, no error), new ones get the new
# model, and the old worker exits once idle.
. "$(dirname "$0")/lib/common.sh"
svc_setup reload
svc_bus session
W="$BUILD/tests/sotto-worker-fake"
mk() { printf 'SOTTO-FAKE-MODEL\nn_ctx=1024\nstep_usec=%s\neos_every=0\nsalt=%s\nname=%s\n' "$1" "$2" "$3"; }
mk 10000 1 model-A > "$SVC_DIR/m.model"
chmod 644 "$SVC_DIR/m.model"
svc_start_sottod --model "$SVC_DIR/m.model" --worker "$W"
S() { "$SOTTO" --address "$BUS_ADDRESS" "$@"; }
name() { busctl --address="$BUS_ADDRESS" get-property org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service ModelName; }

# References: what each model answers alone.
a_ref=$(S ask --max-tokens 60 --temperature 0 old question)
old_worker=$(worker_pid)

# A long answer in flight on model A ...
"$SOTTO" --address "$BUS_ADDRESS" --json ask --max-tokens 60 --temperature 0 old question > "$SVC_DIR/old.json" 2> "$SVC_DIR/old.err" &
old=$!
sleep 0.2
# ... while the file is replaced by model B and sottod is told.
mk 1000 2 model-B > "$SVC_DIR/m.new"
chmod 644 "$SVC_DIR/m.new"
mv "$SVC_DIR/m.new" "$SVC_DIR/m.model"
kill -HUP "$SOTTOD_PID"
svc_wait_ready 10
i=0; while [ "$(name)" != 's "model-B"' ]; do i=$((i+1)); [ $i -gt 100 ] && fail "model name: $(name)"; sleep 0.05; done
b_new=$(S ask --max-tokens 60 --temperature 0 old question) || fail "request on the new model"
[ "$b_new" != "$a_ref" ] || fail "the new request was answered by the old model"
kill -0 "$old" 2>/dev/null || fail "the old request ended before the new model answered (test too fast)"
rc=0; wait $old || rc=$?
[ $rc = 0 ] || fail "the request in flight failed: $(cat "$SVC_DIR/old.err")"
grep -q "\"text\":\"$(printf '%s' "$a_ref" | sed 's/[.[\*^$/]/\\&/g')\"" "$SVC_DIR/old.json" ||
	fail "the request in flight did not get model A's answer: $(cat "$SVC_DIR/old.json") vs '$a_ref'"
note "in-flight request finished on model A; new request answered by model B"
# The old worker retires.
i=0; while kill -0 "$old_worker" 2>/dev/null; do i=$((i+1)); [ $i -gt 100 ] && fail "old worker $old_worker still running"; sleep 0.05; done
[ "$(svc_stat worker-crashes)" = 0 ] || fail "the retirement counted as a crash"
svc_stop_sottod
echo PASS
