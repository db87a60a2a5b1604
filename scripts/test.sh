#!/usr/bin/env bash
# Runs every check: formatting, lints, native unit tests, the release wasm
# build and its smoke test, the test build (cargo feature test-hooks), and
# the end-to-end suite and the attack suite against the test build in workerd.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

log "setup"
bash scripts/setup.sh

log "architecture (module graph, layering, file sizes)"
"$NODE22" scripts/check-architecture.mjs

log "cargo fmt --check"
cargo fmt --check

log "cargo clippy (native and wasm32; release and test builds)"
cargo clippy -q --all-targets -- -D warnings
cargo clippy -q --all-targets --features test-hooks -- -D warnings
cargo clippy -q --target wasm32-unknown-unknown --lib -- -D warnings
cargo clippy -q --target wasm32-unknown-unknown --lib --features test-hooks -- -D warnings

log "cargo test (native; release and test builds)"
cargo test -q
cargo test -q --features test-hooks

log "build the worker (release wasm)"
bash scripts/build.sh
# The size line (issue 12): what a deployment uploads, wasm plus its JS
# shim, each gzip -9, against the budget of the TypeScript product's
# minified bundle. A line to watch, not a failure (yet).
log "size against the budget"
wasm=build/index_bg.wasm
shim=build/index.js
budget=261192
wasm_raw="$(wc -c < "$wasm")"; wasm_gz="$(gzip -9c < "$wasm" | wc -c)"
shim_raw="$(wc -c < "$shim")"; shim_gz="$(gzip -9c < "$shim" | wc -c)"
total=$((wasm_gz + shim_gz))
if [ "$total" -le "$budget" ]; then verdict="within budget by $((budget - total))"; else verdict="OVER budget by $((total - budget))"; fi
printf 'size: wasm %s raw, %s gzip -9; JS shim %s raw, %s gzip -9; total %s bytes gzip -9 against the budget of %s: %s\n' \
  "$wasm_raw" "$wasm_gz" "$shim_raw" "$shim_gz" "$total" "$budget" "$verdict"

log "build the test build (cargo feature test-hooks, build-test/)"
bash scripts/build.sh --test

log "smoke test of the release build (and no test hooks in it)"
"$NODE22" --test --test-reporter=spec tests/release/smoke.test.mjs

log "Plausible stand-in self-test"
"$NODE22" --test --test-reporter=spec devstack/plausible.test.mjs

log "end-to-end tests in workerd (the test build)"
"$NODE22" tests/e2e/run.mjs

log "attack suite in workerd (the test build; tests/attack/CASES.md)"
"$NODE22" tests/attack/run.mjs

log "all checks passed in $(elapsed)"
