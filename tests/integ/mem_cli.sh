#!/usr/bin/env bash
# mem_cli.sh — `chingu user|key|memory` end to end, on SQLite (--data-dir) and PostgreSQL (--db).
#
# Hand-written expectations: ids printed by add, the key format (cg- + 43 base64url characters),
# JSON Lines import with a client-id supersession, Korean search with particles (커피 → 커피를),
# a superseded fact not returned as current, errors that name the line, exit codes 1/2, user
# isolation (bob sees nothing of minji's), and user rm leaving nothing to export.
# The PostgreSQL half uses tests/pg.sh (or $CG_TEST_PG) and is skipped when no server exists.
set -u
: "${CHINGU_BIN:?CHINGU_BIN must point to the chingu binary}"
SRC="${CHINGU_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}"
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not found"; exit 77; }
WORK=$(mktemp -d)
PGDIR=""
cleanup() { [ -n "$PGDIR" ] && bash "$SRC/tests/pg.sh" stop "$PGDIR"; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
fail() { echo "FAIL [$DBNAME]: $*"; exit 1; }

# expect_rc RC CMD... : runs chingu, checks the exit status, leaves stdout in $OUT and stderr in $ERR.
expect_rc() {
  local want=$1; shift
  "$CHINGU_BIN" "$@" >"$WORK/out" 2>"$WORK/err"; local rc=$?
  OUT=$(cat "$WORK/out"); ERR=$(cat "$WORK/err")
  [ "$rc" = "$want" ] || fail "chingu $* exited $rc, expected $want; stderr: $ERR"
}

run_all() {
  DB=("$@")
  expect_rc 0 user add 민지 "${DB[@]}"; UID_A=$OUT
  expect_rc 0 user add bob "${DB[@]}"
  expect_rc 1 user add bob "${DB[@]}"
  expect_rc 0 user list --json "${DB[@]}"
  python3 -c 'import json,sys; u=json.loads(sys.argv[1]); assert [x["name"] for x in u]==["민지","bob"], u' "$OUT" || fail "user list"
  expect_rc 0 key create --user 민지 "${DB[@]}"
  [[ "$OUT" =~ ^cg-[A-Za-z0-9_-]{43}$ ]] || fail "key format: $OUT"
  KEY_ID=$(sed -n 's/^key id \([0-9]*\) .*/\1/p' <<<"$ERR")
  [ -n "$KEY_ID" ] || fail "no key id on stderr: $ERR"
  expect_rc 1 key revoke --user bob "$KEY_ID" "${DB[@]}"      # not bob's key
  expect_rc 0 key revoke --user 민지 "$KEY_ID" "${DB[@]}"
  expect_rc 2 key create "${DB[@]}"

  cat >"$WORK/m.jsonl" <<'J'
{"id":"m1","text":"서울에 살아요","kind":"profile","importance":0.5,"created_at":"2025-01-02T03:04:05Z"}

{"id":"m2","text":"아침마다 커피를 마셔요","kind":"preference"}
{"id":"m3","text":"I moved to 부산 last month","supersedes":"m1","created_at":"2025-06-01T00:00:00+09:00"}
{"text":"dentist appointment on Friday","kind":"task","importance":1}
J
  expect_rc 0 memory import --user 민지 "$WORK/m.jsonl" "${DB[@]}"
  [[ "$ERR" == *"imported 4 memories"* ]] || fail "import count: $ERR"
  expect_rc 0 memory search --user 민지 --json 커피 "${DB[@]}"
  python3 -c '
import json,sys; r=json.loads(sys.argv[1])
assert len(r)==1 and r[0]["id"]=="m2" and r[0]["text"]=="아침마다 커피를 마셔요" and r[0]["score"]>0, r' "$OUT" || fail "search 커피: $OUT"
  expect_rc 0 memory search --user 민지 --json --k 5 "서울 부산" "${DB[@]}"
  python3 -c '
import json,sys; r=json.loads(sys.argv[1])
assert [x["id"] for x in r]==["m3"], r   # m1 (Seoul) is superseded: not current' "$OUT" || fail "search 서울 부산: $OUT"
  expect_rc 0 memory search --user 민지 --json --all 서울 "${DB[@]}"
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert [x["id"] for x in r]==["m1"] and not r[0]["current"], r' "$OUT" \
    || fail "search --all 서울: $OUT"
  expect_rc 0 memory list --user 민지 --json "${DB[@]}"
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert len(r)==3 and "m1" not in [x["id"] for x in r], r' "$OUT" || fail "list"
  expect_rc 0 memory add --user 민지 --kind note --importance 0.3 "고양이 이름은 나비" "${DB[@]}"; NABI=$OUT
  [[ "$NABI" =~ ^[0-9]+$ ]] || fail "add printed '$NABI'"
  expect_rc 0 memory search --user 민지 --json 고양이 "${DB[@]}"
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r[0]["id"]==sys.argv[2] and r[0]["kind"]=="note", r' "$OUT" "$NABI" || fail "search 고양이"

  # Isolation: bob sees and deletes nothing of minji's.
  expect_rc 0 memory search --user bob --json "커피 고양이 dentist" "${DB[@]}"
  [ "$OUT" = "[]" ] || fail "bob found: $OUT"
  expect_rc 1 memory forget --user bob "$NABI" "${DB[@]}"
  [[ "$ERR" == *"has no memory $NABI"* ]] || fail "forget message: $ERR"
  expect_rc 0 memory export --user bob "${DB[@]}"
  [[ "$OUT" != *고양이* ]] || fail "bob's export holds minji's text"

  # Import errors name the line; nothing is written when any line is bad.
  printf '{"text":"ok line"}\n{"id":"x","kind":"profile"}\n' >"$WORK/bad1.jsonl"
  expect_rc 1 memory import --user 민지 "$WORK/bad1.jsonl" "${DB[@]}"
  [[ "$ERR" == *"line 2"*'"text" is required'* ]] || fail "bad1: $ERR"
  printf '{"text":"a"}\n\n{"text":"b","importance":1.5}\n' >"$WORK/bad2.jsonl"
  expect_rc 1 memory import --user 민지 "$WORK/bad2.jsonl" "${DB[@]}"
  [[ "$ERR" == *"line 3"*importance* ]] || fail "bad2: $ERR"
  printf '{"text":"c","created_at":"2025-13-01"}\n' >"$WORK/bad3.jsonl"
  expect_rc 1 memory import --user 민지 "$WORK/bad3.jsonl" "${DB[@]}"
  [[ "$ERR" == *"line 1"*created_at* ]] || fail "bad3: $ERR"
  printf '{"text":"d","supersedes":"nope"}\n' >"$WORK/bad4.jsonl"
  expect_rc 1 memory import --user 민지 "$WORK/bad4.jsonl" "${DB[@]}"
  [[ "$ERR" == *"line 1"*nope* ]] || fail "bad4: $ERR"
  printf '{"text": "e"\n' >"$WORK/bad5.jsonl"
  expect_rc 1 memory import --user 민지 "$WORK/bad5.jsonl" "${DB[@]}"
  [[ "$ERR" == *"line 1"*"not valid JSON"* ]] || fail "bad5: $ERR"
  expect_rc 0 memory list --user 민지 --json "${DB[@]}"
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert len(r)==4, len(r)' "$OUT" || fail "a bad import wrote rows"

  expect_rc 2 memory frob --user 민지 "${DB[@]}"
  expect_rc 2 memory search --user 민지 --k 0 x "${DB[@]}"
  expect_rc 1 memory list --user nobody "${DB[@]}"
  [[ "$ERR" == *"no user 'nobody'"* ]] || fail "unknown user: $ERR"

  expect_rc 0 memory forget --user 민지 --all "${DB[@]}"
  [[ "$ERR" == *"forgot 5 memories"* ]] || fail "forget --all (4 current + 1 superseded): $ERR"
  expect_rc 0 user rm 민지 "${DB[@]}"
  expect_rc 1 memory export --user 민지 "${DB[@]}"
  expect_rc 0 user list "${DB[@]}"
  [ "$(printf '%s\n' "$OUT" | cut -f2)" = "bob" ] || fail "after rm: $OUT"
  echo "ok [$DBNAME]"
}

DBNAME=sqlite
run_all --data-dir "$WORK/data"
[ -f "$WORK/data/chingu.db" ] || fail "no chingu.db in the data dir"

DBNAME=postgres
PGURL=${CG_TEST_PG:-}
if [ -z "$PGURL" ]; then
  PGURL=$(bash "$SRC/tests/pg.sh" start); rc=$?
  if [ $rc = 77 ]; then echo "postgres: no server binaries: the PostgreSQL half is SKIPPED"; exit 0; fi
  [ $rc = 0 ] || fail "tests/pg.sh start failed"
  PGDIR=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$PGURL")
  psql "$PGURL" -qc "CREATE DATABASE cgcli" >/dev/null || fail "create database"
  PGURL="$PGURL dbname=cgcli"
fi
run_all --db "$PGURL"
