#!/bin/bash
# `make install DESTDIR=...` installs exactly packaging/install-manifest.txt
# (modes included), follows PREFIX and the directory variables in the
# installed text files, and `make uninstall` removes it all again.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
fail() { echo "FAIL: $*" >&2; exit 1; }
# Outside build/: the top Makefile reads every build/**/*.d, and the staged
# tree has dbus-1/system.d.
work=$(mktemp -d "${TMPDIR:-/tmp}/sotto-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/stage
M() { make --no-print-directory -s BUILD="$BUILD" "$@"; }
listing() { (cd "$1" && find . ! -type d -printf '%m %y %P\n' | LC_ALL=C sort -k3); }

M install PREFIX=/usr DESTDIR="$stage" > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "make install"; }
grep -v '^#' packaging/install-manifest.txt > "$work/want"
listing "$stage" > "$work/got"
diff -u "$work/want" "$work/got" || fail "installed files differ from packaging/install-manifest.txt (+ is new)"
echo "# $(wc -l < "$work/got") files as in the manifest"

# What the installed files say about the install locations.
grep -q '^ExecStart=/usr/libexec/sotto/sottod ' "$stage/usr/lib/systemd/system/sottod.service" || fail "unit ExecStart"
grep -q '^libdir=/usr/lib$' "$stage/usr/lib/pkgconfig/libsotto.pc" || fail "pkg-config libdir"
grep -q '^SystemdService=sottod.service$' "$stage/usr/share/dbus-1/system-services/org.sotto.Sotto1.service" ||
	fail "system activation file without SystemdService="
if readelf -d "$stage/usr/bin/sotto" | grep -q 'RUNPATH\|RPATH'; then fail "installed sotto has a run path"; fi
readelf -d "$stage/usr/bin/sotto" | grep -q 'NEEDED.*libsotto.so.1' || fail "sotto does not link libsotto.so.1"
[ "$(readlink "$stage/usr/lib/libsotto.so")" = libsotto.so.1 ] || fail "libsotto.so link"

M uninstall PREFIX=/usr DESTDIR="$stage" > "$work/uninstall.log" 2>&1 || fail "make uninstall"
left=$(cd "$stage" && find . ! -type d)
[ -z "$left" ] || fail "left after uninstall: $left"

# Other directory variables.
stage2=$work/stage2
M install PREFIX=/opt/sotto LIBEXECDIR=/opt/sotto/lib/exec SYSCONFDIR=/opt/etc DESTDIR="$stage2" \
	> "$work/install2.log" 2>&1 || fail "make install PREFIX=/opt/sotto"
for f in opt/sotto/lib/exec/sotto/sottod opt/sotto/lib/exec/sotto/sotto-worker opt/sotto/lib/exec/sotto/sotto-capture \
	opt/sotto/bin/sotto \
	opt/sotto/lib/libsotto.so.1 opt/etc/sotto/sotto.conf opt/sotto/share/dbus-1/system.d/org.sotto.Sotto1.conf; do
	[ -e "$stage2/$f" ] || fail "PREFIX=/opt/sotto: no $f"
done
grep -q '^ExecStart=/opt/sotto/lib/exec/sotto/sottod --system --config /opt/etc/sotto/sotto.conf$' \
	"$stage2/opt/sotto/lib/systemd/system/sottod.service" || fail "unit does not follow LIBEXECDIR/SYSCONFDIR"
grep -q '^Exec=/opt/sotto/lib/exec/sotto/sottod --session$' "$stage2/opt/sotto/share/dbus-1/services/org.sotto.Sotto1.service" ||
	fail "session activation file does not follow LIBEXECDIR"
grep -q '^prefix=/opt/sotto$' "$stage2/opt/sotto/lib/pkgconfig/libsotto.pc" || fail "pkg-config prefix"
M uninstall PREFIX=/opt/sotto LIBEXECDIR=/opt/sotto/lib/exec SYSCONFDIR=/opt/etc DESTDIR="$stage2" > /dev/null 2>&1
[ -z "$(cd "$stage2" && find . ! -type d)" ] || fail "PREFIX=/opt/sotto: files left after uninstall"
echo PASS
