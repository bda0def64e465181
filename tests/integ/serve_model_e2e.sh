#!/usr/bin/env bash
# serve_model_e2e.sh — `chingu serve -m stories260K.gguf` (a real model through the engine thread)
# with the official openai npm client: tests/e2e/model_e2e.mjs. The greedy reference text comes from
# `chingu generate` (the single-sequence path); embeddings are checked against `chingu tokenize` (token-id
# inputs) and the model's embedding_length (`chingu info`). Then SIGTERM must end the server with exit 0.
# Exit 77 (skipped) when node/npm, the npm packages or the model are missing.
set -u
: "${CHINGU_BIN:?CHINGU_BIN must point to the chingu binary}"
SRC="${CHINGU_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}"
E2E="$SRC/tests/e2e"
MODELS="${CHINGU_TESTDATA:-$SRC/../shared/testdata}/../models"
MODEL="$MODELS/real/stories260K.gguf"
[ -f "$MODEL" ] || { echo "SKIP: $MODEL not found"; exit 77; }
command -v node >/dev/null 2>&1 || { echo "SKIP: node not found"; exit 77; }
node -e 'process.exit(parseInt(process.versions.node) >= 20 ? 0 : 1)' || { echo "SKIP: node < 20"; exit 77; }
rc=0; bash "$E2E/setup.sh" || rc=$?
[ $rc -eq 0 ] || exit $rc

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

GEN_PROMPT="Once upon a time"
GEN_TEXT=$("$CHINGU_BIN" generate -m "$MODEL" -p "$GEN_PROMPT" -n 20 --json 2>/dev/null |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).text))')
[ -n "$GEN_TEXT" ] || { echo "FAIL: chingu generate gave no text"; exit 1; }

EMB_IDS=$("$CHINGU_BIN" tokenize -m "$MODEL" --json "$GEN_PROMPT" 2>/dev/null |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.stringify(JSON.parse(s).ids)))')
EMB_DIM=$("$CHINGU_BIN" info "$MODEL" 2>/dev/null | sed -n 's/.*\.embedding_length = \([0-9]*\).*/\1/p' | head -1)
[ -n "$EMB_IDS" ] && [ -n "$EMB_DIM" ] || { echo "FAIL: chingu tokenize/info gave no token ids or embedding length"; exit 1; }

KEY="sk-chingu-model-e2e-$$"
printf '%s\n' "$KEY" > "$WORK/keys"
CTX=256
"$CHINGU_BIN" serve -m "$MODEL" --ctx $CTX --parallel 4 --engine-threads 2 --port 0 --host 127.0.0.1 \
  --api-key-file "$WORK/keys" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 200); do
  PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/server.log" | head -1)
  [ -n "$PORT" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$PORT" ]; then echo "FAIL: server did not start"; cat "$WORK/server.log"; exit 1; fi

rc=0
CHINGU_URL="http://127.0.0.1:$PORT" CHINGU_KEY="$KEY" CHINGU_MODEL_ID=stories260K CHINGU_CTX=$CTX \
  GEN_PROMPT="$GEN_PROMPT" GEN_TEXT="$GEN_TEXT" EMB_IDS="$EMB_IDS" EMB_DIM="$EMB_DIM" \
  timeout 240 node --test --test-reporter=spec "$E2E/model_e2e.mjs" || rc=1
kill -0 "$SERVER_PID" 2>/dev/null || { echo "FAIL: the server died during the tests"; rc=1; }
kill -TERM "$SERVER_PID" 2>/dev/null
exited=0
for _ in $(seq 1 150); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then exited=1; break; fi
  sleep 0.1
done
if [ "$exited" = 1 ]; then
  wait "$SERVER_PID"; src=$?; SERVER_PID=""
  if [ "$src" != 0 ]; then echo "FAIL: server exited with $src after SIGTERM"; rc=1; else echo "server exited 0 after SIGTERM"; fi
else
  echo "FAIL: server still running 15 s after SIGTERM"; rc=1
fi
[ "$rc" != 0 ] && { echo "---- server log (tail) ----"; tail -n 30 "$WORK/server.log"; }
exit $rc
