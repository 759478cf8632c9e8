#!/bin/bash
# Every man page in the tree (man/, packaging/) passes mandoc -Tlint without
# warnings; every XML file (dbus/, polkit/, packaging/) passes xmllint; and
# the system bus policy lets only the service user own the name and opens
# only destination-bound org.sotto.Sotto1 calls to everyone else.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v mandoc >/dev/null || { echo "skipped: mandoc is not installed"; exit 77; }
command -v xmllint >/dev/null || { echo "skipped: xmllint is not installed"; exit 77; }

mans=$(ls man/*.[1-8] packaging/*.[1-8] 2>/dev/null)
[ -n "$mans" ] || fail "no man pages"
for m in $mans; do
	out=$(mandoc -Tlint -W warning "$m" 2>&1) || true
	[ -z "$out" ] || fail "mandoc $m: $out"
done
echo "# $(echo $mans | wc -w) man pages clean"

xmls=$(ls dbus/*.xml dbus/*.conf polkit/*.policy polkit/*.xml packaging/*.xml 2>/dev/null || true)
for x in $xmls; do xmllint --noout "$x" || fail "xmllint $x"; done
echo "# $(echo $xmls | wc -w) XML files well-formed"

# Every program installed has a man page; so has the configuration file.
for p in sotto.1 sottod.8 libsotto.3 sotto.conf.5; do
	[ -f man/$p ] || [ -f packaging/$p ] || fail "no man page $p"
done

# The bus policy.
pol=dbus/org.sotto.Sotto1.conf
owners=$(xmllint --xpath '//allow[@own]/../@user' "$pol" 2>/dev/null | tr -d ' ')
[ "$owners" = 'user="sotto"' ] || fail "own allowed for: ${owners:-nobody} (want only user sotto)"
[ "$(xmllint --xpath 'count(//allow[@own or @own_prefix])' "$pol")" = 1 ] || fail "more than one own rule"
n=$(xmllint --xpath 'count(//allow[@send_interface or @send_member or @send_path or @send_type][not(@send_destination)])' "$pol")
[ "$n" = 0 ] || fail "$n send rules without send_destination"
n=$(xmllint --xpath 'count(//allow[@send_destination][@send_destination!="org.sotto.Sotto1"])' "$pol")
[ "$n" = 0 ] || fail "$n send rules for other destinations"
for i in $(xmllint --xpath '//allow/@send_interface' "$pol" | sed 's/send_interface="\([^"]*\)"/\1/g'); do
	case $i in
	org.sotto.Sotto1.*|org.freedesktop.DBus.Introspectable|org.freedesktop.DBus.Peer) ;;
	org.freedesktop.DBus.Properties) ;;
	*) fail "policy opens interface $i" ;;
	esac
done
# Properties only for reading.
n=$(xmllint --xpath 'count(//allow[@send_interface="org.freedesktop.DBus.Properties"][not(@send_member="Get" or @send_member="GetAll")])' "$pol")
[ "$n" = 0 ] || fail "Properties rule beyond Get/GetAll"
n=$(xmllint --xpath 'count(//allow[@send_destination="org.sotto.Sotto1"][not(@send_interface)])' "$pol")
[ "$n" = 0 ] || fail "$n rules open every interface of org.sotto.Sotto1"
echo PASS
