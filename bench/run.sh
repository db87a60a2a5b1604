#!/usr/bin/env bash
# `npm run bench`: installs what is missing, builds the release worker
# (with wasm-opt, as deployed), and runs the benchmark (bench/run.mjs).
# Not part of the test command: it prints figures and asserts only that
# every measured answer was the expected one.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

bash scripts/setup.sh
# wrk, the load generator: Debian's package, only when missing.
if ! command -v wrk >/dev/null 2>&1; then
  log "apt-get install wrk"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
bash scripts/build.sh
exec "$NODE22" bench/run.mjs "$@"
