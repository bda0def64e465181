#!/usr/bin/env bash
# `chingu run` in chat mode: a built-in template over a random model, several turns, /clear, and a
# turn longer than the context (an error that names both numbers, then the session goes on).
# Exit 77 when the shared models are absent.
set -u
bin=${CHINGU_BIN:?}
models=${CHINGU_TESTDATA:-../shared/testdata}/../models
m=$models/random/rand-qwen3-Q8_0.gguf
[ -f "$m" ] || { echo "SKIP: $m not found"; exit 77; }
fail=0
long=$(printf 'word %.0s' $(seq 1 400))
out=$(printf 'Hello there\n/clear\n안녕하세요\n%s\nsecond turn\n/exit\n' "$long" |
      timeout 120 "$bin" run "$m" --template chatml -n 8 -c 256 --system "You are chingu." 2>&1); rc=$?
[ $rc -eq 0 ] || { echo "exit $rc"; fail=1; }
[[ "$out" == *"chat template: chatml"* ]] || { echo "no chat-template line"; fail=1; }
[[ "$out" == *"[conversation cleared]"* ]] || { echo "no /clear"; fail=1; }
[ "$(grep -o '^> ' <<<"$out" | wc -l)" -ge 4 ] || { echo "fewer than 4 prompts"; fail=1; }
grep -q '256' <<<"$out" || { echo "over-long turn: no message naming the context size"; fail=1; }
[ $fail -eq 0 ] || printf '%s\n' "--- output of the chat run:" "$out"
# The model's own template is used when it has one; --raw falls back to plain text.
out=$(printf 'Once upon a time\n/exit\n' | timeout 60 "$bin" run "$models/real/stories260K.gguf" -n 30 2>&1)
[[ "$out" == *"plain-text turns"* && "$out" == *"there was a little girl"* ]] || { echo "stories260K plain mode: [$out]"; fail=1; }
"$bin" run "$m" --template nosuch </dev/null >/dev/null 2>&1; [ $? -eq 1 ] || { echo "unknown template: want exit 1"; fail=1; }
[ $fail -eq 0 ] && echo "run chat: ok"
echo "$out" | tail -2
exit $fail
