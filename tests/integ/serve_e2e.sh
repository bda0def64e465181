#!/usr/bin/env bash
# serve_e2e.sh — end-to-end test of `chingu serve` with the official `openai` npm client (v6).
#
# Starts `chingu serve -m fake:…` (the deterministic test backend) on 127.0.0.1 with an API key,
# runs tests/e2e/*.test.mjs with node's test runner against it, then sends SIGTERM and requires a
# clean exit 0 within 15 s. Exit 77 (skipped) when node/npm are missing or the openai package
# cannot be installed. The server is killed on every exit path.
set -u
: "${CHINGU_BIN:?CHINGU_BIN must point to the chingu binary}"
SRC="${CHINGU_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}"
E2E="$SRC/tests/e2e"

command -v node >/dev/null 2>&1 || { echo "SKIP: node not found"; exit 77; }
command -v npm >/dev/null 2>&1 || { echo "SKIP: npm not found"; exit 77; }
node -e 'process.exit(parseInt(process.versions.node) >= 20 ? 0 : 1)' || { echo "SKIP: node < 20"; exit 77; }
rc=0; bash "$E2E/setup.sh" || rc=$?
[ $rc -eq 0 ] || exit $rc

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null; fi
  [ -n "${KEEP_WORK:-}" ] && cp "$WORK/server.log" /tmp/e2e_server.log; rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

KEY="sk-chingu-e2e-$(date +%s)-$$"
printf '# test keys\n%s\nsk-another-key-0001\n' "$KEY" > "$WORK/keys"
# A store with one user and a per-user key: such keys open the OpenAI endpoints too (store_keys.test.mjs).
"$CHINGU_BIN" user add e2e-user --data-dir "$WORK/data" >/dev/null || { echo "FAIL: user add"; exit 1; }
STORE_KEY=$("$CHINGU_BIN" key create --user e2e-user --data-dir "$WORK/data" 2>"$WORK/key.err") || { echo "FAIL: key create"; exit 1; }
STORE_KEY_ID=$(sed -n 's/^key id \([0-9]*\) .*/\1/p' "$WORK/key.err")
"$CHINGU_BIN" serve -m "fake:latency_ms=3,queue=4" --parallel 4 --ctx 8192 --port 0 --host 127.0.0.1 \
  --api-key-file "$WORK/keys" --data-dir "$WORK/data" --max-body 1048576 --cors-origin http://localhost:5173 \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

PORT=""
for _ in $(seq 1 100); do
  PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/server.log" | head -1)
  [ -n "$PORT" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$PORT" ]; then echo "FAIL: server did not start"; cat "$WORK/server.log"; exit 1; fi
echo "server on 127.0.0.1:$PORT (pid $SERVER_PID)"

rc=0
CHINGU_URL="http://127.0.0.1:$PORT" CHINGU_KEY="$KEY" CHINGU_STORE_KEY="$STORE_KEY" CHINGU_STORE_KEY_ID="$STORE_KEY_ID" \
  timeout 240 node --test --test-concurrency=1 --test-reporter=spec "$E2E"/*.test.mjs || rc=1

if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "FAIL: the server died during the tests"; rc=1; fi
# SIGTERM with a stream still running: the server lets it run for the grace period (5 s), then
# cancels it (the client gets an error frame) and exits 0.
CURL_PID=""
if command -v curl >/dev/null 2>&1; then
  curl -sN --max-time 30 -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d '{"model":"fake","messages":[{"role":"user","content":"fake:long"}],"max_tokens":8000,"stream":true}' \
    "http://127.0.0.1:$PORT/v1/chat/completions" >"$WORK/inflight.txt" 2>/dev/null &
  CURL_PID=$!
  sleep 0.5
fi
kill -TERM "$SERVER_PID" 2>/dev/null
exited=0
for _ in $(seq 1 150); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then exited=1; break; fi
  sleep 0.1
done
if [ "$exited" = 1 ]; then
  wait "$SERVER_PID"; src=$?
  SERVER_PID=""
  if [ "$src" != 0 ]; then echo "FAIL: server exited with $src after SIGTERM"; rc=1; else echo "server exited 0 after SIGTERM"; fi
else
  echo "FAIL: server still running 15 s after SIGTERM"; rc=1
fi
if [ -n "$CURL_PID" ]; then
  wait "$CURL_PID"
  if grep -q '"code":"cancelled"' "$WORK/inflight.txt"; then echo "in-flight stream was cancelled at shutdown with an error frame"
  else echo "FAIL: the in-flight stream did not get a cancellation frame"; tail -c 400 "$WORK/inflight.txt"; rc=1; fi
fi
n_lines=$(grep -c 'POST /v1/chat/completions' "$WORK/server.log" || true)
echo "server logged $n_lines chat request lines"
[ "$n_lines" -gt 0 ] || { echo "FAIL: no request log lines"; rc=1; }
if [ "$rc" != 0 ]; then echo "---- server log (tail) ----"; tail -n 40 "$WORK/server.log"; fi
exit $rc
