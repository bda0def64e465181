#!/usr/bin/env bash
# dev.sh — the one entry point for people and CI on Debian/Ubuntu.
#
#   ./dev.sh run [ARGS…]   install missing packages, build (release), run chingu ARGS…
#   ./dev.sh test          install missing packages, build, run every test; then again under ASan+UBSan,
#                          then a short libFuzzer run of each fuzz target
#   ./dev.sh deps | build [PRESET] | fuzz [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"

PKGS=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
      libcmocka-dev libsqlite3-dev libpq-dev libsodium-dev libpcre2-dev libutf8proc-dev
      libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev postgresql
      gcc-aarch64-linux-gnu qemu-user-static)   # the last two: NEON kernels cross-built and run under qemu

deps() {
    local missing=()
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    # Node.js (end-to-end tests with the official clients): any install will do; Debian's otherwise.
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "dev.sh: installing Debian packages: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
    local preset=${1:-release}
    cmake --preset "$preset" >/dev/null
    cmake --build --preset "$preset"
}

jobs() { nproc 2>/dev/null || echo 2; }

LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

run_tests() {
    local preset=$1
    build "$preset"
    ctest --preset "$preset" -j "$(jobs)" --timeout 900 2>&1 | tee -a "$LOG"
    return "${PIPESTATUS[0]}"
}

# One closing line over every ctest run: "N passed, N failed".
summary() {
    awk '/tests passed, [0-9]+ tests? failed out of/ {
            for (i = 1; i <= NF; i++) { if ($i == "failed") f += $(i-1); if ($i == "of") t += $(i+1) }
         } END { printf "all: %d passed, %d failed\n", t - f, f }' "$LOG"
}

fuzz() {
    local secs=${1:-30}
    cmake --preset fuzz -DCG_FUZZ_SECONDS="$secs" >/dev/null
    cmake --build --preset fuzz
    ctest --preset fuzz -j "$(jobs)" 2>&1 | tee -a "$LOG"
    return "${PIPESTATUS[0]}"
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
    deps) deps ;;
    build) deps; build "${1:-release}" ;;
    run) deps; build release >/dev/null; exec ./build/release/chingu "$@" ;;
    test)
        deps
        echo "== debug build: every test =="
        run_tests debug
        echo "== ASan+UBSan build: every test =="
        run_tests asan
        echo "== fuzz targets: ${CG_FUZZ_SECONDS:-30} s each =="
        fuzz "${CG_FUZZ_SECONDS:-30}"
        summary
        ;;
    fuzz) deps; fuzz "${1:-1800}" ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
esac
