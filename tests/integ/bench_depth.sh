#!/usr/bin/env bash
# bench_depth.sh — `chingu bench -d D` (llama-bench's --n-depth) as a user runs it.
#  * md: the rows are named "ppN @ dD" / "tgN @ dD", and the roofline counts the K/V cache at the
#    mean context D + N/2: bytes per token = weights + (D + N/2) · K/V bytes per position, checked
#    here against -d 0 of the same file (the K/V bytes per position of this shape: 2 layers ·
#    2 kv heads · (64 + 64) dims · 2 bytes = 1024).
#  * the fill really precedes the timed part: a run at positions D.. on an empty cache would be
#    refused ("leaves a gap"), so a depth larger than one fill batch (512) must run cleanly.
#  * json: each test carries "n_depth".
#  * usage errors (exit 2, the message names the option): -d -1, -d x, -d with -b.
set -u
BIN=${CHINGU_BIN:?CHINGU_BIN not set}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$BIN" synth --arch qwen2 --tied --n-embd 256 --n-ff 512 --n-layer 2 --n-head 4 --n-head-kv 2 --n-vocab 300 \
    --type Q4_0 -o "$T/s.gguf" >"$T/out" || { echo "FAIL: synth: $(cat "$T/out")"; exit 1; }

"$BIN" bench -m "$T/s.gguf" -t 2 -p 8 -n 4 -r 2 -d 600 >"$T/md" 2>&1 || fail "bench -d 600: $(cat "$T/md")"
grep -Eq '\| pp8 @ d600 \| [0-9]+\.[0-9]+ ± [0-9]+\.[0-9]+ \|$' "$T/md" || fail "no 'pp8 @ d600' row: $(cat "$T/md")"
grep -Eq '\| tg4 @ d600 \| [0-9]+\.[0-9]+ ± [0-9]+\.[0-9]+ \|$' "$T/md" || fail "no 'tg4 @ d600' row: $(cat "$T/md")"
grep -q 'KV at mean context 602)' "$T/md" || fail "md: mean context is not 600 + 4/2: $(cat "$T/md")"
# bytes per token (json, exact): -d 600 reads 600 positions' K/V more than -d 0
"$BIN" bench -m "$T/s.gguf" -t 2 -p 0 -n 4 -r 1 -o json >"$T/j0" 2>&1 || fail "bench -d 0 json: $(cat "$T/j0")"
"$BIN" bench -m "$T/s.gguf" -t 2 -p 0 -n 4 -r 1 -d 600 -o json >"$T/j600" 2>&1 || fail "bench -d 600 json: $(cat "$T/j600")"
grep -q '"test": "tg4", "n": 4, "n_depth": 0,' "$T/j0" || fail "json -d 0: test name: $(cat "$T/j0")"
b0=$(sed -nE 's/.*"bytes_per_token": ([0-9]+).*/\1/p' "$T/j0")
b600=$(sed -nE 's/.*"bytes_per_token": ([0-9]+).*/\1/p' "$T/j600")
[ -n "$b0" ] && [ -n "$b600" ] && [ $((b600 - b0)) = $((600 * 1024)) ] ||
    fail "bytes per token $b0 (-d 0) and $b600 (-d 600) do not differ by 600 x 1024"
grep -Eqi "nan|inf " "$T/md" && fail "non-finite figure: $(cat "$T/md")"

"$BIN" bench -m "$T/s.gguf" -t 1 -p 4 -n 2 -r 1 -d 40 -o json >"$T/json" 2>&1 || fail "bench -d 40 json: $(cat "$T/json")"
grep -q '"test": "pp4 @ d40", "n": 4, "n_depth": 40,' "$T/json" || fail "json: pp test: $(cat "$T/json")"
grep -q '"test": "tg2 @ d40", "n": 2, "n_depth": 40,' "$T/json" || fail "json: tg test: $(cat "$T/json")"

for args in "-d -1" "-d x" "-d 8 -b 2"; do
    # shellcheck disable=SC2086
    "$BIN" bench -m "$T/s.gguf" $args >"$T/out" 2>"$T/err"
    rc=$?
    [ "$rc" = 2 ] || fail "$args exited $rc, expected 2"
    grep -q -- "-d" "$T/err" || fail "$args: message does not name -d: $(cat "$T/err")"
done

[ "$fails" = 0 ] || exit 1
echo "bench -d: '@ dD' rows, K/V bytes at mean context D + N/2, fills past one batch, json n_depth, 3 usage errors OK"
