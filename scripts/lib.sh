# Shared helpers for the scripts in this folder. Source, don't run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export PATH="$CARGO_HOME/bin:$PATH"
# Wrangler and miniflare must not reach the internet.
export CLOUDFLARE_CF_FETCH_ENABLED=false
export WRANGLER_SEND_METRICS=false
export WRANGLER_SEND_ERROR_REPORTS=false
export WRANGLER_LOG="${WRANGLER_LOG:-warn}"

# Node 22, from the npm registry (node_modules/.bin/node), for tools that
# need it; wrangler 4.86 runs on the machine's Node 20 or on this one.
NODE22="$ROOT/node_modules/.bin/node"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Seconds since the script started, for the timing lines.
SECONDS=0
elapsed() { printf '%ss' "$SECONDS"; }
