#!/usr/bin/env bash
# kern_synth.sh — `chingu synth` and `chingu bench` as a user runs them.
#  * Tensor names, types and shapes of synth files equal those of llama-quantize's files of the
#    same shape (shared/models/random: rand-llama-spm untied, rand-qwen2 tied + biases) for seven
#    mixes — the mix rules, tensor set and order are the real ones.
#  * A synth model loads and runs: chingu bench prints both tests with finite t/s, the roofline (and
#    the paired one: a probe before every tg run and after the last; and the interleaved one, whose
#    fraction is its decode GB/s over its probe GB/s) and the CPU time per token.
#  * Usage errors exit 2 with a message naming the problem.
set -u
BIN=${CHINGU_BIN:?CHINGU_BIN not set}
MODELS=${CHINGU_TESTDATA:-../shared/testdata}/../models
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# name, type, shape of every tensor in `chingu info` order.
tensors() { "$BIN" info "$1" | awk '/^tensors/ {on=1; next} on && NF > 3 && $1 ~ /^[0-9]+$/ {s=$2" "$3; for (i = 4; i <= NF - 2; i++) s = s" "$i; print s}'; }

expect_rc() {
    local want=$1; shift
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $(cat "$T/err")"
}

if [ -d "$MODELS/random" ]; then
    n_same=0
    for mix in Q4_0 Q8_0 Q4_K_M Q2_K Q3_K_M Q5_K_M Q6_K; do
        "$BIN" synth --arch llama --n-embd 256 --n-ff 256 --n-layer 2 --n-head 4 --n-head-kv 2 --n-vocab 512 \
            --type $mix -o "$T/l.gguf" >/dev/null || fail "synth llama $mix"
        "$BIN" synth --arch qwen2 --tied --n-embd 256 --n-ff 256 --n-layer 2 --n-head 4 --n-head-kv 2 --n-vocab 1027 \
            --type $mix -o "$T/q.gguf" >/dev/null || fail "synth qwen2 $mix"
        if diff <(tensors "$MODELS/random/rand-llama-spm-$mix.gguf") <(tensors "$T/l.gguf") >"$T/d"; then
            n_same=$((n_same + 1))
        else fail "llama $mix tensor table differs from llama-quantize's:"; cat "$T/d"; fi
        if diff <(tensors "$MODELS/random/rand-qwen2-$mix.gguf") <(tensors "$T/q.gguf") >"$T/d"; then
            n_same=$((n_same + 1))
        else fail "qwen2 $mix tensor table differs from llama-quantize's:"; cat "$T/d"; fi
    done
    echo "synth: $n_same of 14 tensor tables identical with llama-quantize's files"
else
    echo "no shared models: tensor-table comparison skipped"
fi

# Runs: a small model through bench (both tests, the roofline line, finite numbers).
"$BIN" synth --arch llama --n-embd 256 --n-ff 512 --n-layer 2 --n-head 4 --n-head-kv 2 --n-vocab 300 --type Q4_K_M \
    -o "$T/s.gguf" >"$T/out" || fail "synth small model: $(cat "$T/out")"
grep -q "Q4_K_M" "$T/out" || fail "synth summary does not name the mix: $(cat "$T/out")"
"$BIN" bench -m "$T/s.gguf" -t 2 -p 16 -n 4 -r 2 >"$T/bench" 2>&1 || fail "bench: $(cat "$T/bench")"
grep -Eq '\| pp16 \| [0-9]+\.[0-9]+ ± [0-9]+\.[0-9]+ \|' "$T/bench" || fail "bench: no pp16 row: $(cat "$T/bench")"
grep -Eq '\| tg4 \| [0-9]+\.[0-9]+ ± [0-9]+\.[0-9]+ \|' "$T/bench" || fail "bench: no tg4 row: $(cat "$T/bench")"
grep -q "roofline: read bandwidth" "$T/bench" || fail "bench: no roofline line"
grep -Eq 'roofline, paired: .* \(best of 3 reads of 1 GiB each; [0-9]+\.[0-9]+\.\.[0-9]+\.[0-9]+ GB/s\): [0-9]+\.[0-9] % on average \(runs [0-9]+\.[0-9]\.\.[0-9]+\.[0-9] %\)' "$T/bench" ||
    fail "bench: no paired roofline line: $(cat "$T/bench")"
