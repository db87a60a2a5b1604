#!/usr/bin/env bash
# Builds the Worker into build/ (index.js + wasm): the release build, what
# `wrangler deploy` ships. Wrangler runs this as its build command; the
# tools come from scripts/setup.sh, never from GitHub.
#   --test  the test build into build-test/: cargo feature `test-hooks`
#           (X-Test-Identity, storage latency and layout knobs), which the
#           end-to-end tests and the scale benchmark run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUT=build
FEATURES=()
if [ "${1:-}" = --test ]; then
  OUT=build-test
  FEATURES=(--features test-hooks)
fi

# The end-to-end harness builds once up front and starts wrangler with this
# set, so each wrangler start does not rebuild.
if [ "${PLAUSIBLE_MCP_SKIP_BUILD:-}" = 1 ] && [ -f "$OUT/index.js" ]; then
  exit 0
fi

export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"

if [ -f target/.wasm-fallback ]; then
  # Debian's rustc-web builds std for wasm32 itself.
  export RUSTC=/usr/bin/rustc-web
  export RUSTC_BOOTSTRAP=1
  export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
fi

worker-build --release --out-dir "$OUT" "${FEATURES[@]}"
