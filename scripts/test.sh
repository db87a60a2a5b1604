#!/usr/bin/env bash
# Runs every check: formatting, lints, native unit tests, the release wasm
# build, and the end-to-end suite against the real worker in workerd.
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

log "cargo test (native)"
cargo test -q

log "build the worker (release wasm, then the test build)"
bash scripts/build.sh
wasm=build/index_bg.wasm
[ -f "$wasm" ] || wasm="$(ls build/*.wasm | head -n1)"
printf 'wasm size: %s bytes raw, %s bytes gzip\n' "$(wc -c < "$wasm")" "$(gzip -9c "$wasm" | wc -c)"
bash scripts/build.sh --test

log "smoke test of the release build (and no test hooks in it)"
"$NODE22" --test --test-reporter=spec tests/release/smoke.test.mjs

log "Plausible stand-in self-test"
"$NODE22" --test --test-reporter=spec devstack/plausible.test.mjs

log "end-to-end tests in workerd (the test build)"
"$NODE22" tests/e2e/run.mjs

log "all checks passed in $(elapsed)"
