#!/usr/bin/env bash
# schema_ajv.sh — 200 grammar-constrained generations per schema in tests/schemas (made by the
# test_sample_schema binary, adversarial random logits) and CG_MODEL_GENS (default 2) per schema made
# with the random-weight qwen2 model (test_sample_model, under a token budget of the schema's shortest
# sentence + 24 unless CG_MODEL_MAX_TOKENS says otherwise, so closing mode runs), validated by ajv (pinned in
# tests/e2e/package.json), an independent JSON Schema validator. Exit 77 (skip) without node/npm
# or when the npm registry cannot be reached.
set -euo pipefail
: "${CHINGU_SRC:?}" "${CHINGU_BIN:?}"
command -v node >/dev/null && command -v npm >/dev/null || { echo "node/npm not installed: skipping"; exit 77; }
BUILD_DIR=$(dirname "$CHINGU_BIN")
GEN="$BUILD_DIR/test_sample_schema"
[ -x "$GEN" ] || { echo "missing $GEN"; exit 1; }
NODE_DIR="$CHINGU_SRC/tests/e2e"
rc=0; bash "$NODE_DIR/setup.sh" || rc=$?
[ $rc -eq 0 ] || exit $rc
OUT=$(mktemp -d)
OUT_MODEL=$(mktemp -d)
trap 'rm -rf "$OUT" "$OUT_MODEL"' EXIT
CG_SCHEMA_OUT="$OUT" "$GEN"
NODE_PATH="$NODE_DIR/node_modules" node "$CHINGU_SRC/tests/e2e/validate_schemas.cjs" "$CHINGU_SRC/tests/schemas" "$OUT"
# the model run skips (cmocka SKIPPED, no outputs) when the random models are absent
CG_SCHEMA_MODEL_OUT="$OUT_MODEL" "$BUILD_DIR/test_sample_model"
if [ -n "$(ls -A "$OUT_MODEL")" ]; then
  echo "--- generations by rand-qwen2-F32:"
  NODE_PATH="$NODE_DIR/node_modules" node "$CHINGU_SRC/tests/e2e/validate_schemas.cjs" "$CHINGU_SRC/tests/schemas" "$OUT_MODEL"
fi
