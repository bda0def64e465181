#!/usr/bin/env bash
# run.sh — chingu bench on synth models with real shapes: llama-3.2-1b and qwen2.5-0.5b in Q4_0,
# Q8_0 and Q4_K_M (written once into $DIR, default /tmp), pp512 / tg128 with 2 threads, each
# table followed by its roofline line (measured read bandwidth, bytes per generated token, fraction
# of the ceiling reached). Figures only — never pass/fail; the machine may be shared and noisy, so
# compare ratios from one run.
#
#   bench/run.sh [-t THREADS] [-p N] [-n N] [-r REPS]      env: CHINGU_BIN, DIR, PRESETS, TYPES
set -eu
ROOT=$(dirname "$0")/..
BIN=${CHINGU_BIN:-$ROOT/build/release/chingu}
[ -x "$BIN" ] || [ -n "${CHINGU_BIN:-}" ] || BIN=$ROOT/build/rel/chingu
DIR=${DIR:-/tmp}
PRESETS=${PRESETS:-"llama-3.2-1b qwen2.5-0.5b"}
TYPES=${TYPES:-"Q4_0 Q8_0 Q4_K_M"}
THREADS=2 P=512 N=128 R=5
while getopts "t:p:n:r:" o; do
    case $o in t) THREADS=$OPTARG ;; p) P=$OPTARG ;; n) N=$OPTARG ;; r) R=$OPTARG ;; *) exit 2 ;; esac
done
[ -x "$BIN" ] || { echo "no chingu binary at $BIN (build the release preset or set CHINGU_BIN)" >&2; exit 2; }
echo "chingu bench: $THREADS threads, pp$P / tg$N, $R repetitions (CHINGU_ISA=${CHINGU_ISA:-best available})"
for preset in $PRESETS; do
    for t in $TYPES; do
        f=$DIR/chingu-synth-$preset-$t.gguf
        [ -s "$f" ] || "$BIN" synth --preset "$preset" --type "$t" -o "$f"
        echo
        echo "### $preset $t ($f)"
        "$BIN" bench -m "$f" -t "$THREADS" -p "$P" -n "$N" -r "$R"
    done
done
echo
echo "llama.cpp's llama-bench is not installed on this machine, so its column could not be measured"
echo "side by side; run 'llama-bench -m FILE -t $THREADS -p $P -n $N -r $R' on the same files to compare."
