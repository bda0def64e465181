#!/usr/bin/env bash
# `chingu tokenize` against llama.cpp's ids (values from testdata/tokenizer/vocab_vectors, cases 0 and
# 30 of stories260K and ggml-vocab-qwen3) and its usage / error exit codes. Skips (77) without models.
set -u
B=${CHINGU_BIN:?}
M=${CHINGU_TESTDATA:-../shared/testdata}/../models
[ -f "$M/real/stories260K.gguf" ] && [ -f "$M/vocab/ggml-vocab-qwen3.gguf" ] || { echo "models not found: skipped"; exit 77; }
fail=0
check() {   # name expected actual
    if [ "$2" != "$3" ]; then echo "FAIL $1"; echo "  want: $2"; echo "  got:  $3"; fail=1; else echo "ok   $1"; fi
}
T30='<s> and </s> and <|im_start|> are literal text here'
check "stories260K add_special" '{"ids":[1,346,306,414,263,304,341],' \
    "$("$B" tokenize -m "$M/real/stories260K.gguf" --json 'Hello world' | cut -c1-35)"
check "stories260K --special" '{"ids":[1,1,410,269,410,2,410,269,410,504,506,288,98,356,295,413,506,505,261,276,278,275,285,412,421,259,411,444,413,281,276],' \
    "$("$B" tokenize -m "$M/real/stories260K.gguf" --json --special "$T30" | sed 's/"pieces".*//')"
check "qwen3 plain" '{"ids":[44047,29,323,690,82,29,323,82639,318,4906,91,29,525,23141,1467,1588],' \
    "$("$B" tokenize -m "$M/vocab/ggml-vocab-qwen3.gguf" --json --no-bos "$T30" | sed 's/"pieces".*//')"
check "qwen3 --special" '{"ids":[44047,29,323,220,128247,323,220,151644,525,23141,1467,1588],' \
    "$("$B" tokenize -m "$M/vocab/ggml-vocab-qwen3.gguf" --json --special "$T30" | sed 's/"pieces".*//')"
printf 'Hello world' > "${TMPDIR:-/tmp}/chingu-tok-$$.txt"
check "--file, text output" "$(printf '     1 %s\n   346 %s' "'<s>'" "' He'")" \
    "$("$B" tokenize -m "$M/real/stories260K.gguf" --file "${TMPDIR:-/tmp}/chingu-tok-$$.txt" | head -2)"
rm -f "${TMPDIR:-/tmp}/chingu-tok-$$.txt"
"$B" tokenize -m "$M/real/stories260K.gguf" >/dev/null 2>&1; check "no text: usage (2)" 2 $?
"$B" tokenize -m /nonexistent.gguf x >/dev/null 2>&1; check "missing model (1)" 1 $?
"$B" tokenize -m "$M/real/stories260K.gguf" --bogus x >/dev/null 2>&1; check "unknown option (2)" 2 $?
exit $fail