grep -Eq 'roofline, interleaved: tg4 again 2 times in blocks of 16 tokens, one read of a 256 MiB probe before each block and after the last \([0-9]+\.[0-9]+\.\.[0-9]+\.[0-9]+ GB/s\): decode read [0-9]+\.[0-9]+ GB/s, the probe [0-9]+\.[0-9]+ GB/s over the same span: [0-9]+\.[0-9] %' "$T/bench" ||
    fail "bench: no interleaved roofline line: $(cat "$T/bench")"
grep -Eq 'cpu time per token: [0-9]+\.[0-9]+ ms \(pp16\), [0-9]+\.[0-9]+ ms \(tg4\)' "$T/bench" ||
    fail "bench: no CPU time per token line: $(cat "$T/bench")"
grep -Eqi "nan|inf " "$T/bench" && fail "bench: non-finite figure: $(cat "$T/bench")"
"$BIN" bench -m "$T/s.gguf" -p 8 -n 2 -r 1 -o json >"$T/json" 2>&1 || fail "bench json: $(cat "$T/json")"
grep -q '"tg_fraction"' "$T/json" || fail "bench json lacks tg_fraction: $(cat "$T/json")"
grep -Eq '"tg_fraction_paired": [0-9]+\.[0-9]+, "tg_fraction_paired_min": [0-9]+\.[0-9]+, "tg_fraction_paired_max": [0-9]+\.[0-9]+' "$T/json" ||
    fail "bench json lacks the paired fractions: $(cat "$T/json")"
grep -Eq '"cpu_ms_per_token": [0-9]+\.[0-9]+' "$T/json" || fail "bench json lacks cpu_ms_per_token: $(cat "$T/json")"
# The interleaved fraction is the decode's GB/s over the probe's, both positive.
jnum() { sed -nE "s/.*\"$1\": ([0-9.]+).*/\1/p" "$T/json"; }
fi_=$(jnum tg_fraction_interleaved) di=$(jnum interleaved_decode_gbps) pi=$(jnum interleaved_probe_gbps)
[ -n "$fi_" ] && [ -n "$di" ] && [ -n "$pi" ] &&
    awk -v f="$fi_" -v d="$di" -v p="$pi" 'BEGIN { exit !(d > 0 && p > 0 && f > 0 && (f - d / p) ^ 2 < 1e-6) }' ||
    fail "bench json: interleaved fraction $fi_ is not decode $di / probe $pi GB/s: $(cat "$T/json")"
cat "$T/bench"

# Usage errors.
expect_rc 2 "$BIN" synth --preset llama-9b --type Q4_0 -o "$T/x.gguf"
grep -q "llama-9b" "$T/err" || fail "unknown preset not named: $(cat "$T/err")"
expect_rc 2 "$BIN" synth --preset llama-3.2-1b --type Q4_2 -o "$T/x.gguf"
grep -q "Q4_2" "$T/err" || fail "unknown type not named: $(cat "$T/err")"
expect_rc 2 "$BIN" synth --arch llama --n-embd 256 --type Q4_0 -o "$T/x.gguf"
expect_rc 1 "$BIN" synth --arch gpt2 --n-embd 256 --n-ff 256 --n-layer 1 --n-head 4 --n-vocab 300 --type Q4_0 -o "$T/x.gguf"
grep -q "gpt2" "$T/err" || fail "unsupported arch not named: $(cat "$T/err")"
expect_rc 2 "$BIN" bench
expect_rc 1 "$BIN" bench -m "$T/missing.gguf" -p 1 -n 1 -r 1
[ -e "$T/x.gguf" ] && fail "a failed synth left $T/x.gguf behind"

[ "$fails" = 0 ] && echo "kern_synth: all checks passed"
exit $((fails > 0))
