#!/bin/sh
# Make sure the Debian packages listed in debian-packages.txt are installed.
# As root, install what is missing; otherwise print the exact apt-get line
# and fail, so nobody builds against half a system.
set -eu
here=$(dirname "$0")
list=$(grep -v '^[[:space:]]*#' "$here/debian-packages.txt" | grep -v '^[[:space:]]*$')

missing=""
for p in $list; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$st" in
	ii*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

line="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "sotto: missing build dependencies. Run as root:" >&2
	echo "  $line" >&2
	exit 1
fi
echo "sotto: installing missing build dependencies:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2 || true
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2
