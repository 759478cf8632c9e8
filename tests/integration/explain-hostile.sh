#!/bin/bash
# sotto explain against hostile images, through sottod and the sandboxed
# worker: every one gets a named error at once (sottod refuses what it can
# tell from fstat -- /dev/zero, a socket, a directory, a write-only fd, a
# file over MaxImageBytes -- without reading; a pipe that never ends times
# out; what needs decoding -- a 100000 x 100000 PNG bomb made here, a
# truncated JPEG, a corrupted PNG, a GIF -- is refused by the worker with the
# decoder's reason), while a bystander's Asks keep streaming and the worker
# never restarts.  Also: without a vision projector Explain is
# ModelUnavailable; a valid 1920 x 1080 screenshot PNG passes decoding and
# preprocessing in the worker.
. "$(dirname "$0")/lib/common.sh"
svc_setup explain-hostile
svc_bus session
command -v convert >/dev/null || skip "ImageMagick (convert) is not installed"
command -v python3 >/dev/null || skip "python3 is not installed (used to write the PNG bomb and pass a socket)"
A="--address $BUS_ADDRESS"
W="$SVC_DIR"

# ---- the images, made here ----
convert -size 1920x1080 xc:white -fill '#c00000' -draw 'rectangle 600,400 1320,700' \
	-fill black -draw 'rectangle 640,440 1280,470' "$W/shot.png" || fail "convert"
convert -size 640x480 plasma:fractal -quality 85 "$W/photo.jpg" || fail "convert jpeg"
head -c $(( $(stat -c %s "$W/photo.jpg") / 2 )) "$W/photo.jpg" > "$W/truncated.jpg"
cp "$W/shot.png" "$W/corrupt.png"
# Bytes in the middle of the IDAT stream overwritten: a bad CRC / inflate error.
printf '\xde\xad\xbe\xef\xde\xad\xbe\xef' | dd of="$W/corrupt.png" bs=1 seek=$(( $(stat -c %s "$W/shot.png") / 2 )) conv=notrunc status=none
python3 - "$W/bomb.png" <<'EOF'
import struct, sys, zlib
def chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
# 100000 x 100000 RGB (30 GB decoded) in a few KB: rows of zeros deflate to nothing.
w = h = 100000
idat = zlib.compress(b'\0' * (3 * w + 1) * 8, 9)
open(sys.argv[1], 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
                        chunk(b'IDAT', idat) + chunk(b'IEND', b''))
EOF
[ "$(stat -c %s "$W/bomb.png")" -lt 20000 ] || fail "the bomb is not small"
printf 'GIF89a\x01\x00\x01\x00\x00\x00\x00;' > "$W/image.gif"
truncate -s 40M "$W/huge.png"
# A random-weight Gemma 3 projector (SigLIP at 224, 16 soft tokens of 64).
"$BUILD/sotto-mkmmproj" --preset gemma3-tiny --type F32 --proj-dim 64 "$W/mmproj.gguf" > /dev/null || fail "sotto-mkmmproj"
printf 'ImageTimeoutSec = 1\nMaxImageBytes = 33554432\n' > "$W/sotto.conf"

# ---- no projector: ModelUnavailable, said at once ----
svc_start_sottod $(svc_model_args 2000)
out=$("$SOTTO" $A explain "$W/shot.png" "what is this?" 2>&1) && fail "Explain without a projector succeeded: $out"
echo "$out" | grep -q 'Error.ModelUnavailable' || fail "without a projector: $out"
echo "$out" | grep -q 'vision projector' || fail "the error does not say what is missing: $out"
note "no projector: $out"
svc_stop_sottod

# ---- a projector file that is not one: text goes on, Explain says why ----
head -c 1000 /dev/urandom > "$W/broken.gguf"
svc_start_sottod $(svc_model_args 2000) --mmproj "$W/broken.gguf"
out=$("$SOTTO" $A explain "$W/shot.png" 2>&1) && fail "Explain with a broken projector succeeded: $out"
echo "$out" | grep -q 'Error.ModelUnavailable' || fail "broken projector: $out"
echo "$out" | grep -q 'projector cannot be used' || fail "broken projector, no reason: $out"
"$SOTTO" $A ask --max-tokens 5 "Once" > /dev/null || fail "Ask with a broken projector"
note "broken projector: $out"
svc_stop_sottod

# ---- with a projector ----
svc_start_sottod $(svc_model_args 2000) --mmproj "$W/mmproj.gguf" --config "$W/sotto.conf"
wpid=$(worker_pid)

# The bystander: asks again and again while the images arrive.
(
	n=0
	while [ ! -e "$W/stop" ]; do
		"$SOTTO" $A ask --max-tokens 60 --temperature 0 "Once upon a time" > "$W/by.out" 2>> "$W/by.err" ||
			echo "bystander request $n failed" >> "$W/by.fail"
		[ -s "$W/by.out" ] || echo "bystander request $n streamed nothing" >> "$W/by.fail"
		n=$((n+1)); echo $n > "$W/by.count"
	done
) &
PIDS="$PIDS $!"

# expect NAME ERROR-NAME REGEX MAX-MS -- command...: runs it, checks the
# named error, its sentence and that it came within MAX-MS.
expect() {
	local name=$1 err=$2 re=$3 max=$4; shift 5
	local t0 t1 out ms
	t0=$(date +%s%N)
	out=$("$@" 2>&1) && fail "$name: succeeded: $out"
	t1=$(date +%s%N)
	ms=$(( (t1 - t0) / 1000000 ))
	echo "$out" | grep -q "$err" || fail "$name: not $err: $out"
	echo "$out" | grep -Eq "$re" || fail "$name: the reason is not given ($re): $out"
	[ "$ms" -le "$max" ] || fail "$name: took $ms ms (limit $max)"
	note "$name: $ms ms: $(echo "$out" | tail -n 1)"
}

