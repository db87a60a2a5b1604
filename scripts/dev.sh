#!/usr/bin/env bash
# Runs the product locally on http://127.0.0.1:8787 with local KV and
# Durable Objects (under .wrangler/state), a Plausible stand-in and a local
# OpenID provider, so every tool and the OAuth flow work with no account.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash scripts/setup.sh
exec "$NODE22" devstack/start.mjs
