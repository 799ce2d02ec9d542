#!/usr/bin/env bash
# Installs the Go clients the end-to-end tests drive (oras, cosign, crane, regctl, helm) at
# pinned versions, each into its own cache directory, only when missing:
#
#   $ANGOS_GO_BIN/<tool>-<version>/<tool>      (ANGOS_GO_BIN defaults to ~/.cache/angos/go-bin)
#
# The tests look there first (tests/e2e/test/clients.ts reads the same pins from
# scripts/go-clients.txt), then on PATH. Keeping the cache outside the work tree lets CI reuse
# the binaries between runs on the same machine; bumping a version installs the new one beside
# the old. Needs Go (1.26 builds these) and the Go module proxy.
#
#   scripts/install-clients.sh            install every missing client
#   scripts/install-clients.sh crane ...  install only the named ones
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin_root="${ANGOS_GO_BIN:-$HOME/.cache/angos/go-bin}"

# Go's own installer puts it in /usr/local/go, which a non-login shell may not have on PATH.
command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null; then
  echo "install-clients.sh: go not found (install Go 1.26 from https://go.dev/dl/)" >&2
  exit 1
fi

wanted=("$@")
status=0
while read -r tool version package; do
  case "$tool" in '' | '#'*) continue ;; esac
  if [ ${#wanted[@]} -gt 0 ] && [[ " ${wanted[*]} " != *" $tool "* ]]; then continue; fi
  dir="$bin_root/$tool-$version"
  [ -x "$dir/$tool" ] && continue
  echo "install-clients.sh: go install $package@$version" >&2
  # Install into a scratch directory first so an interrupted build never leaves a half-written
  # binary where the tests would find it. CGO off: static binaries, no C toolchain needed.
  mkdir -p "$bin_root"
  scratch="$(mktemp -d "$bin_root/.installing-$tool.XXXXXX")"
  chmod 755 "$scratch" # mktemp makes it private; the tests may run as another user
  if CGO_ENABLED=0 GOBIN="$scratch" GOFLAGS=-trimpath go install "$package@$version" && [ -x "$scratch/$tool" ]; then
    rm -rf "$dir"
    mv "$scratch" "$dir"
  else
    rm -rf "$scratch"
    echo "install-clients.sh: failed to install $tool $version" >&2
    status=1
  fi
done <"$root/scripts/go-clients.txt"
exit $status
