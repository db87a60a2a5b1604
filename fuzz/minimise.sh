#!/usr/bin/env bash
# Minimises a target's committed corpus after a run: keeps the hand-made
# seeds (seed-*, the native tests name some) and the inputs behind findings
# (found-*), then adds a smallest set of
# inputs covering every edge of the rest (libFuzzer -set_cover_merge with
# hit counters off: a third of the size of `cargo fuzz cmin`, which keeps
# every hit-count bucket). Extra directories (a run's new units) are merged
# in too.
#   bash fuzz/minimise.sh <target> [extra-corpus-dir...]
set -euo pipefail
cd "$(dirname "$0")/.."
t="$1"; shift
export RUSTFLAGS="-Coverflow-checks=on"
cargo +nightly fuzz build -O "$t"
bin="fuzz/target/x86_64-unknown-linux-gnu/release/$t"
out="$(mktemp -d)"
cp fuzz/corpus/"$t"/seed-* "$out"/
cp fuzz/corpus/"$t"/found-* "$out"/ 2>/dev/null || true
"$bin" -set_cover_merge=1 -use_counters=0 "$out" fuzz/corpus/"$t" "$@" 2>&1 | tail -1
rm -rf fuzz/corpus/"$t"
mv "$out" fuzz/corpus/"$t"
chmod 755 fuzz/corpus/"$t"
echo "$t: $(ls fuzz/corpus/"$t" | wc -l) files, $(du -sb fuzz/corpus/"$t" | cut -f1) bytes"
