#!/bin/bash
# polkit/org.sotto.policy is valid against polkit's DTD, declares exactly the
# actions sottod asks about (daemon/sottod/authorize.h), with the documented
# defaults, and names as action owner the user the service runs as (without
# that, polkitd refuses CheckAuthorization from a non-root sottod).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v xmllint >/dev/null || { echo "skipped: xmllint is not installed"; exit 77; }
pol=polkit/org.sotto.policy
dtd=/usr/share/polkit-1/policyconfig-1.dtd
if [ -f "$dtd" ]; then
	xmllint --noout --nonet --dtdvalid "$dtd" "$pol" || fail "$pol is not valid against $dtd"
else
	echo "# $dtd absent (polkitd not installed): well-formedness only"
	xmllint --noout --nonet "$pol" || fail "xmllint $pol"
fi

want=$(grep -o '#define SOTTO_ACTION_[A-Z_]* "[^"]*"' daemon/sottod/authorize.h | cut -d'"' -f2 | sort)
got=$(xmllint --xpath '//action/@id' "$pol" | grep -o '"[^"]*"' | tr -d '"' | sort)
[ "$want" = "$got" ] || fail "actions: authorize.h has [$want], the policy [$got]"
[ "$(echo "$want" | wc -l)" = 4 ] || fail "want 4 actions"

def() { # action kind -> value
	xmllint --xpath "string(//action[@id='$1']/defaults/$2)" "$pol"
}
check() { [ "$(def "$1" "$2")" = "$3" ] || fail "$1 $2 is '$(def "$1" "$2")', want $3"; }
# Text in any session, remote ones included.
check org.sotto.generate allow_any yes
check org.sotto.generate allow_inactive yes
check org.sotto.generate allow_active yes
# The microphone only for the active local session.
check org.sotto.dictate allow_any no
check org.sotto.dictate allow_inactive no
check org.sotto.dictate allow_active yes
for a in org.sotto.manage-models org.sotto.configure; do
	for k in allow_any allow_inactive allow_active; do check $a $k auth_admin_keep; done
done

user=$(sed -n 's/^User=//p' packaging/sottod.service)
[ -n "$user" ] || fail "no User= in packaging/sottod.service"
for a in $got; do
	o=$(xmllint --xpath "string(//action[@id='$a']/annotate[@key='org.freedesktop.policykit.owner'])" "$pol")
	[ "$o" = "unix-user:$user" ] || fail "$a: owner '$o', want unix-user:$user"
done
# The example rules name only sotto's actions.
grep -o '"org\.sotto\.[a-z-]*"' polkit/50-sotto-example.rules | tr -d '"' | sort -u | while read -r a; do
	echo "$got" | grep -qx "$a" || fail "50-sotto-example.rules names unknown action $a"
done
echo "# $(echo "$got" | wc -l) actions, defaults and owner as documented"
echo PASS
