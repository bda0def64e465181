#!/usr/bin/env bash
# quantize.sh — `chingu quantize` as a user runs it: exit codes, messages, no partial files, and
# whole output files byte-identical to llama-quantize's for the mixes whose formats are exact
# (F16, BF16, Q8_0, Q4_0, Q5_1), one architecture each.
set -u
BIN=${CHINGU_BIN:?CHINGU_BIN not set}
MODELS=${CHINGU_TESTDATA:-../shared/testdata}/../models
[ -d "$MODELS/random" ] || { echo "SKIP: no $MODELS/random"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

expect_rc() {   # expect_rc RC CMD... : runs CMD, checks its exit status, keeps stderr in $T/err
    local want=$1; shift
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $(cat "$T/err")"
}

IN=$MODELS/random/rand-llama-spm-F32.gguf

# Usage errors: exit 2.
expect_rc 2 "$BIN" quantize
expect_rc 2 "$BIN" quantize "$IN" "$T/x.gguf"
expect_rc 2 "$BIN" quantize "$IN" "$T/x.gguf" Q8_0 --bogus
expect_rc 2 "$BIN" quantize "$IN" "$T/x.gguf" Q8_0 --threads zero

# Unknown TYPE: one line naming it and listing the valid ones, exit 1, nothing written.
expect_rc 1 "$BIN" quantize "$IN" "$T/x.gguf" Q4_2
grep -q "unknown type 'Q4_2'" "$T/err" && grep -q "Q4_K_M" "$T/err" || fail "unknown-type message: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" = 1 ] || fail "unknown-type error is not one line"
[ -e "$T/x.gguf" ] && fail "output written for an unknown type"

# Missing input; output in a missing directory: exit 1, one line, no file or .tmp left.
expect_rc 1 "$BIN" quantize "$T/missing.gguf" "$T/x.gguf" Q8_0
grep -q "missing.gguf" "$T/err" || fail "missing-input message: $(cat "$T/err")"
expect_rc 1 "$BIN" quantize "$IN" "$T/nodir/x.gguf" F32
grep -q "nodir" "$T/err" || fail "missing-dir message: $(cat "$T/err")"
[ -e "$T/nodir" ] && fail "missing output directory was created"
[ "$(wc -l <"$T/err")" = 1 ] || fail "missing-dir error is not one line"

# A write that fails midway (file size limit standing in for a full disk): exit 1, one line
# naming the file, no OUT and no OUT.tmp left.
(ulimit -f 200; trap '' XFSZ; exec "$BIN" quantize "$IN" "$T/full.gguf" F32) >"$T/out" 2>"$T/err"
rc=$?
[ $rc = 1 ] || fail "write failure exited $rc, expected 1: $(cat "$T/err")"
grep -q "full.gguf.tmp" "$T/err" || fail "write-failure message: $(cat "$T/err")"
[ -e "$T/full.gguf" ] || [ -e "$T/full.gguf.tmp" ] && fail "partial output left after a failed write"

# Whole files byte-identical to llama-quantize's where every format is exact.
n_ok=0 n_skip=0
for pair in llama-spm:Q8_0 llama3-bpe:Q4_0 qwen2:F16 qwen3:BF16 gemma3:Q5_1 phi3:Q4_1; do
    arch=${pair%%:*} mix=${pair##*:}
    out="$T/rand-$arch-$mix.gguf"
    "$BIN" quantize "$MODELS/random/rand-$arch-F32.gguf" "$out" "$mix" --threads 2 >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc != 0 ] && grep -q "cannot write yet" "$T/err"; then   # quantizer not built yet
        n_skip=$((n_skip + 1)); continue
    fi
    [ $rc = 0 ] || fail "quantize $arch $mix exited $rc: $(cat "$T/err")"
    if [ -e "$out" ]; then
        grep -q "quantized .* -> .*$mix" "$T/out" || fail "no summary line: $(cat "$T/out")"
        if cmp -s "$out" "$MODELS/random/rand-$arch-$mix.gguf"; then
            n_ok=$((n_ok + 1))
        else
            fail "$out differs from rand-$arch-$mix.gguf ($(cmp "$out" "$MODELS/random/rand-$arch-$mix.gguf" | head -1))"
        fi
        [ -e "$out.tmp" ] && fail "$out.tmp left behind"
        rm -f "$out"
    fi
done
echo "chingu quantize: $n_ok/6 files byte-identical to llama-quantize's ($n_skip skipped: quantizer not built)"

[ "$fails" = 0 ] || { echo "$fails failure(s)"; exit 1; }
[ "$n_skip" = 0 ] || { echo "SKIP: $n_skip conversions need quantizers chingu does not have yet"; exit 77; }
echo "all quantize CLI checks passed"
