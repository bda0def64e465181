#!/usr/bin/env bash
# `chingu template` against every reference case in $CHINGU_TESTDATA/templates (via node), plus
# its usage and error exits. Exit 77 (skipped) when node or the reference data is absent.
set -u
bin=${CHINGU_BIN:?}
td=${CHINGU_TESTDATA:-../shared/testdata}
command -v node >/dev/null || { echo "SKIP: node not installed"; exit 77; }
[ -d "$td/templates" ] || { echo "SKIP: no reference data in $td/templates"; exit 77; }
export CHINGU_TESTDATA=$td
fail=0
node "$(dirname "$0")/template_cli.mjs" || fail=1

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '[{"role":"user","content":"안녕"}]' > "$tmp/m.json"
# A built-in renders without a model; the usage errors exit 2; a bad template exits 1 with one line.
out=$("$bin" template --builtin chatml --messages "$tmp/m.json")
[ "$out" = $'<|im_start|>user\n안녕<|im_end|>\n<|im_start|>assistant' ] || { echo "chatml built-in: got [$out]"; fail=1; }
"$bin" template --messages "$tmp/m.json" 2>/dev/null; [ $? -eq 2 ] || { echo "missing source: want exit 2"; fail=1; }
printf '{%% if %%}' > "$tmp/bad.jinja"
err=$("$bin" template --template "$tmp/bad.jinja" --messages "$tmp/m.json" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [[ "$err" == *"line 1"* ]] || { echo "bad template: rc $rc [$err]"; fail=1; }
printf '[{"role":' > "$tmp/badm.json"
"$bin" template --builtin chatml --messages "$tmp/badm.json" 2>/dev/null; [ $? -eq 1 ] || { echo "bad messages: want exit 1"; fail=1; }
"$bin" template --builtin nosuch --messages "$tmp/m.json" 2>/dev/null; [ $? -eq 1 ] || { echo "unknown built-in: want exit 1"; fail=1; }
"$bin" template --builtin chatml --messages "$tmp/m.json" --now yesterday 2>/dev/null; [ $? -eq 1 ] || { echo "bad --now: want exit 1"; fail=1; }
models=$td/../models
if [ -f "$models/random/rand-qwen3-F32.gguf" ]; then
    # A model without tokenizer.chat_template falls back to chatml, as llama.cpp does.
    out=$("$bin" template -m "$models/random/rand-qwen3-F32.gguf" --messages "$tmp/m.json" 2>/dev/null)
    [ "$out" = $'<|im_start|>user\n안녕<|im_end|>\n<|im_start|>assistant' ] || { echo "model fallback: got [$out]"; fail=1; }
fi
[ $fail -eq 0 ] && echo "template CLI: ok"
exit $fail
