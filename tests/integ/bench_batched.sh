#!/usr/bin/env bash
# bench_batched.sh — `chingu bench -b B` (B sequences decoded in lock step) as a user runs it.
#  * md: the pp/tg rows keep their columns, a "tgN xB" row follows, and the "batched:" line gives
#    total t/s, ms per step and the ratio to the 1-sequence tg; ms per step = 1000·B / (t/s), checked
#    here from the printed figures.
#  * json: the batched test has n = B·N tokens, n_seq, steps, ms_per_step (= 1000·B / tps_mean),
#    cpu_ms_per_step and vs_tg1.
#  * -b 1 runs one sequence; -b 0 and -b 257 are usage errors (exit 2, the message names -b).
set -u
BIN=${CHINGU_BIN:?CHINGU_BIN not set}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$BIN" synth --arch qwen2 --tied --n-embd 256 --n-ff 512 --n-layer 2 --n-head 4 --n-head-kv 2 --n-vocab 300 \
    --type Q4_0 -o "$T/s.gguf" >"$T/out" || { echo "FAIL: synth: $(cat "$T/out")"; exit 1; }

"$BIN" bench -m "$T/s.gguf" -t 2 -p 8 -n 4 -r 2 -b 3 >"$T/md" 2>&1 || fail "bench -b 3: $(cat "$T/md")"
grep -Eq '\| pp8 \| [0-9]+\.[0-9]+ ± [0-9]+\.[0-9]+ \|$' "$T/md" || fail "no pp8 row: $(cat "$T/md")"
grep -Eq '\| tg4 \| [0-9]+\.[0-9]+ ± [0-9]+\.[0-9]+ \|$' "$T/md" || fail "no tg4 row: $(cat "$T/md")"
grep -Eq '\| tg4 x3 \| [0-9]+\.[0-9]+ ± [0-9]+\.[0-9]+ \|$' "$T/md" || fail "no 'tg4 x3' row: $(cat "$T/md")"
line=$(grep '^batched: 3 sequences' "$T/md")
[ -n "$line" ] || fail "no batched line: $(cat "$T/md")"
# "… then 4 steps of 3 entries): X t/s total, Y ms per step, …; 1-sequence tg Z t/s …: Rx"
tps=$(sed -E 's/.*\): ([0-9.]+) t\/s total.*/\1/' <<<"$line")
step=$(sed -E 's/.* t\/s total, ([0-9.]+) ms per step.*/\1/' <<<"$line")
awk -v t="$tps" -v s="$step" 'BEGIN { w = 3000 / t; exit !(t > 0 && (s - w) < 0.01 * w + 0.01 && (w - s) < 0.01 * w + 0.01) }' ||
    fail "ms per step $step is not 3000 / $tps: $line"
grep -Eq '1-sequence tg [0-9.]+ t/s \([0-9.]+ ms per token\): [0-9.]+x$' <<<"$line" || fail "no tg1 ratio: $line"
grep -Eqi "nan|inf " "$T/md" && fail "non-finite figure: $(cat "$T/md")"

"$BIN" bench -m "$T/s.gguf" -t 2 -p 0 -n 4 -r 1 -b 2 -o json >"$T/json" 2>&1 || fail "bench -b 2 json: $(cat "$T/json")"
grep -q '"test": "tg4 x2", "n": 8,' "$T/json" || fail "json: no 'tg4 x2' test of 8 tokens: $(cat "$T/json")"
for f in n_seq steps ms_per_step cpu_ms_per_step vs_tg1; do
    grep -q "\"$f\": " "$T/json" || fail "json: no $f: $(cat "$T/json")"
done
tps=$(sed -E 's/.*"tg4 x2"[^}]*"tps_mean": ([0-9.]+).*/\1/' "$T/json")
step=$(sed -E 's/.*"ms_per_step": ([0-9.]+).*/\1/' "$T/json")
awk -v t="$tps" -v s="$step" 'BEGIN { w = 2000 / t; exit !(t > 0 && (s - w) < 1e-3 * w + 1e-3 && (w - s) < 1e-3 * w + 1e-3) }' ||
    fail "json: ms_per_step $step is not 2000 / $tps"
grep -q '"n_seq": 2, "steps": 4' "$T/json" || fail "json: n_seq/steps: $(cat "$T/json")"

"$BIN" bench -m "$T/s.gguf" -t 1 -p 0 -n 2 -r 1 -b 1 >"$T/one" 2>&1 || fail "bench -b 1: $(cat "$T/one")"
grep -q '^batched: 1 sequences' "$T/one" || fail "-b 1: no batched line: $(cat "$T/one")"

for bad in 0 257 x; do
    "$BIN" bench -m "$T/s.gguf" -b $bad >"$T/out" 2>"$T/err"
    rc=$?
    [ "$rc" = 2 ] || fail "-b $bad exited $rc, expected 2"
    grep -q -- "-b" "$T/err" || fail "-b $bad: message does not name -b: $(cat "$T/err")"
done

[ "$fails" = 0 ] || exit 1
echo "bench -b: md rows and batched line (ms/step = 1000·B/(t/s)), json fields, -b 1 and 3 usage errors OK"
