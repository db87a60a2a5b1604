#!/usr/bin/env bash
# Builds the Worker into build/ (index.js + wasm). Wrangler runs this as its
# build command; the tools come from scripts/setup.sh, never from GitHub.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The end-to-end harness builds once up front and starts wrangler with this
# set, so each wrangler start does not rebuild.
if [ "${PLAUSIBLE_MCP_SKIP_BUILD:-}" = 1 ] && [ -f build/index.js ]; then
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

worker-build --release
