#!/usr/bin/env bash
# setup.sh — installs tests/e2e's pinned npm packages (npm ci) once, safely when several tests call
# it at the same time (flock). Exit 0 when every package of package-lock.json is installed, 77 when
# node/npm are missing or the registry cannot be reached (the caller then reports itself skipped).
set -u
dir=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: node/npm not installed"; exit 77; }
exec 9>"$dir/.npm.lock"
flock 9
installed() {
    node -e 'const fs = require("fs"), d = process.argv[1];
             const lock = JSON.parse(fs.readFileSync(d + "/package-lock.json", "utf8"));
             for (const [p, info] of Object.entries(lock.packages)) {
                 if (!p) continue;
                 let v; try { v = JSON.parse(fs.readFileSync(d + "/" + p + "/package.json", "utf8")).version } catch { process.exit(1) }
                 if (v !== info.version) process.exit(1);
             }' "$dir"
}
installed && exit 0
(cd "$dir" && timeout 300 npm ci --no-audit --no-fund >/dev/null 2>&1) || { echo "SKIP: npm ci failed (registry unreachable?)"; exit 77; }
installed || { echo "npm ci did not install package-lock.json's versions"; exit 1; }
