#!/bin/bash
# dbus/org.sotto.Sotto1.xml is the source of truth: the running daemon must
# introspect to exactly its methods, arguments (names, types, directions),
# properties (types, access, change signals) and signals.
. "$(dirname "$0")/lib/common.sh"
svc_setup api-xml
svc_bus session
# A speech model, so that a transcription object exists to introspect.
svc_tiny_whisper
svc_start_sottod $(svc_model_args 2000) --whisper-model "$SVC_DIR/tiny.bin"

awk -f "$ROOT/tests/integration/lib/xml-members.awk" "$ROOT/dbus/org.sotto.Sotto1.xml" | sort > "$SVC_DIR/want"
{
	busctl --address="$BUS_ADDRESS" call org.sotto.Sotto1 /org/sotto/Sotto1 \
		org.freedesktop.DBus.Introspectable Introspect | sed 's/\\n/\n/g'
	"$BUILD/tests/sotto-test-client" "$BUS_ADDRESS" introspect-chat || fail "chat introspection"
	"$BUILD/tests/sotto-test-client" "$BUS_ADDRESS" introspect-dictation || fail "dictation introspection"
} | awk -f "$ROOT/tests/integration/lib/xml-members.awk" | sort > "$SVC_DIR/got"
[ "$(wc -l < "$SVC_DIR/want")" -ge 15 ] || fail "too few members parsed from the XML"
if ! diff -u "$SVC_DIR/want" "$SVC_DIR/got"; then
	fail "the daemon's vtables and dbus/org.sotto.Sotto1.xml disagree (- XML, + daemon)"
fi
note "$(wc -l < "$SVC_DIR/want") members agree"
xmllint --noout "$ROOT/dbus/org.sotto.Sotto1.xml" "$ROOT/dbus/org.sotto.Sotto1.conf" || fail "xmllint"
echo "PASS"
