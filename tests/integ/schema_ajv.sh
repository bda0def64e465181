#!/usr/bin/env bash
# schema_ajv.sh — 200 grammar-constrained generations per schema in tests/schemas (made by the
# test_sample_schema binary, adversarial random logits), validated by ajv (pinned in
# tests/e2e/package.json), an independent JSON Schema validator. Exit 77 (skip) without node/npm
# or when the npm registry cannot be reached.
set -euo pipefail
: "${CHINGU_SRC:?}" "${CHINGU_BIN:?}"
command -v node >/dev/null && command -v npm >/dev/null || { echo "node/npm not installed: skipping"; exit 77; }
BUILD_DIR=$(dirname "$CHINGU_BIN")
GEN="$BUILD_DIR/test_sample_schema"
[ -x "$GEN" ] || { echo "missing $GEN"; exit 1; }
NODE_DIR="$BUILD_DIR/e2e-node"
mkdir -p "$NODE_DIR"
cp "$CHINGU_SRC/tests/e2e/package.json" "$CHINGU_SRC/tests/e2e/package-lock.json" "$NODE_DIR/"
if ! (cd "$NODE_DIR" && npm ci --no-audit --no-fund --silent); then
  echo "npm ci failed (registry unreachable?): skipping"; exit 77
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
CG_SCHEMA_OUT="$OUT" "$GEN"
NODE_PATH="$NODE_DIR/node_modules" node "$CHINGU_SRC/tests/e2e/validate_schemas.js" "$CHINGU_SRC/tests/schemas" "$OUT"
