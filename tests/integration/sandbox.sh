#!/bin/bash
# sotto-test: system-wide
# The worker, once set up, cannot open a file or a socket, create a file or
# execute a program: a worker built with test hooks tries each after its
# sandbox is in place.  Also checks its seccomp mode, no_new_privs, empty
# capabilities and, as root, that it no longer runs as root.
. "$(dirname "$0")/lib/common.sh"
svc_setup sandbox
svc_user
rm -f /tmp/sotto-escape
"$BUILD/tests/sotto-test-worker" "$BUILD/tests/sotto-worker-fake" "$(svc_fake_model)" "$SVC_USER" ||
	fail "sandbox of the worker (on the engine test double)"
if [ -x "$BUILD/tests/sotto-worker-testhooks" ] && [ -f "$SHARED/models/stories260K.gguf" ]; then
	"$BUILD/tests/sotto-test-worker" "$BUILD/tests/sotto-worker-testhooks" "$SHARED/models/stories260K.gguf" \
		"$SVC_USER" || fail "sandbox of the worker with the real engine"
else
	note "the real engine's worker is not built yet: only the test double's run was checked"
fi
echo PASS
