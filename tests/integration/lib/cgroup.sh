# Test applications in their own cgroup scopes (sourced after common.sh).
# Makes sotto-test-PID.slice/<scope> directories in the cgroup2 file system
# (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid system), as systemd
# would for an app, and runs commands inside them.  Needs root.
#
#   cg_setup                      finds the hierarchy or skips the test
#   cg_run SCOPE CMD ARGS...      runs CMD with its pid moved into SCOPE first
#   cg_cleanup                    removes the directories (call it on exit)

cg_setup() {
	[ "$(id -u)" = 0 ] || skip "cgroup scopes need root"
	CG_ROOT=/sys/fs/cgroup
	[ "$(stat -f -c %T "$CG_ROOT" 2>/dev/null)" = cgroup2fs ] || CG_ROOT=/sys/fs/cgroup/unified
	[ "$(stat -f -c %T "$CG_ROOT" 2>/dev/null)" = cgroup2fs ] || skip "no cgroup2 hierarchy"
	CG_SLICE="$CG_ROOT/sotto-test-$$.slice"
	mkdir "$CG_SLICE" 2>/dev/null || skip "cannot create cgroups under $CG_ROOT"
}

cg_run() { # scope cmd...
	local d="$CG_SLICE/$1"
	shift
	[ -d "$d" ] || mkdir -p "$d" # no fork when it exists: ns_last_pid tests count forks
	sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$d" "$@"
}

cg_cleanup() {
	[ -n "${CG_SLICE:-}" ] && [ -d "$CG_SLICE" ] || return 0
	local d i
	for d in "$CG_SLICE"/*/; do
		[ -d "$d" ] || continue
		# Whatever is left in a scope goes back to the root before rmdir.
		for i in 1 2 3; do
			while read -r p; do echo "$p" > "$CG_ROOT/cgroup.procs" 2>/dev/null || true; done < "$d/cgroup.procs"
			rmdir "$d" 2>/dev/null && break
			sleep 0.1
		done
	done
	rmdir "$CG_SLICE" 2>/dev/null || true
}
