# The real polkitd on the test's private system-type bus (sourced after
# common.sh).  Follows ../shared/testenv/polkit-private.sh: polkitd reads
# actions and rules only from fixed directories, so the files are installed
# there for the test and removed (or the previous copy restored) at exit.
#
#   pk_setup NAME                  svc_setup + root/polkitd checks + cleanup trap
#   pk_bus                         svc_bus system, with polkitd's bus policy
#   pk_install_policy              polkit/org.sotto.policy into /usr/share/polkit-1/actions/
#   pk_install_rules FILE NAME     a .rules file as /etc/polkit-1/rules.d/NAME
#   pk_start_polkitd               polkitd on $BUS_ADDRESS, waits until it owns its name
#   pk_user NAME [GROUP]           a test user (useradd), removed at exit
#   pk_client USER ARGS...         build/tests/polkit-client as USER on $BUS_ADDRESS
#   pk_checks                      lines "sotto-check ACTION USER PID" logged by pk_log_rules
PK_ACTIONS_DIR=/usr/share/polkit-1/actions
PK_RULES_DIR=/etc/polkit-1/rules.d
POLKITD=${POLKITD:-/usr/lib/polkit-1/polkitd}
PK_INSTALLED=""  # "dest:backup" pairs
PK_USERS=""
PK_GROUPS=""

pk_cleanup() {
	svc_cleanup
	for pair in $PK_INSTALLED; do
		dest=${pair%%:*}; backup=${pair#*:}
		rm -f "$dest"
		[ -n "$backup" ] && [ -f "$backup" ] && mv "$backup" "$dest"
	done
	for u in $PK_USERS; do userdel "$u" 2>/dev/null || true; done
	for g in $PK_GROUPS; do groupdel "$g" 2>/dev/null || true; done
}

pk_setup() {
	[ "$(id -u)" = 0 ] || skip "needs root (polkitd reads its files from /usr/share and /etc; test users)"
	[ -x "$POLKITD" ] || skip "polkitd is not installed ($POLKITD)"
	for c in setpriv useradd groupadd; do command -v $c >/dev/null || skip "$c is not installed"; done
	[ -f /usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf ] || skip "polkitd's bus policy is missing"
	svc_setup "$1"
	trap pk_cleanup EXIT
	# polkitd (user polkitd) and the test users must reach the bus socket
	# and the client program.
	chmod 755 "$BUILD" "$BUILD/tests" "$BUILD/test-work" 2>/dev/null || true
	local p=$SVC_DIR
	while [ "$p" != / ]; do
		setpriv --reuid=polkitd --regid=polkitd --clear-groups test -x "$p" 2>/dev/null ||
			skip "user polkitd cannot reach $p"
		p=$(dirname "$p")
	done
}

pk_bus() {
	SVC_BUS_POLICIES=/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf svc_bus system
}

pk_install() { # src dest
	local backup=""
	if [ -e "$2" ]; then
		backup="$SVC_DIR/backup.$(basename "$2")"
		cp -p "$2" "$backup"
	fi
	# Whole or not at all: polkitd reads rules as soon as inotify says so.
	install -m 0644 "$1" "$2.sotto-tmp" && mv -f "$2.sotto-tmp" "$2"
	PK_INSTALLED="$PK_INSTALLED $2:$backup"
}

pk_install_policy() {
	pk_install "$ROOT/polkit/org.sotto.policy" "$PK_ACTIONS_DIR/org.sotto.policy"
}

pk_install_rules() { # file name
	pk_install "$1" "$PK_RULES_DIR/$2"
}

# Installs a rules file into the running polkitd and waits until it has
# read it (inotify; "Finished loading ... N rules" once more).
pk_add_rules() { # file name
	local before i=0
	before=$(grep -c "Finished loading" "$SVC_DIR/polkitd.log" || true)
	pk_install_rules "$1" "$2"
	while [ "$(grep -c "Finished loading" "$SVC_DIR/polkitd.log" || true)" -le "$before" ]; do
		i=$((i+1)); [ $i -gt 100 ] && fail "polkitd did not reload its rules: $(tail -n 5 "$SVC_DIR/polkitd.log")"
		sleep 0.05
	done
	sleep 0.2 # it may reload twice for one file
	if grep -qiE "error|exception" "$SVC_DIR/polkitd.log"; then
		fail "polkitd: $(grep -iE "error|exception" "$SVC_DIR/polkitd.log")"
	fi
}

# A rule that only logs (and decides nothing): one line per check polkitd
# evaluates for a non-root subject, so a test can count the checks.
pk_log_rules() {
	cat > "$SVC_DIR/10-sotto-test-log.rules" <<'EOR'
polkit.addRule(function(action, subject) {
        if (action.id.indexOf("org.sotto.") == 0)
                polkit.log("sotto-check " + action.id + " " + subject.user + " " + subject.pid);
});
EOR
	pk_install_rules "$SVC_DIR/10-sotto-test-log.rules" 10-sotto-test-log.rules
}

pk_start_polkitd() {
	setsid env -u DBUS_SESSION_BUS_ADDRESS DBUS_SYSTEM_BUS_ADDRESS="$BUS_ADDRESS" "$POLKITD" \
		</dev/null >"$SVC_DIR/polkitd.log" 2>&1 &
	POLKITD_PID=$!
	PIDS="$POLKITD_PID $PIDS"
	local i=0
	until grep -q "Acquired the name org.freedesktop.PolicyKit1" "$SVC_DIR/polkitd.log" 2>/dev/null; do
		i=$((i+1))
		{ [ $i -gt 200 ] || ! kill -0 "$POLKITD_PID" 2>/dev/null; } &&
			fail "polkitd did not start: $(cat "$SVC_DIR/polkitd.log")"
		sleep 0.05
	done
}

pk_user() { # name [group]
	if [ -n "${2:-}" ] && ! getent group "$2" >/dev/null; then
		groupadd "$2" || fail "groupadd $2"
		PK_GROUPS="$PK_GROUPS $2"
	fi
	if ! id "$1" >/dev/null 2>&1; then
		useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$1" || fail "useradd $1"
		PK_USERS="$PK_USERS $1"
	fi
	[ -n "${2:-}" ] && { usermod -aG "$2" "$1" || fail "usermod $1"; }
	return 0
}

pk_client() { # user args...
	local u=$1; shift
	setpriv --reuid="$u" --regid="$u" --init-groups "$BUILD/tests/polkit-client" "$BUS_ADDRESS" "$@"
}

pk_checks() {
	grep -o 'sotto-check .*' "$SVC_DIR/polkitd.log" || true
}
