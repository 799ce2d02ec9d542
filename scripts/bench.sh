#!/usr/bin/env bash
# `pnpm bench`: installs what the benchmark drives (wrk, skopeo, CNCF distribution as Debian's
# docker-registry) when missing, builds the workspace, and runs bench/ with the arguments given
# (--rounds N, --subjects angos,angos-split,distribution, --only TEXT, --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for pair in wrk:wrk skopeo:skopeo docker-registry:docker-registry; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
pnpm build >/dev/null
exec node bench/dist/main.js "$@"
