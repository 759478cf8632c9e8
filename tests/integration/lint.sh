#!/bin/bash
# Data files of the service: man pages pass mandoc -Tlint without warnings,
# XML files (API, bus policy) pass xmllint.
. "$(dirname "$0")/lib/common.sh"
command -v mandoc >/dev/null || skip "mandoc is not installed"
command -v xmllint >/dev/null || skip "xmllint is not installed"
out=$(mandoc -Tlint -W warning "$ROOT"/man/sottod.8 "$ROOT"/man/sotto.1 "$ROOT"/man/libsotto.3 2>&1) || true
[ -z "$out" ] || fail "mandoc: $out"
xmllint --noout "$ROOT"/dbus/*.xml "$ROOT"/dbus/*.conf || fail "xmllint"
echo PASS
