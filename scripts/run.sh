#!/usr/bin/env bash
# Set up and start Angos on a machine with Node 20+ and npm: installs the workspace, builds it,
# and runs `angos server` with deploy/config.toml (127.0.0.1:8000). Extra arguments go to
# `angos server` (e.g. --listen 127.0.0.1:9000); ANGOS_CONFIG picks another config file.
set -euo pipefail
cd "$(dirname "$0")/.."

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "scripts/run.sh: Node.js 20 or later is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# pnpm 10 as the repository pins it; without a global install when there is none (no root needed).
case "$(pnpm --version 2>/dev/null || true)" in
  10.*) pnpm=(pnpm) ;;
  *) pnpm=(npx --yes pnpm@10.34.9) ;;
esac

"${pnpm[@]}" install --frozen-lockfile
"${pnpm[@]}" build
exec services/cli/bin/angos -c "${ANGOS_CONFIG:-deploy/config.toml}" server "$@"
