#!/usr/bin/env bash
# run.sh — chingu bench on synth models with real shapes: llama-3.2-1b and qwen2.5-0.5b in Q4_0,
# Q8_0 and Q4_K_M (written once into $DIR, default /tmp), pp512 / tg128 with 2 threads, each
# table followed by its roofline line (measured read bandwidth, bytes per generated token, fraction
# of the ceiling reached). Figures only — never pass/fail; the machine may be shared and noisy, so
# compare ratios from one run.
#
# With llama.cpp's llama-bench (LLAMA_BENCH=path, or llama-bench on PATH), each file also runs
# through it right after chingu, with the same threads and tests, and a line gives chingu's t/s
# over llama.cpp's for pp and tg (side by side, so both saw about the same machine), and a line puts
# llama.cpp's tg against chingu's roofline for the file.
#
# -d D runs both at depth D (D tokens already in the cache, filled untimed: llama-bench's --n-depth):
# the tests become "ppN @ dD" / "tgN @ dD".
#
#   bench/run.sh [-t THREADS] [-p N] [-n N] [-r REPS] [-d DEPTH]   env: CHINGU_BIN, DIR, PRESETS, TYPES, LLAMA_BENCH
set -eu
ROOT=$(dirname "$0")/..
BIN=${CHINGU_BIN:-$ROOT/build/release/chingu}
[ -x "$BIN" ] || [ -n "${CHINGU_BIN:-}" ] || BIN=$ROOT/build/rel/chingu
DIR=${DIR:-/tmp}
PRESETS=${PRESETS:-"llama-3.2-1b qwen2.5-0.5b"}
TYPES=${TYPES:-"Q4_0 Q8_0 Q4_K_M"}
THREADS=2 P=512 N=128 R=5 D=0
while getopts "t:p:n:r:d:" o; do
    case $o in t) THREADS=$OPTARG ;; p) P=$OPTARG ;; n) N=$OPTARG ;; r) R=$OPTARG ;; d) D=$OPTARG ;; *) exit 2 ;; esac
done
DEPTH=() AT=""
[ "$D" = 0 ] || DEPTH=(-d "$D") AT=" @ d$D"   # older llama-bench builds lack -d: pass it only when asked
[ -x "$BIN" ] || { echo "no chingu binary at $BIN (build the release preset or set CHINGU_BIN)" >&2; exit 2; }
LB=${LLAMA_BENCH:-$(command -v llama-bench || true)}
OUT=$(mktemp)
trap 'rm -f "$OUT" "$OUT.lb"' EXIT
echo "chingu bench: $THREADS threads, pp$P / tg$N$AT, $R repetitions (CHINGU_ISA=${CHINGU_ISA:-best available})"
for preset in $PRESETS; do
    for t in $TYPES; do
        f=$DIR/chingu-synth-$preset-$t.gguf
        [ -s "$f" ] || "$BIN" synth --preset "$preset" --type "$t" -o "$f"
        echo
        echo "### $preset $t ($f)"
        "$BIN" bench -m "$f" -t "$THREADS" -p "$P" -n "$N" -r "$R" "${DEPTH[@]}" | tee "$OUT"
        [ -n "$LB" ] || continue
        echo
        "$LB" -m "$f" -t "$THREADS" -p "$P" -n "$N" -r "$R" "${DEPTH[@]}" 2>/dev/null | tee "$OUT.lb" | grep -E '^\| (model|---|.*(pp|tg)[0-9])'
        # The t/s column of a test's row: "… | pp512 | 123.45 ± 1.23 |" (or "pp512 @ d2048") in both tables.
        tps() { grep -E "\| +$2 +\|" "$1" | head -1 | awk -F'|' '{print $(NF-1)}' | awk '{print $1}'; }
        for test in "pp$P$AT" "tg$N$AT"; do
            a=$(tps "$OUT" "$test") b=$(tps "$OUT.lb" "$test")
            [ -n "$a" ] && [ -n "$b" ] && awk -v t="$test" -v a="$a" -v b="$b" \
                'BEGIN { printf "vs llama.cpp: %s chingu %.2f t/s, llama.cpp %.2f t/s: %.2fx\n", t, a, b, a / b }'
        done
        # llama.cpp's tg against the same ceiling (chingu's roofline line: "… ceiling X t/s; …").
        c=$(sed -n 's/.*; ceiling \([0-9.]*\) t\/s;.*/\1/p' "$OUT" | head -1) b=$(tps "$OUT.lb" "tg$N$AT")
        [ -n "$c" ] && [ -n "$b" ] && awk -v t="tg$N$AT" -v b="$b" -v c="$c" \
            'BEGIN { printf "llama.cpp %s at %.1f %% of the same roofline (%.2f of %.2f t/s)\n", t, 100 * b / c, b, c }'
        true
    done
done
if [ -z "$LB" ]; then
    echo
    echo "llama.cpp's llama-bench was not found (set LLAMA_BENCH=path), so its column was not measured"
    echo "side by side; run 'llama-bench -m FILE -t $THREADS -p $P -n $N -r $R ${DEPTH[*]}' on the same files to compare."
fi
