# Normalizes D-Bus introspection XML to one line per member of the
# org.sotto.* interfaces: methods with their arguments, properties with
# type, access and change-signal annotation, signals.  Attribute order and
# formatting do not matter; comments and other interfaces are ignored.
function attr(line, name,   m) {
	if (match(line, name "=\"[^\"]*\"")) {
		m = substr(line, RSTART + length(name) + 2, RLENGTH - length(name) - 3)
		return m
	}
	return ""
}
function flush() {
	if (member != "") print member args (kind == "property" ? " emits=" emits : "")
	member = ""; args = ""; emits = "true"
}
{ gsub(/\\"/, "\"") }
/<!--/ { if (!/-->/) incomment = 1; next }
incomment { if (/-->/) incomment = 0; next }
/<interface / { flush(); iface = attr($0, "name"); ours = iface ~ /^org\.sotto\./; next }
/<\/interface>/ { flush(); ours = 0; next }
!ours { next }
/<method / { flush(); kind = "method"; member = iface " method " attr($0, "name") }
/<signal / { flush(); kind = "signal"; member = iface " signal " attr($0, "name") }
/<property / { flush(); kind = "property"; member = iface " property " attr($0, "name") " " attr($0, "type") " " attr($0, "access") }
/<arg / { d = attr($0, "direction"); if (d == "") d = (kind == "signal" ? "out" : "in"); args = args " " d ":" attr($0, "type") ":" attr($0, "name") }
/<annotation / && attr($0, "name") == "org.freedesktop.DBus.Property.EmitsChangedSignal" { emits = attr($0, "value") }
END { flush() }
