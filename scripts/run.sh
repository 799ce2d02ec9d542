#!/usr/bin/env bash
# Set up and start Angos: uses the system Node.js when it is 22 or later, otherwise fetches Node 24
# (scripts/node-env.sh); installs the workspace, builds it, and runs `angos server` with
# deploy/config.toml (127.0.0.1:8000, data in .angos-data/, which git ignores). Extra arguments go
# to `angos server` (e.g. --listen 127.0.0.1:9000); ANGOS_CONFIG picks another config file.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/node-env.sh
. scripts/node-env.sh
angos_node_env 22

# pnpm 10 as the repository pins it; without a global install when there is none (no root needed).
case "$(pnpm --version 2>/dev/null || true)" in
  10.*) pnpm=(pnpm) ;;
  *) pnpm=(npx --yes pnpm@10.34.9) ;;
esac

"${pnpm[@]}" install --frozen-lockfile
"${pnpm[@]}" build
exec services/cli/bin/angos -c "${ANGOS_CONFIG:-deploy/config.toml}" server "$@"