sleep 0.3
expect "100000x100000 PNG bomb" Error.InvalidInput 'too large.*100000x100000' 1000 -- "$SOTTO" $A explain "$W/bomb.png" "what?"
expect "truncated JPEG" Error.InvalidInput 'truncated|corrupt' 1000 -- "$SOTTO" $A explain "$W/truncated.jpg"
expect "corrupted PNG" Error.InvalidInput 'corrupt|CRC|invalid|incorrect' 1000 -- "$SOTTO" $A explain "$W/corrupt.png"
expect "GIF" Error.InvalidInput 'not a PNG or JPEG' 1000 -- "$SOTTO" $A explain "$W/image.gif"
expect "/dev/zero" Error.InvalidInput 'character device' 1000 -- "$SOTTO" $A explain /dev/zero
expect "a directory" Error.InvalidInput 'directory' 1000 -- "$SOTTO" $A explain - < "$W"
# (the time includes starting python3)
expect "a socket" Error.InvalidInput 'not a socket' 5000 -- python3 -c '
import socket, subprocess, sys
a, b = socket.socketpair()
b.sendall(open(sys.argv[2], "rb").read())
sys.exit(subprocess.run([sys.argv[1], "--address", sys.argv[3], "explain", "-"], stdin=a).returncode)' \
	"$SOTTO" "$W/shot.png" "$BUS_ADDRESS"
expect "a write-only fd" Error.InvalidInput 'not open for reading' 1000 -- sh -c '"$1" --address "$2" explain - 0>>"$3"' sh "$SOTTO" "$BUS_ADDRESS" "$W/wo.png"
expect "a 40 MiB file" Error.InvalidInput 'more than the limit' 1000 -- "$SOTTO" $A explain "$W/huge.png"
expect "a 40 MiB pipe" Error.InvalidInput 'larger than the limit' 5000 -- sh -c 'head -c 41943040 /dev/zero | "$1" --address "$2" explain -' sh "$SOTTO" "$BUS_ADDRESS"
expect "an empty pipe" Error.InvalidInput 'empty' 1000 -- sh -c 'printf "" | "$1" --address "$2" explain -' sh "$SOTTO" "$BUS_ADDRESS"
# A FIFO held open for writing by the caller itself never ends: the read times out (ImageTimeoutSec=1).
mkfifo "$W/fifo"
expect "a pipe that never ends" Error.InvalidInput 'did not arrive within 1 s' 3000 -- sh -c 'exec 3<>"$3"; printf "\211PNG" >&3; "$1" --address "$2" explain - <&3' sh "$SOTTO" "$BUS_ADDRESS" "$W/fifo"
# A closed fd cannot cross the bus: the client says so itself.
out=$("$SOTTO" $A explain - <&- 2>&1) && fail "a closed stdin was accepted"
echo "$out" | grep -q 'standard input is closed' || fail "closed stdin: $out"
note "closed fd: $out"

# A valid screenshot goes through decoding and preprocessing in the sandbox.
out=$("$SOTTO" $A explain "$W/shot.png" "what does this dialog say?" 2>&1) && got=ok || got=err
if [ $got = err ]; then
	echo "$out" | grep -q 'Error.ModelUnavailable' || fail "valid screenshot: $out"
	echo "$out" | grep -q 'the 1920x1080 image' || fail "valid screenshot: $out"
	note "valid 1920x1080 PNG: $out"
	out=$("$SOTTO" $A explain - "and from a pipe?" < "$W/photo.jpg" 2>&1) && fail "JPEG from a pipe succeeded without an encoder"
	echo "$out" | grep -q 'the 640x480 image' || fail "JPEG from a pipe: $out"
fi

touch "$W/stop"
sleep 0.5
[ ! -e "$W/by.fail" ] || fail "the bystander was not served: $(cat "$W/by.fail") $(tail -n 3 "$W/by.err")"
note "bystander served $(cat "$W/by.count") times meanwhile"
[ "$(worker_pid)" = "$wpid" ] || fail "the worker was restarted"
[ "$(svc_stat worker-crashes)" = 0 ] || fail "worker crashes: $(svc_stat worker-crashes)"
kill -0 "$SOTTOD_PID" || fail "sottod died"
busctl --address="$BUS_ADDRESS" get-property org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1.Service Capabilities
svc_stop_sottod

# ---- ImagesPerHour: 2 per hour means the third is refused, with the wait ----
printf '[Defaults]\nImagesPerHour = 2\n' > "$W/quota.conf"
svc_start_sottod $(svc_model_args 2000) --mmproj "$W/mmproj.gguf" --config "$W/quota.conf"
for i in 1 2; do
	out=$("$SOTTO" $A explain "$W/photo.jpg" 2>&1) || true
	echo "$out" | grep -q QuotaExceeded && fail "image $i of 2 refused: $out"
done
out=$("$SOTTO" $A explain "$W/photo.jpg" 2>&1) && fail "a third image per hour went through"
echo "$out" | grep -q 'Error.QuotaExceeded' || fail "the third image: $out"
retry=$(echo "$out" | grep -o 'limit=ImagesPerHour retry-after=[0-9]*' | grep -o '[0-9]*$') || fail "no retry-after: $out"
[ "$retry" -ge 1700 ] && [ "$retry" -le 1800 ] || fail "retry-after $retry s, want about 1800 (one image of 2 per hour)"
note "third image in an hour (ImagesPerHour = 2): $out"
"$SOTTO" $A ask --max-tokens 5 "Once" > /dev/null || fail "Ask refused by the image quota"
svc_stop_sottod
echo PASS
