#!/usr/bin/env bash
# kern_neon.sh — cross-compiles the NEON kernels with their scalar reference for aarch64 and runs
# tests/cross/kern_neon.c (NEON kernels and the NEON compute-op table vs the reference) under qemu-user. Skipped (77) without
# aarch64-linux-gnu-gcc or qemu-aarch64(-static): apt-get install gcc-aarch64-linux-gnu qemu-user-static.
set -u
SRC=${CHINGU_SRC:?CHINGU_SRC not set}
CC=aarch64-linux-gnu-gcc
command -v $CC >/dev/null || { echo "SKIP: no $CC"; exit 77; }
QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64) || { echo "SKIP: no qemu-aarch64"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
FLAGS="-std=c11 -O2 -D_DEFAULT_SOURCE -Wall -Wextra -Wshadow -Werror -Wno-unused-parameter -I$SRC/include -I$SRC/src"
objs=()
for f in "$SRC"/src/quant/*.c; do   # the reference rounds every operation (as in CMakeLists.txt)
    $CC $FLAGS -ffp-contract=off -c "$f" -o "$T/$(basename "$f" .c).o" || exit 1
    objs+=("$T/$(basename "$f" .c).o")
done
for f in "$SRC"/src/base/{err,arena,thread,time}.c "$SRC"/src/kern/{cpu,qops,qmatmul,dispatch,repack,expf}.c "$SRC"/src/kern/generic/*.c \
    "$SRC"/src/kern/arm/*.c "$SRC"/tests/cross/kern_neon.c; do
    o="$T/k_$(basename "$(dirname "$f")")_$(basename "$f" .c).o"
    $CC $FLAGS -c "$f" -o "$o" || exit 1
    objs+=("$o")
done
$CC -static "${objs[@]}" -lm -lpthread -o "$T/kern_neon" || exit 1
"$QEMU" "$T/kern_neon"
