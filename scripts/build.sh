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

# wasm-opt (npm `binaryen`, version 132 = the one worker-build 0.8.7 pins),
# run here rather than by worker-build, whose own run keeps the names
# section (`--debuginfo`, ~500 KB raw) and would download binaryen from
# GitHub. Cargo.toml keeps worker-build's run off (`wasm-opt = false`).
#
# Features: exactly the ones rustc's wasm32 output and wasm-bindgen's catch
# wrappers use (`try_table` needs exception-handling). Not --all-features:
# that lets binaryen pick encodings (GC type sections, newer opcodes) that
# the Workers runtime may not accept yet; worker-build lists the same set
# for the same reason. The result is also smaller gzipped.
#
# -Os rather than -Oz: measured on this module, -Os gives the smallest gzip
# (what the size budget counts) and -Oz only trims raw bytes; see
# BENCHMARKS.md ("Size").
#
# Both builds (build/ and the test build's build-test/) are optimised alike,
# so the end-to-end tests run the module as it would be deployed. The
# optimised module is cached by the hash of its input, so a build whose
# Rust did not change does not pay wasm-opt's ~20 s again.
wasm="$OUT/index_bg.wasm"
cache_dir=target/wasm-opt-cache
wasm_opt_flags=(-Os
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int
  --enable-bulk-memory --enable-multivalue --enable-reference-types
  --enable-exception-handling)
key="$( { "$ROOT/node_modules/.bin/wasm-opt" --version; echo "${wasm_opt_flags[*]}"; cat "$wasm"; } | sha256sum | cut -c1-32)"
mkdir -p "$cache_dir"
if [ ! -f "$cache_dir/$key.wasm" ]; then
  log "wasm-opt ${wasm_opt_flags[*]}"
  raw_before="$(wc -c < "$wasm")"
  "$ROOT/node_modules/.bin/wasm-opt" "${wasm_opt_flags[@]}" "$wasm" -o "$cache_dir/$key.tmp"
  mv "$cache_dir/$key.tmp" "$cache_dir/$key.wasm"
  # Keep only the latest few optimised modules.
  ls -t "$cache_dir"/*.wasm | tail -n +5 | xargs -r rm -f
  printf 'wasm-opt: %s -> %s bytes\n' "$raw_before" "$(wc -c < "$cache_dir/$key.wasm")" >&2
fi
cp "$cache_dir/$key.wasm" "$wasm"
