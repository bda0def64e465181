#!/usr/bin/env bash
# mem_rest.sh — the memory REST endpoints through a real `chingu serve -m fake: --data-dir DIR`.
#
# Checks over HTTP with curl: store keys authenticate /v1/memories and, like --api-key-file keys, the
# OpenAI endpoints (last use recorded, the user in the log line, revoked keys refused with 401); URL-encoded Korean search (?q=커피); PATCH/DELETE; admin vs user
# scope; another user's ids answer 404; a server without --db/--data-dir answers 501.
set -u
: "${CHINGU_BIN:?CHINGU_BIN must point to the chingu binary}"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl not found"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not found"; exit 77; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*"; [ -f "$WORK/server.log" ] && tail -5 "$WORK/server.log"; exit 1; }

start() {   # start LOG ARGS... → sets PORT
  local log=$1; shift
  "$CHINGU_BIN" serve -m fake: --port 0 "$@" >"$log" 2>&1 &
  PIDS+=($!)
  PORT=""
  for _ in $(seq 1 100); do
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  fail "server did not start: $(cat "$log")"
}

# req KEY METHOD PATH [BODY] → $CODE and $BODY
req() {
  local auth=() data=()
  [ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
  [ $# -ge 4 ] && data=(-H "Content-Type: application/json" --data-binary "$4")
  CODE=$(curl -s -o "$WORK/body" -w '%{http_code}' -X "$2" "${auth[@]}" "${data[@]}" "http://127.0.0.1:$PORT$3")
  BODY=$(cat "$WORK/body")
}
expect() { [ "$CODE" = "$1" ] || fail "$2: HTTP $CODE, expected $1: $BODY"; }
field() { python3 -c 'import json,sys; print(eval("json.loads(sys.argv[1])" + sys.argv[2]))' "$BODY" "$1"; }

D="$WORK/data"
"$CHINGU_BIN" user add root --data-dir "$D" >/dev/null || fail "user add"
ADMIN=$("$CHINGU_BIN" key create --user root --admin --data-dir "$D" 2>/dev/null) || fail "key create"
echo "sk-file-key-123456" >"$WORK/keys"
start "$WORK/server.log" --data-dir "$D" --api-key-file "$WORK/keys"

req "" GET /v1/memories; expect 401 "no key"
req sk-file-key-123456 GET /v1/memories; expect 401 "a --api-key-file key is not a store key"
req "$ADMIN" GET /v1/models; expect 200 "a store key opens the OpenAI endpoints too"
req sk-file-key-123456 GET /v1/models; expect 200 "file key on /v1/models"
req "cg-not-a-real-key-0000000000000000000000000000" GET /v1/models; expect 401 "unknown store-shaped key"
[ "$(field '["error"]["code"]')" = invalid_api_key ] || fail "401 error shape: $BODY"

req "$ADMIN" POST /v1/users '{"name":"minji"}'; expect 201 "create minji"; UA=$(field '["id"]')
req "$ADMIN" POST /v1/users '{"name":"bob"}'; expect 201 "create bob"; UB=$(field '["id"]')
req "$ADMIN" POST /v1/keys "{\"user\":$UA}"; expect 201 "key for minji"; KA=$(field '["key"]')
req "$ADMIN" POST /v1/keys "{\"user\":$UB}"; expect 201 "key for bob"; KB=$(field '["key"]')
req "$KA" GET /v1/users; expect 403 "user key listing users"

# Store keys on the OpenAI endpoints: a user key works for chat (the log names its user), its
# last use is recorded, and once revoked it is refused with the OpenAI error shape.
req "$ADMIN" POST /v1/keys "{\"user\":$UB}"; expect 201 "second key for bob"; KB2=$(field '["key"]'); KB2_ID=$(field '["id"]')
req "$KB" GET /v1/memories/export; expect 200 "export before use"
[ "$(field "[\"keys\"][[k[\"id\"] for k in json.loads(sys.argv[1])[\"keys\"]].index($KB2_ID)][\"last_used_ms\"]")" = None ] || fail "unused key has a last use: $BODY"
req "$KB2" POST /v1/chat/completions '{"model":"fake","messages":[{"role":"user","content":"hi"}],"max_tokens":3}'
expect 200 "chat with a store key"
[ "$(field '["object"]')" = chat.completion ] || fail "chat body: $BODY"
req "$KB" GET /v1/memories/export; expect 200 "export after use"
[[ "$(field "[\"keys\"][[k[\"id\"] for k in json.loads(sys.argv[1])[\"keys\"]].index($KB2_ID)][\"last_used_ms\"]")" =~ ^[0-9]+$ ]] || fail "last use not recorded: $BODY"
sleep 0.2
grep -q "POST /v1/chat/completions 200 user=$UB " "$WORK/server.log" || fail "log line without bob's user id: $(grep chat "$WORK/server.log")"
req "$KB2" DELETE "/v1/keys/$KB2_ID"; expect 200 "revoke bob's second key"
req "$KB2" POST /v1/chat/completions '{"model":"fake","messages":[{"role":"user","content":"hi"}],"max_tokens":3}'
expect 401 "revoked key on chat"
[ "$(field '["error"]["code"]')" = invalid_api_key ] || fail "revoked: error shape: $BODY"
[ "$(field '["error"]["type"]')" = invalid_request_error ] || fail "revoked: error type: $BODY"
req "$KB2" GET /v1/models; expect 401 "revoked key on /v1/models"
req "" GET /v1/models; expect 401 "no key on /v1/models"

req "$KA" POST /v1/memories '{"text":"아침마다 커피를 마셔요","kind":"preference"}'; expect 201 "add"; M1=$(field '["id"]')
req "$KA" POST /v1/memories '{"text":"서울에 살아요"}'; expect 201 "add 2"; M2=$(field '["id"]')
req "$KA" GET "/v1/memories?q=%EC%BB%A4%ED%94%BC&k=3"; expect 200 "search 커피"
[ "$(field '["data"][0]["id"]')" = "$M1" ] || fail "search: $BODY"
[ "$(field '["data"].__len__()')" = 1 ] || fail "search should find one: $BODY"
req "$KA" PATCH "/v1/memories/$M2" '{"text":"부산에 살아요"}'; expect 200 "edit"
[ "$(field '["text"]')" = "부산에 살아요" ] || fail "edit: $BODY"

# Another user's ids: 404 on every endpoint.
for m in GET PATCH DELETE; do
  req "$KB" "$m" "/v1/memories/$M1" '{"text":"x"}'; expect 404 "bob $m minji's memory"
done
req "$KB" GET "/v1/memories?q=%EC%BB%A4%ED%94%BC"; expect 200 "bob search"
[ "$(field '["data"].__len__()')" = 0 ] || fail "bob found minji's memory: $BODY"
req "$KA" GET "/v1/memories/$M1"; expect 200 "minji still has it"

req "$KA" DELETE "/v1/memories/$M1"; expect 200 "delete"
req "$KA" GET "/v1/memories/$M1"; expect 404 "deleted"
req "$KA" GET /v1/memories/export; expect 200 "export"
[[ "$BODY" == *부산에* && "$BODY" != *커피를* ]] || fail "export: $BODY"
req "$KA" PUT /v1/memories '{}'; expect 405 "PUT"

start "$WORK/server2.log" --quiet
req "$ADMIN" GET /v1/memories; expect 501 "no store"
[[ "$BODY" == *"--data-dir"* ]] || fail "501 message: $BODY"
echo "ok"
