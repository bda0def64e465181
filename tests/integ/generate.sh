#!/usr/bin/env bash
# `chingu generate`, `chingu logits` and `chingu run` against llama.cpp's references
# (testdata/gen: prompt tokens, greedy tokens, last-position logits), plus usage/error exits.
# Skips (77) without the shared models or python3 (used to read the reference JSON).
set -u
B=${CHINGU_BIN:?}
T=${CHINGU_TESTDATA:-../shared/testdata}
M=$T/../models
[ -f "$M/real/stories260K.gguf" ] && [ -d "$T/gen" ] || { echo "models not found: skipped"; exit 77; }
command -v python3 >/dev/null || { echo "python3 not found: skipped"; exit 77; }
fail=0
check() {   # name expected actual
    if [ "$2" != "$3" ]; then echo "FAIL $1"; echo "  want: $2"; echo "  got:  $3"; fail=1; else echo "ok   $1"; fi
}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Greedy generation: prompt tokens identical; generated tokens identical up to the first step whose
# reference top-2 margin is under 0.01 (the comparison prints how many steps it covered).
for spec in stories260K:0 rand-qwen3-Q4_K_M:2 rand-gemma3-F32:0 rand-phi3-Q8_0:1 rand-llama3-bpe-F16:2; do
    name=${spec%:*}; k=${spec#*:}
    prompt=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['prompts'][int(sys.argv[2])]['text'], end='')" "$T/gen/$name/ref.json" "$k")
    mp=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['model_path'])" "$T/gen/$name/ref.json")
    "$B" generate -m "$T/../$mp" -p "$prompt" -n 32 --temp 0 --ignore-eos --kv-type f32 --json > "$TMP/out.json" 2> "$TMP/err"
    rc=$?
    check "$name p$k: exit status" 0 $rc
    res=$(python3 - "$T/gen/$name/ref.json" "$k" "$TMP/out.json" <<'PY'
import json, sys
ref = json.load(open(sys.argv[1]))['prompts'][int(sys.argv[2])]
got = json.load(open(sys.argv[3]))
if got['prompt_tokens'] != ref['prompt_tokens']:
    print('prompt tokens differ'); sys.exit()
n = 0
for g, (want, top) in enumerate(zip(ref['generated'], ref['gen_top2'])):
    if top[1] - top[3] < 0.01: break
    if got['tokens'][g] != want:
        print('token %d: got %d want %d' % (g, got['tokens'][g], want)); sys.exit()
    n += 1
print('ok %d' % n)
PY
)
    echo "     $name p$k: $res"
    check "$name p$k: tokens" ok "${res%% *}"
done

# The documented sanity text (testdata README), streamed (no --json), default F16 cache.
out=$("$B" generate -m "$M/real/stories260K.gguf" -p "Once upon a time" -n 32 --temp 0)
check "stories260K text" ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw" "$out"

# Logits of the last prompt position against last_logits.f32 (row 0), F32 cache: |Δ| ≤ 1e-3.
"$B" logits -m "$M/real/stories260K.gguf" -p "Once upon a time" -o "$TMP/l.f32" --kv-type f32 2>/dev/null
check "logits: exit status" 0 $?
res=$(python3 - "$T/gen/stories260K/last_logits.f32" "$TMP/l.f32" <<'PY'
import struct, sys
ref = open(sys.argv[1], 'rb').read(); got = open(sys.argv[2], 'rb').read()
n = len(got) // 4
if n != 512: print('size %d' % len(got)); sys.exit()
r = struct.unpack('<512f', ref[:2048]); g = struct.unpack('<512f', got)
d = max(abs(a - b) for a, b in zip(r, g))
print('ok' if d <= 1e-3 else 'max|d| %g' % d, d)
PY
)
echo "     logits: $res"
check "logits: within 1e-3" ok "${res%% *}"

# run: a story, multi-turn input, /clear and /exit.
out=$(printf 'Once upon a time\n/clear\nOnce upon a time\n/exit\n' | "$B" run "$M/real/stories260K.gguf" -n 12 2>/dev/null)
check "run: tells a story twice" 2 "$(grep -c 'there was a little girl named Lily' <<<"$out")"

# Errors: a prompt longer than the context states both numbers; bad options are usage errors.
long=$(python3 -c "print('a ' * 300, end='')")
msg=$("$B" generate -m "$M/real/stories260K.gguf" -p "$long" -c 64 2>&1 >/dev/null); rc=$?
check "long prompt: exit 1" 1 $rc
check "long prompt: both numbers" "chingu: generate: the prompt has 302 tokens but the context holds only 64" "$msg"
"$B" generate -m "$M/real/stories260K.gguf" -p x --kv-type q4 >/dev/null 2>&1; check "bad --kv-type (2)" 2 $?
"$B" generate -m "$M/real/stories260K.gguf" >/dev/null 2>&1; check "no prompt (2)" 2 $?
"$B" logits -m /nonexistent.gguf -p x -o "$TMP/x" >/dev/null 2>&1; check "missing model (1)" 1 $?
"$B" run >/dev/null 2>&1; check "run without model (2)" 2 $?
exit $fail
