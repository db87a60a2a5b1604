#!/usr/bin/env bash
# Installs everything the build and the tests need, and nothing twice:
# each step checks what is already there at the right version.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# 1. The wasm32 target. rustup has worked here; if it ever cannot, Debian's
#    rustc-web can build std for wasm32 itself (scripts/build.sh reads the
#    marker this leaves).
rm -f target/.wasm-fallback
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  if ! rustup target add wasm32-unknown-unknown; then
    log "rustup could not add wasm32; falling back to Debian rustc-web + build-std"
    apt-get update -qq && apt-get install -y -qq rustc-web rust-web-src lld-22
    mkdir -p target && touch target/.wasm-fallback
  fi
fi

# 2. wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock: the
#    CLI refuses a library of any other version. Built from the crate
#    registry, never downloaded from GitHub.
WBG_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WBG_VERSION" ]; then
  log "cargo install wasm-bindgen-cli $WBG_VERSION"
  cargo install -q wasm-bindgen-cli --version "=$WBG_VERSION"
fi

# 3. worker-build, which generates the JS shim around the wasm. Its own
#    downloads are replaced by the binaries above (see scripts/build.sh).
WORKER_BUILD_VERSION=0.8.7
# (`worker-build --version` prints the bare version number.)
if [ "$(worker-build --version 2>/dev/null | awk '{print $NF}')" != "$WORKER_BUILD_VERSION" ]; then
  log "cargo install worker-build $WORKER_BUILD_VERSION"
  cargo install -q worker-build --version "=$WORKER_BUILD_VERSION"
fi

# 4. npm packages (wrangler, workerd, esbuild, MCP SDK, test tools), only
#    when package-lock.json changed since the last install.
if ! cmp -s package-lock.json node_modules/.installed-lock 2>/dev/null; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.installed-lock
fi

# 5. Chromium for the browser tests of the login and consent pages
#    (Debian's package; browser downloads from other hosts do not work here).
if ! command -v chromium >/dev/null 2>&1; then
  log "apt-get install chromium"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
