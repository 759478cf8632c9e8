#!/bin/bash
# The system unit's exposure (systemd-analyze security --offline) is at most
# 2.0, both units verify, and the unit starts sottod as the service user
# without capabilities.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || { echo "skipped: systemd-analyze is not installed"; exit 77; }
MAX=2.0
out=$(systemd-analyze security --offline=true --no-pager packaging/sottod.service 2>&1) ||
	fail "systemd-analyze security: $out"
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for sottod.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || fail "no exposure level in: $out"
echo "# exposure of packaging/sottod.service: $score (limit $MAX)"
printf '%s\n' "$out" | grep '✗' || true
awk -v s="$score" -v m="$MAX" 'BEGIN { exit !(s <= m) }' || fail "exposure $score is above $MAX"
# --threshold makes systemd-analyze itself fail above the limit (exposure x10).
systemd-analyze security --offline=true --threshold=20 --no-pager packaging/sottod.service > /dev/null ||
	fail "systemd-analyze --threshold=20 failed"

u=packaging/sottod.service
grep -q '^Type=notify$' $u || fail "not Type=notify"
grep -q '^User=sotto$' $u || fail "not User=sotto"
grep -q '^CapabilityBoundingSet=$' $u || fail "capabilities left in the bounding set"
grep -q '^NoNewPrivileges=yes$' $u || fail "NoNewPrivileges"
# The user the unit runs as is the one the sysusers entry makes and the bus policy lets own the name.
grep -q '^u sotto ' packaging/sotto.sysusers || fail "sysusers does not create sotto"
grep -q '<policy user="sotto">' dbus/org.sotto.Sotto1.conf || fail "bus policy is not for user sotto"
# Syntax of every unit (missing binaries and man pages are expected here).
for f in packaging/sottod.service packaging/sottod-user.service; do
	v=$(systemd-analyze verify --man=no "$f" 2>&1 | grep -v 'is not executable\|not found' || true)
	[ -z "$v" ] || fail "$f: $v"
done
echo PASS
