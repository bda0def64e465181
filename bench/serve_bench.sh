#!/usr/bin/env bash
# serve_bench.sh [MODEL.gguf] [all|throughput,prefix,load] — starts `chingu serve` on the model
# (default: stories260K from ../shared/models) and runs bench/serve_bench.mjs against it. Prints
# figures only. Env: CHINGU_BIN (default build/release/chingu), THREADS (engine threads), CTX, and those
# serve_bench.mjs reads (BENCH_PROMPT=tokens|text, BENCH_GEN, BENCH_REQUESTS, ...).
set -eu
SRC="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${CHINGU_BIN:-$SRC/build/release/chingu}"
MODEL="${1:-$SRC/../shared/models/real/stories260K.gguf}"
WHAT="${2:-all}"
CTX="${CTX:-2048}"
WORK=$(mktemp -d)
"$BIN" serve -m "$MODEL" --ctx "$CTX" --parallel 8 --queue 256 --engine-threads "${THREADS:-0}" --port 0 --quiet \
  >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/server.log" | head -1)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { cat "$WORK/server.log"; exit 1; }
ID=$(basename "$MODEL" .gguf)
echo "model $ID, ctx $CTX, 8 slots, $(nproc) CPUs, engine threads ${THREADS:-all}"
CHINGU_URL="http://127.0.0.1:$PORT" CHINGU_MODEL_ID="$ID" SERVER_PID=$PID node "$SRC/bench/serve_bench.mjs" "$WHAT"
