#!/usr/bin/env bash
# kernels.sh — per-format kernel microbenchmarks: matvec GB/s (generic vs SIMD, fraction of the
# stream-probe bandwidth) and the 64-token matmul (int8 dot products vs dequantize + f32 FMA).
#   bench/kernels.sh [-t THREADS] [--mib M]      env: CHINGU_BIN
set -eu
ROOT=$(dirname "$0")/..
BIN=${CHINGU_BIN:-$ROOT/build/release/chingu}
[ -x "$BIN" ] || [ -n "${CHINGU_BIN:-}" ] || BIN=$ROOT/build/rel/chingu
[ -x "$BIN" ] || { echo "no chingu binary at $BIN" >&2; exit 2; }
exec "$BIN" bench --kernels -t 2 "$@"
