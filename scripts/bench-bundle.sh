#!/usr/bin/env bash
# Builds the serving-threads benchmark (bench/src/serving-threads.ts, `pnpm bench-threads`) as one
# directory that runs on a Linux machine without network and without Node, Go or Debian's
# packages: the benchmark machine of issue 2.11 (16 cores) is such a machine.
#
#   scripts/bench-bundle.sh [OUT]        default OUT: .bench-bundle (ignored by git)
#   OUT/run.sh [--workers 1,16] [--seconds 10] [--rounds 3]
#
# OUT holds:
#   node/node                  Node.js 24, the `node` binary of the npm registry's package
#   angos/                     the CLI bundled as for the container image (scripts/image/bundle.mjs)
#                              and bin/angos, the launcher with the Node flags it ships with
#   bench/serving-threads.mjs  the benchmark, bundled into one file with rolldown
#   bench/node-floor.js        the bare node:http server it measures as Node's floor (only Node's
#                              own modules: copied as built, an ES module by bench/package.json)
#   bin/                       wrk, curl and docker-registry (CNCF distribution) from this machine,
#                              each started through the dynamic loader and libraries in lib/
#   run.sh                     puts bin/ first on PATH and runs the benchmark
# What the machine must have: glibc for Node (any distribution of the last years), bash, xargs,
# seq, tee, dd, sha256sum and taskset (coreutils and util-linux).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${1:-$root/.bench-bundle}"
case "$out" in /*) ;; *) out="$root/$out" ;; esac

for tool in wrk curl docker-registry ldd; do
  command -v "$tool" >/dev/null || { echo "bench-bundle.sh: $tool is required (pnpm bench installs it)" >&2; exit 1; }
done
# shellcheck source=scripts/node-env.sh
. scripts/node-env.sh
angos_node_env 24 >/dev/null
pnpm build >/dev/null

rm -rf "$out"
mkdir -p "$out/node" "$out/bin" "$out/libexec" "$out/lib" "$out/bench"
cp "$(command -v node)" "$out/node/node"

node scripts/image/bundle.mjs "$out/angos" "$(git rev-parse --short HEAD 2>/dev/null || true)"
mkdir -p "$out/angos/bin"
# The launcher of services/cli/bin/angos, with the bundle's Node.
sed -e 's|^exec node |exec "$here/../../node/node" |' services/cli/bin/angos >"$out/angos/bin/angos"
grep -q '../../node/node' "$out/angos/bin/angos" || { echo "bench-bundle.sh: services/cli/bin/angos changed shape" >&2; exit 1; }
chmod +x "$out/angos/bin/angos"

node scripts/bench-bundle.mjs "$out/bench/serving-threads.mjs"
cp bench/dist/node-floor.js "$out/bench/node-floor.js"
printf '{ "type": "module" }\n' >"$out/bench/package.json"

# Each client and distribution with every library it links against, the C library and the loader
# among them, started through that loader: nothing is taken from the machine's /lib.
loader=""
for tool in wrk curl docker-registry; do
  binary=$(readlink -f "$(command -v "$tool")")
  cp "$binary" "$out/libexec/$tool"
  while read -r library; do
    cp -L "$library" "$out/lib/"
    case "$library" in */ld-linux*) loader=$(basename "$library") ;; esac
  done < <(ldd "$binary" | grep -o '/[^ ]*')
done
[ -n "$loader" ] || { echo "bench-bundle.sh: no dynamic loader found by ldd" >&2; exit 1; }
for tool in wrk curl docker-registry; do
  cat >"$out/bin/$tool" <<EOF
#!/bin/sh
here=\$(dirname "\$(readlink -f "\$0")")
exec "\$here/../lib/$loader" --library-path "\$here/../lib" "\$here/../libexec/$tool" "\$@"
EOF
  chmod +x "$out/bin/$tool"
done

cat >"$out/run.sh" <<'EOF'
#!/bin/sh
# The serving-threads benchmark of Angos beside CNCF distribution; arguments as `pnpm bench-threads`.
here=$(dirname "$(readlink -f "$0")")
export PATH="$here/bin:$PATH"
export ANGOS_LAUNCHER="$here/angos/bin/angos"
exec "$here/node/node" "$here/bench/serving-threads.mjs" "$@"
EOF
chmod +x "$out/run.sh"
echo "bench-bundle.sh: $out ($(du -sh "$out" | cut -f1)); run $out/run.sh --workers 1,\$(nproc)" >&2
